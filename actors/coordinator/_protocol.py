"""The messages between the coordinator and the systems around it.

The order model (``_messages``) says what happened to an order; this module
says how the coordinator talks to the outside: requests to the payment
gateway and the warehouses, cases for support teams, snapshots for the
downstream systems, stuck-order reports. Replies from the gateway and the
warehouses are order events (``PaymentAuthorized``, ``Shipped``, ...) sent
to the order's actor, carrying their own ``source`` and ``source_seq``.

Addresses: ``order/<id>``, ``automation``, ``intake``, ``inventory``,
``gateway``, ``warehouse/<id>``, ``team/<name>``, ``finance``, ``crm``, ``support``,
``notifications``, ``watchdog``, ``address-service``.
"""

from __future__ import annotations

from typing import Any

import attrs

from orderloom.runtime import Address, Message

from ..order._messages import Event
from ..order._order_state import OrderState
from ..order._states import Decision

__all__ = [
    "AddressChecked",
    "CaseAssigned",
    "CaseDecision",
    "CaseWithdrawn",
    "CheckAddress",
    "CustomerCancel",
    "Decision",
    "Escalate",
    "GatewayAuthorize",
    "GatewayCapture",
    "GatewayQuery",
    "GatewayRefund",
    "GatewayRequest",
    "GatewayVoid",
    "OrderRetired",
    "OrderTruth",
    "OrderUpdated",
    "PickLine",
    "RequestTimedOut",
    "Screened",
    "StockLevel",
    "StockLevels",
    "StockShortage",
    "StuckCheck",
    "StuckReport",
    "SyncOrder",
    "SyncSnapshot",
    "WarehouseCancel",
    "WarehouseSubmit",
    "order_address",
    "team_address",
    "warehouse_address",
]


def order_address(order_id: str) -> Address:
    """The address of an order's actor."""
    return Address(f"order/{order_id}")


def team_address(team: str) -> Address:
    """The address of a team's case queue (a simulated team or a review desk)."""
    return Address(f"team/{team}")


def warehouse_address(warehouse_id: str) -> Address:
    """The address of a warehouse."""
    return Address(f"warehouse/{warehouse_id}")


def _text(_: object, a: attrs.Attribute[Any], v: str) -> None:
    if not (isinstance(v, str) and v):
        raise ValueError(f"{a.name} must be a non-empty string, got {v!r}")


def _positive_int(_: object, a: attrs.Attribute[Any], v: int) -> None:
    if not (isinstance(v, int) and v > 0):
        raise ValueError(f"{a.name} must be a positive integer, got {v!r}")


def _non_negative_int(_: object, a: attrs.Attribute[Any], v: int) -> None:
    if not (isinstance(v, int) and v >= 0):
        raise ValueError(f"{a.name} must be an integer >= 0, got {v!r}")


# -- world truth (simulation only) -------------------------------------------------


@attrs.frozen(kw_only=True)
class OrderTruth:
    """What the simulated world knows about an order and the coordinator does not.

    Only simulated external actors (gateway risk model, address service,
    reviewers) read it, through an oracle they are given; the coordinator
    never sees it. Live, there is no oracle: real systems and people decide.

    Invariants: ``risk_score`` in [0, 1].
    """

    fraudulent: bool = False
    risk_score: float = 0.05
    address_ok: bool = True
    address_fixable: bool = True
    duplicate_of: str | None = None
    payment_declines: bool = False


# -- gateway -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class GatewayRequest(Message):
    """A request to the payment gateway, idempotent by ``request_id``.

    The gateway answers with order events (``PaymentAuthorized``,
    ``PaymentFailed``, ...) sent to ``notify``. Re-sending the same
    ``request_id`` never moves money twice: the gateway replays its outcome.
    """

    order_id: str = attrs.field(validator=_text)
    request_id: str = attrs.field(validator=_text)
    notify: Address


@attrs.frozen(kw_only=True)
class GatewayAuthorize(GatewayRequest):
    """Authorize ``amount`` (minor units, > 0); a risk assessment comes with it."""

    amount: int = attrs.field(validator=_positive_int)
    customer_id: str = ""


@attrs.frozen(kw_only=True)
class GatewayCapture(GatewayRequest):
    """Capture ``amount`` of authorization ``authorization_id``."""

    authorization_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive_int)


@attrs.frozen(kw_only=True)
class GatewayVoid(GatewayRequest):
    """Void an open authorization."""

    authorization_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class GatewayRefund(GatewayRequest):
    """Refund ``amount`` of what was captured for the order."""

    amount: int = attrs.field(validator=_positive_int)


