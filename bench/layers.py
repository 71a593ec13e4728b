"""Where a simulated order's time goes, layer by layer (sampled with py-spy).

Runs the ``bench/simulate.py`` order-cost slice (``peak-day``, its first 12
simulated hours, one replication, journal on) in a fresh process under
``py-spy record`` (py-spy reads the process from outside, pausing it for
each sample: its CPU time is its own; ``--nonblocking`` was tried and reads
torn stacks: about a fifth of the samples moved to other layers, the
kernel's share nearly doubled), keeps the samples taken inside
``run_replication`` and gives each to a layer by the innermost frame of
orderloom or SimPy code it holds whose module names a layer (``LAYERS``);
a frame of no layer (a value class's ``__init__``, a helper of the state
model, the standard library) counts for the frame that called it, so
building a new order state counts for the fold that asked for it.

Prints one ``name=value`` line per figure:

- ``orders``, ``cpu_ms_per_order``: the slice's orders and its process CPU
  time per order (milliseconds; CPU, so another process's load moves it less
  than wall time, but not nothing; the pauses for sampling add to it, by
  15-30% at the default rate here, so compare shares, not this, with runs
  outside py-spy).
- ``samples``: samples inside ``run_replication`` (at ``--rate`` per second).
  A share ``p`` has a standard error of sqrt(p (1 - p) / samples): at 7,500
  samples about 0.5 points for a fifth, 0.2 for a twenty-fifth, so shares
  a few tenths apart are not told apart.
- ``layer_<name>_pct``: the layer's share of those samples, in percent.
- ``layer_<name>_us_per_order``: that share of the CPU time per order, in
  microseconds.
- ``layer_other_*``: samples with no frame of any layer; a large share
  means a hot module missing from ``LAYERS``.

A layer holds its own code's time, not what it causes elsewhere: the
downstream systems' share is their views' code, while the messages sent to
them, their telemetry and its fold count for the kernel, the order actor
and the metrics (without downstream systems the slice costs about 13% less
CPU per order, README).

The layers: the order core's pure parts (``fold``: evolve and apply;
``decide``; ``policy``: react and sourcing; ``invariants``), the coordinator
around it (``order_actor``: the shell that performs reactions, publishes
views and telemetry; ``automation``; ``metrics``: the metrics fold), the
runtime (``persistent_turn``: buffering, commit, release; ``store``: the
MemoryStore; ``kernel``: the SimPy kernel, records and SimPy itself) and the
simulated world (``downstream``: the downstream systems; ``world``: gateway,
warehouses, teams, address service, storefront and their draws) and the
replication around them (``runner``: building the world and the garbage
collection before the run; a few percent of a 2-hour slice, under one of
the 12-hour one).

Needs py-spy (``pip install py-spy``; not a dependency of orderloom).
Usage: ``python bench/layers.py [--hours H] [--rate HZ]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Module path fragments (as py-spy prints a frame's file, relative to its
# package root) -> layer. The first fragment that ends a frame's file wins.
LAYERS: tuple[tuple[str, str], ...] = (
    ("actors/order/_evolve.py", "fold"),
    ("actors/order/_order.py", "fold"),
    ("actors/order/_decide.py", "decide"),
    ("actors/order/_react.py", "policy"),
    ("actors/order/_sourcing.py", "policy"),
    ("actors/order/_policy.py", "policy"),
    ("actors/order/_invariants.py", "invariants"),
    ("actors/coordinator/_order_actor.py", "order_actor"),
    ("actors/coordinator/_order_record.py", "order_actor"),
    ("actors/coordinator/_views.py", "order_actor"),
    ("actors/coordinator/_automation.py", "automation"),
    ("actors/coordinator/_metrics.py", "metrics"),
    ("actors/coordinator/_metrics_state.py", "metrics"),
    ("actors/world/_downstream.py", "downstream"),
    ("actors/world/_gateway.py", "world"),
    ("actors/world/_warehouse.py", "world"),
    ("actors/world/_team.py", "world"),
    ("actors/world/_address.py", "world"),
    ("actors/world/_dist.py", "world"),
    ("simulation/_workload.py", "world"),
    ("runtime/_persistent.py", "persistent_turn"),
    ("runtime/_memory_store.py", "store"),
    ("runtime/_store.py", "store"),
    ("simulation/_kernel.py", "kernel"),
    ("runtime/_records.py", "kernel"),
    ("simpy/", "kernel"),
    ("simulation/_runner.py", "runner"),
)

_CHILD = """
import attrs, json, sys, time
from orderloom.simulation import load_scenario, run_replication
s = attrs.evolve(load_scenario(sys.argv[1]), horizon=float(sys.argv[2]) * 3600.0, warm_up=0.0)
cpu = time.process_time()
r = run_replication(s, 0)
print(json.dumps({"orders": r.metrics.get("orders.placed", 0.0),
                  "cpu": time.process_time() - cpu}))
