"""Order-domain messages: commands (imperative) and events (past tense).

Every message is a frozen, slotted attrs class; collections are tuples;
amounts are integers in minor units (cents). Validators enforce each class's
invariants at construction, so an invalid message cannot exist.

Every command carries ``order_id``, ``command_id`` (idempotency key; the
events it decides get ids ``"<command_id>:<n>"``), ``issued_at`` and
``issued_by`` (an actor address or ``"person:<name>"``). Irreversible
commands (capture, refund, cancel, submit/ship a fulfillment) also carry
``approved_by``: the person whose decision lets them proceed while the
order is on an exception path.

Every event carries ``order_id``, ``event_id`` (deduplication key),
``source`` (e.g. ``"gateway"``, ``"warehouse/W1"``, ``"coordinator"``),
``source_seq`` (sequence number of that source for this order, from 1; an
event not newer than the last one seen from its source is stale) and
``occurred_at`` (source time, seconds).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from orderloom.runtime import Message

from ._states import (
    Approver,
    Decision,
    HoldReason,
    NotificationKind,
    PaymentFailure,
    Risk,
    RiskRecommendation,
)

__all__ = [
    "ApproveShipment", "AssignWarehouse", "AuthorizationExpired", "AuthorizePayment", "CancelFulfillment",
    "CancelLineItems", "CancelOrder", "CapturePayment", "CloseOrder", "Command",
    "CreateLabel", "CustomerNotified", "Delivered", "Event", "FulfillmentAccepted",
    "FulfillmentCanceled", "FulfillmentOrderCreated", "FulfillmentRejected",
    "FulfillmentSubmitted", "HandOffHold", "HoldHandedOff", "HoldOpened", "HoldReleased",
    "IrreversibleCommand", "ItemsPicked", "LabelCreated", "LineItemSpec", "LineItemsCanceled",
    "LineQuantity", "NotifyCustomer", "OpenHold", "OrderCanceled", "OrderClosed",
    "OrderPlaced", "PaymentAuthorizationRequested", "PaymentAuthorized",
    "PaymentCaptureRequested", "PaymentCaptured", "PaymentFailed", "PaymentOutcomeUnknown",
    "PaymentRefundRequested", "PaymentRefunded", "PaymentVoidRequested", "PaymentVoided",
    "PlaceOrder", "RecordRiskAssessment", "RefundPayment", "ReleaseHold", "RequestReturn",
    "ReturnReceived", "ReturnRequested", "RiskAssessed", "ShipFulfillment", "Shipped",
    "ShipmentApproved", "ShipmentDelayed", "ShipmentReturned", "SubmitFulfillment",
    "VoidAuthorization",
    # facts automation records so that its later decisions read only the journal
    "AddressVerified", "CancellationRequested", "OrderScreened", "RequestCancellation",
    "RequestRiskReplay", "RiskReplayRequested", "ShortageRecorded",
]

# -- validators ---------------------------------------------------------------


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{attribute.name} must be a non-empty string, got {value!r}")


def _optional_text(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(inst, attribute, value)


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive int, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0, got {value!r}")


def _finite(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


def _optional_finite(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _finite(inst, attribute, value)


def _currency(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha() and value.isupper()):
        raise ValueError(f"{attribute.name} must be an ISO 4217 code like 'EUR', got {value!r}")


def _lines(*, allow_empty: bool) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise TypeError(f"{attribute.name} must be a tuple, got {type(value).__name__}")
        if not value and not allow_empty:
            raise ValueError(f"{attribute.name} must not be empty")
        ids = [line.line_id for line in value]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{attribute.name} names a line more than once: {ids}")

    return check


def _instance(kind: type | tuple[type, ...]) -> Any:
    return attrs.validators.instance_of(kind)


def _requester(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Who asks for a cancellation: a person or the customer, never automation
    (automation cancels; it does not request a cancellation)."""
    if not isinstance(value, Approver) or value is Approver.AUTOMATION:
        raise ValueError(f"{attribute.name}: expected Approver.PERSON or Approver.CUSTOMER, "
                         f"got {value!r}")


def _optional_instance(kind: type) -> Any:
    return attrs.validators.optional(attrs.validators.instance_of(kind))


