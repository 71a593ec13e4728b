"""The driver side of the contract: what code outside the actors may do.

A world builder, a test or the CLI drives a kernel through :class:`Kernel`;
both :class:`~orderloom.simulation.SimKernel` and
:class:`~orderloom.runtime.live.LiveKernel` satisfy it (checked by mypy
wherever one is passed as a ``Kernel``).
"""

from __future__ import annotations

from typing import Protocol

from ._contract import Actor, ActorFactory, Address, ChildFailed, DeadLetter, Failure, Message
from ._contract import RestartPolicy
from ._records import EmitSink

__all__ = ["Kernel"]


class Kernel(Protocol):
    """Spawn, tell, stop, observe: the calls both kernels offer their driver.

    Advancing time is deliberately not part of it: the SimPy kernel runs
    synchronously in virtual time (``kernel.run(until)``), the live kernel
    runs on its own in wall-clock time and is awaited
    (``await kernel.sleep(d)``, ``await kernel.settle(timeout)``,
    ``await kernel.drain(timeout)``). A driver that must do both (the
    contract tests) holds the kernel as a ``Kernel`` for everything else.

    The records (dead letters, failures, escalations) are bounded: see
    :class:`~orderloom.runtime.KernelRecords` for the totals past the kept ones.
    """

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """Messages no actor handled (the first ``keep_dead_letters``)."""
        ...

    @property
    def failures(self) -> list[Failure]:
        """Handler and hook failures with supervision's action (bounded)."""
        ...

    @property
    def escalations(self) -> list[ChildFailed]:
        """Actors stopped by failures that no running parent was told of (bounded)."""
        ...

    def now(self) -> float:
        """Kernel time in seconds."""
        ...

    def spawn(
        self, factory: ActorFactory, name: str, *,
        restart: RestartPolicy | None = None, parent: Address | None = None,
    ) -> Address:
        """Start an actor at address ``name``.

        Raises:
            DuplicateAddress: an actor is already registered at ``name``.
        """
        ...

    def tell(
        self, to: Address | str, message: Message, *, delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> str:
        """Send from outside the actors (after ``delay`` kernel seconds); returns the message id.

        Raises:
            NotAMessage: ``message`` is not a :class:`Message`.
        """
        ...

    def stop(self, address: Address | str) -> None:
        """Stop an actor after its current turn (at once if idle).

        Raises:
            ActorNotFound: no actor at ``address``.
        """
        ...

    def is_running(self, address: Address | str) -> bool:
        """True while an actor is registered at ``address`` (and not down)."""
        ...

    def actor(self, address: Address | str) -> Actor:
        """The current instance at ``address`` (for tests and inspection).

        Raises:
            ActorNotFound: no actor at ``address``.
        """
        ...

    def add_sink(self, sink: EmitSink) -> None:
        """Receive every ``ctx.emit`` as ``sink(time, address, event)``."""
        ...

    def trace_lines(self) -> list[str]:
        """The trace as stable text lines (empty when tracing is off)."""
        ...
