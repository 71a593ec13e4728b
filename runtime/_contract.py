"""The actor kernel contract: what an actor may see and do.

This module is everything :mod:`orderloom.actors` is allowed to import from
the runtime. It holds no kernel: the SimPy kernel (``orderloom.simulation``)
and the live anyio kernel (``orderloom.runtime``) both implement
:class:`Context` and drive the same :class:`Actor` classes.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, NamedTuple, NewType, Protocol, TypeVar, overload

import attrs

from ._errors import InvalidHandler

__all__ = [
    "Actor",
    "ActorFactory",
    "Address",
    "ChildFailed",
    "Context",
    "DeadLetter",
    "Envelope",
    "Failure",
    "Handler",
    "Message",
    "RestartPolicy",
    "TimerId",
    "TraceEvent",
    "handler",
]

Address = NewType("Address", str)
"""Names an actor, not a process: ``"order/42"``, ``"warehouse/W1"``."""

TimerId = NewType("TimerId", int)
"""Identifies a timer set with :meth:`Context.schedule`."""


@attrs.frozen(kw_only=True)
class Message:
    """Base of every message: commands (imperative) and events (past tense).

    Subclasses are ``@attrs.frozen(kw_only=True)`` classes. Invariants of a
    message are enforced by attrs validators in the subclass.
    """


@attrs.frozen(kw_only=True)
class ChildFailed(Message):
    """Sent to a parent when a child exhausted its restart budget and stopped.

    Invariants: ``child`` is the stopped child's address; ``error`` is the
    repr of the last exception it raised.
    """

    child: Address
    error: str


class Envelope(NamedTuple):
    """A message in flight with its provenance.

    A ``NamedTuple`` rather than an attrs class because the kernels build one
    per delivery: it is immutable like a frozen attrs class but five times
    cheaper to construct, which is most of the kernel's per-message cost.

    Invariants: ``message_id`` is unique in a run; ``causation_id`` is the id
    of the envelope whose handler sent this one (None from outside);
    ``correlation_id`` is inherited from the cause unless set (usually the
    order id); ``sent_at`` is the sender's ``ctx.now()``.
    """

    message_id: str
    causation_id: str | None
    correlation_id: str | None
    sender: Address | None
    recipient: Address
    sent_at: float
    body: Message
    reply_to: Address | None = None


@attrs.frozen(kw_only=True)
class DeadLetter:
    """A message no actor handled, kept for inspection (nothing is dropped).

    Attributes:
        time: when it was dead-lettered (kernel time).
        envelope: the message and its provenance.
        reason: a short machine-readable cause: ``unknown_address``,
            ``actor_stopped``, ``actor_down``, ``handler_failed``,
            ``unhandled``, ``late_reply``, ``mailbox_full``.
        error: repr of the exception involved, if any.
    """

    time: float
    envelope: Envelope
    reason: str
    error: str | None = None


@attrs.frozen(kw_only=True)
class Failure:
    """A handler that raised: who, on what, and the traceback.

    Attributes:
        time: kernel time of the failure.
        actor: the failing actor's address.
        message_type: class name of the message being handled ("" for hooks).
        message_id: the envelope id ("" for hooks).
        error: repr of the exception.
        traceback: the formatted traceback.
        action: what supervision did: ``restarted``, ``stopped``,
            ``escalated``, ``replied`` (the exception went back to an asker),
            ``recorded`` (no restart: bad input such as an unhandled type).
    """

    time: float
    actor: str
    message_type: str
    message_id: str
    error: str
    traceback: str
    action: str


@attrs.frozen(kw_only=True)
class TraceEvent:
    """One structured trace record: deliveries, timers, restarts, dead letters.

    Attributes:
        time: kernel time.
        kind: ``deliver``, ``timer``, ``restart``, ``stop``, ``dead_letter``,
            ``failure``, ``emit``, ``drop``, ``duplicate``, ``down``, ``up``,
            ``spawn``, ``crash``, ``handover`` (live: a message left in a
            stopped actor's mailbox given to the actor started after it).
        actor: the actor concerned.
        message_type: class name of the message, if any.
        message_id: envelope id, if any (for ``emit``: the message whose
            turn emitted the event, "" outside a turn).
        detail: a short free text (reason, delay, ...), deterministic.
        sender: the envelope's sender, if any ("" from outside).
        causation_id: the envelope's causation id, if any: with it a trace
            can follow a message back to the messages that led to it.
    """

    time: float
    kind: str
    actor: str
    message_type: str = ""
    message_id: str = ""
    detail: str = ""
    sender: str = ""
    causation_id: str = ""

    def as_line(self) -> str:
        """Render as one stable text line (used for byte-identical comparison)."""
        return (
            f"{self.time!r}\t{self.kind}\t{self.actor}\t{self.message_type}\t"
            f"{self.message_id}\t{self.detail}"
        )


def _positive_or_zero(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"RestartPolicy.{attribute.name} must be >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"RestartPolicy.{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class RestartPolicy:
    """How a failing actor is restarted.

    An actor whose handler raises on a told message is restarted after a
    backoff of ``backoff * factor**(n-1)`` (capped at ``max_backoff``), where
    n counts the restarts inside the sliding ``window``. When more than
    ``max_restarts`` happen inside the window it is stopped instead and its
    parent is told with :class:`ChildFailed`.
    """

    max_restarts: int = attrs.field(default=3, validator=_positive_or_zero)
    window: float = attrs.field(default=60.0, validator=_positive)
    backoff: float = attrs.field(default=0.1, validator=_positive_or_zero)
    factor: float = attrs.field(default=2.0, validator=_positive_or_zero)
    max_backoff: float = attrs.field(default=30.0, validator=_positive_or_zero)

    def delay(self, attempt: int) -> float:
        """Backoff before restart number ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.backoff * self.factor ** (attempt - 1)))


