"""PostgresStore: the server durable store (psycopg 3, sync API).

Same tables, codec and errors as :class:`~orderloom.runtime.sqlite.SqliteStore`,
kept in one PostgreSQL schema (a namespace), so several stores — and the
tests — can share a database.

**One transaction per turn, serialised per stream by a row lock.** The
``heads`` table holds one row per stream: its version. A commit first
upserts that row (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), which
takes the row's lock and returns the latest committed version even if it
changed after the transaction began. A second commit to the same stream
waits on that lock (also when both create the stream: the insert waits on
the first one's uncommitted row), then reads the version the first one
wrote and raises :class:`~orderloom.runtime.ConcurrencyConflict` if its turn
was decided on an older one. So READ COMMITTED is enough: every check of a
turn (inbox, version, pending outbox ids) runs after the lock is held, and
READ COMMITTED gives each statement a fresh snapshot that sees the commit
it waited for. The primary keys back this up: ``events (stream, version)``,
``inbox (stream, message_id)`` and the outbox's unique ``entry_id`` (two
streams committing one pending entry id at once: the second one waits, then
gets :class:`~orderloom.runtime.InvalidTurn`, as it would have serially).
:meth:`PostgresStore.load` reads in one REPEATABLE READ transaction, so the
snapshot, the tail and the version agree.

Outbox order: ``seq`` is taken when the row is inserted. A stream's commits
are serialised, so its entries come in commit order; entries of two streams
committing at the same moment may come in the order their rows were
inserted rather than committed.

``synchronous_commit`` is set to ``on`` for the session: a commit that
returned has reached the server's disk (like SQLite's ``synchronous=FULL``),
whatever the server's default. Text columns use the "C" collation so
``streams()`` and ``due_timers()`` sort by code point, as Python and the
other stores do. PostgreSQL text cannot hold NUL characters: a stream name
or id containing one is refused with :class:`~orderloom.runtime.StoreFailure`.

This module is the only one that imports :mod:`psycopg`; every psycopg
error leaves it as a :class:`~orderloom.runtime.StoreFailure` with the cause
chained (or one of the store's own errors where it means one).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict

from ._codec import Codec
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

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresStore", "valid_schema_name"]

SCHEMA_VERSION = 1
"""The layout this code reads and writes; a schema with another one is refused."""

DEFAULT_SCHEMA = "orderloom"
"""The PostgreSQL schema holding the store's tables unless another is given."""

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_TEXT = 'TEXT COLLATE "C" NOT NULL'
_TABLES = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    # One row per stream that was ever committed to: its version. Its row lock
    # serialises the commits of a stream (see the module docstring).
    f"CREATE TABLE IF NOT EXISTS heads (stream {_TEXT} PRIMARY KEY, version BIGINT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS events (stream {_TEXT}, version BIGINT NOT NULL, "
    "type TEXT NOT NULL, data TEXT NOT NULL, recorded_at DOUBLE PRECISION, "
    "PRIMARY KEY (stream, version))",
    # Only the latest snapshot of a stream is kept.
    f"CREATE TABLE IF NOT EXISTS snapshots (stream {_TEXT} PRIMARY KEY, "
    "version BIGINT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS inbox (stream {_TEXT}, message_id {_TEXT}, "
    "version BIGINT NOT NULL, PRIMARY KEY (stream, message_id))",
    # seq is insertion order; published rows are deleted.
    "CREATE TABLE IF NOT EXISTS outbox (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    f"entry_id {_TEXT} CONSTRAINT outbox_entry_id UNIQUE, stream {_TEXT}, "
    "recipient TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, causation_id TEXT, "
    "correlation_id TEXT)",
    f"CREATE TABLE IF NOT EXISTS timers (stream {_TEXT}, timer_id {_TEXT}, "
    "due_at DOUBLE PRECISION NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, "
    "PRIMARY KEY (stream, timer_id))",
    "CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due_at, stream, timer_id)",
)

# Added after schema version 1 without changing its tables: created on open
# in new and existing schemas alike. seq is the order of recording; delivery
# (the record's delivery key) keeps one row per refused delivery, a column
# added on open to a table written before it (its older rows have none, nor do
# records without a key: NULLs never clash in a unique index). The column and
# its index are looked up before they are added: ALTER TABLE would take an
# exclusive lock (and need the table's owner) even when there is nothing to do.
_DEAD_LETTERS = (
    "CREATE TABLE IF NOT EXISTS dead_letters (seq BIGINT GENERATED ALWAYS AS IDENTITY "
    "PRIMARY KEY, reason TEXT NOT NULL, source TEXT NOT NULL, origin TEXT NOT NULL, "
    "path TEXT NOT NULL, detail TEXT NOT NULL, type TEXT, "
    "received_at DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL, delivery TEXT)"
)
_HAS_DELIVERY = (
    "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = "
    "current_schema() AND table_name = 'dead_letters' AND column_name = 'delivery'), "
    "to_regclass('dead_letters_by_delivery') IS NOT NULL"
)
_DEAD_LETTER_DELIVERY = "ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS delivery TEXT"
_DEAD_LETTER_KEY = ("CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_by_delivery "
                    "ON dead_letters (delivery)")


