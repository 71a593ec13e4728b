"""The store seam: one persistent actor's journal, inbox, outbox and timers.

A *stream* is the journal of one event-sourced actor, keyed by its address.
An actor's turn is: :meth:`Store.load` (latest snapshot + the events after
it + pending durable timers), run the pure functions, then
:meth:`Store.commit` one :class:`Turn` — events, the inbox mark of the
message handled, outbox entries, timer changes and optionally a snapshot —
all or nothing. Effects leave through the outbox (:meth:`Store.pending_outbox`
then :meth:`Store.mark_published`), so a crash at any point loses nothing
and applies nothing twice.

The methods are synchronous on purpose: the SimPy kernel calls
:class:`~orderloom.runtime.MemoryStore` on every order turn and must not pay
for coroutines; the live kernel will call a durable store from a worker
thread.

Events, outbox messages, timer messages and snapshot states are frozen attrs
objects; a store never mutates them. :class:`MemoryStore` keeps them as they
are; durable stores persist them through a :class:`Codec`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Protocol

import attrs

from ._errors import InfrastructureError
from ._refused import RefusedPayload

__all__ = [
    "STATS_TABLES",
    "CodecError",
    "ConcurrencyConflict",
    "CorruptRecord",
    "DuplicateDelivery",
    "DurableTimer",
    "InvalidTurn",
    "Loaded",
    "OutboxEntry",
    "Recorded",
    "SchemaMismatch",
    "Snapshot",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreFailure",
    "Turn",
    "UnknownTypeName",
    "UnregisteredType",
]

STATS_TABLES = ("events", "snapshots", "inbox", "outbox", "timers")
"""The keys of :meth:`Store.stats`, the same for every store."""


# -- values ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Recorded:
    """One event as the journal holds it.

    Invariants: ``version`` >= 1 and the versions of a stream are 1, 2, 3, ...
    without gaps; ``recorded_at`` is the committing turn's clock reading
    (``Turn.recorded_at``; None if the turn gave none).
    """

    stream: str
    version: int
    event: object
    recorded_at: float | None = None


@attrs.frozen(kw_only=True)
class Snapshot:
    """The state of a stream folded up to and including ``version``.

    Invariant: ``state`` is an immutable (frozen attrs) value; a store keeps
    only the latest snapshot of each stream.
    """

    version: int
    state: object


@attrs.frozen(kw_only=True)
class OutboxEntry:
    """A message to publish once the turn that wrote it is committed.

    Invariants: ``entry_id`` is unique among pending entries of the store
    (publish it as the envelope's message id so receivers can dedupe: the
    outbox is at-least-once); ``stream`` is the committing stream (the
    sender).
    """

    entry_id: str
    stream: str
    recipient: str
    message: object
    causation_id: str | None = None
    correlation_id: str | None = None


@attrs.frozen(kw_only=True)
class DurableTimer:
    """A timer that survives a restart: deliver ``message`` to ``stream`` at ``due_at``.

    Invariants: ``timer_id`` is unique per stream (setting an id that is
    pending replaces it); ``due_at`` is an absolute clock reading. Firing a
    timer is a later commit that lists its id in ``Turn.timers_cancelled``.
    """

    timer_id: str
    stream: str
    due_at: float
    message: object


@attrs.frozen(kw_only=True)
class Turn:
    """Everything one actor turn changes, committed atomically.

    Invariants (checked by :meth:`Store.commit`, which raises
    :class:`InvalidTurn`): ``expected_version`` >= 0; outbox entries and set
    timers belong to the committing stream; no id appears twice in
    ``timers_set`` or in ``outbox``; a snapshot's version is the version
    after this turn (``expected_version + len(events)``). Cancelled timer ids
    are removed before ``timers_set`` is applied, so cancelling and setting
    one id re-arms it; cancelling an id that is not pending does nothing.
    ``passivate``: the actor stops after this turn (it is quiet until a
    message restores it); a store may compact the stream (a durable store
    keeps it whole; :class:`MemoryStore` can forget it after a retention).
    A later commit to the stream reactivates it.
    ``inbox_id``, when it is a pending outbox entry's id (a message another
    actor of the store sent, with its entry id as the message id), also marks
    that entry published: the receiver's commit is the entry's delivery.
    """

    expected_version: int
    events: tuple[object, ...] = ()
    inbox_id: str | None = None
    outbox: tuple[OutboxEntry, ...] = ()
    timers_set: tuple[DurableTimer, ...] = ()
    timers_cancelled: tuple[str, ...] = ()
    snapshot: Snapshot | None = None
    recorded_at: float | None = None
    passivate: bool = False


@attrs.frozen(kw_only=True)
class Loaded:
    """What an actor restores from: the latest snapshot and the events after it.

    Invariants: ``version`` is the stream's current version (0 for an unknown
    stream); ``events`` are exactly versions ``snapshot.version + 1`` (or 1)
    to ``version``, in order; ``timers`` are the stream's pending durable
    timers ordered by ``(due_at, timer_id)``.
    """

    version: int
    snapshot: Snapshot | None
    events: tuple[Recorded, ...]
    timers: tuple[DurableTimer, ...]


# -- the contract ---------------------------------------------------------------------


class Store(Protocol):
    """The persistence seam: implemented by MemoryStore, SqliteStore (and PostgreSQL).

    Every method is synchronous. Stores are context managers; using one after
    :meth:`close` raises :class:`StoreClosed`.
    """

    @property
    def durable(self) -> bool:
        """Whether what is committed outlives the process. A store that does
        not (MemoryStore) gains nothing from an outbox: a crash that could
        strand committed effects takes the store with it, so persistent
        actors write none to it."""
        ...

    def load(self, stream: str) -> Loaded:
        """The latest snapshot, the events after it and the pending timers."""
        ...

    def commit(self, stream: str, turn: Turn) -> None:
        """Apply ``turn`` to ``stream`` atomically, or change nothing and raise.

        Events get versions ``expected_version + 1`` onwards. Checks, in this
        order: the turn itself (:class:`InvalidTurn`: a bug in the caller,
        whatever the store holds), the inbox (:class:`DuplicateDelivery` if
        ``turn.inbox_id`` was recorded for the stream: a redelivered message
        is dropped whatever the version), the version
        (:class:`ConcurrencyConflict`), then that no outbox entry id is
        already pending (:class:`InvalidTurn`). The pending outbox entry
        whose id is ``turn.inbox_id``, if any, is marked published in the same
        transaction. A durable store may also
        raise a codec error (nothing written) or
        :class:`StoreFailure` (rolled back).
        """
        ...

    def seen(self, stream: str, message_id: str) -> bool:
        """Whether a commit of ``stream`` recorded ``message_id`` as its inbox id."""
        ...

    def pending_outbox(self, limit: int = 100,
                       stream: str | None = None) -> tuple[OutboxEntry, ...]:
        """Up to ``limit`` unpublished outbox entries (of ``stream`` only, if
        given), oldest commit first."""
        ...

    def mark_published(self, entry_ids: Iterable[str]) -> None:
        """Drop published entries from the outbox; unknown ids are ignored."""
        ...

    def due_timers(self, now: float, limit: int | None = None) -> tuple[DurableTimer, ...]:
        """Pending timers of every stream with ``due_at <= now``.

        Ordered by ``(due_at, stream, timer_id)``, the same in every store.
        """
        ...

    def streams(self) -> Iterator[str]:
        """Names of the streams holding at least one event, sorted."""
        ...

    def journal(self, stream: str, after: int = 0) -> tuple[Recorded, ...]:
        """Every event of ``stream`` with a version above ``after``, in order."""
        ...

    def stats(self) -> Mapping[str, int]:
        """Row counts per table (keys: :data:`STATS_TABLES`)."""
        ...

    def record_dead_letter(self, letter: RefusedPayload) -> None:
        """Keep a refused payload (already redacted) in the dead-letter table.

        Outside any stream's turn: a refusal changes no actor's state.
        """
        ...

    def dead_letters(self, limit: int = 100) -> tuple[RefusedPayload, ...]:
        """The ``limit`` most recently recorded refused payloads, newest first."""
        ...

    def close(self) -> None:
        """Release the store's resources; idempotent."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_turn(stream: str, turn: Turn) -> None:
    """Raise :class:`InvalidTurn` if ``turn`` breaks an invariant of :class:`Turn`.

    Shared by the stores so they reject exactly the same turns. Cheap when
    the turn has no outbox, timers or snapshot (the common case).
    """
    if turn.expected_version < 0:
        raise InvalidTurn(stream, f"expected_version {turn.expected_version} is negative")
    if turn.outbox:
        ids = [entry.entry_id for entry in turn.outbox]
        if len(set(ids)) != len(ids):
            raise InvalidTurn(stream, f"outbox entry ids repeat: {sorted(ids)}")
        for entry in turn.outbox:
            if entry.stream != stream:
                raise InvalidTurn(stream, f"outbox entry {entry.entry_id!r} belongs to "
                                          f"stream {entry.stream!r}")
    if turn.timers_set:
        ids = [timer.timer_id for timer in turn.timers_set]
        if len(set(ids)) != len(ids):
            raise InvalidTurn(stream, f"timer ids repeat: {sorted(ids)}")
        for timer in turn.timers_set:
            if timer.stream != stream:
                raise InvalidTurn(stream, f"timer {timer.timer_id!r} belongs to "
                                          f"stream {timer.stream!r}")
    if turn.snapshot is not None:
        after = turn.expected_version + len(turn.events)
        if turn.snapshot.version != after:
            raise InvalidTurn(stream, f"snapshot version {turn.snapshot.version} is not the "
                                      f"version after the turn ({after})")


