"""The charts of ``compare.html``: a forest plot per candidate, the runs' series overlaid.

:func:`forest_of` decides what a candidate's forest plot shows: for each
primary metric, the delta against the baseline with its 95% interval and the
Holm verdict of the table, on the metric's own axis in its own unit (the
primary metrics are counts, rates and durations: no one axis fits them all),
durations in minutes or hours. :func:`compare_figures` draws those and the
time series of every run overlaid (:func:`._timechart.standard_charts`), as
``data:`` URIs so the page stays one file.
"""

from __future__ import annotations

import attrs

from ._compare import Comparison
from ._compare_summary import format_p
from ._timechart import standard_charts, time_scale

__all__ = ["ChartImage", "CompareFigures", "Forest", "ForestRow", "compare_figures", "forest_of"]


@attrs.frozen(kw_only=True)
class ForestRow:
    """One primary metric of a forest plot.

    Attributes:
        metric: the metric's dotted name.
        unit: the unit the row is drawn in (a duration in s, min or h).
        delta: candidate − baseline, in ``unit``; None if not computable.
        low: the lower end of its 95% interval, in ``unit``.
        high: the upper end.
        verdict: the table's verdict (Holm-adjusted for the primary metrics).
        note: the verdict as printed beside the row, with the Holm p-value.
    """

    metric: str
    unit: str
    delta: float | None
    low: float | None
    high: float | None
    verdict: str
    note: str


@attrs.frozen(kw_only=True)
class Forest:
    """A candidate's forest plot: its title, rows (primary metric order) and caption."""

    title: str
    rows: tuple[ForestRow, ...]
    caption: str


@attrs.frozen(kw_only=True)
class ChartImage:
    """A drawn chart: its title, ``data:image/png`` URI and caption."""

    title: str
    uri: str
    caption: str


@attrs.frozen(kw_only=True)
class CompareFigures:
    """The page's charts: one forest plot per candidate, then the series.

    Attributes:
        forests: one per candidate, in report order.
        series: the time-series charts (runs overlaid).
        skipped: ``(title, why)`` of series charts no run could draw.
    """

    forests: tuple[ChartImage, ...]
    series: tuple[ChartImage, ...]
    skipped: tuple[tuple[str, str], ...]


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value / scale


def forest_of(comparison: Comparison, candidate: int) -> Forest:
    """The forest plot of candidate ``candidate`` (0: the first after the baseline)."""
    base, label = comparison.labels[0], comparison.labels[candidate + 1]
    rows: list[ForestRow] = []
    pairing: set[str] = set()
    for row in comparison.primary:
        d = row.deltas[candidate]
        scale, unit = 1.0, row.unit
        if row.unit == "s":
            ends = [abs(v) for v in (d.delta, d.ci_low, d.ci_high) if v is not None]
            scale, unit = time_scale(max(ends, default=0.0))
        note = d.verdict
        if d.p_adjusted is not None:
            note += f"\np (Holm) {format_p(d.p_adjusted)}"
        if d.delta is not None:
            pairing.add("paired" if d.paired else "Welch")
        rows.append(ForestRow(metric=row.metric, unit=unit, delta=_scaled(d.delta, scale),
                              low=_scaled(d.ci_low, scale), high=_scaled(d.ci_high, scale),
                              verdict=d.verdict, note=note))
    kind = " and ".join(sorted(pairing)) or "no"
    caption = (f"Δ = {label} − {base} for each primary metric, on its own axis in its "
               f"unit: the dot is the mean difference over replications, the bar its 95% "
               f"CI ({kind} intervals), the vertical line 0. Verdicts as in the table, "
               f"Holm-adjusted over the {comparison.family_size(candidate)} metrics of the "
               f"family: green better, red worse, grey no significant difference or none "
               f"(n/a: no interval; —: no better direction). A grey interval clear of 0 "
               f"is significant on its own, not after Holm. Durations in min or h.")
    return Forest(title=f"Primary metrics: {label} − {base}", rows=tuple(rows),
                  caption=caption)


def compare_figures(comparison: Comparison) -> CompareFigures:
    """Draw the forest plots and the overlaid series of ``comparison``."""
    # Imported here: building a comparison (or its Markdown) needs no matplotlib.
    from ._charts import forest_chart, render_time_chart

    forests = []
    for k in range(len(comparison.labels) - 1):
        forest = forest_of(comparison, k)
        if forest.rows:
            forests.append(ChartImage(title=forest.title, uri=forest_chart(forest),
                                  caption=forest.caption))
    series: list[ChartImage] = []
    skipped: list[tuple[str, str]] = []
    for title, chart, why in standard_charts(comparison.timelines):
        if chart is None:
            skipped.append((title, why))
        else:
            series.append(ChartImage(title=title, uri=render_time_chart(chart),
                                 caption=chart.caption))
    return CompareFigures(forests=tuple(forests), series=tuple(series), skipped=tuple(skipped))