M = TypeVar("M", bound=Message)
A = TypeVar("A", bound="Actor")
Handler = Callable[[Any, Any], Coroutine[Any, Any, Any]]
ActorFactory = Callable[[], "Actor"]


class _HandlerMark:
    """Marks an async method as the handler of some message types."""

    __slots__ = ("func", "types")

    def __init__(self, func: Handler, types: tuple[type[Message], ...]) -> None:
        self.func = func
        self.types = types

    def __set_name__(self, owner: type, name: str) -> None:
        # Leave the plain function on the class so it stays callable and
        # introspectable; the registration happens in Actor.__init_subclass__.
        setattr(owner, name, self.func)
        pending = owner.__dict__.get("_pending_handlers")
        if pending is None:
            pending = []
            type.__setattr__(owner, "_pending_handlers", pending)
        pending.append((name, self.func, self.types))


@overload
def handler(arg: Handler, /) -> Handler: ...
@overload
def handler(*types: type[Message]) -> Callable[[Handler], Handler]: ...
def handler(*args: Any) -> Any:
    """Declare an ``async`` method as a message handler.

    Use ``@handler(Ping, Pong)`` to name the types, or a bare ``@handler``
    to take the type from the annotation of the method's message parameter.
    Dispatch is by the message's class (then its bases): no string keys.
    """
    if len(args) == 1 and not isinstance(args[0], type):
        return _HandlerMark(args[0], ())

    types = tuple(args)

    def mark(func: Handler) -> Handler:
        return _HandlerMark(func, types)  # type: ignore[return-value]

    return mark


