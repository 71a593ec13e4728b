"""Automation policies as data: what may trigger what, and what waits for people.

A policy is a YAML document loaded into frozen attrs classes with cattrs.
Every knob changes the automation actor's behaviour; nothing here runs.
Loading is strict: unknown keys, wrong types and values out of range fail
with :class:`PolicyError`, naming the file, the path of the field and what
was expected.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

import attrs

from ._documents import DocumentError, FieldError, make_converter, parse_yaml, structure_document
from ._states import HoldReason, Lifecycle

__all__ = [
    "AddressAction",
    "AmbiguousPaymentAction",
    "AmbiguousPaymentPolicy",
    "CaptureMode",
    "DownstreamSyncPolicy",
    "DuplicatePolicy",
    "FraudPolicy",
    "FulfillmentTrigger",
    "HighRiskAction",
    "IrreversibleAction",
    "Policy",
    "PolicyError",
    "Route",
    "ShortageAction",
    "Sourcing",
    "SyncMode",
    "parse_policy",
    "policy_from_dict",
]


class PolicyError(DocumentError):
    """A policy document is invalid (``source``, ``problems`` as in DocumentError)."""

    kind = "policy"


_FieldError = FieldError


def _unit(_: object, a: attrs.Attribute[Any], v: float) -> None:
    if not (isinstance(v, int | float) and 0.0 <= v <= 1.0):
        raise _FieldError(a.name, "a number in [0, 1]", v)


def _positive(_: object, a: attrs.Attribute[Any], v: float) -> None:
    if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
        raise _FieldError(a.name, "a positive number of seconds", v)


def _non_negative_int(_: object, a: attrs.Attribute[Any], v: int) -> None:
    if not (isinstance(v, int) and v >= 0):
        raise _FieldError(a.name, "a whole number >= 0", v)


def _team(_: object, a: attrs.Attribute[Any], v: str) -> None:
    if not (isinstance(v, str) and v.strip()):
        raise _FieldError(a.name, "a team name", v)


class FulfillmentTrigger(enum.Enum):
    """Which event releases an order to fulfillment."""

    ORDER_PLACED = "order_placed"  # unsafe: ships before money is certain
    PAYMENT_AUTHORIZED = "payment_authorized"
    PAYMENT_CAPTURED = "payment_captured"


class CaptureMode(enum.Enum):
    """When an authorization is captured."""

    ON_AUTHORIZATION = "on_authorization"
    ON_SHIPMENT = "on_shipment"


class HighRiskAction(enum.Enum):
    """What automation does with a high-risk order."""

    AUTO_CANCEL = "auto_cancel"
    HOLD = "hold"


class ShortageAction(enum.Enum):
    """What automation does when stock does not cover an order."""

    BACKORDER = "backorder"
    SPLIT = "split"
    CANCEL_LINE = "cancel_line"
    HOLD = "hold"


class Sourcing(enum.Enum):
    """Which warehouse an order's unassigned units are sent to (``_sourcing``).

    Every value tries only warehouses that have not failed the order yet,
    and falls back on rejections as ``first_listed`` does: a rejected
    fulfillment order goes to the next warehouse, and the shortage policy
    decides once every warehouse has been tried.
    """

    FIRST_LISTED = "first_listed"  # the whole order to the first warehouse listed
    # Each line to the first listed warehouse the coordinator's stock view
    # (warehouses' stock reports) says has it.
    STOCK_AWARE = "stock_aware"
    # The warehouse believed to cover the most lines first (the whole order
    # if one can), then the next: fewest shipments.
    FEWEST_SPLITS = "fewest_splits"


class AddressAction(enum.Enum):
    """What automation does when address validation fails."""

    HOLD = "hold"
    AUTO_CORRECT = "auto_correct"


class AmbiguousPaymentAction(enum.Enum):
    """What automation does after a gateway call ends with an unknown outcome."""

    RETRY = "retry"  # re-send the same request (idempotency key) with backoff
    RECONCILE = "reconcile"  # ask the gateway for the request's status
    HOLD = "hold"  # stop and ask payments-ops


class IrreversibleAction(enum.Enum):
    """Actions that cannot be taken back."""

    CAPTURE = "capture"
    REFUND = "refund"
    CANCEL = "cancel"
    SHIP = "ship"


class SyncMode(enum.Enum):
    """How downstream systems (finance, CRM, support) are updated."""

    PUSH = "push"  # on every change
    BATCH = "batch"  # every ``batch_interval`` seconds


@attrs.frozen(kw_only=True)
class FraudPolicy:
    """Fraud thresholds on the provider's score in [0, 1].

    Invariant: ``review_above <= cancel_above``.
    """

    review_above: float = attrs.field(default=0.6, validator=_unit)
    cancel_above: float = attrs.field(default=0.9, validator=_unit)
    high_risk_action: HighRiskAction = HighRiskAction.HOLD
    auto_release_low_risk: bool = True

    def __attrs_post_init__(self) -> None:
        if self.review_above > self.cancel_above:
            raise _FieldError("review_above", f"a score <= cancel_above ({self.cancel_above})",
                              self.review_above)


@attrs.frozen(kw_only=True)
class DuplicatePolicy:
    """Duplicate-order detection: same key inside ``window`` seconds."""

    detect: bool = True
    window: float = attrs.field(default=3600.0, validator=_positive)
    key: tuple[str, ...] = ("customer_id", "amount")

    def __attrs_post_init__(self) -> None:
        allowed = {"customer_id", "amount", "lines", "address"}
        bad = [k for k in self.key if k not in allowed]
        if bad or not self.key:
            raise _FieldError("key", f"a non-empty list of {sorted(allowed)}", list(self.key))


@attrs.frozen(kw_only=True)
class AmbiguousPaymentPolicy:
    """Handling of gateway calls whose outcome is unknown (timeout after send)."""

    action: AmbiguousPaymentAction = AmbiguousPaymentAction.RECONCILE
    retries: int = attrs.field(default=3, validator=_non_negative_int)
    backoff: tuple[float, ...] = (30.0, 120.0, 600.0)

    def __attrs_post_init__(self) -> None:
        if not self.backoff or any(not (b > 0) for b in self.backoff):
            raise _FieldError("backoff", "a non-empty list of positive seconds", list(self.backoff))

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (1-based); the last value repeats."""
        return self.backoff[min(attempt, len(self.backoff)) - 1]


