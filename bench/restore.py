"""Order restore benchmark: what restoring an order actor costs, and the store
rows a finished order leaves.

Runs ``baseline`` scaled to ``--per-day`` orders a day under the SimPy kernel
with a :class:`MemoryStore` that keeps every event and says it is durable
(so the order actors snapshot as on SQLite or PostgreSQL, every 8 entries,
not every turn as on the simulator's store), and at ``--at`` hours
crashes every running order actor once, timing each restore (load, fold of
the snapshot's tail, re-arming the durable timers, rebuilding the views).
Prints one ``name=value`` line per figure:

- ``order_restore_ms_entries_<a>_<b>``: median milliseconds per restored
  order whose restore folded ``a``..``b`` journal entries after its snapshot
  (the order actor snapshots every 8 entries), and ``..._n`` how many there
  were; ``order_restore_ms_no_snapshot_entries_<a>_<b>``: the same with
  snapshots off (a second run, always made), i.e. folding the whole journal.
- ``store_rows_per_finished_order_<table>``: rows per order finished by the
  horizon, as a durable store would hold them (events: journal entries;
  inbox: message ids; timers: pending durable timers; snapshots).
- ``restored_runs_identical``: 1 if the run with every order crashed once
  ends with the same metrics as the same run without crashes (0 otherwise).

Usage: ``python bench/restore.py [--per-day 20000] [--hours 4] [--at 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import attrs

from _business import grown
from orderloom.actors.coordinator import _order_actor
from orderloom.runtime import MemoryStore
from orderloom.simulation import SimKernel
from orderloom.simulation import _world
from orderloom.simulation import Scenario, load_scenario, run_replication

ROOT = Path(__file__).resolve().parents[1]
BUCKETS = ((0, 2), (3, 5), (6, 8), (9, 20), (21, 50), (51, 10_000))


def scenario(per_day: float, hours: float) -> Scenario:
    """baseline grown to ``per_day`` orders a day (the whole business alike)."""
    s = grown(load_scenario(ROOT / "scenarios" / "baseline.yaml"), per_day)
    return attrs.evolve(s, horizon=hours * 3600.0, warm_up=0.0)


class _AsDurable(MemoryStore):
    """A MemoryStore that says it is durable, so the order actors snapshot
    and publish through the outbox as they do on SQLite or PostgreSQL (on a
    store that is not durable they snapshot every turn, and a restore never
    folds more than one turn's events)."""

    durable = True


def run(sc: Scenario, crash_at: float | None) -> tuple[dict[str, float], list[tuple[int, float]],
                                                      MemoryStore]:
    """One replication; with ``crash_at``, crash every running order then."""
    timings: list[tuple[int, float]] = []
    stores: list[MemoryStore] = []
    original = _world.MemoryStore

    def keeping(**_: Any) -> MemoryStore:
        store = _AsDurable()  # keep every event: the rows a durable store holds
        stores.append(store)
        return store

    def observe(kernel: SimKernel) -> None:
        if crash_at is None:
            return

        def monkey() -> Generator[Any, Any, None]:
            yield kernel.env.timeout(crash_at)
            store = stores[0]
            for address in sorted(a for a in kernel.cells() if a.startswith("order/")):
                if not kernel.is_running(address):
                    continue
                entries = len(store.load(address).events)
                started = time.perf_counter()
                if kernel.crash(address):
                    timings.append((entries, time.perf_counter() - started))

        kernel.env.process(monkey())

    _world.MemoryStore = keeping  # type: ignore[assignment,misc]
    try:
        result = run_replication(sc, 0, observe=observe)
    finally:
        _world.MemoryStore = original  # type: ignore[misc]
    return result.metrics, timings, stores[0]


def report(prefix: str, timings: list[tuple[int, float]]) -> None:
    for low, high in BUCKETS:
        ms = [t * 1000 for n, t in timings if low <= n <= high]
        if ms:
            print(f"{prefix}_{low}_{high}={statistics.median(ms):.3f}")
            print(f"{prefix}_{low}_{high}_n={len(ms)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-day", type=float, default=20_000.0)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--at", type=float, default=3.0, help="hours: when to crash")
    args = parser.parse_args()
    sc = scenario(args.per_day, args.hours)
    plain, _, store = run(sc, None)
    crashed, timings, _ = run(sc, args.at * 3600.0)
    report("order_restore_ms_entries", timings)
    finished = plain.get("throughput", 0.0)
    for table, rows in store.stats().items():
        print(f"store_rows_per_finished_order_{table}="
              f"{rows / finished if finished else float('nan'):.2f}")
    print(f"restored_runs_identical={int(crashed == plain)}")
    _order_actor.OrderActor.snapshot_every = 0  # the whole journal is folded
    _, timings, _ = run(sc, args.at * 3600.0)
    report("order_restore_ms_no_snapshot_entries", timings)


if __name__ == "__main__":
    main()
