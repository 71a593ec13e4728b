"""report.json / report.md / report.html written from an aggregated report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from orderloom.simulation import (
    ReplicationResult,
    aggregate,
    write_report,
)
from orderloom.simulation._report import render_html, render_markdown, sanitize
from orderloom.simulation._sections import HEALTH_METRICS, format_number, ordered_sections

HEADER = {"scenario": "payment-outage", "policy": "cautious", "seed": 7, "replications": 3,
          "horizon": 86_400.0, "warm_up": 3_600.0,
          "reproduce": "orderloom simulate payment-outage --policy cautious --seed 7 "
                       "--replications 3"}


def _replication(k: int, *, wall: float = 1.5) -> ReplicationResult:
    base = float(k)
    metrics = {
        "orders.placed": 1000 + base, "throughput": 950 + 3 * base,
        "stuck_orders": 12 + base, "stuck_orders.by_state.awaiting_payment": 9 + base,
        "exception_rate": 0.05 + base / 100, "exception_rate.by_reason.bad_address": 0.02,
        "exception_rate.by_reason.fraud_flagged": 0.01 + base / 1000,
        "bounce_rate": 0.1, "bounce_rate.by_pair.fraud->support": 0.05 + base / 100,
        "manual_overrides": 4 + base, "manual_overrides.by_team.fraud": 3 + base,
        "manual_overrides.by_reason.false_positive": 2.0,
        "state_mismatches": 2 + base, "wrong_actions": float(k == 1),
        "wrong_actions.shipped_unpaid": float(k == 1),
        "cycle_time.payment.p50": 60 + base, "cycle_time.payment.p95": 300 + base,
        "cycle_time.end_to_end.p50": 7200 + base, "cycle_time.end_to_end.p99": 30_000 + base,
        "sla_breaches": 1 + base, "queue_length.fraud": 2.5 + base, "utilisation.fraud": 0.7,
        "queue_length.support": 1.0, "utilisation.support": 0.4 + base / 10,
        "orders_by_final_state.delivered": 940 + base, "dead_letters": 0.0,
    }
    series = {
        "stuck_orders": [(0.0, 0.0), (3600.0, 5.0), (7200.0, 2.0)],
        "queue_length.fraud": [(0.0, 1.0), (3600.0, 4.0)],
        "queue_length.support": [(0.0, 0.0), (3600.0, 2.0)],
        "state_mismatches": [(0.0, 0.0), (3600.0, 1.0 + base), (7200.0, 0.0)],
        "in_stage.awaiting_payment": [(0.0, 2.0), (3600.0, 4.0 + base), (7200.0, 1.0)],
    }
    return ReplicationResult(
        replication=k, seed=100 + k, metrics=metrics, series=series,
        examples={"shipped_unpaid": "order-42"} if k == 1 else {},
        fault_windows=[(1800.0, 5400.0, "gateway outage")], wall_seconds=wall, messages=10)


def _report(wall: float = 1.5) -> dict[str, Any]:
    return aggregate([_replication(k, wall=wall + k) for k in range(3)], header=HEADER)


def test_write_report_writes_the_three_files(tmp_path: Path) -> None:
    """write_report creates the output directory and returns the three written paths."""
    paths = write_report(_report(), tmp_path / "out")
    assert set(paths) == {"json", "md", "html"}
    assert [p.name for p in paths.values()] == ["report.json", "report.md", "report.html"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())


def test_json_round_trips(tmp_path: Path) -> None:
    """report.json loads back to the sanitised report (tuples as lists), keys sorted."""
    report = _report()
    text = write_report(report, tmp_path)["json"].read_text(encoding="utf-8")
    assert json.loads(text) == sanitize(report)
    assert json.loads(text)["series"]["stuck_orders"][1] == [3600.0, 5.0]
    assert list(json.loads(text)) == sorted(json.loads(text))


def test_non_finite_numbers_become_null(tmp_path: Path) -> None:
    """NaN and infinities are written as null and printed as a dash, not rejected."""
    report = _report()
    report["metrics"]["stuck_orders"]["mean"] = math.nan
    report["metrics"]["stuck_orders"]["ci_high"] = math.inf
    report["metrics"]["throughput"]["values"][0] = -math.inf
    paths = write_report(report, tmp_path)
    loaded = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert loaded["metrics"]["stuck_orders"]["mean"] is None
    assert loaded["metrics"]["stuck_orders"]["ci_high"] is None
    assert loaded["metrics"]["throughput"]["values"][0] is None
    assert "| stuck_orders | — | — | orders |" in paths["md"].read_text(encoding="utf-8")


def test_markdown_is_byte_identical_across_runs_of_one_seed(tmp_path: Path) -> None:
    """Two runs differing only in timing fields give the same report.md bytes."""
    a = write_report(_report(wall=1.0), tmp_path / "a")["md"].read_bytes()
    b = write_report(_report(wall=9.0), tmp_path / "b")["md"].read_bytes()
    assert a == b
    assert b"wall" not in a and b"timing" not in a


def test_markdown_lists_header_then_health_metrics_in_order() -> None:
    """The header comes first, then the five health metrics in the mission's order."""
    md = render_markdown(sanitize(_report()))
    for field in ("| scenario | payment-outage |", "| policy | cautious |", "| seed | 7 |",
                  "| replications | 3 |", "| horizon | 86400 |", "| warm-up | 3600 |"):
        assert field in md
    positions = [md.index(f"\n| {name} |") for name in HEALTH_METRICS]
    assert positions == sorted(positions)
    assert md.index("## Health metrics") < md.index("## Wrong actions") < md.index(
        "## Throughput") < md.index("## Cycle time") < md.index("## SLA breaches") < md.index(
        "## Teams") < md.index("## Orders by final state") < md.index("## Other metrics")
    assert md.index("| orders.placed |") > md.index("## Other metrics")


