"""Reading a durable store's rows back: shared by the SQLite and PostgreSQL stores.

Both stores keep an object as ``(type_name, json_text)`` columns and must
report a row they cannot read the same way (:class:`CorruptRecord` naming the
stream, version and type), so the decoding lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._codec import Codec
from ._store import CorruptRecord, DurableTimer, Loaded, OutboxEntry, Recorded, Snapshot

__all__ = ["Row", "RowReader"]

Row = tuple[Any, ...]
"""One result row, as a database driver returns it."""


class RowReader:
    """Turns stored rows into journal values through a :class:`Codec`.

    Every method raises :class:`CorruptRecord` for a row that cannot be read
    back (bad JSON, unknown type, a gap in the versions), with the codec's
    error chained.
    """

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def loaded(self, stream: str, snapshot: Row | None, version: int,
               events: Sequence[Row], timers: Sequence[Row]) -> Loaded:
        """A :class:`Loaded` from one read transaction's rows.

        Args:
            stream: the stream read.
            snapshot: ``(version, type, data)`` of its snapshot, or None.
            version: the stream's current version (its last event's).
            events: ``(version, type, data, recorded_at)`` rows after the snapshot.
            timers: ``(stream, timer_id, due_at, type, data)`` rows.
        """
        base = 0 if snapshot is None else int(snapshot[0])
        state = None
        if snapshot is not None:
            state = Snapshot(version=base, state=self.decode(stream, base, "snapshot",
                                                             snapshot[1], snapshot[2]))
        recorded = self.recorded(stream, base, events)
        if (recorded[-1].version if recorded else base) != version:
            raise CorruptRecord(stream, version, "journal", None,
                                f"the snapshot is at version {base} but the last event is "
                                f"version {version}")
        return Loaded(version=version, snapshot=state, events=recorded,
                      timers=tuple(self.timer(row) for row in timers))

    def decode(self, stream: str, version: int | None, what: str, type_name: object,
               data: object) -> object:
        """The object stored as ``type_name`` with text ``data``."""
        try:
            if not isinstance(type_name, str) or not isinstance(data, str):
                raise TypeError(f"expected text columns, found {type(type_name).__name__} "
                                f"and {type(data).__name__}")
            return self._codec.decode(type_name, data)
        except Exception as exc:
            # Whatever the codec raises, the caller needs to know which row is bad.
            raise CorruptRecord(stream, version, what,
                                type_name if isinstance(type_name, str) else None,
                                str(exc)) from exc

    def recorded(self, stream: str, after: int, rows: Sequence[Row]) -> tuple[Recorded, ...]:
        """Decode event rows, checking they are versions ``after + 1``, ``after + 2``..."""
        out = []
        for expected, (version, type_name, data, recorded_at) in enumerate(rows, after + 1):
            if version != expected:
                raise CorruptRecord(stream, expected, "event", None,
                                    f"the journal jumps to version {version}")
            event = self.decode(stream, version, "event", type_name, data)
            out.append(Recorded(stream=stream, version=version, event=event,
                                recorded_at=recorded_at))
        return tuple(out)

    def timer(self, row: Row) -> DurableTimer:
        """A timer from ``(stream, timer_id, due_at, type, data)``."""
        stream, timer_id, due_at, type_name, data = row
        message = self.decode(stream, None, f"timer {timer_id!r}", type_name, data)
        return DurableTimer(timer_id=timer_id, stream=stream, due_at=due_at, message=message)

    def outbox_entry(self, row: Row) -> OutboxEntry:
        """An entry from ``(entry_id, stream, recipient, type, data, causation_id,
        correlation_id)``."""
        entry_id, stream, recipient, type_name, data, causation, correlation = row
        message = self.decode(stream, None, f"outbox entry {entry_id!r}", type_name, data)
        return OutboxEntry(entry_id=entry_id, stream=stream, recipient=recipient,
                           message=message, causation_id=causation,
                           correlation_id=correlation)