"""


def layer_of(frame: str) -> str | None:
    """The layer of one py-spy frame (``function (file:line)``, or
    ``function (file)`` when py-spy has no line), None if none."""
    start = frame.rfind(" (")
    if start < 0 or not frame.endswith(")"):
        return None
    where = frame[start + 2:-1]
    path, colon, line = where.rpartition(":")
    if colon and line.isdigit():
        where = path
    for fragment, layer in LAYERS:
        if fragment.endswith("/") and f"/{fragment}" in f"/{where}":
            return layer
        if where.endswith(fragment):
            return layer
    return None


def attribute(lines: Iterable[str], root: str = "run_replication") -> Counter[str]:
    """Samples per layer, from py-spy's raw format (``frame;frame;... count``
    per line, outermost frame first), counting only stacks through ``root``.
    A stack with no frame of a layer counts as ``other``."""
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        if not any(f.startswith(f"{root} (") for f in frames):
            continue
        for frame in reversed(frames):
            layer = layer_of(frame)
            if layer is not None:
                counts[layer] += int(n)
                break
        else:
            counts["other"] += int(n)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=12.0,
                        help="simulated hours of peak-day (default: 12, the order-cost slice)")
    parser.add_argument("--rate", type=int, default=500,
                        help="samples per second (default: 500)")
    args = parser.parse_args()
    if args.hours <= 0:
        parser.error("--hours: expected a number of hours > 0")
    if args.rate < 1:
        parser.error("--rate: expected at least 1 sample per second")
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                      f"{os.environ.get('PATH', '')}")
    if spy is None:
        sys.exit("bench/layers.py needs py-spy: pip install py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "profile.txt"
        out = subprocess.run(
            [spy, "record", "--format", "raw", "--rate", str(args.rate),
             "--output", str(raw), "--", sys.executable, "-c", _CHILD,
             str(ROOT / "scenarios" / "peak-day.yaml"), str(args.hours)],
            capture_output=True, text=True)
        if out.returncode != 0 or not raw.exists():
            sys.exit(f"py-spy record failed ({out.returncode}):\n{out.stderr[-2000:]}")
        counts = attribute(raw.read_text().splitlines())
    # py-spy writes its own lines ("py-spy> ...") to the same stdout, and
    # exits 0 when the program it ran failed.
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"bench/layers.py: the peak-day slice failed under py-spy:\n"
                 f"{out.stderr[-2000:]}")
    run = json.loads(lines[-1])
    samples = sum(counts.values())
    if not run["orders"]:
        sys.exit(f"bench/layers.py: no order was placed in {args.hours} h of peak-day")
    if not samples:
        sys.exit(f"bench/layers.py: no sample inside run_replication at {args.rate} per "
                 "second (raise --rate or --hours)")
    us_per_order = run["cpu"] / run["orders"] * 1e6
    print(f"orders={run['orders']:.0f}")
    print(f"cpu_ms_per_order={us_per_order / 1000:.2f}")
    print(f"samples={samples}")
    for layer, n in counts.most_common():
        share = n / samples
        print(f"layer_{layer}_pct={100 * share:.1f}")
        print(f"layer_{layer}_us_per_order={share * us_per_order:.0f}")


if __name__ == "__main__":
    main()
