"""The store contract: every behaviour, run against MemoryStore, SqliteStore and
PostgresStore (the last marked ``integration``; it skips when no PostgreSQL answers)."""

from __future__ import annotations

import enum
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderloom.actors import (
    AuthorizePayment,
    OrderState,
    OrderUpdated,
    PaymentAuthorized,
    PlaceOrder,
    apply,
    handle,
)
from orderloom.runtime import (
    JOURNAL_LINE_KEYS,
    STATS_TABLES,
    AttrsCodec,
    CodecError,
    ConcurrencyConflict,
    CorruptRecord,
    DuplicateDelivery,
    DurableTimer,
    InfrastructureError,
    InvalidTurn,
    Loaded,
    MemoryStore,
    Message,
    OrderloomError,
    OutboxEntry,
    RefusedPayload,
    SchemaMismatch,
    Snapshot,
    Store,
    StoreClosed,
    StoreFailure,
    Turn,
    UnknownTypeName,
    UnregisteredType,
    delivery_key,
    export_journal,
)
from orderloom.runtime.postgres import PostgresStore
from orderloom.runtime.sqlite import SqliteStore
from tests import pg
from tests.strategies import command, event, lines

# -- test messages --------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen(kw_only=True)
class Line:
    sku: str
    quantity: int


@attrs.frozen(kw_only=True)
class Happened(Message):
    """A test event: every field shape the codec must carry."""

    n: int
    color: Color = Color.RED
    lines: tuple[Line, ...] = ()
    counts: dict[str, int] = attrs.field(factory=dict, hash=False)
    note: str | None = None
    tags: frozenset[str] = frozenset()


@attrs.frozen(kw_only=True)
class Ping(Message):
    """A test outbox message."""

    text: str


@attrs.frozen(kw_only=True)
class Wake(Message):
    """A test timer message."""

    reason: str


@attrs.frozen(kw_only=True)
class Tally:
    """A test snapshot state."""

    count: int
    colors: tuple[Color, ...] = ()
    last: Line | None = None


@attrs.frozen(kw_only=True)
class Shape:
    """A test base class, stored through fields declared as the base."""

    name: str


@attrs.frozen(kw_only=True)
class Polygon(Shape):
    sides: int


@attrs.frozen(kw_only=True)
class Square(Polygon):
    side: float


@attrs.frozen(kw_only=True)
class Drawing:
    """A test value whose fields are declared as base classes."""

    shapes: tuple[Shape, ...]
    main: Polygon | None = None


TYPES = (Happened, Ping, Wake, Tally, Line)
S = "order/1"


def ev(n: int, **fields: Any) -> Happened:
    return Happened(n=n, **fields)


def out(entry_id: str, stream: str = S, text: str = "hi") -> OutboxEntry:
    return OutboxEntry(entry_id=entry_id, stream=stream, recipient="warehouse/W1",
                       message=Ping(text=text), causation_id="m0", correlation_id="O1")


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second, plain connection to a store's file (to tamper with it), closed after."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def timer(timer_id: str, due_at: float, stream: str = S) -> DurableTimer:
    return DurableTimer(timer_id=timer_id, stream=stream, due_at=due_at,
                        message=Wake(reason=timer_id))


# -- the parametrised fixture ---------------------------------------------------------


