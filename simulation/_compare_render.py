"""Rendering a :class:`~._compare.Comparison`: terminal text, Markdown and HTML.

Markdown and HTML lead with the summary of the primary metrics
(:mod:`._compare_summary`), then hold the full table of every metric: the
primary ones first (their verdicts Holm-adjusted), then the exploratory ones
section by section (their own unadjusted 95% verdicts). :func:`to_terminal`
is that full table alone; the one-screen terminal summary is
:func:`._compare_summary.to_summary`. Every view prints numbers as reports do
(:mod:`._sections`) and says which cells hold imputed zeros or no sample.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ._compare import Comparison, ComparisonRow, Delta, Estimate, Role
from ._compare_charts import ChartImage, compare_figures
from ._compare_summary import exploratory_tally, format_p, summary_blocks
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


def _group(row: ComparisonRow) -> str:
    """The heading a row is listed under in the full table."""
    if row.role is Role.PRIMARY:
        return "Primary metrics — Holm-adjusted verdicts"
    return f"{row.section} — exploratory, unadjusted verdicts"


def _columns(c: Comparison) -> list[str]:
    cols = ["metric", "unit"] + [f"{label} mean [95% CI]" for label in c.labels]
    for label in c.labels[1:]:
        cols += [f"Δ {label} − {c.labels[0]} [95% CI]", "interval", "p", f"{label} verdict"]
    return cols


_PER_DELTA = 4  # cells per candidate in a full-table row; the verdict is the last


def _cells(row: ComparisonRow) -> list[str]:
    cells = [row.metric, row.unit] + [_estimate_text(e) for e in row.estimates]
    for d in row.deltas:
        cells += [_delta_text(d), _pairing(d), format_p(d.p_value), d.verdict]
    return cells


def _preamble(c: Comparison) -> list[str]:
    lines = [f"Baseline: {c.labels[0]}; deltas are candidate − baseline."]
    lines += [f"warning: {w}" for w in c.warnings]
    return lines


_SUMMARY_COLUMNS = ("metric", "Δ", "95% CI", "interval", "p", "p (Holm)", "verdict")


def _summary_cells(row: ComparisonRow, d: Delta) -> list[str]:
    """A summary row for Markdown and HTML (the terminal has its own, narrower)."""
    if d.delta is None:
        return [row.metric, "n/a", "—", _pairing(d), "—", "—", d.verdict]
    sign = "+" if d.delta > 0 else ""
    unit = f" {row.unit}" if row.unit else ""
    return [row.metric, f"{sign}{format_number(d.delta)}{unit}", format_ci(d.ci_low, d.ci_high),
            _pairing(d), format_p(d.p_value), format_p(d.p_adjusted), d.verdict]


def to_markdown(comparison: Comparison) -> str:
    """The primary metrics' summary per candidate, then a table per section."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    def row_line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell(c) for c in cells) + " |"

    lines = ["# Comparison", ""] + [f"> {cell(p)}" if p.startswith("warning") else cell(p)
                                    for p in _preamble(comparison)]
    for block in summary_blocks(comparison):
        lines += ["", f"## Primary metrics: {cell(block.title)}", "", cell(block.method), "",
                  row_line(_SUMMARY_COLUMNS), "|" + "---|" * len(_SUMMARY_COLUMNS)]
        lines += [row_line(_summary_cells(row, d)) for row, d in block.rows]
        if block.notes:
            lines += [""] + [f"- {cell(note)}" for note in block.notes]
    lines += ["", "## Every metric", "", cell(exploratory_tally(comparison))]
    cols = _columns(comparison)
    group = None
    for row in comparison.rows:
        if _group(row) != group:
            group = _group(row)
            lines += ["", f"### {group}", "", row_line(cols), "|" + "---|" * len(cols)]
        lines.append(row_line(_cells(row)))
    return "\n".join(lines) + "\n"


def to_terminal(comparison: Comparison) -> str:
    """The full table as plain aligned text (no colour codes): one block per
    section, the primary metrics first. It is wide: one column per report and
    four per candidate."""
    cols = _columns(comparison)
    table = [cols] + [_cells(r) for r in comparison.rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = _preamble(comparison)
    group = None
    for row in comparison.rows:
        if _group(row) != group:
            group = _group(row)
            lines += ["", group.upper(), fmt(cols), fmt(["-" * w for w in widths])]
        lines.append(fmt(_cells(row)))
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.better { background: #d4f0d4; color: #155724; }
td.worse { background: #f6d3d3; color: #721c24; }
p.warning { background: #fff3cd; padding: 0.4em 0.8em; }
figure { margin: 1em 0; max-width: 60em; } figure img { max-width: 100%; }
figcaption { color: #444; font-size: 0.9em; }
p.note { color: #777; font-style: italic; }
"""


def _html_row(cells: Sequence[str], verdict_at: set[int]) -> str:
    tds = []
    for i, text in enumerate(cells):
        klass = f' class="{text}"' if i in verdict_at and text in ("better", "worse") else ""
        tds.append(f"<td{klass}>{html.escape(text, quote=True)}</td>")
    return "<tr>" + "".join(tds) + "</tr>"


def _figure(chart: ChartImage) -> str:
    e = html.escape
    return (f'<figure><img src="{chart.uri}" alt="{e(chart.title, quote=True)}">'
            f"<figcaption>{e(chart.caption)}</figcaption></figure>")


def to_html(comparison: Comparison) -> str:
    """A self-contained page, laid out as :func:`to_markdown`, plus charts: a
    forest plot under each candidate's summary, then the time series of every
    run overlaid with fault windows shaded. Better verdicts green, worse red."""
    def e(text: str) -> str:
        return html.escape(text, quote=True)

    figures = compare_figures(comparison)

    def header(cols: Sequence[str]) -> str:
        return "<tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"

    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>orderloom comparison</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", "<h1>Comparison</h1>"]
    for p in _preamble(comparison):
        klass = ' class="warning"' if p.startswith("warning") else ""
        out.append(f"<p{klass}>{e(p)}</p>")
    for k, block in enumerate(summary_blocks(comparison)):
        out += [f"<h2>Primary metrics: {e(block.title)}</h2>", f"<p>{e(block.method)}</p>",
                "<table>", header(_SUMMARY_COLUMNS)]
        out += [_html_row(_summary_cells(row, d), {len(_SUMMARY_COLUMNS) - 1})
                for row, d in block.rows]
        out.append("</table>")
        if block.notes:
            out += ["<ul>"] + [f"<li>{e(note)}</li>" for note in block.notes] + ["</ul>"]
        if k < len(figures.forests):
            out.append(_figure(figures.forests[k]))
    out.append("<h2>Over time</h2>")
    out += [_figure(chart) for chart in figures.series]
    out += [f'<p class="note">{e(title)}: chart skipped, {e(why)} in these reports.</p>'
            for title, why in figures.skipped]
    out += ["<h2>Every metric</h2>", f"<p>{e(exploratory_tally(comparison))}</p>"]
    cols = _columns(comparison)
    group = None
    for row in comparison.rows:
        if _group(row) != group:
            if group is not None:
                out.append("</table>")
            group = _group(row)
            out += [f"<h3>{e(group)}</h3>", "<table>", header(cols)]
        cells = _cells(row)
        out.append(_html_row(cells, {len(cells) - 1 - _PER_DELTA * k
                                     for k in range(len(row.deltas))}))
    if group is not None:
        out.append("</table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
