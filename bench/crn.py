"""Common random numbers: how much sharper a paired comparison is than an unpaired one.

Runs ``cautious`` and ``balanced`` on the same scenario with the same seeds
(10 replications of a day each, one worker) and prints, per metric, the
width of the 95% confidence interval of the paired difference over the
width of the unpaired (Welch) one, measured on the same runs:
``paired_unpaired_ci_width_ratio.<metric>=...``. Below 1 means the common
random numbers sharpen the comparison; 0 means both policies got exactly
the same values in every replication.

Usage: ``python bench/crn.py [SCENARIO] [--replications N] [--hours H]``
(default ``baseline``, 10 replications of 24 hours).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import attrs

from orderloom.actors import load_builtin_policy
from orderloom.simulation import (
    aggregate,
    compare,
    load_scenario,
    run_replications,
    welch_difference,
)

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("throughput", "cycle_time.end_to_end.p50", "cycle_time.end_to_end.p95",
           "stuck_orders", "exceptions", "gateway_timeouts", "state_mismatches")


def run(scenario_name: str, policy: str, replications: int, hours: float) -> dict[str, Any]:
    scenario = load_scenario(ROOT / "scenarios" / f"{scenario_name}.yaml")
    scenario = attrs.evolve(scenario, horizon=hours * 3600.0, warm_up=3600.0)
    results = run_replications(scenario, replications, policy=load_builtin_policy(policy),
                               seed=5, workers=1)
    return aggregate(results, header={"scenario": scenario_name, "policy": policy, "seed": 5})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", nargs="?", default="baseline")
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    a = run(args.scenario, "cautious", args.replications, args.hours)
    b = run(args.scenario, "balanced", args.replications, args.hours)
    rows = {row.metric: row for row in compare([a, b], ["cautious", "balanced"]).rows}
    for metric in METRICS:
        row = rows.get(metric)
        if row is None or metric not in a["metrics"] or metric not in b["metrics"]:
            continue
        paired = row.deltas[0]
        welch = welch_difference(a["metrics"][metric]["values"], b["metrics"][metric]["values"])
        if (not paired.paired or paired.ci_low is None or paired.ci_high is None
                or welch.ci_low is None or welch.ci_high is None):
            continue
        unpaired = welch.ci_high - welch.ci_low
        if unpaired > 0:
            ratio = (paired.ci_high - paired.ci_low) / unpaired
            print(f"paired_unpaired_ci_width_ratio.{metric}={ratio:.3f}")


if __name__ == "__main__":
    main()
