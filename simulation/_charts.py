"""Charts for ``report.html`` and ``compare.html``, rendered by matplotlib's
Agg canvas to base64 PNG.

What a time-series chart or a forest plot shows is decided without drawing
(:mod:`._timechart`, :mod:`._compare_charts`), so tests check the data; this
module only draws it. Every axis starting at a quantity starts at 0.

Figures are built as bare :class:`matplotlib.figure.Figure` objects on a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` rather than through
``pyplot``: nothing enters pyplot's global figure registry (so nothing can
leak), and the process-wide backend is never switched, which would break a
caller's interactive or notebook plotting. The effect is what
``matplotlib.use("Agg")`` is usually called for, without its global side effect.

Every chart returns a ``data:image/png;base64,...`` URI, so the HTML needs no
other file.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._timechart import Span, SpanKind, TimeChart, time_scale

if TYPE_CHECKING:
    from ._compare_charts import Forest

__all__ = [
    "Bar",
    "bar_chart",
    "forest_chart",
    "percentile_chart",
    "render_time_chart",
]

#: One bar: label, mean, and the confidence interval (None: no error bar).
Bar = tuple[str, float, float | None, float | None]

_DPI = 96
_FAULT_COLOUR = "tab:red"
_WARM_UP_COLOUR = "0.5"
_VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red"}


def _text(label: str) -> str:
    # A "$" pair would switch matplotlib to mathtext (and fail on odd input).
    return label.replace("$", r"\$")


def _to_data_uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: render with Agg, no GUI
    buffer = io.BytesIO()
    # No "Software" chunk: it would carry a version and a URL into the page.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shade(ax: Axes, spans: Sequence[Span], *, labelled: bool) -> None:
    transform = ax.get_xaxis_transform()  # x in data units, y in axes fraction
    for span in spans:
        fault = span.kind is SpanKind.FAULT
        colour = _FAULT_COLOUR if fault else _WARM_UP_COLOUR
        ax.axvspan(span.start, span.end, color=colour, alpha=0.12 if fault else 0.18,
                   linewidth=0)
        if labelled:
            ax.text(span.start, 0.98, " " + _text(span.label), transform=transform,
                    va="top", ha="left", fontsize=7, color=colour, clip_on=True)


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def render_time_chart(chart: TimeChart) -> str:
    """Draw a :class:`~._timechart.TimeChart`: per panel, each run's mean as a
    line over its 95% band, spans shaded, clock ticks, the y axis from 0."""
    count, cols = len(chart.panels), chart.columns
    rows = math.ceil(count / cols)
    height = 3.2 if count == 1 else 1.0 + 2.1 * rows
    fig = Figure(figsize=(8.0, height), dpi=_DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    colours = [f"C{i}" for i in range(10)]
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.set_visible(False)
            continue
        panel = chart.panels[index]
        top = 0.0
        for k, line in enumerate(panel.lines):
            colour = colours[k % len(colours)]
            ax.plot(line.xs, line.ys, color=colour, linewidth=1.2, label=_text(line.label))
            if any(v is not None for v in line.high):
                ax.fill_between(line.xs, _nan(line.low), _nan(line.high), color=colour,
                                alpha=0.2, linewidth=0)
            top = max([top, *line.ys, *(v for v in line.high if v is not None)])
        _shade(ax, chart.spans, labelled=index == 0)
        ax.set_xlim(*chart.x_range)
        ax.set_ylim(0.0, top * 1.1 if top > 0 else 1.0)
        ax.set_xticks([x for x, _ in chart.ticks], [_text(t) for _, t in chart.ticks],
                      fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
        if count > 1:
            ax.set_title(_text(panel.title), fontsize=9)
        if index + cols >= count:  # nothing below: this axes carries the clock
            ax.tick_params(axis="x", labelbottom=True)
            ax.set_xlabel(_text(chart.xlabel), fontsize=9 if count > 1 else None)
        if index == 0 and len(panel.lines) > 1:
            fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center",
                       ncols=len(panel.lines), fontsize=8, frameon=False)
    if count == 1:
        axes[0][0].set_title(_text(chart.title))
        axes[0][0].set_ylabel(_text(chart.ylabel))
    else:
        fig.suptitle(_text(chart.title))
        fig.supylabel(_text(chart.ylabel), fontsize=9)
    return _to_data_uri(fig)


def forest_chart(forest: Forest) -> str:
    """Draw a :class:`~._compare_charts.Forest`: one row per metric, each on its
    own axis in its own unit, the delta as a dot on its interval, 0 marked."""
    count = max(len(forest.rows), 1)
    fig = Figure(figsize=(8.0, 0.9 + 0.62 * count), dpi=_DPI, layout="constrained")
    axes = fig.subplots(count, 1, squeeze=False)[:, 0]
    for ax, row in zip(axes, forest.rows, strict=False):
        ax.set_yticks([])
        ax.set_ylim(-1.0, 1.0)
        ax.set_ylabel(_text(f"{row.metric}\n({row.unit})" if row.unit else row.metric),
                      rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.axvline(0.0, color="0.3", linewidth=0.8)
        ax.text(1.01, 0.5, _text(row.note), transform=ax.transAxes, ha="left", va="center",
                fontsize=7, color=_VERDICT_COLOURS.get(row.verdict, "0.25"))
        if row.delta is None or row.low is None or row.high is None:
            ax.set_xlim(-1.0, 1.0)
            ax.set_xticks([])
            ax.text(0.5, 0.5, "no interval", transform=ax.transAxes, ha="center",
                    va="center", fontsize=7, color="0.4")
            continue
        colour = _VERDICT_COLOURS.get(row.verdict, "0.35")
        ax.hlines(0.0, row.low, row.high, color=colour, linewidth=2.2)
        ax.plot([row.delta], [0.0], marker="o", color=colour, markersize=6)
        lo, hi = min(row.low, 0.0), max(row.high, 0.0)
        pad = (hi - lo) * 0.12 or max(abs(row.delta), 1.0) * 0.5
        ax.set_xlim(lo - pad, hi + pad)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(_text(forest.title), fontsize=10)
    return _to_data_uri(fig)


def _errors(bars: Sequence[Bar]) -> list[list[float]]:
    """Asymmetric error bar lengths; 0 where the interval is unknown or infinite."""
    lower: list[float] = []
    upper: list[float] = []
    for _, mean, low, high in bars:
        ok = low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
        lower.append(max(mean - low, 0.0) if ok and low is not None else 0.0)
        upper.append(max(high - mean, 0.0) if ok and high is not None else 0.0)
    return [lower, upper]


def bar_chart(title: str, xlabel: str, bars: Sequence[Bar]) -> str:
    """Horizontal bars (largest on top) with 95% CI error bars."""
    ordered = sorted(bars, key=lambda b: (-b[1], b[0]))
    height = min(1.4 + 0.28 * len(ordered), 20.0)
    fig = Figure(figsize=(8.0, height), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    positions = list(range(len(ordered)))
    ax.barh(positions, [b[1] for b in ordered], xerr=_errors(ordered),
            color="tab:blue", alpha=0.8, error_kw={"elinewidth": 1, "capsize": 2})
    ax.set_yticks(positions, [_text(b[0]) for b in ordered], fontsize=8)
    ax.invert_yaxis()
    ax.set_title(_text(title))
    ax.set_xlabel(_text(xlabel))
    ax.grid(axis="x", alpha=0.3)
    return _to_data_uri(fig)


def percentile_chart(title: str, stages: Sequence[str],
                     percentiles: Mapping[str, Sequence[Bar]]) -> str:
    """Grouped bars from 0: for each stage one bar per percentile, in seconds,
    minutes or hours, each labelled with its value (a stage of seconds beside
    one of hours still reads).

    Args:
        title: the chart title.
        stages: the stages, in x order.
        percentiles: percentile label (``p50``...) -> one :data:`Bar` per stage
            (label = stage), in ``stages`` order; a stage lacking the
            percentile is simply absent.
    """
    largest = max((b[1] for bars in percentiles.values() for b in bars), default=0.0)
    scale, unit = time_scale(largest)
    fig = Figure(figsize=(8.0, 3.8), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(percentiles), 1)
    index = {stage: i for i, stage in enumerate(stages)}
    for k, (pct, bars) in enumerate(percentiles.items()):
        xs = [index[b[0]] - 0.4 + width * (k + 0.5) for b in bars]
        scaled = [(b[0], b[1] / scale,
                   None if b[2] is None else b[2] / scale,
                   None if b[3] is None else b[3] / scale) for b in bars]
        ax.bar(xs, [b[1] for b in scaled], width=width, yerr=_errors(scaled),
               label=_text(pct), error_kw={"elinewidth": 1, "capsize": 2})
        for x, (_, value, _, high) in zip(xs, scaled, strict=True):
            top = value if high is None or not math.isfinite(high) else max(value, high)
            ax.annotate(f"{value:.2g}", (x, top), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=6)
    ax.set_xticks(list(range(len(stages))), [_text(s) for s in stages], fontsize=8,
                  rotation=20 if len(stages) > 4 else 0)
    ax.set_title(_text(title))
    ax.set_ylabel(f"time in stage ({unit})")
    ax.set_ylim(bottom=0.0)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _to_data_uri(fig)
