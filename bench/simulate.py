"""Simulation benchmark: orders per second, memory, worker speed-up.

Prints one ``name=value`` line per figure. Every run below is one
replication in a fresh process (so its peak memory is its own), on one core,
with all faults, telemetry and metrics on:

- ``peak_day_orders_per_s``: orders simulated per second of wall time for
  the shipped ``peak-day`` scenario (a full day, 6,000 orders/day and a
  lunchtime rush); ``peak_day_finished_orders_per_s`` counts only the orders
  whose lifecycle ended (closed or canceled) within the day: peak-day is
  overloaded on purpose, so many are still in the warehouse queue at
  midnight. ``orders_per_s_target_ratio`` is ``peak_day_orders_per_s`` over
  the 2,000/s target.
- ``kernel_msgs_per_s`` and ``msgs_per_order``: messages the kernel
  delivered in that run, per second and per order.
- ``bare_simpy_msgs_per_s``: a yardstick for the machine, measured in the
  same run, just before and just after the peak-day replication (their
  mean): bare SimPy processes playing ping-pong through ``simpy.Store``
  (``bench/kernel.py``'s baseline); the 2,000/s target is
  ``bare_simpy_msgs_per_s / 2000`` bare SimPy messages per order.
- ``order_cost_bare_simpy_msgs``: what one simulated order costs, in bare
  SimPy messages, in units that a shared, noisy machine moves little. It is
  the median of ``--rounds`` (default 5) interleaved rounds; each round
  runs a slice of peak-day (its first 12 simulated hours: the night, the
  morning ramp and the first hour of the lunchtime rush, about 2,300
  orders) in a fresh process, then bare SimPy ping-pong for about as long,
  and prints ``order_cost_round_<k>_<variant>`` = (seconds per order) /
  (seconds per bare message). A slice and its ping-pong run back to back,
  so a change of load hits both; the median drops the rounds it hit
  unevenly. ``order_cost_finished_lifecycle_bare_simpy_msgs`` (rounds
  ``order_cost_finished_lifecycle_round_<k>_<variant>``) is the same per
  complete lifecycle, on the first 7 hours of the scaled baseline below
  (seconds per order that closed or was canceled within the slice): only
  about a third of peak-day orders finish within the day. Each figure is
  printed per policy variant (``VARIANTS``: ``first_listed``, the sourcing
  the shipped policies use, and ``stock_aware``) with the variant as a
  suffix, and without a suffix for the first variant.
- With ``--against PATH`` (another checkout of orderloom, e.g. ``git worktree
  add /tmp/before <rev>``, with its own ``.venv`` or ``--against-python``, an
  interpreter that imports orderloom from that checkout, which is checked):
  each round also runs that checkout's peak-day slice, as shipped there, and
  its ping-pong (``order_cost_round_<k>_against``), just before this tree's
  first slice in odd rounds and just after it in even ones, so the pair a
  ratio takes runs back to back and neither side always runs first; ``order_cost_bare_simpy_msgs_against`` is their median,
  ``order_cost_vs_against_ratio`` the median over rounds of this tree's
  ``first_listed`` cost over that round's cost there (below 1: cheaper here),
  and ``order_cost_vs_against_min_ratio`` / ``..._max_ratio`` the spread of
  those per-round ratios (a wide spread: the load changed within rounds, run
  more of them). The same method on both revisions, in the same run: what
  "today's figure" and a before/after comparison need.
- ``baseline_scaled_orders_per_s``: the same for ``baseline`` grown to 20,000
  orders/day with its pickers, stock, customers and reviewers scaled alike
  (the same business, larger; nearly every order completes).
- ``peak_rss_mb_16k_orders_day``, ``peak_rss_mb_per_1k_orders_day`` and
  ``projected_peak_rss_mb_1m_orders_day``: memory follows the orders in
  flight (finished orders are forgotten), i.e. the arrival rate. Two scaled
  baseline days (8,000 and 16,000 orders/day) give the slope per order/day
  of rate; the projection is the 16,000 run plus that slope up to
  1,000,000 orders/day.
- ``day_100k_orders_s``: seconds for a 100,000-order day, projected from
  ``baseline_scaled_orders_per_s`` (``--full`` measures it, with
  ``day_100k_peak_rss_mb``).
- ``day_1m_orders_s`` and ``day_1m_peak_rss_mb``: with ``--million``, a real
  1,000,000-order scaled baseline day (about an hour; 640 MB peak RSS
  when first measured).
- ``speedup_2_workers_ratio``: wall time of 4 peak-day replications (12 h
  each) on 1 worker over the same on 2 workers, measured in the same run.

Usage: ``python bench/simulate.py [--full] [--million] [--hours H] [--rounds N]
[--only-order-cost] [--against PATH [--against-python PYTHON]]`` (``--hours``
shortens every run, for a smoke test; the figures are then only indicative;
``--only-order-cost`` runs the yardstick and the order-cost rounds only, a few
minutes, for before/after comparisons).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import attrs, json, resource, sys, time
sys.path.insert(0, BENCH)
from _business import grown
from orderloom.simulation import load_scenario, run_replication
s = load_scenario(sys.argv[1])
hours, per_day = float(sys.argv[2]), float(sys.argv[3])
overrides = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
if overrides:
    from orderloom.actors import make_converter, policy_from_dict
    s = attrs.evolve(s, policy=policy_from_dict(
        {**make_converter().unstructure(s.policy), **overrides}, "bench variant"))
if per_day > 0:
    s = grown(s, per_day)
s = attrs.evolve(s, horizon=hours * 3600.0, warm_up=0.0)
t = time.perf_counter()
r = run_replication(s, 0)
wall = time.perf_counter() - t
finished = sum(v for k, v in r.metrics.items() if k.startswith("orders_by_final_state."))
print(json.dumps({"orders": r.metrics.get("orders.placed", 0.0), "finished": finished,
                  "wall": wall, "messages": r.messages,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""".replace("BENCH", repr(str(Path(__file__).resolve().parent)))


