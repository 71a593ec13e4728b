"""Simulation benchmark: orders per second, memory, worker speed-up.

Prints one ``name=value`` line per figure:

- ``orders_per_s``: complete order lifecycles (placed to shipped, with all
  faults, telemetry and metrics) per second of wall time, one replication of
  ``baseline`` scaled to the demand (pickers, stock, reviewers) on one core; ``orders_per_s_target_ratio`` is that over the
  2,000/s target.
- ``kernel_msgs_per_s``: messages the kernel delivered per second in that run.
- ``peak_rss_mb`` and ``peak_rss_mb_per_10k_orders``: the run's peak resident
  memory, measured in a fresh process, and how it grows with orders (two
  run sizes, the slope); ``projected_peak_rss_mb_1m_orders_day`` extrapolates
  it to the arrival rate of a 1,000,000-order day (memory follows the orders
  in flight, since finished orders are forgotten).
- ``day_100k_orders_s``: seconds for a 100,000-order day (measured with
  ``--full``, otherwise projected from ``orders_per_s``).
- ``speedup_2_workers_ratio``: wall time of 4 replications on 1 worker over
  the same on 2 workers (the baseline measured in the same run).

Usage: ``python bench/simulate.py [--hours H] [--full]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import attrs, json, resource, sys, time
from orderloom.simulation._scenario import load_scenario
from orderloom.simulation._runner import run_replication
from orderloom.actors._team import Shift
s = load_scenario(sys.argv[1])
hours, per_day = float(sys.argv[2]), float(sys.argv[3])
# Scale the world with the demand (pickers, stock, reviewers), so a bigger
# run is the same business at a larger size, not an overloaded one.
k = max(1.0, per_day / s.demand.orders_per_day)
scale = lambda levels: {sku: int(n * k) for sku, n in levels.items()}
s = attrs.evolve(
    s, horizon=hours * 3600.0, warm_up=0.0,
    demand=attrs.evolve(s.demand, orders_per_day=per_day, customers=int(s.demand.customers * k)),
    warehouses=tuple(attrs.evolve(w, pickers=int(w.pickers * k), stock=scale(w.stock),
                                  replenish_to=scale(w.replenish_to)) for w in s.warehouses),
    teams=tuple(attrs.evolve(t, shifts=tuple(attrs.evolve(sh, staff=int(sh.staff * k))
                                             for sh in t.shifts)) for t in s.teams))
t = time.perf_counter()
r = run_replication(s, 0)
wall = time.perf_counter() - t
print(json.dumps({"orders": r.metrics.get("orders.placed", 0.0),
                  "shipped": r.metrics.get("throughput", 0.0), "wall": wall,
                  "messages": r.messages,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(hours: float, per_day: float) -> dict[str, float]:
    """One replication in a fresh process (so peak RSS is this run's alone)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT / "scenarios" / "baseline.yaml"), str(hours),
         str(per_day)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def speedup() -> float:
    """Wall time of 4 replications on 1 worker over 2 workers."""
    import attrs

    from orderloom.simulation._runner import run_replications
    from orderloom.simulation._scenario import load_scenario

    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    scenario = attrs.evolve(scenario, horizon=6 * 3600.0, warm_up=0.0)
    walls = []
    for workers in (1, 2):
        started = time.perf_counter()
        run_replications(scenario, 4, workers=workers)
        walls.append(time.perf_counter() - started)
    return walls[0] / walls[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=6.0, help="simulated hours per run")
    parser.add_argument("--full", action="store_true",
                        help="also run a real 100,000-order day (minutes)")
    args = parser.parse_args()

    small = child(args.hours, 4000.0)
    large = child(args.hours, 8000.0)
    rate = large["orders"] / large["wall"]
    print(f"orders_per_s={rate:.0f}")
    print(f"orders_per_s_target_ratio={rate / 2000.0:.2f}")
    print(f"kernel_msgs_per_s={large['messages'] / large['wall']:.0f}")
    print(f"peak_rss_mb={large['rss_mb']:.0f}")
    slope = (large["rss_mb"] - small["rss_mb"]) / max(1.0, large["orders"] - small["orders"])
    print(f"peak_rss_mb_per_10k_orders={slope * 10_000:.1f}")
    # Memory follows the orders in flight, i.e. the arrival rate (finished
    # orders are forgotten): a 1M-order day has the in-flight load of this
    # run's horizon at 1M/day.
    at_1m_rate = 1_000_000 * args.hours / 24.0
    print(f"projected_peak_rss_mb_1m_orders_day="
          f"{small['rss_mb'] + slope * (at_1m_rate - small['orders']):.0f}")
    if args.full:
        day = child(24.0, 100_000.0)
        print(f"day_100k_orders_s={day['wall']:.1f}")
        print(f"day_100k_peak_rss_mb={day['rss_mb']:.0f}")
    else:
        print(f"day_100k_orders_s={100_000 / rate:.1f}")
    print(f"speedup_2_workers_ratio={speedup():.2f}")


if __name__ == "__main__":
    main()
