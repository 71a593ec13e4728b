"""The Python API: simulate() returns a typed Report, compare() takes two of them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from orderloom.simulation import (
    IncomparableReports,
    MetricSummary,
    Report,
    ScenarioError,
    compare,
    simulate,
)

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("sim.test_api")

@pytest.fixture(scope="module")
def report() -> Report:
    """Two one-hour replications of the shipped baseline, written nowhere."""
    return simulate("baseline", horizon="1h", replications=2, workers=1)


def test_simulate_by_name_returns_a_typed_report(report: Report) -> None:
    """A shipped scenario run by name reports its header and typed metric summaries."""
    assert (report.scenario, report.policy, report.replications) == ("baseline", "balanced", 2)
    assert report.horizon == 3600.0 and report.warm_up is not None and report.warm_up <= 360.0
    assert len(report.results) == len(report.replication_seeds) == 2
    placed = report.metric("orders.placed")
    assert isinstance(placed, MetricSummary) and placed.unit == "orders" and placed.n == 2
    assert placed.ci_low <= placed.mean <= placed.ci_high and math.isfinite(placed.half_width)
    assert report.warm_up_suggestion is not None and report.precision is None


def test_unknown_metric_is_a_key_error_with_a_suggestion(report: Report) -> None:
    """Asking for a misspelt metric raises KeyError naming the nearest one."""
    with pytest.raises(KeyError, match="did you mean wrong_actions"):
        report.metric("wrong_action")


def test_simulate_without_out_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """With out=None, simulate leaves the working folder as it found it."""
    monkeypatch.chdir(tmp_path)
    ran = simulate("baseline", horizon=1800, replications=1)
    assert ran.paths == {} and list(tmp_path.iterdir()) == []


def test_written_report_round_trips_through_load(report: Report, tmp_path: Path) -> None:
    """A report written to a folder loads back to the same document and typed fields."""
    written = report.write(tmp_path / "run")
    assert json.loads(written.paths["json"].read_text(encoding="utf-8")) == report.to_dict()
    loaded = Report.load(tmp_path / "run")
    assert loaded.to_dict() == report.to_dict()
    assert loaded.metrics == report.metrics
    assert loaded.warm_up_suggestion is not None
    assert loaded.run is not None and loaded.run.horizon == 3600.0


def test_to_dict_is_a_copy(report: Report) -> None:
    """Changing the dict to_dict() gave changes nothing in the report."""
    doc = report.to_dict()
    doc["metrics"].clear()
    assert report.to_dict()["metrics"]


def test_comparing_a_run_with_itself_finds_no_difference(report: Report) -> None:
    """compare(report, report) gives zero deltas and no significant verdict."""
    comparison = compare(report, report)
    assert comparison.labels == ("baseline/balanced", "baseline/balanced")
    assert comparison.primary
    deltas = [row.deltas[0] for row in comparison.rows]
    assert all(d.delta in (0.0, None) for d in deltas)
    assert not [d for d in deltas if d.verdict in ("better", "worse")]


def test_compare_takes_report_folders(report: Report, tmp_path: Path) -> None:
    """compare reads a run folder as the report written into it."""
    report.write(tmp_path / "a")
    by_path = compare(tmp_path / "a", report, labels=["a", "b"])
    assert by_path.labels == ("a", "b")
    assert [r.metric for r in by_path.rows] == [r.metric for r in compare(report, report).rows]


def test_compare_refuses_another_horizon_unless_allowed(report: Report) -> None:
    """Runs of different horizons are IncomparableReports unless allow_different is set."""
    shorter = simulate("baseline", horizon="30m", replications=2)
    with pytest.raises(IncomparableReports, match="horizon"):
        compare(report, shorter)
    allowed = compare(report, shorter, allow_different=True)
    assert any("horizon" in w for w in allowed.warnings)


def test_unknown_scenario_name_is_a_scenario_error_with_a_suggestion() -> None:
    """A misspelt scenario name raises ScenarioError suggesting the shipped one."""
    with pytest.raises(ScenarioError, match="did you mean baseline"):
        simulate("baselin", horizon="1h", replications=2)


def test_max_replications_needs_precision() -> None:
    """max_replications without precision is refused before anything runs."""
    with pytest.raises(ValueError, match="precision"):
        simulate("baseline", horizon="1h", max_replications=4)