class Harness:
    """A store under test, and a way to reopen it (a no-op for MemoryStore).

    SQLite reopens the same file, PostgreSQL reconnects to the same schema
    (``pg_schema``, a fresh one per test).
    """

    def __init__(self, kind: str, path: Path, pg_schema: str = "", types: Any = TYPES) -> None:
        self.kind = kind
        self.path = path
        self.pg_schema = pg_schema
        self.types = types
        self.store: Store = self._open()

    def _open(self) -> Store:
        if self.kind == "memory":
            return MemoryStore()
        if self.kind == "postgres":
            return PostgresStore(pg.conninfo(), AttrsCodec(self.types), schema=self.pg_schema)
        return SqliteStore(self.path, AttrsCodec(self.types))

    def reopen(self) -> Store:
        if self.kind != "memory":
            self.store.close()
            self.store = self._open()
        return self.store

    def another(self) -> Store:
        """A second, independent store on the same database (durable kinds)."""
        assert self.kind != "memory"
        return self._open()

    @property
    def driver_error(self) -> type[Exception]:
        """The database driver's root error, which a StoreFailure chains."""
        return psycopg.Error if self.kind == "postgres" else sqlite3.Error

    def tamper(self, statement: str) -> None:
        """Run ``statement`` on the store's tables through a separate connection."""
        if self.kind == "postgres":
            pg.execute(self.pg_schema, statement)
        else:
            with raw(self.path) as db:
                db.execute(statement)

    def fail_inserts_into(self, table: str) -> None:
        """Make the database itself raise 'injected failure' on an insert into ``table``."""
        if self.kind == "postgres":
            self.tamper("CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$")
            self.tamper(f"CREATE TRIGGER boom BEFORE INSERT ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION boom()")
        else:
            self.tamper(f"CREATE TRIGGER boom BEFORE INSERT ON {table} "
                        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")

    def stop_failing(self, table: str) -> None:
        """Undo :meth:`fail_inserts_into`."""
        self.tamper(f"DROP TRIGGER boom ON {table}" if self.kind == "postgres"
                    else "DROP TRIGGER boom")

    def everything(self) -> tuple[Any, ...]:
        """Every observable of the store, to compare before and after."""
        store = self.store
        names = tuple(store.streams())
        return (names, {name: store.load(name) for name in (*names, S, "order/2")},
                store.pending_outbox(1000), store.due_timers(float("inf")), dict(store.stats()),
                {name: store.journal(name) for name in names})


POSTGRES = pytest.param("postgres", marks=pytest.mark.integration)


@contextmanager
def harness_of(kind: str, tmp_path: Path, types: Any = TYPES) -> Iterator[Harness]:
    """A Harness of ``kind``, closed (and its PostgreSQL schema dropped) after."""
    if kind != "postgres":
        h = Harness(kind, tmp_path / "store.sqlite", types=types)
        try:
            yield h
        finally:
            h.store.close()
        return
    pg.conninfo()  # skips here, before a schema is named, if no server answers
    with pg.scratch_schema() as schema:
        h = Harness(kind, tmp_path / "store.sqlite", schema, types)
        try:
            yield h
        finally:
            h.store.close()


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Each contract test runs once per store."""
    with harness_of(request.param, tmp_path) as h:
        yield h


@pytest.fixture(params=["sqlite", POSTGRES])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Tests of what only a database-backed store does run once per durable store."""
    with harness_of(request.param, tmp_path) as h:
        yield h


# -- append and load ------------------------------------------------------------------


def test_a_store_says_whether_it_outlives_the_process(harness: Harness) -> None:
    """SQLite and PostgreSQL are durable (persistent actors write an outbox to them);
    memory is not."""
    assert harness.store.durable is (harness.kind != "memory")


def test_unknown_stream_loads_as_version_zero(harness: Harness) -> None:
    """An unknown stream loads as version 0 with no snapshot, events or timers."""
    assert harness.store.load("nobody") == Loaded(version=0, snapshot=None, events=(), timers=())
    assert harness.store.journal("nobody") == ()
    assert not harness.store.seen("nobody", "m1")


def test_events_get_consecutive_versions(harness: Harness) -> None:
    """Committed events get versions expected_version+1 onwards and load back in order."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1), ev(2)), recorded_at=10.0))
    store.commit(S, Turn(expected_version=2, events=(ev(3, color=Color.BLUE),)))
    loaded = store.load(S)
    assert loaded.version == 3
    assert loaded.snapshot is None
    assert [(r.stream, r.version, r.event, r.recorded_at) for r in loaded.events] == [
        (S, 1, ev(1), 10.0), (S, 2, ev(2), 10.0), (S, 3, ev(3, color=Color.BLUE), None)]


def test_a_turn_without_events_keeps_the_version(harness: Harness) -> None:
    """A turn that records only an inbox id leaves the version where it was."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),)))
    store.commit(S, Turn(expected_version=1, inbox_id="m2"))
    assert store.load(S).version == 1
    assert store.seen(S, "m2")


def test_snapshot_loads_with_only_the_events_after_it(harness: Harness) -> None:
    """load() returns the latest snapshot and only the events after its version."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1), ev(2))))
    store.commit(S, Turn(expected_version=2, events=(ev(3),),
                         snapshot=Snapshot(version=3, state=Tally(count=3))))
    store.commit(S, Turn(expected_version=3, events=(ev(4), ev(5))))
    store.commit(S, Turn(expected_version=5, events=(ev(6),), snapshot=Snapshot(
        version=6, state=Tally(count=6, colors=(Color.BLUE,), last=Line(sku="A", quantity=1)))))
    store.commit(S, Turn(expected_version=6, events=(ev(7),)))
    loaded = harness.reopen().load(S)
    assert loaded.version == 7
    assert loaded.snapshot == Snapshot(version=6, state=Tally(
        count=6, colors=(Color.BLUE,), last=Line(sku="A", quantity=1)))
    assert [r.version for r in loaded.events] == [7]
    assert [r.event for r in harness.store.journal(S)] == [ev(n) for n in range(1, 8)]


def test_snapshot_at_the_head_loads_with_no_events(harness: Harness) -> None:
    """A snapshot taken at the stream's head loads with an empty tail."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),),
                         snapshot=Snapshot(version=1, state=Tally(count=1))))
    loaded = store.load(S)
    assert (loaded.version, loaded.snapshot, loaded.events) == (
        1, Snapshot(version=1, state=Tally(count=1)), ())


# -- optimistic concurrency, inbox, atomicity -----------------------------------------


