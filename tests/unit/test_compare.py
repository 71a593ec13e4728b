"""compare(): paired vs Welch intervals, verdicts, and the three renderings."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from orderloom.simulation import (
    IncomparableReports,
    ReplicationResult,
    Role,
    aggregate,
    compare,
    format_p,
    to_html,
    to_markdown,
    to_terminal,
)
from orderloom.simulation._compare import Comparison, ComparisonRow
from orderloom.simulation._compare_charts import compare_figures, forest_of
from orderloom.simulation._report import sanitize
from orderloom.simulation._result import metric_info
from orderloom.simulation._sections import HEALTH_METRICS, PRIMARY_METRICS
from orderloom.simulation._stats import holm, paired_difference, welch_difference

from .compare_data import PRIMARY_BASE, PRIMARY_CAND, primary_comparison, report_with_gaps

# Replication k of both policies faces the same world: a large shared
# component (10, 20, ... 50) plus a small policy effect. Pairing cancels the
# shared part; Welch sees only two wide, overlapping samples.
WORLD = [10.0, 20.0, 30.0, 40.0, 50.0]
CANDIDATE_STUCK = [9.0, 19.2, 28.9, 39.1, 48.8]  # ~1 lower in every replication


def _report(metrics: Mapping[str, Sequence[float]], *, seeds: Sequence[int] | None = None,
            scenario: str = "peak-day", policy: str = "p") -> dict[str, Any]:
    n = len(next(iter(metrics.values())))
    seeds = list(seeds) if seeds is not None else [100 + k for k in range(n)]
    results = [ReplicationResult(replication=k, seed=seeds[k],
                                 metrics={name: v[k] for name, v in metrics.items()})
               for k in range(n)]
    return aggregate(results, header={"scenario": scenario, "policy": policy})


def _row(c: Comparison, metric: str) -> ComparisonRow:
    return next(r for r in c.rows if r.metric == metric)


def test_same_seeds_give_a_paired_interval() -> None:
    """Reports that ran the same replication seeds are compared pairwise."""
    c = compare([_report({"stuck_orders": WORLD}), _report({"stuck_orders": CANDIDATE_STUCK})],
                ["cautious", "aggressive"])
    d = _row(c, "stuck_orders").deltas[0]
    expected = paired_difference(WORLD, CANDIDATE_STUCK)
    assert d.paired
    assert (d.delta, d.ci_low, d.ci_high) == pytest.approx(
        (-expected.mean, -expected.ci_high, -expected.ci_low))
    assert c.warnings == ()


def test_different_seeds_or_counts_fall_back_to_welch() -> None:
    """Other seeds, or a different number of replications, give a Welch interval."""
    base = _report({"stuck_orders": WORLD})
    other_seeds = _report({"stuck_orders": CANDIDATE_STUCK}, seeds=[1, 2, 3, 4, 5])
    fewer = _report({"stuck_orders": CANDIDATE_STUCK[:4]})
    with pytest.raises(IncomparableReports, match="replication seeds differs"):
        compare([base, other_seeds, fewer], ["a", "b", "c"])
    c = compare([base, other_seeds, fewer], ["a", "b", "c"], allow_different=True)
    b, short = _row(c, "stuck_orders").deltas
    assert not b.paired and not short.paired
    expected = welch_difference(WORLD, CANDIDATE_STUCK)
    assert (b.delta, b.ci_low, b.ci_high) == pytest.approx(
        (-expected.mean, -expected.ci_high, -expected.ci_low))
    assert any("Welch" in w for w in c.warnings)


def test_paired_is_significant_where_welch_is_not() -> None:
    """With correlated replications the paired CI excludes zero while Welch's does not."""
    base = _report({"stuck_orders": WORLD})
    paired = compare([base, _report({"stuck_orders": CANDIDATE_STUCK})], ["a", "b"])
    unpaired = compare([base, _report({"stuck_orders": CANDIDATE_STUCK}, seeds=[9] * 5)],
                       ["a", "b"], allow_different=True)
    p, w = _row(paired, "stuck_orders").deltas[0], _row(unpaired, "stuck_orders").deltas[0]
    assert p.verdict == "better" and p.ci_high is not None and p.ci_high < 0
    assert w.verdict == "no significant difference"
    assert p.ci_low is not None and w.ci_low is not None and w.ci_high is not None
    assert (p.ci_high - p.ci_low) < (w.ci_high - w.ci_low) / 10


