"""Charts for ``report.html``, rendered by matplotlib's Agg canvas to base64 PNG.

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

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "Bar",
    "FaultWindow",
    "bar_chart",
    "percentile_chart",
    "time_series_chart",
]

#: One bar: label, mean, and the confidence interval (None: no error bar).
Bar = tuple[str, float, float | None, float | None]
#: A fault in force from ``start`` to ``end`` (simulated seconds), with its label.
FaultWindow = tuple[float, float, str]

_SECONDS_PER_HOUR = 3600.0
_DPI = 96
_FAULT_COLOUR = "tab:red"


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


def _shade_faults(ax: Axes, windows: Sequence[FaultWindow]) -> None:
    transform = ax.get_xaxis_transform()  # x in data units, y in axes fraction
    for start, end, label in windows:
        ax.axvspan(start / _SECONDS_PER_HOUR, end / _SECONDS_PER_HOUR,
                   color=_FAULT_COLOUR, alpha=0.12, linewidth=0)
        ax.text(start / _SECONDS_PER_HOUR, 0.98, _text(label), transform=transform,
                va="top", ha="left", fontsize=7, color=_FAULT_COLOUR, clip_on=True)


def time_series_chart(
    title: str,
    ylabel: str,
    lines: Mapping[str, Sequence[tuple[float, float]]],
    windows: Sequence[FaultWindow],
) -> str:
    """Step lines over simulated time (hours) with fault windows shaded.

    Args:
        title: the chart title.
        ylabel: the y axis label.
        lines: legend label -> ``(time_s, value)`` points, already finite and
            non-empty; drawn in the mapping's order.
        windows: fault windows to shade.
    """
    fig = Figure(figsize=(8.0, 3.2), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    for label, points in lines.items():
        xs = [t / _SECONDS_PER_HOUR for t, _ in points]
        ys = [v for _, v in points]
        ax.step(xs, ys, where="post", label=_text(label), linewidth=1.2)
    _shade_faults(ax, windows)
    ax.set_title(_text(title))
    ax.set_xlabel("simulated time (h)")
    ax.set_ylabel(_text(ylabel))
    ax.grid(alpha=0.3)
    if len(lines) > 1:
        ax.legend(fontsize=8, loc="upper right")
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


def _time_scale(largest: float) -> tuple[float, str]:
    if largest >= 2 * _SECONDS_PER_HOUR:
        return _SECONDS_PER_HOUR, "h"
    if largest >= 120.0:
        return 60.0, "min"
    return 1.0, "s"


def percentile_chart(title: str, stages: Sequence[str],
                     percentiles: Mapping[str, Sequence[Bar]]) -> str:
    """Grouped bars: for each stage one bar per percentile, in seconds, minutes or hours.

    Args:
        title: the chart title.
        stages: the stages, in x order.
        percentiles: percentile label (``p50``...) -> one :data:`Bar` per stage
            (label = stage), in ``stages`` order; a stage lacking the
            percentile is simply absent.
    """
    largest = max((b[1] for bars in percentiles.values() for b in bars), default=0.0)
    scale, unit = _time_scale(largest)
    fig = Figure(figsize=(8.0, 3.6), dpi=_DPI, layout="constrained")
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
    ax.set_xticks(list(range(len(stages))), [_text(s) for s in stages], fontsize=8,
                  rotation=20 if len(stages) > 4 else 0)
    ax.set_title(_text(title))
    ax.set_ylabel(f"cycle time ({unit})")
    positive = [b[1] for bars in percentiles.values() for b in bars if b[1] > 0]
    if positive and max(positive) > 50 * min(positive):
        ax.set_yscale("log")  # stages span orders of magnitude (minutes vs days)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _to_data_uri(fig)
