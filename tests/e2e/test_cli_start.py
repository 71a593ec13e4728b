"""A new user's first commands, run from a folder outside the checkout: the
shipped scenarios and policies listed, a starter scenario written, checked
and run, and a misspelt name answered with the nearest valid one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from orderloom.actors import builtin_policies, load_builtin_policy
from orderloom.simulation import builtin_scenarios, load_builtin_scenario

ORDERLOOM = str(Path(sys.executable).parent / "orderloom")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORDERLOOM, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_scenarios_lists_every_shipped_scenario_from_any_folder(tmp_path: Path) -> None:
    """'orderloom scenarios' prints one line per shipped scenario: name and description."""
    result = cli(tmp_path, "scenarios")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == builtin_scenarios()
    assert len(lines) >= 10
    baseline = next(line for line in lines if line.startswith("baseline "))
    assert baseline.split(None, 1)[1] == load_builtin_scenario("baseline").description


def test_policies_lists_every_shipped_policy_from_any_folder(tmp_path: Path) -> None:
    """'orderloom policies' prints one line per shipped policy: name and description."""
    result = cli(tmp_path, "policies")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{name:<10}  {load_builtin_policy(name).description}" for name in builtin_policies()]


def test_init_scenario_writes_a_starter_that_validates_and_runs(tmp_path: Path) -> None:
    """'init scenario NAME' writes a commented NAME.yaml that validate accepts and simulate runs."""
    result = cli(tmp_path, "init", "scenario", "my-shop")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "my-shop.yaml").read_text(encoding="utf-8")
    assert "name: my-shop" in text
    for section in ("seed", "horizon", "policy", "catalog", "demand", "warehouses", "gateway",
                    "teams", "downstream", "address", "faults", "swarm"):
        assert f"\n{section}:" in text
    assert text.count("\n#") >= 15  # every section says what it is for
    checked = cli(tmp_path, "validate", "my-shop.yaml")
    assert checked.returncode == 0, checked.stderr
    assert "my-shop.yaml: ok (scenario my-shop, policy balanced" in checked.stdout
    ran = cli(tmp_path, "simulate", "my-shop.yaml", "-n", "1", "--horizon", "4h", "-j", "1")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("my-shop / balanced: 1 replications, seed 1")
    assert (tmp_path / "out" / "my-shop-balanced" / "report.json").exists()


def test_init_scenario_never_overwrites_a_file(tmp_path: Path) -> None:
    """'init scenario' with --out naming an existing file refuses with exit 2, file untouched."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("# my work\n", encoding="utf-8")
    result = cli(tmp_path, "init", "scenario", "x", "--out", "mine.yaml")
    assert result.returncode == 2
    assert result.stderr == "mine.yaml: already exists; not overwritten (remove it, or give " \
                            "--out another file)\n"
    assert mine.read_text(encoding="utf-8") == "# my work\n"


@pytest.mark.parametrize(("args", "message"), [
    (("init", "scenario", "my shop"), "Invalid value for 'NAME': expected letters, digits"),
    (("init", "scenario", "x", "--out", "no/such/x.yaml"), "its folder no/such does not exist"),
    (("simulate", "basline"), "did you mean baseline?"),
    (("simulate", "baseline", "--policy", "balancd"),
     "got 'balancd'; did you mean balanced?"),
    (("sweep", "baseline", "--param", "policy=cautios"), "did you mean cautious?"),
    (("sweep", "baseline", "--param", "policy.fraud.review_abov=0.5"),
     "the policy has no field 'review_abov'; did you mean review_above?"),
])
def test_a_misnamed_thing_is_exit_2_with_the_nearest_name(
        tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    """A bad starter name, a missing folder or a misspelt scenario, policy or policy field
    ends in one clear message and exit 2, no traceback."""
    result = cli(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_scenario_with_a_misspelt_team_is_blamed_on_its_team(tmp_path: Path) -> None:
    """simulate with a scenario whose team name is misspelt names teams[i].name, exit 2."""
    cli(tmp_path, "init", "scenario", "typo")
    path = tmp_path / "typo.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("name: fraud\n", "name: frod\n"),
                    encoding="utf-8")
    result = cli(tmp_path, "simulate", "typo.yaml", "-n", "1")
    assert result.returncode == 2
    assert ("teams[1].name: expected 'fraud' (policy 'balanced' routes high_risk_of_fraud "
            "cases to 'fraud'), got 'frod'; did you mean fraud?") in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_off_a_terminal_is_one_log_line_per_replication(tmp_path: Path) -> None:
    """Piped (as in CI), simulate and sweep log each finished replication on stderr, and
    stdout holds the results alone, with no blank line left by a progress bar."""
    ran = cli(tmp_path, "simulate", "baseline", "-n", "3", "-j", "2", "--horizon", "2h")
    assert ran.returncode == 0, ran.stderr
    done = re.compile(r"baseline / balanced: replication (\d)/3 done in \d+\.\d s"
                      r"( \(about \d+\.\d s left\))?")
    matches = [done.fullmatch(line) for line in ran.stderr.splitlines()]
    assert all(matches) and [m.group(1) for m in matches if m] == ["1", "2", "3"]
    assert ran.stdout.startswith("baseline / balanced: 3 replications, seed 1\n")
    assert "replication 1/3" not in ran.stdout
    swept = cli(tmp_path, "sweep", "baseline", "--param", "policy=cautious,aggressive",
                "-n", "1", "-j", "1", "--horizon", "1h")
    assert swept.returncode == 0, swept.stderr
    assert [line.split(" done in ")[0] for line in swept.stderr.splitlines()] == [
        "baseline / policy=cautious (point 1/2): replication 1/1",
        "baseline / policy=aggressive (point 2/2): replication 1/1"]


@pytest.mark.parametrize(("params", "message"), [
    (("policy=cautious", "policy=balanced"),
     "policy: given twice; expected each NAME once, with all its values "
     "(--param policy=V1,V2,...)"),
    (("policy.fraud.review_above=0.5", "policy.fraud.review_above=0.7"),
     "policy.fraud.review_above: given twice"),
    (("policy.fraud.review_above=0.5,2",), "fraud.review_above: expected a number in [0, 1], "
     "got 2.0"),
])
def test_sweep_checks_its_whole_grid_before_running_any_point(
        tmp_path: Path, params: tuple[str, ...], message: str) -> None:
    """A --param named twice, or a bad value at any point of the grid, is exit 2 before
    a single replication runs."""
    result = cli(tmp_path, "sweep", "baseline", *(f"--param={p}" for p in params), "-n", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "replication" not in result.stderr and not (tmp_path / "out").exists()
