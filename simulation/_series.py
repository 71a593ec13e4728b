"""Time series over replications: the mean with a 95% band, kept and read back.

Every replication samples its series on one grid (``k * series_step``, see
:mod:`._metrics`). :func:`aggregate_series` combines them point by point into
the mean over replications and the 95% Student's t interval of that mean (the
interval the tables give a metric), cut at 0 since every series counts
something. ``report.json`` keeps the means under ``series`` (``[[t, mean],
...]``), the intervals under ``series_band`` (``[[t, low, high], ...]``, null
ends from a single replication) and the number of replications under
``series_replications``.

A series counts orders or cases, so a replication with no point before the
series' first one (``in_stage.on_hold`` starts when an order first goes on
hold) had none there: 0. A grid time a replication never reached has no value
in it, and the mean there is over the replications that did.

:func:`timeline_of` reads a report's series back as a :class:`Timeline`, with
what a chart needs around them: warm-up, horizon and fault windows. A report
written before bands were kept holds the first replication's series only; its
timeline says so (``replications`` is None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._stats import t_quantile

__all__ = [
    "Band",
    "FaultWindow",
    "SERIES_MEANING",
    "Timeline",
    "aggregate_series",
    "fault_windows",
    "series_meaning",
    "timeline_of",
]

#: A fault in force from ``start`` to ``end`` (simulated seconds), with its label.
FaultWindow = tuple[float, float, str]

#: What a point of each series family is, and its unit.
SERIES_MEANING: dict[str, tuple[str, str]] = {
    "stuck_orders": ("the orders stuck at some moment of the sample interval ending at it, "
                     "however briefly (placed after the warm-up, as in the table)", "orders"),
    "state_mismatches": ("the orders whose downstream views disagree at its time (orders "
                         "placed after the warm-up, as in the table)", "orders"),
    "queue_length": ("the cases waiting for a reviewer at its time", "cases"),
    "in_stage": ("the orders in the stage at its time", "orders"),
}

_CONFIDENCE = 0.95


def series_meaning(name: str) -> tuple[str, str]:
    """``(what a point is, unit)`` of a series, by its family (``queue_length.fraud``...)."""
    family = name.partition(".")[0]
    return SERIES_MEANING.get(family, ("the value at its time", ""))


@attrs.frozen(kw_only=True)
class Band:
    """One series over replications.

    Attributes:
        times: the grid, in simulated seconds from the run's start (00:00).
        mean: the mean over replications at each time.
        low: the lower end of the 95% interval of that mean (None: one value).
        high: its upper end (None: one value).
    """

    times: tuple[float, ...]
    mean: tuple[float, ...]
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]


def _half_widths(max_n: int) -> dict[int, float]:
    """Student's t multiplier per sample size: computed once, not per point."""
    return {n: t_quantile(0.5 + _CONFIDENCE / 2.0, n - 1) for n in range(2, max_n + 1)}


def _value_at(points: Mapping[float, float], first: float | None, grid: set[float],
              t: float) -> float | None:
    if t in points:
        return points[t]
    if t in grid and (first is None or t < first):
        return 0.0  # not seen yet in this replication: none of it
    return None


def aggregate_series(
    runs: Sequence[Mapping[str, Sequence[tuple[float, float]]]],
) -> tuple[dict[str, list[tuple[float, float]]],
           dict[str, list[tuple[float, float | None, float | None]]]]:
    """The mean series and its 95% band over replications.

    Args:
        runs: each replication's series, name -> ``(time, value)`` points.

    Returns:
        ``(means, bands)``: name -> ``(time, mean)`` points, and name ->
        ``(time, low, high)`` points (ends None where fewer than two
        replications have a value).
    """
    per_run = [{name: dict(points) for name, points in run.items()} for run in runs]
    grids = [{t for points in run.values() for t in points} for run in per_run]
    times = sorted(set().union(*grids))
    multiplier = _half_widths(len(runs))
    means: dict[str, list[tuple[float, float]]] = {}
    bands: dict[str, list[tuple[float, float | None, float | None]]] = {}
    for name in sorted({name for run in per_run for name in run}):
        firsts = [min(run[name]) if run.get(name) else None for run in per_run]
        columns = [run.get(name, {}) for run in per_run]
        mean_points: list[tuple[float, float]] = []
        band_points: list[tuple[float, float | None, float | None]] = []
        for t in times:
            values = [v for col, first, grid in zip(columns, firsts, grids, strict=True)
                      if (v := _value_at(col, first, grid, t)) is not None]
            if not values:
                continue
            n = len(values)
            mean = math.fsum(values) / n
            mean_points.append((t, mean))
            if n < 2:
                band_points.append((t, None, None))
                continue
            var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
            half = multiplier[n] * math.sqrt(var / n)
            band_points.append((t, max(mean - half, 0.0), mean + half))
        means[name], bands[name] = mean_points, band_points
    return means, bands


@attrs.frozen(kw_only=True)
class Timeline:
    """A run's series and what surrounds them on a chart.

    Attributes:
        label: how charts name the run (e.g. ``payment-outage/cautious``).
        series: name -> :class:`Band`.
        replications: how many replications the means are over; None for a
            report that kept one replication's series and no band.
        warm_up: the warm-up, in simulated seconds (0 if the report has none).
        horizon: the run's end, in simulated seconds (None if unknown).
        windows: the faults in force.
    """

    label: str
    series: dict[str, Band]
    replications: int | None
    warm_up: float
    horizon: float | None
    windows: tuple[FaultWindow, ...]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fault_windows(report: Mapping[str, Any]) -> list[FaultWindow]:
    """A report's ``fault_windows``, skipping malformed entries."""
    windows: list[FaultWindow] = []
    raw = report.get("fault_windows")
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, (list, tuple)) and len(item) == 3:
            start, end = _number(item[0]), _number(item[1])
            if start is not None and end is not None:
                windows.append((start, end, str(item[2])))
    return windows


def _band(points: object, band: object) -> Band | None:
    """One series from its mean points and band points (either malformed: skipped)."""
    if not isinstance(points, list):
        return None
    means: dict[float, float] = {}
    for item in points:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            t, v = _number(item[0]), _number(item[1])
            if t is not None and v is not None:
                means[t] = v
    if not means:
        return None
    ends: dict[float, tuple[float | None, float | None]] = {}
    for item in band if isinstance(band, list) else []:
        if isinstance(item, (list, tuple)) and len(item) == 3:
            t = _number(item[0])
            if t is not None:
                ends[t] = (_number(item[1]), _number(item[2]))
    times = tuple(sorted(means))
    return Band(times=times, mean=tuple(means[t] for t in times),
                low=tuple(ends.get(t, (None, None))[0] for t in times),
                high=tuple(ends.get(t, (None, None))[1] for t in times))


def timeline_of(report: Mapping[str, Any], label: str = "") -> Timeline:
    """The series of a ``report.json`` document (malformed series are left out)."""
    raw = report.get("series")
    raw = raw if isinstance(raw, Mapping) else {}
    bands = report.get("series_band")
    bands = bands if isinstance(bands, Mapping) else {}
    series = {str(name): b for name, points in sorted(raw.items())
              if (b := _band(points, bands.get(name))) is not None}
    n = report.get("series_replications")
    replications = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None
    warm_up = _number(report.get("warm_up"))
    return Timeline(label=label, series=series, replications=replications,
                    warm_up=warm_up if warm_up is not None and warm_up > 0 else 0.0,
                    horizon=_number(report.get("horizon")),
                    windows=tuple(fault_windows(report)))
