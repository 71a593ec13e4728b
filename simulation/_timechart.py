"""What a time-series chart shows, decided apart from drawing it.

:func:`time_chart` turns run :class:`~._series.Timeline` s into a
:class:`TimeChart`: the lines (the mean over replications and its 95% band) in
hours from the run's start, the shaded spans (warm-up, faults), clock-time
ticks and the caption saying what is plotted. :mod:`._charts` draws it; tests
read it, so what a chart claims is checked without looking at pixels.

A run starts at 00:00 of its first day: the demand profile's hour 0 and the
shifts' ``start_hour`` count from there, and so do fault windows
(``start: 14h`` is 14:00).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from orderloom.actors import Lifecycle

from ._series import Timeline, series_meaning

__all__ = [
    "Line",
    "Panel",
    "Span",
    "SpanKind",
    "TimeChart",
    "clock_label",
    "clock_ticks",
    "lifecycle_order",
    "standard_charts",
    "time_chart",
    "time_scale",
]

SECONDS_PER_HOUR = 3600.0
_TICK_STEPS_H = (1, 2, 3, 4, 6, 12, 24, 48, 72, 168)
_MAX_TICKS = 13  # on a full-width axis; half as many in a two-column grid


def time_scale(largest: float) -> tuple[float, str]:
    """``(seconds per unit, unit)`` to print durations up to ``largest`` seconds."""
    if largest >= 2 * SECONDS_PER_HOUR:
        return SECONDS_PER_HOUR, "h"
    if largest >= 120.0:
        return 60.0, "min"
    return 1.0, "s"


def clock_label(hours: float, *, multi_day: bool) -> str:
    """The clock time ``hours`` after the run's start (00:00 of day 1):
    ``14:00``; ``24:00`` for the end of a one-day run; ``day 2 08:00`` past it."""
    minutes = round(hours * 60)
    day, minute_of_day = divmod(minutes, 24 * 60)
    if not multi_day:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"
    return f"day {day + 1}\n{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def clock_ticks(end_hours: float, max_ticks: int = _MAX_TICKS) -> tuple[tuple[float, str], ...]:
    """Ticks from 00:00 to ``end_hours`` at a whole-hour step, at most ``max_ticks``."""
    span = max(end_hours, 1e-9)
    step = next((s for s in _TICK_STEPS_H if span / s < max_ticks), _TICK_STEPS_H[-1])
    multi_day = end_hours > 24.0
    ticks = []
    k = 0
    while k * step <= end_hours + 1e-9:
        ticks.append((float(k * step), clock_label(k * step, multi_day=multi_day)))
        k += 1
    return tuple(ticks)


@attrs.frozen(kw_only=True)
class Line:
    """One run's series: x in hours from the run's start, the mean and its band."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]


@attrs.frozen(kw_only=True)
class Panel:
    """One axes: its title (empty for a single panel) and its lines."""

    title: str
    lines: tuple[Line, ...]


class SpanKind(enum.Enum):
    """Why a stretch of time is shaded."""

    WARM_UP = "warm-up"
    FAULT = "fault"


@attrs.frozen(kw_only=True)
class Span:
    """A shaded stretch, in hours from the run's start, cut to the chart's range."""

    start: float
    end: float
    label: str
    kind: SpanKind


@attrs.frozen(kw_only=True)
class TimeChart:
    """Everything a time-series chart shows.

    Attributes:
        title: the chart's title.
        ylabel: the y axis label, with its unit; the y axis starts at 0.
        xlabel: the x axis label (clock time).
        panels: the axes, in rows of ``columns``.
        columns: panels per row (1, or 2 for three panels or more).
        spans: shaded stretches (warm-up, faults), each once.
        ticks: ``(hours, clock label)`` for the x axis.
        x_range: ``(0, end)`` in hours.
        caption: one line saying what is plotted.
    """

    title: str
    ylabel: str
    xlabel: str
    panels: tuple[Panel, ...]
    columns: int
    spans: tuple[Span, ...]
    ticks: tuple[tuple[float, str], ...]
    x_range: tuple[float, float]
    caption: str


def _line(label: str, timeline: Timeline, name: str) -> Line | None:
    band = timeline.series.get(name)
    if band is None:
        return None
    return Line(label=label, xs=tuple(t / SECONDS_PER_HOUR for t in band.times),
                ys=band.mean, low=band.low, high=band.high)


def _averaging(timelines: Sequence[Timeline]) -> str:
    """How the lines were made from replications, for the caption."""
    def one(t: Timeline) -> str:
        if t.replications is None:
            return "the first replication only (this report kept no band)"
        if t.replications == 1:
            return "one replication (no band)"
        return f"the mean of {t.replications} replications, band: 95% CI of the mean"

    kinds = {one(t) for t in timelines}
    if len(kinds) == 1:
        kind = kinds.pop()
        return f"Each run: {kind}" if len(timelines) > 1 else kind[:1].upper() + kind[1:]
    return "Per run: " + "; ".join(f"{t.label}: {one(t)}" for t in timelines)


