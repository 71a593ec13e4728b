"""Confidence intervals over replications: Student's t, paired and Welch differences,
and Holm's step-down adjustment for a family of tests.

Pure standard library (``math``, ``statistics``) so the policy simulator's
verdicts do not drag in numpy or scipy. The t quantile is computed by
inverting the regularized incomplete beta function (a continued fraction
evaluated with the modified Lentz method, inverted by bisection).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import attrs

__all__ = [
    "Difference",
    "Summary",
    "holm",
    "paired_difference",
    "summarize",
    "t_quantile",
    "verdict",
    "welch_difference",
]

_CF_EPS = 1e-15
_CF_TINY = 1e-300
_CF_MAX_ITER = 20_000
_BISECT_MAX_ITER = 400


# -- Student's t --------------------------------------------------------------------


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (Numerical Recipes ``betacf``, modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _CF_TINY:
        d = _CF_TINY
    d = 1.0 / d
    h = d
    for m in range(1, _CF_MAX_ITER + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _CF_TINY:
            d = _CF_TINY
        c = 1.0 + aa / c
        if abs(c) < _CF_TINY:
            c = _CF_TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _CF_TINY:
            d = _CF_TINY
        c = 1.0 + aa / c
        if abs(c) < _CF_TINY:
            c = _CF_TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    # Only reachable for absurd shape parameters; say so rather than return noise.
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (a * math.log(x) + b * math.log1p(-x)
                 + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
    front = math.exp(log_front)
    # The fraction converges fast only on this side of the mean; use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def _t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0 and Student's t with ``df`` degrees of freedom."""
    # Computed as the tail itself (not 1 - CDF) so small tail probabilities keep precision.
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The inverse CDF of Student's t distribution.

    Accurate to about 1e-9 relative for ``df >= 1`` (the continued fraction
    converges to 1e-15; the bisection stops at 1e-13 relative). Non-integer
    ``df`` is allowed because Welch's test produces it.

    Args:
        p: the cumulative probability, strictly between 0 and 1.
        df: degrees of freedom, finite and > 0.

    Returns:
        The ``t`` with ``P(T <= t) == p``; negative for ``p < 0.5``.

    Raises:
        ValueError: if ``p`` is not in (0, 1) or ``df`` is not finite and > 0.
    """
    if not (math.isfinite(p) and 0.0 < p < 1.0):
        raise ValueError(f"t_quantile: p must lie strictly between 0 and 1, got {p!r}")
    if isinstance(df, bool) or not (math.isfinite(df) and df > 0):
        raise ValueError(f"t_quantile: df must be finite and > 0, got {df!r}")
    if p == 0.5:
        return 0.0
    tail = min(p, 1.0 - p)
    hi = 1.0
    while _t_upper_tail(hi, df) > tail:
        hi *= 2.0
        if math.isinf(hi):  # pragma: no cover - needs a tail below ~1e-300
            raise ValueError(f"t_quantile: p={p!r} is too extreme for df={df!r}")
    lo = 0.0
    for _ in range(_BISECT_MAX_ITER):
        mid = 0.5 * (lo + hi)
        if _t_upper_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    t = 0.5 * (lo + hi)
    return t if p > 0.5 else -t


# -- summaries ---------------------------------------------------------------------


def _check_confidence(where: str, confidence: float) -> None:
    if not (math.isfinite(confidence) and 0.0 < confidence < 1.0):
        raise ValueError(f"{where}: confidence must lie strictly between 0 and 1, "
                         f"got {confidence!r}")


def _finite_values(where: str, name: str, values: Sequence[float]) -> tuple[float, ...]:
    data = tuple(float(v) for v in values)
    if not data:
        raise ValueError(f"{where}: {name} is empty; need at least one value")
    bad = [(i, v) for i, v in enumerate(data) if not math.isfinite(v)]
    if bad:
        i, v = bad[0]
        raise ValueError(f"{where}: {name} must be finite, got {v!r} at index {i} "
                         f"({len(bad)} non-finite value(s))")
    return data


def _mean_and_stdev(where: str, name: str, data: tuple[float, ...]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for a single value)."""
    try:
        # fsum-based fmean can land one ulp outside [min, max]; clamp it back.
        mean = min(max(statistics.fmean(data), min(data)), max(data))
        stdev = statistics.stdev(data) if len(data) > 1 else math.nan
    except OverflowError as exc:
        raise ValueError(f"{where}: {name} is too large in magnitude to summarize") from exc
    if not math.isfinite(mean) or (len(data) > 1 and not math.isfinite(stdev)):
        raise ValueError(f"{where}: {name} is too large in magnitude to summarize")
    return mean, stdev


