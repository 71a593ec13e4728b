"""A sweep report: one table and one chart per metric across a parameter grid."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_sweep"]

_CHARTED = ("stuck_orders", "exception_rate", "bounce_rate", "manual_overrides",
            "state_mismatches", "wrong_actions", "throughput", "cycle_time.end_to_end.p95",
            "sla_breaches")


def _chart(metric: str, points: Sequence[tuple[str, dict[str, Any]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = [label for label, _ in points]
    entries = [report["metrics"].get(metric, {}) for _, report in points]
    means = [float(e.get("mean") or 0.0) for e in entries]
    lows = [m - float(e.get("ci_low") if e.get("ci_low") is not None else m)
            for m, e in zip(means, entries)]
    highs = [float(e.get("ci_high") if e.get("ci_high") is not None else m) - m
             for m, e in zip(means, entries)]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    try:
        ax.errorbar(range(len(labels)), means, yerr=[lows, highs], fmt="o-", capsize=4)
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{metric} (mean, 95% CI)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_sweep(points: Sequence[tuple[str, dict[str, Any]]], out: Path) -> list[Path]:
    """Write ``sweep.md`` and ``sweep.html`` for ``(label, report)`` points."""
    out.mkdir(parents=True, exist_ok=True)
    names = sorted({n for _, r in points for n in r["metrics"]})
    ordered = [n for n in _CHARTED if n in names] + [n for n in names if n not in _CHARTED]
    md = ["# Sweep", "", "| metric | " + " | ".join(label for label, _ in points) + " |",
          "|---|" + "---|" * len(points)]
    for name in ordered:
        cells = []
        for _, report in points:
            entry = report["metrics"].get(name)
            cells.append("—" if entry is None else
                         f"{entry['mean']:.4g} [{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]")
        md.append(f"| {name} | " + " | ".join(cells) + " |")
    md_path = out / "sweep.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    charts = "".join(
        f"<h2>{html.escape(n)}</h2><img alt='{html.escape(n)}' "
        f"src='data:image/png;base64,{_chart(n, points)}'>"
        for n in _CHARTED if n in names)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>"
                                    for c in line.strip("|").split("|")) + "</tr>"
                   for line in md[4:])
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in points)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Sweep</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;"
            f"border-bottom:1px solid #ddd;font-size:13px}}</style></head><body>"
            f"<h1>Sweep</h1>{charts}<h2>All metrics</h2><table><tr><th>metric</th>{head}"
            f"</tr>{rows}</table></body></html>")
    html_path = out / "sweep.html"
    html_path.write_text(page, encoding="utf-8")
    return [md_path, html_path]