@pytest.mark.parametrize(("metric", "candidate", "expected"), [
    ("stuck_orders", [v - 1 for v in WORLD], "better"),  # lower is better, went down
    ("stuck_orders", [v + 1 for v in WORLD], "worse"),
    ("throughput", [v + 1 for v in WORLD], "better"),  # higher is better, went up
    ("throughput", [v - 1 for v in WORLD], "worse"),
    ("throughput", [v + (-1) ** k for k, v in enumerate(WORLD)], "no significant difference"),
    ("utilisation.fraud", [v + 1 for v in WORLD], "—"),  # no better direction: informational
])
def test_verdicts_in_both_directions(metric: str, candidate: list[float], expected: str) -> None:
    """The verdict judges the candidate by the metric's direction, or is '—' if it has none."""
    c = compare([_report({metric: WORLD}), _report({metric: candidate})], ["a", "b"])
    assert _row(c, metric).deltas[0].verdict == expected


def test_delta_is_candidate_minus_baseline() -> None:
    """A candidate with higher values shows a positive delta."""
    c = compare([_report({"throughput": WORLD}), _report({"throughput": [v + 2 for v in WORLD]})],
                ["a", "b"])
    assert _row(c, "throughput").deltas[0].delta == pytest.approx(2.0)


def test_health_metrics_come_first_in_order() -> None:
    """Rows start with the five health metrics in the mission's order."""
    names = ["throughput", "zeta", *reversed(HEALTH_METRICS), "wrong_actions"]
    metrics = {n: WORLD for n in names}
    c = compare([_report(metrics), _report(metrics)], ["a", "b"])
    assert [r.metric for r in c.rows][:6] == [*HEALTH_METRICS, "wrong_actions"]
    assert c.rows[0].section == "Health metrics"


def test_scenario_mismatch_is_refused_unless_allowed() -> None:
    """Different scenarios are refused; allowed, they are compared and every
    rendering carries the warning."""
    reports = [_report({"stuck_orders": WORLD}),
               _report({"stuck_orders": WORLD}, scenario="baseline")]
    with pytest.raises(IncomparableReports) as refused:
        compare(reports, ["a", "b"])
    assert refused.value.differences == (
        "scenario differs: a has 'peak-day', b has 'baseline'",)
    c = compare(reports, ["a", "b"], allow_different=True)
    assert any("scenario differs" in w for w in c.warnings)
    for text in (to_markdown(c), to_terminal(c), to_html(c)):
        assert "scenario differs" in text


@pytest.mark.parametrize(("key", "other", "said"), [
    ("horizon", 7200.0, "horizon (s) differs: a has 18000.0, b has 7200.0"),
    ("warm_up", 0.0, "warm-up (s) differs: a has 3600.0, b has 0.0"),
    ("world", "ffff", "scenario content (world digest) differs: a has 'abcd', b has 'ffff'"),
])
def test_runs_of_another_horizon_warm_up_or_world_are_refused(
        key: str, other: object, said: str) -> None:
    """Same scenario name and seeds, but another horizon, warm-up or scenario
    content: refused, naming both values."""
    header = {"horizon": 18000.0, "warm_up": 3600.0, "world": "abcd"}
    base, cand = _report({"stuck_orders": WORLD}), _report({"stuck_orders": WORLD})
    base.update(header)
    cand.update(header, **{key: other})
    with pytest.raises(IncomparableReports) as refused:
        compare([base, cand], ["a", "b"])
    assert refused.value.differences == (said,)
    assert compare([base, dict(base)], ["a", "b"]).warnings == ()


def test_metric_absent_from_one_report_counts_as_zero() -> None:
    """A breakdown only one report recorded is compared against zeros and flagged."""
    base = _report({"stuck_orders": WORLD, "exception_rate.by_reason.fraud": [0.1] * 5})
    cand = _report({"stuck_orders": WORLD})
    row = _row(compare([base, cand], ["a", "b"]), "exception_rate.by_reason.fraud")
    assert row.estimates[1].imputed and row.estimates[1].mean == 0.0
    assert row.deltas[0].delta == pytest.approx(-0.1) and row.deltas[0].verdict == "better"


