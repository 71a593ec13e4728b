"""The ``orderloom`` command as a user runs it (the installed console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDERLOOM = str(Path(sys.executable).parent / "orderloom")


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([ORDERLOOM, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_validate_accepts_the_library_and_names_bad_fields(tmp_path: Path) -> None:
    """validate passes every shipped scenario and pinpoints a bad one."""
    files = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    out = cli("validate", *files).stdout
    assert out.count(": ok (scenario") == len(files)
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "scenarios" / "baseline.yaml").read_text()
                   .replace("pickers: 16", "pickers: 0").replace("horizon: 1d", "horizon: soon"))
    result = cli("validate", str(bad), ok=False)
    assert result.returncode == 1
    assert f"{bad}: invalid scenario" in result.stderr
    assert "warehouses[0].pickers: expected >= 1, got 0" in result.stderr
    assert "horizon: expected a number or a duration" in result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two short runs of one seed under two policies, one of them traced."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for policy in ("cautious", "aggressive"):
        out[policy] = base / policy
        cli("simulate", "fraud-wave", "--policy", policy, "--horizon", "4h", "-n", "3",
            "-j", "2", "--seed", "3", "--out", str(out[policy]),
            *(["--trace"] if policy == "aggressive" else []))
    return out


def test_simulate_writes_three_reports(runs: dict[str, Path]) -> None:
    """simulate writes report.json, a diffable report.md and a self-contained report.html."""
    folder = runs["cautious"]
    report = json.loads((folder / "report.json").read_text())
    assert report["scenario"] == "fraud-wave" and report["policy"] == "cautious"
    assert report["replications"] == 3 and len(report["replication_seeds"]) == 3
    for name in ("stuck_orders", "exception_rate", "bounce_rate", "manual_overrides",
                 "state_mismatches", "wrong_actions", "throughput"):
        assert name in report["metrics"], name
    md = (folder / "report.md").read_text()
    assert md.index("stuck_orders") < md.index("wrong_actions")
    page = (folder / "report.html").read_text()
    assert "data:image/png;base64," in page and "http://" not in page


def test_wrong_actions_print_how_to_reproduce(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run with wrong actions prints the command that reproduces it."""
    result = cli("simulate", "fraud-wave", "--policy", "aggressive", "--horizon", "4h", "-n", "1",
                 "-j", "1", "--seed", "3", "--out", str(tmp_path / "again"))
    assert "wrong actions happened; reproduce with: orderloom simulate fraud-wave" in result.stdout
    assert "orderloom report trace" in result.stdout


def test_compare_gives_verdicts(runs: dict[str, Path], tmp_path: Path) -> None:
    """compare puts the runs side by side with paired deltas and a verdict per metric."""
    result = cli("compare", str(runs["cautious"]), str(runs["aggressive"]),
                 "--out", str(tmp_path))
    assert "wrong_actions" in result.stdout
    assert "worse" in result.stdout  # aggressive ships unpaid
    assert "paired" in result.stdout
    assert (tmp_path / "compare.md").exists() and (tmp_path / "compare.html").exists()


def test_compare_gates_a_policy_on_a_metric(runs: dict[str, Path]) -> None:
    """--fail-if-worse exits 1 when the candidate is significantly worse on a
    named metric, 0 when none of the named ones is, 2 for a metric no report has."""
    table = cli("compare", str(runs["cautious"]), str(runs["aggressive"])).stdout
    verdicts = {line.split()[0]: line.rstrip() for line in table.splitlines() if line.strip()}
    worse = next(m for m, line in verdicts.items() if line.endswith(" worse"))
    same = next(m for m, line in verdicts.items() if line.endswith("no significant difference"))
    failed = cli("compare", str(runs["cautious"]), str(runs["aggressive"]),
                 "--fail-if-worse", f"{same},{worse}", ok=False)
    assert failed.returncode == 1
    assert "gate failed (--fail-if-worse)" in failed.stderr
    assert f"{worse}: fraud-wave/aggressive is significantly worse" in failed.stderr
    assert same + ":" not in failed.stderr
    cli("compare", str(runs["cautious"]), str(runs["aggressive"]), "--fail-if-worse", same)
    typo = cli("compare", str(runs["cautious"]), str(runs["aggressive"]),
               "--fail-if-worse", "wrong_action", ok=False)
    assert typo.returncode == 2 and "did you mean wrong_actions" in typo.stderr