def test_stale_expected_version_is_a_conflict(harness: Harness) -> None:
    """Committing on a stale version raises ConcurrencyConflict and changes nothing."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1), ev(2))))
    before = harness.everything()
    with pytest.raises(ConcurrencyConflict) as caught:
        store.commit(S, Turn(expected_version=1, events=(ev(9),), inbox_id="m9",
                             outbox=(out("e9"),), timers_set=(timer("t9", 9.0),)))
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == (S, 1, 2)
    assert isinstance(caught.value, InfrastructureError)
    assert harness.everything() == before
    with pytest.raises(ConcurrencyConflict):
        store.commit("order/new", Turn(expected_version=3, events=(ev(1),)))
    assert harness.everything() == before


def test_duplicate_inbox_id_is_rejected_with_nothing_changed(harness: Harness) -> None:
    """A second commit with a recorded inbox id raises DuplicateDelivery and changes nothing."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),), inbox_id="m1"))
    before = harness.everything()
    with pytest.raises(DuplicateDelivery) as caught:
        store.commit(S, Turn(expected_version=1, events=(ev(2),), inbox_id="m1",
                             outbox=(out("e2"),), timers_set=(timer("t2", 2.0),),
                             snapshot=Snapshot(version=2, state=Tally(count=2))))
    assert (caught.value.stream, caught.value.message_id) == (S, "m1")
    # A redelivery is recognised even when it also carries a stale version.
    with pytest.raises(DuplicateDelivery):
        store.commit(S, Turn(expected_version=0, events=(ev(2),), inbox_id="m1"))
    assert harness.everything() == before
    assert store.seen(S, "m1") and not store.seen(S, "m2")
    store.commit("order/2", Turn(expected_version=0, events=(ev(1),), inbox_id="m1"))
    assert store.seen("order/2", "m1")


@pytest.mark.parametrize("turn", [
    Turn(expected_version=1, events=(ev(2),), outbox=(out("e1"), out("e1"))),
    Turn(expected_version=1, events=(ev(2),), outbox=(out("e2"), out("e3", stream="order/2"))),
    Turn(expected_version=1, timers_set=(timer("t1", 1.0), timer("t1", 2.0))),
    Turn(expected_version=1, timers_set=(timer("t1", 1.0, stream="order/2"),)),
    Turn(expected_version=1, events=(ev(2),), snapshot=Snapshot(version=1, state=Tally(count=1))),
    Turn(expected_version=1, events=(ev(2),), outbox=(out("e2"), out("e0"))),
], ids=["repeated-entry", "foreign-entry", "repeated-timer", "foreign-timer",
        "snapshot-version", "entry-already-pending"])
def test_an_invalid_turn_changes_nothing(harness: Harness, turn: Turn) -> None:
    """A turn breaking an invariant raises InvalidTurn (a ValueError) and changes nothing."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),), outbox=(out("e0"),)))
    before = harness.everything()
    with pytest.raises(InvalidTurn) as caught:
        store.commit(S, turn)
    assert isinstance(caught.value, ValueError) and caught.value.stream == S
    assert harness.everything() == before


def test_an_unencodable_object_changes_nothing(harness: Harness) -> None:
    """A durable store refuses an unregistered type before writing; memory keeps anything."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),)))
    before = harness.everything()
    turn = Turn(expected_version=1, events=(ev(2), object()), inbox_id="m2")
    if harness.kind == "memory":
        store.commit(S, turn)
        assert store.load(S).version == 3
        return
    with pytest.raises(UnregisteredType):
        store.commit(S, turn)
    assert harness.everything() == before


def test_failure_in_the_middle_of_a_commit_leaves_nothing(durable: Harness) -> None:
    """A database error after events, inbox and outbox rows were written rolls all back."""
    store = durable.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),)))
    # The last write of a commit but the snapshot is the timers table: fail it
    # from inside the database.
    durable.fail_inserts_into("timers")
    turn = Turn(expected_version=1, events=(ev(2), ev(3)), inbox_id="m2",
                outbox=(out("e2"),), timers_set=(timer("t2", 2.0),),
                snapshot=Snapshot(version=3, state=Tally(count=3)))
    with pytest.raises(StoreFailure) as caught:
        store.commit(S, turn)
    assert isinstance(caught.value.__cause__, durable.driver_error)
    assert "injected failure" in str(caught.value)
    assert store.load(S) == Loaded(version=1, snapshot=None,
                                   events=store.journal(S), timers=())
    assert not store.seen(S, "m2")
    assert store.pending_outbox() == ()
    assert dict(store.stats()) == {"events": 1, "snapshots": 0, "inbox": 0, "outbox": 0,
                                   "timers": 0}
    durable.stop_failing("timers")
    store.commit(S, turn)  # the same turn goes through once the fault is gone
    assert store.load(S).version == 3


# -- outbox ---------------------------------------------------------------------------


