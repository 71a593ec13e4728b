"""The one-screen summary of a comparison: the primary metrics only.

Per candidate, one block: each primary metric's delta with its unit, the 95%
interval, the Holm-adjusted p-value and the verdict, then notes on what is
left out of the Holm family and why. :func:`summary_blocks` decides the
content (shared by the terminal, Markdown and HTML views, so they say the
same); :func:`to_summary` lays it out for a terminal of a given width,
wrapping metric names at their dots and phrases at their spaces rather than
cutting them, down to about 60 columns. The terminal writes an interval as
``Δ ± half-width`` (the paired and Welch intervals are symmetric) so a row fits
80 columns.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import attrs

from ._compare import (
    FAMILY_ALPHA,
    INFORMATIONAL,
    NOT_COMPUTABLE,
    Comparison,
    ComparisonRow,
    Delta,
)
from ._sections import PRIMARY_METRICS

__all__ = [
    "SummaryBlock",
    "exploratory_tally",
    "format_p",
    "short_number",
    "summary_blocks",
    "to_summary",
]

HEADER = ("metric", "Δ ± 95% CI", "p (Holm)", "verdict")
_GAP = 2
# Shrink steps when a block is wider than the terminal: (column, narrowest
# width), tried in turn. The one long primary name wraps first, then a
# delta's unit goes to a second line, then the verdict wraps.
_METRIC, _DELTA, _P, _VERDICT = range(4)
_SHRINK = ((_METRIC, 16), (_DELTA, 17), (_VERDICT, 14), (_METRIC, 12), (_DELTA, 9),
           (_VERDICT, 10))


@attrs.frozen(kw_only=True)
class SummaryBlock:
    """The primary metrics of one candidate against the baseline.

    Attributes:
        title: ``candidate − baseline``.
        method: how the verdicts were reached (Holm family size, interval kind).
        rows: each primary metric's row with this candidate's delta.
        notes: what was left out of the family and why; verdicts Holm withdrew.
    """

    title: str
    method: str
    rows: tuple[tuple[ComparisonRow, Delta], ...]
    notes: tuple[str, ...]


def short_number(x: float | None, *, sign: bool = False) -> str:
    """A figure as the summary prints it: four significant digits, no exponent
    from 1,000 up (``20881``, not ``2.088e+04``)."""
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0.0:
        return "0"
    plus = "+" if sign and x > 0 else ""
    if x.is_integer() and abs(x) < 1e15:
        return f"{plus}{int(x)}"
    if abs(x) >= 1000:
        return f"{plus}{x:.0f}"
    return f"{plus}{x:.4g}"


def format_p(p: float | None) -> str:
    """A p-value to three decimals, ``<0.001`` below that; ``—`` if there is none."""
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _cells(row: ComparisonRow, d: Delta) -> tuple[str, ...]:
    """A terminal row, as :data:`HEADER`."""
    if d.delta is None or d.ci_low is None or d.ci_high is None:
        return (row.metric, NOT_COMPUTABLE, "—", d.verdict)
    unit = f" {row.unit}" if row.unit else ""
    half = (d.ci_high - d.ci_low) / 2
    return (row.metric, f"{short_number(d.delta, sign=True)} ± {short_number(half)}{unit}",
            format_p(d.p_adjusted), d.verdict)


def _left_out(row: ComparisonRow, d: Delta, k: int) -> str | None:
    """Why a primary metric is not in candidate ``k``'s Holm family, if it is not."""
    if d.p_adjusted is not None:
        return None
    if d.verdict == INFORMATIONAL:
        return f"{row.metric}: no better direction recorded; not in the Holm family"
    base, cand = row.estimates[0], row.estimates[k + 1]
    if base.no_sample or cand.no_sample:
        side = "neither report" if base.no_sample and cand.no_sample else (
            "the baseline" if base.no_sample else "the candidate")
        why = f"{side} has no sample"
    elif d.n >= 2:
        why = "values too large to difference"
    elif d.n == 0:
        why = "no usable values: missing or not finite"
    else:
        what = "paired value" if d.paired else "value on a side"
        why = f"{d.n} {what}{'' if d.n == 1 else 's'}, need 2"
    return f"{row.metric}: n/a ({why}); not in the Holm family"


def _withdrawn(row: ComparisonRow, d: Delta) -> str | None:
    """A note when the unadjusted interval excludes zero but Holm's decision does not."""
    if d.p_adjusted is None or d.p_adjusted <= FAMILY_ALPHA or row.lower_is_better is None:
        return None
    if d.ci_low is None or d.ci_high is None or not (d.ci_low > 0 or d.ci_high < 0):
        return None
    up = d.ci_low > 0
    unadjusted = "worse" if up == row.lower_is_better else "better"
    return (f"{row.metric}: {unadjusted} by its own 95% interval (p {format_p(d.p_value)}), "
            f"not after Holm (p {format_p(d.p_adjusted)})")


