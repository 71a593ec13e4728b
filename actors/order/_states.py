"""The order's state dimensions: one enum per dimension, each with a transition table.

An order is not one generic status. Lifecycle, payment, each fulfillment
order (and its shipment), risk, holds and line-item quantities move
independently; each move is checked against the table of its dimension by
:func:`check_transition`. Names follow Shopify / commercetools conventions so
operators recognise them.

A move is a *change*: ``current -> current`` is not a transition and is not
listed (callers do not check a dimension that did not move).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from ._errors import InvalidTransition

__all__ = [
    "Approver",
    "AuthorizationStatus",
    "Decision",
    "FulfillmentStatus",
    "HoldReason",
    "HoldStatus",
    "Lifecycle",
    "LineItemQuantityState",
    "NotificationKind",
    "Payment",
    "PaymentFailure",
    "PaymentOperation",
    "ReleaseBasis",
    "RequestStatus",
    "SETTLED_STAGES",
    "Risk",
    "RiskRecommendation",
    "ShipmentStatus",
    "SourcingKind",
    "TERMINAL_STAGES",
    "TRANSITIONS",
    "allowed_next",
    "check_transition",
]


class Lifecycle(enum.Enum):
    """Where the order as a whole stands (the operational lifecycle)."""

    PLACED = "placed"
    AWAITING_PAYMENT = "awaiting_payment"
    READY_FOR_FULFILLMENT = "ready_for_fulfillment"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    DELIVERED = "delivered"
    CLOSED = "closed"
    ON_HOLD = "on_hold"
    CANCELED = "canceled"
    RETURN_IN_PROGRESS = "return_in_progress"
    RETURNED = "returned"


TERMINAL_STAGES: tuple[Lifecycle, ...] = (Lifecycle.CLOSED, Lifecycle.CANCELED, Lifecycle.RETURNED)
"""The stages an order ends in (a tuple: ``in`` tests members by identity)."""

SETTLED_STAGES: tuple[Lifecycle, ...] = (*TERMINAL_STAGES, Lifecycle.DELIVERED)
"""Stages where no work of the coordinator's is due: the order ended, or the
goods are with the customer. They have no stuck deadline and are not counted
as work in progress."""


class Payment(enum.Enum):
    """The order's financial status (Shopify's ``displayFinancialStatus``).

    ``UNKNOWN`` is the ambiguous gateway outcome: a request was sent and timed
    out, so nobody knows whether money moved until reconciliation.
    """

    PENDING = "pending"
    AUTHORIZED = "authorized"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"


class PaymentFailure(enum.StrEnum):
    """Why the gateway refused a request (``PaymentFailed.reason``).

    A ``StrEnum``: its members are the strings gateways send, so a reason
    reads and serialises as text.
    """

    DECLINED = "declined"
    GATEWAY_UNAVAILABLE = "gateway_unavailable"
    UNKNOWN_REQUEST = "unknown_request"
    UNKNOWN_AUTHORIZATION = "unknown_authorization"
    AMOUNT_EXCEEDS_AUTHORIZATION = "amount_exceeds_authorization"
    REFUND_EXCEEDS_CAPTURED = "refund_exceeds_captured"
    AUTHORIZATION_CAPTURED = "authorization_captured"
    AUTHORIZATION_VOIDED = "authorization_voided"
    AUTHORIZATION_EXPIRED = "authorization_expired"


class FulfillmentStatus(enum.Enum):
    """Status of one fulfillment order (one warehouse assignment)."""

    OPEN = "open"
    SCHEDULED = "scheduled"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    INCOMPLETE = "incomplete"
    CLOSED = "closed"
    CANCELED = "canceled"


class ShipmentStatus(enum.Enum):
    """Status of the shipment of one fulfillment order."""

    PENDING = "pending"
    LABEL_CREATED = "label_created"
    SHIPPED = "shipped"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RETURNED = "returned"


class Risk(enum.Enum):
    """Fraud risk level (Shopify's risk assessment result)."""

    PENDING = "pending"
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class RiskRecommendation(enum.Enum):
    """What the risk assessment recommends doing with the order."""

    NONE = "none"
    ACCEPT = "accept"
    INVESTIGATE = "investigate"
    CANCEL = "cancel"


class HoldReason(enum.Enum):
    """Why an order left the standard path (Shopify fulfillment hold reasons, extended).

    A reason is a label on a hold, not a state: it has no transition table.
    The hold's own progress is :class:`HoldStatus`.
    """

    AWAITING_PAYMENT = "awaiting_payment"
    HIGH_RISK_OF_FRAUD = "high_risk_of_fraud"
    INCORRECT_ADDRESS = "incorrect_address"
    INVENTORY_OUT_OF_STOCK = "inventory_out_of_stock"
    DUPLICATE_ORDER = "duplicate_order"
    SPLIT_FULFILLMENT_DECISION = "split_fulfillment_decision"
    PAYMENT_AMBIGUOUS = "payment_ambiguous"
    POLICY_EXCEPTION = "policy_exception"
    OTHER = "other"


class Approver(enum.Enum):
    """Who stands behind an approval: only a person's counts as a review.

    ``AUTOMATION``: the policy waived review; ``PERSON``: someone decided a
    case (or approved by name); ``CUSTOMER``: the customer asked for it (a
    request, not a review).
    """

    AUTOMATION = "automation"
    PERSON = "person"
    CUSTOMER = "customer"


class Decision(enum.StrEnum):
    """A reviewer's decision on a case (a ``StrEnum``: it reads as its text).

    Part of the order model: a hold records what it proposes and which
    decisions it offers, and a release records the decision it carries out.
    """

    RELEASE = "release"  # go on with the standard path
    CANCEL = "cancel"  # cancel the order
    REASSIGN = "reassign"  # hand the case to another team


class SourcingKind(enum.Enum):
    """A step in where an order's units are sourced from (see ``OrderState.sourcing``)."""

    REJECTED = "rejected"  # a warehouse rejected a fulfillment order
    REDRIVE = "redrive"  # a person let a stuck order go on: its silent warehouses are dropped
    WITHDRAWN = "withdrawn"  # in that redrive, a fulfillment order was pulled from its warehouse


class HoldStatus(enum.Enum):
    """Whether a hold is still open."""

    OPEN = "open"
    RELEASED = "released"


class LineItemQuantityState(enum.Enum):
    """A bucket that units of a line item sit in; units move between buckets.

    ``ORDERED`` holds the units not (or no longer) assigned to a warehouse.
    """

    ORDERED = "ordered"
    ALLOCATED = "allocated"
    PICKED = "picked"
    SHIPPED = "shipped"
    CANCELED = "canceled"
    RETURNED = "returned"


class AuthorizationStatus(enum.Enum):
    """Status of one payment authorization at the gateway."""

    OPEN = "open"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


class PaymentOperation(enum.Enum):
    """A request the coordinator sends to the payment gateway."""

    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    REFUND = "refund"
    VOID = "void"


class RequestStatus(enum.Enum):
    """Where a gateway request stands; ``UNKNOWN`` awaits reconciliation."""

    PENDING = "pending"
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ReleaseBasis(enum.Enum):
    """Why a fulfillment order was allowed to go to the warehouse."""

    PAYMENT_SECURED = "payment_secured"
    APPROVED = "approved"


class NotificationKind(enum.Enum):
    """A message sent to the customer."""

    ORDER_CONFIRMED = "order_confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELED = "canceled"
    REFUNDED = "refunded"


E = TypeVar("E", bound=enum.Enum)


def _table(rows: Mapping[E, frozenset[E]]) -> Mapping[E, frozenset[E]]:
    return MappingProxyType(dict(rows))


_L = Lifecycle
LIFECYCLE: Mapping[Lifecycle, frozenset[Lifecycle]] = _table({
    _L.PLACED: frozenset({_L.AWAITING_PAYMENT, _L.READY_FOR_FULFILLMENT, _L.ON_HOLD, _L.CANCELED}),
    _L.AWAITING_PAYMENT: frozenset({_L.READY_FOR_FULFILLMENT, _L.ON_HOLD, _L.CANCELED}),
    _L.READY_FOR_FULFILLMENT: frozenset({
        _L.AWAITING_PAYMENT, _L.PARTIALLY_FULFILLED, _L.FULFILLED, _L.DELIVERED,
        _L.ON_HOLD, _L.CANCELED,
    }),
    _L.PARTIALLY_FULFILLED: frozenset({_L.FULFILLED, _L.DELIVERED, _L.ON_HOLD}),
    # A shipped order can still need a person: money not captured, a return
    # disputed. It goes on hold and comes back where it was.
    _L.FULFILLED: frozenset({_L.DELIVERED, _L.RETURN_IN_PROGRESS, _L.CLOSED, _L.ON_HOLD}),
    _L.DELIVERED: frozenset({_L.RETURN_IN_PROGRESS, _L.CLOSED, _L.ON_HOLD}),
    # Leaving a hold returns to wherever the order progressed meanwhile:
    # warehouses and gateways keep reporting facts while a person decides.
    _L.ON_HOLD: frozenset({
        _L.PLACED, _L.AWAITING_PAYMENT, _L.READY_FOR_FULFILLMENT, _L.PARTIALLY_FULFILLED,
        _L.FULFILLED, _L.DELIVERED, _L.CANCELED,
    }),
    _L.CANCELED: frozenset({_L.CLOSED}),
    _L.RETURN_IN_PROGRESS: frozenset({_L.RETURNED}),
    _L.RETURNED: frozenset({_L.RETURN_IN_PROGRESS, _L.CLOSED}),
    _L.CLOSED: frozenset(),
})

_P = Payment
PAYMENT: Mapping[Payment, frozenset[Payment]] = _table({
    _P.PENDING: frozenset({_P.AUTHORIZED, _P.PARTIALLY_PAID, _P.PAID, _P.FAILED, _P.UNKNOWN}),
    _P.AUTHORIZED: frozenset({_P.PARTIALLY_PAID, _P.PAID, _P.VOIDED, _P.EXPIRED, _P.UNKNOWN}),
    _P.PARTIALLY_PAID: frozenset({_P.PAID, _P.PARTIALLY_REFUNDED, _P.REFUNDED, _P.UNKNOWN}),
    _P.PAID: frozenset({_P.PARTIALLY_REFUNDED, _P.REFUNDED, _P.UNKNOWN}),
    _P.PARTIALLY_REFUNDED: frozenset({_P.REFUNDED, _P.UNKNOWN}),
    _P.REFUNDED: frozenset(),
    _P.VOIDED: frozenset(),
    # An expired or failed authorization may be retried.
    _P.EXPIRED: frozenset({_P.AUTHORIZED, _P.FAILED, _P.UNKNOWN}),
    _P.FAILED: frozenset({_P.AUTHORIZED, _P.PARTIALLY_PAID, _P.PAID, _P.UNKNOWN}),
    # Reconciliation may reveal any outcome, but never "nothing was asked".
    _P.UNKNOWN: frozenset({
        _P.AUTHORIZED, _P.PARTIALLY_PAID, _P.PAID, _P.PARTIALLY_REFUNDED, _P.REFUNDED,
        _P.VOIDED, _P.EXPIRED, _P.FAILED,
    }),
})

_F = FulfillmentStatus
FULFILLMENT: Mapping[FulfillmentStatus, frozenset[FulfillmentStatus]] = _table({
    _F.OPEN: frozenset({_F.SUBMITTED, _F.ON_HOLD, _F.CANCELED}),
    _F.SCHEDULED: frozenset({_F.OPEN, _F.SUBMITTED, _F.ON_HOLD, _F.CANCELED}),
    _F.ON_HOLD: frozenset({_F.OPEN, _F.CANCELED}),
    # A warehouse that reports only the shipment skips accepted/in_progress.
    _F.SUBMITTED: frozenset({
        _F.ACCEPTED, _F.REJECTED, _F.IN_PROGRESS, _F.INCOMPLETE, _F.CLOSED, _F.CANCELED,
    }),
    _F.ACCEPTED: frozenset({_F.IN_PROGRESS, _F.INCOMPLETE, _F.CLOSED, _F.REJECTED, _F.CANCELED}),
    _F.IN_PROGRESS: frozenset({_F.INCOMPLETE, _F.CLOSED, _F.CANCELED}),
    _F.REJECTED: frozenset(),
    _F.INCOMPLETE: frozenset(),
    _F.CLOSED: frozenset(),
    _F.CANCELED: frozenset(),
})

_S = ShipmentStatus
SHIPMENT: Mapping[ShipmentStatus, frozenset[ShipmentStatus]] = _table({
    _S.PENDING: frozenset({_S.LABEL_CREATED, _S.SHIPPED}),
    _S.LABEL_CREATED: frozenset({_S.SHIPPED}),
    _S.SHIPPED: frozenset({_S.DELAYED, _S.DELIVERED, _S.RETURNED}),
    _S.DELAYED: frozenset({_S.DELIVERED, _S.RETURNED}),
    _S.DELIVERED: frozenset({_S.RETURNED}),
    _S.RETURNED: frozenset(),
})

_ASSESSED = frozenset({Risk.NONE, Risk.LOW, Risk.MEDIUM, Risk.HIGH})
RISK: Mapping[Risk, frozenset[Risk]] = _table({
    Risk.PENDING: _ASSESSED,
    # A re-assessment (e.g. a fraud review) may move to any other level.
    **{level: _ASSESSED - {level} for level in _ASSESSED},
})

_R = RiskRecommendation
_ADVISED = frozenset({_R.ACCEPT, _R.INVESTIGATE, _R.CANCEL})
RISK_RECOMMENDATION: Mapping[RiskRecommendation, frozenset[RiskRecommendation]] = _table({
    _R.NONE: _ADVISED,
    **{advice: _ADVISED - {advice} for advice in _ADVISED},
})

HOLD: Mapping[HoldStatus, frozenset[HoldStatus]] = _table({
    HoldStatus.OPEN: frozenset({HoldStatus.RELEASED}),
    HoldStatus.RELEASED: frozenset(),
})

_Q = LineItemQuantityState
LINE_ITEM: Mapping[LineItemQuantityState, frozenset[LineItemQuantityState]] = _table({
    _Q.ORDERED: frozenset({_Q.ALLOCATED, _Q.CANCELED}),
    # A rejected or canceled fulfillment order puts its units back to ORDERED.
    _Q.ALLOCATED: frozenset({_Q.ORDERED, _Q.PICKED, _Q.SHIPPED}),
    _Q.PICKED: frozenset({_Q.ORDERED, _Q.SHIPPED}),
    _Q.SHIPPED: frozenset({_Q.RETURNED}),
    _Q.CANCELED: frozenset(),
    _Q.RETURNED: frozenset(),
})

_A = AuthorizationStatus
AUTHORIZATION: Mapping[AuthorizationStatus, frozenset[AuthorizationStatus]] = _table({
    _A.OPEN: frozenset({_A.CAPTURED, _A.VOIDED, _A.EXPIRED}),
    _A.CAPTURED: frozenset(),
    _A.VOIDED: frozenset(),
    _A.EXPIRED: frozenset(),
})

_Rq = RequestStatus
REQUEST: Mapping[RequestStatus, frozenset[RequestStatus]] = _table({
    _Rq.PENDING: frozenset({_Rq.UNKNOWN, _Rq.SUCCEEDED, _Rq.FAILED}),
    _Rq.UNKNOWN: frozenset({_Rq.SUCCEEDED, _Rq.FAILED}),
    _Rq.SUCCEEDED: frozenset(),
    _Rq.FAILED: frozenset(),
})

# Values are typed loosely: each row's enum type differs; allowed_next restores it.
TRANSITIONS: Mapping[type[enum.Enum], Mapping[Any, frozenset[Any]]] = (
    MappingProxyType({
        Lifecycle: LIFECYCLE,
        Payment: PAYMENT,
        FulfillmentStatus: FULFILLMENT,
        ShipmentStatus: SHIPMENT,
        Risk: RISK,
        RiskRecommendation: RISK_RECOMMENDATION,
        HoldStatus: HOLD,
        LineItemQuantityState: LINE_ITEM,
        AuthorizationStatus: AUTHORIZATION,
        RequestStatus: REQUEST,
    })
)
"""Every dimension's transition table, keyed by its enum class."""


def allowed_next(current: E) -> frozenset[E]:
    """The states a dimension may move to from ``current``.

    Raises:
        KeyError: ``current`` belongs to an enum without a transition table.
    """
    table = TRANSITIONS[type(current)]
    allowed: frozenset[E] = table[current]
    return allowed


def check_transition(order_id: str, dimension: str, current: E, attempted: E) -> None:
    """Refuse a move its dimension's table does not allow.

    Args:
        order_id: the order concerned (carried by the error).
        dimension: which dimension moves, e.g. ``"payment"`` or
            ``"fulfillment[FO-1]"``.
        current: the dimension's present state.
        attempted: the state it would move to.

    Raises:
        InvalidTransition: ``attempted`` is not in the table row of ``current``.
    """
    if attempted not in allowed_next(current):
        raise InvalidTransition(order_id, dimension, current, attempted)
