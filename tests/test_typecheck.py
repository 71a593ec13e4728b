"""The packages pass a strict type check (mypy --strict, configured in pyproject)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_passes() -> None:
    """mypy --strict reports no error over runtime, actors, simulation and cli."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "-p", "orderloom.runtime", "-p", "orderloom.actors",
         "-p", "orderloom.simulation", "-p", "orderloom.cli"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
