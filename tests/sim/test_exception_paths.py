"""The source's exception cases, end to end under the SimPy kernel.

Each one must leave the standard path with the right reason and owner team,
and nothing irreversible may happen on the exception path without the human
decision the policy requires.
"""

from __future__ import annotations

import attrs
import pytest

from orderloom.actors import (
    AmbiguousPaymentAction,
    CaseDecided,
    CommandRefused,
    Dist,
    FulfillmentStatus,
    GatewayConfig,
    Lifecycle,
    OrderStuck,
    OrderTruth,
    WarehouseConfig,
    Window,
    WrongAction,
    load_builtin_policy,
)

from .world import OrderSpec, Ran, run_world, teams, warehouses


def _human_approved_only(ran: Ran, order_id: str) -> None:
    """Under cautious, irreversible actions on an exception path carry a reviewer."""
    for action in ran.irreversible(order_id):
        if action.on_exception_path:
            assert action.approved_by is not None and "#" in action.approved_by, action


def _replenished(**stock: dict[str, int]) -> tuple[WarehouseConfig, ...]:
    return tuple(attrs.evolve(w, replenish_every=6 * 3600.0, replenish_to={"A": 10, "B": 10})
                 if w.warehouse_id == "W1" else w for w in warehouses(**stock))


def test_partial_stock_holds_for_a_split_decision() -> None:
    """Partial stock under cautious opens a split-fulfillment case for
    fulfillment-ops; nothing ships until a person releases it, then it splits."""
    ran = run_world(
        [OrderSpec(order_id="o1", lines=(("A", 1, 1000), ("B", 3, 500)))],
        warehouses=_replenished(W1={"A": 5, "B": 1}, W2={"A": 5}),
    )
    assert ran.cases("o1") == [("split_fulfillment_decision", "fulfillment-ops")]
    decision = ran.of(CaseDecided, "o1")[0]
    opened = [t for t, _, e in ran.telemetry if type(e).__name__ == "CaseOpened"][0]
    submits = [(t, e) for t, _, e in ran.telemetry if type(e).__name__ == "ActionTaken"
               and e.command_type == "SubmitFulfillment"]
    assert submits and all(t >= opened for t, _ in submits)
    assert all(e.on_exception_path is False for _, e in submits)
    assert decision.decision == "release"
    fos = ran.state("o1").fulfillment_orders
    live = [fo for fo in fos if fo.status not in (FulfillmentStatus.REJECTED,
                                                 FulfillmentStatus.CANCELED)]
    assert len(live) == 2  # the covered part and a backorder for the rest
    _human_approved_only(ran, "o1")


def test_split_fulfillment_is_automatic_under_balanced() -> None:
    """Balanced splits a shortage without a person: one shipment now, a backorder later."""
    ran = run_world(
        [OrderSpec(order_id="o1", lines=(("A", 1, 1000), ("B", 3, 500)))],
        policy="balanced",
        warehouses=_replenished(W1={"A": 5, "B": 1}, W2={"A": 5}),
    )
    assert ran.cases("o1") == []
    state = ran.state("o1")
    live = [fo for fo in state.fulfillment_orders
            if fo.status not in (FulfillmentStatus.REJECTED, FulfillmentStatus.CANCELED)]
    assert len(live) == 2
    assert state.lifecycle is Lifecycle.CLOSED  # the backorder shipped after replenishment


def test_duplicate_order_waits_for_a_person_and_is_canceled() -> None:
    """A second order with the same key goes to customer-care; nothing is
    captured or shipped before the reviewer cancels it."""
    ran = run_world([
        OrderSpec(order_id="o1"),
        OrderSpec(order_id="o2", at=120.0, truth=OrderTruth(duplicate_of="o1")),
    ])
    assert ran.cases("o1") == []
    assert ran.cases("o2") == [("duplicate_order", "customer-care")]
    o2 = ran.state("o2")
    assert o2.lifecycle is Lifecycle.CANCELED
    assert o2.captured_amount == 0 and not o2.fulfillment_orders
    assert ran.state("o1").lifecycle is Lifecycle.CLOSED
    _human_approved_only(ran, "o2")


