"""The kernel contract: the same test bodies under the SimPy and live kernels."""

from __future__ import annotations

import gc
import itertools
import random
import weakref
from typing import Any

import attrs
import pytest

from orderloom.runtime import (
    Actor,
    ActorNotFound,
    Address,
    AskTimeout,
    ChildFailed,
    Kernel,
    Message,
    NotAMessage,
    RestartPolicy,
    UnhandledMessage,
    handler,
)

from .conftest import Runner


@attrs.frozen(kw_only=True)
class Ping(Message):
    n: int


@attrs.frozen(kw_only=True)
class Pong(Message):
    n: int


@attrs.frozen(kw_only=True)
class Go(Message):
    pass


@attrs.frozen(kw_only=True)
class Boom(Message):
    pass


@attrs.frozen(kw_only=True)
class Note(Message):
    text: str


class Ponger(Actor):
    """Answers Ping with Pong to the sender, and Ping asks with n + 1."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @handler
    async def on_ping(self, msg: Ping) -> int:
        self.log.append(("ping", msg.n))
        sender = self.ctx.envelope.sender if self.ctx.envelope else None
        if sender is not None and self.ctx.envelope is not None and self.ctx.envelope.reply_to is None:
            await self.ctx.send(sender, Pong(n=msg.n))
        return msg.n + 1

    @handler
    async def on_boom(self, msg: Boom) -> None:
        raise ValueError("boom")


class Pinger(Actor):
    def __init__(self, peer: str, log: list[Any], rounds: int = 3) -> None:
        self.peer = Address(peer)
        self.log = log
        self.rounds = rounds

    @handler
    async def on_go(self, msg: Go) -> None:
        await self.ctx.send(self.peer, Ping(n=0))

    @handler
    async def on_pong(self, msg: Pong) -> None:
        self.log.append(("pong", msg.n))
        if msg.n + 1 < self.rounds:
            await self.ctx.send(self.peer, Ping(n=msg.n + 1))


def test_ping_pong(runner: Runner) -> None:
    """Messages sent with ctx.send arrive in order and a conversation runs to its end."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Ponger(log), "ponger")
        k.spawn(lambda: Pinger("ponger", log), "pinger")
        k.tell("pinger", Go())

    ran = runner.run(setup, until=5)
    assert log == [("ping", 0), ("pong", 0), ("ping", 1), ("pong", 1), ("ping", 2), ("pong", 2)]
    assert ran.dead_letters == []
    assert ran.failures == []


class Asker(Actor):
    def __init__(self, target: str, log: list[Any], timeout: float = 5.0,
                 request: Message | None = None) -> None:
        self.target = Address(target)
        self.log = log
        self.timeout = timeout
        self.request = request or Ping(n=41)

    @handler
    async def on_go(self, msg: Go) -> None:
        try:
            reply = await self.ctx.ask(self.target, self.request, timeout=self.timeout)
        except Exception as exc:  # the test records which error came back
            self.log.append(("error", type(exc).__name__, exc))
        else:
            self.log.append(("reply", reply))


def test_ask_returns_the_handlers_value(runner: Runner) -> None:
    """ask() resumes the asker with the value the asked handler returned."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Ponger(log), "ponger")
        k.spawn(lambda: Asker("ponger", log), "asker")
        k.tell("asker", Go())

    runner.run(setup, until=3)
    assert log == [("ping", 41), ("reply", 42)]


class Slow(Actor):
    @handler
    async def on_ping(self, msg: Ping) -> int:
        await self.ctx.sleep(20.0)  # far past the asker's timeout, even on a loaded machine
        return 0


def test_ask_timeout_raises_typed_error(runner: Runner) -> None:
    """An ask with no reply in time raises AskTimeout naming both actors."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(Slow, "slow")
        k.spawn(lambda: Asker("slow", log, timeout=2.0), "asker")
        k.tell("asker", Go())

    ran = runner.run(setup, until=25)
    assert [entry[:2] for entry in log] == [("error", "AskTimeout")]
    error = log[0][2]
    assert isinstance(error, AskTimeout) and isinstance(error, TimeoutError)
    assert (error.asker, error.target, error.message_type) == ("asker", "slow", "Ping")
    # The reply that came after the timeout is kept, not dropped.
    assert [d.reason for d in ran.dead_letters] == ["late_reply"]


