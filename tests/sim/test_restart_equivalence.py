"""Restart equivalence: actors crashed between turns and restored from their
store leave a simulation exactly as the uninterrupted run.

Today the Automation actor (its duplicate window is the fold of its own
journal) is crashed at seeded points; the order actors join when they move
onto the journal.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from pathlib import Path
from typing import Any

import attrs

from orderloom.simulation import SimKernel
from orderloom.simulation._runner import run_replication
from orderloom.simulation._scenario import Scenario, load_scenario, resolve_scenario

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


def _scenario() -> Scenario:
    """baseline for 8 hours with many duplicate orders (so screening matters)."""
    base = load_scenario(resolve_scenario("baseline", ROOT / "scenarios"))
    faults = attrs.evolve(base.demand.faults, duplicate_orders=0.05)
    demand = attrs.evolve(base.demand, orders_per_day=4000.0, faults=faults)
    return attrs.evolve(base, horizon=8 * HOUR, warm_up=0.0, demand=demand)


def _run(crashes: int, seed: int = 3) -> tuple[dict[str, float], int]:
    landed: list[bool] = []

    def observe(kernel: SimKernel) -> None:
        times = sorted(random.Random(seed).uniform(0, 8 * HOUR) for _ in range(crashes))

        def monkey() -> Generator[Any, Any, None]:
            for at in times:
                yield kernel.env.timeout(at - kernel.env.now)
                landed.append(kernel.crash("automation"))

        kernel.env.process(monkey())

    result = run_replication(_scenario(), 0, observe=observe)
    return result.metrics, sum(landed)


def test_restart_equivalence_of_the_automation_actor() -> None:
    """100 crashes of the Automation actor: every metric equals the
    uninterrupted run's, duplicate screening included."""
    crashed, landed = _run(100)
    plain, _ = _run(0)
    assert landed >= 95  # a crash lands between turns, nearly always idle
    assert plain["exception_rate.by_reason.duplicate_order"] > 0
    assert crashed == plain
