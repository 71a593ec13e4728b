"""Runs one contract test body under each kernel: SimPy, and live anyio on
the asyncio and trio backends.

Live runs assert order and causality, never wall-clock margins: a delayed
``tell`` from a test's setup is not left to a timer racing the actors; the
runner tells it at its kernel time once the kernel has settled (every effect
of the earlier steps handled, see :meth:`LiveKernel.settle`); tells due at
the same kernel time go out together, in their order. The timeouts below
are hang guards only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import anyio
import pytest

from orderloom.runtime import (
    Actor,
    ActorFactory,
    Address,
    ChildFailed,
    DeadLetter,
    EmitSink,
    Failure,
    Kernel,
    Message,
    RestartPolicy,
)
from orderloom.runtime.live import LiveKernel
from orderloom.simulation import SimKernel

# One kernel second = 20 real milliseconds. Speed only shortens the runs:
# no assertion depends on how long a step takes.
LIVE_SPEED = 50.0
HANG_GUARD = 60.0  # real seconds for a whole live run; generous on a loaded machine

Setup = Callable[[Kernel], None]
Done = Callable[[], bool]


class _Paced:
    """A live kernel as a test's setup sees it: delayed tells become steps
    of a script the runner plays in kernel-time order, each after the
    kernel has settled. Everything else goes straight to the kernel."""

    def __init__(self, live: LiveKernel) -> None:
        self.live = live
        self.script: list[tuple[float, Address | str, Message, str | None]] = []

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return self.live.dead_letters

    @property
    def failures(self) -> list[Failure]:
        return self.live.failures

    @property
    def escalations(self) -> list[ChildFailed]:
        return self.live.escalations

    def now(self) -> float:
        return self.live.now()

    def spawn(
        self, factory: ActorFactory, name: str, *,
        restart: RestartPolicy | None = None, parent: Address | None = None,
    ) -> Address:
        return self.live.spawn(factory, name, restart=restart, parent=parent)

    def tell(
        self, to: Address | str, message: Message, *, delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> str:
        if delay == 0:
            return self.live.tell(to, message, correlation_id=correlation_id)
        if not _is_message(message):  # refused at once, as the kernel does
            return self.live.tell(to, message, delay=delay, correlation_id=correlation_id)
        self.script.append((delay, to, message, correlation_id))
        return ""

    def stop(self, address: Address | str) -> None:
        self.live.stop(address)

    def is_running(self, address: Address | str) -> bool:
        return self.live.is_running(address)

    def actor(self, address: Address | str) -> Actor:
        return self.live.actor(address)

    def add_sink(self, sink: EmitSink) -> None:
        self.live.add_sink(sink)

    def trace_lines(self) -> list[str]:
        return self.live.trace_lines()


def _is_message(value: object) -> bool:
    return isinstance(value, Message)


class Runner:
    """Builds a kernel, lets the test set it up, runs it for ``until`` kernel
    seconds (live: and then until ``done()``, if given) and shuts it down
    (every actor stopped)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def run(self, setup: Setup, until: float, seed: int = 7, *, trace: bool = False,
            done: Done | None = None) -> Kernel:
        if self.kind == "sim":
            kernel = SimKernel(seed=seed, trace=trace)
            setup(kernel)
            kernel.run(until)
            kernel.shutdown()
            return kernel

        async def main() -> LiveKernel:
            with anyio.fail_after(HANG_GUARD):
                async with LiveKernel(seed=seed, speed=LIVE_SPEED, trace=trace) as live:
                    paced = _Paced(live)
                    setup(paced)
                    # Tells due at one kernel time go out together, in the
                    # order given: a settle between them would let a timer
                    # race the second against a loaded machine's clock.
                    for at, steps in itertools.groupby(
                            sorted(paced.script, key=lambda step: step[0]),
                            key=lambda step: step[0]):
                        await _advance(live, at)
                        for _, to, message, correlation_id in steps:
                            live.tell(to, message, correlation_id=correlation_id)
                    await _advance(live, until)
                    while done is not None and not done():
                        await live.sleep(0.5)
                        assert await live.settle(HANG_GUARD)
            return live

        backend = "trio" if self.kind == "live-trio" else "asyncio"
        return anyio.run(main, backend=backend)


async def _advance(live: LiveKernel, at: float) -> None:
    """Let kernel time reach ``at``, then wait for the kernel to settle."""
    ahead = at - live.now()  # read the clock once: it moves between two reads
    if ahead > 0:
        await live.sleep(ahead)
    assert await live.settle(HANG_GUARD), "the live kernel did not settle (hang guard)"


@pytest.fixture(params=["sim", "live", "live-trio"])
def runner(request: pytest.FixtureRequest) -> Runner:
    """Each contract test runs once per kernel."""
    return Runner(request.param)
