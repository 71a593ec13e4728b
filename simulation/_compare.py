"""Comparing simulation reports metric by metric against a baseline.

The first report is the baseline. For every other report and every metric,
the difference is estimated with a 95% confidence interval:

* **paired** (:func:`._stats.paired_difference`) when both reports ran the
  same ``replication_seeds`` and hold as many values for the metric: under
  common random numbers replication ``k`` of both faced the same world, so
  pairing removes the shared noise;
* **Welch** (:func:`._stats.welch_difference`) otherwise.

Deltas are *candidate minus baseline* (a positive delta means the
candidate's number is larger); the verdict judges the candidate with
:func:`._stats.verdict`, or is ``—`` for informational metrics (no better
direction) and ``n/a`` when the difference cannot be computed (a
non-finite value, or fewer than two values or pairs).

With about a hundred metrics, some 95% verdicts are wrong by chance alone.
The :data:`._sections.PRIMARY_METRICS` are the ones a decision rests on: for
each candidate they form one family, and their verdicts are Holm's step-down
decisions on the p-values of the same tests (:func:`._stats.holm`), so the
chance of any false "better" or "worse" among them is at most 5%. A primary
metric with no verdict (``n/a``) or no direction (``—``) is left out of the
family. Every other metric is :attr:`Role.EXPLORATORY`: its verdict is its own
unadjusted 95% one, a lead to follow up rather than a finding.

Only like is compared with like: reports that differ in their world (the
scenario's content), horizon, warm-up or replication seeds are refused
(:class:`IncomparableReports`) unless the caller allows it, and then every
difference is named in the warnings.

A count one report lacks counts as zeros there, as ``aggregate`` does within
a run: a breakdown key such as ``exception_rate.by_reason.fraud`` only appears
when the reason occurred, so its absence means it occurred 0 times. Such
cells are flagged (``imputed``) and the renderers say so. A statistic of
samples (a cycle-time quantile, a stuck spell's age, time in team) is never
taken as 0: replications without a sample are left out (pairs need both
sides), and where a side has too few there is no verdict (``n/a``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._result import is_sampled, metric_info
from ._sections import PRIMARY_METRICS, metric_estimate, ordered_sections
from ._series import Timeline, timeline_of
from ._stats import Difference, holm, paired_difference, verdict, welch_difference

__all__ = [
    "Comparison",
    "IncomparableReports",
    "ComparisonRow",
    "Delta",
    "Estimate",
    "FAMILY_ALPHA",
    "Role",
    "compare_documents",
]

#: The family-wise error rate over the primary metrics: 5%, as the 95% intervals.
FAMILY_ALPHA = 0.05


class IncomparableReports(ValueError):
    """Reports that did not run the same world, horizon, warm-up and seeds.

    Attributes:
        differences: one sentence per difference, naming both reports' values.
    """

    def __init__(self, differences: Sequence[str]) -> None:
        self.differences = tuple(differences)
        super().__init__(
            "these reports are not like with like, so their differences are not the "
            "policy's alone:\n  " + "\n  ".join(self.differences)
            + "\n(compare them anyway with --allow-different)")


# What must agree between two reports for a comparison to credit the policy:
# report header key, and how to say it.
_LIKE_WITH_LIKE = (
    ("scenario", "scenario"),
    ("world", "scenario content (world digest)"),
    ("horizon", "horizon (s)"),
    ("warm_up", "warm-up (s)"),
    ("replication_seeds", "replication seeds"),
)


def differences(base: Mapping[str, Any], cand: Mapping[str, Any], labels: Sequence[str]
                ) -> list[str]:
    """What differs between two reports besides the policy (keys neither has are skipped)."""
    found = []
    for key, what in _LIKE_WITH_LIKE:
        a, b = base.get(key), cand.get(key)
        if (a is not None or b is not None) and a != b:
            if key == "replication_seeds" and isinstance(a, list) and isinstance(b, list):
                a, b = f"{len(a)} seeds {a[:3]}...", f"{len(b)} seeds {b[:3]}..."
            found.append(f"{what} differs: {labels[0]} has {a!r}, {labels[1]} has {b!r}")
    return found


INFORMATIONAL = "—"
NOT_COMPUTABLE = "n/a"
NO_DIFFERENCE = "no significant difference"


class Role(enum.Enum):
    """How a metric's verdict is reached."""

    PRIMARY = "primary"  # one of PRIMARY_METRICS: Holm-adjusted over the family
    EXPLORATORY = "exploratory"  # its own unadjusted 95% verdict


