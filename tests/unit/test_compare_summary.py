"""The one-screen summary of the primary metrics, and the split in every view."""

from __future__ import annotations

import pytest

from orderloom.simulation import (
    compare,
    format_p,
    to_html,
    to_markdown,
    to_summary,
    to_terminal,
)
from orderloom.simulation._compare_summary import short_number
from orderloom.simulation._sections import PRIMARY_METRICS

from .compare_data import PRIMARY_BASE, PRIMARY_CAND, primary_comparison, report_with_gaps

AT_80 = """\
Baseline: cautious; deltas are candidate − baseline.

PRIMARY METRICS  aggressive − cautious
Verdicts: Holm's step-down over 7 of the 8 primary metrics (family-wise error ≤
5%); paired 95% intervals, unadjusted.
metric            Δ ± 95% CI                 p (Holm)  verdict
stuck_orders      +1.2 ± 0.7079 orders       0.056     no significant difference
exception_rate    +0.004 ± 0.01111           1.000     no significant difference
                  cases/order
bounce_rate       0 ± 0 bounces/case         1.000     no significant difference
manual_overrides  0 ± 0 decisions            1.000     no significant difference
state_mismatches  +39.8 ± 1.619 orders       <0.001    worse
wrong_actions     +2.4 ± 1.416 actions       0.056     no significant difference
throughput        +2.4 ± 2.575 orders        0.243     no significant difference
cycle_time.       n/a                        —         n/a
end_to_end.p50
  note: stuck_orders: worse by its own 95% interval (p 0.009), not after Holm (p
    0.056)
  note: wrong_actions: worse by its own 95% interval (p 0.009), not after Holm
    (p 0.056)
  note: cycle_time.end_to_end.p50: n/a (1 paired value, need 2); not in the Holm
    family

Exploratory: 1 other metric, each with its own unadjusted 95% verdict (leads,
not findings): aggressive 1 worse, 0 better.
"""

AT_120_TABLE = """\
metric                     Δ ± 95% CI                    p (Holm)  verdict
stuck_orders               +1.2 ± 0.7079 orders          0.056     no significant difference
exception_rate             +0.004 ± 0.01111 cases/order  1.000     no significant difference
bounce_rate                0 ± 0 bounces/case            1.000     no significant difference
manual_overrides           0 ± 0 decisions               1.000     no significant difference
state_mismatches           +39.8 ± 1.619 orders          <0.001    worse
wrong_actions              +2.4 ± 1.416 actions          0.056     no significant difference
throughput                 +2.4 ± 2.575 orders           0.243     no significant difference
cycle_time.end_to_end.p50  n/a                           —         n/a
  note: stuck_orders: worse by its own 95% interval (p 0.009), not after Holm (p 0.056)
"""


def test_summary_at_80_columns() -> None:
    """At 80 columns the summary wraps a long name at its dots and a long delta
    before its unit, and no line runs over."""
    text = to_summary(primary_comparison(), 80)
    assert text == AT_80
    assert max(len(line) for line in text.splitlines()) <= 80


def test_summary_at_120_columns() -> None:
    """At 120 columns every primary metric takes one line, with its name whole."""
    text = to_summary(primary_comparison(), 120)
    assert AT_120_TABLE in text
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "Verdicts: Holm's step-down over 7 of the 8 primary metrics (family-wise error " \
           "≤ 5%); paired 95% intervals, unadjusted.\n" in text


def _names(text: str) -> list[str]:
    """The metric column of a summary table, wrapped names joined again."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("metric "))
    cut, p_at = lines[head].index("Δ"), lines[head].index("p (Holm)")
    names: list[str] = []
    for line in lines[head + 1:]:
        if not line or line.startswith("  note"):
            break
        if line[p_at:p_at + 1].strip():  # a row's first line holds its p-value
            names.append(line[:cut].strip())
        else:
            names[-1] += line[:cut].strip()
    return names


@pytest.mark.parametrize("width", [60, 70, 80, 100, 120, 200])
def test_summary_fits_other_widths(width: int) -> None:
    """Down to 60 columns nothing runs over, and every primary metric is still
    there, in order, its name whole once the wrapped lines are joined."""
    text = to_summary(primary_comparison(), width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert _names(text) == list(PRIMARY_METRICS)


def test_summary_survives_a_very_narrow_terminal() -> None:
    """Below 60 columns rows may run over, but the summary still renders every row."""
    text = to_summary(primary_comparison(), 30)
    assert "state_" in text and "worse" in text


def test_summary_names_welch_intervals_and_warnings() -> None:
    """Runs on other seeds say their intervals are Welch's; warnings lead the summary."""
    base = report_with_gaps(PRIMARY_BASE, "a")
    cand = report_with_gaps(PRIMARY_CAND, "b")
    cand["replication_seeds"] = [1, 2, 3, 4, 5]
    text = to_summary(compare([base, cand], ["a", "b"], allow_different=True), 80)
    assert "Welch (unpaired) 95% intervals" in text
    assert text.splitlines()[1].startswith("warning: replication seeds differs")


