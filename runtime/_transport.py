"""The transport seam: how a live kernel reaches actors it has not spawned.

A :class:`Transport` publishes envelopes for addresses outside the kernel and
hands it the envelopes that arrive for its own, each as a :class:`Delivery`
that the kernel acknowledges once the recipient's turn is done (for a
persistent actor: committed). A delivery never acknowledged is redelivered by
the transport's broker when its session resumes, so a crash between receiving
and committing loses nothing; the persistent actor's inbox makes the second
delivery of a committed message a no-op.

This module imports no MQTT library: ``orderloom.runtime.mqtt`` has the
MQTT implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from ._contract import Envelope
from ._errors import InfrastructureError
from ._refused import RefusedPayload

__all__ = ["Delivery", "Transport", "TransportError", "ack_after"]


class TransportError(InfrastructureError, ConnectionError):
    """The transport could not publish, subscribe or connect (the cause is kept).

    Attributes:
        operation: what failed (``connect``, ``subscribe``, ``publish``).
        retryable: the same call may succeed later (the connection broke and
            the transport is reconnecting; the next call waits for it), as
            opposed to never (not connected for good, refused, closed).
    """

    def __init__(self, operation: str, detail: str, *, retryable: bool = False) -> None:
        self.operation = operation
        self.retryable = retryable
        super().__init__(f"{operation}: {detail}")


class Delivery:
    """An inbound envelope and the handle that acknowledges it.

    :meth:`ack` tells the broker the message is done with; it may be called
    more than once (only the first counts) and does nothing once the
    connection it came on is gone (the broker redelivers it then anyway).
    """

    __slots__ = ("envelope", "_ack", "acked")

    def __init__(self, envelope: Envelope, ack: Callable[[], None]) -> None:
        self.envelope = envelope
        self._ack = ack
        self.acked = False

    def ack(self) -> None:
        """Acknowledge the message (idempotent)."""
        if not self.acked:
            self.acked = True
            self._ack()

    def __repr__(self) -> str:
        return f"Delivery({self.envelope.message_id!r}, acked={self.acked})"


def ack_after(count: int, ack: Callable[[], None]) -> Callable[[], None]:
    """An acknowledgement to give each of ``count`` deliveries made from one
    inbound message: the message is acknowledged once all of them are (an
    ingested webhook may become several envelopes). Each :class:`Delivery`
    calls it at most once."""
    left = [count]

    def one() -> None:
        left[0] -= 1
        if left[0] == 0:
            ack()

    if count <= 0:
        ack()
    return one


class Transport(Protocol):
    """What the live kernel needs from a transport.

    Implementations: :class:`orderloom.runtime.mqtt.MqttTransport`, and
    :class:`orderloom.runtime.loopback.LoopbackTransport` (in memory, one process).
    """

    async def publish(self, envelope: Envelope) -> None:
        """Send ``envelope`` to its recipient, returning once the broker has
        confirmed it (at most a bounded window of publishes is unconfirmed:
        past it, this waits).

        Raises:
            NotOnTheWire: the envelope cannot be encoded.
            TransportError: the broker did not confirm it (``retryable``: the
                connection broke; a new call waits for the next one).
        """
        ...

    async def publish_dead_letter(self, letter: RefusedPayload) -> None:
        """Publish a refused payload's record (already redacted) on
        ``orderloom/v1/dead/{reason}``.

        Raises:
            TransportError: the broker did not confirm it.
        """
        ...

    def deliveries(self) -> AsyncIterator[Delivery]:
        """The envelopes that arrive for this node's addresses, in arrival order.

        The stream is bounded: while nobody reads it the transport stops
        reading from the broker (back-pressure), it never drops.
        """
        ...
