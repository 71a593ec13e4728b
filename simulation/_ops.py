"""The awaitables a handler may use under the SimPy kernel.

A handler coroutine suspends by yielding one of these objects up to the
kernel, which turns it into a SimPy event and resumes the coroutine when the
event fires. Anything else yielded is a foreign awaitable and is refused.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from orderloom.runtime import Envelope


class SleepOp:
    """Suspend the current handler for ``delay`` virtual seconds."""

    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __await__(self) -> Generator[Any, Any, None]:
        yield self


class AskOp:
    """Post ``envelope`` and suspend until its reply or ``timeout``."""

    __slots__ = ("envelope", "timeout")

    def __init__(self, envelope: Envelope, timeout: float) -> None:
        self.envelope = envelope
        self.timeout = timeout

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self)
