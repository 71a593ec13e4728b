"""MemoryStore: the store the simulator uses on every order turn.

Plain dicts and lists holding the (immutable) objects as they are: a commit
appends, an inbox check is a set lookup, nothing is copied or encoded. It
lives as long as the process; it is not thread-safe (the SimPy kernel is
single-threaded).

A long simulation would keep every event and every inbound message id of
every actor. Two settings bound that, as a durable store's housekeeping
would: ``keep_history=False`` drops a stream's events once a snapshot covers
them (``load`` needs only the snapshot and the tail; ``journal`` then starts
after the snapshot), and ``inbox_retention`` forgets inbox ids recorded that
many seconds (of ``Turn.recorded_at``) before the newest commit: redelivery
is expected within a window, not forever. ``passivated_retention`` does the
same for whole streams: a stream whose actor passivated (its last turn said
``passivate``) and that has not been committed to since, with no pending
timer, is forgotten that many seconds later (a simulated day of a million
orders would otherwise keep every finished order's journal in memory); a
message for it after that finds an empty stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING

import attrs

from ._refused import RefusedPayload
from ._store import (
    ConcurrencyConflict,
    DuplicateDelivery,
    DurableTimer,
    InvalidTurn,
    Loaded,
    OutboxEntry,
    Recorded,
    Snapshot,
    Store,
    StoreClosed,
    Turn,
    check_turn,
)

__all__ = ["MemoryStore"]


@attrs.define
class _Stream:
    """One stream's mutable bookkeeping (mutable on purpose: appended every turn)."""

    # The kept events, versions after ``base``, as (event, recorded_at): a
    # Recorded is built only when one is read (most never are).
    events: list[tuple[object, float | None]] = attrs.Factory(list)
    base: int = 0  # events up to this version were dropped (covered by the snapshot)
    snapshot: Snapshot | None = None
    inbox: set[str] = attrs.Factory(set)
    timers: dict[str, DurableTimer] = attrs.Factory(dict)
    passivated_at: float | None = None  # the actor stopped after a turn at this time


