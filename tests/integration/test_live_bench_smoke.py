"""bench/live.py runs against its own Mosquitto and PostgreSQL and prints its figures
(speed is not asserted: the machine running the tests is shared)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "raw_mqtt_msgs_per_s",
    "coordinator_msgs_per_s_sqlite", "coordinator_vs_raw_mqtt_ratio", "lifecycles_per_s_sqlite",
    "coordinator_cpu_share_sqlite", "world_cpu_share_sqlite",
    "coordinator_msgs_per_s_postgres", "lifecycles_per_s_postgres",
    "coordinator_cpu_share_postgres", "world_cpu_share_postgres",
    "event_to_command_p50_ms", "event_to_command_p99_ms",
    "paced_orders_per_s", "paced_lifecycles_per_s",
    "rss_kb_per_passivated_order", "rss_kb_per_passivated_order_first_batch",
    "rss_kb_per_active_order", "rss_kb_per_retired_order",
    "rss_kb_per_retired_order_first_batch",
}


# A minute or more of subprocesses, brokers and waits: in the slow step.
@pytest.mark.slow
def test_live_bench_quick_prints_every_figure_as_a_number() -> None:
    """bench/live.py --quick prints exactly its name=value lines, each a number;
    throughputs and the p50 latency are positive and p50 <= p99."""
    if shutil.which("mosquitto") is None:
        why = "the mosquitto binary is not on PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (CI=true: the MQTT integration tests must run)")
        pytest.skip(why)
    pg.conninfo()  # skips, saying why, without a PostgreSQL server
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "live.py"), "--quick"],
        capture_output=True, text=True, check=True, timeout=900,
    ).stdout
    lines = out.splitlines()
    pairs = [re.fullmatch(r"(\w+)=(-?[\d.]+)", line) for line in lines]
    assert all(pairs), lines
    figures = {m.group(1): float(m.group(2)) for m in pairs if m is not None}
    assert len(figures) == len(lines) and set(figures) == FIGURES
    for name in ("raw_mqtt_msgs_per_s", "coordinator_msgs_per_s_sqlite",
                 "coordinator_msgs_per_s_postgres", "lifecycles_per_s_sqlite",
                 "lifecycles_per_s_postgres", "coordinator_vs_raw_mqtt_ratio",
                 "event_to_command_p50_ms"):
        assert figures[name] > 0, name
    assert figures["event_to_command_p50_ms"] <= figures["event_to_command_p99_ms"]