@attrs.frozen(kw_only=True)
class Route:
    """Where an exception goes: owner team, deadline, escalation target."""

    team: str = attrs.field(validator=_team)
    deadline: float = attrs.field(validator=_positive)
    escalate_to: str | None = None


@attrs.frozen(kw_only=True)
class DownstreamSyncPolicy:
    """How finance, CRM and support views are kept in sync."""

    mode: SyncMode = SyncMode.PUSH
    batch_interval: float = attrs.field(default=900.0, validator=_positive)


def _default_routes() -> dict[HoldReason, Route]:
    return {
        HoldReason.AWAITING_PAYMENT: Route(team="payments-ops", deadline=3600.0),
        HoldReason.HIGH_RISK_OF_FRAUD: Route(team="fraud", deadline=14400.0,
                                             escalate_to="payments-ops"),
        HoldReason.INCORRECT_ADDRESS: Route(team="customer-care", deadline=14400.0),
        HoldReason.INVENTORY_OUT_OF_STOCK: Route(team="fulfillment-ops", deadline=14400.0),
        HoldReason.DUPLICATE_ORDER: Route(team="customer-care", deadline=7200.0),
        HoldReason.SPLIT_FULFILLMENT_DECISION: Route(team="fulfillment-ops", deadline=7200.0),
        HoldReason.PAYMENT_AMBIGUOUS: Route(team="payments-ops", deadline=3600.0),
        HoldReason.POLICY_EXCEPTION: Route(team="customer-care", deadline=14400.0),
        HoldReason.OTHER: Route(team="customer-care", deadline=14400.0),
    }


