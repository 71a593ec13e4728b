"""The safety net: named invariants over an order, defined once.

The same checks run after every step of the property-based tests, in the
simulator (to count wrong actions) and live (to raise an alarm). Each is a
pure function of an :class:`OrderState`; two need more context:
:func:`check_step` compares the state before and after one offered event
(no regression on stale or duplicate events), and :func:`check_money_views`
compares the order's money with other systems' views of it.

The state records facts as told (see :mod:`._evolve`), including ones a
correct coordinator never causes, so these checks can fail: that is the
point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from . import _messages as m
from ._evolve import derive_payment
from ._order import Outcome, OutcomeKind
from ._order_state import IN_FLIGHT, SHIPPED_STATES, OrderState
from ._states import (
    Approver,
    FulfillmentStatus,
    NotificationKind,
    PaymentOperation,
    RequestStatus,
)

__all__ = [
    "INVARIANTS",
    "INVARIANTS_BY_NAME",
    "Invariant",
    "MoneyView",
    "Violation",
    "check_invariants",
    "check_decision",
    "check_money_views",
    "check_step",
]


@attrs.frozen(kw_only=True)
class Violation:
    """One broken invariant on one order.

    Attributes:
        name: the invariant's name, e.g. ``"never_ship_unpaid"``.
        order_id: the order.
        detail: what exactly is wrong, with the ids involved.
    """

    name: str
    order_id: str
    detail: str


@attrs.frozen(kw_only=True)
class Invariant:
    """A named check: returns one detail string per violation found."""

    name: str
    description: str
    check: Callable[[OrderState], list[str]]


@attrs.frozen(kw_only=True)
class MoneyView:
    """Another system's totals for one order (gateway, finance ledger), minor units."""

    captured: int
    refunded: int


_SENT = IN_FLIGHT | {FulfillmentStatus.CLOSED, FulfillmentStatus.INCOMPLETE}


# Each check returns its violations' details, most often none. They are
# plain functions returning lists, not generators: the Order actor runs
# several of them after every event, and a generator's set-up costs more
# than the usual check itself.


def _never_ship_unpaid(s: OrderState) -> list[str]:
    found = []
    for fo in s.fulfillment_orders:
        if fo.release is None and (fo.status in _SENT or fo.shipment in SHIPPED_STATES):
            found.append(f"fulfillment order {fo.fulfillment_order_id} went to the warehouse "
                         "with neither secured payment nor an approval")
    return found


def _never_capture_after_cancel(s: OrderState) -> list[str]:
    found: list[str] = []
    canceled = s.canceled_at_version
    if canceled is None:
        return found
    for c in s.captures:
        if c.at_version > canceled:
            found.append(f"capture {c.capture_id} of {c.amount} recorded after cancellation")
    for r in s.payment_requests:
        if r.operation is PaymentOperation.CAPTURE and r.at_version > canceled:
            found.append(f"capture request {r.request_id} sent after cancellation")
    return found


def _never_refund_more_than_captured(s: OrderState) -> list[str]:
    found = []
    refunded, captured = s.refunded_amount, s.captured_amount
    if refunded > captured:
        found.append(f"refunded {refunded} but captured only {captured}")
    asked = 0
    for r in s.unresolved_requests():
        if r.operation is PaymentOperation.REFUND:
            asked += r.amount
    if refunded + asked > captured:
        found.append(f"refunded {refunded} with {asked} more requested, "
                     f"captured only {captured}")
    return found


def _never_two_captures_per_authorization(s: OrderState) -> list[str]:
    found: list[str] = []
    requests = [r for r in s.payment_requests if r.operation is PaymentOperation.CAPTURE
                and r.status is not RequestStatus.FAILED]
    if len(s.captures) < 2 and len(requests) < 2:
        return found  # nothing can be doubled (the usual case, checked without the loops)
    for auth in s.authorizations:
        captures = [c.capture_id for c in s.captures
                    if c.authorization_id == auth.authorization_id]
        if len(captures) > 1:
            found.append(f"authorization {auth.authorization_id} captured "
                         f"{len(captures)} times")
        live = [r.request_id for r in requests
                if r.authorization_id == auth.authorization_id]
        if len(live) > 1:
            found.append(f"authorization {auth.authorization_id} has capture requests {live}")
    return found


_TOLD_SHIPPED = (NotificationKind.SHIPPED, NotificationKind.DELIVERED)


def _never_notify_shipped_before_shipment(s: OrderState) -> list[str]:
    return [f"customer told {note.kind.value!r} about {note.fulfillment_order_id} before it was"
            for note in s.notifications
            if not note.shipment_existed and note.kind in _TOLD_SHIPPED]


def _every_open_hold_has_owner_and_deadline(s: OrderState) -> list[str]:
    found = []
    for hold in s.open_holds:
        if not hold.owner_team.strip():
            found.append(f"hold {hold.hold_id} has no owner team")
        if not hold.deadline >= hold.opened_at:
            found.append(f"hold {hold.hold_id} has deadline {hold.deadline} "
                         f"before {hold.opened_at}")
    return found


def _money_conserved(s: OrderState) -> list[str]:
    found = []
    captures = s.captures
    known = [auth.authorization_id for auth in s.authorizations]
    for auth in s.authorizations:
        taken = 0
        for c in captures:
            if c.authorization_id == auth.authorization_id:
                taken += c.amount
        if taken > auth.amount:
            found.append(f"authorization {auth.authorization_id} of {auth.amount} "
                         f"captured {taken}")
    for c in captures:
        if c.authorization_id not in known:
            found.append(f"capture {c.capture_id} names unknown authorization "
                         f"{c.authorization_id}")
    implied = derive_payment(s)
    if implied is not s.payment:
        found.append(f"payment is {s.payment.value} but the money records say {implied.value}")
    return found


