"""Rendering a :class:`~._compare.Comparison`: terminal text, Markdown and HTML.

Every view prints numbers as reports do (:mod:`._sections`) and says which
cells hold imputed zeros or no sample.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ._compare import Comparison, ComparisonRow, Delta, Estimate
from ._sections import format_ci, format_number

__all__ = ["to_html", "to_markdown", "to_terminal"]

def _estimate_text(e: Estimate) -> str:
    if e.no_sample:
        return "— (no sample)"
    if e.n is not None and e.n < 2:  # no interval from one sample
        return f"{format_number(e.mean)} [n/a] (n={e.n} of {e.of})"
    text = f"{format_number(e.mean)} {format_ci(e.ci_low, e.ci_high)}"
    if e.n is not None:
        text += f" (n={e.n} of {e.of})"
    return text + " (absent: 0)" if e.imputed else text


def _delta_text(d: Delta) -> str:
    sign = "+" if d.delta is not None and d.delta > 0 else ""
    return f"{sign}{format_number(d.delta)} {format_ci(d.ci_low, d.ci_high)}"


def _pairing(d: Delta) -> str:
    return "paired" if d.paired else "Welch"


def _columns(c: Comparison) -> list[str]:
    cols = ["metric", "unit"] + [f"{label} mean [95% CI]" for label in c.labels]
    for label in c.labels[1:]:
        cols += [f"Δ {label} − {c.labels[0]} [95% CI]", "interval", f"{label} verdict"]
    return cols


def _cells(row: ComparisonRow) -> list[str]:
    cells = [row.metric, row.unit] + [_estimate_text(e) for e in row.estimates]
    for d in row.deltas:
        cells += [_delta_text(d), _pairing(d), d.verdict]
    return cells


def _preamble(c: Comparison) -> list[str]:
    lines = [f"Baseline: {c.labels[0]}; deltas are candidate − baseline."]
    lines += [f"warning: {w}" for w in c.warnings]
    return lines


def to_markdown(comparison: Comparison) -> str:
    """A Markdown table per section, with deltas, paired/Welch and verdicts."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["# Comparison", ""] + [f"> {cell(p)}" if p.startswith("warning") else cell(p)
                                    for p in _preamble(comparison)]
    cols = _columns(comparison)
    section = None
    for row in comparison.rows:
        if row.section != section:
            section = row.section
            lines += ["", f"## {section}", "", "| " + " | ".join(cell(c) for c in cols) + " |",
                      "|" + "---|" * len(cols)]
        lines.append("| " + " | ".join(cell(c) for c in _cells(row)) + " |")
    return "\n".join(lines) + "\n"


def to_terminal(comparison: Comparison) -> str:
    """Plain aligned text (no colour codes): one block per section."""
    cols = _columns(comparison)
    table = [cols] + [_cells(r) for r in comparison.rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = _preamble(comparison)
    section = None
    for row in comparison.rows:
        if row.section != section:
            section = row.section
            lines += ["", section.upper(), fmt(cols), fmt(["-" * w for w in widths])]
        lines.append(fmt(_cells(row)))
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.better { background: #d4f0d4; color: #155724; }
td.worse { background: #f6d3d3; color: #721c24; }
p.warning { background: #fff3cd; padding: 0.4em 0.8em; }
"""


def to_html(comparison: Comparison) -> str:
    """A self-contained page; better verdicts green, worse red."""
    def e(text: str) -> str:
        return html.escape(text, quote=True)

    cols = _columns(comparison)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>orderloom comparison</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", "<h1>Comparison</h1>"]
    for p in _preamble(comparison):
        klass = ' class="warning"' if p.startswith("warning") else ""
        out.append(f"<p{klass}>{e(p)}</p>")
    section = None
    for row in comparison.rows:
        if row.section != section:
            if section is not None:
                out.append("</table>")
            section = row.section
            out += [f"<h2>{e(section)}</h2>", "<table>",
                    "<tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"]
        cells = _cells(row)
        verdict_at = {len(cells) - 1 - 3 * k for k in range(len(row.deltas))}
        tds = []
        for i, text in enumerate(cells):
            klass = f' class="{text}"' if i in verdict_at and text in ("better", "worse") else ""
            tds.append(f"<td{klass}>{e(text)}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    if section is not None:
        out.append("</table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
