"""A report's provenance block: written as plain data, read back to the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from orderloom.actors import load_builtin_policy
from orderloom.simulation import (
    Provenance,
    ReportError,
    load_scenario,
    provenance_data,
    read_provenance,
    rerun_warnings,
    software_versions,
    world_digest,
)
from orderloom.simulation._runner import replication_seed
from orderloom.simulation._scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "scenarios").glob("*.yaml"))


def _recorded(path: Path, **changes: Any) -> Provenance:
    """The provenance a run of the scenario at ``path`` (with ``changes``) records."""
    scenario = attrs.evolve(load_scenario(path), **changes)
    return Provenance(
        orderloom=software_versions()["orderloom"], python="3.11.7", scenario=scenario,
        replication_seeds=tuple(replication_seed(scenario.seed, k)
                                for k in range(scenario.replications)),
        world=world_digest(scenario))


def _write(tmp_path: Path, provenance: dict[str, Any] | None) -> Path:
    doc: dict[str, Any] = {"scenario": "s", "metrics": {}, "reproduce": "orderloom simulate s"}
    if provenance is not None:
        doc["provenance"] = provenance
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_every_library_scenario_reads_back_identical(path: Path, tmp_path: Path) -> None:
    """Written to report.json and read back, a scenario is equal to the one that
    ran and has its world digest (so compare pairs a rerun with its run)."""
    recorded = _recorded(path, policy=load_builtin_policy("aggressive"), seed=9,
                         replications=2)
    back = read_provenance(_write(tmp_path, provenance_data(recorded)))
    assert back == recorded
    assert world_digest(back.scenario) == recorded.world
    assert rerun_warnings(back, "r") == []


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_the_recorded_scenario_is_a_scenario_file(path: Path) -> None:
    """The provenance's scenario, dumped as YAML, loads through the scenario
    loader into the same scenario (policy inline, unbounded fault ends as 'inf')."""
    recorded = _recorded(path, horizon=7200.0, warm_up=600.0)
    text = yaml.safe_dump(provenance_data(recorded)["scenario"])
    assert parse_scenario(text, "provenance.yaml") == recorded.scenario


def test_a_report_without_provenance_names_the_file_and_the_field(tmp_path: Path) -> None:
    """A report written before provenance is refused, naming the file and the
    missing field, and pointing at the command that runs the scenario by name."""
    path = _write(tmp_path, None)
    with pytest.raises(ReportError) as caught:
        read_provenance(tmp_path)  # a run folder works as well as its report.json
    assert caught.value.source == str(path)
    assert caught.value.problems[0].startswith("provenance: required field missing")
    assert "orderloom simulate s" in caught.value.problems[0]


def test_a_malformed_provenance_names_each_bad_field(tmp_path: Path) -> None:
    """Missing and invalid fields inside the block are named by their path."""
    data = provenance_data(_recorded(LIBRARY[0]))
    del data["scenario"]["catalog"]
    data["scenario"]["horizon"] = "soon"
    with pytest.raises(ReportError) as caught:
        read_provenance(_write(tmp_path, data))
    assert caught.value.problems == [
        "provenance.scenario.catalog: required field missing",
        "provenance.scenario.horizon: expected a number or a duration like '90s', '30m', "
        "'2h', '1d', got 'soon'"]
    future = {**provenance_data(_recorded(LIBRARY[0])), "format": 2}
    with pytest.raises(ReportError) as caught:
        read_provenance(_write(tmp_path, future))
    assert caught.value.problems == [
        "provenance.format: expected 1 (the provenance format this orderloom reads), got 2"]


@pytest.mark.parametrize("content, problem", [
    ("{not json", "(file): not a report.json (not JSON"),
    ("[1, 2]", "(top level): expected a report (a JSON object), got list"),
])
def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path, content: str,
                                                problem: str) -> None:
    """Something other than a JSON object is refused, naming the file."""
    path = tmp_path / "report.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError, match="report.json: invalid report") as caught:
        read_provenance(path)
    assert caught.value.problems[0].startswith(problem)


def test_rerun_warnings_name_both_versions_and_other_seeds_or_worlds() -> None:
    """Another package version, seeds this version would not derive, or a world
    that reads differently each give a warning; none stops the rerun."""
    recorded = _recorded(LIBRARY[0], replications=2)
    other = attrs.evolve(recorded, orderloom="0.0.1", replication_seeds=(1, 2), world="ffff")
    warnings = rerun_warnings(other, "out/x/report.json")
    assert len(warnings) == 3
    assert warnings[0].startswith("out/x/report.json was written by orderloom 0.0.1; "
                                  f"this is orderloom {software_versions()['orderloom']}")
    assert "replication seeds [1, 2] were recorded" in warnings[1]
    assert "not 'ffff' as recorded" in warnings[2]
