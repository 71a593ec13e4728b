"""Reports for the compare tests: every primary metric, with effects Holm keeps or withdraws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orderloom.simulation import (
    ReplicationResult,
    aggregate,
    compare,
)
from orderloom.simulation._compare import Comparison

# A baseline and a candidate holding every primary metric (and one exploratory
# twin of stuck_orders): state mismatches rise sharply; stuck orders and wrong
# actions rise by intervals that exclude 0 on their own (p = 0.0093 each) but
# not once the family is accounted for; the candidate has one sample of the
# median cycle time, too few for an interval.
PRIMARY_BASE: dict[str, list[float | None]] = {
    "stuck_orders": [10.0, 20.0, 30.0, 40.0, 50.0],
    "exception_rate": [0.10, 0.12, 0.11, 0.13, 0.12],
    "bounce_rate": [0.0] * 5,
    "manual_overrides": [3.0, 4.0, 5.0, 4.0, 3.0],
    "state_mismatches": [8.0, 9.0, 7.0, 8.0, 9.0],
    "wrong_actions": [0.0] * 5,
    "throughput": [400.0, 410.0, 395.0, 405.0, 420.0],
    "cycle_time.end_to_end.p50": [410.5, 420.25, 415.0, 418.0, 412.0],
    "handoffs": [10.0, 20.0, 30.0, 40.0, 50.0],
}
PRIMARY_CAND: dict[str, list[float | None]] = {
    **PRIMARY_BASE,
    "stuck_orders": [11.0, 22.0, 30.5, 41.5, 51.0],
    "exception_rate": [0.11, 0.11, 0.12, 0.13, 0.13],
    "state_mismatches": [48.0, 50.0, 46.0, 49.0, 47.0],
    "wrong_actions": [2.0, 3.0, 1.0, 2.0, 4.0],
    "throughput": [402.0, 411.0, 399.0, 405.0, 425.0],
    "cycle_time.end_to_end.p50": [None, None, 430.0, None, None],
    "handoffs": [11.0, 22.0, 30.5, 41.5, 51.0],
}


def report_with_gaps(metrics: Mapping[str, Sequence[float | None]], policy: str = "p",
                     ) -> dict[str, Any]:
    """A report whose replication k lacks a metric where its value is None."""
    results = [ReplicationResult(replication=k, seed=100 + k, metrics={
        name: v for name, values in metrics.items() if (v := values[k]) is not None})
        for k in range(5)]
    return aggregate(results, header={"scenario": "peak-day", "policy": policy})


def primary_comparison() -> Comparison:
    """The comparison of ``PRIMARY_CAND`` (aggressive) with ``PRIMARY_BASE`` (cautious)."""
    return compare([report_with_gaps(PRIMARY_BASE, "cautious"), report_with_gaps(PRIMARY_CAND, "aggressive")],
                   ["cautious", "aggressive"])