@attrs.frozen(kw_only=True)
class GatewayQuery(GatewayRequest):
    """Reconciliation: replay the outcome of ``request_id`` (the request this
    message names), or ``PaymentFailed(reason="unknown_request")`` if the
    gateway never received it."""


# -- warehouses ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PickLine:
    """One line of a fulfillment order as a warehouse sees it. Invariant: quantity > 0."""

    line_id: str = attrs.field(validator=_text)
    sku: str = attrs.field(validator=_text)
    quantity: int = attrs.field(validator=_positive_int)


@attrs.frozen(kw_only=True)
class WarehouseSubmit(Message):
    """Fulfil ``lines`` for an order; answers are order events sent to ``notify``.

    With ``backorder`` the warehouse accepts what it cannot cover yet and
    ships when stock is replenished; without it, a shortage is rejected
    (``FulfillmentRejected``) after a :class:`StockShortage` to ``automation``.
    """

    order_id: str = attrs.field(validator=_text)
    fulfillment_order_id: str = attrs.field(validator=_text)
    lines: tuple[PickLine, ...]
    notify: Address
    backorder: bool = False


@attrs.frozen(kw_only=True)
class WarehouseCancel(Message):
    """Stop work on a fulfillment order if it has not shipped."""

    order_id: str = attrs.field(validator=_text)
    fulfillment_order_id: str = attrs.field(validator=_text)
    notify: Address


@attrs.frozen(kw_only=True)
class StockShortage(Message):
    """What a warehouse could cover of a fulfillment order it rejects."""

    order_id: str
    fulfillment_order_id: str
    warehouse_id: str
    available: tuple[PickLine, ...]


def _sorted_skus(_: object, a: attrs.Attribute[Any], v: tuple[StockLevel, ...]) -> None:
    skus = [level.sku for level in v]
    if skus != sorted(set(skus)):
        raise ValueError(f"{a.name} must name each SKU once, sorted, got {skus!r}")


@attrs.frozen(kw_only=True)
class StockLevel:
    """Free (unreserved) units of one SKU. Invariant: ``units >= 0``."""

    sku: str = attrs.field(validator=_text)
    units: int = attrs.field(validator=_non_negative_int)


@attrs.frozen(kw_only=True)
class StockLevels(Message):
    """A warehouse's free stock, every SKU it keeps, as of ``as_of`` (its clock),
    sent to ``inventory`` (a WMS's inventory-level feed).

    A complete snapshot: a SKU it does not list has no free units there.
    Invariants: ``warehouse_id`` non-empty; one level per SKU, sorted by SKU.
    """

    warehouse_id: str = attrs.field(validator=_text)
    levels: tuple[StockLevel, ...] = attrs.field(validator=_sorted_skus)
    as_of: float


# -- address service ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CheckAddress(Message):
    """Validate the order's shipping address; ``correct`` asks for a fix too.

    ``attempt`` numbers the asker's checks of one order (1, 2, ...): a
    simulated service draws the answer from the order's and the attempt's
    own random stream, so a repeated check is a new draw.
    """

    order_id: str
    correct: bool = False
    attempt: int = attrs.field(default=1, validator=_positive_int)


@attrs.frozen(kw_only=True)
class AddressChecked(Message):
    """Outcome of :class:`CheckAddress`: ok, or corrected, or neither."""

    order_id: str
    ok: bool
    corrected: bool = False


# -- coordinator internals ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OrderUpdated(Message):
    """An order's actor applied events: the new state and what caused it."""

    order_id: str
    state: OrderState
    events: tuple[Event, ...]


@attrs.frozen(kw_only=True)
class Screened(Message):
    """Automation screened a new order across orders (duplicate detection).

    ``duplicate_of`` names the earlier order with the same key in the policy's
    window, if any.
    """

    order_id: str
    duplicate_of: str | None = None


@attrs.frozen(kw_only=True)
class CustomerCancel(Message):
    """The customer asks to cancel the order (it may already be in fulfillment)."""

    order_id: str
    reason: str = "customer request"


@attrs.frozen(kw_only=True)
class OrderRetired(Message):
    """The coordinator is done with an order: systems may forget its details.

    Sent to the gateway, the warehouses it used and the downstream systems
    when a finished order's actor stops, so a long simulation keeps no
    per-order state for orders that are over (work still in transit for it,
    e.g. a parcel's delivery scan, is dropped with it).
    """

    order_id: str
    fulfillment_order_ids: tuple[str, ...] = ()
    captured: int = 0
    refunded: int = 0
    """The coordinator's money totals, which the gateway checks against its
    ledger before forgetting it (``money_conserved``)."""


