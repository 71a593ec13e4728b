"""bench/store.py runs and prints its figures (speed is not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_bench_prints_every_figure(tmp_path: Path) -> None:
    """bench/store.py prints commit rates and restore costs for both stores, all positive."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "store.py"), "--turns", "500", "--sqlite-turns",
         "50", "--restore-orders", "3", "--repeat", "1", "--dir", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout
    figures = dict(re.findall(r"^(\w+)=([\d.]+)$", out, flags=re.M))
    restore = {f"{store}_restore_ms_per_order_{n}_events{suffix}"
               for store in ("memory", "sqlite") for n in (10, 50, 200)
               for suffix in ("", "_snapshot")}
    assert set(figures) == {"memory_store_commits_per_s", "sqlite_store_commits_per_s"} | restore
    assert all(float(v) > 0 for v in figures.values())
