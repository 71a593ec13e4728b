"""The precision rule: when a metric's interval is narrow enough, what absent
and zero mean, and how the sequential loop grows, stops and reports."""

from __future__ import annotations

import math
import random

import pytest

from orderloom.simulation import (
    MetricPrecision,
    PrecisionStatus,
    ReplicationResult,
    difference_precision,
    mean_precision,
    parse_precision,
    run_to_precision,
    values_of,
)


def test_a_precision_is_a_percentage_or_a_fraction() -> None:
    """'5%', '5 %' and '0.05' all mean 0.05; anything else says what was expected."""
    assert parse_precision("5%") == parse_precision("5 %") == parse_precision("0.05") == 0.05
    for bad in ("abc", "0%", "100%", "5", "-5%", ""):
        with pytest.raises(ValueError, match="such as 5%"):
            parse_precision(bad)


def test_a_metric_is_precise_when_its_half_width_is_within_the_target() -> None:
    """Values 9, 10, 11 have a 95% half-width of 2.48 (24.8% of the mean 10):
    precise at 25%, not at 20%."""
    table = {"throughput": [9.0, 10.0, 11.0]}
    (at25,) = mean_precision(table, 3, 0.25, ("throughput",))
    (at20,) = mean_precision(table, 3, 0.20, ("throughput",))
    assert at25.status is PrecisionStatus.PRECISE and at20.status is PrecisionStatus.IMPRECISE
    assert at25.relative == pytest.approx(0.2484, abs=1e-4)


def test_absent_zero_and_spread_around_zero_are_told_apart() -> None:
    """No value at all is absent; all zeros is precise (no spread); one value is
    not precise (spread unknown); a count missing from a replication is 0, a
    median missing from one is no sample."""
    table = {"wrong_actions": [0.0, 0.0, 0.0], "bounce_rate": [0.0, 1.0, 0.0],
             "cycle_time.end_to_end.p50": [None, 400.0, None]}
    by = {m.metric: m for m in mean_precision(
        table, 3, 0.05, ("wrong_actions", "bounce_rate", "cycle_time.end_to_end.p50",
                         "stuck_orders"))}
    assert by["wrong_actions"].status is PrecisionStatus.PRECISE
    assert by["bounce_rate"].status is PrecisionStatus.IMPRECISE
    assert by["cycle_time.end_to_end.p50"].n == 1
    assert by["cycle_time.end_to_end.p50"].status is PrecisionStatus.IMPRECISE
    assert by["stuck_orders"].status is PrecisionStatus.ABSENT
    assert by["stuck_orders"].mean is None and by["stuck_orders"].relative is None
    results = [ReplicationResult(replication=0, seed=0, metrics={"a": 1.0, "cycle_time.x": 5.0}),
               ReplicationResult(replication=1, seed=1, metrics={})]
    assert values_of(results) == {"a": [1.0, 0.0], "cycle_time.x": [5.0, None]}


def test_a_difference_is_held_to_the_baselines_mean() -> None:
    """Paired differences 1, 2, 3 (half-width 2.48) against a baseline mean of
    100 are within 5%; against a baseline of 0 the candidate's mean is the scale."""
    base = {"throughput": [100.0, 100.0, 100.0], "wrong_actions": [0.0, 0.0, 0.0]}
    cand = {"throughput": [99.0, 98.0, 97.0], "wrong_actions": [1.0, 2.0, 3.0]}
    tp, wa = difference_precision(base, cand, 3, 0.05, "B", ("throughput", "wrong_actions"))
    assert tp.metric == "throughput (B)" and tp.mean == pytest.approx(2.0)
    assert tp.reference == 100.0 and tp.status is PrecisionStatus.PRECISE
    assert wa.reference == pytest.approx(2.0) and wa.status is PrecisionStatus.IMPRECISE


def _noisy(k: int, mean: float, sd: float) -> float:
    return random.Random(f"{k}/{mean}").gauss(mean, sd)


def test_the_loop_adds_replications_until_every_metric_is_precise() -> None:
    """A tight metric is precise at once, a noisy one needs more: the loop grows
    the count (at most doubling), stops when both are within 5%, names the noisy
    one last to converge, and never loops on an absent metric."""
    table: dict[str, list[float | None]] = {}

    def extend(a: int, b: int) -> None:
        for k in range(a, b):
            table.setdefault("tight", []).append(_noisy(k, 100.0, 0.5))
            table.setdefault("noisy", []).append(_noisy(k, 100.0, 12.0))

    extend(0, 5)
    outcome = run_to_precision(
        target=0.05, start=5, cap=200, extend=extend,
        assess=lambda n: mean_precision(table, n, 0.05, ("tight", "noisy", "never")))
    assert outcome.reached and outcome.last == "noisy"
    assert outcome.rounds[0] == 5 and outcome.replications == outcome.rounds[-1] > 5
    assert all(b <= 2 * a for a, b in zip(outcome.rounds, outcome.rounds[1:]))
    by = {m.metric: m for m in outcome.metrics}
    assert by["never"].status is PrecisionStatus.ABSENT
    assert by["noisy"].relative is not None and by["noisy"].relative <= 0.05
    assert "last to converge: noisy" in outcome.lines()[0]
    assert any("never: no replication has a value" in line for line in outcome.lines())


def test_the_loop_stops_at_the_cap_and_says_so() -> None:
    """A metric that cannot reach the target stops the loop at the cap, plainly."""
    table: dict[str, list[float | None]] = {}

    def extend(a: int, b: int) -> None:
        table.setdefault("wild", []).extend(_noisy(k, 1.0, 5.0) for k in range(a, b))

    extend(0, 3)
    outcome = run_to_precision(target=0.01, start=3, cap=10, extend=extend,
                               assess=lambda n: mean_precision(table, n, 0.01, ("wild",)))
    assert not outcome.reached and outcome.replications == 10 and outcome.last is None
    assert outcome.lines()[0].startswith("precision 1% NOT reached: stopped at the cap of 10")
    assert outcome.as_dict()["reached"] is False


def test_a_run_already_precise_adds_nothing() -> None:
    """When the first replications are already precise, nothing is run."""
    def extend(a: int, b: int) -> None:
        raise AssertionError("nothing to add")

    outcome = run_to_precision(
        target=0.5, start=3, cap=10, extend=extend,
        assess=lambda n: mean_precision({"x": [9.0, 10.0, 11.0]}, n, 0.5, ("x",)))
    assert outcome.reached and outcome.replications == 3 and outcome.last == "x"
    assert "already with the 3 replications run" in outcome.lines()[0]
    with pytest.raises(ValueError, match="start"):
        run_to_precision(target=0.5, start=5, cap=4, extend=extend, assess=lambda n: [])
    assert isinstance(outcome.metrics[0], MetricPrecision) and math.isfinite(
        outcome.metrics[0].half_width or math.inf)
