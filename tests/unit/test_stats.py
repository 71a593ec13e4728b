"""Replication statistics: t quantiles, confidence intervals, paired and Welch verdicts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderloom.simulation import Summary, summarize
from orderloom.simulation._stats import Difference, holm, paired_difference, t_quantile, verdict, welch_difference

# Replication outputs: finite and moderate, so sums and squares cannot overflow.
values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(values, min_size=1, max_size=30)
confidences = st.floats(min_value=0.5, max_value=0.999)

# -- t_quantile --------------------------------------------------------------------


@pytest.mark.parametrize(("p", "df", "expected"), [
    (0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 5, 2.5706), (0.975, 10, 2.2281),
    (0.975, 30, 2.0423), (0.975, 1000, 1.9623), (0.95, 10, 1.8125), (0.995, 3, 5.8409),
])
def test_t_quantile_matches_printed_tables(p: float, df: int, expected: float) -> None:
    """t_quantile reproduces the four-decimal values of a printed t table."""
    assert t_quantile(p, df) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize(("p", "df", "expected"), [
    # Reference values from scipy.stats.t.ppf (scipy 1.17), including non-integer df.
    (0.975, 1, 12.706204736174694), (0.975, 2, 4.302652729749462),
    (0.9995, 1, 636.6192487687897), (0.999, 7.3, 4.688865993538372),
    (0.6, 2.5, 0.2814595127485477), (0.975, 3.5, 2.9400886379827282),
    (0.975, 1e6, 1.959966356814107),
])
def test_t_quantile_matches_reference_to_1e_9(p: float, df: float, expected: float) -> None:
    """t_quantile agrees with a reference implementation to 1e-9 relative."""
    assert t_quantile(p, df) == pytest.approx(expected, rel=1e-9)


def test_t_quantile_has_closed_forms_for_one_and_two_df() -> None:
    """For df 1 (Cauchy) and df 2 the quantile equals its closed form."""
    for p in (0.55, 0.8, 0.9, 0.99, 0.999):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
        closed = (2 * p - 1) / math.sqrt(2 * p * (1 - p))
        assert t_quantile(p, 2) == pytest.approx(closed, rel=1e-10)


@given(p=st.floats(min_value=1e-6, max_value=1 - 1e-6), df=st.integers(1, 500))
def test_t_quantile_is_antisymmetric(p: float, df: int) -> None:
    """t(p) == -t(1 - p), and the median is zero."""
    assert t_quantile(p, df) == pytest.approx(-t_quantile(1 - p, df), rel=1e-9, abs=1e-12)
    assert t_quantile(0.5, df) == 0.0


@given(df=st.integers(1, 200))
def test_t_quantile_shrinks_toward_normal_as_df_grows(df: int) -> None:
    """t(0.975, df) decreases with df and stays above the normal quantile 1.95996."""
    assert t_quantile(0.975, df) > t_quantile(0.975, df + 1) > 1.959963984540054


@pytest.mark.parametrize(("p", "df", "match"), [
    (0.0, 5, "p must"), (1.0, 5, "p must"), (math.nan, 5, "p must"), (0.9, 0, "df must"),
    (0.9, -1, "df must"), (0.9, math.inf, "df must"), (0.9, math.nan, "df must"),
])
def test_t_quantile_rejects_bad_arguments(p: float, df: float, match: str) -> None:
    """A p outside (0, 1) or a df that is not finite and positive raises ValueError."""
    with pytest.raises(ValueError, match=match):
        t_quantile(p, df)


# -- summarize ---------------------------------------------------------------------


def test_summarize_computes_the_textbook_interval() -> None:
    """1..5 gives mean 3, stdev sqrt(2.5) and half-width t(0.975, 4) * stdev / sqrt(5)."""
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (s.n, s.mean) == (5, 3.0)
    assert s.stdev == pytest.approx(math.sqrt(2.5))
    assert s.half_width == pytest.approx(half)
    assert (s.ci_low, s.ci_high) == pytest.approx((3.0 - half, 3.0 + half))


def test_summarize_single_value_has_an_infinite_interval() -> None:
    """One replication has unknown spread: nan stdev, infinite half-width and interval."""
    s = summarize([4.0])
    assert (s.n, s.mean, s.half_width, s.ci_low, s.ci_high) == (1, 4.0, math.inf, -math.inf,
                                                                math.inf)
    assert math.isnan(s.stdev)


def test_summarize_constant_values_have_a_zero_width_interval() -> None:
    """Identical replications give stdev 0 and the interval (mean, mean)."""
    assert summarize([2.5, 2.5, 2.5]) == Summary(n=3, mean=2.5, stdev=0.0, ci_low=2.5,
                                                 ci_high=2.5, half_width=0.0)


@pytest.mark.parametrize(("data", "confidence", "match"), [
    ([], 0.95, "empty"), ([1.0, math.nan], 0.95, "finite.*index 1"),
    ([math.inf, 1.0], 0.95, "finite.*index 0"), ([1.0, 2.0], 1.0, "confidence"),
    ([1.0, 2.0], 0.0, "confidence"), ([1e308, 1e308], 0.95, "too large"),
])
def test_summarize_rejects_bad_input(data: list[float], confidence: float, match: str) -> None:
    """Empty, non-finite or overflowing values and a bad confidence raise ValueError."""
    with pytest.raises(ValueError, match=match):
        summarize(data, confidence)


@given(data=samples, confidence=confidences)
def test_summary_interval_contains_the_mean(data: list[float], confidence: float) -> None:
    """ci_low <= mean <= ci_high with a non-negative half-width, for any sample."""
    s = summarize(data, confidence)
    assert s.n == len(data)
    assert s.half_width >= 0
    assert s.ci_low <= s.mean <= s.ci_high
    assert min(data) <= s.mean <= max(data)


@given(data=st.lists(values, min_size=2, max_size=30))
def test_higher_confidence_gives_a_wider_interval(data: list[float]) -> None:
    """The 99% half-width is at least the 90% one."""
    assert summarize(data, 0.99).half_width >= summarize(data, 0.90).half_width


# -- differences -------------------------------------------------------------------


def test_paired_difference_matches_the_paired_t_interval() -> None:
    """Differences 1, 1, 1, 0.5 give mean 0.875 and the paired t interval (0.4772, 1.2728)."""
    d = paired_difference([10.0, 12.0, 11.0, 13.0], [9.0, 11.0, 10.0, 12.5])
    assert (d.n, d.paired, d.significant) == (4, True, True)
    assert d.mean == pytest.approx(0.875)
    assert (d.ci_low, d.ci_high) == pytest.approx((0.47719421183953653, 1.2728057881604635))


def test_welch_difference_matches_the_welch_interval() -> None:
    """mean(1..5) - mean(2, 4, 6) = -1 with the Welch interval (-4.9637, 2.9637)."""
    d = welch_difference([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0])
    assert (d.n, d.paired, d.significant) == (8, False, False)
    assert d.mean == pytest.approx(-1.0)
    assert (d.ci_low, d.ci_high) == pytest.approx((-4.963725522186273, 2.963725522186273))


def test_welch_difference_of_constant_samples_is_exact() -> None:
    """Two constant samples collapse the interval onto the difference, significant if non-zero."""
    d = welch_difference([3.0, 3.0], [1.0, 1.0, 1.0])
    assert d == Difference(mean=2.0, ci_low=2.0, ci_high=2.0, n=5, paired=False,
                           significant=True, p_value=0.0)


def test_single_replications_are_never_significant() -> None:
    """A sample with one value gives an infinite interval, in both paired and Welch form."""
    assert not paired_difference([1.0], [100.0]).significant
    welch = welch_difference([1.0], [100.0, 101.0])
    assert (welch.ci_low, welch.ci_high, welch.significant) == (-math.inf, math.inf, False)


@pytest.mark.parametrize(("a", "b", "match"), [
    ([1.0, 2.0], [1.0], "same length"), ([], [], "a is empty"), ([1.0], [], "b is empty"),
    ([1.0, math.nan], [1.0, 2.0], "a must be finite"),
    ([1e308, -1e308], [-1e308, 1e308], "overflows"),
])
def test_paired_difference_rejects_bad_input(a: list[float], b: list[float], match: str) -> None:
    """Unequal lengths, empty or non-finite samples and overflowing differences raise ValueError."""
    with pytest.raises(ValueError, match=match):
        paired_difference(a, b)


@pytest.mark.parametrize(("a", "b", "confidence", "match"), [
    ([], [1.0, 2.0], 0.95, "a is empty"), ([1.0, 2.0], [math.inf], 0.95, "b must be finite"),
    ([1.0, 2.0], [1.0, 2.0], 1.5, "confidence"),
])
def test_welch_difference_rejects_bad_input(a: list[float], b: list[float], confidence: float,
                                            match: str) -> None:
    """Empty or non-finite samples and a bad confidence raise ValueError."""
    with pytest.raises(ValueError, match=match):
        welch_difference(a, b, confidence)


@given(data=samples, confidence=confidences)
def test_paired_difference_of_identical_samples_is_zero(data: list[float],
                                                         confidence: float) -> None:
    """Comparing a sample with itself gives difference 0, never significant."""
    d = paired_difference(data, data, confidence)
    assert (d.mean, d.significant, d.n) == (0.0, False, len(data))
    assert verdict(d, lower_is_better=True) == "no significant difference"


@given(data=st.lists(values, min_size=2, max_size=30), confidence=confidences)
def test_welch_difference_of_identical_samples_is_zero(data: list[float],
                                                        confidence: float) -> None:
    """Welch's interval of a sample against itself is centred on 0 and not significant."""
    d = welch_difference(data, data, confidence)
    assert (d.mean, d.significant) == (0.0, False)