def test_outbox_is_read_in_commit_order_and_marking_is_idempotent(harness: Harness) -> None:
    """pending_outbox lists entries in commit order across streams; marking twice is harmless."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),), outbox=(out("b"), out("a"))))
    store.commit("order/2", Turn(expected_version=0, outbox=(out("c", stream="order/2"),)))
    store.commit(S, Turn(expected_version=1, outbox=(out("d", text="again"),)))
    assert [e.entry_id for e in store.pending_outbox()] == ["b", "a", "c", "d"]
    assert store.pending_outbox(limit=2) == (out("b"), out("a"))
    assert [e.entry_id for e in store.pending_outbox(stream=S)] == ["b", "a", "d"]
    assert store.pending_outbox(1, stream="order/2") == (out("c", stream="order/2"),)
    store.mark_published(["a", "c", "nope"])
    store.mark_published(["a"])
    store.mark_published([])
    assert harness.reopen().pending_outbox() == (out("b"), out("d", text="again"))
    store = harness.store
    store.mark_published(e.entry_id for e in store.pending_outbox())
    assert store.pending_outbox() == ()
    # A published id may be used again (ids are unique among pending entries).
    store.commit(S, Turn(expected_version=1, outbox=(out("a"),)))
    assert store.pending_outbox() == (out("a"),)


def test_a_receivers_commit_delivers_the_outbox_entry_it_handled(harness: Harness) -> None:
    """A commit whose inbox id is a pending outbox entry's id (a local send,
    its entry id as message id) marks that entry published in the same
    commit; a failed commit leaves it pending."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, outbox=(out("e1"), out("e2"))))
    with pytest.raises(ConcurrencyConflict):
        store.commit("order/2", Turn(expected_version=5, inbox_id="e1", events=(ev(1),)))
    assert [e.entry_id for e in store.pending_outbox()] == ["e1", "e2"]
    store.commit("order/2", Turn(expected_version=0, inbox_id="e1", events=(ev(1),)))
    assert [e.entry_id for e in harness.reopen().pending_outbox()] == ["e2"]
    store = harness.store
    assert store.seen("order/2", "e1")
    store.commit("order/3", Turn(expected_version=0, inbox_id="not-an-entry"))
    assert [e.entry_id for e in store.pending_outbox()] == ["e2"]


# -- durable timers -------------------------------------------------------------------


def test_due_timers_come_in_due_time_then_stream_then_id_order(harness: Harness) -> None:
    """due_timers(now) lists timers with due_at <= now by (due_at, stream, timer_id)."""
    store = harness.store
    store.commit("order/2", Turn(expected_version=0, timers_set=(
        timer("z", 5.0, stream="order/2"), timer("a", 7.0, stream="order/2"))))
    store.commit(S, Turn(expected_version=0, timers_set=(
        timer("y", 5.0), timer("x", 5.0), timer("late", 99.0))))
    assert [(t.stream, t.timer_id) for t in store.due_timers(7.0)] == [
        (S, "x"), (S, "y"), ("order/2", "z"), ("order/2", "a")]
    assert [t.timer_id for t in store.due_timers(7.0, limit=2)] == ["x", "y"]
    assert store.due_timers(4.9) == ()
    assert store.load(S).timers == (timer("x", 5.0), timer("y", 5.0), timer("late", 99.0))


def test_timers_are_cancelled_replaced_and_rearmed(harness: Harness) -> None:
    """Cancel removes a timer, setting a pending id replaces it, cancel+set re-arms it."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, timers_set=(timer("a", 1.0), timer("b", 2.0),
                                                         timer("c", 3.0))))
    store.commit(S, Turn(expected_version=0, inbox_id="fire-a", timers_cancelled=("a", "nope")))
    store.commit(S, Turn(expected_version=0, timers_set=(timer("b", 20.0),)))
    store.commit(S, Turn(expected_version=0, timers_cancelled=("c",),
                         timers_set=(timer("c", 30.0),)))
    assert harness.reopen().load(S).timers == (timer("b", 20.0), timer("c", 30.0))
    assert harness.store.due_timers(25.0) == (timer("b", 20.0),)
    harness.store.commit(S, Turn(expected_version=0, timers_cancelled=("b", "c")))
    assert harness.store.load(S).timers == ()
    assert harness.store.due_timers(float("inf")) == ()


# -- restore, export, stats, lifecycle ------------------------------------------------


def test_everything_is_restored_after_reopening(harness: Harness) -> None:
    """Closing and reopening (SQLite: the same file) shows exactly the committed state."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1, lines=(Line(sku="A", quantity=2),),
                                                        counts={"x": 1}, note="n"),),
                         inbox_id="m1", outbox=(out("e1"),), timers_set=(timer("t1", 5.0),),
                         recorded_at=1.5))
    store.commit(S, Turn(expected_version=1, events=(ev(2, tags=frozenset({"p", "q"})),),
                         inbox_id="m2", snapshot=Snapshot(version=2, state=Tally(count=2))))
    store.commit("order/2", Turn(expected_version=0, events=(ev(1),),
                                 timers_set=(timer("t1", 1.0, stream="order/2"),)))
    before = harness.everything()
    harness.reopen()
    assert harness.everything() == before
    assert harness.store.seen(S, "m1") and harness.store.seen(S, "m2")


