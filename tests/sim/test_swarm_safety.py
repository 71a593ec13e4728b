"""Safety and liveness under heavy link faults, over many seeds.

Webhooks and warehouse events are dropped, duplicated, delayed and reordered
on their way to the orders, the gateway loses answers and goes down for a
while. A good policy (``cautious``, ``balanced``) must still take no wrong
action, and no order may sit silently: each unfinished order is either within
its stage's deadline or in an open hold that a team owns.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from orderloom.actors import (
    Lifecycle,
    OrderActor,
    OrderStageEntered,
    TERMINAL_STAGES,
    load_builtin_policy,
)
from orderloom.simulation import (
    LinkFaults,
    Scenario,
    SimKernel,
    load_scenario,
    resolve_scenario,
    run_replication,
)
from orderloom.simulation._scenario import FaultSpec

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


def _swarm(hours: float, orders_per_day: float) -> Scenario:
    """webhook-chaos with every link into the orders lossy, a flat demand
    profile (so a short run sees many orders) and a gateway outage that ends
    well before the horizon."""
    base = load_scenario(resolve_scenario("webhook-chaos", ROOT / "scenarios"))
    lossy = LinkFaults(drop=0.05, duplicate=0.3, delay=0.1, delay_min=1.0, delay_max=300.0,
                       reorder=120.0)
    faults = (
        FaultSpec(kind="link", sender="gateway", recipient="order/*", link=lossy),
        FaultSpec(kind="link", sender="warehouse/*", recipient="order/*",
                  link=attrs.evolve(lossy, duplicate=0.2, reorder=60.0)),
        FaultSpec(kind="gateway_outage", start=0.25 * hours * HOUR, end=0.4 * hours * HOUR,
                  mode="errors"),
    )
    demand = attrs.evolve(base.demand, orders_per_day=orders_per_day, profile=(1.0,) * 24)
    gateway = attrs.evolve(base.gateway, lost_response_rate=0.02)
    return attrs.evolve(base, horizon=hours * HOUR, warm_up=0.0, faults=faults, demand=demand,
                        gateway=gateway)


def _run(scenario: Scenario, policy: str, seed: int, *,
         deadline_cap: float | None = None) -> tuple[dict[str, float], list[str]]:
    """One replication: its metrics, and the orders sitting silently at the
    horizon (``deadline_cap``: shorten every stuck deadline to this, so a
    short run exercises the stuck path)."""
    kernels: list[SimKernel] = []
    entered: dict[str, float] = {}

    def observe(kernel: SimKernel) -> None:
        kernels.append(kernel)
        kernel.add_sink(lambda t, _a, e: entered.__setitem__(e.order_id, t)
                        if isinstance(e, OrderStageEntered) else None)

    policy_ = load_builtin_policy(policy)
    if deadline_cap is not None:
        policy_ = attrs.evolve(policy_, stuck_deadlines={
            stage: min(d, deadline_cap) for stage, d in policy_.stuck_deadlines.items()})
    result = run_replication(attrs.evolve(scenario, seed=seed), 0, policy=policy_,
                             observe=observe)
    (kernel,) = kernels
    now = kernel.now()
    silent = []
    for address in kernel.cells():
        actor = kernel.actor(address) if kernel.is_running(address) else None
        if not isinstance(actor, OrderActor):
            continue
        state = actor.order
        paid = state.captured_amount - state.refunded_amount >= state.amount_due
        if (state.lifecycle in TERMINAL_STAGES or not state.placed
                or (state.lifecycle is Lifecycle.DELIVERED and paid)):
            continue
        if state.open_holds:  # every hold has an owner team (an invariant)
            continue
        deadline = policy_.stuck_deadlines.get(state.lifecycle)
        age = now - entered.get(state.order_id, 0.0)
        if deadline is None or age > deadline:
            silent.append(f"{state.order_id} in {state.lifecycle.value} for {age:.0f} s, "
                          f"payment {state.payment.value}, no hold")
    return result.metrics, silent


def _check_seeds(policy: str, seeds: range) -> None:
    """Over ``seeds`` of lossy, duplicating, reordering links: 0 wrong actions,
    0 unreviewed irreversible actions, and no order sits silently."""
    scenario = _swarm(hours=2.0, orders_per_day=6000.0)
    placed = wrong = unreviewed = stuck = 0.0
    silent: list[str] = []
    for seed in seeds:
        metrics, quiet = _run(scenario, policy, seed, deadline_cap=1200.0)
        stuck += metrics.get("stuck_orders", 0.0)
        placed += metrics["orders.placed"]
        wrong += metrics.get("wrong_actions", 0.0)
        unreviewed += metrics.get("unreviewed_irreversible", 0.0)
        silent += [f"seed {seed}: {q}" for q in quiet]
    # The faults met plenty of orders (about 420 a seed), and some got stuck.
    assert placed > 400 * len(seeds) and stuck > 2.5 * len(seeds)
    assert (wrong, unreviewed) == (0, 0)
    assert silent == []


@pytest.mark.parametrize("policy", ["cautious", "balanced"])
def test_good_policies_take_no_wrong_action_under_link_faults(policy: str) -> None:
    """Over 6 seeds of lossy, duplicating, reordering links (the default run's
    share of the 20-seed soak below): no wrong or unreviewed action, none silent."""
    _check_seeds(policy, range(1, 7))


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["cautious", "balanced"])
def test_good_policies_take_no_wrong_action_under_link_faults_over_20_seeds(policy: str) -> None:
    """The same over 20 seeds (the order-core issue's acceptance soak)."""
    _check_seeds(policy, range(1, 21))


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["cautious", "balanced"])
def test_good_policies_take_no_wrong_action_over_whole_days(policy: str) -> None:
    """The same over 30 seeds of a whole day each (stuck deadlines come into play)."""
    scenario = _swarm(hours=24.0, orders_per_day=3000.0)
    for seed in range(1, 31):
        metrics, silent = _run(scenario, policy, seed)
        assert metrics.get("wrong_actions", 0.0) == 0, seed
        assert metrics.get("unreviewed_irreversible", 0.0) == 0, seed
        assert silent == [], seed


def test_aggressive_is_caught_acting_while_held() -> None:
    """The aggressive policy waives review, and the new invariant sees it."""
    metrics, _ = _run(_swarm(hours=2.0, orders_per_day=6000.0), "aggressive", 1)
    assert metrics.get("wrong_actions.no_irreversible_while_held", 0.0) > 0