def _sampled(values: Sequence[float | None]) -> dict[str, Any]:
    """A report whose stuck-spell age had a sample only where a value is given."""
    results = [ReplicationResult(replication=k, seed=100 + k, metrics={
        "stuck_orders": 1.0, **({} if v is None else {"stuck_orders.age.p50": v})})
        for k, v in enumerate(values)]
    return aggregate(results, header={"scenario": "peak-day", "policy": "p"})


def test_a_statistic_without_a_sample_is_absent_not_zero() -> None:
    """A quantile missing from a replication had no sample: it is left out of
    the mean and of the pairs, never counted as 0; a side with no sample at
    all gets no verdict."""
    base = _sampled([100.0, 200.0, 300.0, 400.0, 500.0])
    cand = _sampled([None, 210.0, None, 420.0, 530.0])
    entry = cand["metrics"]["stuck_orders.age.p50"]
    assert entry["values"] == [None, 210.0, None, 420.0, 530.0] and entry["n"] == 3
    assert entry["mean"] == pytest.approx(386.6667, rel=1e-4)  # not 232 with zeros
    row = _row(compare([base, cand], ["a", "b"]), "stuck_orders.age.p50")
    assert (row.estimates[1].n, row.estimates[1].of) == (3, 5)
    assert "(n=3 of 5)" in to_terminal(compare([base, cand], ["a", "b"]))
    d = row.deltas[0]
    expected = paired_difference([200.0, 400.0, 500.0], [210.0, 420.0, 530.0])
    assert d.paired and d.delta == pytest.approx(-expected.mean)
    none = _sampled([None] * 5)
    row = _row(compare([base, none], ["a", "b"]), "stuck_orders.age.p50")
    assert row.estimates[1].no_sample and row.estimates[1].mean is None
    assert row.deltas[0].verdict == "n/a"
    assert "— (no sample)" in to_terminal(compare([base, none], ["a", "b"]))


def test_non_finite_values_are_not_judged() -> None:
    """A report whose values were sanitised to null (or are NaN) gets 'n/a', not a crash."""
    base = _report({"stuck_orders": WORLD, "throughput": WORLD})
    cand = sanitize(_report({"stuck_orders": WORLD, "throughput": WORLD}))
    cand["metrics"]["stuck_orders"]["values"][2] = None
    cand["metrics"]["stuck_orders"]["mean"] = None
    cand["metrics"]["throughput"]["values"][0] = math.nan
    c = compare([base, json.loads(json.dumps(cand))], ["a", "b"])
    for metric in ("stuck_orders", "throughput"):
        d = _row(c, metric).deltas[0]
        assert (d.delta, d.verdict) == (None, "n/a")
    assert _row(c, "stuck_orders").estimates[1].mean is None
    assert "| stuck_orders |" in to_markdown(c)


def test_renderings_show_deltas_pairing_and_verdicts() -> None:
    """Markdown, terminal and HTML all carry the delta, pairing and verdict of each row."""
    c = compare([_report({"stuck_orders": WORLD, "throughput": WORLD}),
                 _report({"stuck_orders": CANDIDATE_STUCK, "throughput": [v - 1 for v in WORLD]})],
                ["cautious", "aggressive"])
    md, term, page = to_markdown(c), to_terminal(c), to_html(c)
    for text in (md, term, page):
        assert "paired" in text and "better" in text and "worse" in text
        assert "Δ aggressive − cautious" in text
    assert "| stuck_orders | orders | 30 [" in md
    assert "\x1b[" not in term
    term_rows = [ln for ln in term.splitlines() if ln.startswith(("stuck_orders", "throughput"))]
    assert len({ln.index("paired") for ln in term_rows}) == 1  # columns aligned
    assert '<td class="better">better</td>' in page and '<td class="worse">worse</td>' in page
    assert "http://" not in page and "https://" not in page


def test_compare_rejects_bad_arguments() -> None:
    """No reports, or labels not matching reports, raise ValueError."""
    with pytest.raises(ValueError, match="at least one"):
        compare([], [])
    with pytest.raises(ValueError, match="labels"):
        compare([_report({"stuck_orders": WORLD})], ["a", "b"])