@pytest.mark.slow
def test_fail_if_worse_wrong_actions_gates_aggressive_on_baseline(tmp_path: Path) -> None:
    """The issue's gate: balanced vs aggressive on baseline, --fail-if-worse
    wrong_actions exits 1 (aggressive ships unpaid and acts while held)."""
    for policy in ("balanced", "aggressive"):
        cli("simulate", "baseline", "--policy", policy, "-j", "2", "--out", str(tmp_path / policy))
    gate = cli("compare", str(tmp_path / "balanced"), str(tmp_path / "aggressive"),
               "--fail-if-worse", "wrong_actions", ok=False)
    assert gate.returncode == 1 and "wrong_actions: baseline/aggressive" in gate.stderr


def test_compare_refuses_unlike_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    """Runs of another horizon are refused (exit 2, naming the difference)
    unless --allow-different, which names it in the output."""
    short = tmp_path / "short"
    cli("simulate", "fraud-wave", "--policy", "aggressive", "--horizon", "2h", "-n", "3",
        "-j", "2", "--seed", "3", "--out", str(short))
    refused = cli("compare", str(runs["cautious"]), str(short), ok=False)
    assert refused.returncode == 2
    assert "horizon (s) differs: fraud-wave/cautious has 14400.0" in refused.stderr
    allowed = cli("compare", str(runs["cautious"]), str(short), "--allow-different")
    assert "horizon (s) differs" in allowed.stdout


def test_report_trace_shows_one_orders_history(runs: dict[str, Path]) -> None:
    """report trace prints an order's messages, decisions and stages from a traced run."""
    report = json.loads((runs["aggressive"] / "report.json").read_text())
    example = report["wrong_action_examples"]["never_ship_unpaid"].split(" ")[0]
    out = cli("report", "trace", example, "--run", str(runs["aggressive"])).stdout
    assert "PlaceOrder" in out and "ActionTaken" in out and "WrongAction" in out
    assert "OrderStageEntered" in out


def test_sweep_over_policies(tmp_path: Path) -> None:
    """sweep runs each grid point and writes one report with a chart per metric."""
    out = cli("sweep", "baseline", "--param", "policy=cautious,balanced",
              "--param", "policy.fraud.review_above=0.3,0.6", "--horizon", "2h", "-n", "2",
              "-j", "2", "--out", str(tmp_path)).stdout
    assert "4 points" in out
    page = (tmp_path / "sweep.html").read_text()
    assert page.count("data:image/png;base64,") >= 5
    assert "review_above=0.3" in (tmp_path / "sweep.md").read_text()


def test_bad_arguments_fail_clearly(tmp_path: Path) -> None:
    """Unknown scenarios, policies and bad sweep parameters are refused with a reason."""
    r = cli("simulate", "no-such-scenario", ok=False)
    assert r.returncode == 2 and "not a scenario name" in r.stderr and "baseline" in r.stderr
    r = cli("simulate", "baseline", "--policy", "reckless", "--horizon", "1h", ok=False)
    assert r.returncode != 0 and "reckless" in (r.stderr + r.stdout)
    r = cli("sweep", "baseline", "--param", "policy.fraud.nonsense=1", "--horizon", "1h",
            ok=False)
    assert r.returncode == 2 and "no field 'nonsense'" in r.stderr


def test_dask_executor_runs_replications_on_a_cluster(tmp_path: Path) -> None:
    """--executor dask sends the replications to a Dask scheduler (a local cluster here)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        cli("simulate", "baseline", "--horizon", "1h", "-n", "2", "--executor", "dask",
            "--scheduler", cluster.scheduler_address, "--out", str(tmp_path))
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["replication_seeds"]) == 2
