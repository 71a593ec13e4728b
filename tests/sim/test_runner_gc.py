"""The garbage-collector tuning of a run: garbage is freed before the freeze, and
an interpreter without ``gc.freeze`` is left alone."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from orderloom.simulation import (
    load_scenario,
    run_replication,
)
from orderloom.simulation._runner import collector_tuned

ROOT = Path(__file__).resolve().parents[2]


class _Node:
    """One half of a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.peer: _Node = self


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The automatic collector is off (so only the code under test collects), then restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@pytest.mark.usefixtures("collector_off")
def test_garbage_is_freed_before_the_freeze() -> None:
    """A reference cycle that is already garbage when the tuning starts is freed, not frozen."""
    node = _Node()
    ref = weakref.ref(node)
    del node
    with collector_tuned():
        frozen_alive = ref() is not None
    assert not frozen_alive


def test_replications_in_one_process_do_not_grow_the_frozen_generation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-to-back replications in one process (as in a worker) freeze the same
    objects each time: the previous replication's world is freed, not frozen."""
    counts: list[int] = []
    freeze = gc.freeze

    def counting_freeze() -> None:
        freeze()
        counts.append(gc.get_freeze_count())

    monkeypatch.setattr(gc, "freeze", counting_freeze)
    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    scenario = attrs.evolve(scenario, horizon=2 * 3600.0, warm_up=0.0)
    for _ in range(4):
        run_replication(scenario, 0)
    # The first run may import and cache things for good. After it, freezing
    # the previous world's garbage added about 700 objects per run here.
    assert counts[3] - counts[1] < 100, counts


def test_no_freeze_no_tuning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``gc.freeze`` (e.g. on PyPy) the tuning is skipped: the thresholds stay."""
    monkeypatch.delattr(gc, "freeze")
    before = gc.get_threshold()
    with collector_tuned():
        during = gc.get_threshold()
    assert during == before
    assert gc.get_threshold() == before
