"""How much warm-up a run needs, read from its own series: MSER-5.

MSER (the Marginal Standard Error Rule, White 1997; MSER-5 in Franklin and
White 2008) picks the truncation point ``d`` that minimises

    MSER(d) = sum_{j > d} (z_j - mean(z_{d+1..m}))^2 / (m - d)^2

over the series ``z_1..z_m``: dropping the transient shrinks the squared
deviations faster than it shrinks the number of points kept. MSER-5 applies
it to the means of consecutive batches of 5 observations, which smooths the
noise the rule would otherwise chase. Only cuts in the first half of the
series are considered (with few points left any stretch looks settled, so
the statistic is unstable near the end); a minimum at the halfway mark means
it was still falling there, and the cut is not trusted: the run is too short
for the rule, or its load never settles (a daily demand profile has no
steady state to find).

A run's suggestion uses the stuck-order series and each team's queue-length
series, averaged over the replications at each sampling time (the ensemble
mean, which keeps the transient and averages the noise away), and takes the
latest truncation point among them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

import attrs

from ._result import ReplicationResult

__all__ = ["MserCut", "WarmUpSuggestion", "mser", "suggest_warm_up", "warm_up_series"]

BATCH = 5


@attrs.frozen(kw_only=True)
class MserCut:
    """Where MSER cuts one series.

    Attributes:
        observations: how many leading observations to drop (a multiple of the batch size).
        batches: the number of batch means the rule ran on.
        reliable: false when the cut lands on the halfway mark, the last
            candidate (the statistic was still falling: the series is too
            short, or never settles).
    """

    observations: int
    batches: int
    reliable: bool


def mser(values: Sequence[float], batch: int = BATCH) -> MserCut:
    """The MSER-``batch`` truncation point of ``values`` (MSER-5 by default).

    Trailing observations that do not fill a batch are left out. Ties go to
    the earliest cut, so a constant series is cut at 0.

    Args:
        values: equally spaced observations, finite, in time order.
        batch: observations per batch mean (1 for plain MSER).

    Raises:
        ValueError: fewer than two batches of data, or a non-finite value.
    """
    if batch < 1:
        raise ValueError(f"mser: batch must be >= 1, got {batch!r}")
    data = [float(v) for v in values]
    if any(not math.isfinite(v) for v in data):
        raise ValueError("mser: values must be finite")
    m = len(data) // batch
    if m < 2:
        raise ValueError(f"mser: need at least {2 * batch} observations "
                         f"(two batches of {batch}), got {len(data)}")
    z = [statistics.fmean(data[j * batch:(j + 1) * batch]) for j in range(m)]
    # Welford's update from the end: after adding z[d], (mean, m2) describe
    # z[d:], and the statistic is m2 / (m - d)^2. Exact for a constant tail.
    scores = [math.inf] * m
    mean, m2 = 0.0, 0.0
    for k, d in enumerate(range(m - 1, -1, -1), start=1):
        delta = z[d] - mean
        mean += delta / k
        m2 += delta * (z[d] - mean)
        if k >= 2:  # one batch left always scores 0: not a candidate
            scores[d] = m2 / (k * k)
    half = m // 2
    best = min(range(half + 1), key=lambda d: (scores[d], d))
    return MserCut(observations=best * batch, batches=m, reliable=best < half)


def warm_up_series(name: str) -> bool:
    """Whether series ``name`` is read for the warm-up suggestion (stuck orders, team queues)."""
    return name == "stuck_orders" or name.startswith("queue_length.")


@attrs.frozen(kw_only=True)
class WarmUpSuggestion:
    """MSER-5's reading of a run's warm-up.

    Attributes:
        configured: the scenario's warm-up (s).
        suggested: the latest reliable truncation point among the series (s);
            None when no series gave one.
        series: the series that set ``suggested`` (None with it).
        unsettled: series whose cut was not reliable (too short or never settled).
        cuts: each series read, with its truncation time (s) and whether it is reliable.
    """

    configured: float
    suggested: float | None
    series: str | None
    unsettled: tuple[str, ...]
    cuts: tuple[tuple[str, float, bool], ...]

    @property
    def too_short(self) -> bool:
        """Whether the configured warm-up ends before MSER-5's truncation point."""
        return self.suggested is not None and self.suggested > self.configured

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (for report.json)."""
        return {"method": "MSER-5 on the replications' mean series", "unit": "s",
                "configured": self.configured, "suggested": self.suggested,
                "series": self.series, "too_short": self.too_short,
                "unsettled": list(self.unsettled),
                "cuts": {name: {"at": t, "reliable": ok} for name, t, ok in self.cuts}}


def _ensemble(runs: Sequence[Mapping[str, list[tuple[float, float]]]], name: str
              ) -> list[tuple[float, float]]:
    """The mean of series ``name`` over the runs that have it, point by point."""
    have = [r[name] for r in runs if r.get(name)]
    length = min(len(s) for s in have)
    return [(have[0][i][0], statistics.fmean(s[i][1] for s in have)) for i in range(length)]


def suggest_warm_up(results: Sequence[ReplicationResult], configured: float
                    ) -> WarmUpSuggestion:
    """MSER-5 on the stuck-order and queue-length series of ``results``.

    A series with fewer than two batches of points is skipped (nothing to read).
    """
    names = sorted({n for r in results for n, pts in r.series.items()
                    if warm_up_series(n) and pts})
    cuts: list[tuple[str, float, bool]] = []
    for name in names:
        points = _ensemble([r.series for r in results], name)
        if len(points) < 2 * BATCH:
            continue
        cut = mser([v for _, v in points])
        cuts.append((name, points[cut.observations][0], cut.reliable))
    reliable = [(t, name) for name, t, ok in cuts if ok]
    suggested, series = max(reliable, key=lambda c: (c[0], c[1])) if reliable else (None, None)
    return WarmUpSuggestion(configured=configured, suggested=suggested, series=series,
                            unsettled=tuple(name for name, _, ok in cuts if not ok),
                            cuts=tuple(cuts))
