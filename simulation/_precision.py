"""How many replications: add them until the primary metrics are precise.

``simulate --precision 5%`` stops when every primary metric's 95% confidence
interval has a half-width within 5% of its mean; ``compare --precision 5%``
when every paired difference's half-width is within 5% of the baseline's
mean of that metric (of the candidate's where the baseline's is 0: a
difference has no scale of its own, and the baseline's level is what a
reader weighs a change against).

Absent is not zero. A metric with no value in any replication (a median of
no samples) cannot be made precise: it is reported as absent and does not
keep the loop going. A mean of 0 with no spread is precise (half-width 0); a
mean of 0 with spread is not (no finite multiple of 0 bounds it).

Replication ``k`` always draws from ``replication_seed(seed, k)``, so adding
replications extends the seed sequence: a run that stopped at ``n`` equals a
plain run with ``n`` replications. The count depends on the data alone, never
on the number of workers, so the same command stops at the same ``n`` on any
machine. Each round grows the count to the sequential estimate
``n * (half-width / allowed)^2`` of the widest metric, at most doubling it
(an estimate from few replications is itself noisy), up to the cap. Like
every sequential stopping rule, this one stops slightly more often on a
lucky, narrow interval than a fixed ``n`` would; read the interval at the
stopping count as approximate.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping, Sequence

import attrs

from ._result import ReplicationResult, is_sampled
from ._sections import PRIMARY_METRICS
from ._stats import paired_difference, summarize

__all__ = [
    "DEFAULT_MAX_REPLICATIONS",
    "MetricPrecision",
    "PrecisionOutcome",
    "PrecisionStatus",
    "difference_precision",
    "mean_precision",
    "parse_precision",
    "run_to_precision",
    "values_of",
]

#: The replication cap of a precision run unless ``--max-replications`` says otherwise.
DEFAULT_MAX_REPLICATIONS = 50

Table = Mapping[str, Sequence[float | None]]


class PrecisionStatus(enum.Enum):
    """Where one metric stands against the precision target."""

    PRECISE = "precise"
    IMPRECISE = "not yet precise"
    ABSENT = "absent"


@attrs.frozen(kw_only=True)
class MetricPrecision:
    """One metric's (or one paired difference's) interval against the target.

    Attributes:
        metric: the metric's name (with the candidate's label for a difference).
        n: the replications (or pairs) that have a value.
        mean: their mean (None: absent).
        half_width: the 95% CI half-width (inf with one value; None: absent).
        reference: the magnitude the half-width is held to (``|mean|``, or the
            baseline's ``|mean|`` for a difference; None: absent).
        status: precise, not yet precise, or absent.
    """

    metric: str
    n: int
    mean: float | None
    half_width: float | None
    reference: float | None
    status: PrecisionStatus

    @property
    def relative(self) -> float | None:
        """``half_width / reference`` (0 for no spread, inf for spread around 0; None if absent)."""
        if self.half_width is None or self.reference is None:
            return None
        if self.half_width == 0:
            return 0.0
        return self.half_width / self.reference if self.reference > 0 else math.inf


def parse_precision(text: str) -> float:
    """A precision target as a fraction: ``"5%"`` or ``"0.05"`` is 0.05.

    Raises:
        ValueError: not a percentage in (0%, 100%) nor a fraction in (0, 1);
            the message says what was expected.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", text)
    value = float(match.group(1)) / (100.0 if match.group(2) else 1.0) if match else math.nan
    if not 0.0 < value < 1.0:
        raise ValueError(f"expected a relative half-width such as 5% (or 0.05), above 0% and "
                         f"below 100%, got {text!r}")
    return value


def values_of(results: Sequence[ReplicationResult]) -> dict[str, list[float | None]]:
    """Each metric's value per replication, in replication order, as ``aggregate``
    reads them: a count missing from a replication is 0, a statistic of samples
    missing from one is None (no sample)."""
    ordered = sorted(results, key=lambda r: r.replication)
    names = sorted({name for r in ordered for name in r.metrics})
    return {name: [r.metrics.get(name) if is_sampled(name) else r.metrics.get(name, 0.0)
                   for r in ordered] for name in names}


def _column(table: Table, metric: str, n: int) -> list[float | None]:
    column = list(table.get(metric, ()))[:n]
    if metric not in table:  # no replication had it: absent, whatever its kind
        return [None] * n
    return column + [None if is_sampled(metric) else 0.0] * (n - len(column))


def _status(metric: str, n: int, mean: float | None, half: float | None,
            reference: float | None, target: float) -> MetricPrecision:
    if mean is None or half is None or reference is None:
        status = PrecisionStatus.ABSENT
    elif n >= 2 and half <= target * reference:
        status = PrecisionStatus.PRECISE
    else:
        status = PrecisionStatus.IMPRECISE
    return MetricPrecision(metric=metric, n=n, mean=mean, half_width=half,
                           reference=reference, status=status)


def mean_precision(table: Table, n: int, target: float,
                   metrics: Sequence[str] = PRIMARY_METRICS) -> tuple[MetricPrecision, ...]:
    """Each metric's mean over replications ``0..n-1`` of ``table`` against ``target``."""
    out = []
    for metric in metrics:
        values = [v for v in _column(table, metric, n) if v is not None]
        if not values:
            out.append(_status(metric, 0, None, None, None, target))
            continue
        s = summarize(values)
        out.append(_status(metric, s.n, s.mean, s.half_width, abs(s.mean), target))
    return tuple(out)


def difference_precision(base: Table, candidate: Table, n: int, target: float, label: str,
                         metrics: Sequence[str] = PRIMARY_METRICS
                         ) -> tuple[MetricPrecision, ...]:
    """Each metric's paired difference (baseline minus candidate, replications
    ``0..n-1`` where both have a value) against ``target`` times the baseline's
    ``|mean|`` (the candidate's where the baseline's is 0)."""
    out = []
    for metric in metrics:
        pairs = [(a, b) for a, b in zip(_column(base, metric, n), _column(candidate, metric, n),
                                         strict=True) if a is not None and b is not None]
        name = f"{metric} ({label})"
        if not pairs:
            out.append(_status(name, 0, None, None, None, target))
            continue
        xs, ys = [a for a, _ in pairs], [b for _, b in pairs]
        diff = paired_difference(xs, ys)
        half = (diff.ci_high - diff.ci_low) / 2.0
        base_mean = abs(sum(xs) / len(xs))
        reference = base_mean if base_mean > 0 else abs(sum(ys) / len(ys))
        out.append(_status(name, len(pairs), diff.mean, half, reference, target))
    return tuple(out)


@attrs.frozen(kw_only=True)
class PrecisionOutcome:
    """How a precision run ended.

    Attributes:
        target: the allowed half-width, as a fraction of the reference mean.
        started: the replications it started from.
        replications: the replications it ended with.
        cap: the most it would run.
        reached: every metric precise or absent.
        last: the metric last to become precise (when reached), else None.
        metrics: every metric's standing at the end.
        rounds: the replication counts assessed, in order.
        against: what the half-width is held to, in words.
    """

    target: float
    started: int
    replications: int
    cap: int
    reached: bool
    last: str | None
    metrics: tuple[MetricPrecision, ...]
    rounds: tuple[int, ...]
    against: str = "its mean"

    def lines(self) -> list[str]:
        """What the terminal says about it."""
        pct = f"{self.target * 100:.4g}%"
        if self.reached and self.last is not None:
            last = next(m for m in self.metrics if m.metric == self.last)
            ran = (f"after {self.replications} replications (started with {self.started})"
                   if self.replications > self.started
                   else f"already with the {self.started} replications run")
            out = [f"precision {pct}: every 95% CI half-width is within {pct} of {self.against} "
                   f"{ran}; last to converge: {self.last} ({_relative(last)} of {self.against})"]
        elif self.reached:
            out = [f"precision {pct}: no metric has a value to make precise"]
        else:
            wide = [m for m in self.metrics if m.status is PrecisionStatus.IMPRECISE]
            out = [f"precision {pct} NOT reached: stopped at the cap of {self.cap} replications "
                   f"(--max-replications); still wider than {pct} of {self.against}: "
                   + ", ".join(f"{m.metric} ({_relative(m)})" for m in wide)]
        out += [f"  {m.metric}: no replication has a value, so it cannot be made precise "
                "(absent is not zero)" for m in self.metrics if m.status is PrecisionStatus.ABSENT]
        return out

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (for report.json); half-widths in each metric's unit."""
        return {
            "target": self.target, "against": self.against, "started": self.started,
            "replications": self.replications, "cap": self.cap, "reached": self.reached,
            "last_to_converge": self.last, "rounds": list(self.rounds),
            "metrics": {m.metric: {"status": m.status.value, "n": m.n, "mean": m.mean,
                                   "half_width": _finite(m.half_width),
                                   "relative_half_width": _finite(m.relative)}
                        for m in self.metrics},
        }


def _finite(x: float | None) -> float | str | None:
    return x if x is None or math.isfinite(x) else "inf"


def _relative(m: MetricPrecision) -> str:
    rel = m.relative
    if rel is None:
        return "absent"
    if math.isinf(rel):
        return ("spread around a mean of 0" if m.n >= 2 and m.reference == 0
                else "one value: spread unknown")
    return f"half-width {rel:.1%}"


def _next_count(n: int, pending: Sequence[MetricPrecision], target: float, cap: int) -> int:
    """The next replication count: the widest metric's sequential estimate, at most 2n."""
    need = n + 1
    for m in pending:
        rel = m.relative
        if rel is not None and math.isfinite(rel) and m.n >= 2:
            need = max(need, math.ceil(n * (rel / target) ** 2))
        else:
            need = max(need, 2 * n)
    return min(cap, max(n + 1, min(need, 2 * n)))


def run_to_precision(
    *, target: float, start: int, cap: int,
    assess: Callable[[int], Sequence[MetricPrecision]],
    extend: Callable[[int, int], None],
    against: str = "its mean",
) -> PrecisionOutcome:
    """Add replications until every metric is precise or absent, or ``cap`` is reached.

    Args:
        target: the allowed relative half-width (0.05 for 5%).
        start: the replications already run (``0..start-1``).
        cap: the most replications to run (at least ``start``).
        assess: each metric's standing over replications ``0..n-1``.
        extend: run replications ``a..b-1`` (of every side).
        against: what the half-width is held to, in words (for the outcome's lines).

    Raises:
        ValueError: ``start`` < 1 or ``cap`` < ``start``.
    """
    if start < 1 or cap < start:
        raise ValueError(f"precision: need 1 <= start ({start}) <= cap ({cap})")
    n, rounds = start, []
    since: dict[str, int] = {}
    while True:
        rounds.append(n)
        standing = tuple(assess(n))
        for m in standing:
            if m.status is PrecisionStatus.PRECISE:
                since.setdefault(m.metric, n)
            else:
                since.pop(m.metric, None)
        pending = [m for m in standing if m.status is PrecisionStatus.IMPRECISE]
        if not pending or n >= cap:
            break
        more = _next_count(n, pending, target, cap)
        extend(n, more)
        n = more
    precise = [m for m in standing if m.status is PrecisionStatus.PRECISE]
    last = max(precise, key=lambda m: (since[m.metric], m.relative or 0.0)).metric \
        if precise and not pending else None
    return PrecisionOutcome(target=target, started=start, replications=n, cap=cap,
                            reached=not pending, last=last, metrics=standing,
                            rounds=tuple(rounds), against=against)
