"""Persistent actors on every kernel: a turn is a store transaction, its
effects follow the commit, a restart restores from the journal.

Each test runs on the SimPy kernel and the live kernel (asyncio and trio),
with a :class:`MemoryStore`; the restore-after-reopen test uses SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from orderloom.runtime import (
    Address,
    AttrsCodec,
    Kernel,
    MemoryStore,
    Message,
    PersistentActor,
    RestartPolicy,
    Store,
    TimerDue,
    TimerId,
    handler,
)
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import SimKernel

from .conftest import Runner


@attrs.frozen(kw_only=True)
class Deposit(Message):
    """Add ``amount`` to the balance."""

    amount: int


@attrs.frozen(kw_only=True)
class Deposited(Message):
    """Event: the balance grew by ``amount``."""

    amount: int


@attrs.frozen(kw_only=True)
class Remind(Message):
    """Set a durable reminder due in ``after`` seconds."""

    after: float
    label: str


@attrs.frozen(kw_only=True)
class Reminded(Message):
    """The reminder's message, and the event recording that it fired."""

    label: str


@attrs.frozen(kw_only=True)
class Forget(Message):
    """Cancel the last reminder set by this instance."""


@attrs.frozen(kw_only=True)
class Explode(Message):
    """Record a deposit, send a note, set a timer, then raise: none of it may survive."""


@attrs.frozen(kw_only=True)
class Note(Message):
    """What the ledger tells the observer."""

    text: str


@attrs.frozen(kw_only=True)
class Ledger:
    """The ledger's state: a balance and the reminders that fired."""

    balance: int = 0
    reminded: tuple[str, ...] = ()


class LedgerActor(PersistentActor[Ledger]):
    """A small persistent actor: deposits, durable reminders, a failure on demand."""

    snapshot_every = 3

    def __init__(self, store: Store, log: list[Any], starts: list[int]) -> None:
        super().__init__(store)
        self.log = log
        self.starts = starts
        self.last: TimerId | None = None

    def initial_state(self) -> Ledger:
        return Ledger()

    def evolve(self, state: Ledger, event: Any) -> Ledger:
        match event:
            case Deposited():
                return attrs.evolve(state, balance=state.balance + event.amount)
            case Reminded():
                return attrs.evolve(state, reminded=(*state.reminded, event.label))
        raise TypeError(event)

    async def on_start(self) -> None:
        await super().on_start()
        self.starts.append(self.state.balance)

    @handler
    async def on_deposit(self, msg: Deposit) -> None:
        self.record(Deposited(amount=msg.amount))
        await self.ctx.send(Address("observer"), Note(text=f"balance {self.state.balance}"))

    @handler
    async def on_remind(self, msg: Remind) -> None:
        self.last = self.ctx.schedule(msg.after, Reminded(label=msg.label))

    @handler
    async def on_forget(self, msg: Forget) -> None:
        assert self.last is not None
        self.log.append(("cancelled", self.ctx.cancel(self.last)))

    @handler
    async def on_reminded(self, msg: Reminded) -> None:
        self.record(msg)
        self.log.append(("reminded", msg.label, self.ctx.now()))

    @handler
    async def on_explode(self, msg: Explode) -> None:
        self.record(Deposited(amount=1000))
        await self.ctx.send(Address("observer"), Note(text="never"))
        self.ctx.schedule(0.0, Reminded(label="never"))
        self.ctx.emit(Note(text="never emitted"))
        raise RuntimeError("boom")


def _observer(notes: list[str]) -> Any:
    from orderloom.runtime import Actor

    class _Observer(Actor):
        @handler
        async def on_note(self, msg: Note) -> None:
            notes.append(msg.text)

    return _Observer()


def _spawn(k: Kernel, store: Store, log: list[Any], starts: list[int]) -> None:
    k.spawn(lambda: LedgerActor(store, log, starts), "ledger",
            restart=RestartPolicy(backoff=0.5))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each kernel test runs on both stores (SQLite on a file, as live would)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    codec = AttrsCodec([Deposited, Reminded, Ledger, Note, TimerDue])
    with SqliteStore(tmp_path / "journal.db", codec) as sqlite:
        yield sqlite


