"""The README's 5-minute tour, run as written, from a folder outside the checkout.

A newcomer copies the tour's commands into a shell. Here they run, in order
and unchanged, in an empty folder that is not the checkout: the only thing
prepared is ``.venv``, a link to the environment running the tests (the
README's first command creates that folder in the user's own checkout). So
scenario names must resolve from the shipped library, the reports must land
where the tour says, and every later command must find what an earlier one
wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..broker import shared_broker

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


LIVE_STEP = "**6. Run the coordinator live.**"


def tour_commands(readme: str, live: bool = False) -> list[str]:
    """The shell commands of the README's tour section, in order (comments and
    blank lines dropped; continuation lines joined): the simulation steps, or
    with ``live`` the live coordinator's step (it needs the broker)."""
    tour = readme.split("## A 5-minute tour", 1)[1].split("\n## ", 1)[0]
    if LIVE_STEP in tour:
        before, after = tour.split(LIVE_STEP, 1)
        tour = after if live else before
    elif live:
        return []
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.S):
        pending = ""
        for line in block.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1].rstrip() + " "
                continue
            commands.append(pending + stripped)
            pending = ""
    return commands


def test_the_tour_has_commands_that_all_use_the_venv() -> None:
    """The tour's commands are found and each runs something from .venv, as the
    set-up commands installed it (so the tour test below cannot pass vacuously)."""
    commands = tour_commands(README.read_text())
    assert len(commands) >= 6
    assert all(c.startswith(".venv/bin/") for c in commands), commands
    assert any(" compare " in c for c in commands)
    assert any(" sweep " in c for c in commands)
    live = tour_commands(README.read_text(), live=True)
    assert any(c.startswith(".venv/bin/orderloom serve --config") for c in live)
    assert any(c.startswith(".venv/bin/orderloom emulate") for c in live)
    assert any(c.startswith("mosquitto_pub") for c in live)


def test_tour_parser_joins_continuations_and_skips_comments() -> None:
    """A continued line is one command; comments and blank lines are not commands."""
    text = ("## A 5-minute tour\n\n```bash\n# a comment\n.venv/bin/a \\\n  --b\n\n"
            ".venv/bin/c\n```\n\n## Reference\n```bash\n.venv/bin/not-tour\n```\n")
    assert tour_commands(text) == [".venv/bin/a --b", ".venv/bin/c"]


@pytest.mark.slow
def test_every_tour_command_runs_as_written_outside_the_checkout(tmp_path: Path) -> None:
    """Each tour command exits 0 in a folder outside the checkout, in order, and the
    reports it names appear there."""
    work = tmp_path / "newcomer"
    work.mkdir()
    assert ROOT not in work.parents
    (work / ".venv").symlink_to(Path(sys.prefix))
    for command in tour_commands(README.read_text()):
        done = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True,
                              text=True, timeout=1800)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    for report in ("out/baseline-balanced/report.html", "out/compare/compare.html",
                   "out/fraud/trace.jsonl.gz"):
        assert (work / report).is_file(), report


TOKEN = "example-ops-token-0123456789"
DESK = "http://127.0.0.1:8080/desk/api/cases"


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _until(what: str, check: Callable[[], Any], work: Path, timeout: float = 180.0) -> Any:
    """Poll ``check`` until it returns something truthy (a condition, not a margin:
    the budget only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    logs = {p.name: p.read_text()[-3000:] for p in work.glob("*.log")}
    raise AssertionError(f"{what}: not seen within {timeout} s; logs: {logs}")


def _order(case_list: list[dict[str, Any]], order_id: str) -> dict[str, Any] | None:
    return next((c for c in case_list if c["order_id"] == order_id), None)


@pytest.mark.slow
@pytest.mark.integration
def test_the_live_tour_runs_as_written(tmp_path: Path) -> None:
    """Step 6 as written, outside the checkout, on the local Mosquitto: the
    coordinator and the emulators start, A1 (placed by mosquitto_pub) closes,
    A2's duplicate hold is on the review desk; released there with a reason it
    closes too, journaled with who and why; no wrong action; both processes
    stop on SIGTERM."""
    shared_broker()  # the tour's broker: skips without one (fails under CI=true)
    work = tmp_path / "newcomer"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))
    commands = tour_commands(README.read_text(), live=True)
    metrics_at = next(i for i, c in enumerate(commands) if "/metrics" in c)
    pids: list[int] = []
    try:
        for index, command in enumerate(commands):
            if index == metrics_at:  # what the tour asks a person to do on the page
                case = _until("A2's hold on the desk", lambda: _order(
                    _http(f"{DESK}?status=open")["cases"], "A2"), work)
                assert case["reason"] == "duplicate_order" and case["proposal"] == "cancel"
                assert case["order"]["lifecycle"] == "on_hold"
                answer = _http(f"{DESK}/{case['case_id']}/override",
                               {"decision": "release", "why": "two on purpose"})
                assert answer["result"] == "release"
                _until("A1 and A2 closed", lambda: all(
                    f'"order_id":"{o}","final_state":"closed"' in (work / "serve.log").read_text()
                    for o in ("A1", "A2")), work)
                decided = _order(_http(DESK)["cases"], "A2")
                assert decided is not None
                hold = decided["order"]["holds"][0]
                assert (hold["released_by"], hold["note"]) == ("ops", "two on purpose")
            if command.startswith("kill "):
                pids = [int((work / f).read_text()) for f in ("serve.pid", "emulate.pid")]
            done = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            if index == metrics_at:
                lines = done.stdout.splitlines()
                assert "orderloom_orders_placed_total 2.0" in lines, lines
                wrong = [ln for ln in lines if ln.startswith("orderloom_wrong_actions_total")]
                assert wrong and all(ln.endswith(" 0.0") for ln in wrong), wrong
        assert pids, "the tour stops what it started"
        for pid in pids:
            _until(f"process {pid} stopped", lambda pid=pid: not Path(f"/proc/{pid}").exists()
                   or "zombie" in Path(f"/proc/{pid}/status").read_text(), work, 60.0)
        assert '"event":"serve.stopped"' in (work / "serve.log").read_text()
    finally:
        for name in ("serve.pid", "emulate.pid"):
            pid_file = work / name
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