@given(a=samples, shift=values)
def test_paired_difference_interval_contains_its_mean(a: list[float], shift: float) -> None:
    """The paired interval always contains its point estimate, and flags exactly when 0 is out."""
    d = paired_difference(a, [x + shift for x in a])
    assert d.ci_low <= d.mean <= d.ci_high
    assert d.significant == (d.ci_low > 0 or d.ci_high < 0)


# -- verdict -----------------------------------------------------------------------


def _diff(low: float, high: float) -> Difference:
    significant = low > 0 or high < 0
    return Difference(mean=(low + high) / 2, ci_low=low, ci_high=high, n=10, paired=True,
                      significant=significant, p_value=0.01 if significant else 0.5)


@pytest.mark.parametrize(("low", "high", "lower_is_better", "expected"), [
    (1.0, 2.0, True, "better"),  # a - b > 0: b is lower
    (1.0, 2.0, False, "worse"),
    (-2.0, -1.0, True, "worse"),  # a - b < 0: b is higher
    (-2.0, -1.0, False, "better"),
    (-1.0, 1.0, True, "no significant difference"),
    (0.0, 1.0, False, "no significant difference"),  # touching zero is not excluding it
])
def test_verdict_judges_the_second_sample(low: float, high: float, lower_is_better: bool,
                                          expected: str) -> None:
    """verdict judges b against a from the interval of a - b and the metric's direction."""
    assert verdict(_diff(low, high), lower_is_better) == expected