def test_a_failed_turn_commits_and_releases_nothing(runner: Runner, store: Store) -> None:
    """The events, sends, timers and telemetry of a turn that raised are gone;
    the restarted instance restores the balance from the journal."""
    log, starts, notes = [], [], []  # type: ignore[var-annotated]
    emitted: list[object] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: _observer(notes), "observer")
        _spawn(k, store, log, starts)
        k.add_sink(lambda _t, _a, e: emitted.append(e))
        k.tell("ledger", Deposit(amount=5))
        k.tell("ledger", Deposit(amount=7), delay=1.0)
        k.tell("ledger", Explode(), delay=2.0)
        k.tell("ledger", Deposit(amount=1), delay=4.0)

    ran = runner.run(setup, until=6)
    assert starts == [0, 12]  # the successor restored 5 + 7, not the 1000
    assert notes == ["balance 5", "balance 12", "balance 13"]
    assert log == []  # the timer of the failed turn never fired
    assert not any(isinstance(e, Note) for e in emitted)
    assert [r.event for r in store.journal("ledger")] == [
        Deposited(amount=5), Deposited(amount=7), Deposited(amount=1)]
    assert [d.reason for d in ran.dead_letters] == ["handler_failed"]
    assert store.pending_outbox() == ()


def test_durable_timers_survive_a_restart_and_fire_once(runner: Runner, store: Store) -> None:
    """A reminder set before a failure fires once, at its due time, in the
    successor (restored from the store); a cancelled one never fires."""
    log, starts = [], []  # type: ignore[var-annotated]

    def setup(k: Kernel) -> None:
        _spawn(k, store, log, starts)
        k.tell("ledger", Remind(after=4.0, label="a"))
        # Forget right behind Remind b in the mailbox (the live runner tells
        # both at once): a later Forget would race b's timer against a loaded
        # machine's clock.
        k.tell("ledger", Remind(after=3.0, label="b"), delay=0.5)
        k.tell("ledger", Forget(), delay=0.5)
        k.tell("ledger", Explode(), delay=2.0)

    runner.run(setup, until=6)
    assert starts == [0, 0]
    assert log[0] == ("cancelled", True)
    [(kind, label, at)] = log[1:]
    assert (kind, label) == ("reminded", "a") and at >= 4.0
    assert [r.event for r in store.journal("ledger")] == [Reminded(label="a")]
    assert store.due_timers(1e9) == ()


def test_a_redelivered_message_is_applied_once() -> None:
    """A message delivered twice (same message id, a duplicating link) is
    committed once: the inbox recognises the copy."""
    store, log, starts, notes = MemoryStore(), [], [], []  # type: ignore[var-annotated]
    from orderloom.simulation._faults import LinkFaults

    kernel = SimKernel(seed=3)
    kernel.spawn(lambda: _observer(notes), "observer")
    _spawn(kernel, store, log, starts)
    kernel.set_link_faults("-", "ledger", LinkFaults(duplicate=1.0))
    kernel.tell("ledger", Deposit(amount=5))
    kernel.tell("ledger", Deposit(amount=7), delay=1.0)
    kernel.run(5)
    assert notes == ["balance 5", "balance 12"]
    assert store.load("ledger").version == 2
    assert kernel.failures == [] and starts == [0]  # skipped, not refused by the store


def test_snapshots_and_restore_from_a_reopened_sqlite_file(tmp_path: Path) -> None:
    """A new kernel on the same SQLite file restores the state from the
    snapshot and the events after it, and fires the pending reminder at its
    due time."""
    codec = AttrsCodec([Deposited, Reminded, Ledger, Note, TimerDue])
    path = tmp_path / "ledger.db"
    log: list[Any] = []
    starts: list[int] = []
    with SqliteStore(path, codec) as store:
        kernel = SimKernel(seed=1)
        kernel.spawn(lambda: _observer([]), "observer")
        _spawn(kernel, store, log, starts)
        for i in range(5):
            kernel.tell("ledger", Deposit(amount=i + 1), delay=float(i))
        kernel.tell("ledger", Remind(after=100.0, label="later"), delay=5.0)
        kernel.run(10)
        loaded = store.load("ledger")
        assert loaded.snapshot is not None and loaded.snapshot.version == 3
        assert [r.version for r in loaded.events] == [4, 5]
    with SqliteStore(path, codec) as store:
        kernel = SimKernel(seed=1)
        kernel.spawn(lambda: _observer([]), "observer")
        _spawn(kernel, store, log, starts)
        kernel.run(1)  # the reminder keeps its absolute due time, 105
        assert starts == [0, 15] and log == []
        kernel.run(200)
    assert log == [("reminded", "later", 105.0)]


