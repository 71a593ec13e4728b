"""The benchmark scripts run and print their figures (speed is not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
        "persistent_actor_msgs_per_s", "persistent_vs_plain_actor_ratio",
        "live_kernel_msgs_per_s", "idle_actor_bytes",
    }
    assert all(float(v) > 0 for v in figures.values())


# Minutes of runs (peak-day, scaled baselines, 2 workers): in the slow step.
@pytest.mark.slow
def test_simulation_bench_prints_every_figure() -> None:
    """bench/simulate.py (2 simulated hours per run, 2 order-cost rounds) prints its
    figures: every round's order cost, their medians, per variant (first_listed and
    stock_aware) and unlabelled for the first."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulate.py"), "--hours", "2", "--rounds", "2"],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout
    figures = dict(re.findall(r"^(\w+)=([\d.]+)$", out, flags=re.M))
    per_variant = {f"{figure}_{variant}"
                   for variant in ("first_listed", "stock_aware")
                   for figure in ("order_cost_round_1", "order_cost_round_2",
                                  "order_cost_bare_simpy_msgs",
                                  "order_cost_finished_lifecycle_round_1",
                                  "order_cost_finished_lifecycle_round_2",
                                  "order_cost_finished_lifecycle_bare_simpy_msgs")}
    assert set(figures) == per_variant | {
        "peak_day_orders_per_s", "peak_day_finished_orders_per_s", "orders_per_s_target_ratio",
        "kernel_msgs_per_s", "msgs_per_order", "bare_simpy_msgs_per_s",
        "order_cost_bare_simpy_msgs",
        "order_cost_finished_lifecycle_bare_simpy_msgs", "peak_day_peak_rss_mb",
        "baseline_scaled_orders_per_s", "peak_rss_mb_16k_orders_day",
        "peak_rss_mb_per_1k_orders_day", "projected_peak_rss_mb_1m_orders_day",
        "day_100k_orders_s", "speedup_2_workers_ratio",
    }
    assert float(figures["peak_day_orders_per_s"]) > 0
    rounds = [float(figures[f"order_cost_round_{k}_first_listed"]) for k in (1, 2)]
    assert float(figures["order_cost_bare_simpy_msgs"]) == float(
        figures["order_cost_bare_simpy_msgs_first_listed"])
    assert min(rounds) <= float(figures["order_cost_bare_simpy_msgs"]) <= max(rounds)


@pytest.mark.slow
def test_order_cost_against_another_checkout() -> None:
    """--against runs another checkout's peak-day slice in every round, by the
    same method: here this very tree, so both sides run the same code and the
    ratio of their costs stays near 1 (within what load does to two rounds)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulate.py"), "--only-order-cost",
         "--hours", "1", "--rounds", "2", "--against", str(ROOT),
         "--against-python", sys.executable],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout
    figures = dict(re.findall(r"^(\w+)=([\d.]+)$", out, flags=re.M))
    rounds = [float(figures[f"order_cost_round_{k}_against"]) for k in (1, 2)]
    assert min(rounds) <= float(figures["order_cost_bare_simpy_msgs_against"]) <= max(rounds)
    low, ratio, high = (float(figures[f"order_cost_vs_against_{name}ratio"])
                        for name in ("min_", "", "max_"))
    assert 0.25 < low <= ratio <= high < 4.0
    # The other checkout's slice runs next to this tree's first one: just
    # before it in odd rounds, just after it in even ones.
    names = re.findall(r"^order_cost_round_(\d+_\w+)=", out, flags=re.M)
    assert names == ["1_against", "1_first_listed", "1_stock_aware",
                     "2_first_listed", "2_against", "2_stock_aware"]


def test_order_cost_against_refuses_an_interpreter_of_other_code(tmp_path: Path) -> None:
    """An interpreter that imports orderloom from elsewhere than the checkout
    would measure that code under the checkout's name: refused, naming both."""
    other = tmp_path / "before"
    (other / "scenarios").mkdir(parents=True)
    (other / "scenarios" / "peak-day.yaml").write_text("name: x\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulate.py"), "--only-order-cost",
         "--against", str(other), "--against-python", sys.executable],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "imports orderloom from" in out.stderr and str(other) in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize(("args", "expected"), [
    (["--against", "/nonexistent/orderloom"], "expected an orderloom checkout"),
    (["--against", str(ROOT), "--against-python", "/nonexistent/python"],
     "is not an executable file"),
    (["--against", str(ROOT), "--against-python", str(ROOT)], "is not an executable file"),
    (["--against-python", sys.executable], "expected --against too"),
])
def test_order_cost_against_refuses_bad_paths(args: list[str], expected: str) -> None:
    """A wrong --against or --against-python is refused before anything runs, naming it."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "simulate.py"), "--only-order-cost", *args],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert expected in out.stderr
    assert out.stdout == ""


def test_crn_bench_prints_ratios() -> None:
    """bench/crn.py prints paired/unpaired CI width ratios; the cycle-time median is
    sharper paired even on a short run (the run is deterministic from its seed)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "crn.py"), "--replications", "3", "--hours", "6"],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout
    figures = dict(re.findall(r"^paired_unpaired_ci_width_ratio\.([\w.]+)=([\d.]+)$", out,
                              flags=re.M))
    assert {"throughput", "cycle_time.end_to_end.p50"} <= set(figures)
    assert float(figures["cycle_time.end_to_end.p50"]) < 0.5