def test_summary_names_a_primary_metric_no_report_has() -> None:
    """A primary metric missing from both reports is named, not silently dropped."""
    base = {k: v for k, v in PRIMARY_BASE.items() if k != "bounce_rate"}
    cand = {k: v for k, v in PRIMARY_CAND.items() if k != "bounce_rate"}
    text = to_summary(compare([report_with_gaps(base), report_with_gaps(cand)], ["a", "b"]), 120)
    assert "note: bounce_rate: in neither report; not in the Holm family" in text
    assert "over 6 of the 8 primary metrics" in text


@pytest.mark.parametrize(("x", "sign", "text"), [
    (None, False, "—"), (0.0, True, "0"), (-0.0, False, "0"), (3.0, True, "+3"),
    (-2.5, True, "-2.5"), (0.0123456, False, "0.01235"), (20881.3, False, "20881"),
    (1234.5, True, "+1234"), (float("inf"), False, "inf"),
])
def test_short_numbers(x: float | None, sign: bool, text: str) -> None:
    """Summary figures keep four significant digits and never an exponent from 1,000 up."""
    assert short_number(x, sign=sign) == text


@pytest.mark.parametrize(("p", "text"), [(None, "—"), (0.0004, "<0.001"), (0.0556, "0.056"),
                                         (1.0, "1.000")])
def test_p_values_print_to_three_decimals(p: float | None, text: str) -> None:
    """p-values print to three decimals, tiny ones as <0.001."""
    assert format_p(p) == text


def test_markdown_and_html_lead_with_the_primary_metrics() -> None:
    """compare.md and compare.html put the primary summary (with raw and Holm
    p-values and the notes) before every metric, labelled primary or exploratory."""
    c = primary_comparison()
    md, page = to_markdown(c), to_html(c)
    assert md.index("## Primary metrics: aggressive − cautious") < md.index("## Every metric")
    assert "| metric | Δ | 95% CI | interval | p | p (Holm) | verdict |" in md
    assert "| stuck_orders | +1.2 orders | [0.492143, 1.90786] | paired | 0.009 | 0.056 " \
           "| no significant difference |" in md
    assert "- cycle_time.end_to_end.p50: n/a (1 paired value, need 2)" in md
    assert md.index("### Primary metrics — Holm-adjusted verdicts") < md.index(
        "### Other metrics — exploratory, unadjusted verdicts")
    assert "| handoffs | handoffs | 30 [" in md and "| 0.009 | worse |" in md
    assert page.index("<h2>Primary metrics: aggressive − cautious</h2>") < page.index(
        "<h2>Every metric</h2>")
    assert page.count('<td class="worse">worse</td>') == 3  # summary, primary and exploratory
    assert "<li>stuck_orders: worse by its own 95% interval" in page
    term = to_terminal(c)
    assert term.index("PRIMARY METRICS — HOLM-ADJUSTED VERDICTS") < term.index(
        "OTHER METRICS — EXPLORATORY, UNADJUSTED VERDICTS")


def test_summary_says_why_a_primary_metric_has_no_verdict() -> None:
    """No sample on a side, or a value sanitised to null: n/a with the reason."""
    base = report_with_gaps(PRIMARY_BASE, "a")
    cand = report_with_gaps({**PRIMARY_CAND, "cycle_time.end_to_end.p50": [None] * 5}, "b")
    cand["metrics"]["throughput"]["values"][2] = None
    text = to_summary(compare([base, cand], ["a", "b"]), 200)
    assert "note: cycle_time.end_to_end.p50: n/a (the candidate has no sample); not in the " \
           "Holm family" in text
    assert "note: throughput: n/a (no usable values: missing or not finite)" in text
    assert "over 6 of the 8 primary metrics" in text