class Actor:
    """Base class of every actor; the same class runs under both kernels.

    Handlers are ``async`` methods marked with :func:`handler`. They are
    turn-based: an actor processes one message at a time, and while a
    handler awaits (``ctx.sleep``, ``ctx.ask``) its mailbox waits. A handler
    may only await the context's operations. Its return value is the reply
    to an ``ask``.

    Lifecycle hooks: :meth:`on_start` (after spawn and after each restart),
    :meth:`on_failure` (a handler raised; called on the failed instance),
    :meth:`on_stop` (the actor is stopping).

    The base class keeps ``ctx`` in a slot and has no instance dictionary of
    its own, so a subclass that declares ``__slots__`` is as small as its
    fields; one that does not gets a ``__dict__`` as usual.
    """

    __slots__ = ("ctx",)
    ctx: Context
    # Declared handlers (own and inherited), and a per-class cache of
    # resolutions through message base classes. Kept apart so a subclass
    # built later inherits declarations only, never another class's cache.
    _handlers: ClassVar[dict[type[Message], Handler]] = {}
    _resolved: ClassVar[dict[type[Message], Handler | None]] = {}
    _pending_handlers: ClassVar[list[tuple[str, Handler, tuple[type[Message], ...]]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type[Message], Handler] = {}
        for base in reversed(cls.__mro__[1:]):
            table.update(base.__dict__.get("_handlers", {}))
        for name, func, types in cls.__dict__.get("_pending_handlers", ()):
            if not types:
                types = (_infer_message_type(cls, name, func),)
            for t in types:
                if not (isinstance(t, type) and issubclass(t, Message)):
                    raise InvalidHandler(
                        cls.__qualname__, name, f"{t!r} is not a Message subclass"
                    )
                table[t] = func
        cls._handlers = table
        cls._resolved = dict(table)

    @classmethod
    def handler_for(cls, message_type: type[Message]) -> Handler | None:
        """The handler for a message class, looking through its bases."""
        resolved = cls._resolved
        try:
            return resolved[message_type]
        except KeyError:
            pass
        table = cls._handlers
        found = None
        for base in message_type.__mro__:
            found = table.get(base)
            if found is not None:
                break
        resolved[message_type] = found
        return found

    async def on_start(self) -> None:
        """Called when the actor starts and after every restart."""

    async def on_failure(self, error: BaseException, message: Message | None) -> None:
        """Called on the failed instance before supervision acts."""

    async def on_stop(self) -> None:
        """Called once when the actor stops."""


def _infer_message_type(cls: type, name: str, func: Handler) -> type[Message]:
    import inspect
    import sys
    import typing

    params = list(inspect.signature(func).parameters.values())
    if len(params) != 2:
        raise InvalidHandler(
            cls.__qualname__, name, "a handler takes (self, message); use @handler(Type)"
        )
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module else {}
    namespace.setdefault(cls.__name__, cls)
    try:
        hints = typing.get_type_hints(func, globalns=namespace)
    except NameError as exc:
        raise InvalidHandler(
            cls.__qualname__, name,
            f"cannot resolve the message annotation ({exc}); use @handler(Type)",
        ) from exc
    hint = hints.get(params[1].name)
    if not (isinstance(hint, type) and issubclass(hint, Message)):
        raise InvalidHandler(
            cls.__qualname__, name,
            f"message parameter annotated {hint!r}, expected a Message subclass; "
            "annotate it or use @handler(Type)",
        )
    return hint


class Context(Protocol):
    """What a handler may use: time, messaging, timers, randomness, ids.

    Both kernels implement it. Handlers must not touch the OS clock, global
    randomness, asyncio or I/O: everything comes from here.
    """

    @property
    def address(self) -> Address:
        """This actor's address."""
        ...

    @property
    def envelope(self) -> Envelope | None:
        """The envelope being handled (None in lifecycle hooks)."""
        ...

    @property
    def rng(self) -> random.Random:
        """This actor's random stream, seeded from the run seed and address."""
        ...

    def now(self) -> float:
        """Current kernel time in seconds (virtual under simulation)."""
        ...

    def new_id(self) -> str:
        """A fresh id, unique in the run (deterministic under simulation)."""
        ...

    def sleep(self, delay: float) -> Awaitable[None]:
        """Suspend this handler; the actor's mailbox waits meanwhile."""
        ...

    async def send(
        self,
        to: Address,
        message: Message,
        *,
        delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> None:
        """Send ``message`` to ``to`` (fire and forget), after ``delay``."""
        ...

    async def ask(
        self, to: Address, message: Message, *, timeout: float
    ) -> Any:
        """Send and wait for the handler's return value (or its exception).

        Raises:
            AskTimeout: no reply within ``timeout``.
            ActorNotFound: no actor at ``to``.
        """
        ...

    def schedule(self, delay: float, message: Message) -> TimerId:
        """Deliver ``message`` to this actor after ``delay``; returns a timer id.

        Timers across a restart: a timer belongs to the actor *instance*
        that set it. When that instance fails and is restarted, none of its
        timers reaches the successor instance, whether it had not fired yet
        (it is cancelled) or had fired but was still waiting in the mailbox
        because the actor was busy (it is dropped when the instance fails).
        A dropped timer leaves a ``timer`` trace record with the detail
        ``dropped: timer_of_failed_instance``, not a dead letter: it was the
        failed instance's reminder to itself, no one else's message is lost,
        and the successor re-arms what it needs in :meth:`Actor.on_start`.
        If the actor is stopped instead of restarted, fired timers still in
        its mailbox are dead-lettered with the rest of it (``actor_stopped``).

        A *persistent* actor's durable timers (kept in the store with its
        state) are not instance timers: on a restart they are restored from
        the store with the state, not dropped.
        """
        ...

    def cancel(self, timer: TimerId) -> bool:
        """Cancel a timer of this instance; True if it had not fired yet."""
        ...

    def spawn(
        self,
        factory: ActorFactory,
        name: str,
        *,
        restart: RestartPolicy | None = None,
    ) -> Address:
        """Start a child actor at address ``name``; this actor supervises it."""
        ...

    def stop(self, address: Address | None = None) -> None:
        """Stop this actor (after the current handler) or a named one."""
        ...

    def emit(self, event: object) -> None:
        """Publish a metrics/trace event to the kernel's sinks."""
        ...
