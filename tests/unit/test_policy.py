"""Policies as data: the shipped policies load, bad documents fail precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderloom.actors import (
    FulfillmentTrigger,
    HighRiskAction,
    HoldReason,
    IrreversibleAction,
    Lifecycle,
    PolicyError,
    ShortageAction,
    Sourcing,
    SyncMode,
    builtin_policies,
    load_builtin_policy,
    load_policy,
    parse_policy,
)


def test_three_builtin_policies_span_the_trade_offs() -> None:
    """cautious, balanced and aggressive load and differ on the main knobs."""
    assert builtin_policies() == ["aggressive", "balanced", "cautious"]
    cautious, balanced, aggressive = (load_builtin_policy(n) for n in
                                      ("cautious", "balanced", "aggressive"))
    assert [p.fulfillment_trigger for p in (cautious, balanced, aggressive)] == [
        FulfillmentTrigger.PAYMENT_CAPTURED, FulfillmentTrigger.PAYMENT_AUTHORIZED,
        FulfillmentTrigger.ORDER_PLACED,
    ]
    assert cautious.approval_required == frozenset(IrreversibleAction)
    assert aggressive.approval_required == frozenset()
    assert aggressive.fraud.high_risk_action is HighRiskAction.AUTO_CANCEL
    assert cautious.stock_shortage is ShortageAction.HOLD
    assert balanced.stock_shortage is ShortageAction.SPLIT
    assert aggressive.downstream_sync.mode is SyncMode.BATCH
    assert not aggressive.duplicates.detect and cautious.duplicates.detect


def test_shipped_policies_source_from_the_first_listed_warehouse() -> None:
    """Sourcing defaults to first_listed, in every shipped policy and in a bare document."""
    for name in builtin_policies():
        assert load_builtin_policy(name).sourcing is Sourcing.FIRST_LISTED
    assert parse_policy("name: x\n", "p.yaml").sourcing is Sourcing.FIRST_LISTED
    assert parse_policy("name: x\nsourcing: fewest_splits\n",
                        "p.yaml").sourcing is Sourcing.FEWEST_SPLITS


def test_every_policy_routes_every_hold_reason() -> None:
    """Each shipped policy has an owner team and deadline for every exception reason."""
    for name in builtin_policies():
        policy = load_builtin_policy(name)
        for reason in HoldReason:
            route = policy.route(reason)
            assert route.team and route.deadline > 0


def test_partial_routing_overrides_defaults() -> None:
    """A document's routes override the defaults reason by reason."""
    policy = parse_policy(
        "name: x\nrouting:\n  high_risk_of_fraud: {team: risk-desk, deadline: 60}\n"
        "stuck_deadlines: {placed: 30}\n", "p.yaml")
    assert policy.route(HoldReason.HIGH_RISK_OF_FRAUD).team == "risk-desk"
    assert policy.route(HoldReason.DUPLICATE_ORDER).team == "customer-care"
    assert policy.stuck_deadlines[Lifecycle.PLACED] == 30
    assert Lifecycle.AWAITING_PAYMENT in policy.stuck_deadlines


@pytest.mark.parametrize(("document", "expected"), [
    ("name: x\nfraud: {review_above: 1.5}",
     "fraud.review_above: expected a number in [0, 1], got 1.5"),
    ("name: x\nfraud: {review_above: 0.9, cancel_above: 0.5}",
     "fraud.review_above: expected a score <= cancel_above (0.5), got 0.9"),
    ("name: x\nfulfilment_trigger: payment_captured",
     "(top level): extra fields found (fulfilment_trigger)"),
    ("name: x\nfulfillment_trigger: on_whim",
     "fulfillment_trigger: expected one of ['order_placed', 'payment_authorized', "
     "'payment_captured']"),
    ("name: x\nrouting: {high_risk_of_fraud: {team: a, deadline: 0}}",
     "routing.high_risk_of_fraud.deadline: expected a positive number of seconds, got 0.0"),
    ("name: x\ncapture: on_shipment",
     "capture: expected on_authorization when fulfillment_trigger is payment_captured"),
    ("name: x\nambiguous_payment: {retries: -1}",
     "ambiguous_payment.retries: expected a whole number >= 0, got -1"),
    ("name: x\nsourcing: nearest",
     "sourcing: expected one of ['first_listed', 'stock_aware', 'fewest_splits']"),
    ("name: x\napproval_required: [ship, launch]",
     "approval_required[1]: expected one of ['capture', 'refund', 'cancel', 'ship']"),
    ("name: x\nduplicates: {key: [colour]}",
     "duplicates.key: expected a non-empty list of"),
    ("description: y", "name: required field missing"),
    ("- a", "(top level): expected a mapping, got list"),
    ("name: [", "(document): not valid YAML"),
])
def test_bad_documents_name_file_path_and_expectation(document: str, expected: str) -> None:
    """Each invalid document fails with the file, the field path and what was expected."""
    with pytest.raises(PolicyError) as caught:
        parse_policy(document, "policies/mine.yaml")
    error = caught.value
    assert error.source == "policies/mine.yaml"
    assert str(error).startswith("policies/mine.yaml: invalid policy")
    assert any(p.startswith(expected) for p in error.problems), error.problems


def test_load_policy_from_file(tmp_path: Path) -> None:
    """load_policy reads a file and reports a missing one by path."""
    path = tmp_path / "p.yaml"
    path.write_text("name: from-file\nstock_shortage: cancel_line\n")
    assert load_policy(path).stock_shortage is ShortageAction.CANCEL_LINE
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_unknown_builtin_policy_lists_the_known_ones() -> None:
    """Asking for a policy that is not shipped names the ones that are."""
    with pytest.raises(PolicyError, match="cautious"):
        load_builtin_policy("reckless")