@attrs.frozen(kw_only=True)
class RequestTimedOut(Message):
    """Timer: a gateway request got no answer in time (its outcome is unknown)."""

    order_id: str
    request_id: str


@attrs.frozen(kw_only=True)
class StuckCheck(Message):
    """Timer: is the order still in ``stage`` since state ``version``?"""

    order_id: str
    stage: str
    version: int
    entered_at: float


@attrs.frozen(kw_only=True)
class StuckReport(Message):
    """An order did not progress within its stage's deadline."""

    order_id: str
    stage: str
    reason: str
    age: float
    deadline: float
    hold_id: str | None = None
    team: str | None = None


@attrs.frozen(kw_only=True)
class Escalate(Message):
    """The watchdog asks automation to escalate a stuck order."""

    order_id: str
    stage: str
    reason: str
    hold_id: str | None = None


# -- support teams -----------------------------------------------------------------------

def _decisions(values: tuple[str, ...]) -> tuple[Decision, ...]:
    return tuple(Decision(v) for v in values)


@attrs.frozen(kw_only=True)
class CaseAssigned(Message):
    """A case (an open hold) for a team's queue.

    Invariants: ``proposal`` is in ``options``; ``history`` lists the teams
    that held the case before, oldest first; ``visit`` numbers the order's
    cases of this ``reason`` (1 for its first such hold, 2 for the next...).
    A simulated team keys a review's draws by order, reason, hops and visit.
    """

    order_id: str
    case_id: str
    reason: str
    team: str
    proposal: Decision = attrs.field(converter=Decision)
    options: tuple[Decision, ...] = attrs.field(converter=_decisions)
    opened_at: float
    deadline: float
    history: tuple[str, ...] = ()
    escalate_to: str | None = None
    notify: Address = Address("automation")
    visit: int = attrs.field(default=1, validator=_positive_int)


@attrs.frozen(kw_only=True)
class CaseDecision(Message):
    """A person decided a case. ``handoff_to`` is set for ``"reassign"``."""

    order_id: str
    case_id: str
    team: str
    reviewer: str
    decision: Decision = attrs.field(converter=Decision)
    proposal: Decision = attrs.field(converter=Decision)
    handoff_to: str | None = None
    note: str = ""


@attrs.frozen(kw_only=True)
class CaseWithdrawn(Message):
    """The case no longer needs a person (order canceled, hold released)."""

    order_id: str
    case_id: str


# -- downstream systems ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SyncSnapshot:
    """What downstream systems are told about an order.

    Invariant: ``version`` increases with every change of the coordinator's state.
    """

    order_id: str
    version: int
    lifecycle: str
    payment: str
    captured: int
    refunded: int
    shipped_units: int
    customer_status: str
    notified: str = ""
    """The kinds of messages the customer was sent, in order (``shipped,...``)."""

    @staticmethod
    def of(state: OrderState) -> SyncSnapshot:
        """The snapshot of an order state."""
        # Built on every change of what downstream systems see: plain loops
        # (no generators), and the members' ``_value_`` (the ``value``
        # property is Python code in 3.11), each read once.
        shipped = 0
        for li in state.line_items:
            shipped += li.shipped
        notifications = state.notifications
        notified = ",".join([n.kind._value_ for n in notifications]) if notifications else ""
        lifecycle: str = state.lifecycle._value_
        held = state.held_lifecycle
        # What the customer sees: a hold is not shown to them.
        shown: str = held._value_ if held is not None else lifecycle
        return SyncSnapshot(
            order_id=state.order_id,
            version=state.version,
            lifecycle=lifecycle,
            payment=state.payment._value_,
            captured=state.captured_amount,
            refunded=state.refunded_amount,
            shipped_units=shipped,
            customer_status=_CUSTOMER_STATUS.get(shown, "processing"),
            notified=notified,
        )


# What the customer sees for each lifecycle stage (a hold is not shown to them).
_CUSTOMER_STATUS = {
    "placed": "confirmed", "awaiting_payment": "confirmed",
    "ready_for_fulfillment": "processing", "partially_fulfilled": "partially_shipped",
    "fulfilled": "shipped", "delivered": "delivered", "closed": "completed",
    "canceled": "canceled", "return_in_progress": "return_open", "returned": "returned",
}


@attrs.frozen(kw_only=True)
class SyncOrder(Message):
    """Coordinator → finance / CRM / support: the order's latest snapshot."""

    snapshot: SyncSnapshot