def test_verdict_direction_end_to_end() -> None:
    """A candidate with lower latency than the baseline is 'better' when lower is better."""
    baseline = [10.0, 11.0, 12.0, 10.5, 11.5]
    candidate = [x - 2.0 for x in baseline]
    diff = paired_difference(baseline, candidate)
    assert verdict(diff, lower_is_better=True) == "better"
    assert verdict(diff, lower_is_better=False) == "worse"


# -- p-values ----------------------------------------------------------------------


def _closed_form_p(t: float, df: int) -> float:
    """Two-sided p of Student's t for df 1, 2 and 3, from the closed-form CDFs."""
    t = abs(t)
    if df == 1:
        return 1.0 - 2.0 / math.pi * math.atan(t)
    if df == 2:
        return 1.0 - t / math.sqrt(2.0 + t * t)
    x = t / math.sqrt(3.0)
    return 1.0 - 2.0 / math.pi * (x / (1.0 + x * x) + math.atan(x))


@pytest.mark.parametrize(("a", "b", "t", "df"), [
    ([10.0, 12.0], [9.0, 10.0], 3.0, 1),  # differences 1, 2: mean 1.5, se 0.5
    ([10.0, 12.0, 11.0], [9.0, 11.0, 8.0], 2.5, 2),  # 1, 1, 3: mean 5/3, se 2/3
    ([10.0, 12.0, 11.0, 13.0], [9.0, 11.0, 10.0, 12.5], 7.0, 3),  # mean 0.875, se 0.125
])
def test_paired_p_value_matches_the_closed_form(a: list[float], b: list[float], t: float,
                                                 df: int) -> None:
    """The paired p-value is the two-sided tail of t = mean / se with n - 1 df."""
    assert paired_difference(a, b).p_value == pytest.approx(_closed_form_p(t, df), rel=1e-9)


def test_welch_p_value_matches_a_reference() -> None:
    """Welch's p for 1..5 against 2, 4, 6 (t = -0.7385, df = 3.533) is 0.50621."""
    # Reference: scipy.stats.ttest_ind(..., equal_var=False).pvalue = 0.5062141716...
    assert welch_difference([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0]).p_value == (
        pytest.approx(0.50621417, rel=1e-6))