@attrs.frozen(kw_only=True)
class Estimate:
    """One report's mean and 95% CI for a metric; None where unknown or non-finite.

    Attributes:
        mean: the mean over replications.
        ci_low: lower bound of the interval.
        ci_high: upper bound of the interval.
        imputed: the report lacked the metric; it is counted as zeros.
        no_sample: the report lacked a statistic of samples: it had none.
        n: the replications with a sample, when fewer than all (None: all).
        of: the replications in the report.
    """

    mean: float | None
    ci_low: float | None
    ci_high: float | None
    imputed: bool = False
    no_sample: bool = False
    n: int | None = None
    of: int | None = None


@attrs.frozen(kw_only=True)
class Delta:
    """A candidate against the baseline for one metric: ``candidate - baseline``.

    Attributes:
        delta: the estimated difference; None if it cannot be computed.
        ci_low: lower bound of its 95% CI (None if not computable).
        ci_high: upper bound of its 95% CI.
        paired: True for a paired (common random numbers) interval, False for Welch.
        verdict: ``better`` / ``worse`` / ``no significant difference`` for the
            candidate, ``—`` for informational metrics, ``n/a`` if not computable.
            For a primary metric, Holm's decision over the family; otherwise the
            unadjusted 95% one. ``--fail-if-worse`` gates on it.
        n: the pairs (paired) or the fewer of the two sides' values (Welch)
            the difference is estimated from; 0 if the values are unusable.
        p_value: the unadjusted two-sided p-value; None if not computable.
        p_adjusted: the Holm-adjusted p-value for a primary metric in the
            family; None for exploratory metrics and those left out.
    """

    delta: float | None
    ci_low: float | None
    ci_high: float | None
    paired: bool
    verdict: str
    n: int = 0
    p_value: float | None = None
    p_adjusted: float | None = None


@attrs.frozen(kw_only=True)
class ComparisonRow:
    """One metric across all reports.

    Attributes:
        metric: the dotted metric name.
        section: the report section it belongs to (health metrics first).
        role: primary (Holm-adjusted verdicts) or exploratory.
        unit: its unit.
        lower_is_better: its direction; None for informational metrics.
        estimates: one per report, baseline first.
        deltas: one per non-baseline report, in report order.
    """

    metric: str
    section: str
    role: Role
    unit: str
    lower_is_better: bool | None
    estimates: tuple[Estimate, ...]
    deltas: tuple[Delta, ...]


@attrs.frozen(kw_only=True)
class Comparison:
    """Reports side by side against the first (the baseline).

    Attributes:
        labels: one per report, baseline first.
        rows: one per metric: the primary metrics first, in
            :data:`PRIMARY_METRICS` order, then the exploratory ones in report order.
        warnings: things the reader should know (e.g. scenarios differ).
        primary_absent: primary metrics that no report holds (so no row).
        timelines: each report's time series, for charts, in report order.
    """

    labels: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]
    warnings: tuple[str, ...]
    primary_absent: tuple[str, ...] = ()
    timelines: tuple[Timeline, ...] = ()

    @property
    def primary(self) -> tuple[ComparisonRow, ...]:
        """The primary metrics' rows."""
        return tuple(r for r in self.rows if r.role is Role.PRIMARY)

    @property
    def exploratory(self) -> tuple[ComparisonRow, ...]:
        """Every other row."""
        return tuple(r for r in self.rows if r.role is Role.EXPLORATORY)

    def family_size(self, candidate: int) -> int:
        """How many primary metrics the Holm family of candidate ``candidate``
        (0 for the first report after the baseline) holds."""
        return sum(1 for r in self.primary if r.deltas[candidate].p_adjusted is not None)


