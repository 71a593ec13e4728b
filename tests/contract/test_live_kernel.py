"""The live kernel's own promises: scaled clock, back-pressure, graceful drain.

Assertions are about order and causality (and lower bounds on kernel time,
which load can only make larger), never about how fast a step ran; the
``fail_after`` guards only stop a hang.
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from orderloom.runtime import Actor, Address, KernelError, Message, handler
from orderloom.runtime.live import LiveKernel

pytestmark = pytest.mark.anyio

HANG_GUARD = 30.0  # real seconds


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Each live-kernel test runs on both anyio backends."""
    return str(request.param)


@attrs.frozen(kw_only=True)
class Job(Message):
    n: int


@attrs.frozen(kw_only=True)
class Go(Message):
    count: int


class SlowWorker(Actor):
    def __init__(self, log: list[Any], work: float) -> None:
        self.log = log
        self.work = work

    @handler
    async def on_job(self, msg: Job) -> None:
        await self.ctx.sleep(self.work)
        self.log.append(msg.n)

    async def on_stop(self) -> None:
        self.log.append("stopped")


class Producer(Actor):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    @handler
    async def on_go(self, msg: Go) -> None:
        started = self.ctx.now()
        for n in range(msg.count):
            await self.ctx.send(Address("worker"), Job(n=n))
        self.log.append(("sent", self.ctx.now() - started))


async def test_clock_is_scaled() -> None:
    """With speed=100 and start_time=1000, the clock starts at 1000 and a
    2-second kernel sleep advances ctx.now() by at least 2 s."""
    seen: list[tuple[int, float, float]] = []

    class Sleeper(Actor):
        @handler
        async def on_job(self, msg: Job) -> None:
            before = self.ctx.now()
            await self.ctx.sleep(2.0)
            seen.append((msg.n, before, self.ctx.now()))

    with anyio.fail_after(HANG_GUARD):
        async with LiveKernel(speed=100.0, start_time=1000.0) as kernel:
            assert kernel.now() >= 1000.0
            kernel.spawn(Sleeper, "s")
            kernel.tell("s", Job(n=1))
            kernel.tell("s", Job(n=2))
            assert await kernel.drain(timeout=HANG_GUARD)
    assert [n for n, _, _ in seen] == [1, 2]
    (_, start1, end1), (_, start2, end2) = seen
    assert 1000.0 <= start1 and end1 - start1 >= 2.0 and end2 - start2 >= 2.0
    assert start2 >= end1  # the clock only moves forward, through both turns


async def test_full_mailbox_pushes_back_on_the_sender() -> None:
    """A sender to a full mailbox waits; every message still arrives, in order."""
    log: list[Any] = []
    async with LiveKernel(speed=100.0, mailbox_size=2, send_timeout=60.0) as kernel:
        kernel.spawn(lambda: SlowWorker(log, work=1.0), "worker")
        kernel.spawn(lambda: Producer(log), "producer")
        kernel.tell("producer", Go(count=6))
        assert await kernel.drain(timeout=10)
        assert kernel.dead_letters == []
    numbers = [entry for entry in log if isinstance(entry, int)]
    assert numbers == list(range(6))
    (sent,) = [entry for entry in log if isinstance(entry, tuple)]
    # The producer could only hand over the last jobs once the worker had
    # worked through earlier ones: back-pressure took kernel time.
    assert sent[1] >= 2.0


async def test_send_that_waits_too_long_becomes_a_dead_letter() -> None:
    """A send blocked on a full mailbox past send_timeout is dead-lettered as mailbox_full."""
    log: list[Any] = []
    with anyio.fail_after(HANG_GUARD):
        async with LiveKernel(speed=100.0, mailbox_size=1, send_timeout=0.5) as kernel:
            kernel.spawn(lambda: SlowWorker(log, work=1e6), "worker")
            kernel.spawn(lambda: Producer(log), "producer")
            kernel.tell("producer", Go(count=4))
            # The worker holds job 0 for ever and job 1 fills its mailbox: the
            # producer's next sends can only time out.
            while not any(d.reason == "mailbox_full" for d in kernel.dead_letters):
                await kernel.sleep(0.5)
            await kernel.shutdown(drain_timeout=0.2)
    assert [d.envelope.body for d in kernel.dead_letters if d.reason == "mailbox_full"][:1] == [
        Job(n=2)]


async def test_shutdown_drains_mailboxes_then_stops_actors() -> None:
    """Leaving the kernel handles what is queued, then runs on_stop."""
    log: list[Any] = []
    async with LiveKernel(speed=100.0) as kernel:
        kernel.spawn(lambda: SlowWorker(log, work=0.5), "worker")
        for n in range(5):
            kernel.tell("worker", Job(n=n))
    assert log == [0, 1, 2, 3, 4, "stopped"]
    assert kernel.dead_letters == []


async def test_spawn_needs_a_running_kernel() -> None:
    """Spawning before entering the kernel is a clear KernelError."""
    kernel = LiveKernel()
    with pytest.raises(KernelError, match="async with"):
        kernel.spawn(lambda: SlowWorker([], 1.0), "w")


async def test_bad_settings_are_rejected() -> None:
    """A non-positive speed or mailbox size is refused with the field named."""
    with pytest.raises(ValueError, match="speed"):
        LiveKernel(speed=0)
    with pytest.raises(ValueError, match="mailbox_size"):
        LiveKernel(mailbox_size=0)
    await anyio.sleep(0)


async def test_shutdown_with_a_stuck_handler_loses_nothing() -> None:
    """Shutting down while a handler is stuck dead-letters it, the queue and
    delayed messages, and still runs on_stop."""
    log: list[Any] = []
    async with LiveKernel(speed=100.0) as kernel:
        kernel.spawn(lambda: SlowWorker(log, work=1e6), "worker")
        for n in range(3):
            kernel.tell("worker", Job(n=n))
        kernel.tell("worker", Job(n=99), delay=1e6)
        await kernel.sleep(1.0)
        await kernel.shutdown(drain_timeout=0.2)
        await kernel.shutdown()  # idempotent, and the caller's block goes on
        log.append("after")
    reasons = sorted((d.reason, d.envelope.body.n) for d in kernel.dead_letters)  # type: ignore[attr-defined]
    assert reasons == [("actor_stopped", 0), ("actor_stopped", 1), ("actor_stopped", 2),
                       ("cancelled", 99)]
    assert log == ["stopped", "after"]