# -- primary metrics and Holm ------------------------------------------------------

def test_primary_metrics_come_first_and_the_rest_are_exploratory() -> None:
    """The eight primary metrics lead, in their fixed order; every other row is exploratory."""
    c = primary_comparison()
    assert [r.metric for r in c.primary] == list(PRIMARY_METRICS)
    assert [r.metric for r in c.rows][:8] == list(PRIMARY_METRICS)
    assert [r.metric for r in c.exploratory] == ["handoffs"]
    assert all(r.role is Role.EXPLORATORY for r in c.rows[8:])
    assert c.primary_absent == ()


def test_primary_metrics_have_a_direction_and_a_unit() -> None:
    """Every primary metric is judged (a better direction) and printed with a unit."""
    for metric in PRIMARY_METRICS:
        info = metric_info(metric)
        assert info.lower_is_better is not None and info.unit, metric


def test_primary_verdicts_are_holm_decisions() -> None:
    """A primary metric's verdict is Holm's decision over the family, so a
    p-value of 0.0093 that an exploratory metric calls 'worse' is not
    significant among seven primary tests; the adjusted p-values are holm()'s."""
    c = primary_comparison()
    family = [r for r in c.primary if r.deltas[0].p_adjusted is not None]
    assert len(family) == c.family_size(0) == 7
    raw = [p for r in family if (p := r.deltas[0].p_value) is not None]
    assert [r.deltas[0].p_adjusted for r in family] == list(holm(raw)) and len(raw) == 7
    stuck, twin = _row(c, "stuck_orders").deltas[0], _row(c, "handoffs").deltas[0]
    assert stuck.p_value == twin.p_value == pytest.approx(0.0092617, rel=1e-4)
    assert stuck.ci_low is not None and stuck.ci_low > 0  # its own interval excludes 0
    assert stuck.verdict == "no significant difference"
    assert stuck.p_adjusted == pytest.approx(6 * 0.0092617, rel=1e-4)  # second smallest of 7
    assert (twin.verdict, twin.p_adjusted) == ("worse", None)
    assert _row(c, "wrong_actions").deltas[0].p_adjusted == stuck.p_adjusted  # tied
    assert _row(c, "state_mismatches").deltas[0].verdict == "worse"


def test_a_primary_metric_without_an_interval_is_left_out_of_the_family() -> None:
    """Absent is not zero: one paired sample of the median cycle time gives
    n/a, no adjusted p-value, and a family of seven."""
    d = _row(primary_comparison(), "cycle_time.end_to_end.p50").deltas[0]
    assert (d.verdict, d.delta, d.n, d.p_value, d.p_adjusted) == ("n/a", None, 1, None, None)


def test_a_primary_metric_no_report_has_is_named_absent() -> None:
    """A primary metric neither report holds has no row and is listed as absent."""
    base = {k: v for k, v in PRIMARY_BASE.items() if not k.startswith("cycle_time")}
    cand = {k: v for k, v in PRIMARY_CAND.items() if not k.startswith("cycle_time")}
    c = compare([report_with_gaps(base), report_with_gaps(cand)], ["a", "b"])
    assert c.primary_absent == ("cycle_time.end_to_end.p50",)
    assert c.family_size(0) == 7


def test_strong_effects_survive_holm() -> None:
    """Every primary metric shifted far beyond its noise is significant after Holm."""
    worse = {m: [v + 100.0 * (1 if m != "throughput" else -1) + k % 2 for k, v in
                 enumerate(WORLD)] for m in PRIMARY_METRICS}
    c = compare([_report({m: WORLD for m in PRIMARY_METRICS}), _report(worse)], ["a", "b"])
    assert [r.deltas[0].verdict for r in c.primary] == ["worse"] * 8
    assert all((r.deltas[0].p_adjusted or 1.0) < 0.001 for r in c.primary)


def test_each_candidate_is_its_own_family() -> None:
    """With two candidates, each one's primary p-values are adjusted among its own."""
    base = report_with_gaps(PRIMARY_BASE, "a")
    c = compare([base, report_with_gaps(PRIMARY_CAND, "b"), report_with_gaps(PRIMARY_BASE, "c")],
                ["a", "b", "c"])
    alone = _row(primary_comparison(), "stuck_orders").deltas[0]
    row = _row(c, "stuck_orders")
    assert row.deltas[0].p_adjusted == alone.p_adjusted
    assert row.deltas[1].p_adjusted == 1.0 and c.family_size(1) == 8