def _ensure_dead_letters(db: psycopg.Connection[Row]) -> None:
    """The dead-letter table with its delivery column and index, each made only if missing."""
    db.execute(_DEAD_LETTERS)
    row = db.execute(_HAS_DELIVERY).fetchone()
    has_column, has_index = (False, False) if row is None else (bool(row[0]), bool(row[1]))
    if not has_column:
        db.execute(_DEAD_LETTER_DELIVERY)
    if not has_index:
        db.execute(_DEAD_LETTER_KEY)


def valid_schema_name(name: str) -> bool:
    """Whether ``name`` can name the store's schema: lower-case letters,
    digits and ``_``, not starting with a digit, at most 63 characters."""
    return _SCHEMA_NAME.fullmatch(name) is not None


class PostgresStore:
    """A durable :class:`~orderloom.runtime.Store` in a PostgreSQL schema.

    Holds one connection; safe to share between threads (calls are
    serialised). Several stores, in one process or many, may use the same
    schema: commits to one stream serialise on its row in ``heads``.

    Args:
        conninfo: a libpq connection string or ``postgresql://`` URL.
        codec: turns events, messages and snapshot states into text and back.
        schema: the PostgreSQL schema for the tables (created with them if
            missing).
        connect_timeout: seconds to wait for the server when connecting.

    Raises:
        ValueError: ``schema`` is not a valid schema name.
        StoreFailure: the server cannot be reached or refuses the connection.
        SchemaMismatch: the schema holds another version of the layout.
    """

    durable = True

    def __init__(self, conninfo: str, codec: Codec, *, schema: str = DEFAULT_SCHEMA,
                 connect_timeout: float = 10.0) -> None:
        if not valid_schema_name(schema):
            raise ValueError(f"PostgresStore: schema {schema!r} is not a valid name "
                             "(lower-case letters, digits and _, at most 63 characters)")
        self.schema = schema
        self.location = f"{_describe(conninfo)} schema {schema}"
        self._rows = RowReader(codec)
        self._codec = codec
        self._lock = threading.Lock()
        self._db: psycopg.Connection[Row] | None = None
        try:
            # autocommit: we open one explicit transaction per operation.
            db = psycopg.connect(conninfo, autocommit=True,
                                 connect_timeout=max(1, round(connect_timeout)))
        except psycopg.Error as exc:
            raise StoreFailure(self.location, "open", str(exc)) from exc
        try:
            db.execute("SET synchronous_commit = on")
            found = self._ensure_schema(db, schema)
        except psycopg.Error as exc:
            db.close()
            raise StoreFailure(self.location, "open", str(exc)) from exc
        if found != SCHEMA_VERSION:
            db.close()
            raise SchemaMismatch(self.location, found, SCHEMA_VERSION)
        self._db = db

    @staticmethod
    def _ensure_schema(db: psycopg.Connection[Row], schema: str) -> int:
        name = sql.Identifier(schema)
        with db.transaction():
            # Two stores opening a new schema at once would race on CREATE ...
            # IF NOT EXISTS (it is not atomic in PostgreSQL): take turns.
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"orderloom:{schema}",))
            db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            db.execute(sql.SQL("SET search_path TO {}").format(name))
            fresh = db.execute("SELECT to_regclass('schema_version') IS NULL").fetchone()
            if fresh is None or fresh[0]:
                for statement in _TABLES:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (%s)",
                           (SCHEMA_VERSION,))
                _ensure_dead_letters(db)
                return SCHEMA_VERSION
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            found = 0 if row is None or row[0] is None else int(row[0])
            if found == SCHEMA_VERSION:
                _ensure_dead_letters(db)
            return found

    # -- the turn ---------------------------------------------------------------------

    def load(self, stream: str) -> Loaded:
        """The latest snapshot, the events after it and the pending timers."""
        with self._lock:
            db = self._open()
            try:
                # One snapshot of the database: snapshot, tail and version agree.
                with db.transaction():
                    db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    snap = db.execute("SELECT version, type, data FROM snapshots "
                                      "WHERE stream = %s", (stream,)).fetchone()
                    base = 0 if snap is None else int(snap[0])
                    version = self._version(db, stream)
                    rows = db.execute(
                        "SELECT version, type, data, recorded_at FROM events "
                        "WHERE stream = %s AND version > %s ORDER BY version",
                        (stream, base)).fetchall()
                    timer_rows = db.execute(
                        "SELECT stream, timer_id, due_at, type, data FROM timers "
                        "WHERE stream = %s ORDER BY due_at, timer_id", (stream,)).fetchall()
            except psycopg.Error as exc:
                raise StoreFailure(self.location, f"load {stream!r}", str(exc)) from exc
        return self._rows.loaded(stream, snap, version, rows, timer_rows)

    def commit(self, stream: str, turn: Turn) -> None:
        """Apply ``turn`` in one transaction holding the stream's row lock, or
        change nothing."""
        check_turn(stream, turn)
        # Encode before the transaction: a codec error changes nothing and the
        # stream's lock is held only for the writes.
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
        after = base + len(event_rows)
        with self._lock:
            db = self._open()
            try:
                with db.transaction(), db.cursor() as cur:
                    self._check(cur, stream, turn, [row[0] for row in outbox_rows])
                    if event_rows:
                        cur.executemany("INSERT INTO events (stream, version, type, data, "
                                        "recorded_at) VALUES (%s, %s, %s, %s, %s)", event_rows)
                        cur.execute("UPDATE heads SET version = %s WHERE stream = %s",
                                    (after, stream))
                    if turn.inbox_id is not None:
                        cur.execute("INSERT INTO inbox (stream, message_id, version) "
                                    "VALUES (%s, %s, %s)", (stream, turn.inbox_id, after))
                        # A local outbox entry is delivered by its receiver's commit.
                        cur.execute("DELETE FROM outbox WHERE entry_id = %s", (turn.inbox_id,))
                    if outbox_rows:
                        cur.executemany("INSERT INTO outbox (entry_id, stream, recipient, type, "
                                        "data, causation_id, correlation_id) "
                                        "VALUES (%s, %s, %s, %s, %s, %s, %s)", outbox_rows)
                    if turn.timers_cancelled:
                        cur.execute("DELETE FROM timers WHERE stream = %s "
                                    "AND timer_id = ANY(%s)",
                                    (stream, list(turn.timers_cancelled)))
                    if timer_rows:
                        cur.executemany("INSERT INTO timers (stream, timer_id, due_at, type, "
                                        "data) VALUES (%s, %s, %s, %s, %s) "
                                        "ON CONFLICT (stream, timer_id) DO UPDATE SET "
                                        "due_at = excluded.due_at, type = excluded.type, "
                                        "data = excluded.data", timer_rows)
                    if snapshot_row is not None:
                        cur.execute("INSERT INTO snapshots (stream, version, type, data) "
                                    "VALUES (%s, %s, %s, %s) ON CONFLICT (stream) DO UPDATE "
                                    "SET version = excluded.version, type = excluded.type, "
                                    "data = excluded.data", snapshot_row)
            except errors.UniqueViolation as exc:
                if exc.diag.constraint_name == "outbox_entry_id":
                    # Another stream's commit wrote the same entry id while this
                    # one waited: what the check says when they run one by one.
                    raise InvalidTurn(stream, "an outbox entry id is already pending "
                                              f"({exc.diag.message_detail})") from exc
                raise StoreFailure(self.location, f"commit to {stream!r}", str(exc)) from exc
            except psycopg.Error as exc:
                raise StoreFailure(self.location, f"commit to {stream!r}", str(exc)) from exc

    @staticmethod
    def _check(cur: psycopg.Cursor[Row], stream: str, turn: Turn,
               entry_ids: Sequence[str]) -> None:
        """Lock the stream's head row, then the inbox, version and pending-outbox checks."""
        # DO UPDATE (not DO NOTHING) so the row is locked and returned whether
        # this commit created it or not.
        head = cur.execute("INSERT INTO heads (stream, version) VALUES (%s, 0) "
                           "ON CONFLICT (stream) DO UPDATE SET version = heads.version "
                           "RETURNING version", (stream,)).fetchone()
        inbox_id = turn.inbox_id
        if inbox_id is not None and cur.execute(
                "SELECT 1 FROM inbox WHERE stream = %s AND message_id = %s",
                (stream, inbox_id)).fetchone() is not None:
            raise DuplicateDelivery(stream, inbox_id)
        version = 0 if head is None else int(head[0])
        if version != turn.expected_version:
            raise ConcurrencyConflict(stream, turn.expected_version, version)
        if entry_ids:
            row = cur.execute("SELECT entry_id FROM outbox WHERE entry_id = ANY(%s) "
                              "ORDER BY seq LIMIT 1", (list(entry_ids),)).fetchone()
            if row is not None:
                raise InvalidTurn(stream, f"outbox entry {row[0]!r} is already pending")

    def seen(self, stream: str, message_id: str) -> bool:
        """Whether a commit of ``stream`` recorded ``message_id`` as its inbox id."""
        rows = self._query("seen", "SELECT 1 FROM inbox WHERE stream = %s AND message_id = %s",
                           (stream, message_id))
        return bool(rows)

    # -- effects ----------------------------------------------------------------------

    def pending_outbox(self, limit: int = 100,
                       stream: str | None = None) -> tuple[OutboxEntry, ...]:
        """Up to ``limit`` unpublished outbox entries (of ``stream`` only, if
        given), oldest first."""
        where, params = ("WHERE stream = %s ", (stream,)) if stream is not None else ("", ())
        rows = self._query("read the outbox",
                           "SELECT entry_id, stream, recipient, type, data, causation_id, "
                           f"correlation_id FROM outbox {where}ORDER BY seq LIMIT %s",
                           (*params, max(limit, 0)))
        return tuple(self._rows.outbox_entry(row) for row in rows)

    def mark_published(self, entry_ids: Iterable[str]) -> None:
        """Delete published entries from the outbox; unknown ids are ignored."""
        ids = list(entry_ids)
        if not ids:
            return
        with self._lock:
            db = self._open()
            try:
                db.execute("DELETE FROM outbox WHERE entry_id = ANY(%s)", (ids,))
            except psycopg.Error as exc:
                raise StoreFailure(self.location, "mark published", str(exc)) from exc

    def due_timers(self, now: float, limit: int | None = None) -> tuple[DurableTimer, ...]:
        """Pending timers with ``due_at <= now``, by ``(due_at, stream, timer_id)``."""
        # LIMIT NULL is no limit.
        rows = self._query("read due timers",
                           "SELECT stream, timer_id, due_at, type, data FROM timers "
                           "WHERE due_at <= %s ORDER BY due_at, stream, timer_id LIMIT %s",
                           (now, None if limit is None else max(limit, 0)))
        return tuple(self._rows.timer(row) for row in rows)

    # -- export and housekeeping ------------------------------------------------------

    def streams(self) -> Iterator[str]:
        """Names of the streams holding at least one event, sorted."""
        rows = self._query("list streams",
                           "SELECT stream FROM heads WHERE version > 0 ORDER BY stream", ())
        return iter([row[0] for row in rows])

    def journal(self, stream: str, after: int = 0) -> tuple[Recorded, ...]:
        """Every event of ``stream`` with a version above ``after``, in order."""
        after = max(after, 0)
        rows = self._query(f"read the journal of {stream!r}",
                           "SELECT version, type, data, recorded_at FROM events "
                           "WHERE stream = %s AND version > %s ORDER BY version",
                           (stream, after))
        return self._rows.recorded(stream, after, rows)

    def stats(self) -> Mapping[str, int]:
        """Row counts per table."""
        # Table names come from the fixed STATS_TABLES, never from a caller.
        counts = " UNION ALL ".join(f"SELECT '{table}', count(*) FROM {table}"
                                    for table in STATS_TABLES)
        return {name: int(count) for name, count in self._query("stats", counts, ())}

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
                           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                           "ON CONFLICT (delivery) DO NOTHING",
                           (*dead_letter_row(letter), letter.delivery))
            except psycopg.Error as exc:
                raise StoreFailure(self.location, "record a dead letter", str(exc)) from exc

    def dead_letters(self, limit: int = 100) -> tuple[RefusedPayload, ...]:
        """The ``limit`` most recently recorded refused payloads, newest first."""
        rows = self._query("read the dead letters",
                           "SELECT reason, source, origin, path, detail, type, received_at, "
                           "payload FROM dead_letters ORDER BY seq DESC LIMIT %s",
                           (max(limit, 0),))
        return tuple(dead_letter_of_row(row) for row in rows)

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except psycopg.Error as exc:
                raise StoreFailure(self.location, "close", str(exc)) from exc

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    # -- helpers ----------------------------------------------------------------------

    def _open(self) -> psycopg.Connection[Row]:
        if self._db is None:
            raise StoreClosed(repr(self))
        return self._db

    @staticmethod
    def _version(db: psycopg.Connection[Row], stream: str) -> int:
        row = db.execute("SELECT max(version) FROM events WHERE stream = %s",
                         (stream,)).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def _query(self, operation: str, query: str, params: tuple[Any, ...]) -> list[Row]:
        with self._lock:
            db = self._open()
            try:
                return db.execute(query, params).fetchall()
            except psycopg.Error as exc:
                raise StoreFailure(self.location, operation, str(exc)) from exc


if TYPE_CHECKING:
    _IS_A_STORE: type[Store] = PostgresStore  # mypy checks the protocol is implemented


def _describe(conninfo: str) -> str:
    """Where a connection string points, without its password (for errors and logs)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "postgresql (unparsable connection string)"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    user = f"{params['user']}@" if params.get("user") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname') or ''}"