def test_journal_exports_every_stream(harness: Harness) -> None:
    """streams() names the streams with events, sorted; journal(after) gives the rest."""
    store = harness.store
    store.commit("order/b", Turn(expected_version=0, events=(ev(1), ev(2), ev(3)),
                                 snapshot=Snapshot(version=3, state=Tally(count=3))))
    store.commit("order/a", Turn(expected_version=0, events=(ev(1),)))
    store.commit("order/c", Turn(expected_version=0, inbox_id="m1"))  # no events
    assert list(store.streams()) == ["order/a", "order/b"]
    journal = store.journal("order/b")
    assert [(r.version, r.event) for r in journal] == [(1, ev(1)), (2, ev(2)), (3, ev(3))]
    assert store.journal("order/b", after=2) == journal[2:]
    assert store.journal("order/b", after=3) == ()


def test_export_journal_writes_every_event_once(harness: Harness) -> None:
    """export_journal writes one line per event (the store's event count), in stream
    then version order, each decoding to the stored event with its time."""
    store = harness.store
    store.commit("order/b", Turn(expected_version=0, events=(ev(1), ev(2, note="x")),
                                 recorded_at=5.0, snapshot=Snapshot(version=2,
                                                                    state=Tally(count=2))))
    store.commit("order/a", Turn(expected_version=0, events=(ev(1),)))
    store.commit("order/b", Turn(expected_version=2, events=(ev(3),), recorded_at=7.5))
    codec = AttrsCodec(TYPES)
    out = io.StringIO()
    count = export_journal(store, codec, out, type_version=lambda cls: 3)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(lines) == store.stats()["events"] == 4
    assert all(tuple(line) == JOURNAL_LINE_KEYS for line in lines)
    assert [(d["address"], d["version"], d["at"], d["type_version"]) for d in lines] == [
        ("order/a", 1, None, 3), ("order/b", 1, 5.0, 3), ("order/b", 2, 5.0, 3),
        ("order/b", 3, 7.5, 3)]
    assert [codec.decode(d["type"], json.dumps(d["event"])) for d in lines] == [
        ev(1), ev(1), ev(2, note="x"), ev(3)]


def test_stats_count_rows_per_table(harness: Harness) -> None:
    """stats() counts events, snapshots, inbox ids, pending outbox entries and timers."""
    store = harness.store
    assert dict(store.stats()) == dict.fromkeys(STATS_TABLES, 0)
    store.commit(S, Turn(expected_version=0, events=(ev(1), ev(2)), inbox_id="m1",
                         outbox=(out("e1"), out("e2")), timers_set=(timer("t1", 1.0),)))
    store.commit(S, Turn(expected_version=2, events=(ev(3),), inbox_id="m2",
                         snapshot=Snapshot(version=3, state=Tally(count=3))))
    store.mark_published(["e1"])
    assert dict(store.stats()) == {"events": 3, "snapshots": 1, "inbox": 2, "outbox": 1,
                                   "timers": 1}


def test_a_closed_store_refuses_every_call(harness: Harness) -> None:
    """After close() (idempotent; also on leaving a with block) every call raises StoreClosed."""
    with harness.store as store:
        store.commit(S, Turn(expected_version=0, events=(ev(1),)))
    store.close()
    for call in (lambda: store.load(S), lambda: store.seen(S, "m"), lambda: store.stats(),
                 lambda: store.commit(S, Turn(expected_version=1)),
                 lambda: store.pending_outbox(), lambda: store.journal(S),
                 lambda: store.due_timers(1.0), lambda: store.mark_published(["x"]),
                 lambda: list(store.streams()), lambda: store.dead_letters(),
                 lambda: store.record_dead_letter(refused(1))):
        with pytest.raises(StoreClosed):
            call()


# -- dead letters: refused input, outside any stream ---------------------------------


def refused(n: int, reason: str = "not_json") -> RefusedPayload:
    return RefusedPayload(reason=reason, source="shopify", origin="orderloom/v1/in/shopify",
                          path=f"line_items[{n}].price", detail=f"{reason}: detail {n}",
                          received_at=1_700_000_000.0 + n, type_name=None if n % 2 else "order.placed",
                          payload={"id": n, "email": "<removed>", "nested": [1, None, True]})


def test_dead_letters_are_listed_newest_first_within_the_limit(harness: Harness) -> None:
    """record_dead_letter keeps every field; dead_letters(limit) gives the newest first."""
    store = harness.store
    assert store.dead_letters() == ()
    for n in range(5):
        store.record_dead_letter(refused(n, "bad_signature" if n == 3 else "not_json"))
    assert store.dead_letters(3) == (refused(4), refused(3, "bad_signature"), refused(2))
    assert store.dead_letters() == tuple(
        refused(n, "bad_signature" if n == 3 else "not_json") for n in (4, 3, 2, 1, 0))
    assert store.dead_letters(0) == ()


def test_dead_letters_change_no_stream_and_survive_reopening(harness: Harness) -> None:
    """A dead letter is outside every journal: the streams and stats are untouched, and
    a durable store still has it after reopening."""
    store = harness.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),), inbox_id="m1"))
    before = harness.everything()
    store.record_dead_letter(refused(1))
    assert harness.everything() == before
    assert harness.reopen().dead_letters() == (refused(1),)