def _values(report: Mapping[str, Any], metric: str) -> tuple[list[float | None] | None, bool]:
    """(values, imputed): the metric's per-replication values, or zeros if a
    count is absent. A statistic of samples keeps None where a replication
    had no sample, and is None as a whole when the report has none.

    None means the values are unusable (a non-finite or null entry, or none at all).
    """
    sampled = is_sampled(metric)
    metrics = report.get("metrics")
    entry = metrics.get(metric) if isinstance(metrics, Mapping) else None
    if entry is None:
        if sampled:
            return None, False
        seeds = report.get("replication_seeds")
        n = len(seeds) if isinstance(seeds, list) else 0
        return ([0.0] * n if n else None), True
    raw = entry.get("values") if isinstance(entry, Mapping) else None
    if not isinstance(raw, list) or not raw:
        return None, False
    out: list[float | None] = []
    for v in raw:
        if v is None and sampled:
            out.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None, False
        out.append(float(v))
    return out, False


def _estimate(report: Mapping[str, Any], metric: str) -> Estimate:
    metrics = report.get("metrics")
    entry = metrics.get(metric) if isinstance(metrics, Mapping) else None
    if entry is None:
        if is_sampled(metric):
            return Estimate(mean=None, ci_low=None, ci_high=None, no_sample=True)
        values, imputed = _values(report, metric)
        zero = 0.0 if values is not None else None
        return Estimate(mean=zero, ci_low=zero, ci_high=zero, imputed=imputed)
    mean, low, high = metric_estimate(entry)
    values = entry.get("values") if isinstance(entry, Mapping) else None
    n = entry.get("n") if isinstance(entry, Mapping) else None
    if isinstance(values, list) and isinstance(n, int) and n < len(values):
        return Estimate(mean=mean, ci_low=low, ci_high=high, n=n, of=len(values))
    return Estimate(mean=mean, ci_low=low, ci_high=high)