# -- compare.html's charts -------------------------------------------------------------


def test_forest_rows_are_the_primary_deltas_with_their_verdicts() -> None:
    """The forest plot holds each primary metric in order with the table's delta,
    interval and Holm verdict, and the Holm p-value beside it."""
    c = primary_comparison()
    forest = forest_of(c, 0)
    assert [r.metric for r in forest.rows] == [r.metric for r in c.primary]
    for frow, row in zip(forest.rows, c.primary, strict=True):
        d = row.deltas[0]
        assert frow.verdict == d.verdict
        if row.unit != "s":
            assert (frow.delta, frow.low, frow.high, frow.unit) == (
                d.delta, d.ci_low, d.ci_high, row.unit)
        if d.p_adjusted is not None:
            assert frow.note == f"{d.verdict}\np (Holm) {format_p(d.p_adjusted)}"
    mismatches = next(r for r in forest.rows if r.metric == "state_mismatches")
    assert mismatches.verdict == "worse" and mismatches.low is not None and mismatches.low > 0
    cycle = next(r for r in forest.rows if r.metric == "cycle_time.end_to_end.p50")
    assert cycle.delta is None and cycle.verdict == "n/a"  # one sample: no interval
    assert "aggressive − cautious" in forest.title
    assert f"Holm-adjusted over the {c.family_size(0)} metrics" in forest.caption


def test_forest_draws_durations_in_minutes_or_hours() -> None:
    """A duration delta of about two hours is drawn in h, its interval scaled alike."""
    base = {"cycle_time.end_to_end.p50": [7200.0, 7300.0, 7100.0, 7250.0, 7150.0]}
    cand = {"cycle_time.end_to_end.p50": [14400.0, 14600.0, 14300.0, 14500.0, 14450.0]}
    c = compare([_report(base), _report(cand)], ["a", "b"])
    row = forest_of(c, 0).rows[0]
    delta = _row(c, "cycle_time.end_to_end.p50").deltas[0]
    assert row.unit == "h" and delta.delta is not None and delta.ci_low is not None
    assert row.delta == delta.delta / 3600.0 and row.low == delta.ci_low / 3600.0


def _with_series(metrics: Mapping[str, Sequence[float]], level: float) -> dict[str, Any]:
    n = len(next(iter(metrics.values())))
    results = [ReplicationResult(
        replication=k, seed=100 + k, metrics={name: v[k] for name, v in metrics.items()},
        series={"stuck_orders": [(0.0, 0.0), (3600.0, level + k), (7200.0, level)],
                "queue_length.fraud": [(0.0, 1.0), (3600.0, level), (7200.0, 0.0)]},
        fault_windows=[(1800.0, 5400.0, "gateway_outage down")]) for k in range(n)]
    return aggregate(results, header={"scenario": "peak-day", "horizon": 7200.0,
                                      "warm_up": 600.0})


def test_compare_page_holds_the_forest_plot_and_the_runs_overlaid() -> None:
    """compare.html embeds a forest plot per candidate under its summary and the
    series of both runs overlaid, each with its caption; no chart is external."""
    metrics = {"stuck_orders": WORLD, "throughput": WORLD}
    c = compare([_with_series(metrics, 2.0), _with_series(metrics, 5.0)], ["base", "cand"])
    assert [t.label for t in c.timelines] == ["base", "cand"]
    assert c.timelines[1].series["stuck_orders"].mean == (0.0, 7.0, 5.0)
    figures = compare_figures(c)
    assert len(figures.forests) == 1 and len(figures.series) == 2
    assert [title for title, _ in figures.skipped] == ["Orders whose downstream views disagree",
                                                       "Orders in each open stage"]
    page = to_html(c)
    assert page.count('<img src="data:image/png;base64,') == 3
    assert page.index("Primary metrics: cand − base") < page.index(figures.forests[0].caption)
    assert "Each run: the mean of 5 replications, band: 95% CI of the mean." in page
    assert "http://" not in page and "https://" not in page
