"""Reporting progress by simulated time changes no result."""

from __future__ import annotations

import attrs

from orderloom.simulation import load_builtin_scenario, run_replication, run_replications


def test_a_replication_told_its_clock_measures_what_one_untold_does() -> None:
    """run_replication with on_clock gives the same metrics and series as without,
    and reports a rising clock ending at the horizon."""
    scenario = load_builtin_scenario("baseline")
    scenario = attrs.evolve(scenario, horizon=3600.0, warm_up=360.0)
    seen: list[float] = []
    told = run_replication(scenario, 0, on_clock=seen.append)
    plain = run_replication(scenario, 0)
    assert told.metrics == plain.metrics
    assert told.series == plain.series
    assert len(seen) == 100 and seen == sorted(seen) and seen[-1] == 3600.0


def test_replications_in_processes_report_clocks_and_keep_their_results() -> None:
    """run_replications in two processes with a clock callback returns what it does
    without one, and every replication's clock reaches the horizon."""
    scenario = load_builtin_scenario("baseline")
    scenario = attrs.evolve(scenario, horizon=1800.0, warm_up=180.0)
    clocks: dict[int, float] = {}
    told = run_replications(scenario, 2, workers=2,
                            clock=lambda k, t: clocks.__setitem__(k, max(t, clocks.get(k, 0.0))))
    plain = run_replications(scenario, 2, workers=2)
    assert [r.metrics for r in told] == [r.metrics for r in plain]
    assert clocks == {0: 1800.0, 1: 1800.0}
