"""``orderloom journal export`` and ``orderloom replay`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from orderloom.actors import journal_codec
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import resolve_run, run_replication

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("e2e.test_replay_cli")

ORDERLOOM = str(Path(sys.executable).parent / "orderloom")


def cli(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([ORDERLOOM, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == code, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store a two-hour baseline run journaled into (with repeated orders)."""
    base = resolve_run("baseline", horizon="2h", replications=1, seed=5)
    faults = attrs.evolve(base.demand.faults, duplicate_orders=0.3)
    scenario = attrs.evolve(base, demand=attrs.evolve(base.demand, faults=faults))
    path = tmp_path_factory.mktemp("store") / "orders.db"
    with SqliteStore(path, journal_codec()) as store:
        run_replication(scenario, 0, store=store)
    return path


def test_export_then_replay_writes_a_replay_report(store_file: Path, tmp_path: Path) -> None:
    """export writes one line per stored event (to a file or stdout); replay writes
    simulate's report folder, which says it is a replay of that file; simulate --from
    refuses to rerun it (exit 2) and names the replay command instead."""
    with SqliteStore(store_file, journal_codec()) as store:
        events = store.stats()["events"]
    out = tmp_path / "week.jsonl"
    done = cli("journal", "export", "--store", f"sqlite:///{store_file}", "--out", str(out),
               cwd=tmp_path)
    assert f"wrote {events} events to {out}" in done.stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == events
    piped = cli("journal", "export", "--store", f"sqlite:///{store_file}", "--out", "-",
                cwd=tmp_path)
    assert piped.stdout.splitlines() == lines
    placed = sum(json.loads(line)["type"] == "OrderPlaced" for line in lines)

    ran = cli("replay", str(out), "--scenario", "baseline", "--policy", "cautious", "-n", "2",
              "-j", "1", "--drain", "6h", "--out", str(tmp_path / "rep"), cwd=tmp_path)
    assert f"replay of journal {out}: {placed} orders" in ran.stdout
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["replay"]["source"] == str(out) and doc["replay"]["orders"] == placed
    assert doc["horizon"] == doc["replay"]["span"] + 6 * 3600
    assert doc["metrics"]["orders.placed"]["values"] == [placed, placed]
    assert doc["reproduce"].startswith(f"orderloom replay {out} --scenario baseline")
    for name in ("report.md", "report.html"):
        assert "replay of" in (tmp_path / "rep" / name).read_text()
    again = cli("simulate", "--from", str(tmp_path / "rep"), cwd=tmp_path, code=2)
    assert "this report is a replay of a journal" in again.stderr


def test_bad_input_exits_2_naming_file_and_line(store_file: Path, tmp_path: Path) -> None:
    """Not JSON, an unknown event type, no placements, a missing store: exit 2 with
    the file and line (or the store) named."""
    out = tmp_path / "week.jsonl"
    cli("journal", "export", "--store", f"sqlite:///{store_file}", "--out", str(out),
        cwd=tmp_path)
    good = out.read_text(encoding="utf-8").splitlines()
    placements = [line for line in good if '"type":"OrderPlaced"' in line]
    others = [line for line in good if '"type":"OrderPlaced"' not in line]
    cases = {
        "line 3: not JSON": [placements[0], placements[1], "[1, 2", *others[:3]],
        "line 2: type: unknown event type 'Teleported'": [
            placements[0], others[0].replace(f'"type":"{json.loads(others[0])["type"]}"',
                                             '"type":"Teleported"')],
        "no OrderPlaced event in its 4 lines": others[:4],
    }
    for expected, lines in cases.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = cli("replay", str(bad), "--scenario", "baseline", "-n", "1", "-j", "1",
                     "--out", str(tmp_path / "never"), cwd=tmp_path, code=2)
        assert f"{bad}: invalid journal:" in result.stderr and expected in result.stderr
        assert not (tmp_path / "never").exists()
    missing = cli("journal", "export", "--store", "sqlite:///nowhere.db", "--out",
                  str(tmp_path / "x.jsonl"), cwd=tmp_path, code=2)
    assert "sqlite:///nowhere.db: no such store" in missing.stderr
    assert not (tmp_path / "nowhere.db").exists() and not (tmp_path / "x.jsonl").exists()
    nonsense = cli("journal", "export", "--store", "mysql://db", "--out", "x", cwd=tmp_path,
                   code=2)
    assert "unknown scheme 'mysql'" in nonsense.stderr
