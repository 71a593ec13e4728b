"""The ``orderloom`` command as a user runs it (the installed console script)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orderloom.simulation._sections import PRIMARY_METRICS

from ..unit.compare_data import PRIMARY_BASE, PRIMARY_CAND, report_with_gaps

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("e2e.test_cli")

ROOT = Path(__file__).resolve().parents[2]
ORDERLOOM = str(Path(sys.executable).parent / "orderloom")


def cli(*args: str, ok: bool = True, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([ORDERLOOM, *args], cwd=cwd, capture_output=True, text=True,
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


def test_validate_warns_of_a_fault_that_never_fires(tmp_path: Path) -> None:
    """validate still passes a scenario whose fault starts after the horizon, and
    prints 'warning: <file>: <field>: <message>' on stderr; simulate warns the same
    when --horizon cuts the fault off."""
    odd = tmp_path / "odd.yaml"
    odd.write_text((ROOT / "scenarios" / "payment-outage.yaml").read_text()
                   .replace("start: 14h, end: 16h", "start: 2d, end: 3d"))
    result = cli("validate", str(odd))
    assert ": ok (scenario payment-outage" in result.stdout
    assert (f"warning: {odd}: faults[0].start: never fires: it starts at 172800 s (48 h), "
            "at or after the horizon (86400 s (24 h))") in result.stderr
    run = cli("simulate", "payment-outage", "--horizon", "1h", "-n", "1", "-j", "1",
              "--out", str(tmp_path / "run"))
    assert "warning: " in run.stderr and "faults[0].start: never fires" in run.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("simulate", "baseline", "-n", "1", "--horizon", "garbage"),
     "'garbage': expected a number or a duration like '90s'"),
    (("validate", "docs"), "docs: is a folder, not a file"),
    (("validate", "{bad}"), "bad.yaml: is not UTF-8 text"),
])
def test_a_mistake_is_a_message_and_exit_2_not_a_traceback(
        args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    """A malformed --horizon, a folder or a non-UTF-8 file given to validate end in
    one clear line and exit 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe not text")
    result = cli(*(a.format(bad=bad) for a in args), ok=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


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
    for name in PRIMARY_METRICS:  # the primary metrics are names the collector emits
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
    """compare leads with the primary metrics (paired deltas, Holm verdicts);
    --full adds every metric, and compare.md holds both."""
    result = cli("compare", str(runs["cautious"]), str(runs["aggressive"]),
                 "--out", str(tmp_path))
    assert result.stdout.count("PRIMARY METRICS") == 1
    assert "wrong_actions" in result.stdout and "p (Holm)" in result.stdout
    assert "worse" in result.stdout  # aggressive leaves the other systems behind
    assert "paired 95% intervals" in result.stdout
    assert "EXPLORATORY" not in result.stdout and "(--full prints every metric)" in result.stdout
    assert (tmp_path / "compare.md").exists() and (tmp_path / "compare.html").exists()
    md = (tmp_path / "compare.md").read_text()
    assert md.index("## Primary metrics") < md.index("exploratory, unadjusted verdicts")
    full = cli("compare", str(runs["cautious"]), str(runs["aggressive"]), "--full").stdout
    assert full.index("PRIMARY METRICS  ") < full.index("PRIMARY METRICS — HOLM-ADJUSTED")
    assert "HEALTH METRICS — EXPLORATORY, UNADJUSTED VERDICTS" in full


def test_compare_gates_a_policy_on_a_metric(runs: dict[str, Path]) -> None:
    """--fail-if-worse exits 1 when the candidate is significantly worse on a
    named metric, 0 when none of the named ones is, 2 for a metric no report has."""
    table = cli("compare", str(runs["cautious"]), str(runs["aggressive"]), "--full").stdout
    full = table[table.index("PRIMARY METRICS — HOLM-ADJUSTED"):]
    verdicts = {line.split()[0]: line.rstrip() for line in full.splitlines() if line.strip()}
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


def _compare_files(tmp_path: Path) -> tuple[str, str]:
    """Two report.json files: a primary metric worse by its own interval but
    not after Holm (stuck_orders), and its exploratory twin (handoffs)."""
    paths = []
    for name, metrics in (("base", PRIMARY_BASE), ("cand", PRIMARY_CAND)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(report_with_gaps(metrics, name)), encoding="utf-8")
        paths.append(str(path))
    return paths[0], paths[1]


def test_gates_judge_primary_metrics_by_holm(tmp_path: Path) -> None:
    """A gate on a primary metric uses the Holm decision (stuck_orders passes:
    p 0.009 alone, 0.056 adjusted); on an exploratory metric with the same
    values, its own 95% verdict (handoffs fails); the failure says which."""
    base, cand = _compare_files(tmp_path)
    passed = cli("compare", base, cand, "--fail-if-worse", "stuck_orders")
    assert "stuck_orders: worse by its own 95% interval (p 0.009), not after Holm" in (
        passed.stdout.replace("\n    ", " "))
    failed = cli("compare", base, cand, "--fail-if-worse", "stuck_orders,handoffs,"
                 "state_mismatches", ok=False)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == ["handoffs", "state_mismatches"]
    assert lines[0].endswith("; exploratory, unadjusted)")
    assert lines[1].endswith("; primary, Holm-adjusted p <0.001)")


@pytest.mark.parametrize("columns", [80, 120])
def test_compare_fits_the_terminal_width(tmp_path: Path, columns: int) -> None:
    """The summary takes its width from the terminal (COLUMNS here) and keeps within it."""
    base, cand = _compare_files(tmp_path)
    result = subprocess.run([ORDERLOOM, "compare", base, cand], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    whole = any(line.startswith("cycle_time.end_to_end.p50 ") for line in lines)
    assert whole == (columns == 120)  # at 80 the long name wraps at a dot


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
    """report trace tells an order's history in clock time, each message once,
    its wrong action with the messages that led to it, and its final state."""
    report = json.loads((runs["aggressive"] / "report.json").read_text())
    example = report["wrong_action_examples"]["never_ship_unpaid"].split(" ")[0]
    out = cli("report", "trace", example, "--run", str(runs["aggressive"])).stdout
    lines = out.splitlines()
    assert re.match(r"\d\d:\d\d:\d\d  intake → order: PlaceOrder$", lines[0]), lines[0]
    assert any("stage (new) → placed" in line for line in lines)
    assert any("!! WRONG ACTION never_ship_unpaid" in line for line in lines)
    chain = lines[lines.index("          the messages that led to it, oldest first:") + 1:]
    assert "storefront → " in chain[0]  # the chain goes back to where the order came from
    assert any(f"→ order/{example}: Shipped [m" in line for line in chain)
    assert lines[-1].startswith("final state (last change ")
    assert "ActionTaken" not in out and "k=" not in out  # no raw dumps by default
    raw = cli("report", "trace", example, "--run", str(runs["aggressive"]), "--raw").stdout
    assert "WrongAction" in raw and "chain=['m" in raw and " s  msg " in raw


def test_report_trace_without_an_order_lists_where_to_look(runs: dict[str, Path]) -> None:
    """report trace with no order lists the orders with wrong actions, one line each."""
    report = json.loads((runs["aggressive"] / "report.json").read_text())
    example = report["wrong_action_examples"]["never_ship_unpaid"].split(" ")[0]
    out = cli("report", "trace", "--run", str(runs["aggressive"])).stdout
    line = next(ln for ln in out.splitlines() if ln.split()[:1] == [example])
    assert re.search(r"wrong action never_ship_unpaid.*first at \d\d:\d\d:\d\d$", line), line


def test_report_trace_refuses_a_folder_without_a_trace(runs: dict[str, Path]) -> None:
    """A run folder with no trace, or --raw with no order, is a usage error
    (exit 2); an unknown order exits 1."""
    r = cli("report", "trace", "o1", "--run", str(runs["cautious"]), ok=False)
    assert r.returncode == 2 and "no trace.jsonl.gz here" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("report", "trace", "o999999", "--run", str(runs["aggressive"]), ok=False)
    assert r.returncode == 1 and "no record of order o999999" in r.stderr
    r = cli("report", "trace", "--raw", "--run", str(runs["aggressive"]), ok=False)
    assert r.returncode == 2 and "--raw needs an ORDER_ID" in r.stderr


def test_sweep_over_policies(tmp_path: Path) -> None:
    """sweep runs each grid point and writes one report with a chart per metric."""
    out = cli("sweep", "baseline", "--param", "policy=cautious,balanced",
              "--param", "policy.fraud.review_above=0.3,0.6", "--horizon", "2h", "-n", "2",
              "-j", "2", "--out", str(tmp_path)).stdout
    assert "4 points" in out
    page = (tmp_path / "sweep.html").read_text()
    assert page.count("data:image/png;base64,") >= 5
    assert "review_above=0.3" in (tmp_path / "sweep.md").read_text()


def test_sweep_over_scenario_settings(tmp_path: Path) -> None:
    """sweep varies scenario fields (a team's staff, a fault's duration) beside policy
    ones; each point runs its own world, and the page names what ran, a numeric knob
    on the x axis."""
    out = cli("sweep", "payment-outage", "--param", "scenario.teams.fraud.staff=1,3",
              "--param", "scenario.faults.gateway_outage.duration=30m,1h",
              "--horizon", "15h", "-n", "1", "-j", "1", "--seed", "4",
              "--out", str(tmp_path)).stdout
    assert "4 points x 1 replications, seed 4" in out
    point = tmp_path / "scenario.teams.fraud.staff=3,scenario.faults.gateway_outage.duration=1h"
    world = json.loads((point / "report.json").read_text())["provenance"]["scenario"]
    assert [s["staff"] for s in world["teams"][1]["shifts"]] == [3, 3]
    assert world["faults"][0]["end"] == 15 * 3600
    page = (tmp_path / "sweep.html").read_text()
    for shown in ("payment-outage", "<th>seed</th><td>4</td>", "1 per point",
                  "15 h (54000 s)", "scenario.teams.fraud.staff</th><td>1, 3 (x axis)"):
        assert shown in page, shown


@pytest.mark.parametrize(("param", "message"), [
    ("scenario.teams.fraud.staff=2,2.5",
     "scenario.teams.fraud.staff: expected a whole number of people >= 0, got '2.5'"),
    ("scenario.teams.frad.staff=2", "did you mean fraud?"),
    ("scenario.demand.orders_per_day=100,lots",
     "scenario.demand.orders_per_day: expected a number or a duration (90s, 2h), got 'lots'"),
    ("scenario.faults.gateway_outage.duration=0s",
     "scenario.faults.gateway_outage.duration: expected a positive duration"),
    ("scenario.horizon=2h", "scenario.horizon: not swept here; use --horizon"),
    ("scenario.teams.fraud.shifts.0.staff=-1", "teams[1].shifts[0].staff: expected >= 0"),
    ("fraud.review_above=0.5", "expected 'policy', 'policy.<field>' or 'scenario.<field>'"),
])
def test_sweep_checks_every_value_before_running(param: str, message: str,
                                                 tmp_path: Path) -> None:
    """A bad --param value anywhere in the grid ends in a message naming the
    parameter and what was expected, exit 2, and nothing run or written."""
    r = cli("sweep", "payment-outage", "--param", "policy=cautious,balanced", "--param", param,
            "--horizon", "1h", "-n", "1", "-j", "1", "--out", str(tmp_path / "out"), ok=False)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr and "replication" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_sweep_refuses_a_repeated_param(tmp_path: Path) -> None:
    """A knob given in two --param options is refused: its values belong in one."""
    r = cli("sweep", "baseline", "--param", "scenario.teams.fraud.staff=1",
            "--param", "scenario.teams.fraud.staff=2", "--horizon", "1h", ok=False)
    assert r.returncode == 2 and "scenario.teams.fraud.staff: given twice" in r.stderr


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


def test_simulate_prints_the_review_desk_beside_erlang_c(tmp_path: Path) -> None:
    """A cases-only scenario prints the desk's utilisation, wait and queue,
    each beside its Erlang C value (not a screen of zero order metrics)."""
    out = cli("simulate", "mmc-review-desk", "--horizon", "1d", "-n", "2", "-j", "2",
              "--out", str(tmp_path / "desk")).stdout
    assert "c = 3, ρ = 0.8333" in out
    for label, theory in (("utilisation", "0.8333"), ("mean wait", "210.7"),
                          ("mean queue length", "3.511")):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(label))
        assert line.endswith(f"Erlang C {theory}"), line
    assert "orders.placed" not in out


def test_scenario_names_work_from_any_folder(tmp_path: Path) -> None:
    """The scenario library ships with the package: a name works outside the
    checkout, and a misspelt one gets the nearest names."""
    out = cli("simulate", "baseline", "--horizon", "1h", "-n", "1", "-j", "1",
              "--out", "run", cwd=tmp_path).stdout
    assert "baseline / balanced: 1 replications" in out
    assert (tmp_path / "run" / "report.json").exists()
    wrong = cli("simulate", "basline", cwd=tmp_path, ok=False)
    assert wrong.returncode == 2 and "did you mean baseline?" in wrong.stderr


def test_a_rerun_into_the_same_folder_leaves_no_stale_trace(tmp_path: Path) -> None:
    """A traced run, then an untraced one into the same folder: the old trace
    is gone, so ``report trace`` cannot show the earlier run's decisions."""
    out = tmp_path / "run"
    cli("simulate", "baseline", "--horizon", "1h", "-n", "1", "-j", "1", "--trace",
        "--out", str(out))
    assert (out / "trace.jsonl.gz").exists()
    (out / "trace.jsonl").write_text("a trace of an earlier release\n")
    cli("simulate", "baseline", "--policy", "aggressive", "--horizon", "1h", "-n", "1",
        "-j", "1", "--out", str(out))
    assert not (out / "trace.jsonl.gz").exists() and not (out / "trace.jsonl").exists()
