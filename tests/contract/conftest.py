"""Runs one contract test body under each kernel: SimPy, and live anyio on
the asyncio and trio backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import anyio
import pytest

from orderloom.runtime import Actor, Address, KernelRecords, Message, RestartPolicy
from orderloom.runtime.live import LiveKernel
from orderloom.simulation import SimKernel

# One kernel second = 20 real milliseconds: fast, yet wide enough that the
# 1-second gaps the tests use are not blurred by event-loop jitter.
LIVE_SPEED = 50.0


class Kernel(Protocol):
    """The outside API both kernels share, as the contract tests use it."""

    seed: int | None

    def spawn(
        self, factory: Callable[[], Actor], name: str, *,
        restart: RestartPolicy | None = None, parent: Address | None = None,
    ) -> Address: ...

    def tell(self, to: Address | str, message: Message, *, delay: float = 0.0,
             correlation_id: str | None = None) -> str: ...

    def stop(self, address: Address | str) -> None: ...

    def is_running(self, address: Address | str) -> bool: ...


class Ran(Protocol):
    """What a run leaves to assert on."""

    dead_letters: list  # type: ignore[type-arg]
    failures: list  # type: ignore[type-arg]
    escalations: list  # type: ignore[type-arg]


Setup = Callable[[Kernel], None]


class Runner:
    """Builds a kernel, lets the test set it up, runs it for ``until`` kernel
    seconds and shuts it down (every actor stopped)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def run(self, setup: Setup, until: float, seed: int = 7) -> KernelRecords:
        if self.kind == "sim":
            kernel = SimKernel(seed=seed)
            setup(kernel)
            kernel.run(until)
            kernel.shutdown()
            return kernel

        async def main() -> LiveKernel:
            async with LiveKernel(seed=seed, speed=LIVE_SPEED) as live:
                setup(live)
                await live.sleep(until)
            return live

        backend = "trio" if self.kind == "live-trio" else "asyncio"
        return anyio.run(main, backend=backend)


@pytest.fixture(params=["sim", "live", "live-trio"])
def runner(request: pytest.FixtureRequest) -> Runner:
    """Each contract test runs once per kernel."""
    return Runner(request.param)