def test_dead_letters_may_be_recorded_from_worker_threads_while_turns_commit(
        harness: Harness) -> None:
    """The HTTP ingest route records refusals in a worker thread while the kernel's
    thread commits turns: every dead letter and every turn lands, none lost or mixed."""
    store = harness.store
    errors: list[BaseException] = []

    def record(k: int) -> None:
        try:
            for n in range(10):
                store.record_dead_letter(refused(100 * k + n))
        except BaseException as exc:  # a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for v in range(10):
        store.commit(S, Turn(expected_version=v, events=(ev(v),), inbox_id=f"m{v}"))
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert store.load(S).version == 10
    recorded = store.dead_letters(100)
    assert sorted(recorded, key=lambda d: d.received_at) == [
        refused(100 * k + n) for k in range(3) for n in range(10)]
    for k in range(3):  # each thread's letters in the order it wrote them
        mine = [d for d in recorded if int(d.received_at - 1_700_000_000.0) // 100 == k]
        assert mine == [refused(100 * k + n) for n in reversed(range(10))]


def test_a_file_written_before_the_dead_letter_table_gets_it_on_open(durable: Harness) -> None:
    """A schema-1 database without the dead_letters table (written before it existed)
    opens, keeps its journal and records dead letters."""
    durable.store.commit(S, Turn(expected_version=0, events=(ev(1),)))
    durable.store.close()
    durable.tamper("DROP TABLE dead_letters")
    store = durable.reopen()
    assert [r.version for r in store.journal(S)] == [1]
    store.record_dead_letter(refused(7))
    assert store.dead_letters() == (refused(7),)


def delivered(n: int, raw: bytes) -> RefusedPayload:
    """refused(n), made from the raw bytes ``raw`` (so it carries their delivery key)."""
    return attrs.evolve(refused(n), delivery=delivery_key(refused(n).origin, raw))


def test_a_delivery_recorded_again_adds_no_row(harness: Harness) -> None:
    """The same delivery again (a broker's redelivery of a payload refused before
    it was acknowledged, a sender's retry of the same bytes), even later and after
    reopening, keeps its one row, the first; other bytes are a row of their own,
    and a record without a delivery key (a body too large to read) is kept every time."""
    store = harness.store
    first = delivered(1, b'{"id": 1')
    store.record_dead_letter(first)
    store.record_dead_letter(attrs.evolve(first, received_at=first.received_at + 60))
    assert store.dead_letters() == (refused(1),)
    store.record_dead_letter(delivered(1, b'{"id": 1 '))  # the same record, other bytes
    store.record_dead_letter(refused(2))
    store.record_dead_letter(refused(2))
    assert store.dead_letters() == (refused(2), refused(2), refused(1), refused(1))
    reopened = harness.reopen()
    reopened.record_dead_letter(attrs.evolve(first, received_at=1_800_000_000.0))
    assert len(reopened.dead_letters()) == 4


def test_a_dead_letter_table_written_before_delivery_keys_gets_them_on_open(
        durable: Harness) -> None:
    """A dead_letters table without the delivery column (written before it
    existed) keeps its rows on open; from then on a delivery is recorded once."""
    durable.store.record_dead_letter(refused(2))
    durable.store.close()
    durable.tamper("DROP TABLE dead_letters")
    seq, real = (("seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "DOUBLE PRECISION")
                 if durable.kind == "postgres" else ("seq INTEGER PRIMARY KEY", "REAL"))
    durable.tamper(f"CREATE TABLE dead_letters ({seq}, reason TEXT NOT NULL, "
                   "source TEXT NOT NULL, origin TEXT NOT NULL, path TEXT NOT NULL, "
                   f"detail TEXT NOT NULL, type TEXT, received_at {real} NOT NULL, "
                   "payload TEXT NOT NULL)")
    durable.tamper("INSERT INTO dead_letters (reason, source, origin, path, detail, type, "
                   "received_at, payload) VALUES ('not_json', 'shopify', 'old', '', "
                   "'not_json: old', NULL, 1.0, '{}')")
    store = durable.reopen()
    old = RefusedPayload(reason="not_json", source="shopify", origin="old", detail="not_json: old",
                         received_at=1.0, payload={})
    assert store.dead_letters() == (old,)
    for _ in range(2):
        store.record_dead_letter(delivered(3, b"not json"))
    assert store.dead_letters() == (refused(3), old)
    store.close()
    assert durable.reopen().dead_letters() == (refused(3), old)  # opens again as it is


def test_a_dead_letter_must_be_a_refused_payload_of_plain_json() -> None:
    """RefusedPayload refuses a payload that is not plain JSON data and an unknown reason."""
    with pytest.raises(ValueError, match="plain JSON"):
        attrs.evolve(refused(1), payload={"x": float("nan")})
    with pytest.raises(ValueError):
        attrs.evolve(refused(1), reason="no_such_reason")
    with pytest.raises(TypeError, match="RefusedPayload"):
        MemoryStore().record_dead_letter({"reason": "not_json"})  # type: ignore[arg-type]


# -- SQLite: schema, corrupt rows, the real domain ------------------------------------


def test_a_store_refuses_another_schema_version(durable: Harness) -> None:
    """Reopening a database written with another schema version raises SchemaMismatch."""
    durable.store.close()
    durable.tamper("UPDATE schema_version SET version = 99")
    with pytest.raises(SchemaMismatch) as caught:
        durable.reopen()
    assert (caught.value.found, caught.value.expected) == (99, 1)


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    """Opening a file that is not an SQLite database raises StoreFailure."""
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreFailure) as failed:
        SqliteStore(junk, AttrsCodec(TYPES))
    assert isinstance(failed.value.__cause__, sqlite3.DatabaseError)


def test_two_connections_to_one_database_see_each_others_commits(durable: Harness) -> None:
    """Two stores on one database: the second writer on a stale version gets a conflict."""
    with durable.another() as a, durable.another() as b:
        assert a.load(S).version == b.load(S).version == 0
        a.commit(S, Turn(expected_version=0, events=(ev(1),), inbox_id="m1"))
        with pytest.raises(ConcurrencyConflict):
            b.commit(S, Turn(expected_version=0, events=(ev(2),)))
        assert b.seen(S, "m1") and b.load(S).version == 1


def test_one_sqlite_store_can_be_shared_by_threads(tmp_path: Path) -> None:
    """Commits from several threads through one SqliteStore all land, none interleaved."""
    with SqliteStore(tmp_path / "store.sqlite", AttrsCodec(TYPES)) as store:

        def work(k: int) -> None:
            for v in range(20):
                store.commit(f"order/{k}", Turn(expected_version=v, events=(ev(v),),
                                                inbox_id=f"m{v}"))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert [store.load(f"order/{k}").version for k in range(4)] == [20] * 4
        assert store.stats()["inbox"] == 80


def test_sqlite_in_memory_works_for_tests() -> None:
    """SqliteStore(":memory:") is a private, working database."""
    with SqliteStore(":memory:", AttrsCodec(TYPES)) as store:
        store.commit(S, Turn(expected_version=0, events=(ev(1),)))
        assert store.load(S).version == 1


@pytest.mark.parametrize(("sql", "version", "type_name", "cause"), [
    ("UPDATE events SET data = '{not json' WHERE version = 2", 2, "Happened", CodecError),
    ("UPDATE events SET type = 'Vanished' WHERE version = 2", 2, "Vanished", UnknownTypeName),
    ("UPDATE events SET data = '{\"n\": \"two\"}' WHERE version = 2", 2, "Happened",
     CodecError),
    ("DELETE FROM events WHERE version = 2", 2, None, None),
    ("UPDATE snapshots SET type = 'Vanished'", 1, "Vanished", UnknownTypeName),
])
def test_a_corrupt_row_names_its_stream_and_version(
        durable: Harness, sql: str, version: int, type_name: str | None,
        cause: type[Exception] | None) -> None:
    """A row that cannot be read back raises CorruptRecord naming stream, version and type."""
    store = durable.store
    store.commit(S, Turn(expected_version=0, events=(ev(1),),
                         snapshot=Snapshot(version=1, state=Tally(count=1))))
    store.commit(S, Turn(expected_version=1, events=(ev(2), ev(3))))
    durable.tamper(sql)
    with pytest.raises(CorruptRecord) as caught:
        store.load(S)
    error = caught.value
    assert (error.stream, error.version, error.type_name) == (S, version, type_name)
    assert S in str(error) and isinstance(error, OrderloomError)
    if cause is not None:
        assert isinstance(error.__cause__, cause)


@pytest.mark.parametrize("kind", ["sqlite", POSTGRES])
def test_a_durable_store_keeps_the_real_order_state_and_events(
        kind: str, tmp_path: Path) -> None:
    """An order's events and folded OrderState survive a durable store round trip unchanged."""
    import orderloom.actors as domain

    types = [getattr(domain, n) for n in domain.__all__
             if isinstance(getattr(domain, n), type) and attrs.has(getattr(domain, n))]
    state = OrderState(order_id="O1")
    state, events = handle(state, command(PlaceOrder, 1, customer_id="C1", currency="EUR",
                                          lines=lines(("L1", 2, 500), ("L2", 1, 1000))))
    state, more = handle(state, command(AuthorizePayment, 2, amount=2000))
    authorized = event(PaymentAuthorized, "gateway", 1, request_id="c2", authorization_id="A1",
                       amount=2000)
    state, _ = apply(state, authorized)
    journal = (*events, *more, authorized)
    # OrderUpdated declares ``events: tuple[Event, ...]``: subclasses must survive.
    update = OrderUpdated(order_id="O1", state=state, events=journal)
    with harness_of(kind, tmp_path, types) as h:
        h.store.commit("order/O1", Turn(
            expected_version=0, events=journal,
            outbox=(OutboxEntry(entry_id="e1", stream="order/O1", recipient="automation",
                                message=update),),
            snapshot=Snapshot(version=len(journal), state=state)))
        store = h.reopen()
        loaded = store.load("order/O1")
        assert loaded.snapshot is not None and loaded.snapshot.state == state
        assert tuple(r.event for r in store.journal("order/O1")) == journal
        assert store.pending_outbox()[0].message == update


# -- the codec ------------------------------------------------------------------------


def test_attrs_codec_round_trips_every_field_shape() -> None:
    """Enums, tuples, nested attrs, dicts, frozensets and None survive encode/decode."""
    codec = AttrsCodec(TYPES)
    value = ev(1, color=Color.BLUE, lines=(Line(sku="A", quantity=2),), counts={"a": 1},
               note=None, tags=frozenset({"x"}))
    name, text = codec.encode(value)
    assert name == "Happened"
    assert codec.decode(name, text) == value
    state = Tally(count=1, colors=(Color.RED, Color.BLUE), last=None)
    assert codec.decode(*codec.encode(state)) == state


def test_attrs_codec_keeps_the_subclass_behind_a_base_class_field() -> None:
    """A field declared as a registered base holding subclasses reads back the subclasses."""
    codec = AttrsCodec([Shape, Polygon, Square, Drawing])
    drawing = Drawing(shapes=(Shape(name="dot"), Polygon(name="tri", sides=3),
                              Square(name="sq", sides=4, side=2.0)),
                      main=Square(name="big", sides=4, side=9.0))
    assert codec.decode(*codec.encode(drawing)) == drawing
    for shape in drawing.shapes:
        assert codec.decode(*codec.encode(shape)) == shape


def test_attrs_codec_names_what_it_cannot_handle() -> None:
    """Unknown names, unregistered types, clashes and non-attrs classes are typed errors."""
    codec = AttrsCodec(TYPES)
    with pytest.raises(UnknownTypeName) as unknown:
        codec.decode("Vanished", "{}")
    assert unknown.value.type_name == "Vanished" and "Vanished" in str(unknown.value)
    assert isinstance(unknown.value, LookupError)
    with pytest.raises(UnregisteredType) as unregistered:
        codec.encode(Color.RED)
    assert unregistered.value.type_name == "Color" and isinstance(unregistered.value, TypeError)
    with pytest.raises(CodecError):
        AttrsCodec([int])

    # Another class with the same qualified name as this module's Happened.
    other = attrs.make_class("Happened", {"n": attrs.field()}, frozen=True)
    with pytest.raises(CodecError, match="Happened"):
        AttrsCodec([*TYPES, other])
    renamed = AttrsCodec([*TYPES, other], names={other: "OtherHappened"})
    assert renamed.decode(*renamed.encode(other(n=1))) == other(n=1)
    assert renamed.decode(*renamed.encode(ev(1))) == ev(1)


# -- both stores agree ----------------------------------------------------------------

STREAMS = ("order/1", "order/2", "order/3")
turns = st.lists(st.tuples(
    st.sampled_from(STREAMS),
    st.integers(0, 3),                          # events
    st.sampled_from([None, "m1", "m2", "m3"]),  # inbox id
    st.integers(0, 2),                          # outbox entries
    st.lists(st.sampled_from("abc"), max_size=2, unique=True),   # timers set
    st.lists(st.sampled_from("abcd"), max_size=2, unique=True),  # timers cancelled
    st.booleans(),                              # snapshot
    st.booleans(),                              # stale version
    st.integers(0, 3),                          # publish this many
), max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns)
def test_memory_and_sqlite_agree_on_any_sequence_of_commits(
        steps: list[tuple[Any, ...]]) -> None:
    """A random sequence of commits, conflicts and publishes leaves both stores identical."""
    memory = MemoryStore()
    sqlite = SqliteStore(":memory:", AttrsCodec(TYPES))
    n = 0
    with memory, sqlite:
        for stream, events, inbox, outs, sets, cancels, snap, stale, publish in steps:
            n += 1
            expected = memory.load(stream).version + stale
            new = expected + events
            turn = Turn(
                expected_version=expected,
                events=tuple(ev(n * 10 + i) for i in range(events)), inbox_id=inbox,
                outbox=tuple(out(f"e{n}.{i}", stream=stream) for i in range(outs)),
                timers_set=tuple(timer(t, float(n % 4), stream=stream) for t in sets),
                timers_cancelled=tuple(cancels),
                snapshot=Snapshot(version=new, state=Tally(count=new)) if snap else None,
                recorded_at=float(n))
            outcomes = []
            for store in (memory, sqlite):
                try:
                    store.commit(stream, turn)
                    outcomes.append("ok")
                except (ConcurrencyConflict, DuplicateDelivery) as exc:
                    outcomes.append(type(exc).__name__)
                pending = store.pending_outbox(publish)
                store.mark_published(e.entry_id for e in pending)
            assert outcomes[0] == outcomes[1]
        for stream in STREAMS:
            assert memory.load(stream) == sqlite.load(stream)
            assert memory.journal(stream) == sqlite.journal(stream)
        assert memory.pending_outbox(1000) == sqlite.pending_outbox(1000)
        assert memory.due_timers(2.0) == sqlite.due_timers(2.0)
        assert list(memory.streams()) == list(sqlite.streams())
        assert memory.stats() == sqlite.stats()
