"""Restart equivalence: actors crashed between turns and restored from their
store leave a simulation exactly as the uninterrupted run.

The order actors (their record is the fold of their journal, their timers
are durable) and the Automation actor (its duplicate window is the fold of
its own journal) are crashed at seeded points of a run; the final order
states, every order's journal and every report metric must equal the run
without crashes.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from pathlib import Path
from typing import Any

import attrs
import pytest

from orderloom.actors import journal_codec
from orderloom.runtime import Store
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import (
    Scenario,
    SimKernel,
    load_scenario,
    resolve_scenario,
    run_replication,
)

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


def _baseline() -> Scenario:
    """baseline for 8 hours with many duplicate orders (so screening matters)."""
    base = load_scenario(resolve_scenario("baseline", ROOT / "scenarios"))
    faults = attrs.evolve(base.demand.faults, duplicate_orders=0.05)
    demand = attrs.evolve(base.demand, orders_per_day=4000.0, faults=faults)
    return attrs.evolve(base, horizon=8 * HOUR, warm_up=0.0, demand=demand)


def _webhook_chaos() -> Scenario:
    """webhook-chaos for 8 hours: duplicated, delayed and reordered webhooks,
    so orders hold events back for gaps (and crash while holding them)."""
    base = load_scenario(resolve_scenario("webhook-chaos", ROOT / "scenarios"))
    return attrs.evolve(base, horizon=8 * HOUR, warm_up=0.0)


def _payment_outage() -> Scenario:
    """payment-outage to 18:00: the gateway is down 14:00-16:00, so requests
    time out, reconciliation timers run and orders sit stuck across crashes."""
    base = load_scenario(resolve_scenario("payment-outage", ROOT / "scenarios"))
    return attrs.evolve(base, horizon=18 * HOUR, warm_up=HOUR)


@attrs.frozen
class Outcome:
    metrics: dict[str, float]
    journals: dict[str, tuple[object, ...]]
    states: dict[str, object]
    crashes: int


def _run(scenario: Scenario, crashes: int, targets: str, seed: int = 3,
         store: Store | None = None) -> Outcome:
    """Run ``scenario`` crashing ``crashes`` times at seeded instants; each
    crash hits the automation (``targets="automation"``) or a random running
    order actor, chosen by a seeded draw (``"orders"``)."""
    landed: list[bool] = []
    kernels: list[SimKernel] = []

    def observe(kernel: SimKernel) -> None:
        kernels.append(kernel)
        draw = random.Random(seed)
        times = sorted(draw.uniform(0, scenario.horizon) for _ in range(crashes))

        def monkey() -> Generator[Any, Any, None]:
            for at in times:
                yield kernel.env.timeout(at - kernel.env.now)
                if targets == "automation":
                    landed.append(kernel.crash("automation"))
                    continue
                orders = sorted(a for a in kernel.cells()
                                if a.startswith("order/") and kernel.is_running(a))
                # Half the crashes go to orders holding events back for a gap
                # in their source's sequence, when there are any: the rarest
                # state to restore.
                holding = [a for a in orders if kernel.actor(a).state.held]  # type: ignore[attr-defined]
                pick = holding if holding and draw.random() < 0.5 else orders
                if pick:
                    landed.append(kernel.crash(draw.choice(pick)))

        kernel.env.process(monkey())

    result = run_replication(scenario, 0, observe=observe, store=store)
    (kernel,) = kernels
    store = kernel.actor("intake").store  # type: ignore[attr-defined]
    assert store is not None
    orders = sorted(s for s in store.streams() if s.startswith("order/"))
    running = [a for a in kernel.cells() if a.startswith("order/") and kernel.is_running(a)]
    return Outcome(
        metrics=result.metrics,
        journals={s: tuple(r.event for r in store.journal(s)) for s in orders},
        states={a: kernel.actor(a).state for a in sorted(running)},
        crashes=sum(landed))


def test_restart_equivalence_of_the_automation_actor() -> None:
    """100 crashes of the Automation actor: every metric equals the
    uninterrupted run's, duplicate screening included."""
    crashed = _run(_baseline(), 100, "automation")
    plain = _run(_baseline(), 0, "automation")
    assert crashed.crashes >= 95  # a crash lands between turns, nearly always idle
    assert plain.metrics["exception_rate.by_reason.duplicate_order"] > 0
    assert crashed.metrics == plain.metrics


@pytest.mark.parametrize("scenario", [_baseline, _payment_outage, _webhook_chaos],
                         ids=["baseline", "payment-outage", "webhook-chaos"])
def test_restart_equivalence_of_order_actors(scenario: Any) -> None:
    """250 crashes of running order actors, each restored from its journal and
    durable timers: the journals, final states and every metric equal the
    uninterrupted run's."""
    crashed = _run(scenario(), 250, "orders")
    plain = _run(scenario(), 0, "orders")
    assert crashed.crashes >= 200
    assert plain.metrics["throughput"] > 0
    assert crashed.journals == plain.journals
    assert crashed.states == plain.states
    assert crashed.metrics == plain.metrics


def test_restart_equivalence_of_order_actors_on_sqlite(tmp_path: Path) -> None:
    """The same on SQLite (every turn a transaction on disk, every message of
    the journal, timers and outbox encoded): 60 crashes of running orders in
    three hours of baseline leave the journals, records and metrics of the
    uninterrupted run."""
    base = _baseline()
    scenario = attrs.evolve(base, horizon=3 * HOUR, demand=attrs.evolve(
        base.demand, orders_per_day=2000.0))
    with SqliteStore(tmp_path / "crashed.db", journal_codec()) as store:
        crashed = _run(scenario, 60, "orders", store=store)
    with SqliteStore(tmp_path / "plain.db", journal_codec()) as store:
        plain = _run(scenario, 0, "orders", store=store)
    assert crashed.crashes >= 40
    assert plain.journals and plain.metrics["throughput"] > 0
    assert crashed.journals == plain.journals
    assert crashed.states == plain.states
    assert crashed.metrics == plain.metrics
