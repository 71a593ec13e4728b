"""The README's two set-up commands are what CI runs, and its examples exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set up (two commands)", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_commands() -> None:
    """.ci/run contains the README's install+main command and its test command verbatim."""
    commands = _setup_commands()
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, command


def test_tour_scenarios_exist() -> None:
    """Every scenario the README names is in the library."""
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`([a-z]+(?:-[a-z]+)*)`", readme))
    library = {p.stem for p in (ROOT / "scenarios").glob("*.yaml")}
    mentioned = named & (library | {"peak-day", "payment-outage", "fraud-wave"})
    assert mentioned <= library and len(mentioned) >= 9
