"""orderloom.runtime: the actor kernel contract and the live (anyio) kernel.

The contract (:class:`Actor`, :class:`Context`, :class:`Message`,
:class:`Envelope`, the error tree) is all :mod:`orderloom.actors` may import.
"""

from __future__ import annotations

from ._contract import (
    Actor,
    ActorFactory,
    Address,
    ChildFailed,
    Context,
    DeadLetter,
    Envelope,
    Failure,
    Handler,
    Message,
    RestartPolicy,
    TimerId,
    TraceEvent,
    handler,
)
from ._driver import Kernel
from ._records import EmitSink, KernelRecords
from ._supervision import RestartBudget
from ._errors import (
    ActorNotFound,
    AskTimeout,
    DomainError,
    DuplicateAddress,
    ForeignAwaitable,
    InfrastructureError,
    InvalidHandler,
    KernelError,
    NotAMessage,
    OrderloomError,
    UnhandledMessage,
)

__all__ = [
    "Actor",
    "ActorFactory",
    "ActorNotFound",
    "Address",
    "AskTimeout",
    "ChildFailed",
    "Context",
    "DeadLetter",
    "DomainError",
    "DuplicateAddress",
    "EmitSink",
    "Envelope",
    "Failure",
    "ForeignAwaitable",
    "Handler",
    "InfrastructureError",
    "InvalidHandler",
    "Kernel",
    "KernelError",
    "KernelRecords",
    "Message",
    "NotAMessage",
    "OrderloomError",
    "RestartBudget",
    "RestartPolicy",
    "TimerId",
    "TraceEvent",
    "UnhandledMessage",
    "handler",
]
