"""A sweep report: what ran, one table and one chart per metric across a
parameter grid (numeric knobs on a numeric axis, categorical ones as
categories)."""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._grid import SweepAxis, SweepPoint, numeric_value

__all__ = ["write_sweep"]

_CHARTED = ("stuck_orders", "exception_rate", "bounce_rate", "manual_overrides",
            "state_mismatches", "wrong_actions", "throughput", "cycle_time.end_to_end.p95",
            "sla_breaches")

Results = Sequence[tuple[SweepPoint, Mapping[str, Any]]]


def _numeric_axis(axes: Sequence[SweepAxis]) -> SweepAxis | None:
    """The first axis whose values are all numbers (or durations), at least two."""
    for axis in axes:
        if len(axis.values) > 1 and all(numeric_value(v) is not None for v in axis.values):
            return axis
    return None


def _stats(report: Mapping[str, Any], metric: str) -> tuple[float, float, float]:
    entry = report["metrics"].get(metric, {})
    mean = float(entry.get("mean") or 0.0)
    low = entry.get("ci_low")
    high = entry.get("ci_high")
    return mean, float(mean if low is None else low), float(mean if high is None else high)


def _chart(metric: str, results: Results, axes: Sequence[SweepAxis]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x_axis = _numeric_axis(axes)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    try:
        if x_axis is None:  # categories: one point per grid point, in grid order
            stats = [_stats(report, metric) for _, report in results]
            means = [m for m, _, _ in stats]
            ax.errorbar(range(len(results)), means,
                        yerr=[[m - lo for m, lo, _ in stats], [hi - m for m, _, hi in stats]],
                        fmt="o-", capsize=4)
            ax.set_xticks(range(len(results)), [p.label for p, _ in results],
                          rotation=20, ha="right", fontsize=8)
        else:  # one line with its CI band per combination of the other axes
            others = [a for a in axes if a.name != x_axis.name]
            for combination in itertools.product(*(a.values for a in others)):
                fixed = dict(zip((a.name for a in others), combination, strict=True))
                series = sorted(
                    (numeric_value(dict(p.coordinates)[x_axis.name]) or 0.0,
                     *_stats(report, metric))
                    for p, report in results
                    if all(dict(p.coordinates)[k] == v for k, v in fixed.items()))
                xs = [s[0] for s in series]
                label = ",".join(f"{a.label}={v}" for a, v in zip(others, combination,
                                                                   strict=True))
                line = ax.plot(xs, [s[1] for s in series], "o-", label=label or None)[0]
                ax.fill_between(xs, [s[2] for s in series], [s[3] for s in series],
                                color=line.get_color(), alpha=0.2, linewidth=0)
            ticks = sorted({(numeric_value(v) or 0.0, v) for v in x_axis.values})
            ax.set_xticks([t for t, _ in ticks], [text for _, text in ticks], fontsize=8)
            plain = all(numeric_value(v) == _float(v) for v in x_axis.values)
            ax.set_xlabel(x_axis.label + ("" if plain else " (as given; spaced in seconds)"),
                          fontsize=8)
            if others:
                ax.legend(fontsize=7)
        ax.set_title(f"{metric} (mean, 95% CI)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _setting(results: Results, key: str) -> Any:
    values = {str(report.get(key)) for _, report in results}
    return results[0][1].get(key) if len(values) == 1 else "varies by point"


def _hours(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return str(seconds)
    return f"{seconds / 3600:g} h ({seconds:g} s)"


def _what_ran(results: Results, axes: Sequence[SweepAxis]) -> list[tuple[str, str]]:
    """The run settings every point shares, and the grid."""
    x_axis = _numeric_axis(axes)
    return [
        ("scenario", str(_setting(results, "scenario"))),
        ("seed", str(_setting(results, "seed"))),
        ("replications", f"{_setting(results, 'replications')} per point"),
        ("horizon", _hours(_setting(results, "horizon"))),
        ("warm-up", _hours(_setting(results, "warm_up"))),
        *((f"--param {axis.name}", ", ".join(axis.values)
           + (" (x axis)" if x_axis is not None and axis.name == x_axis.name else ""))
          for axis in axes),
        ("points", str(len(results))),
    ]


def write_sweep(results: Results, out: Path, axes: Sequence[SweepAxis]) -> list[Path]:
    """Write ``sweep.md`` and ``sweep.html`` for the ``(point, report)``
    results of a grid over ``axes``: the scenario, seed, replications and
    horizon they ran, a chart per charted metric (a numeric knob on a
    numeric x axis with 95% CI bands, categories otherwise) and a table of
    every metric."""
    out.mkdir(parents=True, exist_ok=True)
    names = sorted({n for _, r in results for n in r["metrics"]})
    ordered = [n for n in _CHARTED if n in names] + [n for n in names if n not in _CHARTED]
    settings = _what_ran(results, axes)
    md = ["# Sweep", "", *(f"- {key}: {value}" for key, value in settings), "",
          "| metric | " + " | ".join(p.label for p, _ in results) + " |",
          "|---|" + "---|" * len(results)]
    rows = []
    for name in ordered:
        cells = []
        for _, report in results:
            entry = report["metrics"].get(name)
            cells.append("—" if entry is None else
                         f"{entry['mean']:.4g} [{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]")
        md.append(f"| {name} | " + " | ".join(cells) + " |")
        rows.append([name, *cells])
    md_path = out / "sweep.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    charts = "".join(
        f"<h2>{html.escape(n)}</h2><img alt='{html.escape(n)}' "
        f"src='data:image/png;base64,{_chart(n, results, axes)}'>"
        for n in _CHARTED if n in names)
    ran = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                  for k, v in settings)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    head = "".join(f"<th>{html.escape(p.label)}</th>" for p, _ in results)
    title = html.escape(f"Sweep of {_setting(results, 'scenario')}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;"
            f"border-bottom:1px solid #ddd;font-size:13px;text-align:left}}</style></head>"
            f"<body><h1>{title}</h1><table class='ran'>{ran}</table>{charts}"
            f"<h2>All metrics</h2><table><tr><th>metric</th>{head}</tr>{body}</table>"
            f"</body></html>")
    html_path = out / "sweep.html"
    html_path.write_text(page, encoding="utf-8")
    return [md_path, html_path]
