"""Every shipped scenario runs to completion with its signature effect."""

from __future__ import annotations

import functools
from pathlib import Path

import attrs
import pytest

from orderloom.actors import load_builtin_policy
from orderloom.simulation import (
    ReplicationResult,
    load_scenario,
    resolve_scenario,
    run_replication,
)

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("sim.test_scenarios")

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


@functools.cache
def run(name: str, policy: str | None = None, horizon: float = 24 * HOUR) -> ReplicationResult:
    """Replication 0 of a shipped scenario (cached: several tests read one run)."""
    scenario = load_scenario(resolve_scenario(name, ROOT / "scenarios"))
    scenario = attrs.evolve(scenario, horizon=horizon, warm_up=min(scenario.warm_up, HOUR))
    return run_replication(scenario, 0,
                           policy=load_builtin_policy(policy) if policy else None)


def metric(result: ReplicationResult, name: str) -> float:
    return result.metrics.get(name, 0.0)


def test_every_scenario_file_loads() -> None:
    """The library holds the ten scenarios and each one validates."""
    names = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
    assert names == sorted([
        "baseline", "peak-day", "payment-outage", "ambiguous-gateway", "stockout-split",
        "understaffed-support", "webhook-chaos", "downstream-lag", "fraud-wave",
        "mmc-review-desk"])
    for name in names:
        load_scenario(ROOT / "scenarios" / f"{name}.yaml")


def test_baseline_is_healthy() -> None:
    """An ordinary day: most orders ship, few get stuck, no wrong action."""
    r = run("baseline")
    placed = metric(r, "orders.placed")
    assert placed > 1500
    assert metric(r, "throughput") > 0.9 * placed
    assert metric(r, "stuck_orders.rate") < 0.01
    assert metric(r, "wrong_actions") == 0
    assert metric(r, "handler_failures") == 0


def test_peak_day_overloads_the_warehouse() -> None:
    """Triple demand with a lunchtime rush: orders get stuck and take far longer."""
    base, peak = run("baseline", horizon=16 * HOUR), run("peak-day", horizon=16 * HOUR)
    assert metric(peak, "stuck_orders.by_stage.ready_for_fulfillment") > 100
    assert metric(peak, "cycle_time.end_to_end.p95") > 3 * metric(base, "cycle_time.end_to_end.p95")


def test_payment_outage_piles_up_then_drains() -> None:
    """During the outage orders wait for payment and get stuck there; they drain after it."""
    r = run("payment-outage", horizon=20 * HOUR)
    series = r.series["in_stage.awaiting_payment"]
    during = max(v for t, v in series if 14 * HOUR <= t <= 16 * HOUR)
    before = max(v for t, v in series if 10 * HOUR <= t < 14 * HOUR)
    after = max(v for t, v in series if 17.5 * HOUR <= t <= 20 * HOUR)
    assert during > 50 and before < 10 and after < 10
    assert metric(r, "stuck_orders.by_stage.awaiting_payment") > 50
    assert metric(r, "gateway_timeouts") > 100
    assert metric(r, "wrong_actions") == 0


def test_ambiguous_gateway_reconciles_without_moving_money_twice() -> None:
    """Lost answers make outcomes unknown; orders still ship and nothing is captured twice."""
    r, base = run("ambiguous-gateway", horizon=12 * HOUR), run("baseline", horizon=12 * HOUR)
    assert metric(r, "gateway_timeouts") > 10
    assert metric(r, "wrong_actions") == 0
    assert metric(r, "throughput") > 0.97 * metric(base, "throughput")


def test_stockout_splits_and_escalates() -> None:
    """Short stock makes more warehouse assignments per order (splits, backorders)."""
    r, base = run("stockout-split", horizon=12 * HOUR), run("baseline", horizon=12 * HOUR)
    per_order = metric(r, "actions.AssignWarehouse") / metric(r, "orders.placed")
    base_per_order = metric(base, "actions.AssignWarehouse") / metric(base, "orders.placed")
    assert per_order > base_per_order + 0.05
    assert metric(r, "wrong_actions") == 0


def test_understaffed_support_breaches_slas() -> None:
    """One reviewer per team and an absent fraud team: queues and SLA breaches grow."""
    r, base = run("understaffed-support"), run("baseline")
    assert metric(r, "sla_breaches") > 5 * max(1.0, metric(base, "sla_breaches"))
    assert metric(r, "queue_length.fraud") > 1.0
    assert metric(r, "stuck_orders.by_stage.on_hold") > 10


def test_webhook_chaos_is_harmless_under_cautious() -> None:
    """Duplicated and reordered webhooks are kept out; cautious makes no wrong action."""
    r = run("webhook-chaos", horizon=12 * HOUR)
    assert metric(r, "events_ignored.duplicate") > 100
    assert metric(r, "wrong_actions") == 0


def test_downstream_lag_shows_as_mismatched_states() -> None:
    """A slow, lossy CRM and a finance outage leave downstream views disagreeing for long."""
    r, base = run("downstream-lag", horizon=12 * HOUR), run("baseline", horizon=12 * HOUR)
    assert metric(r, "state_mismatches.rate") > 0.5
    assert metric(r, "state_mismatches.rate") > 2 * metric(base, "state_mismatches.rate")
    assert metric(r, "state_mismatches.max_duration") > HOUR


def test_fraud_wave_cases_and_the_aggressive_trade_off() -> None:
    """A fraud wave fills the fraud desk under balanced; aggressive ships unpaid instead."""
    balanced = run("fraud-wave", horizon=12 * HOUR)
    aggressive = run("fraud-wave", "aggressive", horizon=12 * HOUR)
    assert metric(balanced, "exception_rate.by_reason.high_risk_of_fraud") > 0.04
    assert metric(balanced, "wrong_actions") == 0
    assert metric(aggressive, "wrong_actions.never_ship_unpaid") > 0
    assert metric(aggressive, "unreviewed_irreversible") > 0


@pytest.mark.parametrize("name", ["baseline", "webhook-chaos", "payment-outage"])
def test_cautious_makes_no_wrong_action_under_faults(name: str) -> None:
    """The cautious policy keeps wrong actions at zero whatever the faults."""
    assert metric(run(name, "cautious", horizon=12 * HOUR), "wrong_actions") == 0


def test_swarm_draws_different_faults_per_replication() -> None:
    """Swarm mode draws fault rates from each replication's seed: replications
    differ in their faults, and the same replication repeats them exactly."""
    import random

    from orderloom.simulation._runner import replication_seed, world_for
    from orderloom.simulation._scenario import Swarm

    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    scenario = attrs.evolve(scenario, swarm=Swarm(enabled=True, gateway_outage_probability=1.0))
    worlds = [world_for(scenario, scenario.policy,
                        random.Random(f"{replication_seed(1, k)}/faults")) for k in range(3)]
    rates = [w.world.gateway.lost_response_rate for w in worlds]
    assert len(set(rates)) == 3 and all(0 <= r <= 0.05 for r in rates)
    assert all(w.windows and "swarm gateway" in w.windows[0][2] for w in worlds)
    assert all(w.links and (w.links[0].sender, w.links[0].recipient) == ("gateway", "order/*")
               for w in worlds)
    again = world_for(scenario, scenario.policy, random.Random(f"{replication_seed(1, 0)}/faults"))
    assert again == worlds[0]
    short = attrs.evolve(scenario, horizon=4 * HOUR, warm_up=HOUR)
    result = run_replication(short, 0)
    expected = world_for(short, short.policy, random.Random(f"{replication_seed(1, 0)}/faults"))
    assert result.fault_windows == list(expected.windows)
