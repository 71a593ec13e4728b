"""Hygiene of the checked-in files themselves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".json", ".ipynb", ".cfg", ""}
SKIP = {".git", ".venv", "build", "out", "__pycache__", ".mypy_cache", ".pytest_cache",
        ".hypothesis"}
MARKER = re.compile(r"^(<{7}|>{7}) ", re.M)


def _files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix in TEXT:
            found.append(path)
    return found


def test_no_file_holds_merge_conflict_markers() -> None:
    """No source, doc or data file was committed with a merge's conflict markers in it."""
    bad = [str(p.relative_to(ROOT)) for p in _files()
           if MARKER.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert not bad, bad


def test_the_marker_check_sees_a_marker() -> None:
    """The pattern matches a conflict marker line and not ordinary text."""
    assert MARKER.search("x\n<<<<<<< HEAD\ny\n")
    assert not MARKER.search("a << b\n>>> prompt\n")
