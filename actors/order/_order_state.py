"""The value of one order's state: every dimension, line items, money, holds.

Everything here is a frozen attrs class built from tuples, so a state is
immutable, hashable and comparable; :func:`orderloom.actors.evolve` returns
a new one for each event. Collections are small per order, so lookups by id
scan tuples rather than keep dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from ._messages import LineQuantity
from ._states import (
    Approver,
    AuthorizationStatus,
    Decision,
    FulfillmentStatus,
    HoldReason,
    HoldStatus,
    Lifecycle,
    LineItemQuantityState,
    NotificationKind,
    Payment,
    PaymentFailure,
    PaymentOperation,
    ReleaseBasis,
    RequestStatus,
    Risk,
    RiskRecommendation,
    ShipmentStatus,
    SourcingKind,
)

__all__ = [
    "DERIVED_FROM",
    "Authorization",
    "CancelRequest",
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
    "Shortage",
    "SourcingStep",
]

T = TypeVar("T")

SHIPPED_STATES = frozenset({
    ShipmentStatus.SHIPPED, ShipmentStatus.DELAYED, ShipmentStatus.DELIVERED,
    ShipmentStatus.RETURNED,
})
IN_FLIGHT = frozenset({
    FulfillmentStatus.SUBMITTED, FulfillmentStatus.ACCEPTED, FulfillmentStatus.IN_PROGRESS,
})


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
    backorder: bool = False


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
    """An exception: why, who owns it, by when, and how it travelled between teams.

    ``proposal`` and ``options``: what the case proposes and the decisions it
    offers; ``decision``: the owner team's decision its release carried out
    (None while open, or when released for another reason).
    """

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
    proposal: Decision = Decision.RELEASE
    options: tuple[Decision, ...] = (Decision.RELEASE, Decision.CANCEL)
    decision: Decision | None = None


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
    """A request the coordinator sent to the gateway and what became of it
    (``failure``: why the gateway refused it, once it has)."""

    request_id: str
    operation: PaymentOperation
    amount: int
    authorization_id: str | None
    status: RequestStatus
    at_version: int
    failure: PaymentFailure | None = None


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


@attrs.frozen(kw_only=True)
class Shortage:
    """What a warehouse could cover of a fulfillment order it rejected."""

    fulfillment_order_id: str
    warehouse_id: str
    available: tuple[LineQuantity, ...]


@attrs.frozen(kw_only=True)
class SourcingStep:
    """A warehouse failed the order (``warehouse_id``: it rejected a
    fulfillment order, or sat on one until it was withdrawn), or a redrive
    round began (no warehouse)."""

    kind: SourcingKind
    warehouse_id: str | None = None


@attrs.frozen(kw_only=True)
class CancelRequest:
    """A cancellation someone asked for and that has not happened yet."""

    reason: str
    requested_by: str
    approver: Approver


_REPLACERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


def _make_replacer(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    """Straight-line copy code for one class: a loop with ``getattr`` per field
    costs several times more, and the fold runs this on every event."""
    if not hasattr(cls, "__slots__"):
        return _replace_dict
    names = [a.name for a in attrs.fields(cls) if a.init]
    lines = ["def _replace(inst, changes):",
             "    new = _new(cls)",
             "    set_ = _set"]
    for name in names:
        lines.append(f"    set_(new, {name!r}, changes[{name!r}] if {name!r} in changes "
                     f"else inst.{name})")
    lines.append("    return new")
    namespace: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__, "cls": cls}
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from the class's own fields
    fn: Callable[[Any, dict[str, Any]], Any] = namespace["_replace"]
    return fn


def _replace_dict(inst: Any, changes: dict[str, Any]) -> Any:
    """Copy of a dict-backed frozen instance (``OrderState``) with ``changes``."""
    new = object.__new__(type(inst))
    values = new.__dict__
    values.update(inst.__dict__)
    values.update(changes)
    derive = getattr(new, "_derive", None)
    if derive is not None:
        derive(values, inst, changes)
    return new


def replace(inst: T, **changes: Any) -> T:
    """``attrs.evolve`` for the state's frozen value classes, without the
    per-call field introspection and ``__init__``: the fold of events runs it
    on every event, and the state classes have no validators or converters
    to re-run. Unknown field names raise ``TypeError`` as ``attrs.evolve`` does."""
    cls = type(inst)
    fn = _REPLACERS.get(cls)
    if fn is None:
        fn = _REPLACERS[cls] = _make_replacer(cls)
        _NAMES[cls] = frozenset(a.name for a in attrs.fields(cls) if a.init)  # type: ignore[arg-type]
    if not changes.keys() <= _NAMES[cls]:
        unknown = sorted(changes.keys() - _NAMES[cls])
        raise TypeError(f"{cls.__qualname__} has no fields {unknown}")
    new: T = fn(inst, changes)
    return new


_NAMES: dict[type, frozenset[str]] = {}


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


DERIVED_FROM: Mapping[str, frozenset[str]] = MappingProxyType({
    "_amount_due": frozenset({"line_items"}),
    "_units_shipped": frozenset({"line_items"}),
    "_units_active": frozenset({"line_items"}),
    "_unresolved": frozenset({"payment_requests"}),
    "_authorized_amount": frozenset({"authorizations", "payment_requests"}),
    "_open_authorized_amount": frozenset({"authorizations", "payment_requests"}),
    "_captured_amount": frozenset({"captures"}),
    "_refunded_amount": frozenset({"refunds"}),
    "_open_holds": frozenset({"holds"}),
})
"""For each derived total of :class:`OrderState`, the fields it is computed
from (what ``OrderState._derive`` recomputes it on)."""


# Not slotted, unlike the other value classes: a new state is built for every
# event (several times within one ``evolve``), and copying an instance dict is
# one C-level call where a slotted copy is one call per field. Still frozen.
@attrs.frozen(kw_only=True, slots=False)
class OrderState:
    """One order, dimension by dimension. Built only by folding events.

    ``lifecycle`` is ``ON_HOLD`` while any hold is open; ``held_lifecycle``
    then tracks where the order progressed meanwhile and is where it
    returns when the last hold is released. ``version`` counts applied
    events; money records keep the version they arrived at, so invariants
    can order them against a cancellation.

    Automation's own facts: ``screened`` (cross-order screening is in) and
    ``duplicate_of`` (the earlier order it duplicates; cleared when a person
    lets the duplicate case go on); ``address_usable`` (the address service's
    verdict, None before it; set when a person lets an address case go on);
    ``shortages`` (warehouses' stock reports not yet settled by an
    assignment); ``sourcing`` (warehouses that failed the order and redrive
    rounds, in order); ``cancel_request`` (asked for, not yet done; cleared by the
    cancellation); ``risk_replay_requested`` (the gateway was asked to replay
    a lost risk assessment); ``capture_failures`` (captures refused since a
    person last decided the order's awaiting-payment case).
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
    ship_approver: Approver | None = None
    canceled_at_version: int | None = None
    notifications: tuple[Notification, ...] = ()
    returns: tuple[ReturnCase, ...] = ()
    seen_event_ids: frozenset[str] = frozenset()
    source_seqs: tuple[tuple[str, int], ...] = ()
    # What automation learnt and asked for, recorded as events so that every
    # later decision reads the journal only (see ``_react``).
    screened: bool = False
    duplicate_of: str | None = None
    address_usable: bool | None = None
    shortages: tuple[Shortage, ...] = ()
    sourcing: tuple[SourcingStep, ...] = ()
    cancel_request: CancelRequest | None = None
    risk_replay_requested: bool = False
    capture_failures: int = 0

    # Derived totals, computed once per state (at construction, or by
    # ``replace`` when a field they depend on changes) rather than summed on
    # every read: the fold, the invariants, the engine and the telemetry read
    # them many times per event. They are not part of equality, hashing or
    # the repr: they are functions of the fields above.
    _amount_due: int = attrs.field(init=False, eq=False, repr=False)
    _units_shipped: int = attrs.field(init=False, eq=False, repr=False)
    _units_active: int = attrs.field(init=False, eq=False, repr=False)
    _authorized_amount: int = attrs.field(init=False, eq=False, repr=False)
    _open_authorized_amount: int = attrs.field(init=False, eq=False, repr=False)
    _captured_amount: int = attrs.field(init=False, eq=False, repr=False)
    _refunded_amount: int = attrs.field(init=False, eq=False, repr=False)
    _open_holds: tuple[Hold, ...] = attrs.field(init=False, eq=False, repr=False)
    _unresolved: tuple[PaymentRequest, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._derive(self.__dict__, None, {})

    def _derive(self, values: dict[str, Any], old: OrderState | None,
                changes: dict[str, Any]) -> None:
        """Write the derived totals of a freshly built state into its
        ``values`` (``old``: the state it was copied from by ``replace``, whose
        totals, already in ``values``, still hold for every field not in
        ``changes``)."""
        fresh = old is None
        if fresh or "line_items" in changes:
            due = shipped = active = 0
            for li in self.line_items:
                due += (li.quantity - li.canceled - li.returned) * li.unit_price
                shipped += li.shipped + li.returned
                active += li.quantity - li.canceled
            values["_amount_due"] = due
            values["_units_shipped"] = shipped
            values["_units_active"] = active
        requests = fresh or "payment_requests" in changes
        if requests:
            # Identity tests, not ``in`` a frozenset: hashing an enum member
            # is a Python-level call, and this runs on every payment event.
            values["_unresolved"] = tuple(
                r for r in self.payment_requests
                if r.status is RequestStatus.PENDING or r.status is RequestStatus.UNKNOWN)
        if requests or "authorizations" in changes:
            voiding = [r.authorization_id for r in values["_unresolved"]
                       if r.operation is PaymentOperation.VOID]
            authorized = open_authorized = 0
            for a in self.authorizations:
                authorized += a.amount
                if a.status is AuthorizationStatus.OPEN and a.authorization_id not in voiding:
                    open_authorized += a.amount
            values["_authorized_amount"] = authorized
            values["_open_authorized_amount"] = open_authorized
        if fresh or "captures" in changes:
            values["_captured_amount"] = sum([c.amount for c in self.captures])
        if fresh or "refunds" in changes:
            values["_refunded_amount"] = sum([r.amount for r in self.refunds])
        if fresh or "holds" in changes:
            values["_open_holds"] = tuple([h for h in self.holds if h.status is HoldStatus.OPEN])

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
        return self._open_holds

    @property
    def amount_due(self) -> int:
        """Price of the units neither canceled nor returned, in minor units."""
        return self._amount_due

    @property
    def authorized_amount(self) -> int:
        """Total ever authorized."""
        return self._authorized_amount

    @property
    def open_authorized_amount(self) -> int:
        """Authorized, not captured, not voided or expired, and no void under way."""
        return self._open_authorized_amount

    @property
    def captured_amount(self) -> int:
        """Total captured."""
        return self._captured_amount

    @property
    def refunded_amount(self) -> int:
        """Total refunded."""
        return self._refunded_amount

    @property
    def payment_secured(self) -> bool:
        """Open authorizations plus net captures cover what is due."""
        covered = self._open_authorized_amount + self._captured_amount - self._refunded_amount
        return covered >= self._amount_due

    def unresolved_requests(
        self, operation: PaymentOperation | None = None
    ) -> tuple[PaymentRequest, ...]:
        """Gateway requests still pending or of unknown outcome (optionally of one kind)."""
        if operation is None:
            return self._unresolved
        return tuple(r for r in self._unresolved if r.operation is operation)

    @property
    def units_shipped(self) -> int:
        """Units that left a warehouse (including those since returned)."""
        return self._units_shipped

    @property
    def units_active(self) -> int:
        """Units not canceled."""
        return self._units_active
