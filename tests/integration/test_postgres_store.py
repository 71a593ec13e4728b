"""PostgresStore against a real server: opening by URL, and commits that race.

The store contract itself runs on PostgreSQL in tests/contract; these pin
what only a server database has: several connections committing at the same
moment.
"""

from __future__ import annotations

import threading
import time
import uuid
import attrs
import psycopg
import pytest

from orderloom.runtime import (
    AttrsCodec,
    ConcurrencyConflict,
    DurableTimer,
    InvalidTurn,
    Message,
    OutboxEntry,
    Snapshot,
    StoreFailure,
    Turn,
    open_store,
)
from orderloom.runtime.postgres import PostgresStore
from tests import pg

pytestmark = pytest.mark.integration


@attrs.frozen(kw_only=True)
class Noted(Message):
    """A test event, outbox message, timer message and snapshot state."""

    n: int


CODEC = AttrsCodec([Noted])
S = "order/1"


def turn_of(name: str, expected: int, stream: str = S) -> Turn:
    """A turn writing every kind of row, each tagged with ``name``."""
    return Turn(expected_version=expected, events=(Noted(n=len(name)),), inbox_id=f"m-{name}",
                outbox=(OutboxEntry(entry_id=f"e-{name}", stream=stream, recipient="x",
                                    message=Noted(n=1)),),
                timers_set=(DurableTimer(timer_id=f"t-{name}", stream=stream, due_at=1.0,
                                         message=Noted(n=2)),),
                snapshot=Snapshot(version=expected + 1, state=Noted(n=3)))


def test_open_store_opens_postgres_urls_in_the_named_schema() -> None:
    """postgresql://...?schema=NAME and postgres://... open a PostgresStore on that schema."""
    with pg.scratch_schema() as schema:
        with open_store(pg.url(schema), CODEC) as store:
            assert isinstance(store, PostgresStore) and store.durable
            assert store.schema == schema
            store.commit(S, Turn(expected_version=0, events=(Noted(n=1),)))
        alias = pg.url(schema).replace("postgresql://", "postgres://", 1)
        with open_store(alias, CODEC) as store:
            assert store.load(S).version == 1


def test_an_unreachable_database_is_a_store_failure() -> None:
    """Connecting to a database that does not exist raises StoreFailure, the cause chained."""
    missing = pg.url("orderloom").replace(f"/{pg.DATABASE}?", "/orderloom_no_such_db?")
    with pytest.raises(StoreFailure) as caught:
        open_store(missing, CODEC)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert caught.value.operation == "open"


def _race(schema: str, gate_sql: str, gate_params: tuple[str, ...],
          commits: dict[str, tuple[str, Turn]]) -> dict[str, BaseException | None]:
    """Commit each ``name: (stream, turn)`` on a connection of its own while a gate
    transaction holds the row ``gate_sql`` locks; release it once every commit waits."""
    app = f"orderloom-race-{uuid.uuid4().hex[:12]}"
    outcome: dict[str, BaseException | None] = {}
    stores = {name: PostgresStore(f"{pg.conninfo()} application_name={app}", CODEC,
                                  schema=schema) for name in commits}
    try:
        with psycopg.connect(pg.conninfo()) as gate, \
                psycopg.connect(pg.conninfo(), autocommit=True) as watcher:
            # gate is not autocommit: its transaction holds the lock until rollback.
            gate.execute(f"SET search_path TO {schema}".encode())
            gate.execute(gate_sql.encode(), gate_params)

            def attempt(name: str) -> None:
                try:
                    stores[name].commit(*commits[name])
                    outcome[name] = None
                except BaseException as exc:  # recorded for the test to assert on
                    outcome[name] = exc

            threads = [threading.Thread(target=attempt, args=(name,)) for name in commits]
            for thread in threads:
                thread.start()
            # Every commit must be blocked behind the gate before it opens; the
            # deadline only guards against a hang, it decides nothing.
            deadline = time.monotonic() + 30
            while True:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                    "AND wait_event_type = 'Lock'", (app,)).fetchone()
                waiting = 0 if row is None else int(row[0])
                if waiting == len(commits):
                    break
                assert time.monotonic() < deadline, f"only {waiting} commits are waiting"
                time.sleep(0.01)
            gate.rollback()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        for store in stores.values():
            store.close()
    return outcome


