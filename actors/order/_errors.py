"""Domain errors of the order model.

All of them sit on the domain branch of the error tree
(:class:`orderloom.runtime.DomainError`) and subclass the built-in they
resemble. They carry the ids they are about as attributes.

Duplicate and stale events are *not* errors: they are ordinary outcomes of
:func:`orderloom.actors.apply`, recorded and otherwise ignored.
"""

from __future__ import annotations

import enum

from orderloom.runtime import DomainError

__all__ = ["CommandRejected", "EventRejected", "InvalidTransition"]


class InvalidTransition(DomainError, ValueError):
    """A dimension of an order was asked to move where its table forbids.

    Attributes:
        order_id: the order concerned.
        dimension: which dimension, e.g. ``"payment"``, ``"fulfillment[FO-1]"``.
        current: the state the dimension is in.
        attempted: the state it was asked to move to.
    """

    def __init__(
        self, order_id: str, dimension: str, current: enum.Enum, attempted: enum.Enum
    ) -> None:
        self.order_id = order_id
        self.dimension = dimension
        self.current = current
        self.attempted = attempted
        super().__init__(
            f"order {order_id}: {dimension} cannot move from "
            f"{current.value!r} to {attempted.value!r}"
        )

    def __reduce__(self) -> tuple[type[InvalidTransition], tuple[str, str, enum.Enum, enum.Enum]]:
        # Keep the error picklable (replications run in worker processes).
        return (type(self), (self.order_id, self.dimension, self.current, self.attempted))


class EventRejected(DomainError, ValueError):
    """An event contradicts the order's state in a way no table expresses.

    For example it names a fulfillment order or authorization the order does
    not have, or arrives before the order was placed.

    Attributes:
        order_id: the order concerned.
        event_id: the rejected event's id.
        reason: a short human-readable cause.
    """

    def __init__(self, order_id: str, event_id: str, reason: str) -> None:
        self.order_id = order_id
        self.event_id = event_id
        self.reason = reason
        super().__init__(f"order {order_id}: event {event_id} rejected: {reason}")

    def __reduce__(self) -> tuple[type[EventRejected], tuple[str, str, str]]:
        return (type(self), (self.order_id, self.event_id, self.reason))


class CommandRejected(DomainError, ValueError):
    """``decide`` refused a command: doing it now would break a business rule.

    Attributes:
        order_id: the order concerned.
        command_id: the refused command's id.
        command_type: the command's class name.
        reason: a short human-readable cause.
    """

    def __init__(self, order_id: str, command_id: str, command_type: str, reason: str) -> None:
        self.order_id = order_id
        self.command_id = command_id
        self.command_type = command_type
        self.reason = reason
        super().__init__(f"order {order_id}: {command_type} {command_id} refused: {reason}")

    def __reduce__(self) -> tuple[type[CommandRejected], tuple[str, str, str, str]]:
        return (type(self), (self.order_id, self.command_id, self.command_type, self.reason))