# The peak-day slice in another checkout (``--against``), with that
# checkout's interpreter and scenario file. Only what every revision has:
# the scenario as shipped, run_replication, the metric ``orders.placed``.
_AGAINST_CHILD = """
import attrs, json, sys, time
try:
    from orderloom.simulation import load_scenario, run_replication
except ImportError:  # revisions before the public names
    from orderloom.simulation._scenario import load_scenario
    from orderloom.simulation._runner import run_replication
s = attrs.evolve(load_scenario(sys.argv[1]), horizon=float(sys.argv[2]) * 3600.0, warm_up=0.0)
t = time.perf_counter()
r = run_replication(s, 0)
print(json.dumps({"orders": r.metrics.get("orders.placed", 0.0),
                  "wall": time.perf_counter() - t}))
"""


_YARDSTICK = """
import sys, time
sys.path.insert(0, sys.argv[1])
from kernel import bare_simpy
started = time.perf_counter()
handled = bare_simpy(50, int(sys.argv[2]))
print(handled / (time.perf_counter() - started))
"""

_PAIRS = 50  # ping-pong pairs; each pair handles hits + 1 messages

# Policy variants of the order-cost figures: label -> policy fields to
# override (as in a policy file). Adding one is one line.
VARIANTS: dict[str, dict[str, object]] = {
    "first_listed": {},  # the policy as shipped: warehouses tried in the order listed
    "stock_aware": {"sourcing": "stock_aware"},  # each line where stock reports say it is
}

# The slices the order-cost rounds run: scenario, simulated hours from
# midnight, orders/day (0: as shipped), and what is counted per order.
_ORDER_COST = (
    ("order_cost", "peak-day", 12.0, 0.0, "orders"),
    ("order_cost_finished_lifecycle", "baseline", 7.0, 20_000.0, "finished"),
)


def ping_pong(hits: int) -> float:
    """Bare SimPy messages per second, ``_PAIRS`` pairs of ``hits`` each, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _YARDSTICK, str(ROOT / "bench"), str(hits)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def yardstick() -> float:
    """Bare SimPy messages per second, in a fresh process (best of three)."""
    return max(ping_pong(4000) for _ in range(3))


def child(scenario: str, hours: float, per_day: float = 0.0,
          policy: dict[str, object] | None = None) -> dict[str, float]:
    """One replication of ``scenario`` in a fresh process (``per_day``: scale
    the business to that many orders a day; 0 keeps the scenario as shipped;
    ``policy``: policy fields to override)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT / "scenarios" / f"{scenario}.yaml"), str(hours),
         str(per_day), json.dumps(policy or {})], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


class Against(NamedTuple):
    """Another checkout whose peak-day slice each round also runs (``--against``)."""

    root: Path
    python: Path