class MemoryStore:
    """An in-process :class:`~orderloom.runtime.Store` (simulation and tests).

    Example::

        with MemoryStore() as store:
            store.commit("order/1", Turn(expected_version=0, events=(placed,)))
            assert store.load("order/1").version == 1

    Args:
        keep_history: keep every event (export, tests); False drops the
            events a snapshot covers.
        inbox_retention: forget inbox ids recorded more than this many
            seconds before the newest commit's ``recorded_at`` (None: never).
        passivated_retention: forget a passivated, quiet stream with no
            pending timer this many seconds after its passivation (None: never).
    """

    durable = False  # it lives and dies with the process

    def __init__(self, *, keep_history: bool = True, inbox_retention: float | None = None,
                 passivated_retention: float | None = None) -> None:
        for name, value in (("inbox_retention", inbox_retention),
                            ("passivated_retention", passivated_retention)):
            if value is not None and not value >= 0:
                raise ValueError(f"MemoryStore: {name} must be >= 0 seconds or None, "
                                 f"got {value!r}")
        self.keep_history = keep_history
        self.inbox_retention = inbox_retention
        self.passivated_retention = passivated_retention
        # (passivated at, stream) in commit order, for the stream retention.
        self._passivated: deque[tuple[float, str]] = deque()
        # (recorded_at, stream, message id) in commit order, for the retention.
        self._inbox_order: deque[tuple[float, str, str]] = deque()
        self._streams: dict[str, _Stream] = {}
        # Insertion order is commit order; publishing pops in O(1).
        self._outbox: dict[str, OutboxEntry] = {}
        # Streams with pending timers, so due_timers skips finished ones.
        self._timed: set[str] = set()
        self._dead_letters: list[RefusedPayload] = []
        self._dead_letter_keys: set[str] = set()
        self._closed = False

    # -- the turn ---------------------------------------------------------------------

    def load(self, stream: str) -> Loaded:
        """The latest snapshot, the events after it and the pending timers."""
        self._check_open()
        record = self._streams.get(stream)
        if record is None:
            return Loaded(version=0, snapshot=None, events=(), timers=())
        snapshot = record.snapshot
        after = snapshot.version if snapshot is not None else record.base
        timers = tuple(sorted(record.timers.values(), key=_timer_order))
        return Loaded(version=record.base + len(record.events), snapshot=snapshot,
                      events=_recorded(stream, record, after), timers=timers)

    def commit(self, stream: str, turn: Turn) -> None:
        """Apply ``turn`` atomically: every check runs before the first change."""
        self._check_open()
        check_turn(stream, turn)
        record = self._streams.get(stream)
        version = 0 if record is None else record.base + len(record.events)
        inbox_id = turn.inbox_id
        if record is not None and inbox_id is not None and inbox_id in record.inbox:
            raise DuplicateDelivery(stream, inbox_id)
        if turn.expected_version != version:
            raise ConcurrencyConflict(stream, turn.expected_version, version)
        outbox = self._outbox
        for entry in turn.outbox:
            if entry.entry_id in outbox:
                raise InvalidTurn(stream, f"outbox entry {entry.entry_id!r} is already "
                                          "pending")
        # Nothing below can fail: the turn is applied whole.
        if record is None:
            record = self._streams[stream] = _Stream()
        snapshot = turn.snapshot
        if snapshot is not None and not self.keep_history:
            # The snapshot is the state after this turn (``check_turn``): it
            # covers the events kept so far and this turn's, so none is stored.
            if record.events:
                record.events.clear()
            record.base = snapshot.version
        elif turn.events:
            at = turn.recorded_at
            record.events.extend([(event, at) for event in turn.events])
        if inbox_id is not None:
            if outbox:  # the receiver's commit delivers a local outbox entry
                outbox.pop(inbox_id, None)
            record.inbox.add(inbox_id)
            if self.inbox_retention is not None and turn.recorded_at is not None:
                self._retain(stream, inbox_id, turn.recorded_at)
        for entry in turn.outbox:
            outbox[entry.entry_id] = entry
        if turn.timers_cancelled or turn.timers_set:
            timers = record.timers
            for timer_id in turn.timers_cancelled:
                timers.pop(timer_id, None)
            for timer in turn.timers_set:
                timers[timer.timer_id] = timer
            if timers:
                self._timed.add(stream)
            else:
                self._timed.discard(stream)
        if snapshot is not None:
            record.snapshot = snapshot
        at = turn.recorded_at
        if turn.passivate:
            record.passivated_at = at if at is not None else 0.0
            if self.passivated_retention is not None:
                self._passivated.append((record.passivated_at, stream))
        elif record.passivated_at is not None:
            record.passivated_at = None  # reactivated
        if self._passivated and at is not None:
            self._forget_passivated(at)

    def _forget_passivated(self, now: float) -> None:
        """Forget the streams passivated more than the retention before ``now``
        that stayed quiet since and have no pending timer."""
        queue, streams = self._passivated, self._streams
        horizon = now - (self.passivated_retention or 0.0)
        while queue and queue[0][0] < horizon:
            at, stream = queue.popleft()
            record = streams.get(stream)
            if record is not None and record.passivated_at == at and not record.timers:
                del streams[stream]

    def _retain(self, stream: str, message_id: str, at: float) -> None:
        """Note an inbox id, and forget those past the retention window."""
        order = self._inbox_order
        order.append((at, stream, message_id))
        horizon = at - (self.inbox_retention or 0.0)
        streams = self._streams
        while order and order[0][0] < horizon:
            _, old_stream, old_id = order.popleft()
            record = streams.get(old_stream)
            if record is not None:
                record.inbox.discard(old_id)

    def seen(self, stream: str, message_id: str) -> bool:
        """Whether a commit of ``stream`` recorded ``message_id`` as its inbox id."""
        self._check_open()
        record = self._streams.get(stream)
        return record is not None and message_id in record.inbox

    # -- effects ----------------------------------------------------------------------

    def pending_outbox(self, limit: int = 100,
                       stream: str | None = None) -> tuple[OutboxEntry, ...]:
        """Up to ``limit`` unpublished outbox entries (of ``stream`` only, if
        given), oldest commit first."""
        self._check_open()
        entries: Iterable[OutboxEntry] = self._outbox.values()
        if stream is not None:
            entries = (e for e in entries if e.stream == stream)
        return tuple(islice(entries, max(limit, 0)))

    def mark_published(self, entry_ids: Iterable[str]) -> None:
        """Drop published entries from the outbox; unknown ids are ignored."""
        self._check_open()
        for entry_id in entry_ids:
            self._outbox.pop(entry_id, None)

    def due_timers(self, now: float, limit: int | None = None) -> tuple[DurableTimer, ...]:
        """Pending timers with ``due_at <= now``, by ``(due_at, stream, timer_id)``."""
        self._check_open()
        due = [timer for stream in self._timed
               for timer in self._streams[stream].timers.values() if timer.due_at <= now]
        due.sort(key=_due_order)
        return tuple(due if limit is None else due[:max(limit, 0)])

    # -- export and housekeeping ------------------------------------------------------

    def streams(self) -> Iterator[str]:
        """Names of the streams holding at least one event, sorted."""
        self._check_open()
        return iter(sorted(name for name, record in self._streams.items()
                           if record.events or record.base))

    def journal(self, stream: str, after: int = 0) -> tuple[Recorded, ...]:
        """Every event of ``stream`` with a version above ``after``, in order."""
        self._check_open()
        record = self._streams.get(stream)
        if record is None:
            return ()
        return _recorded(stream, record, max(after, record.base))

    def record_dead_letter(self, letter: RefusedPayload) -> None:
        """Keep a refused payload (already redacted) in the dead-letter list,
        once per delivery (its ``delivery`` key; one without a key every time)."""
        self._check_open()
        if not isinstance(letter, RefusedPayload):
            raise TypeError(f"record_dead_letter expects a RefusedPayload, got "
                            f"{type(letter).__name__}")
        if letter.delivery is not None:
            if letter.delivery in self._dead_letter_keys:
                return
            self._dead_letter_keys.add(letter.delivery)
        self._dead_letters.append(letter)

    def dead_letters(self, limit: int = 100) -> tuple[RefusedPayload, ...]:
        """The ``limit`` most recently recorded refused payloads, newest first."""
        self._check_open()
        return tuple(reversed(self._dead_letters[-limit:])) if limit > 0 else ()

    def stats(self) -> Mapping[str, int]:
        """Row counts per table, as a durable store would hold them."""
        self._check_open()
        records = self._streams.values()
        return {
            "events": sum(len(r.events) for r in records),
            "snapshots": sum(r.snapshot is not None for r in records),
            "inbox": sum(len(r.inbox) for r in records),
            "outbox": len(self._outbox),
            "timers": sum(len(r.timers) for r in records),
        }

    def close(self) -> None:
        """Mark the store closed (its contents are dropped); idempotent."""
        if not self._closed:
            self._closed = True
            self._streams = {}
            self._outbox = {}
            self._timed = set()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("MemoryStore")


def _recorded(stream: str, record: _Stream, after: int) -> tuple[Recorded, ...]:
    """The kept events of ``record`` with versions above ``after``."""
    base = record.base
    return tuple(Recorded(stream=stream, version=base + i, event=event, recorded_at=at)
                 for i, (event, at) in enumerate(record.events[after - base:], after - base + 1))


def _timer_order(timer: DurableTimer) -> tuple[float, str]:
    return (timer.due_at, timer.timer_id)


def _due_order(timer: DurableTimer) -> tuple[float, str, str]:
    return (timer.due_at, timer.stream, timer.timer_id)


if TYPE_CHECKING:
    _IS_A_STORE: type[Store] = MemoryStore  # mypy checks the protocol is implemented