@pytest.mark.parametrize("existing", [True, False], ids=["existing-stream", "new-stream"])
def test_two_connections_on_one_expected_version_exactly_one_wins(existing: bool) -> None:
    """Two stores committing to one stream on the same expected version at the same
    moment: one commits, the other gets ConcurrencyConflict and none of its turn shows."""
    base = 1 if existing else 0
    with pg.scratch_schema() as schema:
        with PostgresStore(pg.conninfo(), CODEC, schema=schema) as setup:
            if existing:
                setup.commit(S, Turn(expected_version=0, events=(Noted(n=0),)))
            else:
                setup.commit("order/other", Turn(expected_version=0))  # creates the tables
        # The gate holds the lock the commits queue on: the stream's head row, or
        # (for a new stream) an uncommitted insert of it.
        gate = ("SELECT 1 FROM heads WHERE stream = %s FOR UPDATE" if existing
                else "INSERT INTO heads (stream, version) VALUES (%s, 0)")
        outcome = _race(schema, gate, (S,), {name: (S, turn_of(name, base))
                                             for name in ("a", "b")})
        assert sorted(type(e).__name__ for e in outcome.values()) == [
            "ConcurrencyConflict", "NoneType"]
        winner = next(name for name, exc in outcome.items() if exc is None)
        loser = "b" if winner == "a" else "a"
        conflict = outcome[loser]
        assert isinstance(conflict, ConcurrencyConflict)
        assert (conflict.stream, conflict.expected, conflict.actual) == (S, base, base + 1)
        with PostgresStore(pg.conninfo(), CODEC, schema=schema) as store:
            won = turn_of(winner, base)
            loaded = store.load(S)
            assert loaded.version == base + 1 and loaded.snapshot == won.snapshot
            assert [r.event for r in store.journal(S)][base:] == list(won.events)
            assert loaded.timers == won.timers_set
            assert store.pending_outbox() == won.outbox
            assert store.seen(S, f"m-{winner}") and not store.seen(S, f"m-{loser}")
            assert dict(store.stats()) == {"events": base + 1, "snapshots": 1, "inbox": 1,
                                           "outbox": 1, "timers": 1}


def test_two_streams_racing_on_one_outbox_entry_id_one_is_an_invalid_turn() -> None:
    """Two streams committing the same pending outbox entry id at the same moment:
    one commits, the other gets InvalidTurn (as one after the other) and changes nothing."""
    with pg.scratch_schema() as schema:
        PostgresStore(pg.conninfo(), CODEC, schema=schema).close()
        entry = OutboxEntry(entry_id="e1", stream="", recipient="x", message=Noted(n=1))
        # The gate holds an uncommitted outbox row with that id: both commits pass
        # their check (they cannot see it) and queue on its unique index.
        gate = ("INSERT INTO outbox (entry_id, stream, recipient, type, data) "
                "VALUES (%s, 'gate', 'x', 'Noted', '{}')")
        outcome = _race(schema, gate, ("e1",), {
            stream: (stream, Turn(expected_version=0, events=(Noted(n=1),), inbox_id="m1",
                                  outbox=(attrs.evolve(entry, stream=stream),)))
            for stream in ("order/a", "order/b")})
        assert sorted(type(e).__name__ for e in outcome.values()) == ["InvalidTurn", "NoneType"]
        loser = next(stream for stream, exc in outcome.items() if exc is not None)
        error = outcome[loser]
        assert isinstance(error, InvalidTurn) and error.stream == loser
        assert isinstance(error.__cause__, psycopg.errors.UniqueViolation)
        with PostgresStore(pg.conninfo(), CODEC, schema=schema) as store:
            assert store.load(loser).version == 0 and not store.seen(loser, "m1")
            assert [e.stream for e in store.pending_outbox()] == [
                "order/b" if loser == "order/a" else "order/a"]
