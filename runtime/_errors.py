"""The error tree: one root, a domain branch and an infrastructure branch.

Errors subclass the built-in they resemble so callers can catch them either
way, and carry the ids they are about as attributes (never only in text).
"""

from __future__ import annotations


class OrderloomError(Exception):
    """Root of every error orderloom raises on purpose."""


class DomainError(OrderloomError):
    """A business rule said no (illegal transition, invalid policy, ...)."""


class InfrastructureError(OrderloomError):
    """The machinery failed (kernel, transport, store)."""


class KernelError(InfrastructureError):
    """An actor kernel refused or failed an operation."""


class NotAMessage(KernelError, TypeError):
    """Something that is not a :class:`~orderloom.runtime.Message` was sent.

    Attributes:
        sender: address of the sending actor ("" when sent from outside).
        recipient: the address it was sent to.
        value_type: the type name of the offending object.
    """

    def __init__(self, sender: str, recipient: str, value: object) -> None:
        self.sender = sender
        self.recipient = recipient
        self.value_type = type(value).__qualname__
        super().__init__(
            f"actor {sender or '<outside>'!s} sent a {self.value_type} to {recipient}: "
            "expected an instance of orderloom.runtime.Message (an attrs frozen class)"
        )


class UnhandledMessage(KernelError, LookupError):
    """An actor received a message type it has no handler for.

    Attributes:
        actor: address of the receiving actor.
        message_type: the message class name.
        message_id: the envelope's message id.
    """

    def __init__(self, actor: str, message_type: str, message_id: str) -> None:
        self.actor = actor
        self.message_type = message_type
        self.message_id = message_id
        super().__init__(
            f"actor {actor} has no handler for {message_type} (message {message_id})"
        )


class ForeignAwaitable(KernelError, TypeError):
    """A handler awaited something that is not the kernel's (e.g. asyncio.sleep).

    Attributes:
        actor: address of the actor whose handler awaited it.
        message_type: the message being handled.
        awaited: a description of the foreign object.
    """

    def __init__(self, actor: str, message_type: str, awaited: object) -> None:
        self.actor = actor
        self.message_type = message_type
        self.awaited = type(awaited).__qualname__
        super().__init__(
            f"actor {actor} handling {message_type} awaited a {self.awaited}; "
            "a handler may only await the context's operations "
            "(ctx.sleep, ctx.send, ctx.ask)"
        )


class AskTimeout(KernelError, TimeoutError):
    """No reply to an ``ask`` arrived within its timeout.

    Attributes:
        asker: address of the asking actor ("" from outside).
        target: address asked.
        message_type: the request's class name.
        message_id: the request envelope's id.
        timeout: the timeout in (virtual or scaled) seconds.
    """

    def __init__(
        self, asker: str, target: str, message_type: str, message_id: str, timeout: float
    ) -> None:
        self.asker = asker
        self.target = target
        self.message_type = message_type
        self.message_id = message_id
        self.timeout = timeout
        super().__init__(
            f"{asker or '<outside>'} asked {target} {message_type} (message {message_id}) "
            f"and got no reply within {timeout:g}s"
        )


class ActorNotFound(KernelError, LookupError):
    """The address names no running actor.

    Attributes:
        address: the address looked up.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"no running actor at address {address!r}")


class DuplicateAddress(KernelError, ValueError):
    """An actor is already registered at this address.

    Attributes:
        address: the contested address.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"an actor is already running at address {address!r}")


class InvalidHandler(KernelError, TypeError):
    """An actor class declares a handler the kernel cannot use.

    Attributes:
        actor_class: the class name.
        method: the method name.
    """

    def __init__(self, actor_class: str, method: str, why: str) -> None:
        self.actor_class = actor_class
        self.method = method
        super().__init__(f"{actor_class}.{method}: {why}")
