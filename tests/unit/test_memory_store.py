"""MemoryStore's memory controls: history dropped under a snapshot, a bounded inbox."""

from __future__ import annotations

import attrs
import pytest

from orderloom.runtime import ConcurrencyConflict, MemoryStore, Message, Snapshot, Turn


@attrs.frozen(kw_only=True)
class Added(Message):
    """An event: ``n`` was added."""

    n: int


def _commit(store: MemoryStore, version: int, n: int, *, inbox: str | None = None,
            at: float | None = None, snapshot: int | None = None) -> None:
    store.commit("s", Turn(expected_version=version, events=(Added(n=n),), inbox_id=inbox,
                           recorded_at=at,
                           snapshot=None if snapshot is None else
                           Snapshot(version=version + 1, state=snapshot)))


@pytest.mark.parametrize("keep_history", [True, False])
def test_dropping_history_keeps_what_a_restore_needs(keep_history: bool) -> None:
    """Without history, events a snapshot covers are gone, and load, versions
    and the concurrency check are as with it."""
    store = MemoryStore(keep_history=keep_history)
    total = 0
    for v in range(5):
        total += v
        _commit(store, v, v, snapshot=total if v == 2 else None)
    loaded = store.load("s")
    assert (loaded.version, loaded.snapshot) == (5, Snapshot(version=3, state=3))
    assert [r.version for r in loaded.events] == [4, 5]
    kept = [r.version for r in store.journal("s")]
    assert kept == ([1, 2, 3, 4, 5] if keep_history else [4, 5])
    assert store.stats()["events"] == len(kept)
    assert list(store.streams()) == ["s"]
    with pytest.raises(ConcurrencyConflict):
        _commit(store, 4, 9)
    _commit(store, 5, 5)
    assert store.load("s").version == 6


def test_inbox_ids_are_forgotten_past_the_retention() -> None:
    """An inbox id stays recognised for ``inbox_retention`` seconds of commits,
    then is forgotten; ids of turns without a time are kept."""
    store = MemoryStore(inbox_retention=10.0)
    _commit(store, 0, 1, inbox="a", at=0.0)
    _commit(store, 1, 1, inbox="untimed")
    _commit(store, 2, 1, inbox="b", at=10.0)
    assert store.seen("s", "a") and store.seen("s", "b")
    _commit(store, 3, 1, inbox="c", at=10.5)
    assert not store.seen("s", "a")
    assert store.seen("s", "b") and store.seen("s", "c") and store.seen("s", "untimed")
    assert store.stats()["inbox"] == 3


def test_a_negative_retention_is_refused() -> None:
    """The retention is a duration: a negative one is a clear error."""
    with pytest.raises(ValueError, match="inbox_retention must be >= 0"):
        MemoryStore(inbox_retention=-1.0)


def test_a_passivated_quiet_stream_is_forgotten_after_the_retention() -> None:
    """A stream whose actor passivated is forgotten once ``passivated_retention``
    seconds pass with no commit to it and no pending timer; one committed to
    again (reactivated) or with a timer pending is kept."""
    from orderloom.runtime._store import DurableTimer

    store = MemoryStore(passivated_retention=100.0)
    store.commit("a", Turn(expected_version=0, events=("x",), recorded_at=0.0, passivate=True))
    store.commit("b", Turn(expected_version=0, events=("x",), recorded_at=0.0, passivate=True))
    store.commit("b", Turn(expected_version=1, events=("y",), recorded_at=50.0))  # back again
    store.commit("c", Turn(expected_version=0, events=("x",), recorded_at=0.0, passivate=True,
                           timers_set=(DurableTimer(timer_id="t", stream="c", due_at=500.0,
                                                    message="m"),)))
    store.commit("d", Turn(expected_version=0, events=("x",), recorded_at=99.0))
    assert store.load("a").version == 1  # not yet: the retention has not passed
    store.commit("d", Turn(expected_version=1, events=("y",), recorded_at=101.0))
    assert store.load("a").version == 0  # forgotten
    assert store.load("b").version == 2  # reactivated before the retention passed
    assert store.load("c").version == 1  # a timer is pending
    assert list(store.streams()) == ["b", "c", "d"]