@pytest.mark.parametrize("operation", ["sleep", "ask"])
def test_awaiting_the_kernel_inside_a_turn_is_refused(operation: str) -> None:
    """A persistent actor's handler may not sleep or ask mid-turn: it fails
    with TurnSuspended (its effects would wait for a commit meanwhile)."""
    from orderloom.runtime import TurnSuspended

    class Sleepy(LedgerActor):
        @handler
        async def on_deposit(self, msg: Deposit) -> None:
            if operation == "sleep":
                await self.ctx.sleep(1.0)
            else:
                await self.ctx.ask(Address("observer"), Note(text="?"), timeout=1.0)

    kernel = SimKernel(seed=1)
    kernel.spawn(lambda: _observer([]), "observer")
    kernel.spawn(lambda: Sleepy(MemoryStore(), [], []), "ledger")
    kernel.tell("ledger", Deposit(amount=1))
    kernel.run(5)
    assert [type(f).__name__ for f in kernel.failures] == ["Failure"]
    assert "TurnSuspended" in kernel.failures[0].error
    assert issubclass(TurnSuspended, RuntimeError)


def test_the_commit_changes_no_event_order_under_simpy() -> None:
    """Effects released after the commit reach the kernel in the order and at
    the time the handler made them: the trace equals a plain actor's."""
    from orderloom.runtime import Actor

    class Plain(Actor):
        @handler
        async def on_deposit(self, msg: Deposit) -> None:
            for i in range(3):
                await self.ctx.send(Address("observer"), Note(text=f"{msg.amount}.{i}"),
                                    delay=float(i % 2))

    class Journaled(LedgerActor):
        @handler
        async def on_deposit(self, msg: Deposit) -> None:
            self.record(Deposited(amount=msg.amount))
            for i in range(3):
                await self.ctx.send(Address("observer"), Note(text=f"{msg.amount}.{i}"),
                                    delay=float(i % 2))

    def trace(factory: Any) -> list[str]:
        kernel = SimKernel(seed=5, trace=True)
        kernel.spawn(lambda: _observer([]), "observer")
        kernel.spawn(factory, "ledger")
        for n in range(4):
            kernel.tell("ledger", Deposit(amount=n), delay=0.5 * (n // 2))
        kernel.run(10)
        return [line for line in kernel.trace_lines() if "\tspawn\t" not in line]

    assert trace(lambda: Journaled(MemoryStore(), [], [])) == trace(Plain)


def test_a_storm_of_crashes_between_turns_changes_nothing() -> None:
    """200 crashes at seeded points between turns, each restoring from the
    store: the final state, the journal, the notes sent and the reminders
    fired equal those of the uninterrupted run."""
    import random

    def run(crashes: int) -> tuple[Any, ...]:
        store, log, starts, notes = MemoryStore(), [], [], []  # type: ignore[var-annotated]
        kernel = SimKernel(seed=11)
        kernel.spawn(lambda: _observer(notes), "observer")
        _spawn(kernel, store, log, starts)
        draw = random.Random(4)
        for i in range(300):
            kernel.tell("ledger", Deposit(amount=i), delay=draw.uniform(0, 1000))
        for i in range(40):
            kernel.tell("ledger", Remind(after=draw.uniform(0, 300), label=f"r{i}"),
                        delay=draw.uniform(0, 1000))
        landed = 0
        for at in sorted(draw.uniform(0, 1400) for _ in range(crashes)):
            kernel.run(at)
            landed += kernel.crash("ledger")
        kernel.run(2000)
        assert landed == crashes == len(starts) - 1
        journal = [r.event for r in store.journal("ledger")]
        return kernel.actor("ledger").state, journal, notes, log  # type: ignore[attr-defined]

    assert run(200) == run(0)


def test_an_unpublished_outbox_entry_is_sent_on_restore(tmp_path: Path) -> None:
    """A turn committed by a process that died before publishing: the next
    instance sends its outbox entry on start, once, and marks it published."""
    from orderloom.runtime import OutboxEntry, Turn

    codec = AttrsCodec([Deposited, Reminded, Ledger, Note, TimerDue])
    notes: list[str] = []
    with SqliteStore(tmp_path / "ledger.db", codec) as store:
        store.commit("ledger", Turn(expected_version=0, events=(Deposited(amount=5),),
                                    outbox=(OutboxEntry(entry_id="ledger#0.0", stream="ledger",
                                                        recipient="observer",
                                                        message=Note(text="balance 5")),)))
        kernel = SimKernel(seed=1)
        kernel.spawn(lambda: _observer(notes), "observer")
        _spawn(kernel, store, [], [])
        kernel.run(5)
        assert notes == ["balance 5"] and store.pending_outbox() == ()
        assert kernel.actor("ledger").state == Ledger(balance=5)  # type: ignore[attr-defined]


def test_an_asked_turn_that_raises_leaves_the_committed_state(runner: Runner) -> None:
    """An asked handler's exception goes back to the asker and the actor keeps
    running (no restart): its state is rolled back to what was committed."""
    from orderloom.runtime import Actor

    store, log, starts, answers, notes = MemoryStore(), [], [], [], []  # type: ignore[var-annotated]

    class Asker(Actor):
        @handler
        async def on_note(self, msg: Note) -> None:
            try:
                # A hang guard only (1000 kernel s = 20 s on the live kernels).
                await self.ctx.ask(Address("ledger"), Explode(), timeout=1000.0)
            except RuntimeError as exc:
                answers.append(str(exc))

    def setup(k: Kernel) -> None:
        k.spawn(lambda: _observer(notes), "observer")
        _spawn(k, store, log, starts)
        k.spawn(Asker, "asker")
        k.tell("ledger", Deposit(amount=5))
        k.tell("asker", Note(text="go"), delay=1.0)
        k.tell("ledger", Deposit(amount=2), delay=2.0)

    runner.run(setup, until=4)
    assert answers == ["boom"] and starts == [0]  # no restart
    assert notes == ["balance 5", "balance 7"]  # the failed turn's 1000 is not in the state
    assert [r.event for r in store.journal("ledger")] == [Deposited(amount=5),
                                                          Deposited(amount=2)]
    assert log == []  # the failed turn's timer was never armed


def test_an_asked_turn_whose_commit_fails_leaves_the_committed_state(runner: Runner) -> None:
    """The store refuses an asked turn's commit: the failure goes back to the asker,
    the actor keeps running, and its state is what the journal holds (the
    refused deposit is not in it), so later turns build on the journal."""
    from orderloom.runtime import Actor, StoreError

    store, log, starts, answers, notes = MemoryStore(), [], [], [], []  # type: ignore[var-annotated]
    real_commit = store.commit

    def refuse_seven(stream: str, turn: Any) -> Any:
        if Deposited(amount=7) in turn.events:
            raise StoreError("injected: the disk is full")
        return real_commit(stream, turn)

    store.commit = refuse_seven  # type: ignore[method-assign]

    class Asker(Actor):
        @handler
        async def on_note(self, msg: Note) -> None:
            try:
                await self.ctx.ask(Address("ledger"), Deposit(amount=7), timeout=1000.0)
            except StoreError as exc:
                answers.append(str(exc))

    def setup(k: Kernel) -> None:
        k.spawn(lambda: _observer(notes), "observer")
        _spawn(k, store, log, starts)
        k.spawn(Asker, "asker")
        k.tell("ledger", Deposit(amount=5))
        k.tell("asker", Note(text="go"), delay=1.0)
        k.tell("ledger", Deposit(amount=2), delay=2.0)

    runner.run(setup, until=4)
    assert answers == ["injected: the disk is full"] and starts == [0]
    assert notes == ["balance 5", "balance 7"]  # 5 + 2: the refused 7 is not in the state
    assert [r.event for r in store.journal("ledger")] == [Deposited(amount=5),
                                                          Deposited(amount=2)]
