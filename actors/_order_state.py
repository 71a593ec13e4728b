"""The value of one order's state: every dimension, line items, money, holds.

Everything here is a frozen attrs class built from tuples, so a state is
immutable, hashable and comparable; :func:`orderloom.actors.evolve` returns
a new one for each event. Collections are small per order, so lookups by id
scan tuples rather than keep dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import attrs

from ._messages import LineQuantity
from ._states import (
    AuthorizationStatus,
    FulfillmentStatus,
    HoldReason,
    HoldStatus,
    Lifecycle,
    LineItemQuantityState,
    NotificationKind,
    Payment,
    PaymentOperation,
    ReleaseBasis,
    RequestStatus,
    Risk,
    RiskRecommendation,
    ShipmentStatus,
)

__all__ = [
    "Authorization",
    "Capture",
    "FulfillmentOrder",
    "Handoff",
    "Hold",
    "LineItem",
    "Notification",
    "OrderState",
    "PaymentRequest",
    "Refund",
    "ReturnCase",
]

T = TypeVar("T")

SHIPPED_STATES = frozenset({
    ShipmentStatus.SHIPPED, ShipmentStatus.DELAYED, ShipmentStatus.DELIVERED,
    ShipmentStatus.RETURNED,
})
IN_FLIGHT = frozenset({
    FulfillmentStatus.SUBMITTED, FulfillmentStatus.ACCEPTED, FulfillmentStatus.IN_PROGRESS,
})
UNRESOLVED = frozenset({RequestStatus.PENDING, RequestStatus.UNKNOWN})


@attrs.frozen(kw_only=True)
class LineItem:
    """A line and where its units are: the six buckets always sum to ``quantity``."""

    line_id: str
    sku: str
    unit_price: int
    quantity: int
    ordered: int
    allocated: int = 0
    picked: int = 0
    shipped: int = 0
    canceled: int = 0
    returned: int = 0

    def count(self, bucket: LineItemQuantityState) -> int:
        """Units currently in ``bucket``."""
        value: int = getattr(self, bucket.value)
        return value

    @property
    def active(self) -> int:
        """Units still owed to the customer or already delivered (not canceled)."""
        return self.quantity - self.canceled


@attrs.frozen(kw_only=True)
class FulfillmentOrder:
    """One warehouse assignment; a split shipment is several of these.

    ``release`` records why it was allowed to go to the warehouse (None if
    it went without secured payment or approval: a wrong action).
    """

    fulfillment_order_id: str
    warehouse_id: str
    lines: tuple[LineQuantity, ...]
    status: FulfillmentStatus
    shipment: ShipmentStatus = ShipmentStatus.PENDING
    picked: bool = False
    shipped_lines: tuple[LineQuantity, ...] = ()
    release: ReleaseBasis | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    fulfill_at: float | None = None


@attrs.frozen(kw_only=True)
class Handoff:
    """One move of a hold between teams."""

    from_team: str
    to_team: str
    at: float
    by: str
    note: str = ""


@attrs.frozen(kw_only=True)
class Hold:
    """An exception: why, who owns it, by when, and how it travelled between teams."""

    hold_id: str
    reason: HoldReason
    owner_team: str
    opened_at: float
    deadline: float
    status: HoldStatus = HoldStatus.OPEN
    handoffs: tuple[Handoff, ...] = ()
    released_at: float | None = None
    released_by: str | None = None
    resolution: str | None = None


@attrs.frozen(kw_only=True)
class Authorization:
    """Money reserved at the gateway; ``at_version`` is the journal position it arrived at."""

    authorization_id: str
    amount: int
    status: AuthorizationStatus
    at_version: int


@attrs.frozen(kw_only=True)
class Capture:
    """Money taken from an authorization."""

    capture_id: str
    authorization_id: str
    amount: int
    at_version: int


@attrs.frozen(kw_only=True)
class Refund:
    """Money given back."""

    refund_id: str
    amount: int
    at_version: int


@attrs.frozen(kw_only=True)
class PaymentRequest:
    """A request the coordinator sent to the gateway and what became of it."""

    request_id: str
    operation: PaymentOperation
    amount: int
    authorization_id: str | None
    status: RequestStatus
    at_version: int


@attrs.frozen(kw_only=True)
class Notification:
    """A message the customer received; ``shipment_existed`` is checked by an invariant."""

    kind: NotificationKind
    fulfillment_order_id: str | None
    at: float
    shipment_existed: bool


@attrs.frozen(kw_only=True)
class ReturnCase:
    """A customer return of shipped units."""

    return_id: str
    lines: tuple[LineQuantity, ...]
    received: bool = False


_FIELDS: dict[type, tuple[str, ...]] = {}


def replace(inst: T, **changes: Any) -> T:
    """``attrs.evolve`` for the state's frozen value classes, without the
    per-call field introspection and ``__init__``: the fold of events runs it
    on every event, and the state classes have no validators or converters
    to re-run."""
    cls = type(inst)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(a.name for a in attrs.fields(cls))  # type: ignore[arg-type]
    new = object.__new__(cls)
    set_ = object.__setattr__
    for name in names:
        set_(new, name, changes[name] if name in changes else getattr(inst, name))
    return new


def by_id(items: Iterable[T], key: str, value: str) -> T | None:
    """The first item whose attribute ``key`` equals ``value``, else None."""
    for item in items:
        if getattr(item, key) == value:
            return item
    return None


def replace_by_id(items: tuple[T, ...], key: str, new: T) -> tuple[T, ...]:
    """``items`` with the item sharing ``new``'s ``key`` replaced by ``new``."""
    wanted = getattr(new, key)
    return tuple(new if getattr(item, key) == wanted else item for item in items)