def summary_blocks(comparison: Comparison) -> tuple[SummaryBlock, ...]:
    """One block per candidate: the primary metrics, the family, the notes."""
    base = comparison.labels[0]
    primary = comparison.primary
    blocks = []
    for k, label in enumerate(comparison.labels[1:]):
        deltas = [row.deltas[k] for row in primary]
        m = comparison.family_size(k)
        kinds = {d.paired for d in deltas if d.delta is not None}
        interval = {frozenset({True}): "paired", frozenset({False}): "Welch (unpaired)"}.get(
            frozenset(kinds), "paired or Welch (see the full table)")
        method = (f"Verdicts: Holm's step-down over {m} of the {len(PRIMARY_METRICS)} "
                  f"primary metrics (family-wise error ≤ {FAMILY_ALPHA:.0%}); "
                  f"{interval} 95% intervals, unadjusted.")
        notes = [n for row, d in zip(primary, deltas, strict=True)
                 for n in (_left_out(row, d, k), _withdrawn(row, d)) if n is not None]
        notes += [f"{metric}: in neither report; not in the Holm family"
                  for metric in comparison.primary_absent]
        blocks.append(SummaryBlock(title=f"{label} − {base}", method=method,
                                   rows=tuple(zip(primary, deltas, strict=True)),
                                   notes=tuple(notes)))
    return tuple(blocks)


def exploratory_tally(comparison: Comparison) -> str:
    """One sentence on the exploratory metrics: how many, and their verdicts per candidate."""
    rows = comparison.exploratory
    counts = []
    for k, label in enumerate(comparison.labels[1:]):
        verdicts = [row.deltas[k].verdict for row in rows]
        counts.append(f"{label} {verdicts.count('worse')} worse, "
                      f"{verdicts.count('better')} better")
    many = "" if len(rows) == 1 else "s"
    return (f"Exploratory: {len(rows)} other metric{many}, each with its own unadjusted 95% "
            f"verdict (leads, not findings): " + "; ".join(counts) + ".")


# -- the terminal ------------------------------------------------------------------


def _wrap_name(name: str, width: int) -> list[str]:
    """A dotted name in lines of at most ``width``, broken after a dot (or an
    underscore, or anywhere, if a part is still too long)."""
    parts: list[str] = []
    for piece in name.replace(".", ".\0").split("\0"):
        if len(piece) <= width:
            parts.append(piece)
            continue
        for sub in piece.replace("_", "_\0").split("\0"):
            parts += [sub[i:i + width] for i in range(0, len(sub), width)] or [""]
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return lines


def _wrap(text: str, width: int, column: int) -> list[str]:
    if len(text) <= width:
        return [text]
    if column == _METRIC:
        return _wrap_name(text, width)
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _fit(table: Sequence[Sequence[str]], width: int) -> list[int]:
    """Column widths for ``table`` within ``width``, shrinking as :data:`_SHRINK` says."""
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    for column, narrowest in _SHRINK:
        excess = sum(widths) + _GAP * (len(widths) - 1) - width
        if excess <= 0:
            break
        widths[column] = max(min(narrowest, widths[column]), widths[column] - excess)
    return widths


def _table(rows: Sequence[Sequence[str]], width: int) -> list[str]:
    table = [HEADER, *rows]
    widths = _fit(table, width)
    out = []
    for cells in table:
        wrapped = [_wrap(c, w, i) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        for j in range(max(len(w) for w in wrapped)):
            parts = [(w[j] if j < len(w) else "").ljust(widths[i])
                     for i, w in enumerate(wrapped)]
            out.append((" " * _GAP).join(parts).rstrip())
    return out


def to_summary(comparison: Comparison, width: int = 80) -> str:
    """The primary metrics of every candidate, laid out within ``width`` columns.

    Prose wraps at spaces, metric names at dots; no line is longer than
    ``width`` down to about 60 columns (below that a row may run over).
    """
    width = max(width, 20)

    def prose(text: str, indent: str = "") -> list[str]:
        return textwrap.wrap(text, width, subsequent_indent=indent,
                             break_on_hyphens=False, break_long_words=True)

    lines = prose(f"Baseline: {comparison.labels[0]}; deltas are candidate − baseline.")
    for warning in comparison.warnings:
        lines += prose(f"warning: {warning}", "  ")
    for block in summary_blocks(comparison):
        lines += [""] + prose(f"PRIMARY METRICS  {block.title}") + prose(block.method)
        lines += _table([_cells(row, d) for row, d in block.rows], width)
        lines += [ln for note in block.notes for ln in prose(f"  note: {note}", "    ")]
    lines += [""] + prose(exploratory_tally(comparison))
    return "\n".join(lines) + "\n"