def _spans(timelines: Sequence[Timeline], end: float) -> tuple[Span, ...]:
    spans: list[Span] = []
    for t in timelines:
        warm = Span(start=0.0, end=min(t.warm_up / SECONDS_PER_HOUR, end), label="warm-up",
                    kind=SpanKind.WARM_UP)
        if t.warm_up > 0 and warm not in spans:
            spans.append(warm)
    for t in timelines:
        for start, stop, label in t.windows:
            lo, hi = start / SECONDS_PER_HOUR, min(stop / SECONDS_PER_HOUR, end)
            span = Span(start=lo, end=hi, label=label, kind=SpanKind.FAULT)
            if lo < end and hi > lo and span not in spans:
                spans.append(span)
    return tuple(spans)


def time_chart(title: str, ylabel: str, timelines: Sequence[Timeline],
               panels: Sequence[tuple[str, str]]) -> TimeChart | None:
    """The chart of some series of one or more runs.

    Args:
        title: the chart's title.
        ylabel: the y axis label, with its unit.
        timelines: the runs; with several, each panel overlays one line per run.
        panels: ``(panel title, series name)`` per panel; a panel no run has
            is left out, and so is one at 0 throughout when another is not
            (the caption names it).

    Returns:
        The chart, or None if no run has any of the series.
    """
    built: list[Panel] = []
    for panel_title, name in panels:
        lines = tuple(line for t in timelines
                      if (line := _line(t.label, t, name)) is not None)
        if lines:
            built.append(Panel(title=panel_title, lines=lines))
    if not built:
        return None
    flat = [p.title for p in built
            if not any(v > 0 for line in p.lines for v in (*line.ys, *line.high) if v)]
    if len(flat) < len(built):
        built = [p for p in built if p.title not in flat]
    else:
        flat = []
    columns = 2 if len(built) > 2 else 1
    last = max(x for p in built for line in p.lines for x in line.xs)
    horizons = [t.horizon / SECONDS_PER_HOUR for t in timelines if t.horizon]
    end = max([last, *horizons]) or 1.0  # a lone point at 00:00 still gets an axis
    multi_day = end > 24.0
    names = {name for _, name in panels}
    meanings = sorted({series_meaning(n)[0] for n in names})
    spans = _spans(timelines, end)
    kinds = {s.kind for s in spans}
    shaded = [text for kind, text in ((SpanKind.WARM_UP, "warm-up grey"),
                                      (SpanKind.FAULT, "faults red")) if kind in kinds]
    caption = f"{_averaging(timelines)}. A point is {'; '.join(meanings)}"
    xs = built[0].lines[0].xs
    if len(xs) > 1:
        step = (xs[-1] - xs[0]) / (len(xs) - 1) * SECONDS_PER_HOUR
        scale, unit = time_scale(step)
        caption += f"; points every {step / scale:.3g} {unit}"
    caption += "."
    if flat:
        caption += f" At 0 throughout, not drawn: {', '.join(flat)}."
    if shaded:
        caption += " Shaded: " + ", ".join(shaded) + "."
    caption += " Clock time from the run's start at 00:00."
    return TimeChart(
        title=title, ylabel=ylabel,
        xlabel="day and time of day" if multi_day else "time of day (hh:mm)",
        panels=tuple(built), columns=columns, spans=spans,
        ticks=clock_ticks(end, _MAX_TICKS if columns == 1 else _MAX_TICKS // 2 + 1),
        x_range=(0.0, end), caption=caption)


_LIFECYCLE = {stage.value: i for i, stage in enumerate(Lifecycle)}
_END_TO_END = ("end_to_end", "total")


def lifecycle_order(stages: Sequence[str]) -> list[str]:
    """Stages in the order an order passes them (:class:`Lifecycle`), unknown
    ones after them by name, ``end_to_end`` last."""
    return sorted(stages, key=lambda s: (s in _END_TO_END, _LIFECYCLE.get(s, len(_LIFECYCLE)), s))


def standard_charts(timelines: Sequence[Timeline]
                    ) -> list[tuple[str, TimeChart | None, str]]:
    """The time-series charts of a report or a comparison, in page order:
    ``(title, chart or None, why it is missing)``."""
    names = sorted({name for t in timelines for name in t.series})

    def under(prefix: str) -> list[str]:
        return [n.removeprefix(prefix) for n in names if n.startswith(prefix)]

    specs = (
        ("Stuck orders over time", "stuck (orders)", [("", "stuck_orders")]),
        ("Orders whose downstream views disagree", "mismatched (orders)",
         [("", "state_mismatches")]),
        ("Cases waiting per team", "waiting (cases)",
         [(team, f"queue_length.{team}") for team in under("queue_length.")]),
        ("Orders in each open stage", "in the stage (orders)",
         [(stage, f"in_stage.{stage}") for stage in lifecycle_order(under("in_stage."))]),
    )
    missing = ("no series 'stuck_orders'", "no series 'state_mismatches'",
               "no series 'queue_length.<team>'", "no series 'in_stage.<stage>'")
    return [(title, time_chart(title, ylabel, timelines, panels), why)
            for (title, ylabel, panels), why in zip(specs, missing, strict=True)]