def test_address_problem_holds_before_anything_ships() -> None:
    """A bad address opens an incorrect-address case; the order never ships and
    the reviewer's cancellation voids the authorization."""
    ran = run_world([OrderSpec(order_id="o1", truth=OrderTruth(address_ok=False,
                                                               address_fixable=False))])
    assert ran.cases("o1") == [("incorrect_address", "customer-care")]
    state = ran.state("o1")
    assert state.lifecycle is Lifecycle.CANCELED
    assert state.units_shipped == 0 and state.captured_amount == 0
    _human_approved_only(ran, "o1")


def test_fixable_address_is_corrected_under_balanced() -> None:
    """Balanced auto-corrects a fixable address and the order goes through untouched."""
    ran = run_world([OrderSpec(order_id="o1", truth=OrderTruth(address_ok=False))],
                    policy="balanced")
    assert ran.cases("o1") == []
    assert ran.state("o1").lifecycle is Lifecycle.CLOSED


def test_high_risk_payment_goes_to_fraud_review() -> None:
    """A high fraud score under cautious is a fraud-team case proposing cancel;
    the reviewer cancels and no money is captured."""
    ran = run_world([OrderSpec(order_id="o1", truth=OrderTruth(risk_score=0.95,
                                                               fraudulent=True))])
    assert ran.cases("o1") == [("high_risk_of_fraud", "fraud")]
    (decided,) = ran.of(CaseDecided, "o1")
    assert (decided.proposal, decided.decision) == ("cancel", "cancel")
    state = ran.state("o1")
    assert state.lifecycle is Lifecycle.CANCELED and state.captured_amount == 0
    _human_approved_only(ran, "o1")


def test_aggressive_ships_a_fraudulent_order_before_the_risk_is_known() -> None:
    """Aggressive fulfils on order placed: with a slow gateway the fraudulent
    order ships unpaid and its auto-cancel comes too late; the simulator
    records the wrong actions (and the capture taken on automation's word
    while the ambiguous payment's case was still open)."""
    ran = run_world([OrderSpec(order_id="o1", truth=OrderTruth(risk_score=0.97,
                                                               fraudulent=True))],
                    policy="aggressive", gateway=GatewayConfig(latency=Dist.fixed(600.0)))
    state = ran.state("o1")
    assert state.units_shipped == 1
    assert [w.invariant for w in ran.of(WrongAction, "o1")] == [
        "never_ship_unpaid", "no_irreversible_while_held"]


def test_stuck_order_becomes_a_policy_exception_and_is_redriven() -> None:
    """A silent warehouse leaves the order stuck; the watchdog's escalation opens
    a policy-exception case, and releasing it moves the work to another warehouse."""
    stock = {"A": 10}
    ran = run_world(
        [OrderSpec(order_id="o1")],
        warehouses=(
            attrs.evolve(warehouses(W1=stock)[0], outages=(Window(start=0.0, end=10 * 86400.0),)),
            warehouses(W2=stock)[0],
        ),
    )
    assert ran.of(OrderStuck, "o1")
    assert ran.cases("o1") == [("policy_exception", "customer-care")]
    state = ran.state("o1")
    assert state.lifecycle is Lifecycle.CLOSED
    assert [fo.warehouse_id for fo in state.fulfillment_orders
            if fo.status is not FulfillmentStatus.CANCELED] == ["W2"]


def test_ambiguous_payment_is_reconciled_without_moving_money_twice() -> None:
    """Lost gateway answers make outcomes unknown; reconciliation finds the
    authorization and the capture, and nothing is captured twice."""
    ran = run_world([OrderSpec(order_id="o1")],
                    gateway=GatewayConfig(lost_response_rate=1.0))
    state = ran.state("o1")
    assert state.lifecycle is Lifecycle.CLOSED
    assert len(state.captures) == 1 and state.captured_amount == 1000
    assert ran.of(WrongAction) == []


