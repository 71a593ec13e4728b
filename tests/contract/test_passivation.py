"""Passivation of open orders on the live kernel: an idle order's actor stops,
and its next message or due durable timer restores it from its journal.

The coordinator runs on a live kernel with a SQLite store in a tmp dir and a
loopback broker; the simulated world (gateway, warehouse, ...) runs on a
second kernel, connected later when a test needs it to answer. Every wait
is a condition polled under a hang guard: nothing asserts a duration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from orderloom.actors import (
    AddressServiceConfig,
    CarrierConfig,
    Dist,
    DownstreamSyncPolicy,
    GatewayConfig,
    Lifecycle,
    OrderActor,
    OrderFinished,
    OrderSettings,
    OrderStuck,
    StageEntered,
    TeamConfig,
    WarehouseConfig,
    journal_codec,
    load_builtin_policy,
    wire_codec,
)
from orderloom.actors.coordinator import COORDINATOR_ADDRESSES, spawn_coordinator
from orderloom.actors.coordinator._protocol import StuckCheck
from orderloom.cli._serve import order_activator, restore_orders, wake_due, watch_timers
from orderloom.runtime import Actor, DurableTimer, Message, OutboxEntry, Turn, handler
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.loopback import LoopbackBroker, LoopbackTransport
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import WorldConfig, world_actors

from ..sim.world import OrderSpec, place

HANG_GUARD = 120.0  # real seconds: a guard against hangs, not a timing
IDLE = 60.0  # kernel seconds without a turn before an open order passivates
SPEED = 200.0  # kernel seconds per real second
TEAMS = ("payments-ops", "fraud", "customer-care", "fulfillment-ops")
ORDER = "order/o1"


def world_config(stuck: dict[Lifecycle, float] | None = None) -> WorldConfig:
    """A world without simulated waits, and a policy without holds or approvals;
    timeouts beyond any test, so only the timers a test arms fire."""
    zero = Dist.fixed(0.0)
    policy = attrs.evolve(load_builtin_policy("aggressive"),
                          downstream_sync=DownstreamSyncPolicy())
    if stuck is not None:
        policy = attrs.evolve(policy, stuck_deadlines=stuck)
    return WorldConfig(
        policy=policy, gateway=GatewayConfig(latency=zero),
        warehouses=(WarehouseConfig(warehouse_id="W1", stock={"A": 100},
                                    carriers=(CarrierConfig(name="post", transit=zero),)),),
        teams=tuple(TeamConfig(name=name, review=zero) for name in TEAMS),
        address=AddressServiceConfig(latency=zero),
        gateway_timeout=1e9, resequence_timeout=1e9, retire_after=1e9)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition``; fail naming ``what`` after the hang guard."""
    with anyio.move_on_after(HANG_GUARD):
        while not condition():
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"hang guard: still waiting for {what}")


@asynccontextmanager
async def coordinator(store: SqliteStore, broker: LoopbackBroker, config: WorldConfig,
                      telemetry: list[Any]) -> AsyncIterator[tuple[LiveKernel, OrderSettings]]:
    """The coordinator (as serve composes it) with passivation after ``IDLE``."""
    settings = attrs.evolve(config.settings(), passivate_idle_after=IDLE)
    async with LoopbackTransport(broker, wire_codec(), client_id="coordinator",
                                 subscriptions=list(COORDINATOR_ADDRESSES)) as transport, \
            LiveKernel(seed=1, speed=SPEED, transport=transport, trace=True) as kernel:
        kernel.add_sink(lambda _t, _a, event: telemetry.append(event))
        settings = spawn_coordinator(kernel, settings, store)
        kernel.set_activator(order_activator(settings, store))
        yield kernel, settings


async def world_away(broker: LoopbackBroker, config: WorldConfig) -> None:
    """Open the world's session and leave: what the coordinator sends it queues."""
    async with LoopbackTransport(broker, wire_codec(), client_id="world",
                                 subscriptions=list(world_actors(config))):
        pass


