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

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def tour_commands(readme: str) -> list[str]:
    """The shell commands of the README's tour section, in order (comments and
    blank lines dropped; continuation lines joined)."""
    tour = readme.split("## A 5-minute tour", 1)[1].split("\n## ", 1)[0]
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
