"""SimPy kernel: exact event traces and times, determinism, faults, bad input."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

import attrs
import pytest
import simpy

from orderloom.runtime import Actor, Address, Message, RestartPolicy, handler
from orderloom.simulation import LinkFaults, SimKernel, check_determinism
from orderloom.simulation._demo import build_demo


@attrs.frozen(kw_only=True)
class Ping(Message):
    n: int


@attrs.frozen(kw_only=True)
class Pong(Message):
    n: int


@attrs.frozen(kw_only=True)
class Go(Message):
    pass


class Echo(Actor):
    @handler
    async def on_ping(self, msg: Ping) -> int:
        envelope = self.ctx.envelope
        assert envelope is not None and envelope.sender is not None
        await self.ctx.send(envelope.sender, Pong(n=msg.n), delay=0.5)
        return msg.n


class Bouncer(Actor):
    def __init__(self, rounds: int = 2) -> None:
        self.rounds = rounds

    @handler
    async def on_go(self, msg: Go) -> None:
        await self.ctx.send(Address("echo"), Ping(n=0))

    @handler
    async def on_pong(self, msg: Pong) -> None:
        if msg.n + 1 < self.rounds:
            await self.ctx.sleep(1.0)
            await self.ctx.send(Address("echo"), Ping(n=msg.n + 1))


def _lines(kernel: SimKernel) -> list[tuple[float, str, str, str, str, str]]:
    return [(e.time, e.kind, e.actor, e.message_type, e.message_id, e.detail)
            for e in kernel.trace or ()]


def test_trace_of_a_conversation_is_exact() -> None:
    """Deliveries, sleeps and their virtual times appear in the trace exactly."""
    kernel = SimKernel(seed=1, trace=True)
    kernel.spawn(Echo, "echo")
    kernel.spawn(Bouncer, "bouncer")
    kernel.tell("bouncer", Go(), delay=2.0)
    kernel.run()
    assert _lines(kernel) == [
        (0.0, "spawn", "echo", "", "", "Echo"),
        (0.0, "spawn", "bouncer", "", "", "Bouncer"),
        (2.0, "deliver", "bouncer", "Go", "m1", ""),
        (2.0, "deliver", "echo", "Ping", "m2", ""),
        (2.5, "deliver", "bouncer", "Pong", "m3", ""),
        (2.5, "timer", "bouncer", "Pong", "m3", "sleep 1.0"),
        (3.5, "deliver", "echo", "Ping", "m4", ""),
        (4.0, "deliver", "bouncer", "Pong", "m5", ""),
    ]


def test_envelopes_carry_causation_and_correlation() -> None:
    """A message sent from a handler names its cause and inherits the correlation id."""
    seen: list[Any] = []

    class Recorder(Actor):
        @handler
        async def on_pong(self, msg: Pong) -> None:
            seen.append(self.ctx.envelope)

    kernel = SimKernel()
    kernel.spawn(Echo, "echo")
    kernel.spawn(Recorder, "rec")

    class Starter(Actor):
        @handler
        async def on_go(self, msg: Go) -> None:
            await self.ctx.send(Address("echo"), Ping(n=3), correlation_id="order-9")

    kernel.spawn(Starter, "rec2")
    kernel.tell("rec2", Go())
    kernel.run()
    # Echo replied to rec2 (its sender), which has no Pong handler: a dead letter
    # that still shows the provenance.
    (dead,) = kernel.dead_letters
    envelope = dead.envelope
    assert dead.reason == "unhandled"
    assert (envelope.sender, envelope.recipient, envelope.correlation_id) == ("echo", "rec2", "order-9")
    assert envelope.causation_id == "m2" and envelope.sent_at == 0.0
    assert seen == []


def test_same_time_deliveries_follow_send_order() -> None:
    """Without shuffling, same-time deliveries keep their sending order."""
    order: list[int] = []

    class Sink(Actor):
        @handler
        async def on_ping(self, msg: Ping) -> None:
            order.append(msg.n)

    kernel = SimKernel()
    kernel.spawn(Sink, "sink")
    for n in range(20):
        kernel.tell("sink", Ping(n=n), delay=1.0)
    kernel.run()
    assert order == list(range(20))


def _shuffled_order(seed: int) -> list[int]:
    order: list[int] = []

    class Sink(Actor):
        @handler
        async def on_ping(self, msg: Ping) -> None:
            order.append(msg.n)

    kernel = SimKernel(seed=seed, shuffle=True)
    kernel.spawn(Sink, "sink")
    for n in range(20):
        kernel.tell("sink", Ping(n=n), delay=1.0)
    kernel.tell("sink", Ping(n=99), delay=2.0)
    kernel.run()
    return order


def test_shuffle_reorders_same_time_deliveries_by_seed() -> None:
    """With shuffling on, seeds give different same-time orders, each reproducible,
    and time order is kept."""
    orders = {seed: _shuffled_order(seed) for seed in (1, 2, 3)}
    assert all(o[-1] == 99 and sorted(o[:-1]) == list(range(20)) for o in orders.values())
    assert len({tuple(o) for o in orders.values()}) == 3
    assert _shuffled_order(2) == orders[2]


def _demo(kernel: SimKernel) -> None:
    build_demo(kernel, orders=150, outage=(100.0, 200.0))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_same_seed_gives_byte_identical_trace(seed: int, shuffle: bool) -> None:
    """Two runs of one seed produce identical traces (with and without shuffling)."""
    report = check_determinism(_demo, seed=seed, shuffle=shuffle)
    assert report.identical, report.describe()
    assert report.events > 500


def test_determinism_check_names_the_first_divergence() -> None:
    """A model that leaks outside state diverges, and the report says where."""
    leak = iter(range(1000))

    class Leaky(Actor):
        @handler
        async def on_ping(self, msg: Ping) -> None:
            await self.ctx.sleep(float(next(leak)))  # depends on the previous run

    def build(kernel: SimKernel) -> None:
        kernel.spawn(Leaky, "leaky")
        kernel.tell("leaky", Ping(n=0))
        kernel.tell("leaky", Ping(n=1))

    report = check_determinism(build, seed=1)
    assert not report.identical
    assert report.first_divergence is not None and "sleep" in report.first
    assert "diverge" in report.describe()


def test_different_seeds_give_different_runs() -> None:
    """The seed drives actor randomness: two seeds give two traces."""
    traces = []
    for seed in (1, 2):
        kernel = SimKernel(seed=seed, trace=True)
        _demo(kernel)
        kernel.run()
        traces.append(kernel.trace_lines())
    assert traces[0] != traces[1]


def test_rng_is_per_actor_and_seeded() -> None:
    """ctx.rng streams differ per actor, repeat per seed, and ids are deterministic."""
    draws: dict[str, list[float]] = {}

    class Drawer(Actor):
        async def on_start(self) -> None:
            draws[self.ctx.address] = [self.ctx.rng.random() for _ in range(3)]
            draws[self.ctx.address + ":id"] = [float(len(self.ctx.new_id()))]

    def run(seed: int) -> dict[str, list[float]]:
        draws.clear()
        kernel = SimKernel(seed=seed)
        kernel.spawn(Drawer, "a")
        kernel.spawn(Drawer, "b")
        kernel.run()
        return dict(draws)

    first = run(5)
    assert first["a"] != first["b"]
    assert run(5) == first
    assert run(6)["a"] != first["a"]


class Sink(Actor):
    def __init__(self, got: list[tuple[float, str]]) -> None:
        self.got = got

    @handler
    async def on_ping(self, msg: Ping) -> None:
        envelope = self.ctx.envelope
        assert envelope is not None
        self.got.append((self.ctx.now(), envelope.message_id))


def _faulty_run(faults: LinkFaults, seed: int = 3, count: int = 2000) -> tuple[list[Any], SimKernel]:
    got: list[tuple[float, str]] = []
    kernel = SimKernel(seed=seed)
    kernel.spawn(lambda: Sink(got), "sink")
    kernel.set_link_faults("-", "sink", faults)
    for n in range(count):
        kernel.tell("sink", Ping(n=n), delay=float(n))
    kernel.run()
    return got, kernel


def test_link_drop_is_recorded_not_silent() -> None:
    """Dropped messages show up as dead letters, at the configured rate."""
    got, kernel = _faulty_run(LinkFaults(drop=0.1))
    dropped = [d for d in kernel.dead_letters if d.reason == "dropped_by_fault"]
    assert len(got) + len(dropped) == 2000
    assert 150 < len(dropped) < 250


def test_link_duplicate_delivers_same_id_twice() -> None:
    """Duplicated messages arrive twice with the same message id."""
    got, _ = _faulty_run(LinkFaults(duplicate=0.05))
    counts = Counter(mid for _, mid in got)
    twice = [mid for mid, c in counts.items() if c == 2]
    assert len(got) == 2000 + len(twice)
    assert 60 < len(twice) < 140


def test_link_delay_and_reorder() -> None:
    """Delays push deliveries later and a reorder window lets messages overtake."""
    got, _ = _faulty_run(LinkFaults(delay=1.0, delay_min=10.0, delay_max=10.0), count=50)
    assert [t for t, _ in got] == [float(n) + 10.0 for n in range(50)]
    got, _ = _faulty_run(LinkFaults(reorder=5.0), count=200)
    ids = [int(mid[1:]) for _, mid in got]
    assert sorted(ids) == list(range(1, 201)) and ids != sorted(ids)


def test_link_faults_match_by_glob_every_rule_in_order() -> None:
    """Rules match sender/recipient globs; every matching rule applies, in the
    order set; unmatched links are untouched."""
    kernel = SimKernel(seed=1)
    kernel.set_link_faults("shop", "gateway*", LinkFaults(drop=1.0))
    kernel.set_link_faults("*", "x*", LinkFaults(duplicate=1.0))
    assert [r[0].drop for r in kernel._link_for("shop", "gateway-eu")] == [1.0]
    assert [r[0].duplicate for r in kernel._link_for("crm", "x")] == [1.0]
    assert kernel._link_for("crm", "y") == ()


def test_link_faults_validate_input() -> None:
    """Bad fault settings fail with the field name and the expected range."""
    with pytest.raises(ValueError, match="drop must be a probability"):
        LinkFaults(drop=1.5)
    with pytest.raises(ValueError, match="delay_min"):
        LinkFaults(delay_min=5.0, delay_max=1.0)


def test_outage_takes_actor_down_and_back() -> None:
    """During an outage messages are dead-lettered as actor_down; after it a
    fresh instance runs again."""
    got: list[tuple[float, str]] = []
    kernel = SimKernel(trace=True)
    kernel.spawn(lambda: Sink(got), "sink")
    kernel.schedule_outage("sink", start=5.0, duration=3.0)
    for n in range(12):
        kernel.tell("sink", Ping(n=n), delay=float(n))
    kernel.run()
    assert [t for t, _ in got] == [0.0, 1.0, 2.0, 3.0, 4.0, 8.0, 9.0, 10.0, 11.0]
    assert [d.envelope.sent_at + n for n, d in zip((5, 6, 7), kernel.dead_letters)] == [5, 6, 7]
    assert {d.reason for d in kernel.dead_letters} == {"actor_down"}
    kinds = [e.kind for e in kernel.trace or () if e.kind in ("down", "up")]
    assert kinds == ["down", "up"]


def test_foreign_awaitable_is_a_typed_error() -> None:
    """Awaiting asyncio inside a handler fails with ForeignAwaitable naming the
    actor and message; other actors keep running."""
    got: list[tuple[float, str]] = []

    class Rogue(Actor):
        @handler
        async def on_ping(self, msg: Ping) -> None:
            await asyncio.sleep(0)  # yields a bare None to its driver

    kernel = SimKernel()
    kernel.spawn(Rogue, "rogue", restart=RestartPolicy(max_restarts=0))
    kernel.spawn(lambda: Sink(got), "sink")
    kernel.tell("rogue", Ping(n=1))
    kernel.tell("sink", Ping(n=2), delay=1.0)
    kernel.run()
    (failure,) = kernel.failures
    assert "ForeignAwaitable" in failure.error and "rogue" in failure.error
    assert failure.message_type == "Ping" and failure.action == "stopped"
    assert len(got) == 1


def test_hooks_that_suspend_are_reported() -> None:
    """on_stop may not sleep: the attempt is recorded as a failure of the hook."""

    class Sleepy(Actor):
        async def on_stop(self) -> None:
            await self.ctx.sleep(1.0)

    kernel = SimKernel()
    kernel.spawn(Sleepy, "sleepy")
    kernel.run()
    kernel.stop("sleepy")
    (failure,) = kernel.failures
    assert failure.message_type == "on_stop" and "ForeignAwaitable" in failure.error


def test_restart_backoff_times_are_virtual_and_exact() -> None:
    """Restarts happen after backoff * factor**(n-1) virtual seconds."""

    class Crashy(Actor):
        @handler
        async def on_ping(self, msg: Ping) -> None:
            raise RuntimeError("x")

    kernel = SimKernel(trace=True)
    kernel.spawn(Crashy, "c", restart=RestartPolicy(max_restarts=3, window=1000.0, backoff=2.0, factor=3.0))
    for n in range(3):
        kernel.tell("c", Ping(n=n), delay=float(n * 100))
    kernel.run()
    restarts = [e.time for e in kernel.trace or () if e.kind == "restart"]
    assert restarts == [2.0, 100.0 + 6.0, 200.0 + 18.0]


def test_trace_off_records_nothing() -> None:
    """With tracing off (the default) the kernel keeps no trace."""
    kernel = SimKernel()
    _demo(kernel)
    kernel.run()
    assert kernel.trace is None and kernel.trace_lines() == []


def test_new_ids_stay_unique_when_an_address_is_reused() -> None:
    """ctx.new_id() never repeats in a run, even for a re-spawned address."""
    ids: list[str] = []

    class IdMaker(Actor):
        async def on_start(self) -> None:
            ids.append(self.ctx.new_id())

    kernel = SimKernel()
    kernel.spawn(IdMaker, "order/1")
    kernel.run()
    kernel.stop("order/1")
    kernel.spawn(IdMaker, "order/1")
    kernel.run()
    assert len(ids) == 2 and len(set(ids)) == 2


def test_outage_of_a_stopped_actor_is_skipped_not_fatal() -> None:
    """A scheduled outage whose actor has stopped is traced as skipped; the run goes on."""
    got: list[tuple[float, str]] = []
    kernel = SimKernel(trace=True)
    kernel.spawn(lambda: Sink(got), "gone")
    kernel.spawn(lambda: Sink(got), "sink")
    kernel.schedule_outage("gone", start=5.0, duration=2.0)
    kernel.run(until=1.0)
    kernel.stop("gone")
    kernel.tell("sink", Ping(n=1), delay=9.0)
    kernel.run()
    assert [t for t, _ in got] == [10.0]
    skipped = [e.detail for e in kernel.trace or () if e.kind in ("down", "up")]
    assert skipped == ["skipped: no such actor"] * 2


def test_an_outage_during_a_backoff_does_not_shorten_a_later_backoff() -> None:
    """A restart scheduled before an outage does not fire into a later backoff."""
    starts: list[float] = []

    class Crashy(Actor):
        async def on_start(self) -> None:
            starts.append(self.ctx.now())

        @handler
        async def on_ping(self, msg: Ping) -> None:
            raise RuntimeError("x")

    kernel = SimKernel()
    kernel.spawn(Crashy, "c", restart=RestartPolicy(max_restarts=5, window=1000.0,
                                                    backoff=10.0, factor=2.0))
    kernel.tell("c", Ping(n=1), delay=1.0)
    kernel.schedule_outage("c", start=2.0, duration=1.0)
    kernel.tell("c", Ping(n=2), delay=4.0)
    kernel.run()
    assert starts == [0.0, 3.0, 24.0]


def test_handler_resolution_cache_is_per_class() -> None:
    """A subclass defined after its parent resolved a message base uses its own handler."""

    @attrs.frozen(kw_only=True)
    class Base(Message):
        pass

    @attrs.frozen(kw_only=True)
    class Derived(Base):
        pass

    class A(Actor):
        @handler(Base)
        async def on_base(self, msg: Base) -> str:
            return "A"

    assert A.handler_for(Derived) is A.on_base

    class B(A):
        @handler(Base)
        async def on_base(self, msg: Base) -> str:
            return "B"

    assert B.handler_for(Derived) is B.on_base


def test_cancelled_timers_do_not_hold_memory_until_due() -> None:
    """Cancelled far-future timers are compacted out of the queue; live ones stay."""
    fired: list[float] = []

    class Planner(Actor):
        @handler
        async def on_ping(self, msg: Ping) -> None:
            if msg.n == 0:
                keep = self.ctx.schedule(86400.0 * 3, Ping(n=2))
                del keep
                for _ in range(30_000):
                    self.ctx.cancel(self.ctx.schedule(86400.0 * 3, Ping(n=1)))
            else:
                fired.append(self.ctx.now())

    kernel = SimKernel()
    kernel.spawn(Planner, "p")
    kernel.tell("p", Ping(n=0))
    kernel.run(until=1.0)
    assert len(kernel.env._queue) < 20_000
    kernel.run()
    assert fired == [86400.0 * 3]


def test_stopped_actors_timers_are_compacted_too() -> None:
    """Timers of stopped actors count as dead and leave the queue on compaction."""

    class Sleeper(Actor):
        async def on_start(self) -> None:
            self.ctx.schedule(1e6, Ping(n=0))

        @handler
        async def on_ping(self, msg: Ping) -> None:
            """Never reached: the actor stops first."""

    kernel = SimKernel()
    for n in range(25_000):
        kernel.spawn(Sleeper, f"s{n}")
    kernel.run(until=1.0)
    for n in range(25_000):
        kernel.stop(f"s{n}")
    assert len(kernel.env._queue) < 20_000


def _shared_env_log(drive: Callable[[SimKernel], None]) -> list[tuple[float, str]]:
    """Kernel actors and a plain SimPy process on one environment, driven by ``drive``."""
    kernel = SimKernel(seed=3)
    env = kernel.env
    log: list[tuple[float, str]] = []

    def ticker() -> Generator[simpy.Event, Any, None]:
        for _ in range(6):
            log.append((env.now, "tick"))
            yield env.timeout(1.0)

    class Logger(Actor):
        @handler
        async def on_pong(self, msg: Pong) -> None:
            log.append((self.ctx.now(), f"pong {msg.n}"))
            if msg.n < 8:
                await self.ctx.send(Address("echo"), Ping(n=msg.n + 1), delay=0.25)

    env.process(ticker())
    kernel.spawn(Echo, "echo")
    kernel.spawn(Logger, "logger")
    kernel.tell("logger", Pong(n=0), delay=1.0)  # then pings and pongs at quarter seconds
    drive(kernel)
    return log


def test_run_dispatches_like_simpys_own_loop() -> None:
    """kernel.run orders kernel events and foreign SimPy events exactly as env.run does,
    also when resumed several times and when ``until`` falls on an event's time."""
    expected = _shared_env_log(lambda k: k.env.run())
    assert _shared_env_log(lambda k: k.run()) == expected

    def resumed(k: SimKernel) -> None:
        for until in (1.0, 2.5, 3.0, 7.0):
            k.run(until)
        k.run()

    assert _shared_env_log(resumed) == expected
    kernel = SimKernel()
    kernel.run(2.0)
    assert kernel.now() == 2.0
    with pytest.raises(ValueError, match="greater than the current"):
        kernel.run(2.0)