def test_ambiguous_payment_held_for_payments_ops_when_the_policy_says_so() -> None:
    """With ambiguous_payment: hold, an unknown outcome is a payments-ops case."""
    policy = attrs.evolve(load_builtin_policy("cautious"), ambiguous_payment=attrs.evolve(
        load_builtin_policy("cautious").ambiguous_payment, action=AmbiguousPaymentAction.HOLD))
    ran = run_world([OrderSpec(order_id="o1")], policy=policy,
                    gateway=GatewayConfig(lost_response_rate=1.0))
    assert ("payment_ambiguous", "payments-ops") in ran.cases("o1")
    assert ran.state("o1").captured_amount <= 1000
    _human_approved_only(ran, "o1")


def test_gateway_outage_with_errors_retries_then_proceeds() -> None:
    """During an erroring outage authorizations are retried with backoff and
    succeed after it; no case is opened."""
    ran = run_world(
        [OrderSpec(order_id="o1")],
        policy="balanced",
        gateway=GatewayConfig(outages=(Window(start=0.0, end=100.0, mode="errors"),)),
    )
    assert ran.cases("o1") == []
    assert ran.state("o1").lifecycle is Lifecycle.CLOSED


def test_declined_payment_goes_to_payments_ops() -> None:
    """A declined card is an awaiting-payment case; the proposal is to cancel."""
    ran = run_world([OrderSpec(order_id="o1", truth=OrderTruth(payment_declines=True))],
                    teams=teams(review=300.0))
    assert ran.cases("o1") == [("awaiting_payment", "payments-ops")]
    assert ran.state("o1").lifecycle is Lifecycle.CANCELED
    _human_approved_only(ran, "o1")


def test_reviewer_reassignment_bounces_between_teams() -> None:
    """Teams that always reassign bounce a case A→B→A, each hop a recorded handoff."""
    partner = {"customer-care": "payments-ops", "payments-ops": "customer-care"}
    bouncy = tuple(attrs.evolve(t, reassign_rate=1.0, reassign_to=(partner[t.name],))
                   if t.name in partner else t for t in teams())
    ran = run_world([OrderSpec(order_id="o1", truth=OrderTruth(address_ok=False,
                                                               address_fixable=False))],
                    teams=bouncy, until=2000.0)
    handoffs = [(round(t), e.from_team, e.to_team) for t, _, e in ran.telemetry
                if type(e).__name__ == "CaseHandedOff"]
    assert [h[1:] for h in handoffs] == [("customer-care", "payments-ops"),
                                         ("payments-ops", "customer-care"),
                                         ("customer-care", "payments-ops")]
    assert ran.state("o1").lifecycle is Lifecycle.ON_HOLD


def test_risk_assessment_lost_to_reordering_is_fetched_again(
        monkeypatch: "pytest.MonkeyPatch") -> None:
    """A risk assessment delayed past the resequencing wait is dropped as stale;
    the engine asks the gateway to replay it and the order ships."""
    from orderloom.actors import RiskAssessed
    from orderloom.simulation import SimKernel

    post = SimKernel._post

    def late_risk(self: SimKernel, envelope: object, delay: float) -> None:
        if isinstance(envelope.body, RiskAssessed) and envelope.sender == "gateway":  # type: ignore[attr-defined]
            delay += 90.0  # longer than the 60 s the order waits for a gap
        post(self, envelope, delay)  # type: ignore[arg-type]

    monkeypatch.setattr(SimKernel, "_post", late_risk)
    ran = run_world([OrderSpec(order_id="o1")], until=2 * 86400.0)
    state = ran.state("o1")
    assert state.lifecycle is Lifecycle.CLOSED and state.risk.value == "low"
    assert ran.of(OrderStuck, "o1") == []


def test_a_cancel_decision_waits_for_the_warehouse_to_give_the_work_back() -> None:
    """A reviewer's cancel while a fulfillment order is at the warehouse pulls it
    back first, then cancels: no hold is left without an owner."""
    slow = tuple(attrs.evolve(w, pick=Dist.fixed(6 * 3600.0)) for w in warehouses(W1={"A": 5}))
    ran = run_world([OrderSpec(order_id="o1")], warehouses=slow, until=2 * 86400.0,
                    teams=teams(override_rate=1.0))
    state = ran.state("o1")
    decisions = [d.decision for d in ran.of(CaseDecided, "o1")]
    assert decisions and decisions[0] == "cancel"
    assert state.lifecycle is Lifecycle.CANCELED and not state.open_holds