def against_child(other: Against, hours: float) -> dict[str, float]:
    """That checkout's peak-day slice (``hours`` long), in a fresh process of its interpreter."""
    scenario = other.root / "scenarios" / "peak-day.yaml"
    try:
        out = subprocess.run([str(other.python), "-c", _AGAINST_CHILD, str(scenario),
                              str(hours)], cwd=other.root, capture_output=True, text=True)
    except OSError as exc:
        sys.exit(f"--against {other.root}: cannot run {other.python}: {exc}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        sys.exit(f"--against {other.root}: its peak-day slice failed "
                 f"(exit {out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(lines[-1])
    return result


def against_checkout(path: Path, python: Path | None) -> Against | str:
    """The checkout ``--against`` names, or what is wrong with it: it must
    hold ``scenarios/peak-day.yaml``, and its interpreter (``python``, else
    ``PATH/.venv/bin/python``) must import orderloom from it, or the rounds
    would measure some other code under its name."""
    root = path.resolve()
    if not (root / "scenarios" / "peak-day.yaml").is_file():
        return (f"--against {path}: expected an orderloom checkout "
                "(no scenarios/peak-day.yaml there)")
    if python is None:
        python = root / ".venv" / "bin" / "python"
        flag = (f"--against {path}: no {python}; create that checkout's venv "
                "or give --against-python")
    else:
        # Absolute, not resolved: a venv's python is a link out of the venv.
        python = python.absolute()
        flag = f"--against-python: {python} is not an executable file"
    if not (python.is_file() and os.access(python, os.X_OK)):
        return flag
    try:
        found = subprocess.run(
            [str(python), "-c", "import orderloom.simulation as s; print(s.__file__)"],
            cwd=root, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"--against-python: cannot run {python}: {exc}"
    if found.returncode != 0:
        return f"--against-python: {python} cannot import orderloom:\n{found.stderr[-1000:]}"
    module = Path(found.stdout.strip()).resolve()
    if not module.is_relative_to(root):
        return (f"--against-python: {python} imports orderloom from {module.parent}, not from "
                f"{root} (install that checkout into its own venv)")
    return Against(root=root, python=python)


def order_costs(rounds: int, hours: float, bare_rate: float,
                against: Against | None = None) -> None:
    """Print every round's order cost in bare SimPy messages, then the medians.

    A round runs, for each figure and each variant, a slice and then bare
    SimPy ping-pong sized (from ``bare_rate``) to last about as long; its
    figure is the slice's seconds per order over the ping-pong's seconds
    per message. With ``against``, each round does the same for that
    checkout's peak-day slice, next to this tree's first one.
    """
    costs: dict[tuple[str, str], list[float]] = {}
    first = next(iter(VARIANTS))

    def measured(run: dict[str, float], counted: str) -> float:
        messages = max(10_000.0, run["wall"] * bare_rate)
        bare = ping_pong(int(messages / _PAIRS))
        return run["wall"] / run[counted] * bare

    def other(k: int) -> None:
        if against is not None:
            cost = measured(against_child(against, min(_ORDER_COST[0][2], hours)), "orders")
            costs.setdefault(("order_cost", "against"), []).append(cost)
            print(f"order_cost_round_{k}_against={cost:.0f}", flush=True)

    for k in range(1, rounds + 1):
        # The other checkout's slice runs just before this tree's first one in
        # odd rounds and just after it in even ones: the pair the ratio takes
        # runs back to back, and neither side always goes first.
        if k % 2:
            other(k)
        for figure, scenario, slice_hours, per_day, counted in _ORDER_COST:
            for variant, policy in VARIANTS.items():
                cost = measured(child(scenario, min(slice_hours, hours), per_day, policy),
                                counted)
                costs.setdefault((figure, variant), []).append(cost)
                print(f"{figure}_round_{k}_{variant}={cost:.0f}", flush=True)
                if not k % 2 and figure == _ORDER_COST[0][0] and variant == first:
                    other(k)
    for (figure, variant), values in costs.items():
        median = statistics.median(values)
        print(f"{figure}_bare_simpy_msgs_{variant}={median:.0f}")
        if variant == first:
            print(f"{figure}_bare_simpy_msgs={median:.0f}")
    if against is not None:
        ratios = [here / there for here, there in zip(costs[("order_cost", first)],
                                                      costs[("order_cost", "against")])]
        print(f"order_cost_vs_against_ratio={statistics.median(ratios):.2f}")
        print(f"order_cost_vs_against_min_ratio={min(ratios):.2f}")
        print(f"order_cost_vs_against_max_ratio={max(ratios):.2f}")


def speedup(hours: float) -> float:
    """Wall time of 4 replications (``hours`` each) on 1 worker over 2 workers."""
    import attrs

    from orderloom.simulation import load_scenario, run_replications

    scenario = load_scenario(ROOT / "scenarios" / "peak-day.yaml")
    scenario = attrs.evolve(scenario, horizon=hours * 3600.0, warm_up=0.0)
    walls = []
    for workers in (1, 2):
        started = time.perf_counter()
        run_replications(scenario, 4, workers=workers)
        walls.append(time.perf_counter() - started)
    return walls[0] / walls[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="also run a real 100,000-order day (a few minutes)")
    parser.add_argument("--million", action="store_true",
                        help="also run a real 1,000,000-order day (about an hour)")
    parser.add_argument("--hours", type=float, default=24.0,
                        help="simulated hours per run (default: a day)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds of the order-cost figures (default: 5)")
    parser.add_argument("--only-order-cost", action="store_true",
                        help="measure only the yardstick and the order-cost rounds")
    parser.add_argument("--against", type=Path, metavar="PATH",
                        help="another orderloom checkout whose peak-day slice each "
                             "order-cost round also runs (same method, same run)")
    parser.add_argument("--against-python", type=Path, metavar="PYTHON",
                        help="that checkout's interpreter (default: PATH/.venv/bin/python)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds: expected at least 1")
    against = None
    if args.against is not None:
        checked = against_checkout(args.against, args.against_python)
        if isinstance(checked, str):
            parser.error(checked)
        against = checked
    elif args.against_python is not None:
        parser.error("--against-python: expected --against too")
    hours = args.hours

    if args.only_order_cost:
        bare = yardstick()
        print(f"bare_simpy_msgs_per_s={bare:.0f}", flush=True)
        order_costs(args.rounds, hours, bare, against)
        return

    before = yardstick()
    peak = child("peak-day", hours)
    bare = (before + yardstick()) / 2
    rate = peak["orders"] / peak["wall"]
    print(f"peak_day_orders_per_s={rate:.0f}")
    print(f"peak_day_finished_orders_per_s={peak['finished'] / peak['wall']:.0f}")
    print(f"orders_per_s_target_ratio={rate / 2000.0:.2f}")
    print(f"kernel_msgs_per_s={peak['messages'] / peak['wall']:.0f}")
    print(f"msgs_per_order={peak['messages'] / peak['orders']:.1f}")
    print(f"bare_simpy_msgs_per_s={bare:.0f}")
    print(f"peak_day_peak_rss_mb={peak['rss_mb']:.0f}", flush=True)
    order_costs(args.rounds, hours, bare, against)

    scaled = child("baseline", hours, 20_000.0)
    scaled_rate = scaled["orders"] / scaled["wall"]
    print(f"baseline_scaled_orders_per_s={scaled_rate:.0f}")

    small = child("baseline", hours, 8_000.0)
    large = child("baseline", hours, 16_000.0)
    slope = (large["rss_mb"] - small["rss_mb"]) / 8_000.0  # MB per order/day of rate
    print(f"peak_rss_mb_16k_orders_day={large['rss_mb']:.0f}")
    print(f"peak_rss_mb_per_1k_orders_day={slope * 1_000:.2f}")
    print(f"projected_peak_rss_mb_1m_orders_day="
          f"{large['rss_mb'] + slope * (1_000_000 - 16_000):.0f}")
    if args.full:
        day = child("baseline", hours, 100_000.0)
        print(f"day_100k_orders_s={day['wall']:.1f}")
        print(f"day_100k_peak_rss_mb={day['rss_mb']:.0f}")
    else:
        print(f"day_100k_orders_s={100_000 / scaled_rate:.1f}")
    if args.million:
        day = child("baseline", hours, 1_000_000.0)
        print(f"day_1m_orders={day['orders']:.0f}")
        print(f"day_1m_orders_s={day['wall']:.0f}")
        print(f"day_1m_peak_rss_mb={day['rss_mb']:.0f}")
    print(f"speedup_2_workers_ratio={speedup(hours / 2):.2f}")


if __name__ == "__main__":
    main()