def test_run_raises_a_failed_simpy_event_like_env_run() -> None:
    kernel = SimKernel()
    kernel.env.event().fail(KeyError("boom"))
    with pytest.raises(KeyError, match="boom"):
        kernel.run(5.0)


def test_crash_lands_between_turns_and_forgets_the_instance() -> None:
    """``crash`` refuses an actor in a turn; an idle one restarts from its
    factory with fresh state, its timers gone, and later messages reach the
    successor."""
    seen: list[tuple[int, str]] = []
    instances = iter(range(1, 10))

    class Slow(Actor):
        def __init__(self) -> None:
            self.n = next(instances)

        @handler
        async def on_ping(self, msg: Ping) -> None:
            seen.append((self.n, "ping"))
            self.ctx.schedule(5.0, Go())
            await self.ctx.sleep(1.0)

        @handler
        async def on_go(self, msg: Go) -> None:
            seen.append((self.n, "go"))

    kernel = SimKernel(seed=1)
    kernel.spawn(Slow, "slow")
    kernel.tell("slow", Ping(n=1))
    kernel.tell("slow", Ping(n=2), delay=0.5)
    kernel.tell("slow", Ping(n=3), delay=3.0)
    kernel.run(0.7)
    assert kernel.crash("slow") is False  # asleep in its first turn
    kernel.run(2.5)  # both turns are over
    assert kernel.crash("slow") is True
    kernel.run(20)
    assert seen == [(1, "ping"), (1, "ping"), (2, "ping"), (2, "go")]