def test_ask_carries_the_handlers_exception(runner: Runner) -> None:
    """An exception raised by an asked handler is raised in the asker; the
    asked actor keeps running without a restart."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Ponger(log), "ponger")
        k.spawn(lambda: Asker("ponger", log, request=Boom()), "asker")
        k.tell("asker", Go())
        k.tell("ponger", Ping(n=5), delay=1.0)

    ran = runner.run(setup, until=3)
    assert [entry[:2] for entry in log] == [("error", "ValueError"), ("ping", 5)]
    assert [f.action for f in ran.failures] == ["replied"]
    assert ran.failures[0].actor == "ponger" and "boom" in ran.failures[0].traceback


def test_ask_unknown_address_raises(runner: Runner) -> None:
    """Asking an address with no actor raises ActorNotFound and dead-letters the request."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Asker("nobody", log), "asker")
        k.tell("asker", Go())

    ran = runner.run(setup, until=2)
    assert [entry[:2] for entry in log] == [("error", "ActorNotFound")]
    assert isinstance(log[0][2], ActorNotFound) and log[0][2].address == "nobody"
    assert [d.reason for d in ran.dead_letters] == ["unknown_address"]


@attrs.frozen(kw_only=True)
class Tick(Message):
    label: str


class Timed(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def on_start(self) -> None:
        # Wide gaps: the test pins the order of due times, which a loaded
        # machine may blur by a few tens of milliseconds (a kernel second is 20).
        self.ctx.schedule(1.0, Tick(label="a"))
        doomed = self.ctx.schedule(5.0, Tick(label="cancelled"))
        self.ctx.schedule(10.0, Tick(label="b"))
        self.log.append(("cancel", self.ctx.cancel(doomed)))
        self.log.append(("cancel-again", self.ctx.cancel(doomed)))

    @handler
    async def on_tick(self, msg: Tick) -> None:
        self.log.append(("tick", msg.label))


def test_timers_fire_and_cancel(runner: Runner) -> None:
    """Scheduled messages arrive in time order; a cancelled timer never fires."""
    log: list[Any] = []
    def setup(k: Kernel) -> None:
        k.spawn(lambda: Timed(log), "timed")

    runner.run(setup, until=12)
    assert log == [("cancel", True), ("cancel-again", False), ("tick", "a"), ("tick", "b")]


class TurnBased(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @handler
    async def on_note(self, msg: Note) -> None:
        self.log.append(("begin", msg.text))
        await self.ctx.sleep(2.0)
        self.log.append(("end", msg.text))


def test_handlers_are_turn_based(runner: Runner) -> None:
    """While a handler sleeps, the actor's next message waits for it to finish."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: TurnBased(log), "turns")
        k.tell("turns", Note(text="first"))
        k.tell("turns", Note(text="second"))  # queued while the first one sleeps

    runner.run(setup, until=8)
    assert log == [("begin", "first"), ("end", "first"), ("begin", "second"), ("end", "second")]


class Fragile(Actor):
    """Crashes on Boom; counts its incarnations through the shared log."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log
        self.seen = 0

    async def on_start(self) -> None:
        self.log.append(("start",))

    async def on_failure(self, error: BaseException, message: Message | None) -> None:
        self.log.append(("failure", type(message).__name__))

    async def on_stop(self) -> None:
        self.log.append(("stop",))

    @handler
    async def on_boom(self, msg: Boom) -> None:
        raise RuntimeError("crash")

    @handler
    async def on_note(self, msg: Note) -> None:
        self.seen += 1
        self.log.append(("note", msg.text, self.seen))


def test_restart_with_backoff_then_stop_and_escalate(runner: Runner) -> None:
    """A crashing actor restarts fresh (state lost) up to its budget, then
    stops; its failed messages are dead letters and the stop is escalated."""
    log: list[Any] = []
    policy = RestartPolicy(max_restarts=2, window=100.0, backoff=1.0, factor=2.0)

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Fragile(log), "fragile", restart=policy)
        k.tell("fragile", Note(text="n1"))
        k.tell("fragile", Boom(), delay=1.0)
        k.tell("fragile", Note(text="n2"), delay=4.0)
        k.tell("fragile", Boom(), delay=5.0)
        k.tell("fragile", Boom(), delay=10.0)
        k.tell("fragile", Note(text="late"), delay=12.0)

    ran = runner.run(setup, until=14)
    assert log == [
        ("start",), ("note", "n1", 1),
        ("failure", "Boom"), ("start",),  # restart 1 after 1 s
        ("note", "n2", 1),  # a fresh instance: its counter restarted
        ("failure", "Boom"), ("start",),  # restart 2 after 2 s
        ("failure", "Boom"), ("stop",),  # budget spent: stopped
    ]
    assert [f.action for f in ran.failures] == ["restarted", "restarted", "stopped"]
    assert [d.reason for d in ran.dead_letters] == [
        "handler_failed", "handler_failed", "handler_failed", "unknown_address",
    ]
    assert [e.child for e in ran.escalations] == ["fragile"]


class Parent(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def on_start(self) -> None:
        self.ctx.spawn(lambda: Fragile(self.log), "parent/child",
                       restart=RestartPolicy(max_restarts=0))

    @handler
    async def on_child_failed(self, msg: ChildFailed) -> None:
        self.log.append(("child-failed", msg.child))


def test_child_failure_escalates_to_parent(runner: Runner) -> None:
    """A child that exhausts its restarts is reported to its parent with ChildFailed."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Parent(log), "parent")
        k.tell("parent/child", Boom(), delay=1.0)

    ran = runner.run(setup, until=3)
    assert ("child-failed", "parent/child") in log
    assert ran.escalations == []


def test_dead_letters_for_unknown_and_stopped(runner: Runner) -> None:
    """Messages to an unknown or stopped address are kept as dead letters."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Ponger(log), "ponger")
        k.tell("ghost", Ping(n=1))
        k.tell("ponger", Ping(n=2))
        k.tell("ponger", Ping(n=3), delay=2.0)
        stopper = Stopper("ponger")
        k.spawn(lambda: stopper, "stopper")
        k.tell("stopper", Go(), delay=1.0)

    ran = runner.run(setup, until=4)
    assert log == [("ping", 2)]
    reasons = sorted((d.reason, d.envelope.recipient) for d in ran.dead_letters)
    assert reasons == [("unknown_address", "ghost"), ("unknown_address", "ponger")]


class Stopper(Actor):
    def __init__(self, target: str) -> None:
        self.target = Address(target)

    @handler
    async def on_go(self, msg: Go) -> None:
        self.ctx.stop(self.target)


class Spawner(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @handler
    async def on_go(self, msg: Go) -> None:
        child = self.ctx.spawn(lambda: Ponger(self.log), "spawner/child")
        await self.ctx.send(child, Ping(n=7))

    @handler
    async def on_pong(self, msg: Pong) -> None:
        self.log.append(("pong", msg.n))

    @handler
    async def on_note(self, msg: Note) -> None:
        self.ctx.stop()

    async def on_stop(self) -> None:
        self.log.append(("spawner-stopped",))


def test_spawn_and_stop(runner: Runner) -> None:
    """An actor can spawn a child and message it; stopping it stops the child too."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Spawner(log), "spawner")
        k.tell("spawner", Go())
        k.tell("spawner", Note(text="stop"), delay=1.0)
        k.tell("spawner/child", Ping(n=8), delay=2.0)

    ran = runner.run(setup, until=3)
    assert log == [("ping", 7), ("pong", 7), ("spawner-stopped",)]
    assert [(d.reason, d.envelope.recipient) for d in ran.dead_letters] == [
        ("unknown_address", "spawner/child")
    ]


class Quitter(Actor):
    """Stops itself when told; the test keeps only a weak reference to it."""

    def __init__(self, refs: list[Any]) -> None:
        refs.append(weakref.ref(self))

    @handler
    async def on_note(self, msg: Note) -> None:
        self.ctx.stop()


def test_a_stopped_actor_is_freed_at_once(runner: Runner) -> None:
    """Once stopped, an actor has no context and nothing of the kernel keeps
    it: reference counting frees it without the cyclic collector (a
    simulation retires millions of order actors)."""
    refs: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Quitter(refs), "quitter")
        k.tell("quitter", Note(text="stop"), delay=1.0)

    enabled = gc.isenabled()
    gc.disable()
    try:
        runner.run(setup, until=2)
        (ref,) = refs
        assert ref() is None
    finally:
        if enabled:
            gc.enable()


class Bad(Actor):
    @handler
    async def on_go(self, msg: Go) -> None:
        await self.ctx.send(Address("anyone"), "not a message")  # type: ignore[arg-type]


def test_unhandled_message_and_non_message_are_typed_errors(runner: Runner) -> None:
    """An unknown message type and a non-message send are recorded with typed
    errors naming the actor and message; other actors keep running."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Ponger(log), "ponger")
        k.spawn(Bad, "bad", restart=RestartPolicy(max_restarts=5, backoff=0.0))
        k.tell("ponger", Go())
        k.tell("bad", Go())
        k.tell("ponger", Ping(n=1), delay=1.0)

    ran = runner.run(setup, until=2)
    assert log == [("ping", 1)]
    by_actor = {f.actor: f for f in ran.failures}
    assert by_actor["ponger"].action == "recorded"
    assert "UnhandledMessage" in by_actor["ponger"].error and "Go" in by_actor["ponger"].error
    assert "NotAMessage" in by_actor["bad"].error and "bad" in by_actor["bad"].error
    assert {d.reason for d in ran.dead_letters} == {"unhandled", "handler_failed"}


def test_tell_from_outside_rejects_non_messages(runner: Runner) -> None:
    """Sending a non-message from outside raises NotAMessage at once."""

    def setup(k: Kernel) -> None:
        with pytest.raises(NotAMessage) as caught:
            k.tell("x", {"not": "a message"})  # type: ignore[arg-type]
        assert caught.value.recipient == "x" and caught.value.value_type == "dict"

    runner.run(setup, until=0.1)


def test_unhandled_error_type() -> None:
    """UnhandledMessage is a LookupError carrying the actor and message ids."""
    error = UnhandledMessage("a", "Ping", "m1")
    assert isinstance(error, LookupError)
    assert (error.actor, error.message_type, error.message_id) == ("a", "Ping", "m1")


class DelayedSender(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @handler
    async def on_go(self, msg: Go) -> None:
        await self.ctx.send(self.ctx.address, Note(text="later"), delay=10.0)
        self.log.append(("sent",))

    @handler
    async def on_note(self, msg: Note) -> None:
        self.log.append(("note", msg.text))

    @handler
    async def on_ping(self, msg: Ping) -> None:
        self.log.append(("ping", msg.n))


def test_delayed_send_does_not_block_the_sender(runner: Runner) -> None:
    """send(delay=d) is fire and forget: the sender's next message is not held up."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: DelayedSender(log), "d")
        k.tell("d", Go())
        k.tell("d", Ping(n=1), delay=1.0)

    runner.run(setup, until=12)
    assert log == [("sent",), ("ping", 1), ("note", "later")]


class Ticker(Actor):
    """Re-arms a one-second tick labelled with its instance number; the first
    two instances crash on their first tick, just after re-arming it."""

    def __init__(self, log: list[Any], instance: int) -> None:
        self.log = log
        self.instance = instance

    async def on_start(self) -> None:
        self.ctx.schedule(1.0, Tick(label=str(self.instance)))

    @handler
    async def on_tick(self, msg: Tick) -> None:
        self.log.append((self.instance, msg.label))
        self.ctx.schedule(1.0, Tick(label=str(self.instance)))
        if self.instance < 3:
            raise RuntimeError("crash")


def test_restart_cancels_the_failed_instances_timers(runner: Runner) -> None:
    """A restarted instance never receives a timer its failed predecessor had
    armed and not yet fired; it runs only its own."""
    log: list[Any] = []
    instances = itertools.count(1)
    policy = RestartPolicy(max_restarts=5, backoff=0.5)

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Ticker(log, next(instances)), "ticker", restart=policy)

    runner.run(setup, until=8, done=lambda: len(log) >= 5)
    # Each instance ticks with its own label only: (1, "1") then crash,
    # (2, "2") then crash, then instance 3 ticks on.
    assert log[:5] == [(1, "1"), (2, "2"), (3, "3"), (3, "3"), (3, "3")]


class Doomed(Actor):
    """Arms two timers, lets the zero-delay one fire while it is still busy,
    then crashes; a later instance arms its own timer on Go."""

    def __init__(self, log: list[Any], instance: int) -> None:
        self.log = log
        self.instance = instance

    async def on_start(self) -> None:
        self.log.append(("start", self.instance))

    @handler
    async def on_boom(self, msg: Boom) -> None:
        self.ctx.schedule(0.0, Tick(label=f"fired-{self.instance}"))
        self.ctx.schedule(2.0, Tick(label=f"pending-{self.instance}"))
        # The zero-delay timer fires now, while this turn is not over: its
        # message waits in the mailbox behind the turn.
        await self.ctx.sleep(1.0)
        raise RuntimeError("crash")

    @handler
    async def on_go(self, msg: Go) -> None:
        self.ctx.schedule(0.0, Tick(label=f"own-{self.instance}"))

    @handler
    async def on_tick(self, msg: Tick) -> None:
        self.log.append(("tick", self.instance, msg.label))


def test_a_failed_instances_timers_never_reach_its_successor(runner: Runner) -> None:
    """Timers of a failed instance, fired while it was busy or not fired yet,
    are not delivered to the restarted instance (the fired one leaves a
    trace record); the successor's own timers are."""
    log: list[Any] = []
    instances = itertools.count(1)

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Doomed(log, next(instances)), "doomed",
                restart=RestartPolicy(backoff=0.5))
        k.tell("doomed", Boom())
        k.tell("doomed", Go(), delay=4.0)

    ran = runner.run(setup, until=6, trace=True)
    assert log == [("start", 1), ("start", 2), ("tick", 2, "own-2")]
    dropped = [line.split("\t") for line in ran.trace_lines()
               if line.endswith("dropped: timer_of_failed_instance")]
    assert [(kind, actor, message_type) for _, kind, actor, message_type, *_ in dropped] == [
        ("timer", "doomed", "Tick")]
    assert [d.reason for d in ran.dead_letters] == ["handler_failed"]


def test_stop_during_restart_backoff_abandons_the_restart(runner: Runner) -> None:
    """An actor stopped while waiting out its backoff is not restarted."""
    log: list[Any] = []
    policy = RestartPolicy(max_restarts=5, backoff=3.0)

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Fragile(log), "fragile", restart=policy)
        k.tell("fragile", Boom(), delay=1.0)
        k.spawn(lambda: Stopper("fragile"), "stopper")
        k.tell("stopper", Go(), delay=2.0)

    runner.run(setup, until=6)
    assert log == [("start",), ("failure", "Boom"), ("stop",)]


def test_stop_right_after_spawn_runs_on_start_then_on_stop(runner: Runner) -> None:
    """Stopping an actor that has not started yet still pairs on_start with on_stop."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Fragile(log), "fragile")
        k.stop("fragile")

    runner.run(setup, until=1)
    assert log == [("start",), ("stop",)]


def test_factory_failure_on_restart_stops_the_actor_only(runner: Runner) -> None:
    """A factory that raises when rebuilding an actor stops that actor, not the kernel."""
    log: list[Any] = []
    calls = {"n": 0}

    def factory() -> Actor:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("cannot load persisted state")
        return Fragile(log)

    def setup(k: Kernel) -> None:
        k.spawn(factory, "fragile", restart=RestartPolicy(backoff=0.5))
        k.spawn(lambda: Ponger(log), "ponger")
        k.tell("fragile", Boom(), delay=1.0)
        k.tell("ponger", Ping(n=1), delay=3.0)

    ran = runner.run(setup, until=4)
    assert ("ping", 1) in log
    assert [(f.message_type, f.action) for f in ran.failures] == [
        ("Boom", "restarted"), ("factory", "stopped"),
    ]
    assert [e.child for e in ran.escalations] == ["fragile"]


class Emitter(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log
        self.count = 0

    @handler
    async def on_note(self, msg: Note) -> None:
        self.count += 1
        self.ctx.emit(msg)
        self.log.append(self.count)


def test_a_failing_sink_is_not_the_actors_failure(runner: Runner) -> None:
    """An emit sink that raises is recorded; the actor keeps its state and carries on."""
    log: list[Any] = []

    def broken_sink(time: float, address: str, event: object) -> None:
        raise ValueError("metrics backend hiccup")

    def setup(k: Kernel) -> None:
        k.add_sink(broken_sink)
        k.spawn(lambda: Emitter(log), "e")
        k.tell("e", Note(text="a"))
        k.tell("e", Note(text="b"), delay=1.0)

    ran = runner.run(setup, until=2)
    assert log == [1, 2]
    assert [(f.message_type, f.action) for f in ran.failures] == [("sink", "recorded")] * 2
    assert ran.dead_letters == []


class Dice(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @handler
    async def on_go(self, msg: Go) -> None:
        self.log.append([self.ctx.rng.random() for _ in range(3)])


def test_rng_is_seeded_by_run_seed_and_address(runner: Runner) -> None:
    """ctx.rng, created when first used, draws the same numbers under every kernel for a seed and address."""
    log: list[Any] = []

    def setup(k: Kernel) -> None:
        k.spawn(lambda: Dice(log), "dice")
        k.tell("dice", Go())

    runner.run(setup, until=1, seed=11)
    reference = random.Random("11/dice")
    assert log == [[reference.random() for _ in range(3)]]
