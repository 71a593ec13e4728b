"""bench/layers.py: samples attributed to layers (synthetic profiles), and a real run."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _layers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_layers", ROOT / "bench" / "layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layers = _layers()


def _stack(*frames: str, count: int = 1) -> str:
    return ";".join(frames) + f" {count}"


RUN = "run_replication (simulation/_runner.py:200)"
TURN = "PersistentActor._run_turn (runtime/_persistent.py:454)"
ACTOR = "OrderActor._offer (actors/coordinator/_order_actor.py:540)"
EVOLVE = "evolve (actors/order/_evolve.py:90)"
REPLACE = "replace (actors/order/_order_state.py:260)"
INIT = "__init__ (<attrs generated methods orderloom.actors.order._order_state.OrderState>:91)"


def test_a_sample_counts_for_the_innermost_frame_of_a_layer() -> None:
    """Building a state (a frame of no layer) counts for the fold that asked for it;
    the actor's own line counts for the actor, the runner's for the runner; a
    stack with no frame of a layer counts as other; stacks outside the run are
    left out."""
    counts = layers.attribute([
        _stack("<module> (x.py:1)", RUN, TURN, ACTOR, EVOLVE, REPLACE, INIT, count=5),
        _stack("<module> (x.py:1)", RUN, TURN, ACTOR, count=2),
        _stack("<module> (x.py:1)", RUN, TURN, count=1),
        _stack("<module> (x.py:1)", "load_scenario (simulation/_scenario.py:300)", count=7),
        _stack("<module> (x.py:1)", RUN, "step (simpy/core.py:200)", count=3),
        _stack("<module> (x.py:1)", RUN, "helper (somewhere/else.py:1)", count=4),
        _stack("run_replication (elsewhere/x.py:1)", "helper (somewhere/else.py:1)", count=6),
        "not a profile line",
        "",
    ])
    assert counts == {"fold": 5, "order_actor": 2, "persistent_turn": 1, "kernel": 3,
                      "runner": 4, "other": 6}


def test_every_layer_names_a_module_that_exists() -> None:
    """A module moved or renamed must move in LAYERS too, or its time would
    silently count for whatever called it."""
    missing = [fragment for fragment, _ in layers.LAYERS
               if not fragment.endswith("/") and not (ROOT / fragment).is_file()]
    assert missing == []


def test_a_frame_is_read_with_or_without_its_line() -> None:
    """A frame's layer comes from its file, as py-spy prints it (relative to its
    package root, with the line, or without one when it has none); a frame
    with no file is of no layer."""
    assert layers.layer_of("<native>") is None
    assert layers.layer_of("f (actors/order/_evolve.py:12)") == "fold"
    assert layers.layer_of("f (actors/order/_evolve.py)") == "fold"
    assert layers.layer_of("step (simpy/core.py:200)") == "kernel"
    assert layers.layer_of("f (/abs/site-packages/simpy/events.py:3)") == "kernel"
    assert layers.layer_of("f (actors/order/_order_state.py:260)") is None


@pytest.mark.slow
def test_layers_bench_prints_every_layer_of_a_real_run() -> None:
    """A real slice under py-spy: every figure printed, the shares add up to 100,
    the order core's fold and the kernel each hold a share, and little is left
    to no layer (a hot module missing from LAYERS would show there)."""
    if shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("py-spy is a test dependency: pip install -e '.[test]'")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "layers.py"), "--hours", "2", "--rate", "200"],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout
    figures = dict(re.findall(r"^(\w+)=([\d.]+)$", out, flags=re.M))
    assert float(figures["orders"]) > 0 and float(figures["cpu_ms_per_order"]) > 0
    shares = {k: float(v) for k, v in figures.items() if k.endswith("_pct")}
    assert abs(sum(shares.values()) - 100.0) < 1.0
    assert shares["layer_fold_pct"] > 0 and shares["layer_kernel_pct"] > 0
    assert shares.get("layer_other_pct", 0.0) < 10.0
    assert {k.removesuffix("_pct") for k in shares} == {
        k.removesuffix("_us_per_order") for k in figures if k.endswith("_us_per_order")}