# -- errors ---------------------------------------------------------------------------


class StoreError(InfrastructureError):
    """A store refused or failed an operation."""


class ConcurrencyConflict(StoreError):
    """Another commit moved the stream since the committer loaded it.

    Attributes:
        stream: the stream committed to.
        expected: the version the turn was decided on.
        actual: the stream's version in the store.
    """

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream!r} is at version {actual}, the turn expected {expected}: "
            "reload and decide again"
        )


class DuplicateDelivery(StoreError):
    """The message a turn handled was already recorded in the stream's inbox.

    Attributes:
        stream: the stream committed to.
        message_id: the inbox id seen before.
    """

    def __init__(self, stream: str, message_id: str) -> None:
        self.stream = stream
        self.message_id = message_id
        super().__init__(f"stream {stream!r} already handled message {message_id!r}")


class InvalidTurn(StoreError, ValueError):
    """A turn breaks an invariant of :class:`Turn` (a bug in the committer).

    Attributes:
        stream: the stream committed to.
        reason: what is wrong.
    """

    def __init__(self, stream: str, reason: str) -> None:
        self.stream = stream
        self.reason = reason
        super().__init__(f"invalid turn for stream {stream!r}: {reason}")


class CorruptRecord(StoreError, ValueError):
    """A stored row cannot be read back (bad JSON, unknown type, gap in versions).

    Attributes:
        stream: the stream the row belongs to.
        version: the event or snapshot version (None for timers and outbox rows).
        what: which row ("event", "snapshot", "timer 't1'", "outbox entry 'e1'").
        type_name: the stored type name, if any.
    """

    def __init__(self, stream: str, version: int | None, what: str, type_name: str | None,
                 detail: str) -> None:
        self.stream = stream
        self.version = version
        self.what = what
        self.type_name = type_name
        at = "" if version is None else f" version {version}"
        kind = "" if type_name is None else f" ({type_name})"
        super().__init__(f"stream {stream!r}{at}: cannot read {what}{kind}: {detail}")


