"""The value of one order's state: every dimension, line items, money, holds.

Everything here is a frozen attrs class built from tuples, so a state is
immutable, hashable and comparable; :func:`orderloom.actors.evolve` returns
a new one for each event. Collections are small per order, so lookups by id
scan tuples rather than keep dictionaries.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

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
    (None while open, or when released for another reason); ``note``: why,
    in the words of whoever released it.
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
    note: str = ""


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


def replace(inst: T, **changes: Any) -> T:
    """A copy of a frozen value with ``changes``, as ``attrs.evolve`` makes it.

    The fold copies a state for nearly every event, so this reads the old
    values in one step (the instance's dictionary, without the fields
    ``__init__`` computes; or one :func:`operator.attrgetter` call for a
    slotted class) where ``attrs.evolve`` walks the fields in Python, and
    builds the copy through the class's own ``__init__``. Unknown field
    names raise ``TypeError``, as there.
    """
    cls = type(inst)
    names, values = _init_fields(cls)
    computed = _COMPUTED.get(cls)
    if computed is not None:  # a dict-backed class
        kwargs = dict(inst.__dict__)
        for name in computed:
            del kwargs[name]
    else:
        kwargs = dict(zip(names, values(inst)))
    kwargs.update(changes)
    return cls(**kwargs)


def changed_fields(before: T, after: T) -> dict[str, Any]:
    """The ``__init__`` fields of ``after`` that are not the very objects of
    ``before``'s (a value copied by :func:`replace` and not changed is the same object)."""
    names, values = _init_fields(type(before))
    return {name: new for name, old, new in zip(names, values(before), values(after))
            if new is not old}


def _init_fields(cls: type[Any]) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """The ``__init__`` field names of an attrs class and a getter of their values."""
    found = _INIT_FIELDS.get(cls)
    if found is None:
        names = tuple(a.name for a in attrs.fields(cls) if a.init)
        getter = operator.attrgetter(*names)
        if len(names) == 1:  # attrgetter of one name returns the value, not a tuple
            found = names, lambda inst: (getter(inst),)
        else:
            found = names, getter
        _INIT_FIELDS[cls] = found
        if "__slots__" not in vars(cls):  # instances keep their fields in a dictionary
            _COMPUTED[cls] = tuple(a.name for a in attrs.fields(cls) if not a.init)
    return found


_INIT_FIELDS: dict[type[Any], tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}
# For each dict-backed class, its fields that ``__init__`` computes (not arguments).
_COMPUTED: dict[type[Any], tuple[str, ...]] = {}


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


class _Totals(NamedTuple):
    """An order state's derived totals (see the properties of the same names)."""

    amount_due: int
    units_shipped: int
    units_active: int
    authorized_amount: int
    open_authorized_amount: int
    captured_amount: int
    refunded_amount: int
    open_holds: tuple[Hold, ...]
    unresolved: tuple[PaymentRequest, ...]


def _totals(s: OrderState) -> _Totals:
    """``s``'s derived totals, one pass over each collection."""
    due = shipped = active = 0
    for li in s.line_items:
        due += (li.quantity - li.canceled - li.returned) * li.unit_price
        shipped += li.shipped + li.returned
        active += li.quantity - li.canceled
    unresolved = tuple([r for r in s.payment_requests
                        if r.status is RequestStatus.PENDING or r.status is RequestStatus.UNKNOWN])
    voiding = [r.authorization_id for r in unresolved if r.operation is PaymentOperation.VOID]
    authorized = open_authorized = 0
    for a in s.authorizations:
        authorized += a.amount
        if a.status is AuthorizationStatus.OPEN and a.authorization_id not in voiding:
            open_authorized += a.amount
    return _Totals(
        amount_due=due, units_shipped=shipped, units_active=active,
        authorized_amount=authorized, open_authorized_amount=open_authorized,
        captured_amount=sum([c.amount for c in s.captures]),
        refunded_amount=sum([r.amount for r in s.refunds]),
        open_holds=tuple([h for h in s.holds if h.status is HoldStatus.OPEN]),
        unresolved=unresolved)


# Not slotted, unlike the other value classes: the fold builds a state for
# nearly every event, and attrs builds a frozen instance with a dictionary
# several times faster than one with slots. Still frozen.
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
    # The ids of the applied events, in order (a tuple: an order sees a few
    # dozen events, and a set of them would take five times the memory).
    seen_event_ids: tuple[str, ...] = ()
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

    # Derived totals, computed once when a state is built (it is immutable,
    # so they cannot go stale) rather than summed on every read: the fold, the
    # invariants, the engine and the telemetry read them many times per
    # event. Not part of equality, hashing or the repr: they are functions of
    # the fields above.
    _totals: _Totals = attrs.field(init=False, eq=False, repr=False,
                                   default=attrs.Factory(lambda s: _totals(s), takes_self=True))

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
        return self._totals.open_holds

    @property
    def amount_due(self) -> int:
        """Price of the units neither canceled nor returned, in minor units."""
        return self._totals.amount_due

    @property
    def authorized_amount(self) -> int:
        """Total ever authorized."""
        return self._totals.authorized_amount

    @property
    def open_authorized_amount(self) -> int:
        """Authorized, not captured, not voided or expired, and no void under way."""
        return self._totals.open_authorized_amount

    @property
    def captured_amount(self) -> int:
        """Total captured."""
        return self._totals.captured_amount

    @property
    def refunded_amount(self) -> int:
        """Total refunded."""
        return self._totals.refunded_amount

    @property
    def units_shipped(self) -> int:
        """Units that left a warehouse (including those since returned)."""
        return self._totals.units_shipped

    @property
    def units_active(self) -> int:
        """Units not canceled."""
        return self._totals.units_active

    @property
    def payment_secured(self) -> bool:
        """Open authorizations plus net captures cover what is due."""
        t = self._totals
        return t.open_authorized_amount + t.captured_amount - t.refunded_amount >= t.amount_due

    def unresolved_requests(
        self, operation: PaymentOperation | None = None
    ) -> tuple[PaymentRequest, ...]:
        """Gateway requests still pending or of unknown outcome (optionally of one kind)."""
        if operation is None:
            return self._totals.unresolved
        return tuple(r for r in self._totals.unresolved if r.operation is operation)