def _same_seeds(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    seeds_a, seeds_b = a.get("replication_seeds"), b.get("replication_seeds")
    return isinstance(seeds_a, list) and bool(seeds_a) and seeds_a == seeds_b


def _delta(base: Mapping[str, Any], cand: Mapping[str, Any], metric: str,
           lower_is_better: bool | None) -> Delta:
    a, _ = _values(base, metric)
    b, _ = _values(cand, metric)
    paired = _same_seeds(base, cand) and a is not None and b is not None and len(a) == len(b)
    if a is None or b is None:
        return Delta(delta=None, ci_low=None, ci_high=None, paired=paired,
                     verdict=NOT_COMPUTABLE)
    if paired:  # only replications where both sides have a value (a sample)
        both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        xs, ys = [x for x, _ in both], [y for _, y in both]
    else:
        xs, ys = [x for x in a if x is not None], [y for y in b if y is not None]
    n = min(len(xs), len(ys))
    if n < 2:  # no interval from fewer than two
        return Delta(delta=None, ci_low=None, ci_high=None, paired=paired,
                     verdict=NOT_COMPUTABLE, n=n)
    try:
        diff: Difference = paired_difference(xs, ys) if paired else welch_difference(xs, ys)
    except ValueError:  # overflow on absurd magnitudes: say so rather than guess
        return Delta(delta=None, ci_low=None, ci_high=None, paired=paired,
                     verdict=NOT_COMPUTABLE, n=n)
    judged = INFORMATIONAL if lower_is_better is None else verdict(diff, lower_is_better)
    # The statistics estimate baseline - candidate; readers expect candidate - baseline.
    return Delta(delta=-diff.mean + 0.0, ci_low=-diff.ci_high, ci_high=-diff.ci_low,
                 paired=paired, verdict=judged, n=n, p_value=diff.p_value)


def _holm_deltas(deltas: Sequence[Delta]) -> list[Delta]:
    """One candidate's primary deltas with Holm's decision as their verdict.

    The family is every delta with a p-value and a direction: ``n/a`` (too
    few values or pairs) and ``—`` (no better direction) are left out.
    """
    family = [(i, d.p_value) for i, d in enumerate(deltas)
              if d.p_value is not None and d.verdict not in (NOT_COMPUTABLE, INFORMATIONAL)]
    adjusted = holm([p for _, p in family])
    out = list(deltas)
    for (i, _), p in zip(family, adjusted, strict=True):
        d = deltas[i]
        # Holm only withdraws significance: the direction is the interval's, and a
        # verdict the unadjusted interval does not support is never added.
        judged = d.verdict if p <= FAMILY_ALPHA else NO_DIFFERENCE
        out[i] = attrs.evolve(d, p_adjusted=p, verdict=judged)
    return out


def _direction(reports: Sequence[Mapping[str, Any]], metric: str) -> tuple[str, bool | None]:
    """Unit and direction as the reports recorded them, else from the metric catalogue."""
    for report in reports:
        metrics = report.get("metrics")
        entry = metrics.get(metric) if isinstance(metrics, Mapping) else None
        if isinstance(entry, Mapping) and "lower_is_better" in entry:
            lib = entry["lower_is_better"]
            return str(entry.get("unit", "")), lib if isinstance(lib, bool) else None
    info = metric_info(metric)
    return info.unit, info.lower_is_better


def compare_documents(reports: Sequence[Mapping[str, Any]], labels: Sequence[str], *,
                      allow_different: bool = False) -> Comparison:
    """Compare each report document with the first (the baseline), metric by
    metric (what the public :func:`orderloom.simulation.compare` does with runs).

    Args:
        reports: ``report.json`` documents (from ``aggregate`` or loaded), at
            least one; the first is the baseline.
        labels: a name per report, in the same order (e.g. the policy names).
        allow_different: compare reports that ran another world, horizon,
            warm-up or seeds than the baseline (each difference becomes a warning).

    Returns:
        The :class:`Comparison`.

    Raises:
        IncomparableReports: a report differs from the baseline in more than
            its policy and ``allow_different`` is False.
        ValueError: if there is no report, or labels and reports differ in number.
    """
    if not reports:
        raise ValueError("compare: need at least one report (the baseline)")
    if len(labels) != len(reports):
        raise ValueError(f"compare: got {len(reports)} reports but {len(labels)} labels")
    base = reports[0]
    warnings: list[str] = []
    unlike = [d for label, report in zip(labels[1:], reports[1:], strict=True)
              for d in differences(base, report, (labels[0], label))]
    if unlike and not allow_different:
        raise IncomparableReports(unlike)
    warnings += [f"{d}; deltas may reflect that, not the policy" for d in unlike]
    for label, report in zip(labels[1:], reports[1:], strict=True):
        if not _same_seeds(base, report):
            warnings.append(f"{label} did not run the baseline's replication seeds: "
                            f"unpaired (Welch) intervals, wider than paired ones")
    names: set[str] = set()
    for report in reports:
        metrics = report.get("metrics")
        if isinstance(metrics, Mapping):
            names.update(str(k) for k in metrics)
    primary: list[ComparisonRow] = []
    exploratory: list[ComparisonRow] = []
    for section, metrics_in_section in ordered_sections(names):
        for metric in metrics_in_section:
            unit, lib = _direction(reports, metric)
            role = Role.PRIMARY if metric in PRIMARY_METRICS else Role.EXPLORATORY
            (primary if role is Role.PRIMARY else exploratory).append(ComparisonRow(
                metric=metric, section=section, role=role, unit=unit, lower_is_better=lib,
                estimates=tuple(_estimate(r, metric) for r in reports),
                deltas=tuple(_delta(base, r, metric, lib) for r in reports[1:])))
    primary.sort(key=lambda row: PRIMARY_METRICS.index(row.metric))
    # One Holm family per candidate: each is its own decision against the baseline.
    per_candidate = [_holm_deltas([row.deltas[k] for row in primary])
                     for k in range(len(reports) - 1)]
    primary = [attrs.evolve(row, deltas=tuple(family[i] for family in per_candidate))
               for i, row in enumerate(primary)]
    return Comparison(labels=tuple(labels), rows=tuple(primary + exploratory),
                      warnings=tuple(warnings),
                      primary_absent=tuple(m for m in PRIMARY_METRICS if m not in names),
                      timelines=tuple(timeline_of(r, label)
                                      for r, label in zip(reports, labels, strict=True)))