class StoreClosed(StoreError, RuntimeError):
    """The store was used after :meth:`Store.close`."""

    def __init__(self, store: str) -> None:
        self.store = store
        super().__init__(f"{store} is closed")


class StoreFailure(StoreError, OSError):
    """The database underneath failed (I/O error, locked too long, disk full...).

    Attributes:
        location: the database path (or ":memory:").
        operation: what the store was doing.
    """

    def __init__(self, location: str, operation: str, detail: str) -> None:
        self.location = location
        self.operation = operation
        super().__init__(f"store {location}: {operation} failed: {detail}")


class SchemaMismatch(StoreError):
    """The database was written by another schema version of the store.

    Attributes:
        location: the database path.
        found: the schema version in the file.
        expected: the version this code reads.
    """

    def __init__(self, location: str, found: int, expected: int) -> None:
        self.location = location
        self.found = found
        self.expected = expected
        super().__init__(
            f"store {location} has schema version {found}; this orderloom reads version "
            f"{expected}"
        )


class CodecError(StoreError, ValueError):
    """An object could not be encoded, or stored text decoded.

    Attributes:
        type_name: the type name involved.
    """

    def __init__(self, type_name: str, detail: str) -> None:
        self.type_name = type_name
        super().__init__(f"{type_name}: {detail}")


class UnknownTypeName(CodecError, LookupError):
    """Stored text names a type the codec does not know (register it)."""

    def __init__(self, type_name: str, known: Iterable[str]) -> None:
        names = sorted(known)
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        super().__init__(type_name, f"no registered type has this name (known: {shown})")


class UnregisteredType(CodecError, TypeError):
    """The codec was asked to encode an object of a type it was not given."""

    def __init__(self, value: object) -> None:
        super().__init__(type(value).__qualname__,
                         "not registered with the codec: pass it in the codec's types")
