"""MSER-5 finds a known transient in constructed series, and a run's warm-up
suggestion reads the stuck-order and queue series."""

from __future__ import annotations

import math
import random

import pytest

from orderloom.simulation import ReplicationResult, WarmUpSuggestion, mser, suggest_warm_up


def test_a_step_transient_is_cut_exactly_at_the_step() -> None:
    """Fifty observations at 10, then 450 at 0: MSER-5 drops exactly the first fifty."""
    cut = mser([10.0] * 50 + [0.0] * 450)
    assert (cut.observations, cut.batches, cut.reliable) == (50, 100, True)


def test_a_constant_series_needs_no_warm_up() -> None:
    """A series that never moves is cut at 0 (ties go to the earliest cut)."""
    assert mser([3.0] * 100).observations == 0


def test_a_decaying_transient_in_noise_is_cut_where_it_has_faded() -> None:
    """An exponential transient (10 e^(-t/20)) over unit noise is cut after the
    bias has fallen well inside the noise, and long before the series ends."""
    draw = random.Random(7)
    values = [10.0 * math.exp(-t / 20.0) + draw.gauss(0.0, 1.0) for t in range(2000)]
    cut = mser(values)
    # The bias is 10 e^(-3) = 0.5 (half a noise sd) at t = 60 and 0.07 at t = 100.
    assert 30 <= cut.observations <= 150 and cut.reliable


def test_a_transient_is_found_by_batches_not_single_noisy_points() -> None:
    """With batches of 1 (plain MSER) the same rule still finds a clean step;
    the batch size only changes how noise is smoothed."""
    assert mser([5.0] * 12 + [1.0] * 100, batch=1).observations == 12


def test_a_series_that_never_settles_is_flagged_unreliable() -> None:
    """A steady upward trend has no steady state: the statistic keeps falling
    to the halfway mark, where the cut lands, marked unreliable."""
    cut = mser([float(t) for t in range(200)])
    assert not cut.reliable and cut.observations == 100


def test_noise_without_a_transient_is_cut_early_if_at_all() -> None:
    """Stationary noise has no transient: the cut stays within the first tenth,
    and the late, unstable end of the series is never chosen."""
    draw = random.Random(7)
    cut = mser([draw.gauss(0.0, 1.0) for _ in range(1000)])
    assert cut.reliable and cut.observations <= 100


def test_too_little_data_or_bad_values_are_refused() -> None:
    """Fewer than two batches, a bad batch size or a non-finite value raise a ValueError saying so."""
    with pytest.raises(ValueError, match="at least 10 observations"):
        mser([1.0] * 9)
    with pytest.raises(ValueError, match="batch"):
        mser([1.0] * 20, batch=0)
    with pytest.raises(ValueError, match="finite"):
        mser([1.0] * 19 + [math.nan])


def _result(k: int, stuck: list[float], queue: list[float]) -> ReplicationResult:
    step = 100.0
    return ReplicationResult(replication=k, seed=k, metrics={}, series={
        "stuck_orders": [(i * step, v) for i, v in enumerate(stuck)],
        "queue_length.fraud": [(i * step, v) for i, v in enumerate(queue)],
        "state_mismatches": [(i * step, 50.0 if i < 150 else 0.0) for i in range(len(stuck))]})


def test_the_suggestion_is_the_latest_cut_of_the_mean_series() -> None:
    """Over the replications' mean series, the queue's transient (30 points)
    outlasts the stuck orders' (10 points): the suggestion is 3000 s, set by the
    queue, and series other than stuck orders and queues are not read."""
    results = [_result(k, [4.0] * 10 + [1.0] * 190, [8.0 + k] * 30 + [2.0] * 170)
               for k in range(3)]
    suggestion = suggest_warm_up(results, configured=600.0)
    assert isinstance(suggestion, WarmUpSuggestion)
    assert (suggestion.suggested, suggestion.series) == (3000.0, "queue_length.fraud")
    assert suggestion.too_short and suggestion.unsettled == ()
    assert [name for name, _, _ in suggestion.cuts] == ["queue_length.fraud", "stuck_orders"]
    assert not suggest_warm_up(results, configured=3600.0).too_short


def test_no_reliable_cut_gives_no_suggestion_and_names_the_unsettled_series() -> None:
    """When every series keeps growing, there is no suggestion (absent, not 0)
    and the series are named as unsettled."""
    results = [_result(0, [float(t) for t in range(200)], [float(t) for t in range(200)])]
    suggestion = suggest_warm_up(results, configured=0.0)
    assert suggestion.suggested is None and not suggestion.too_short
    assert suggestion.unsettled == ("queue_length.fraud", "stuck_orders")
