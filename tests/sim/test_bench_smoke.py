"""The benchmark scripts run and print their figures (speed is not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kernel_bench_prints_every_figure() -> None:
    """bench/kernel.py prints one name=value line per figure, ratio included."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kernel.py"), "--messages", "2000", "--pairs", "10",
         "--repeat", "1", "--idle-actors", "1000"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout
    figures = dict(re.findall(r"^(\w+)=([\d.]+)$", out, flags=re.M))
    assert set(figures) == {
        "bare_simpy_msgs_per_s", "sim_kernel_msgs_per_s", "sim_kernel_vs_bare_simpy_ratio",
        "live_kernel_msgs_per_s", "idle_actor_bytes",
    }
    assert all(float(v) > 0 for v in figures.values())