def _default_stuck() -> dict[Lifecycle, float]:
    return {
        Lifecycle.PLACED: 900.0,
        Lifecycle.AWAITING_PAYMENT: 3600.0,
        Lifecycle.READY_FOR_FULFILLMENT: 14400.0,
        Lifecycle.PARTIALLY_FULFILLED: 86400.0,
        # Shipped but not closed: the money is not in. Without a deadline such
        # an order would sit silently until its authorization expired.
        Lifecycle.FULFILLED: 14400.0,
        # Delivered counts only while money is still due (the order actor
        # checks): a delivered, paid order has nothing left to do.
        Lifecycle.DELIVERED: 14400.0,
        Lifecycle.ON_HOLD: 14400.0,
        Lifecycle.RETURN_IN_PROGRESS: 7 * 86400.0,
    }


@attrs.frozen(kw_only=True)
class Policy:
    """One automation policy. Every field is a behaviour the automation actor follows.

    Invariants: every :class:`HoldReason` has a route; capture on shipment is
    incompatible with fulfilling only after capture (orders would wait forever).
    """

    name: str = attrs.field(validator=_team)
    description: str = ""
    fulfillment_trigger: FulfillmentTrigger = FulfillmentTrigger.PAYMENT_CAPTURED
    capture: CaptureMode = CaptureMode.ON_AUTHORIZATION
    fraud: FraudPolicy = attrs.Factory(FraudPolicy)
    stock_shortage: ShortageAction = ShortageAction.HOLD
    sourcing: Sourcing = Sourcing.FIRST_LISTED
    duplicates: DuplicatePolicy = attrs.Factory(DuplicatePolicy)
    address_failure: AddressAction = AddressAction.HOLD
    ambiguous_payment: AmbiguousPaymentPolicy = attrs.Factory(AmbiguousPaymentPolicy)
    routing: dict[HoldReason, Route] = attrs.Factory(_default_routes)
    stuck_deadlines: dict[Lifecycle, float] = attrs.Factory(_default_stuck)
    approval_required: frozenset[IrreversibleAction] = frozenset(IrreversibleAction)
    downstream_sync: DownstreamSyncPolicy = attrs.Factory(DownstreamSyncPolicy)

    def __attrs_post_init__(self) -> None:
        missing = [r.value for r in HoldReason if r not in self.routing]
        if missing:
            raise _FieldError("routing", f"a route for every hold reason (missing {missing})",
                              sorted(r.value for r in self.routing))
        bad = {s.value: d for s, d in self.stuck_deadlines.items() if not d > 0}
        if bad:
            raise _FieldError("stuck_deadlines", "positive seconds per state", bad)
        if (self.fulfillment_trigger is FulfillmentTrigger.PAYMENT_CAPTURED
                and self.capture is CaptureMode.ON_SHIPMENT):
            raise _FieldError(
                "capture", "on_authorization when fulfillment_trigger is payment_captured "
                "(capture on shipment would never happen)", self.capture.value)

    def route(self, reason: HoldReason) -> Route:
        """The route for an exception reason."""
        return self.routing[reason]

    def needs_approval(self, action: IrreversibleAction) -> bool:
        """Whether ``action`` on an exception path waits for a person."""
        return action in self.approval_required


_CONVERTER = make_converter()


def policy_from_dict(data: Mapping[str, Any], source: str) -> Policy:
    """Build a :class:`Policy` from plain data; errors name ``source`` and paths."""
    if not isinstance(data, Mapping):
        raise PolicyError(source, [f"(top level): expected a mapping, got {type(data).__name__}"])
    data = dict(data)
    # Routes and stuck deadlines given in a document override the defaults
    # reason by reason (state by state) instead of replacing the whole table.
    for key, defaults in (("routing", _default_routes()), ("stuck_deadlines", _default_stuck())):
        given = data.get(key)
        if isinstance(given, Mapping):
            data[key] = {**_CONVERTER.unstructure(defaults), **given}
    return structure_document(_CONVERTER, data, Policy, source, PolicyError)


def parse_policy(text: str, source: str) -> Policy:
    """Parse a YAML policy document."""
    return policy_from_dict(parse_yaml(text, source, PolicyError) or {}, source)
