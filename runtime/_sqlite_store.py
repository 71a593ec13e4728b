"""SqliteStore: the embedded durable store (stdlib sqlite3, WAL).

One transaction per commit, taken with ``BEGIN IMMEDIATE`` so the version
check and the writes hold the write lock together (a second process writing
the same file waits, then sees the new version). ``synchronous=FULL``: a
commit that returned survives a power cut. Objects are stored as
``(type_name, json_text)`` through a :class:`~orderloom.runtime.Codec`.

This module is the only one that imports :mod:`sqlite3`; every sqlite3 error
leaves it as a :class:`~orderloom.runtime.StoreFailure` with the cause
chained.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._codec import Codec
from ._crash import crash_point
from ._refused import (
    RefusedPayload,
    dead_letter_of_row,
    dead_letter_row,
)
from ._rows import Row, RowReader
from ._store import (
    STATS_TABLES,
    ConcurrencyConflict,
    DuplicateDelivery,
    DurableTimer,
    InvalidTurn,
    Loaded,
    OutboxEntry,
    Recorded,
    SchemaMismatch,
    Store,
    StoreClosed,
    StoreFailure,
    Turn,
    check_turn,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = 1
"""The layout this code reads and writes; a file with another one is refused."""

_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    # The journal: one row per event, clustered by (stream, version) so a
    # restore is one range scan.
    "CREATE TABLE events (stream TEXT NOT NULL, version INTEGER NOT NULL, "
    "type TEXT NOT NULL, data TEXT NOT NULL, recorded_at REAL, "
    "PRIMARY KEY (stream, version)) WITHOUT ROWID",
    # Only the latest snapshot of a stream is kept.
    "CREATE TABLE snapshots (stream TEXT PRIMARY KEY, version INTEGER NOT NULL, "
    "type TEXT NOT NULL, data TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE inbox (stream TEXT NOT NULL, message_id TEXT NOT NULL, "
    "version INTEGER NOT NULL, PRIMARY KEY (stream, message_id)) WITHOUT ROWID",
    # seq (the rowid) is commit order; published rows are deleted.
    "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE, "
    "stream TEXT NOT NULL, recipient TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, "
    "causation_id TEXT, correlation_id TEXT)",
    "CREATE TABLE timers (stream TEXT NOT NULL, timer_id TEXT NOT NULL, due_at REAL NOT NULL, "
    "type TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (stream, timer_id)) WITHOUT ROWID",
    "CREATE INDEX timers_by_due ON timers (due_at, stream, timer_id)",
)

# Added after schema version 1 without changing its tables: created on open
# (IF NOT EXISTS) in new and existing files alike. seq (the rowid) is the
# order of recording; delivery (the record's delivery key) keeps one row per
# refused delivery, a column added on open to a table written before it (its
# older rows have none, nor do records without a key: NULLs never clash in a
# unique index).
_DEAD_LETTERS = (
    "CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY, reason TEXT NOT NULL, "
    "source TEXT NOT NULL, origin TEXT NOT NULL, path TEXT NOT NULL, detail TEXT NOT NULL, "
    "type TEXT, received_at REAL NOT NULL, payload TEXT NOT NULL, delivery TEXT)"
)
_DEAD_LETTER_DELIVERY = "ALTER TABLE dead_letters ADD COLUMN delivery TEXT"
_DEAD_LETTER_KEY = ("CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_by_delivery "
                    "ON dead_letters (delivery)")

class SqliteStore:
    """A durable :class:`~orderloom.runtime.Store` in one SQLite file.

    Safe to share between threads (calls are serialised); several processes
    may open the same file (writes serialise on SQLite's lock, waiting up to
    ``busy_timeout`` seconds).

    Args:
        path: the database file (created with the schema if missing), or
            ``":memory:"`` for a private in-memory database (tests).
        codec: turns events, messages and snapshot states into text and back.
        busy_timeout: seconds to wait for another writer's lock.

    Raises:
        StoreFailure: the file cannot be opened as a database.
        SchemaMismatch: the file holds another schema version.
    """

    durable = True

    def __init__(self, path: str | os.PathLike[str], codec: Codec, *,
                 busy_timeout: float = 5.0) -> None:
        self.location = os.fspath(path)
        self._codec = codec
        self._rows = RowReader(codec)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per turn.
            db = sqlite3.connect(self.location, timeout=busy_timeout, isolation_level=None,
                                 check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreFailure(self.location, "open", str(exc)) from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            found = self._ensure_schema(db)
        except sqlite3.Error as exc:
            db.close()
            raise StoreFailure(self.location, "open", str(exc)) from exc
        if found != SCHEMA_VERSION:
            db.close()
            raise SchemaMismatch(self.location, found, SCHEMA_VERSION)
        self._db = db

    @staticmethod
    def _ensure_schema(db: sqlite3.Connection) -> int:
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                             "AND name = 'schema_version'").fetchone()
            if row is None:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                found = SCHEMA_VERSION
            else:
                version = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
                found = int(version) if version is not None else 0
            if found == SCHEMA_VERSION:
                db.execute(_DEAD_LETTERS)
                columns = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
                if "delivery" not in columns:
                    db.execute(_DEAD_LETTER_DELIVERY)
                db.execute(_DEAD_LETTER_KEY)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        return found

    # -- the turn ---------------------------------------------------------------------

    def load(self, stream: str) -> Loaded:
        """The latest snapshot, the events after it and the pending timers."""
        with self._lock:
            db = self._open()
            try:
                # One read transaction: snapshot, tail and version agree.
                db.execute("BEGIN")
                try:
                    snap: Row | None = db.execute(
                        "SELECT version, type, data FROM snapshots WHERE stream = ?",
                        (stream,)).fetchone()
                    base = 0 if snap is None else int(snap[0])
                    version = self._version(db, stream)
                    rows = db.execute(
                        "SELECT version, type, data, recorded_at FROM events "
                        "WHERE stream = ? AND version > ? ORDER BY version",
                        (stream, base)).fetchall()
                    timer_rows = db.execute(
                        "SELECT stream, timer_id, due_at, type, data FROM timers "
                        "WHERE stream = ? ORDER BY due_at, timer_id", (stream,)).fetchall()
                finally:
                    db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreFailure(self.location, f"load {stream!r}", str(exc)) from exc
        return self._rows.loaded(stream, snap, version, rows, timer_rows)

    def commit(self, stream: str, turn: Turn) -> None:
        """Apply ``turn`` in one ``BEGIN IMMEDIATE`` transaction, or change nothing."""
        check_turn(stream, turn)
        # Encode before taking the lock: a codec error changes nothing and the
        # write lock is held only for the writes.
        encode = self._codec.encode
        base = turn.expected_version
        at = turn.recorded_at
        event_rows = [(stream, base + i, *encode(event), at)
                      for i, event in enumerate(turn.events, 1)]
        outbox_rows = [(e.entry_id, stream, e.recipient, *encode(e.message), e.causation_id,
                        e.correlation_id) for e in turn.outbox]
        timer_rows = [(stream, t.timer_id, t.due_at, *encode(t.message))
                      for t in turn.timers_set]
        snapshot_row = None
        if turn.snapshot is not None:
            snapshot_row = (stream, turn.snapshot.version, *encode(turn.snapshot.state))
        with self._lock:
            db = self._open()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    self._check(db, stream, turn, [row[0] for row in outbox_rows])
                    if event_rows:
                        db.executemany("INSERT INTO events (stream, version, type, data, "
                                       "recorded_at) VALUES (?, ?, ?, ?, ?)", event_rows)
                    if turn.inbox_id is not None:
                        db.execute("INSERT INTO inbox (stream, message_id, version) "
                                   "VALUES (?, ?, ?)",
                                   (stream, turn.inbox_id, base + len(event_rows)))
                        # A local outbox entry is delivered by its receiver's commit.
                        db.execute("DELETE FROM outbox WHERE entry_id = ?", (turn.inbox_id,))
                    if outbox_rows:
                        db.executemany("INSERT INTO outbox (entry_id, stream, recipient, type, "
                                       "data, causation_id, correlation_id) "
                                       "VALUES (?, ?, ?, ?, ?, ?, ?)", outbox_rows)
                    if turn.timers_cancelled:
                        db.executemany("DELETE FROM timers WHERE stream = ? AND timer_id = ?",
                                       [(stream, i) for i in turn.timers_cancelled])
                    if timer_rows:
                        db.executemany("INSERT OR REPLACE INTO timers (stream, timer_id, "
                                       "due_at, type, data) VALUES (?, ?, ?, ?, ?)",
                                       timer_rows)
                    if snapshot_row is not None:
                        db.execute("INSERT OR REPLACE INTO snapshots (stream, version, type, "
                                   "data) VALUES (?, ?, ?, ?)", snapshot_row)
                    crash_point("store.after_append")
                    db.execute("COMMIT")
                except BaseException:
                    _rollback(db)
                    raise
            except sqlite3.Error as exc:
                raise StoreFailure(self.location, f"commit to {stream!r}", str(exc)) from exc

    def _check(self, db: sqlite3.Connection, stream: str, turn: Turn,
               entry_ids: Sequence[str]) -> None:
        """The inbox, version and pending-outbox checks, inside the write transaction."""
        inbox_id = turn.inbox_id
        if inbox_id is not None and db.execute(
                "SELECT 1 FROM inbox WHERE stream = ? AND message_id = ?",
                (stream, inbox_id)).fetchone() is not None:
            raise DuplicateDelivery(stream, inbox_id)
        version = self._version(db, stream)
        if version != turn.expected_version:
            raise ConcurrencyConflict(stream, turn.expected_version, version)
        if entry_ids:
            marks = ", ".join("?" * len(entry_ids))
            row = db.execute(f"SELECT entry_id FROM outbox WHERE entry_id IN ({marks})",
                             tuple(entry_ids)).fetchone()
            if row is not None:
                raise InvalidTurn(stream, f"outbox entry {row[0]!r} is already pending")

    def seen(self, stream: str, message_id: str) -> bool:
        """Whether a commit of ``stream`` recorded ``message_id`` as its inbox id."""
        row = self._query_one("seen", "SELECT 1 FROM inbox WHERE stream = ? AND message_id = ?",
                              (stream, message_id))
        return row is not None

    # -- effects ----------------------------------------------------------------------

    def pending_outbox(self, limit: int = 100,
                       stream: str | None = None) -> tuple[OutboxEntry, ...]:
        """Up to ``limit`` unpublished outbox entries (of ``stream`` only, if
        given), oldest commit first."""
        where, params = ("WHERE stream = ? ", (stream,)) if stream is not None else ("", ())
        rows = self._query("read the outbox",
                           "SELECT entry_id, stream, recipient, type, data, causation_id, "
                           f"correlation_id FROM outbox {where}ORDER BY seq LIMIT ?",
                           (*params, max(limit, 0)))
        return tuple(self._rows.outbox_entry(row) for row in rows)

    def mark_published(self, entry_ids: Iterable[str]) -> None:
        """Delete published entries from the outbox; unknown ids are ignored.
        Ids no longer pending (a local receiver's commit took them) cost a
        read, not a write transaction."""
        rows = [(entry_id,) for entry_id in entry_ids]
        if not rows:
            return
        with self._lock:
            db = self._open()
            try:
                marks = ", ".join("?" * len(rows))
                if db.execute(f"SELECT 1 FROM outbox WHERE entry_id IN ({marks}) LIMIT 1",
                              tuple(r[0] for r in rows)).fetchone() is None:
                    return
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("DELETE FROM outbox WHERE entry_id = ?", rows)
                    db.execute("COMMIT")
                except BaseException:
                    _rollback(db)
                    raise
            except sqlite3.Error as exc:
                raise StoreFailure(self.location, "mark published", str(exc)) from exc

    def due_timers(self, now: float, limit: int | None = None) -> tuple[DurableTimer, ...]:
        """Pending timers with ``due_at <= now``, by ``(due_at, stream, timer_id)``."""
        rows = self._query("read due timers",
                           "SELECT stream, timer_id, due_at, type, data FROM timers "
                           "WHERE due_at <= ? ORDER BY due_at, stream, timer_id LIMIT ?",
                           (now, -1 if limit is None else max(limit, 0)))
        return tuple(self._rows.timer(row) for row in rows)

    # -- export and housekeeping ------------------------------------------------------

    def streams(self) -> Iterator[str]:
        """Names of the streams holding at least one event, sorted."""
        rows = self._query("list streams",
                           "SELECT DISTINCT stream FROM events ORDER BY stream", ())
        return iter([row[0] for row in rows])

    def journal(self, stream: str, after: int = 0) -> tuple[Recorded, ...]:
        """Every event of ``stream`` with a version above ``after``, in order."""
        after = max(after, 0)
        rows = self._query(f"read the journal of {stream!r}",
                           "SELECT version, type, data, recorded_at FROM events "
                           "WHERE stream = ? AND version > ? ORDER BY version", (stream, after))
        return self._rows.recorded(stream, after, rows)

    def stats(self) -> Mapping[str, int]:
        """Row counts per table."""
        # Table names come from the fixed STATS_TABLES, never from a caller.
        return {table: int(self._query("stats", f"SELECT count(*) FROM {table}", ())[0][0])
                for table in STATS_TABLES}

    def record_dead_letter(self, letter: RefusedPayload) -> None:
        """Keep a refused payload (already redacted) in the ``dead_letters`` table,
        once per delivery (its ``delivery`` key; one without a key every time)."""
        if not isinstance(letter, RefusedPayload):
            raise TypeError(f"record_dead_letter expects a RefusedPayload, got "
                            f"{type(letter).__name__}")
        with self._lock:
            db = self._open()
            try:
                db.execute("INSERT INTO dead_letters (reason, source, origin, path, detail, type, "
                           "received_at, payload, delivery) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (delivery) DO NOTHING",
                           (*dead_letter_row(letter), letter.delivery))
            except sqlite3.Error as exc:
                raise StoreFailure(self.location, "record a dead letter", str(exc)) from exc

    def dead_letters(self, limit: int = 100) -> tuple[RefusedPayload, ...]:
        """The ``limit`` most recently recorded refused payloads, newest first."""
        rows = self._query("read the dead letters",
                           "SELECT reason, source, origin, path, detail, type, received_at, "
                           "payload FROM dead_letters ORDER BY seq DESC LIMIT ?",
                           (max(limit, 0),))
        return tuple(dead_letter_of_row(row) for row in rows)

    def close(self) -> None:
        """Close the database connection; idempotent."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error as exc:
                raise StoreFailure(self.location, "close", str(exc)) from exc

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.location!r})"

    # -- helpers ----------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosed(repr(self))
        return self._db

    @staticmethod
    def _version(db: sqlite3.Connection, stream: str) -> int:
        version = db.execute("SELECT max(version) FROM events WHERE stream = ?",
                             (stream,)).fetchone()[0]
        return 0 if version is None else int(version)

    def _query(self, operation: str, sql: str, params: tuple[Any, ...]) -> list[Row]:
        with self._lock:
            db = self._open()
            try:
                return db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreFailure(self.location, operation, str(exc)) from exc

    def _query_one(self, operation: str, sql: str, params: tuple[Any, ...]) -> Row | None:
        with self._lock:
            db = self._open()
            try:
                row: Row | None = db.execute(sql, params).fetchone()
                return row
            except sqlite3.Error as exc:
                raise StoreFailure(self.location, operation, str(exc)) from exc


if TYPE_CHECKING:
    _IS_A_STORE: type[Store] = SqliteStore  # mypy checks the protocol is implemented


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back an open transaction, keeping the error that caused it."""
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            # The original exception says what went wrong; SQLite has already
            # rolled back if ROLLBACK itself fails (e.g. after a disk I/O error).
            pass
