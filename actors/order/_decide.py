"""``decide(state, command) -> events``: what the coordinator may do now.

Pure: the events' ids, source sequence numbers and times derive from the
command (``command_id``, ``issued_at``) and the state, never from a clock or
a random source. A command whose first event was already applied is
answered with no events, so retried commands are idempotent.

The rules that keep the business safe live here:

- irreversible commands (capture, refund, cancel, submit or ship a
  fulfillment) on an order with open holds need ``approved_by``;
- nothing goes to a warehouse unless payment is secured (open
  authorizations plus net captures cover the amount due) or a person
  approved shipping unpaid;
- no capture after cancellation, at most one live capture request per
  authorization, no refund beyond what was captured;
- nothing acts on an ambiguous gateway outcome (payment ``UNKNOWN``);
- the customer hears "shipped" only about a shipment that exists.

Every decided event is run through :func:`evolve` before it is returned, so
``decide`` never emits an event the order would refuse.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from . import _messages as m
from ._errors import CommandRejected, EventRejected
from ._evolve import evolve
from ._order_state import IN_FLIGHT, SHIPPED_STATES, OrderState
from ._states import (
    AuthorizationStatus,
    FulfillmentStatus as FS,
    Lifecycle as L,
    NotificationKind as NK,
    Payment,
    PaymentOperation as Op,
    RequestStatus,
    ShipmentStatus,
)

__all__ = ["COORDINATOR_SOURCE", "decide", "decide_probed"]

COORDINATOR_SOURCE = "coordinator"
"""The ``source`` of every event ``decide`` emits."""

EvT = TypeVar("EvT", bound=m.Event)
_OPEN_FOR_BUSINESS = (L.PLACED, L.AWAITING_PAYMENT, L.READY_FOR_FULFILLMENT,
                      L.PARTIALLY_FULFILLED)


def decide(state: OrderState, command: m.Command) -> tuple[m.Event, ...]:
    """The events a command produces on this order, or a refusal.

    Raises:
        CommandRejected: a business rule forbids the command now.
        InvalidTransition: the command would move a dimension illegally.
    """
    return decide_probed(state, command)[0]


def decide_probed(
    state: OrderState, command: m.Command
) -> tuple[tuple[m.Event, ...], tuple[OrderState, ...]]:
    """:func:`decide`, plus the states its events lead to when evolved one
    after another from ``state`` (the probe every decision runs anyway), so
    the caller need not evolve them a second time.

    Raises:
        CommandRejected: a business rule forbids the command now.
        InvalidTransition: the command would move a dimension illegally.
    """
    if command.order_id != state.order_id:
        _refuse(state, command, f"command is for order {command.order_id}")
    if f"{command.command_id}:1" in state.seen_event_ids:
        return (), ()
    if not state.placed and not isinstance(command, m.PlaceOrder):
        _refuse(state, command, "the order has not been placed yet")
    if isinstance(command, m.IrreversibleCommand) and state.open_holds \
            and command.approved_by is None:
        reasons = ", ".join(sorted({h.reason.value for h in state.open_holds}))
        _refuse(state, command, f"the order is on hold ({reasons}); a person must approve")
    stamp = _Stamp(state, command)
    events = _decide(state, command, stamp)
    probe = state
    probes: list[OrderState] = []
    for event in events:
        try:
            probe = evolve(probe, event)
        except EventRejected as exc:
            _refuse(state, command, exc.reason, cause=exc)
        probes.append(probe)
    return events, tuple(probes)


class _Stamp:
    """Builds the decided events with deterministic ids, sequence and time."""

    def __init__(self, state: OrderState, command: m.Command) -> None:
        self._state = state
        self._command = command
        self._next = state.last_seq(COORDINATOR_SOURCE)
        self._count = 0

    def __call__(self, cls: type[EvT], **fields: Any) -> EvT:
        self._next += 1
        self._count += 1
        return cls(order_id=self._state.order_id,
                   event_id=f"{self._command.command_id}:{self._count}",
                   source=COORDINATOR_SOURCE, source_seq=self._next,
                   occurred_at=self._command.issued_at, **fields)


def _refuse(
    state: OrderState, command: m.Command, reason: str, *, cause: Exception | None = None
) -> NoReturn:
    raise CommandRejected(state.order_id, command.command_id, type(command).__name__,
                          reason) from cause


def _require(ok: bool, state: OrderState, command: m.Command, reason: str) -> None:
    if not ok:
        _refuse(state, command, reason)


def _decide(s: OrderState, c: m.Command, ev: _Stamp) -> tuple[m.Event, ...]:
    match c:
        case m.PlaceOrder():
            return _place(s, c, ev)
        case m.AuthorizePayment():
            return _authorize(s, c, ev)
        case m.CapturePayment():
            return _capture(s, c, ev)
        case m.RefundPayment():
            return _refund(s, c, ev)
        case m.VoidAuthorization():
            return _void(s, c, ev)
        case m.CancelOrder():
            return _cancel(s, c, ev)
        case m.CancelLineItems():
            return _cancel_lines(s, c, ev)
        case m.AssignWarehouse():
            return _assign(s, c, ev)
        case m.SubmitFulfillment():
            return _submit(s, c, ev)
        case m.CancelFulfillment():
            return _cancel_fulfillment(s, c, ev)
        case m.CreateLabel():
            return _label(s, c, ev)
        case m.ShipFulfillment():
            return _ship(s, c, ev)
        case m.ApproveShipment():
            return _approve(s, c, ev)
        case m.OpenHold():
            return _open_hold(s, c, ev)
        case m.HandOffHold():
            return _hand_off(s, c, ev)
        case m.ReleaseHold():
            return _release(s, c, ev)
        case m.RecordRiskAssessment():
            return _risk(s, c, ev)
        case m.NotifyCustomer():
            return _notify(s, c, ev)
        case m.RequestReturn():
            return _request_return(s, c, ev)
        case m.CloseOrder():
            return _close(s, c, ev)
        case m.RequestCancellation():
            return _request_cancellation(s, c, ev)
        case m.RequestRiskReplay():
            return _request_risk_replay(s, c, ev)
        case _:
            raise TypeError(f"decide does not know command type {type(c).__qualname__}")


def _place(s: OrderState, c: m.PlaceOrder, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(not s.placed, s, c, "the order was already placed")
    return (ev(m.OrderPlaced, customer_id=c.customer_id, currency=c.currency, lines=c.lines),)


def _authorize(s: OrderState, c: m.AuthorizePayment, ev: _Stamp) -> tuple[m.Event, ...]:
    # After shipping, money still due (an authorization expired or a capture
    # failed) may be authorized again: the goods are gone, the payment is not.
    _require(s.progress in _OPEN_FOR_BUSINESS or s.progress in (L.FULFILLED, L.DELIVERED),
             s, c, f"the order is {s.progress.value}")
    _require(not s.unresolved_requests(Op.AUTHORIZE), s, c,
             "an authorization request is still unresolved")
    covered = s.open_authorized_amount + s.captured_amount - s.refunded_amount
    _require(c.amount <= s.amount_due - covered, s, c,
             f"authorizing {c.amount} would exceed the {s.amount_due - covered} still due")
    return (ev(m.PaymentAuthorizationRequested, request_id=c.command_id, amount=c.amount),)


def _capture(s: OrderState, c: m.CapturePayment, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(s.progress not in (L.CANCELED, L.CLOSED), s, c, f"the order is {s.progress.value}")
    _require(s.payment is not Payment.UNKNOWN, s, c, "a gateway outcome is unknown")
    auth = s.authorization(c.authorization_id)
    _require(auth is not None and auth.status is AuthorizationStatus.OPEN, s, c,
             f"authorization {c.authorization_id} is not open")
    _require(not any(r.authorization_id == c.authorization_id
                     and r.operation in (Op.CAPTURE, Op.VOID)
                     and r.status is not RequestStatus.FAILED
                     for r in s.payment_requests), s, c,
             f"authorization {c.authorization_id} already has a capture or void request")
    _require(auth is not None and c.amount <= auth.amount, s, c,
             "capture exceeds the authorized amount")
    return (ev(m.PaymentCaptureRequested, request_id=c.command_id,
               authorization_id=c.authorization_id, amount=c.amount),)


def _refund(s: OrderState, c: m.RefundPayment, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(s.payment is not Payment.UNKNOWN, s, c, "a gateway outcome is unknown")
    asked = sum(r.amount for r in s.unresolved_requests(Op.REFUND))
    refundable = s.captured_amount - s.refunded_amount - asked
    _require(c.amount <= refundable, s, c,
             f"refund {c.amount} exceeds the {refundable} captured and not yet refunded")
    return (ev(m.PaymentRefundRequested, request_id=c.command_id, amount=c.amount),)


def _voidable(s: OrderState) -> tuple[str, ...]:
    """Open authorizations with no live capture or void request."""
    busy = {r.authorization_id for r in s.payment_requests
            if r.operation in (Op.CAPTURE, Op.VOID) and r.status is not RequestStatus.FAILED}
    return tuple(a.authorization_id for a in s.authorizations
                 if a.status is AuthorizationStatus.OPEN and a.authorization_id not in busy)


def _void(s: OrderState, c: m.VoidAuthorization, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(c.authorization_id in _voidable(s), s, c,
             f"authorization {c.authorization_id} is not open or already has a "
             "capture or void request")
    return (ev(m.PaymentVoidRequested, request_id=c.command_id,
               authorization_id=c.authorization_id),)


def _cancel(s: OrderState, c: m.CancelOrder, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(s.progress in (L.PLACED, L.AWAITING_PAYMENT, L.READY_FOR_FULFILLMENT), s, c,
             f"an order that is {s.progress.value} cannot be canceled")
    _require(not any(fo.status in IN_FLIGHT for fo in s.fulfillment_orders), s, c,
             "a fulfillment order is at a warehouse; cancel it first")
    _require(s.payment is not Payment.UNKNOWN, s, c, "a gateway outcome is unknown")
    _require(not s.unresolved_requests(Op.CAPTURE), s, c, "a capture is in flight")
    who = c.approved_by or c.issued_by
    released = tuple(ev(m.HoldReleased, hold_id=h.hold_id, released_by=who,
                        resolution=f"order canceled: {c.reason}") for h in s.open_holds)
    canceled = ev(m.OrderCanceled, reason=c.reason, canceled_by=who)
    voids = tuple(ev(m.PaymentVoidRequested, request_id=f"{c.command_id}/void/{auth_id}",
                     authorization_id=auth_id) for auth_id in _voidable(s))
    return (*released, canceled, *voids)


def _cancel_lines(s: OrderState, c: m.CancelLineItems, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(s.progress in _OPEN_FOR_BUSINESS, s, c, f"the order is {s.progress.value}")
    _require(sum(li.quantity for li in c.lines) < s.units_active, s, c,
             "that cancels every remaining unit; cancel the order instead")
    return (ev(m.LineItemsCanceled, lines=c.lines),)


def _assign(s: OrderState, c: m.AssignWarehouse, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(s.progress in _OPEN_FOR_BUSINESS, s, c, f"the order is {s.progress.value}")
    return (ev(m.FulfillmentOrderCreated, fulfillment_order_id=c.fulfillment_order_id,
               warehouse_id=c.warehouse_id, lines=c.lines, fulfill_at=c.fulfill_at,
               backorder=c.backorder, settles_shortages=c.settles_shortages),)


def _release_basis_ok(s: OrderState) -> bool:
    return s.payment is not Payment.UNKNOWN and (
        s.payment_secured or s.ship_approved_by is not None)


def _submit(s: OrderState, c: m.SubmitFulfillment, ev: _Stamp) -> tuple[m.Event, ...]:
    fo = s.fulfillment_order(c.fulfillment_order_id)
    _require(fo is not None and fo.status in (FS.OPEN, FS.SCHEDULED), s, c,
             f"fulfillment order {c.fulfillment_order_id} is not open")
    _require(s.progress in _OPEN_FOR_BUSINESS, s, c, f"the order is {s.progress.value}")
    _require(_release_basis_ok(s), s, c,
             "payment is not secured and nobody approved shipping unpaid")
    return (ev(m.FulfillmentSubmitted, fulfillment_order_id=c.fulfillment_order_id),)


def _cancel_fulfillment(
    s: OrderState, c: m.CancelFulfillment, ev: _Stamp
) -> tuple[m.Event, ...]:
    fo = s.fulfillment_order(c.fulfillment_order_id)
    cancelable = (FS.OPEN, FS.SCHEDULED, FS.ON_HOLD, FS.SUBMITTED, FS.ACCEPTED)
    _require(fo is not None and fo.status in cancelable, s, c,
             f"fulfillment order {c.fulfillment_order_id} cannot be canceled now")
    return (ev(m.FulfillmentCanceled, fulfillment_order_id=c.fulfillment_order_id,
               reason=c.reason, redrive=c.redrive),)


def _label(s: OrderState, c: m.CreateLabel, ev: _Stamp) -> tuple[m.Event, ...]:
    fo = s.fulfillment_order(c.fulfillment_order_id)
    _require(fo is not None and fo.status in IN_FLIGHT
             and fo.shipment is ShipmentStatus.PENDING, s, c,
             f"fulfillment order {c.fulfillment_order_id} is not awaiting a label")
    return (ev(m.LabelCreated, fulfillment_order_id=c.fulfillment_order_id,
               carrier=c.carrier, tracking_number=c.tracking_number),)


def _ship(s: OrderState, c: m.ShipFulfillment, ev: _Stamp) -> tuple[m.Event, ...]:
    fo = s.fulfillment_order(c.fulfillment_order_id)
    _require(fo is not None and fo.status in IN_FLIGHT, s, c,
             f"fulfillment order {c.fulfillment_order_id} is not at a warehouse")
    _require(fo is not None and fo.release is not None and _release_basis_ok(s), s, c,
             "payment is not secured and nobody approved shipping unpaid")
    return (ev(m.Shipped, fulfillment_order_id=c.fulfillment_order_id,
               tracking_number=c.tracking_number),)


def _approve(s: OrderState, c: m.ApproveShipment, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(s.progress in _OPEN_FOR_BUSINESS, s, c, f"the order is {s.progress.value}")
    return (ev(m.ShipmentApproved, approved_by=c.approved_by, reason=c.reason,
               approver=c.approver),)


def _open_hold(s: OrderState, c: m.OpenHold, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(c.deadline >= c.issued_at, s, c, "the deadline is in the past")
    _require(s.hold(c.hold_id) is None, s, c, f"hold {c.hold_id} already exists")
    # One case per reason: a second hold for the same reason would put the
    # same question to people twice, and releasing one would look like an
    # answer to both.
    same = next((h for h in s.open_holds if h.reason is c.reason), None)
    _require(same is None, s, c,
             f"hold {same.hold_id if same else ''} is already open for {c.reason.value}")
    return (ev(m.HoldOpened, hold_id=c.hold_id, reason=c.reason, owner_team=c.owner_team,
               deadline=c.deadline, note=c.note, proposal=c.proposal, options=c.options),)


def _hand_off(s: OrderState, c: m.HandOffHold, ev: _Stamp) -> tuple[m.Event, ...]:
    hold = s.hold(c.hold_id)
    _require(hold is not None and hold in s.open_holds, s, c, f"hold {c.hold_id} is not open")
    owner = hold.owner_team if hold is not None else ""
    _require(owner != c.to_team, s, c, f"hold {c.hold_id} is already with {c.to_team}")
    return (ev(m.HoldHandedOff, hold_id=c.hold_id, from_team=owner, to_team=c.to_team,
               by=c.issued_by, note=c.note),)


def _release(s: OrderState, c: m.ReleaseHold, ev: _Stamp) -> tuple[m.Event, ...]:
    hold = s.hold(c.hold_id)
    _require(hold is not None and hold in s.open_holds, s, c, f"hold {c.hold_id} is not open")
    return (ev(m.HoldReleased, hold_id=c.hold_id, released_by=c.issued_by,
               resolution=c.resolution, decision=c.decision, note=c.note),)


def _risk(s: OrderState, c: m.RecordRiskAssessment, ev: _Stamp) -> tuple[m.Event, ...]:
    return (ev(m.RiskAssessed, level=c.level, recommendation=c.recommendation,
               provider=c.provider),)


def _notify(s: OrderState, c: m.NotifyCustomer, ev: _Stamp) -> tuple[m.Event, ...]:
    fo = s.fulfillment_order(c.fulfillment_order_id) if c.fulfillment_order_id else None
    if c.kind is NK.SHIPPED:
        _require(fo is not None and fo.shipment in SHIPPED_STATES, s, c,
                 f"no shipment exists for {c.fulfillment_order_id}")
    elif c.kind is NK.DELIVERED:
        _require(fo is not None and fo.shipment is ShipmentStatus.DELIVERED, s, c,
                 f"shipment {c.fulfillment_order_id} is not delivered")
    elif c.kind is NK.CANCELED:
        _require(s.progress is L.CANCELED, s, c, "the order is not canceled")
    elif c.kind is NK.REFUNDED:
        _require(s.refunded_amount > 0, s, c, "nothing was refunded")
    return (ev(m.CustomerNotified, kind=c.kind, fulfillment_order_id=c.fulfillment_order_id),)


def _request_return(s: OrderState, c: m.RequestReturn, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(s.return_case(c.return_id) is None, s, c, f"return {c.return_id} already exists")
    return (ev(m.ReturnRequested, return_id=c.return_id, lines=c.lines),)


def _close(s: OrderState, c: m.CloseOrder, ev: _Stamp) -> tuple[m.Event, ...]:
    _require(not s.open_holds, s, c, "the order has open holds")
    _require(not s.unresolved_requests(), s, c, "a gateway request is unresolved")
    _require(not any(fo.status in IN_FLIGHT for fo in s.fulfillment_orders), s, c,
             "a fulfillment order is at a warehouse")
    return (ev(m.OrderClosed),)


def _request_cancellation(
    s: OrderState, c: m.RequestCancellation, ev: _Stamp
) -> tuple[m.Event, ...]:
    _require(s.progress in (L.PLACED, L.AWAITING_PAYMENT, L.READY_FOR_FULFILLMENT), s, c,
             f"an order that is {s.progress.value} cannot be canceled")
    return (ev(m.CancellationRequested, reason=c.reason, requested_by=c.issued_by,
               approver=c.approver, note=c.note),)


def _request_risk_replay(
    s: OrderState, c: m.RequestRiskReplay, ev: _Stamp
) -> tuple[m.Event, ...]:
    r = s.request(c.request_id)
    _require(r is not None and r.operation is Op.AUTHORIZE
             and r.status is RequestStatus.SUCCEEDED, s, c,
             f"request {c.request_id} is not a succeeded authorization")
    return (ev(m.RiskReplayRequested, request_id=c.request_id),)
