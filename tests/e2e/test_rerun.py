"""``orderloom simulate --from report.json``: a recorded run, run again exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from orderloom.simulation import software_versions

from .test_cli import ROOT, cli

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("e2e.test_rerun")

SHORT = ("--horizon", "1h", "-n", "2", "-j", "1")


def _report(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short run of a scenario file, under a policy other than the file's."""
    base = tmp_path_factory.mktemp("recorded")
    scenario = base / "my-day.yaml"
    shutil.copy(ROOT / "scenarios" / "baseline.yaml", scenario)
    cli("simulate", str(scenario), "--policy", "aggressive", "--seed", "5", *SHORT,
        "--out", str(base / "run"))
    return base / "run"


def test_a_rerun_repeats_the_runs_numbers(recorded: Path, tmp_path: Path) -> None:
    """--from reruns the recorded scenario, policy, seeds and replications: the
    metrics and series are equal, and compare pairs the two runs."""
    out = cli("simulate", "--from", str(recorded / "report.json"), "--out",
              str(tmp_path / "again")).stdout
    assert out.strip().startswith(f"rerun of {recorded / 'report.json'} (recorded by orderloom")
    assert "baseline / aggressive: 2 replications, seed 5" in out
    before, after = _report(recorded), _report(tmp_path / "again")
    assert after["metrics"] == before["metrics"]
    assert after["series"] == before["series"]
    for key in ("scenario", "policy", "seed", "replications", "horizon", "warm_up", "world",
                "replication_seeds"):
        assert after[key] == before[key], key
    assert after["provenance"]["scenario"] == before["provenance"]["scenario"]
    cli("compare", str(recorded), str(tmp_path / "again"))  # like with like: no refusal


def test_a_rerun_ignores_the_scenario_file_as_it_is_now(recorded: Path, tmp_path: Path) -> None:
    """The report holds the scenario's contents: editing the file after the run,
    or removing it, changes nothing in a rerun (though a fresh run of the
    edited file does differ)."""
    scenario = recorded.parent / "my-day.yaml"
    text = scenario.read_text(encoding="utf-8")
    assert "orders_per_day: 2000" in text
    scenario.write_text(text.replace("orders_per_day: 2000", "orders_per_day: 500"),
                        encoding="utf-8")
    before = _report(recorded)["metrics"]
    cli("simulate", str(scenario), "--policy", "aggressive", "--seed", "5", *SHORT,
        "--out", str(tmp_path / "edited"))
    assert _report(tmp_path / "edited")["metrics"] != before
    cli("simulate", "--from", str(recorded), "--out", str(tmp_path / "after-edit"))
    assert _report(tmp_path / "after-edit")["metrics"] == before
    scenario.unlink()
    cli("simulate", "--from", str(recorded), "--out", str(tmp_path / "after-removal"))
    assert _report(tmp_path / "after-removal")["metrics"] == before


def test_a_rerun_of_a_sweep_point_repeats_its_policy(tmp_path: Path) -> None:
    """A sweep point's report records the knob-changed policy that no file
    holds; --from runs that policy again."""
    cli("sweep", "baseline", "--param", "policy.fraud.review_above=0.3", "--horizon", "1h",
        "-n", "1", "-j", "1", "--out", str(tmp_path / "sweep"))
    point = tmp_path / "sweep" / "fraud.review_above=0.3"
    assert _report(point)["provenance"]["scenario"]["policy"]["fraud"]["review_above"] == 0.3
    cli("simulate", "--from", str(point), "--out", str(tmp_path / "again"))
    assert _report(tmp_path / "again")["metrics"] == _report(point)["metrics"]


@pytest.mark.parametrize("args, named", [
    (("baseline",), "SCENARIO"),
    (("--policy", "cautious"), "--policy"),
    (("--seed", "2", "-n", "3"), "--replications, --seed"),
    (("--horizon", "2h"), "--horizon"),
])
def test_flags_that_would_change_the_run_are_refused(recorded: Path, args: tuple[str, ...],
                                                     named: str) -> None:
    """--from with a scenario, policy, seed, replications or horizon exits 2
    naming them: a rerun runs what was recorded, nothing else."""
    result = cli("simulate", "--from", str(recorded), *args, ok=False)
    assert result.returncode == 2
    assert f"--from reruns the recorded run exactly; it takes no {named}" in result.stderr


def test_simulate_needs_a_scenario_or_a_report() -> None:
    """simulate with neither a scenario nor --from exits 2 saying what it needs."""
    result = cli("simulate", ok=False)
    assert result.returncode == 2 and "SCENARIO" in result.stderr and "--from" in result.stderr


def test_a_report_of_another_version_reruns_with_a_warning(recorded: Path,
                                                          tmp_path: Path) -> None:
    """A report another orderloom wrote still reruns, with a warning naming
    both versions."""
    doc = _report(recorded)
    doc["provenance"]["orderloom"] = "0.0.1"
    (tmp_path / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    result = cli("simulate", "--from", str(tmp_path / "report.json"), "--out",
                 str(tmp_path / "again"))
    running = software_versions()["orderloom"]
    assert (f"was written by orderloom 0.0.1; this is orderloom {running}"
            in result.stderr)
    assert _report(tmp_path / "again")["metrics"] == doc["metrics"]


def test_an_old_report_is_refused_for_rerun_but_still_compares(recorded: Path,
                                                              tmp_path: Path) -> None:
    """A report without provenance (or with a broken one) exits 2 naming the
    file and the missing field; compare still reads it."""
    doc = _report(recorded)
    del doc["provenance"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    result = cli("simulate", "--from", str(old), ok=False)
    assert result.returncode == 2
    assert f"{old / 'report.json'}: invalid report" in result.stderr
    assert "provenance: required field missing" in result.stderr
    assert "Traceback" not in result.stderr
    cli("compare", str(old), str(recorded))
    doc = _report(recorded)
    del doc["provenance"]["scenario"]["demand"]
    (old / "report.json").write_text(json.dumps(doc), encoding="utf-8")
    result = cli("simulate", "--from", str(old), ok=False)
    assert result.returncode == 2
    assert "provenance.scenario.demand: required field missing" in result.stderr