def _decisions(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (not isinstance(value, tuple) or not value
            or not all(isinstance(d, Decision) for d in value) or len(set(value)) != len(value)):
        raise ValueError(f"{attribute.name} must be a non-empty tuple of distinct Decisions, "
                         f"got {value!r}")


def _case(inst: Any) -> None:
    """A case proposes one of the decisions it offers."""
    if inst.proposal not in inst.options:
        raise ValueError(f"{type(inst).__name__}: proposal {inst.proposal!r} is not one of "
                         f"the options {inst.options!r}")


# -- value parts ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LineItemSpec:
    """A line of a placed order. Invariants: quantity > 0, unit_price >= 0 (minor units)."""

    line_id: str = attrs.field(validator=_text)
    sku: str = attrs.field(validator=_text)
    quantity: int = attrs.field(validator=_positive)
    unit_price: int = attrs.field(validator=_non_negative)


@attrs.frozen(kw_only=True)
class LineQuantity:
    """A quantity of one line item. Invariant: quantity > 0."""

    line_id: str = attrs.field(validator=_text)
    quantity: int = attrs.field(validator=_positive)


# -- bases ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Command(Message):
    """Base of order commands. Invariants: ids and issuer non-empty, issued_at finite."""

    order_id: str = attrs.field(validator=_text)
    command_id: str = attrs.field(validator=_text)
    issued_at: float = attrs.field(validator=_finite)
    issued_by: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class IrreversibleCommand(Command):
    """A command whose effect cannot be undone; on an exception path it needs a person.

    Invariants: ``approved_by`` is None or a non-empty name; ``approver``
    says who that name is and is given exactly when ``approved_by`` is (a
    name alone is refused: an approval of unknown kind must not pass for a
    person's).
    """

    approved_by: str | None = attrs.field(default=None, validator=_optional_text)
    approver: Approver | None = attrs.field(default=None,
                                            validator=_optional_instance(Approver))

    def __attrs_post_init__(self) -> None:
        if (self.approver is None) != (self.approved_by is None):
            raise ValueError(f"{type(self).__name__}: approver {self.approver!r} and "
                             f"approved_by {self.approved_by!r} must both be set or both None")


@attrs.frozen(kw_only=True)
class Event(Message):
    """Base of order events. Invariants: ids non-empty, source_seq >= 1, occurred_at finite."""

    order_id: str = attrs.field(validator=_text)
    event_id: str = attrs.field(validator=_text)
    source: str = attrs.field(validator=_text)
    source_seq: int = attrs.field(validator=_positive)
    occurred_at: float = attrs.field(validator=_finite)


# -- commands ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PlaceOrder(Command):
    """Create the order. Invariants: at least one line, unique line ids, ISO currency."""

    customer_id: str = attrs.field(validator=_text)
    currency: str = attrs.field(validator=_currency)
    lines: tuple[LineItemSpec, ...] = attrs.field(validator=_lines(allow_empty=False))


@attrs.frozen(kw_only=True)
class AuthorizePayment(Command):
    """Ask the gateway to authorize ``amount``. Invariant: amount > 0."""

    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class CapturePayment(IrreversibleCommand):
    """Capture ``amount`` of an authorization. Invariant: amount > 0."""

    authorization_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class RefundPayment(IrreversibleCommand):
    """Refund ``amount`` of captured money. Invariant: amount > 0."""

    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class VoidAuthorization(Command):
    """Release an uncaptured authorization. Invariant: authorization_id non-empty."""

    authorization_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class CancelOrder(IrreversibleCommand):
    """Cancel the order, voiding open authorizations. Invariant: reason non-empty."""

    reason: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class CancelLineItems(Command):
    """Cancel unassigned units of some lines. Invariants: non-empty, unique lines."""

    lines: tuple[LineQuantity, ...] = attrs.field(validator=_lines(allow_empty=False))


@attrs.frozen(kw_only=True)
class AssignWarehouse(Command):
    """Create a fulfillment order at a warehouse (a split shipment is several).

    Invariants: non-empty, unique lines; ``fulfill_at`` (scheduled release)
    finite or None. ``backorder``: the warehouse is to keep it until stock
    arrives rather than reject it. ``settles_shortages``: this assignment
    answers the stock shortages recorded so far (later sourcing reads only
    shortages recorded after it).
    """

    fulfillment_order_id: str = attrs.field(validator=_text)
    warehouse_id: str = attrs.field(validator=_text)
    lines: tuple[LineQuantity, ...] = attrs.field(validator=_lines(allow_empty=False))
    fulfill_at: float | None = attrs.field(default=None, validator=_optional_finite)
    backorder: bool = False
    settles_shortages: bool = False


@attrs.frozen(kw_only=True)
class SubmitFulfillment(IrreversibleCommand):
    """Send a fulfillment order to its warehouse (from here goods may leave)."""

    fulfillment_order_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class CancelFulfillment(Command):
    """Withdraw a fulfillment order that has not shipped. Invariant: reason non-empty.

    ``redrive``: withdrawn because its warehouse sat on it, so that another
    warehouse gets a try (the warehouse counts as tried).
    """

    fulfillment_order_id: str = attrs.field(validator=_text)
    reason: str = attrs.field(validator=_text)
    redrive: bool = False


@attrs.frozen(kw_only=True)
class CreateLabel(Command):
    """Buy a shipping label for a fulfillment order. Invariants: carrier, tracking non-empty."""

    fulfillment_order_id: str = attrs.field(validator=_text)
    carrier: str = attrs.field(validator=_text)
    tracking_number: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class ShipFulfillment(IrreversibleCommand):
    """Mark a fulfillment order shipped (merchant-fulfilled). Ships every allocated unit."""

    fulfillment_order_id: str = attrs.field(validator=_text)
    tracking_number: str | None = attrs.field(default=None, validator=_optional_text)


@attrs.frozen(kw_only=True)
class ApproveShipment(Command):
    """Someone allows shipping before payment is secured.

    Invariants: approved_by non-empty; ``approver`` says who.
    """

    approved_by: str = attrs.field(validator=_text)
    reason: str = attrs.field(validator=_text)
    approver: Approver = attrs.field(validator=_instance(Approver))


@attrs.frozen(kw_only=True)
class OpenHold(Command):
    """Take the order off the standard path: a case for a team.

    Invariants: owner team non-empty, deadline finite; ``options`` (the
    decisions the case offers) non-empty and distinct, ``proposal`` one of them.
    """

    hold_id: str = attrs.field(validator=_text)
    reason: HoldReason = attrs.field(validator=_instance(HoldReason))
    owner_team: str = attrs.field(validator=_text)
    deadline: float = attrs.field(validator=_finite)
    note: str = ""
    proposal: Decision = attrs.field(default=Decision.RELEASE, validator=_instance(Decision))
    options: tuple[Decision, ...] = attrs.field(default=(Decision.RELEASE, Decision.CANCEL),
                                                validator=_decisions)

    def __attrs_post_init__(self) -> None:
        _case(self)


@attrs.frozen(kw_only=True)
class HandOffHold(Command):
    """Pass an open hold to another team. Invariant: to_team non-empty."""

    hold_id: str = attrs.field(validator=_text)
    to_team: str = attrs.field(validator=_text)
    note: str = ""


@attrs.frozen(kw_only=True)
class ReleaseHold(Command):
    """Close an open hold. Invariant: resolution non-empty.

    ``decision``: the owner team's decision on the case that this release
    carries out; None when the hold is released for another reason.
    ``note``: why, in the words of whoever decided (a reviewer's note).
    """

    hold_id: str = attrs.field(validator=_text)
    resolution: str = attrs.field(validator=_text)
    decision: Decision | None = attrs.field(default=None, validator=_optional_instance(Decision))
    note: str = ""


@attrs.frozen(kw_only=True)
class RecordRiskAssessment(Command):
    """Record a fraud assessment (e.g. a review's verdict). Invariant: level is not PENDING."""

    level: Risk = attrs.field(validator=_instance(Risk))
    recommendation: RiskRecommendation = attrs.field(validator=_instance(RiskRecommendation))
    provider: str = attrs.field(validator=_text)

    @level.validator
    def _assessed(self, attribute: attrs.Attribute[Any], value: Risk) -> None:
        if value is Risk.PENDING:
            raise ValueError("an assessment cannot report level 'pending'")


@attrs.frozen(kw_only=True)
class NotifyCustomer(Command):
    """Tell the customer something. Shipment notices name their fulfillment order."""

    kind: NotificationKind = attrs.field(validator=_instance(NotificationKind))
    fulfillment_order_id: str | None = attrs.field(default=None, validator=_optional_text)

    @fulfillment_order_id.validator
    def _names_shipment(self, attribute: attrs.Attribute[Any], value: str | None) -> None:
        shipment_notice = self.kind in (NotificationKind.SHIPPED, NotificationKind.DELIVERED)
        if shipment_notice and value is None:
            raise ValueError(f"a {self.kind.value!r} notice must name its fulfillment order")


@attrs.frozen(kw_only=True)
class RequestReturn(Command):
    """Open a return for shipped units. Invariants: non-empty, unique lines."""

    return_id: str = attrs.field(validator=_text)
    lines: tuple[LineQuantity, ...] = attrs.field(validator=_lines(allow_empty=False))


@attrs.frozen(kw_only=True)
class CloseOrder(Command):
    """Archive a finished order (fulfilled, delivered, returned or canceled)."""


@attrs.frozen(kw_only=True)
class RequestCancellation(Command):
    """Someone asks for the order to be canceled once that can safely happen.

    ``issued_by`` is who asked; ``approver`` says who that is (the customer,
    or a person deciding a case); ``note`` is why, in their words. Invariants:
    reason non-empty; ``approver`` is not automation (automation cancels
    directly, it does not ask).
    """

    reason: str = attrs.field(validator=_text)
    approver: Approver = attrs.field(validator=_requester)
    note: str = ""


@attrs.frozen(kw_only=True)
class RequestRiskReplay(Command):
    """Ask the gateway to replay an authorization for its lost risk assessment.

    Invariant: ``request_id`` names the succeeded authorization request replayed.
    """

    request_id: str = attrs.field(validator=_text)


# -- events -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OrderPlaced(Event):
    """The order exists. Invariants: at least one line, unique line ids, ISO currency."""

    customer_id: str = attrs.field(validator=_text)
    currency: str = attrs.field(validator=_currency)
    lines: tuple[LineItemSpec, ...] = attrs.field(validator=_lines(allow_empty=False))


@attrs.frozen(kw_only=True)
class PaymentAuthorizationRequested(Event):
    """The coordinator asked the gateway to authorize. Invariant: amount > 0."""

    request_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class PaymentAuthorized(Event):
    """The gateway authorized ``amount``. ``request_id`` is None if nobody here asked."""

    request_id: str | None = attrs.field(default=None, validator=_optional_text)
    authorization_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class PaymentCaptureRequested(Event):
    """The coordinator asked to capture. Invariant: amount > 0."""

    request_id: str = attrs.field(validator=_text)
    authorization_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class PaymentCaptured(Event):
    """The gateway captured ``amount`` of an authorization. Invariant: amount > 0."""

    request_id: str | None = attrs.field(default=None, validator=_optional_text)
    authorization_id: str = attrs.field(validator=_text)
    capture_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class PaymentRefundRequested(Event):
    """The coordinator asked to refund. Invariant: amount > 0."""

    request_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class PaymentRefunded(Event):
    """The gateway refunded ``amount``. Invariant: amount > 0."""

    request_id: str | None = attrs.field(default=None, validator=_optional_text)
    refund_id: str = attrs.field(validator=_text)
    amount: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class PaymentVoidRequested(Event):
    """The coordinator asked to void an authorization."""

    request_id: str = attrs.field(validator=_text)
    authorization_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class PaymentVoided(Event):
    """The gateway voided an authorization."""

    request_id: str | None = attrs.field(default=None, validator=_optional_text)
    authorization_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class PaymentFailed(Event):
    """The gateway declined a request (or reconciliation found it never happened).

    Invariant: ``reason`` is a :class:`PaymentFailure` (given as one or as its text).
    """

    request_id: str = attrs.field(validator=_text)
    reason: PaymentFailure = attrs.field(converter=PaymentFailure)


@attrs.frozen(kw_only=True)
class PaymentOutcomeUnknown(Event):
    """A request timed out after it was sent: money may or may not have moved."""

    request_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class AuthorizationExpired(Event):
    """An uncaptured authorization lapsed at the gateway."""

    authorization_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class RiskAssessed(Event):
    """A fraud assessment arrived. Invariant: level is not PENDING."""

    level: Risk = attrs.field(validator=_instance(Risk))
    recommendation: RiskRecommendation = attrs.field(validator=_instance(RiskRecommendation))
    provider: str = attrs.field(validator=_text)
    score: float | None = attrs.field(default=None)
    """The provider's fraud score in [0, 1], when it gives one (policies threshold on it)."""

    @score.validator
    def _unit_score(self, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"score must lie in [0, 1], got {value!r}")

    @level.validator
    def _assessed(self, attribute: attrs.Attribute[Any], value: Risk) -> None:
        if value is Risk.PENDING:
            raise ValueError("an assessment cannot report level 'pending'")


@attrs.frozen(kw_only=True)
class FulfillmentOrderCreated(Event):
    """Units were assigned to a warehouse. Invariants: non-empty, unique lines.

    ``backorder`` and ``settles_shortages`` as in :class:`AssignWarehouse`.
    """

    fulfillment_order_id: str = attrs.field(validator=_text)
    warehouse_id: str = attrs.field(validator=_text)
    lines: tuple[LineQuantity, ...] = attrs.field(validator=_lines(allow_empty=False))
    fulfill_at: float | None = attrs.field(default=None, validator=_optional_finite)
    backorder: bool = False
    settles_shortages: bool = False


@attrs.frozen(kw_only=True)
class FulfillmentSubmitted(Event):
    """The fulfillment request went to the warehouse."""

    fulfillment_order_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class FulfillmentAccepted(Event):
    """The warehouse accepted the fulfillment request."""

    fulfillment_order_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class FulfillmentRejected(Event):
    """The warehouse refused (e.g. out of stock); units go back to ORDERED."""

    fulfillment_order_id: str = attrs.field(validator=_text)
    reason: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class FulfillmentCanceled(Event):
    """The fulfillment order was withdrawn before shipping; units go back to ORDERED.

    ``redrive`` as in :class:`CancelFulfillment` (False when a warehouse reports it).
    """

    fulfillment_order_id: str = attrs.field(validator=_text)
    reason: str = attrs.field(validator=_text)
    redrive: bool = False


@attrs.frozen(kw_only=True)
class ItemsPicked(Event):
    """The warehouse picked every unit of the fulfillment order."""

    fulfillment_order_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class LabelCreated(Event):
    """A shipping label exists. Invariants: carrier and tracking number non-empty."""

    fulfillment_order_id: str = attrs.field(validator=_text)
    carrier: str = attrs.field(validator=_text)
    tracking_number: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class Shipped(Event):
    """Goods left the warehouse.

    Invariants: ``lines`` unique; empty means every allocated unit shipped,
    otherwise only those quantities did and the rest returns to ORDERED
    (the fulfillment order closes incomplete).
    """

    fulfillment_order_id: str = attrs.field(validator=_text)
    lines: tuple[LineQuantity, ...] = attrs.field(default=(), validator=_lines(allow_empty=True))
    tracking_number: str | None = attrs.field(default=None, validator=_optional_text)


@attrs.frozen(kw_only=True)
class ShipmentDelayed(Event):
    """The carrier reported a delay."""

    fulfillment_order_id: str = attrs.field(validator=_text)
    reason: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class Delivered(Event):
    """The carrier delivered the shipment."""

    fulfillment_order_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class ShipmentReturned(Event):
    """The whole package came back (return to sender); its units become RETURNED."""

    fulfillment_order_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class LineItemsCanceled(Event):
    """Unassigned units were canceled. Invariants: non-empty, unique lines."""

    lines: tuple[LineQuantity, ...] = attrs.field(validator=_lines(allow_empty=False))


@attrs.frozen(kw_only=True)
class ShipmentApproved(Event):
    """Someone allowed shipping before payment is secured.

    Invariants: approved_by non-empty; ``approver`` says who.
    """

    approved_by: str = attrs.field(validator=_text)
    reason: str = attrs.field(validator=_text)
    approver: Approver = attrs.field(validator=_instance(Approver))


@attrs.frozen(kw_only=True)
class HoldOpened(Event):
    """The order left the standard path.

    Invariants: owner team non-empty; ``deadline >= occurred_at``;
    ``options`` non-empty and distinct, ``proposal`` one of them.
    """

    hold_id: str = attrs.field(validator=_text)
    reason: HoldReason = attrs.field(validator=_instance(HoldReason))
    owner_team: str = attrs.field(validator=_text)
    deadline: float = attrs.field(validator=_finite)
    note: str = ""
    proposal: Decision = attrs.field(default=Decision.RELEASE, validator=_instance(Decision))
    options: tuple[Decision, ...] = attrs.field(default=(Decision.RELEASE, Decision.CANCEL),
                                                validator=_decisions)

    def __attrs_post_init__(self) -> None:
        _case(self)

    @deadline.validator
    def _after_opening(self, attribute: attrs.Attribute[Any], value: float) -> None:
        if value < self.occurred_at:
            raise ValueError(f"deadline {value!r} is before the hold opened ({self.occurred_at!r})")


@attrs.frozen(kw_only=True)
class HoldHandedOff(Event):
    """A hold moved to another team. Invariant: from_team != to_team, both non-empty."""

    hold_id: str = attrs.field(validator=_text)
    from_team: str = attrs.field(validator=_text)
    to_team: str = attrs.field(validator=_text)
    by: str = attrs.field(validator=_text)
    note: str = ""

    @to_team.validator
    def _elsewhere(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value == self.from_team:
            raise ValueError(f"a handoff must change team, got {value!r} -> {value!r}")


@attrs.frozen(kw_only=True)
class HoldReleased(Event):
    """A hold closed. Invariants: released_by and resolution non-empty.

    ``decision`` and ``note`` as in :class:`ReleaseHold`: who decided what, and why.
    """

    hold_id: str = attrs.field(validator=_text)
    released_by: str = attrs.field(validator=_text)
    resolution: str = attrs.field(validator=_text)
    decision: Decision | None = attrs.field(default=None, validator=_optional_instance(Decision))
    note: str = ""


@attrs.frozen(kw_only=True)
class CustomerNotified(Event):
    """A message went to the customer (recorded as a fact, checked by invariants)."""

    kind: NotificationKind = attrs.field(validator=_instance(NotificationKind))
    fulfillment_order_id: str | None = attrs.field(default=None, validator=_optional_text)


@attrs.frozen(kw_only=True)
class OrderCanceled(Event):
    """The order was canceled. Invariants: reason and canceled_by non-empty."""

    reason: str = attrs.field(validator=_text)
    canceled_by: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class ReturnRequested(Event):
    """A return of shipped units was opened. Invariants: non-empty, unique lines."""

    return_id: str = attrs.field(validator=_text)
    lines: tuple[LineQuantity, ...] = attrs.field(validator=_lines(allow_empty=False))


@attrs.frozen(kw_only=True)
class ReturnReceived(Event):
    """The warehouse received the returned units."""

    return_id: str = attrs.field(validator=_text)


@attrs.frozen(kw_only=True)
class OrderClosed(Event):
    """The order was archived."""


@attrs.frozen(kw_only=True)
class OrderScreened(Event):
    """Automation screened the order across orders. ``duplicate_of`` names
    the earlier order with the same key (None: not a duplicate); when set,
    a non-empty id.

    This and :class:`AddressVerified` and :class:`ShortageRecorded` are what
    the order actor learnt from another actor, recorded as it arrives (the
    coordinator's own observation, like a timeout's ``PaymentOutcomeUnknown``:
    nothing is decided, so no command precedes them)."""

    duplicate_of: str | None = attrs.field(default=None, validator=_optional_text)


@attrs.frozen(kw_only=True)
class AddressVerified(Event):
    """The address service judged the shipping address (ok, corrected, or
    neither). Invariants: ``ok`` and ``corrected`` are bools; the address is
    usable when it was ok or has been corrected."""

    ok: bool = attrs.field(validator=_instance(bool))
    corrected: bool = attrs.field(default=False, validator=_instance(bool))

    @property
    def usable(self) -> bool:
        """Whether goods may go to the address (ok as given, or corrected)."""
        return self.ok or self.corrected


@attrs.frozen(kw_only=True)
class ShortageRecorded(Event):
    """A warehouse reported what it could cover of a fulfillment order it
    rejects. Invariants: ids non-empty; ``available`` unique lines (may be
    empty: nothing of it in stock), each a positive quantity."""

    fulfillment_order_id: str = attrs.field(validator=_text)
    warehouse_id: str = attrs.field(validator=_text)
    available: tuple[LineQuantity, ...] = attrs.field(validator=_lines(allow_empty=True))


@attrs.frozen(kw_only=True)
class CancellationRequested(Event):
    """Someone asked for the order to be canceled (it is canceled once no
    gateway request or warehouse work is in flight). Invariants: reason and
    requested_by non-empty; ``approver`` is not automation. ``note``: why,
    in the requester's words (a reviewer's note)."""

    reason: str = attrs.field(validator=_text)
    requested_by: str = attrs.field(validator=_text)
    approver: Approver = attrs.field(validator=_requester)
    note: str = ""


@attrs.frozen(kw_only=True)
class RiskReplayRequested(Event):
    """The gateway was asked to replay a succeeded authorization, whose risk
    assessment never arrived. Invariant: request_id non-empty."""

    request_id: str = attrs.field(validator=_text)