def order_actor(kernel: LiveKernel) -> OrderActor:
    actor = kernel.actor(ORDER)
    assert isinstance(actor, OrderActor)
    return actor


def kept(actor: OrderActor) -> tuple[object, ...]:
    """What an order actor holds: its record and what it keeps besides."""
    return (actor.state, actor.version, actor._views, actor._view_key,  # noqa: SLF001
            sorted(actor._timeouts), actor._stuck_due,  # noqa: SLF001
            [message for _, message in actor.pending_timers()])


def test_an_idle_open_order_passivates_and_comes_back_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An order waiting for the world stops after ``passivate_idle_after``
    without a turn; restored, it holds the same record, views and timers as
    when it stopped, and the world's answers (once it is back) restore it and
    it finishes."""
    config = world_config()
    telemetry: list[Any] = []
    # What the actor holds when it last says it may passivate (the idle check
    # that stops it), and after each start: compared without racing the stop.
    seen: list[tuple[str, tuple[object, ...]]] = []
    quiescent, on_start = OrderActor.quiescent, OrderActor.on_start

    def spy_quiescent(self: OrderActor) -> bool:
        seen.append(("quiescent", kept(self)))
        return quiescent(self)

    async def spy_on_start(self: OrderActor) -> None:
        await on_start(self)
        seen.append(("started", kept(self)))

    monkeypatch.setattr(OrderActor, "quiescent", spy_quiescent)
    monkeypatch.setattr(OrderActor, "on_start", spy_on_start)

    async def main() -> tuple[list[str], list[str], list[str]]:
        broker = LoopbackBroker()
        await world_away(broker, config)
        with SqliteStore(tmp_path / "s.db", journal_codec()) as store, \
                anyio.fail_after(HANG_GUARD):
            async with coordinator(store, broker, config, telemetry) as (kernel, _):
                kernel.tell("intake", place(OrderSpec(order_id="o1")))
                await wait_until(lambda: kernel.is_running(ORDER), "the order to start")
                await wait_until(lambda: not kernel.is_running(ORDER), "the order to passivate")
                assert kernel.activate(ORDER)
                await wait_until(lambda: not kernel.is_running(ORDER), "a second passivation")
                stopped = [e.kind for e in kernel.trace if e.actor == ORDER
                           and e.kind in ("spawn", "stop")]
                # The world comes back: it answers what the order sent it
                # (queued meanwhile), which restores the order, and the order
                # flows to its end.
                async with LoopbackTransport(broker, wire_codec(), client_id="world",
                                             subscriptions=list(world_actors(config))) as t, \
                        LiveKernel(seed=2, speed=SPEED, transport=t) as world:
                    for address, factory in world_actors(config).items():
                        world.spawn(factory, address)
                    await wait_until(lambda: any(isinstance(e, OrderFinished)
                                                 for e in telemetry), "the order to finish")
                    await world.drain(HANG_GUARD)
                await kernel.drain(HANG_GUARD)
                after = [e.kind for e in kernel.trace if e.actor == ORDER
                         and e.kind in ("spawn", "stop")]
                journal = [type(r.event).__name__ for r in store.journal(ORDER)]
        return stopped, after[len(stopped):], journal

    stopped, resumed, journal = anyio.run(main, backend="asyncio")
    # Spawned by intake, passivated; activated, passivated again; then the
    # world's answer brought it back.
    assert stopped == ["spawn", "stop", "spawn", "stop"]
    assert resumed[0] == "spawn"
    starts = [i for i, (what, _) in enumerate(seen) if what == "started"]
    assert len(starts) >= 3
    first_stop, restored = seen[starts[1] - 1], seen[starts[1]]
    assert first_stop[0] == "quiescent"
    assert restored[1] == first_stop[1]  # the same record, views and timers
    assert restored[1][0].order.lifecycle is Lifecycle.READY_FOR_FULFILLMENT  # type: ignore[attr-defined]
    assert journal[0] == "OrderPlaced" and "PaymentAuthorized" in journal
    assert len([e for e in telemetry if isinstance(e, OrderFinished)]) == 1


def test_a_passivated_orders_stuck_deadline_still_fires(tmp_path: Path) -> None:
    """An order that passivated while stuck is started again by the timer watch
    for its stuck check, which reports it stuck; then it passivates again."""
    deadline = 20 * IDLE
    config = world_config(stuck={Lifecycle.AWAITING_PAYMENT: deadline,
                                 Lifecycle.READY_FOR_FULFILLMENT: deadline})
    telemetry: list[Any] = []

    async def main() -> list[str]:
        broker = LoopbackBroker()
        await world_away(broker, config)
        with SqliteStore(tmp_path / "s.db", journal_codec()) as store, \
                anyio.fail_after(HANG_GUARD):
            async with coordinator(store, broker, config, telemetry) as (kernel, _):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lambda: watch_timers(kernel, store, interval=0.02,
                                                       lookahead=IDLE / 2))
                    kernel.tell("intake", place(OrderSpec(order_id="o1")))
                    await wait_until(lambda: kernel.is_running(ORDER), "the order to start")
                    await wait_until(lambda: not kernel.is_running(ORDER),
                                     "the order to passivate")
                    telemetry.append("passivated")
                    mark = len(telemetry)
                    await wait_until(lambda: any(isinstance(e, OrderStuck)
                                                 for e in telemetry[mark:]), "the stuck report")
                    await wait_until(lambda: not kernel.is_running(ORDER),
                                     "the order to passivate again")
                    tg.cancel_scope.cancel()
        marks = ["passivated" if e == "passivated" else type(e).__name__ for e in telemetry
                 if e == "passivated" or isinstance(e, OrderStuck)]
        return marks

    marks = anyio.run(main, backend="asyncio")
    # The stuck check that fired after the passivation came from an actor the
    # watch restored (the passivated one could not run it).
    assert "OrderStuck" in marks[marks.index("passivated"):]


def test_restore_and_wake_start_only_orders_with_work_due(tmp_path: Path) -> None:
    """At start, only the orders with a timer due by the horizon or an unpublished
    outbox entry are restored; the watch then starts an order once its timer
    comes within the horizon, and never one that runs."""
    settings = OrderSettings(policy=load_builtin_policy("cautious"))

    def stuck(stream: str, due: float) -> DurableTimer:
        return DurableTimer(timer_id="0.0", stream=stream, due_at=due, message=StuckCheck(
            order_id=stream.split("/")[1], stage="", version=0, entered_at=due))

    async def main() -> tuple[list[str], list[str], int]:
        with SqliteStore(tmp_path / "s.db", journal_codec()) as store:
            placed = (StageEntered(stage=Lifecycle.PLACED, at=1.0),)
            store.commit("order/soon", Turn(expected_version=0, events=placed, timers_set=(
                stuck("order/soon", 1_000.0),)))
            store.commit("order/later", Turn(expected_version=0, events=placed, timers_set=(
                stuck("order/later", 50_000.0),)))
            store.commit("order/outbox", Turn(expected_version=0, events=placed, outbox=(OutboxEntry(
                entry_id="order/outbox#0.0", stream="order/outbox", recipient="nowhere",
                message=StuckCheck(order_id="outbox", stage="", version=0, entered_at=0.0)),)))
            async with LiveKernel(seed=1, speed=1.0) as kernel:
                kernel.set_activator(order_activator(settings, store))
                restore_orders(kernel, settings, store, horizon=2_000.0)
                await kernel.settle(HANG_GUARD)
                at_start = sorted(a for a in ("order/soon", "order/later", "order/outbox")
                                  if kernel.is_running(a))
                woken_early = wake_due(kernel, store, 2_000.0)
                woken = wake_due(kernel, store, 60_000.0)
                running = sorted(a for a in ("order/soon", "order/later", "order/outbox")
                                 if kernel.is_running(a))
                await kernel.shutdown(drain_timeout=HANG_GUARD)
        return at_start, running, woken_early * 10 + woken

    at_start, running, woken = anyio.run(main, backend="asyncio")
    assert at_start == ["order/outbox", "order/soon"]
    assert running == ["order/later", "order/outbox", "order/soon"]
    assert woken == 1  # none early (order/soon runs), then order/later


@attrs.frozen(kw_only=True)
class Work(Message):
    """A job; ``n == 1`` makes the worker stop itself after it."""

    n: int


class Worker(Actor):
    """Records what it did; stops itself after job 1 (which first waits for
    ``gate``, if given)."""

    def __init__(self, done: list[tuple[int, int]], incarnation: int,
                 gate: anyio.Event | None = None) -> None:
        self.done = done
        self.incarnation = incarnation
        self.gate = gate

    @handler
    async def on_work(self, msg: Work) -> None:
        if msg.n == 1 and self.gate is not None:
            await self.gate.wait()
        self.done.append((self.incarnation, msg.n))
        if msg.n == 1:
            self.ctx.stop()


@pytest.mark.parametrize("activator", [True, False])
def test_mail_left_by_an_actor_that_stopped_itself_goes_to_its_successor(
        activator: bool) -> None:
    """A message already in the mailbox of an actor that stops itself is handed
    to the actor the activator starts at its address (no dead letter); with no
    activator it is an ``actor_stopped`` dead letter, as before."""
    done: list[tuple[int, int]] = []
    starts = iter(range(2, 10))

    async def main() -> LiveKernel:
        async with LiveKernel(seed=1) as kernel:
            if activator:
                kernel.set_activator(lambda address: (
                    lambda i=next(starts): Worker(done, i)) if address == "w" else None)
            kernel.spawn(lambda: Worker(done, 1), "w")
            await kernel.settle(HANG_GUARD)
            kernel.tell("w", Work(n=1))
            kernel.tell("w", Work(n=2))  # in the mailbox before the first turn ends
            await kernel.drain(HANG_GUARD)
            return kernel

    kernel = anyio.run(main, backend="asyncio")
    if activator:
        assert done == [(1, 1), (2, 2)]
        assert kernel.dead_letter_counts == {}
    else:
        assert done == [(1, 1)]
        assert kernel.dead_letter_counts == {"actor_stopped": 1}


@pytest.mark.parametrize("activator", [True, False])
def test_a_send_waiting_on_the_full_mailbox_of_an_actor_that_stops_itself_follows_it(
        activator: bool) -> None:
    """A sender waiting for room in the full mailbox (size 1) of an actor that then
    stops itself is not dropped: its message goes to the successor the activator
    starts, after the one that was in the mailbox (no dead letter); with no
    activator it is an ``actor_stopped`` dead letter."""
    done: list[tuple[int, int]] = []
    starts = iter(range(2, 10))
    gate = anyio.Event()

    async def main() -> LiveKernel:
        async with LiveKernel(seed=1, mailbox_size=1, send_timeout=1e9) as kernel:
            if activator:
                kernel.set_activator(lambda address: (
                    lambda i=next(starts): Worker(done, i, gate)) if address == "w" else None)
            kernel.spawn(lambda: Worker(done, 1, gate), "w")
            await kernel.settle(HANG_GUARD)
            kernel.tell("w", Work(n=1))
            for _ in range(50):  # no clock: the worker takes job 1 and waits at the gate
                await anyio.sleep(0)
            kernel.tell("w", Work(n=2))
            kernel.tell("w", Work(n=3))  # waits for room: the mailbox holds job 2
            for _ in range(50):  # no clock: the posting tasks reach their waits
                await anyio.sleep(0)
            gate.set()
            await kernel.drain(HANG_GUARD)
            return kernel

    kernel = anyio.run(main, backend="asyncio")
    if activator:
        assert done == [(1, 1), (2, 2), (2, 3)]
        assert kernel.dead_letter_counts == {}
    else:
        assert done == [(1, 1)]
        assert kernel.dead_letter_counts == {"actor_stopped": 2}