@attrs.frozen(kw_only=True)
class Summary:
    """The mean of replications with a two-sided Student's t confidence interval.

    Invariants: ``ci_low <= mean <= ci_high``; ``half_width >= 0``. With a
    single value the spread is unknown: ``stdev`` is nan, ``half_width`` is
    ``inf`` and the interval is ``(-inf, inf)``, so any comparison built on
    it is conservative ("no significant difference") instead of overconfident.

    Attributes:
        n: the number of values.
        mean: their arithmetic mean.
        stdev: the sample standard deviation (``n - 1`` denominator); nan if ``n == 1``.
        ci_low: lower bound of the interval, ``mean - half_width``.
        ci_high: upper bound of the interval, ``mean + half_width``.
        half_width: ``t(1 - (1 - confidence) / 2, n - 1) * stdev / sqrt(n)``.
    """

    n: int
    mean: float
    stdev: float
    ci_low: float
    ci_high: float
    half_width: float


def _summary(n: int, mean: float, stdev: float, confidence: float) -> Summary:
    if n < 2:
        return Summary(n=n, mean=mean, stdev=stdev, ci_low=-math.inf, ci_high=math.inf,
                       half_width=math.inf)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * stdev / math.sqrt(n)
    return Summary(n=n, mean=mean, stdev=stdev, ci_low=mean - half, ci_high=mean + half,
                   half_width=half)


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Summarize replications as a mean with a Student's t confidence interval.

    Args:
        values: one number per replication, all finite, at least one.
        confidence: the two-sided confidence level, strictly between 0 and 1.

    Returns:
        The :class:`Summary` (infinite interval if there is only one value).

    Raises:
        ValueError: if ``values`` is empty or holds a non-finite number, or
            ``confidence`` is out of range.
    """
    _check_confidence("summarize", confidence)
    data = _finite_values("summarize", "values", values)
    mean, stdev = _mean_and_stdev("summarize", "values", data)
    return _summary(len(data), mean, stdev, confidence)


# -- differences -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Difference:
    """A confidence interval for ``mean(a) - mean(b)``: first sample minus second.

    Invariants: ``ci_low <= mean <= ci_high``; ``significant`` is true exactly
    when the interval excludes zero (``ci_low > 0`` or ``ci_high < 0``);
    ``0 <= p_value <= 1``, and ``p_value < 1 - confidence`` exactly when
    ``significant`` (the same t statistic and degrees of freedom, up to the
    rounding of a p-value that lands on the boundary).

    Attributes:
        mean: the estimated difference ``a - b`` (positive: ``a`` is larger).
        ci_low: lower bound of the interval.
        ci_high: upper bound of the interval.
        n: the number of pairs if ``paired``, else ``len(a) + len(b)``.
        paired: whether replication ``k`` of ``a`` was paired with ``k`` of ``b``
            (common random numbers) rather than compared as independent samples.
        significant: whether the interval excludes zero.
        p_value: the two-sided p-value of the t test of "no difference"
            (1 where the interval is infinite, 0 or 1 where it collapsed).
    """

    mean: float
    ci_low: float
    ci_high: float
    n: int
    paired: bool
    significant: bool
    p_value: float


def _two_sided_p(mean: float, se: float, df: float) -> float:
    """P(|T| >= |mean / se|) for Student's t with ``df`` degrees of freedom.

    A zero standard error (every difference the same, or constant samples)
    gives 0 if the mean differs from zero and 1 if not, as the collapsed
    interval does; an unknown one (``df`` not > 0) gives 1.
    """
    if not df > 0.0:  # one value: spread unknown, never significant
        return 1.0
    if se == 0.0:
        return 0.0 if mean != 0.0 else 1.0
    t = mean / se
    # 2 * P(T > |t|), the tail computed directly so small p-values keep precision.
    return min(1.0, 2.0 * _t_upper_tail(abs(t), df))


def _difference(mean: float, half: float, n: int, *, paired: bool, p_value: float
                ) -> Difference:
    low, high = mean - half, mean + half
    return Difference(mean=mean, ci_low=low, ci_high=high, n=n, paired=paired,
                      significant=low > 0.0 or high < 0.0, p_value=p_value)


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = 0.95) -> Difference:
    """The confidence interval of ``a_k - b_k`` over paired replications.

    Use it when replication ``k`` of both samples shared a seed (common random
    numbers): pairing removes the shared noise and narrows the interval.

    Args:
        a: the first sample (the baseline), one value per replication.
        b: the second sample (the candidate), the same length as ``a``.
        confidence: the two-sided confidence level, strictly between 0 and 1.

    Returns:
        The :class:`Difference` (``paired=True``, ``n`` the number of pairs);
        with a single pair the interval is infinite and never significant.

    Raises:
        ValueError: if a sample is empty or non-finite, the lengths differ, or
            ``confidence`` is out of range.
    """
    _check_confidence("paired_difference", confidence)
    xs = _finite_values("paired_difference", "a", a)
    ys = _finite_values("paired_difference", "b", b)
    if len(xs) != len(ys):
        raise ValueError(f"paired_difference: a and b must have the same length "
                         f"(one value per replication), got {len(xs)} and {len(ys)}")
    diffs = tuple(x - y for x, y in zip(xs, ys, strict=True))
    if not all(math.isfinite(d) for d in diffs):
        raise ValueError("paired_difference: a - b overflows; values are too large in magnitude")
    s = _summary(len(diffs), *_mean_and_stdev("paired_difference", "a - b", diffs), confidence)
    p = _two_sided_p(s.mean, s.stdev / math.sqrt(s.n), s.n - 1.0) if s.n > 1 else 1.0
    return _difference(s.mean, s.half_width, s.n, paired=True, p_value=p)


def welch_difference(a: Sequence[float], b: Sequence[float],
                     confidence: float = 0.95) -> Difference:
    """The confidence interval of ``mean(a) - mean(b)`` for independent samples.

    Welch's interval: no equal-variance assumption, degrees of freedom from
    the Welch–Satterthwaite approximation. If either sample has a single value
    the interval is infinite (never significant). If both samples are
    constant the interval collapses to the observed difference (significant
    whenever the means differ), which is what deterministic runs deserve.

    Args:
        a: the first sample (the baseline).
        b: the second sample (the candidate); its length may differ from ``a``.
        confidence: the two-sided confidence level, strictly between 0 and 1.

    Returns:
        The :class:`Difference` (``paired=False``, ``n == len(a) + len(b)``).

    Raises:
        ValueError: if a sample is empty or non-finite, or ``confidence`` is
            out of range.
    """
    _check_confidence("welch_difference", confidence)
    xs = _finite_values("welch_difference", "a", a)
    ys = _finite_values("welch_difference", "b", b)
    mean_a, sd_a = _mean_and_stdev("welch_difference", "a", xs)
    mean_b, sd_b = _mean_and_stdev("welch_difference", "b", ys)
    mean = mean_a - mean_b
    if not math.isfinite(mean):
        raise ValueError("welch_difference: mean(a) - mean(b) overflows; values are too large")
    n = len(xs) + len(ys)
    if len(xs) < 2 or len(ys) < 2:
        return _difference(mean, math.inf, n, paired=False, p_value=1.0)
    va, vb = sd_a * sd_a / len(xs), sd_b * sd_b / len(ys)
    se2 = va + vb
    if se2 == 0.0:
        return _difference(mean, 0.0, n, paired=False, p_value=0.0 if mean != 0.0 else 1.0)
    # Welch–Satterthwaite, scaled by se2 so tiny variances cannot underflow.
    ra, rb = va / se2, vb / se2
    df = 1.0 / (ra * ra / (len(xs) - 1) + rb * rb / (len(ys) - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * math.sqrt(se2)
    return _difference(mean, half, n, paired=False,
                       p_value=_two_sided_p(mean, math.sqrt(se2), df))


def verdict(diff: Difference, lower_is_better: bool) -> str:
    """Judge the SECOND sample (``b``) against the FIRST (``a``).

    ``diff`` estimates ``a - b``. If lower is better, ``b`` is "better" when
    the whole interval is above zero (``b`` is significantly smaller than
    ``a``) and "worse" when it is below zero; if higher is better the signs
    swap. An interval that contains zero gives "no significant difference".

    Args:
        diff: from :func:`paired_difference` or :func:`welch_difference`
            called as ``(a, b)`` with ``a`` the baseline.
        lower_is_better: true for costs (latency, backlog), false for rewards
            (throughput, fill rate).

    Returns:
        ``"better"``, ``"worse"`` or ``"no significant difference"``.
    """
    if diff.ci_low > 0.0:  # a > b
        return "better" if lower_is_better else "worse"
    if diff.ci_high < 0.0:  # a < b
        return "worse" if lower_is_better else "better"
    return "no significant difference"


# -- multiplicity ------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down adjusted p-values, in the order given.

    Sorted ascending, the ``i``-th smallest of ``m`` p-values (``i`` from 1)
    adjusts to ``max over j <= i of min(1, (m - j + 1) * p_(j))``; rejecting
    every hypothesis whose adjusted p-value is ``<= alpha`` is exactly Holm's
    procedure (reject ``H_(1)``, ``H_(2)``, ... while ``p_(i) <= alpha / (m - i + 1)``,
    stop at the first that is not), which keeps the chance of any false
    rejection in the family at most ``alpha`` whatever the tests' dependence.
    Tied p-values get the same adjusted value, whichever order they sort in.

    Args:
        p_values: the family's unadjusted p-values, each in [0, 1]; may be empty.

    Returns:
        The adjusted p-values, one per input, in the input's order.

    Raises:
        ValueError: if a p-value is not a number in [0, 1].
    """
    ps = [float(p) for p in p_values]
    bad = [p for p in ps if not 0.0 <= p <= 1.0]  # also catches nan
    if bad:
        raise ValueError(f"holm: p-values must lie in [0, 1], got {bad[0]!r}")
    m = len(ps)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda k: ps[k])):
        # The running maximum makes the adjusted values monotone: a hypothesis
        # is rejected only if every smaller p-value's was.
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return tuple(adjusted)