def test_degenerate_intervals_have_degenerate_p_values() -> None:
    """One pair: p = 1; a collapsed interval: p = 0 off zero and 1 on it."""
    assert paired_difference([1.0], [100.0]).p_value == 1.0
    assert welch_difference([1.0], [100.0, 101.0]).p_value == 1.0
    assert paired_difference([3.0, 4.0], [1.0, 2.0]).p_value == 0.0
    assert paired_difference([3.0, 4.0], [3.0, 4.0]).p_value == 1.0
    assert welch_difference([3.0, 3.0], [3.0, 3.0, 3.0]).p_value == 1.0


@given(a=st.lists(values, min_size=2, max_size=30), shift=values,
       noise=st.lists(st.floats(-10, 10), min_size=30, max_size=30))
def test_p_value_agrees_with_the_interval(a: list[float], shift: float,
                                          noise: list[float]) -> None:
    """p < 0.05 exactly when the 95% interval excludes zero (away from the boundary)."""
    b = [x + shift + e for x, e in zip(a, noise, strict=False)]
    for d in (paired_difference(a, b), welch_difference(a, b)):
        assert 0.0 <= d.p_value <= 1.0
        if abs(d.p_value - 0.05) > 1e-9:
            assert d.significant == (d.p_value < 0.05)


# -- Holm ------------------------------------------------------------------------


@pytest.mark.parametrize(("p_values", "adjusted", "rejected"), [
    # Worked by hand. Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> 0.06
    # (the running maximum); at 5%: reject 0.005 and 0.01, stop at 0.03.
    ((0.01, 0.04, 0.03, 0.005), (0.03, 0.06, 0.06, 0.02), (True, False, False, True)),
    # Ties get one adjusted value: 0.02*3 = 0.06 for all three, none rejected ...
    ((0.02, 0.02, 0.02), (0.06, 0.06, 0.06), (False, False, False)),
    # ... or all: 0.01*3 = 0.03, 0.01*2 -> 0.03, 0.04*1 = 0.04.
    ((0.01, 0.04, 0.01), (0.03, 0.04, 0.03), (True, True, True)),
    # All significant: 8 * 0.001, 7 * 0.002, 6 * 0.003, 5 * 0.004, then the maximum 0.02.
    ((0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008),
     (0.008, 0.014, 0.018, 0.02, 0.02, 0.02, 0.02, 0.02), (True,) * 8),
    # None: every raw p is under 5%, none survives: 0.02*4 = 0.08 first.
    ((0.02, 0.03, 0.04, 0.045), (0.08, 0.09, 0.09, 0.09), (False,) * 4),
    # Step-down stops at the first failure: 0.045 alone would pass alpha / 1.
    ((0.001, 0.04, 0.045), (0.003, 0.08, 0.08), (True, False, False)),
    # Capped at 1; a single test is its own p-value; an empty family is empty.
    ((0.2, 0.5, 0.9, 1.0), (0.8, 1.0, 1.0, 1.0), (False,) * 4),
    ((0.03,), (0.03,), (True,)),
    ((), (), ()),
])
def test_holm_matches_hand_computed_tables(p_values: tuple[float, ...],
                                           adjusted: tuple[float, ...],
                                           rejected: tuple[bool, ...]) -> None:
    """Holm's adjusted p-values, and the rejections at 5%, match tables worked by hand."""
    got = holm(p_values)
    assert got == pytest.approx(adjusted, abs=1e-12)
    assert tuple(p <= 0.05 + 1e-12 for p in got) == rejected


def _step_down(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's procedure as its definition reads, to check ``holm`` against."""
    order = sorted(range(len(p_values)), key=lambda k: p_values[k])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


# p-values on a grid, so that ties are common and no value sits on a threshold by rounding.
grid_p = st.integers(0, 1000).map(lambda k: k / 1000 + 1e-7 if k < 1000 else 1.0)


@given(p_values=st.lists(grid_p, max_size=12), data=st.data())
def test_holm_is_the_step_down_procedure(p_values: list[float], data: st.DataObject) -> None:
    """Adjusted p <= alpha rejects what the step-down definition rejects; the
    adjustment never lowers a p-value, stays within 1 and ignores input order."""
    adjusted = holm(p_values)
    assert [p <= 0.05 for p in adjusted] == _step_down(p_values, 0.05)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(p_values, adjusted, strict=True))
    shuffled = data.draw(st.permutations(range(len(p_values))))
    again = holm([p_values[k] for k in shuffled])
    assert again == tuple(adjusted[k] for k in shuffled)


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5])
def test_holm_rejects_a_value_that_is_no_p_value(bad: float) -> None:
    """A p-value outside [0, 1], or NaN, raises ValueError."""
    with pytest.raises(ValueError, match="p-values must lie in"):
        holm([0.01, bad])