def test_an_unknown_capture_after_shipping_becomes_a_payments_case() -> None:
    """A capture whose answer is lost after the goods shipped is reconciled or
    handed to payments-ops: the order is not left unpaid and unseen."""
    ran = run_world([OrderSpec(order_id="o1")], policy="balanced",
                    gateway=GatewayConfig(lost_response_rate=1.0), until=3 * 86400.0)
    state = ran.state("o1")
    assert state.captured_amount == 1000 and state.lifecycle is Lifecycle.CLOSED


def test_notifications_system_sees_what_the_customer_was_told() -> None:
    """The notifications system's view follows the messages sent to the customer,
    and agrees with the coordinator's view once synced."""
    from orderloom.actors import SystemViewChanged, SystemViewScheduled

    ran = run_world([OrderSpec(order_id="o1")])
    views = {(e.system, e.status) for e in ran.of(SystemViewChanged, "o1")}
    assert ("coordinator:notifications", "shipped") in views
    # The system announces its view changes when the updates arrive.
    assert ("notifications", "shipped") in {(e.system, e.status)
                                            for e in ran.of(SystemViewScheduled, "o1")}


def test_the_coordinator_publishes_one_snapshot_per_system_per_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn that moves the order through several states (authorized, then
    captured, assigned and submitted at once) sends each system one snapshot,
    of where the turn ended, and changes the coordinator's view of it once."""
    from orderloom.actors import DownstreamSystem
    from orderloom.actors import SyncOrder
    from orderloom.actors import SystemViewChanged
    from orderloom.runtime import handler

    turns: dict[str, list[str]] = {}

    class Recording(DownstreamSystem):
        @handler(SyncOrder)
        async def on_sync(self, msg: SyncOrder) -> None:
            envelope = self.ctx.envelope
            assert envelope is not None and envelope.causation_id is not None
            turns.setdefault(self.config.system, []).append(envelope.causation_id)
            await super().on_sync(msg)

    monkeypatch.setattr("orderloom.simulation._world.DownstreamSystem", Recording)
    ran = run_world([OrderSpec(order_id="o1"), OrderSpec(order_id="o2", at=5.0)])
    for system in ("finance", "crm", "support", "notifications"):
        changes = [e for e in ran.of(SystemViewChanged) if e.system == f"coordinator:{system}"]
        assert len(turns[system]) == len(changes) > 0
        assert len(set(turns[system])) == len(turns[system])  # one per turn
    assert len(turns["support"]) >= 6  # several per order, all from different turns


def test_events_released_together_open_one_case_per_reason() -> None:
    """Two risky assessments held behind a gap and released together each call
    for a fraud review: the order opens one case, not two."""
    from orderloom.actors import RiskAssessed, Risk, RiskRecommendation

    ran = run_world([OrderSpec(order_id="o1")], policy="balanced",
                    gateway=GatewayConfig(latency=Dist.fixed(3600.0)), until=60.0)

    def risk(seq: int, score: float, level: Risk) -> RiskAssessed:
        return RiskAssessed(order_id="o1", event_id=f"risk-{seq}", source="risk-service",
                            source_seq=seq, occurred_at=float(seq), level=level,
                            recommendation=RiskRecommendation.INVESTIGATE, provider="test",
                            score=score)

    # 2 and 3 wait for the gap at 1; 1 releases all three in one turn.
    ran.kernel.tell("order/o1", risk(2, 0.7, Risk.MEDIUM), delay=1.0)
    ran.kernel.tell("order/o1", risk(3, 0.8, Risk.HIGH), delay=2.0)
    ran.kernel.tell("order/o1", risk(1, 0.65, Risk.MEDIUM), delay=3.0)
    ran.kernel.run(120.0)
    assert ran.cases("o1") == [("high_risk_of_fraud", "fraud")]
    assert [h.reason.value for h in ran.state("o1").open_holds] == ["high_risk_of_fraud"]
    # The engine proposed one hold, not three that decide had to refuse.
    assert [r for r in ran.of(CommandRefused, "o1") if r.command_type == "OpenHold"] == []