def _units_conserved(s: OrderState) -> list[str]:
    found = []
    for li in s.line_items:
        buckets = (li.ordered, li.allocated, li.picked, li.shipped, li.canceled, li.returned)
        if min(buckets) < 0 or sum(buckets) != li.quantity:
            found.append(f"line {li.line_id} buckets {buckets} do not add up to {li.quantity}")
    return found


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(name="never_ship_unpaid", check=_never_ship_unpaid,
              description="goods leave only with secured payment or a person's approval"),
    Invariant(name="never_capture_after_cancel", check=_never_capture_after_cancel,
              description="no capture requested or recorded after the order was canceled"),
    Invariant(name="never_refund_more_than_captured", check=_never_refund_more_than_captured,
              description="refunds, done and requested, never exceed captures"),
    Invariant(name="never_two_captures_per_authorization",
              check=_never_two_captures_per_authorization,
              description="one authorization is captured at most once"),
    Invariant(name="never_notify_shipped_before_shipment",
              check=_never_notify_shipped_before_shipment,
              description="the customer hears 'shipped' only about a real shipment"),
    Invariant(name="every_open_hold_has_owner_and_deadline",
              check=_every_open_hold_has_owner_and_deadline,
              description="every exception has an owner team and a deadline"),
    Invariant(name="money_conserved", check=_money_conserved,
              description="captures fit their authorizations; status matches the records"),
    Invariant(name="units_conserved", check=_units_conserved,
              description="each line's units are in exactly one bucket"),
)
"""Every state invariant, by name."""

INVARIANTS_BY_NAME: Mapping[str, Invariant] = MappingProxyType(
    {inv.name: inv for inv in INVARIANTS})


def check_invariants(state: OrderState) -> tuple[Violation, ...]:
    """Every state invariant's violations on ``state`` (empty when all hold)."""
    found: list[Violation] = []
    for inv in INVARIANTS:
        for detail in inv.check(state):
            found.append(Violation(name=inv.name, order_id=state.order_id, detail=detail))
    return tuple(found)


def _regression(
    before: OrderState, event: m.Event, outcome: Outcome, after: OrderState
) -> list[Violation]:
    name = "never_regress_on_stale_event"
    found: list[Violation] = []
    if outcome.kind is not OutcomeKind.APPLIED and after != before:
        found.append(Violation(name=name, order_id=before.order_id,
                               detail=f"{outcome.kind.value} event {event.event_id} "
                                      "changed the state"))
    if outcome.kind is OutcomeKind.APPLIED and (
        event.source_seq <= before.last_seq(event.source)
        or event.event_id in before.seen_event_ids
    ):
        found.append(Violation(name=name, order_id=before.order_id,
                               detail=f"event {event.event_id} from {event.source} "
                                      f"#{event.source_seq} applied although not new"))
    return found


def check_step(
    before: OrderState, event: m.Event, outcome: Outcome, after: OrderState
) -> tuple[Violation, ...]:
    """``never_regress_on_stale_event`` for one ``apply`` step, plus the state invariants.

    An event that was not applied (duplicate, stale, rejected) must leave the
    state exactly as it was; an applied one must be newer than anything seen
    from its source.
    """
    return (*_regression(before, event, outcome, after), *check_invariants(after))


NO_IRREVERSIBLE_WHILE_HELD = "no_irreversible_while_held"
"""No capture, refund, cancel or shipment while an exception hold is open,
unless a person approved it: a decision invariant, checked on each accepted
command against the state it was decided on (see :func:`check_decision`)."""


def check_decision(state: OrderState, command: m.Command) -> tuple[Violation, ...]:
    """``no_irreversible_while_held`` for one command ``decide`` accepted on ``state``.

    An irreversible command (capture, refund, cancel, submit or ship) taken
    while the order has an open hold must carry a person's approval: neither
    automation's waiver nor a customer's request is a review. A shipment
    approval before payment, by automation, while held, is one too.
    """
    holds = state.open_holds
    if not holds:
        return ()
    if isinstance(command, m.IrreversibleCommand):
        approver = command.approver
    elif isinstance(command, m.ApproveShipment):
        approver = command.approver
    else:
        return ()
    if approver is Approver.PERSON:
        return ()
    who = f"{approver.value} ({command.approved_by})" if approver is not None else "no one"
    return (Violation(
        name=NO_IRREVERSIBLE_WHILE_HELD, order_id=state.order_id,
        detail=f"{type(command).__name__} {command.command_id} approved by {who} while "
               f"hold {holds[0].hold_id} ({holds[0].reason.value}) was open"),)


def check_money_views(
    state: OrderState, views: Mapping[str, MoneyView]
) -> tuple[Violation, ...]:
    """``money_conserved`` across systems: each view must match the order's totals."""
    return tuple(
        Violation(name="money_conserved", order_id=state.order_id,
                  detail=f"{system} sees captured {view.captured} / refunded "
                         f"{view.refunded}, order has {state.captured_amount} / "
                         f"{state.refunded_amount}")
        for system, view in sorted(views.items())
        if (view.captured, view.refunded) != (state.captured_amount, state.refunded_amount)
    )