def test_markdown_wrong_actions_show_examples_and_the_reproducing_command() -> None:
    """Wrong actions list an example order id and the exact command that reproduces it."""
    md = render_markdown(sanitize(_report()))
    section = md[md.index("## Wrong actions"):md.index("## Throughput")]
    assert "`shipped_unpaid`: order-42 (replication 1)" in section
    assert "```sh\n" + str(HEADER["reproduce"]) + "\n```" in section


def test_markdown_rows_carry_mean_ci_and_unit() -> None:
    """Each row gives name, mean, 95% CI and unit; a single replication's CI collapses."""
    report = aggregate([_replication(0)], header={"scenario": "s"})
    md = render_markdown(sanitize(report))
    assert "| stuck_orders | 12 | [12, 12] | orders |" in md
    assert "| replications | 1 |" in md  # counted from replication_seeds
    assert "| policy | — |" in md


def test_missing_health_metrics_are_reported_not_dropped() -> None:
    """A health metric the run did not record gets a 'not recorded' row in its place."""
    report = aggregate([ReplicationResult(replication=0, seed=1, metrics={"throughput": 5.0})],
                       header={"scenario": "s"})
    md = render_markdown(sanitize(report))
    for name in HEALTH_METRICS:
        assert f"| {name} | not recorded |" in md


def test_team_metrics_are_grouped_per_team() -> None:
    """queue_length.<team> sits next to utilisation.<team>, teams in name order."""
    sections = dict(ordered_sections(["utilisation.b", "queue_length.b", "utilisation.a",
                                      "queue_length.a"]))
    assert sections["Teams"] == ["queue_length.a", "utilisation.a", "queue_length.b",
                                 "utilisation.b"]


def test_html_is_self_contained_with_embedded_charts(tmp_path: Path) -> None:
    """report.html embeds every chart as base64 PNG and references nothing external."""
    page = write_report(_report(), tmp_path)["html"].read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == 9
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    assert "chart skipped" not in page
    assert "order-42 (replication 1)" in page


def test_html_skips_missing_charts_with_a_note() -> None:
    """Without series or breakdown metrics the page notes each skipped chart instead."""
    report = aggregate([ReplicationResult(replication=0, seed=1, metrics={"throughput": 5.0})],
                       header={"scenario": "s"})
    page = render_html(sanitize(report))
    assert "data:image/png" not in page
    assert page.count("chart skipped") == 9


def test_html_escapes_text() -> None:
    """Scenario names and metric names are HTML-escaped; '$' does not trip mathtext."""
    report = aggregate([ReplicationResult(
        replication=0, seed=1, metrics={"exception_rate.by_reason.<b>$5 & up$": 1.0},
        series={"queue_length.<team>": [(0.0, 1.0)]},
        fault_windows=[(0.0, 10.0, "$x$ <outage>")])], header={"scenario": "<script>"})
    page = render_html(sanitize(report))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;$5 &amp; up$" in page


def test_format_number_is_stable() -> None:
    """Integers print plainly, others with six significant digits, unknowns as a dash."""
    assert [format_number(v) for v in (3.0, -0.0, 0.123456789, 1e20, None, math.nan,
                                       math.inf)] == ["3", "0", "0.123457", "1e+20", "—", "—",
                                                      "inf"]


def test_a_rare_count_gets_no_negative_bound() -> None:
    """Metrics cannot be negative: a count seen once in five replications reads
    [0, upper], with the same upper bound as the plain t interval."""
    results = [ReplicationResult(replication=k, seed=k, metrics={"stuck_orders": float(k == 2)})
               for k in range(5)]
    entry = aggregate(results, header={"scenario": "s"})["metrics"]["stuck_orders"]
    assert entry["mean"] == 0.2
    assert entry["ci_low"] == 0.0
    # t(0.975, 4) = 2.776; stdev = sqrt(0.2); half width = 2.776 * 0.4472 / sqrt(5)
    assert math.isclose(entry["ci_high"], 0.2 + 2.7764451 * math.sqrt(0.2) / math.sqrt(5),
                        rel_tol=1e-6)
    spread = [ReplicationResult(replication=k, seed=k, metrics={"throughput": 10.0 + k})
              for k in range(5)]
    entry = aggregate(spread, header={"scenario": "s"})["metrics"]["throughput"]
    assert entry["ci_low"] > 0.0 and entry["ci_low"] < entry["mean"]  # an interior bound stays