@attrs.frozen(kw_only=True)
class OrderState:
    """One order, dimension by dimension. Built only by folding events.

    ``lifecycle`` is ``ON_HOLD`` while any hold is open; ``held_lifecycle``
    then tracks where the order progressed meanwhile and is where it
    returns when the last hold is released. ``version`` counts applied
    events; money records keep the version they arrived at, so invariants
    can order them against a cancellation.
    """

    order_id: str
    version: int = 0
    placed_at: float | None = None
    customer_id: str | None = None
    currency: str | None = None
    lifecycle: Lifecycle = Lifecycle.PLACED
    held_lifecycle: Lifecycle | None = None
    payment: Payment = Payment.PENDING
    risk: Risk = Risk.PENDING
    risk_recommendation: RiskRecommendation = RiskRecommendation.NONE
    line_items: tuple[LineItem, ...] = ()
    fulfillment_orders: tuple[FulfillmentOrder, ...] = ()
    holds: tuple[Hold, ...] = ()
    authorizations: tuple[Authorization, ...] = ()
    captures: tuple[Capture, ...] = ()
    refunds: tuple[Refund, ...] = ()
    payment_requests: tuple[PaymentRequest, ...] = ()
    failed_authorizations: int = 0
    ship_approved_by: str | None = None
    canceled_at_version: int | None = None
    notifications: tuple[Notification, ...] = ()
    returns: tuple[ReturnCase, ...] = ()
    seen_event_ids: frozenset[str] = frozenset()
    source_seqs: tuple[tuple[str, int], ...] = ()

    # -- lookups -------------------------------------------------------------

    def last_seq(self, source: str) -> int:
        """The highest ``source_seq`` applied from ``source`` (0 if none)."""
        for name, seq in self.source_seqs:
            if name == source:
                return seq
        return 0

    def line(self, line_id: str) -> LineItem | None:
        """The line item with this id, if any."""
        return by_id(self.line_items, "line_id", line_id)

    def fulfillment_order(self, fulfillment_order_id: str) -> FulfillmentOrder | None:
        """The fulfillment order with this id, if any."""
        return by_id(self.fulfillment_orders, "fulfillment_order_id", fulfillment_order_id)

    def hold(self, hold_id: str) -> Hold | None:
        """The hold (open or released) with this id, if any."""
        return by_id(self.holds, "hold_id", hold_id)

    def authorization(self, authorization_id: str) -> Authorization | None:
        """The authorization with this id, if any."""
        return by_id(self.authorizations, "authorization_id", authorization_id)

    def request(self, request_id: str) -> PaymentRequest | None:
        """The gateway request with this id, if any."""
        return by_id(self.payment_requests, "request_id", request_id)

    def return_case(self, return_id: str) -> ReturnCase | None:
        """The return with this id, if any."""
        return by_id(self.returns, "return_id", return_id)

    # -- derived views --------------------------------------------------------

    @property
    def placed(self) -> bool:
        """Whether an OrderPlaced event has been applied."""
        return self.placed_at is not None

    @property
    def progress(self) -> Lifecycle:
        """The lifecycle ignoring holds: where the order will be once they are released."""
        return self.held_lifecycle if self.held_lifecycle is not None else self.lifecycle

    @property
    def open_holds(self) -> tuple[Hold, ...]:
        """Holds not yet released."""
        return tuple(h for h in self.holds if h.status is HoldStatus.OPEN)

    @property
    def amount_due(self) -> int:
        """Price of the units neither canceled nor returned, in minor units."""
        return sum((li.quantity - li.canceled - li.returned) * li.unit_price
                   for li in self.line_items)

    @property
    def authorized_amount(self) -> int:
        """Total ever authorized."""
        return sum(a.amount for a in self.authorizations)

    @property
    def open_authorized_amount(self) -> int:
        """Authorized, not captured, not voided or expired, and no void under way."""
        voiding = {r.authorization_id for r in self.payment_requests
                   if r.operation is PaymentOperation.VOID and r.status in UNRESOLVED}
        return sum(a.amount for a in self.authorizations
                   if a.status is AuthorizationStatus.OPEN and a.authorization_id not in voiding)

    @property
    def captured_amount(self) -> int:
        """Total captured."""
        return sum(c.amount for c in self.captures)

    @property
    def refunded_amount(self) -> int:
        """Total refunded."""
        return sum(r.amount for r in self.refunds)

    @property
    def payment_secured(self) -> bool:
        """Open authorizations plus net captures cover what is due."""
        covered = self.open_authorized_amount + self.captured_amount - self.refunded_amount
        return covered >= self.amount_due

    def unresolved_requests(
        self, operation: PaymentOperation | None = None
    ) -> tuple[PaymentRequest, ...]:
        """Gateway requests still pending or of unknown outcome (optionally of one kind)."""
        return tuple(r for r in self.payment_requests if r.status in UNRESOLVED
                     and (operation is None or r.operation is operation))

    @property
    def units_shipped(self) -> int:
        """Units that left a warehouse (including those since returned)."""
        return sum(li.shipped + li.returned for li in self.line_items)

    @property
    def units_active(self) -> int:
        """Units not canceled."""
        return sum(li.active for li in self.line_items)
