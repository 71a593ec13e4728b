"""The live kernel: the same actors on anyio, in real (optionally scaled) time.

Each actor is one task reading a bounded memory-object stream (its mailbox),
so a handler runs one message at a time and a full mailbox pushes back on
senders (``await ctx.send`` waits, up to ``send_timeout``, then the message
is dead-lettered as ``mailbox_full``: nothing vanishes, and two actors
filling each other's mailboxes cannot deadlock forever).

The clock is ``start_time + elapsed * speed``: with ``speed=1000`` one kernel
second passes in one real millisecond, so a scenario written in kernel
seconds runs live quickly. Supervision mirrors the SimPy kernel.

Usage::

    async with LiveKernel(speed=1000) as kernel:
        kernel.spawn(MyActor, "my-actor")
        kernel.tell("my-actor", Hello())
        await kernel.drain(timeout=5)

A driver that takes steps (tests, demos) calls ``await kernel.settle(t)``
between them: it returns once everything due so far has been handled, so
the next step follows the effects of the last one however loaded the
machine is.

With a ``transport`` (``orderloom.runtime.mqtt.MqttTransport``), an envelope
for an address the kernel has not spawned is published instead of becoming a
dead letter, and envelopes arriving for local actors are delivered as they
came (ids, causation, correlation, sender). Each is acknowledged after the
recipient's turn completed (a persistent actor's turn returns after its
commit), so a turn that fails or never finishes is redelivered later. An
``ask`` of a remote actor works as a local one: the kernel that ran the
handler publishes a ``KernelReply`` (the answer, or the failure as a
``ReplyFailure``) to the asker's address, and the asker's kernel completes
the pending ask with it (a failure raises ``RemoteError``, or
``ActorNotFound``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._contract import (
    Actor,
    ActorFactory,
    Address,
    Envelope,
    Message,
    RestartPolicy,
    TimerId,
)
from ._errors import (
    ActorNotFound,
    AskTimeout,
    DuplicateAddress,
    KernelError,
    NotAMessage,
    OrderloomError,
    UnhandledMessage,
)
from ._crash import crash_point
from ._records import KernelRecords
from ._reply import KernelReply, error_for, failure_of
from ._supervision import RestartBudget
from ._transport import Delivery, Transport, TransportError
from ._wire_errors import NotOnTheWire

__all__ = ["Activator", "LiveKernel", "TurnSink"]

Activator = Callable[[Address], ActorFactory | None]
"""Given an address with no actor, the factory of the actor to start there
(or None); see :meth:`LiveKernel.set_activator`."""

TurnSink = Callable[[Envelope, float], None]
"""Receives ``(envelope, latency)`` for each completed turn of a transport
delivery (see :meth:`LiveKernel.add_turn_sink`)."""

_STARTING, _RUNNING, _RESTARTING, _STOPPED = range(4)


class _Wake:
    """Put in a mailbox to wake an idle actor that was asked to stop."""


_WAKE = _Wake()


class _Reply:
    __slots__ = ("event", "value", "error")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class _Receipt(Delivery):
    """The receipt of a local send (:meth:`_LiveCell.send_with_receipt`),
    given when the recipient's turn completes, as a transport's delivery is
    acknowledged."""

    __slots__ = ()


class _LiveCell:
    """One actor's slot in the live kernel; it is also the actor's ``ctx``."""

    def __init__(
        self, kernel: LiveKernel, address: Address, factory: ActorFactory,
        restart: RestartPolicy, parent: Address | None, mailbox_size: int,
    ) -> None:
        self._kernel = kernel
        self._address = address
        self.actor: Actor = factory()
        if not isinstance(self.actor, Actor):
            raise TypeError(
                f"factory for {address!r} returned {type(self.actor).__qualname__}, not an Actor"
            )
        self.actor.ctx = self
        self.factory = factory
        self.restart = restart
        self.parent = parent
        send, receive = anyio.create_memory_object_stream[Envelope | _Wake](mailbox_size)
        self.outbox: MemoryObjectSendStream[Envelope | _Wake] = send
        self.inbox: MemoryObjectReceiveStream[Envelope | _Wake] = receive
        self.state = _STARTING
        self.current: Envelope | None = None
        self.busy = False
        self.stop_requested = False
        self.failed_with: BaseException | None = None
        self.budget: RestartBudget | None = None  # created on the first failure
        # Timers of the current instance not delivered yet: a cancel scope
        # while the timer sleeps, None once its message is in the mailbox
        # (a zero-delay timer is queued at once and stays cancellable).
        self.timers: dict[int, anyio.CancelScope | None] = {}
        # Timer messages in the mailbox: message id -> (incarnation that set
        # the timer, timer id if still cancellable). A restart bumps the
        # incarnation, so the failed instance's fired timers are dropped.
        self.fired: dict[str, tuple[int, TimerId | None]] = {}
        self.incarnation = 0
        self.children: dict[Address, None] = {}  # ordered set: O(1) removal
        self.backoff: anyio.CancelScope | None = None  # set while waiting to restart
        self._rng: random.Random | None = None  # created when the actor first uses it

    # -- the Context protocol -------------------------------------------------

    @property
    def address(self) -> Address:
        return self._address

    @property
    def envelope(self) -> Envelope | None:
        return self.current

    @property
    def rng(self) -> random.Random:
        rng = self._rng
        if rng is None:
            seed = self._kernel.seed
            rng = self._rng = (random.Random(f"{seed}/{self._address}") if seed is not None
                               else random.Random())
        return rng

    def now(self) -> float:
        return self._kernel.now()

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def sleep(self, delay: float) -> Awaitable[None]:
        if delay < 0:
            raise ValueError(f"actor {self._address}: sleep({delay!r}) needs a delay >= 0")
        return anyio.sleep(delay / self._kernel.speed)

    async def send(
        self, to: Address, message: Message, *, delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> None:
        kernel = self._kernel
        envelope = kernel._envelope(self, to, message, correlation_id, None)
        if delay:
            kernel._post_later(envelope, delay)  # fire and forget, as in simulation
        else:
            await kernel._post(envelope)

    async def send_with_receipt(
        self, to: Address, message: Message, *, message_id: str, on_delivered: Callable[[], None],
        delay: float = 0.0, correlation_id: str | None = None,
    ) -> None:
        """:meth:`send` with the message id given (a redelivery keeps it, so
        the receiver's inbox knows it) and a receipt: ``on_delivered`` is
        called once the message is safe, when the local recipient's turn for
        it has completed (a persistent actor's: committed) or the transport
        has confirmed its publish. Never for a message that was dead-lettered
        or whose turn failed, nor if the process dies first: the sender keeps
        it (an outbox) and sends it again. See :class:`ReceiptedSend`."""
        kernel = self._kernel
        envelope = kernel._envelope(self, to, message, correlation_id, None)._replace(
            message_id=message_id)
        if delay:
            kernel._post_later(envelope, delay, on_delivered)
        else:
            await kernel._post(envelope, receipt=on_delivered)

    async def forward(self, to: Address, message: Message, *,
                      correlation_id: str | None = None) -> None:
        """:meth:`send`, and the message being handled, if it came from the
        transport, is acknowledged once ``message`` is safe (its local
        recipient's turn completed, or the broker confirmed it), not when
        this turn completes: a crash in between leaves it unacknowledged,
        and the broker delivers it again. See :class:`ReceiptedSend`."""
        kernel = self._kernel
        current = self.current
        acks: list[Delivery] = []
        if current is not None and kernel._acks:
            pending = kernel._acks.get(current.message_id)
            if pending:
                acks = [d for d in pending if d.envelope is current]
                kept = [d for d in pending if d.envelope is not current]
                if kept:
                    pending[:] = kept
                else:
                    del kernel._acks[current.message_id]

        def delivered() -> None:
            for delivery in acks:
                delivery.ack()

        envelope = kernel._envelope(self, to, message, correlation_id, None)
        await kernel._post(envelope, receipt=delivered if acks else None)

    async def ask(self, to: Address, message: Message, *, timeout: float) -> Any:
        if not timeout > 0:
            raise ValueError(f"actor {self._address}: ask timeout must be > 0, got {timeout!r}")
        kernel = self._kernel
        return await kernel._ask(self._address,
                                 kernel._envelope(self, to, message, None, self._address),
                                 timeout)

    def schedule(self, delay: float, message: Message) -> TimerId:
        if delay < 0:
            raise ValueError(f"actor {self._address}: schedule({delay!r}) needs a delay >= 0")
        return self._kernel._set_timer(self, delay, message)

    def cancel(self, timer: TimerId) -> bool:
        if timer not in self.timers:
            return False
        scope = self.timers.pop(timer)
        if scope is not None:
            scope.cancel()
        return True  # a queued zero-delay timer is dropped when dequeued

    def spawn(
        self, factory: ActorFactory, name: str, *, restart: RestartPolicy | None = None
    ) -> Address:
        address = self._kernel.spawn(factory, name, restart=restart, parent=self._address)
        self.children[address] = None
        return address

    def stop(self, address: Address | None = None) -> None:
        self._kernel.stop(address if address is not None else self._address)

    def emit(self, event: object) -> None:
        self._kernel._emit(self._address, event, self.current)


_DRIVER = Address("kernel-driver")
"""The asker's address of :meth:`LiveKernel.ask` (from outside any actor)."""

# Real seconds between two attempts of a receipted publish that failed at once
# (a timeout has waited already): doubling from the first to the last, so a
# transport that keeps failing in no time is not asked again in a busy loop.
RETRY_PAUSE_FIRST = 0.05
RETRY_PAUSE_MAX = 2.0


def retry_pause(failures: int) -> float:
    """Real seconds to wait after the ``failures``-th immediate failure in a row (>= 1)."""
    return min(RETRY_PAUSE_FIRST * 2.0 ** (failures - 1), RETRY_PAUSE_MAX)


class LiveKernel(KernelRecords):
    """Runs actors as anyio tasks against the wall clock.

    Args:
        seed: seeds each actor's ``ctx.rng`` (None: OS entropy).
        speed: kernel seconds per real second (1.0 = real time).
        start_time: kernel time at start (e.g. ``time.time()`` for a
            deployment, 0.0 to compare with a simulation).
        mailbox_size: capacity of each actor's mailbox.
        send_timeout: how long (kernel seconds) a send waits on a full
            mailbox before the message is dead-lettered as ``mailbox_full``.
        trace: record structured trace events.
        default_restart: the restart policy of actors spawned without one.
        transport: where envelopes for addresses not spawned here go, and
            where envelopes for local actors come from (None: dead letters).
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        speed: float = 1.0,
        start_time: float = 0.0,
        mailbox_size: int = 1024,
        send_timeout: float = 5.0,
        trace: bool = False,
        default_restart: RestartPolicy | None = None,
        transport: Transport | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"LiveKernel speed must be > 0, got {speed!r}")
        if mailbox_size < 1:
            raise ValueError(f"LiveKernel mailbox_size must be >= 1, got {mailbox_size!r}")
        super().__init__(trace=trace)
        self.seed = seed
        self.speed = speed
        self.start_time = start_time
        self.mailbox_size = mailbox_size
        self.send_timeout = send_timeout
        self.default_restart = default_restart or RestartPolicy()
        self.delivered = 0
        self._cells: dict[str, _LiveCell] = {}
        self._asks: dict[str, _Reply] = {}
        self._run_id = uuid.uuid4().hex[:8]
        self._seq = 0
        self._timer_seq = 0
        self._inflight = 0
        # Due times (kernel seconds) of delayed posts and sleeping timers, by
        # message id: settle() waits for those due by the time it was called.
        self._delayed: dict[str, float] = {}
        self._timers_due: dict[str, float] = {}
        self._backoffs: dict[str, float] = {}  # by address: due time of a pending restart
        self._quiet = anyio.Event()
        self._t0 = 0.0
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        # Every task the kernel starts runs in a scope of its own, so shutdown
        # can cancel the kernel's work without cancelling the caller's code.
        self._scopes: set[anyio.CancelScope] = set()
        self._tasks_done = anyio.Event()
        self._closed = False
        self._transport = transport
        # Inbound deliveries waiting for their turn to complete, by message id.
        self._acks: dict[str, list[Delivery]] = {}
        # Ids of requests that came over the transport and await their answer.
        self._remote_asks: set[str] = set()
        # Turn sinks, and the arrival (kernel time) of each transport delivery
        # whose turn has not completed, kept only while a sink listens.
        self._turn_sinks: list[TurnSink] = []
        self._arrived: dict[str, float] = {}
        self._activate: Activator | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> LiveKernel:
        self._stack = AsyncExitStack()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._t0 = anyio.current_time()
        if self._transport is not None:
            self._start_task(self._receive_remote, self._transport, name="transport inbound")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._stack is None:
            raise KernelError("LiveKernel was not entered")
        if exc_type is None:
            await self.shutdown()
        else:
            self._cancel_tasks()
        return await self._stack.__aexit__(exc_type, exc, tb)

    def now(self) -> float:
        """Kernel time: ``start_time + elapsed real seconds * speed``."""
        return self.start_time + (anyio.current_time() - self._t0) * self.speed

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` kernel seconds (for drivers outside the actors)."""
        await anyio.sleep(delay / self.speed)

    async def drain(self, timeout: float) -> bool:
        """Wait (real seconds) until nothing is in flight (messages, delayed
        sends, pending starts and restarts, stops of idle actors); True if quiet."""
        with anyio.move_on_after(timeout):
            while self._inflight:
                if self._quiet.is_set():
                    self._quiet = anyio.Event()
                await self._quiet.wait()
            return True
        return False

    async def settle(self, timeout: float) -> bool:
        """Wait (real seconds) until the kernel has caught up with its clock.

        Settled means: every message and timer due by the time of the call
        has been delivered and handled, every spawned or restarting actor
        has run ``on_start``, every stop of an idle actor has taken effect.
        Delayed sends and timers due later are not waited for. A driver
        calls it between steps so that the next step follows the effects of
        the previous ones (causality), whatever the machine's load.
        True if settled within ``timeout``.
        """
        horizon = self.now()
        with anyio.move_on_after(timeout):
            while (self._inflight > len(self._delayed) + len(self._backoffs)
                   or any(due <= horizon for due in self._delayed.values())
                   or any(due <= horizon for due in self._timers_due.values())
                   or any(due <= horizon for due in self._backoffs.values())):
                await anyio.sleep(0.001)
            return True
        return False

    async def shutdown(self, *, drain_timeout: float = 5.0) -> None:
        """Graceful stop, idempotent.

        Drains in-flight messages (up to ``drain_timeout`` real seconds),
        asks every actor to stop after its current turn, and after a second
        ``drain_timeout`` cancels what is still running: the message being
        handled and whatever is queued or delayed become ``actor_stopped`` or
        ``cancelled`` dead letters, and every actor's ``on_stop`` runs.
        """
        if self._closed:
            return
        self._closed = True
        await self.drain(drain_timeout)
        for address in reversed(list(self._cells)):
            if address in self._cells:
                self.stop(address)
        with anyio.move_on_after(drain_timeout):
            while self._cells:
                await anyio.sleep(0.001)
        self._cancel_tasks()
        with anyio.move_on_after(drain_timeout):
            while self._scopes:
                self._tasks_done = anyio.Event()
                await self._tasks_done.wait()

    def _cancel_tasks(self) -> None:
        for scope in list(self._scopes):
            scope.cancel()

    def _start_task(self, func: Callable[..., Awaitable[None]], *args: Any, name: str) -> None:
        if self._tg is None:
            raise KernelError("LiveKernel needs a running kernel: use 'async with LiveKernel()'")
        scope = anyio.CancelScope()
        self._scopes.add(scope)

        async def run() -> None:
            try:
                with scope:
                    await func(*args)
            finally:
                self._scopes.discard(scope)
                if not self._scopes:
                    self._tasks_done.set()

        self._tg.start_soon(run, name=name)

    # -- public API -------------------------------------------------------------------

    def spawn(
        self,
        factory: ActorFactory,
        name: str,
        *,
        restart: RestartPolicy | None = None,
        parent: Address | None = None,
    ) -> Address:
        """Create an actor at address ``name`` and start its task."""
        if self._tg is None:
            raise KernelError("LiveKernel.spawn needs a running kernel: use 'async with LiveKernel()'")
        if name in self._cells:
            raise DuplicateAddress(name)
        address = Address(name)
        cell = _LiveCell(self, address, factory, restart or self.default_restart, parent,
                         self.mailbox_size)
        self._cells[name] = cell
        self._record("spawn", name, detail=type(cell.actor).__qualname__)
        self._inflight += 1  # its on_start, settled when it has run
        self._start_task(self._actor_task, cell, name=f"actor {name}")
        return address

    def tell(
        self, to: Address | str, message: Message, *, delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> str:
        """Send from outside without waiting; a full mailbox is waited on in
        the background. Returns the message id."""
        envelope = self._envelope(None, Address(to), message, correlation_id, None)
        cell = self._cells.get(to)
        if delay == 0 and cell is not None:
            try:
                cell.outbox.send_nowait(envelope)
            except anyio.WouldBlock:
                pass
            else:
                self._inflight += 1
                return envelope.message_id
        self._post_later(envelope, delay)
        return envelope.message_id

    async def send(
        self, to: Address | str, message: Message, *, correlation_id: str | None = None
    ) -> str:
        """Send from outside, waiting while the mailbox is full (back-pressure)."""
        envelope = self._envelope(None, Address(to), message, correlation_id, None)
        await self._post(envelope)
        return envelope.message_id

    def stop(self, address: Address | str) -> None:
        """Stop an actor after its current turn (at once if idle; a pending
        restart is abandoned)."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        cell.stop_requested = True
        if cell.backoff is not None:
            cell.backoff.cancel()
        if not cell.busy:
            try:
                cell.outbox.send_nowait(_WAKE)
            except (anyio.WouldBlock, anyio.ClosedResourceError):
                pass  # a full mailbox means the actor will look at the flag soon
            else:
                self._inflight += 1  # the stop, settled when the actor reads the wake

    async def ask(self, to: Address | str, message: Message, *, timeout: float) -> Any:
        """Ask the actor at ``to`` from outside any actor (an HTTP handler on
        this kernel's event loop) and return its handler's answer. The answer
        comes after the recipient's turn, so for a persistent actor after its
        commit: a failed commit raises here instead of answering.

        Args:
            timeout: kernel seconds to wait.

        Raises:
            AskTimeout: no answer in time (the message may still be handled).
            ActorNotFound: nothing runs at ``to`` (and no activator starts it).
            Exception: the handler's own exception.
        """
        if not timeout > 0:
            raise ValueError(f"ask timeout must be > 0, got {timeout!r}")
        return await self._ask(
            _DRIVER, self._envelope(None, Address(str(to)), message, None, _DRIVER), timeout)

    def add_turn_sink(self, sink: TurnSink) -> None:
        """Receive ``sink(envelope, latency)`` when the turn of an envelope that
        came over the transport completed (a persistent actor's turn: after its
        commit); ``latency`` is kernel seconds from its arrival off the
        transport. A sink's exception is recorded as a failure, not raised."""
        self._turn_sinks.append(sink)

    def set_activator(self, activate: Activator | None) -> None:
        """Start actors on demand for what comes for an address with no actor.

        An envelope for an address with no actor here (over the transport,
        from an actor or driver of this kernel, or queued for an actor that
        stopped itself meanwhile) is first offered to ``activate(address)``:
        a factory it returns is spawned at that address (its ``on_start``
        runs, e.g. restoring from a store) and then gets the envelope; None
        leaves the envelope to the transport (if any) or undeliverable
        (``unknown_address``). This is how a persistent actor that stopped
        (passivated) or was not running after a restart comes back when a
        message comes for it. Not during shutdown, and not for an actor that
        stopped because it failed. An ``activate`` that raises is recorded as
        a failure and counts as None.
        """
        self._activate = activate

    def is_running(self, address: Address | str) -> bool:
        """True while an actor is registered."""
        return address in self._cells

    def activate(self, address: Address | str) -> bool:
        """Make sure an actor runs at ``address``, as a delivery from outside
        would: True if one runs, or :meth:`set_activator`'s function started
        one now (its ``on_start`` runs before the first message it gets);
        False if none runs and none can be started there (no activator, it
        declines or raises, or the kernel is shutting down).

        For a caller that must know before delivering whether a message can
        be taken (an HTTP webhook answering "retry later" instead of letting
        it become an ``unknown_address`` dead letter), and for a watch over a
        store's due timers that brings a passivated actor back.
        """
        if address in self._cells:
            return True
        return self._activate is not None and self._activated(Address(str(address))) is not None

    def actor(self, address: Address | str) -> Actor:
        """The current instance at ``address``."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        return cell.actor

    # -- messaging ------------------------------------------------------------------

    def _envelope(
        self, sender: _LiveCell | None, to: Address, message: Message,
        correlation_id: str | None, reply_to: Address | None,
    ) -> Envelope:
        if not isinstance(message, Message):
            raise NotAMessage(sender.address if sender else "", to, message)
        self._seq += 1
        cause = sender.current if sender is not None else None
        return Envelope(
            f"{self._run_id}-{self._seq}",
            cause.message_id if cause is not None else None,
            correlation_id if correlation_id is not None
            else (cause.correlation_id if cause is not None else None),
            sender.address if sender is not None else None,
            to, self.now(), message, reply_to,
        )

    def _post_later(self, envelope: Envelope, delay: float,
                    receipt: Callable[[], None] | None = None) -> None:
        """Post from a background task (a delay, or a full mailbox to wait on).
        Counted in flight at once, so drain() cannot miss it."""
        if delay < 0:
            raise ValueError(f"send to {envelope.recipient}: delay must be >= 0, got {delay!r}")
        self._inflight += 1
        self._start_task(self._post, envelope, delay, True, receipt,
                         name=f"post {envelope.message_id}")

    async def _post(self, envelope: Envelope, delay: float = 0.0, counted: bool = False,
                    receipt: Callable[[], None] | None = None) -> None:
        # In flight from here until the receiving task has handled it (or it
        # is dead-lettered): drain() waits for the count to reach 0.
        if not counted:
            self._inflight += 1
        try:
            if delay:
                self._delayed[envelope.message_id] = self.now() + delay
                try:
                    await anyio.sleep(delay / self.speed)
                finally:
                    del self._delayed[envelope.message_id]
            while True:
                cell = self._cells.get(envelope.recipient)
                if cell is None and self._activate is not None and not self._closed:
                    # A passivated actor of this node comes back here, not by a
                    # round trip through the broker.
                    cell = self._activated(envelope.recipient)
                if cell is None:
                    if self._transport is not None:
                        if (await self._publish(self._transport, envelope,
                                                retry=receipt is not None)
                                and receipt is not None):
                            receipt()
                    else:
                        self._undeliverable(envelope, "unknown_address")
                    return
                if receipt is not None:  # given when the recipient's turn completes
                    self._acks.setdefault(envelope.message_id, []).append(
                        _Receipt(envelope, receipt))
                try:
                    cell.outbox.send_nowait(envelope)
                except anyio.WouldBlock:
                    try:
                        with anyio.move_on_after(self.send_timeout / self.speed):
                            await cell.outbox.send(envelope)
                            return
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        self._forget_delivery(envelope)
                        if self._passes_on(cell):
                            # It stopped itself while this waited for room:
                            # what its activator starts again takes it, as it
                            # takes what was already in the mailbox.
                            continue
                        raise
                    self._forget_delivery(envelope)
                    self._undeliverable(envelope, "mailbox_full")
                return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._forget_delivery(envelope)
            self._undeliverable(envelope, "actor_stopped")
        except BaseException:  # cancelled (shutdown, an ask's timeout): keep the message
            self._forget_delivery(envelope)
            self._dead(envelope, "cancelled")
            self._settle()
            raise

    async def _post_in_order(self, envelopes: list[Envelope]) -> None:
        """Post envelopes already counted in flight, one after the other."""
        for envelope in envelopes:
            await self._post(envelope, counted=True)

    async def _publish(self, transport: Transport, envelope: Envelope, *,
                       retry: bool = False) -> bool:
        """Hand an envelope for a non-local address to the transport; waits up
        to ``send_timeout`` for the broker's confirmation, as for a full
        mailbox. True once the broker confirmed it.

        With ``retry`` (a receipted send: its sender keeps it in an outbox
        until confirmed), a timeout or a retryable :class:`TransportError`
        (the connection broke, the transport reconnects) is followed by
        another attempt, under the same message id, until the broker confirms
        or the transport says it never will: the sender's turn waits
        (back-pressure) instead of leaving the entry for the next start. An
        attempt that failed without waiting is followed by a pause
        (:func:`retry_pause`, growing while the failures go on)."""
        confirmed = False
        failures = 0  # immediate failures in a row
        while True:
            error: OrderloomError | None = None
            try:
                with anyio.fail_after(self.send_timeout / self.speed):
                    await transport.publish(envelope)
            except TimeoutError:
                reason, retryable = "publish_timeout", True
            except TransportError as exc:
                reason, retryable, error = "publish_failed", exc.retryable, exc
            except OrderloomError as exc:  # NotOnTheWire: it never will
                reason, retryable, error = "publish_failed", False, exc
            else:
                self._record("publish", envelope.recipient, envelope)
                confirmed = True
                break
            if not (retry and retryable):
                self._dead(envelope, reason, error)
                break
            self._record("publish", envelope.recipient, envelope, f"retrying after {reason}")
            if reason == "publish_timeout":
                failures = 0
            else:
                failures += 1
                await anyio.sleep(retry_pause(failures))
        self._settle()
        return confirmed

    async def _receive_remote(self, transport: Transport) -> None:
        async for delivery in transport.deliveries():
            await self._deliver_remote(delivery)

    async def deliver(self, delivery: Delivery) -> None:
        """Hand an inbound envelope from outside (an HTTP webhook), ids and
        provenance kept, to its local actor, as a transport's delivery is:
        :meth:`Delivery.ack` is called once the recipient's turn completed
        (for a persistent actor: committed); a turn that fails never acks it.
        Waits while the mailbox is full. An envelope for an address with no
        actor here is dead-lettered (``unknown_address``) and acknowledged."""
        await self._deliver_remote(delivery)

    async def _deliver_remote(self, delivery: Delivery) -> None:
        """Put an inbound envelope, unchanged, in its actor's mailbox. A full
        mailbox is waited on however long it takes: the transport stops reading
        meanwhile (back-pressure), nothing is dropped. A reply to an ask goes
        to the waiting asker instead."""
        envelope = delivery.envelope
        if isinstance(envelope.body, KernelReply):
            self._reply_arrived(envelope, envelope.body)
            delivery.ack()  # an ask is answered once: a redelivery would be late anyway
            return
        if envelope.reply_to is not None:
            self._remote_asks.add(envelope.message_id)
        self._inflight += 1
        cell = self._cells.get(envelope.recipient)
        if cell is None and self._activate is not None:
            cell = self._activated(envelope.recipient)
        if cell is None:
            self._undeliverable(envelope, "unknown_address")
            delivery.ack()  # it would never succeed
            return
        if self._turn_sinks:
            self._arrived[envelope.message_id] = self.now()
        self._acks.setdefault(envelope.message_id, []).append(delivery)
        try:
            await cell.outbox.send(envelope)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._arrived.pop(envelope.message_id, None)
            self._undeliverable(envelope, "actor_stopped")  # not acked: redelivered later
        except BaseException:
            self._arrived.pop(envelope.message_id, None)
            self._forget_delivery(envelope)
            self._remote_asks.discard(envelope.message_id)
            self._dead(envelope, "cancelled")
            self._settle()
            raise

    def _activated(self, address: Address) -> _LiveCell | None:
        """The cell of an actor ``set_activator``'s function starts at ``address``."""
        assert self._activate is not None
        try:
            factory = self._activate(address)
        except Exception as exc:
            self._record_failure(address, None, exc, "recorded", hook="activate")
            return None
        if factory is None or self._closed:
            return None
        self.spawn(factory, address)
        return self._cells.get(address)

    def _acknowledge(self, envelope: Envelope) -> None:
        """The turn of ``envelope`` completed: acknowledge it if it came from the transport."""
        pending = self._acks.get(envelope.message_id)
        if pending is None:
            return
        for i, delivery in enumerate(pending):
            if delivery.envelope is envelope:
                del pending[i]
                if not pending:
                    del self._acks[envelope.message_id]
                if type(delivery) is _Receipt:
                    delivery.ack()  # a local send's receipt: the sender's outbox
                    return
                crash_point("ack.before")
                delivery.ack()
                crash_point("ack.after")
                return

    def _turned(self, cell: _LiveCell, envelope: Envelope, completed: bool) -> None:
        arrived = self._arrived.pop(envelope.message_id, None)
        if arrived is None or not completed:
            return
        latency = max(0.0, self.now() - arrived)
        for sink in self._turn_sinks:
            try:
                sink(envelope, latency)
            except Exception as exc:  # a metrics sink's bug is not the actor's failure
                self._record_failure(cell.address, None, exc, "recorded", hook="turn sink")

    def _forget_delivery(self, envelope: Envelope) -> None:
        """Drop the ack handle of a delivery whose turn will not complete: the
        broker redelivers it when the session resumes."""
        pending = self._acks.get(envelope.message_id)
        if pending is not None:
            pending[:] = [d for d in pending if d.envelope is not envelope]
            if not pending:
                del self._acks[envelope.message_id]

    def _settle(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._quiet.set()

    def _undeliverable(self, envelope: Envelope, reason: str) -> None:
        self._dead(envelope, reason)
        if self._acks:
            self._forget_delivery(envelope)
        # Only a missing or stopped actor is known to the asker at once; a
        # full mailbox looks like a slow service: the asker times out.
        if envelope.reply_to is not None and reason in ("unknown_address", "actor_stopped"):
            self._reply(envelope, None, ActorNotFound(envelope.recipient))
        self._settle()

    async def _ask(self, asker: Address, envelope: Envelope, timeout: float) -> Any:
        reply = _Reply()
        self._asks[envelope.message_id] = reply
        try:
            with anyio.fail_after(timeout / self.speed):
                await self._post(envelope)
                await reply.event.wait()
        except TimeoutError as exc:
            raise AskTimeout(
                asker, envelope.recipient, type(envelope.body).__qualname__,
                envelope.message_id, timeout,
            ) from exc
        finally:
            self._asks.pop(envelope.message_id, None)
        if reply.error is not None:
            raise reply.error
        return reply.value

    def _reply(self, request: Envelope, value: Any, error: BaseException | None) -> None:
        reply = self._asks.get(request.message_id)
        if reply is None:
            to, transport = request.reply_to, self._transport
            if request.message_id in self._remote_asks and to is not None \
                    and transport is not None:
                self._remote_asks.discard(request.message_id)
                self._inflight += 1  # settled once published (or dead-lettered)
                self._start_task(self._publish_reply, transport, request, to, value, error,
                                 name=f"reply {request.message_id}")
                return
            if error is None:
                self._dead(request, "late_reply")
            return
        reply.value = value
        reply.error = error
        reply.event.set()

    def _awaited(self, request: Envelope) -> bool:
        """Whether an asker, here or on another node, waits for ``request``'s answer."""
        return request.message_id in self._asks or request.message_id in self._remote_asks

    def _reply_envelope(self, request: Envelope, to: Address, value: Any,
                        error: BaseException | None) -> Envelope:
        if error is None and value is not None and not isinstance(value, Message):
            error = NotOnTheWire(type(value).__qualname__, "an answer to a remote ask must be "
                                 "a registered Message or None")
        body = (KernelReply(request_id=request.message_id, error=failure_of(error))
                if error is not None else KernelReply(request_id=request.message_id, value=value))
        self._seq += 1
        return Envelope(f"{self._run_id}-{self._seq}", request.message_id,
                        request.correlation_id, request.recipient, to, self.now(), body)

    async def _publish_reply(self, transport: Transport, request: Envelope, to: Address,
                             value: Any, error: BaseException | None) -> None:
        """Send the answer to a request that came over the transport back to its asker."""
        envelope = self._reply_envelope(request, to, value, error)
        try:
            with anyio.fail_after(self.send_timeout / self.speed):
                try:
                    await transport.publish(envelope)
                except NotOnTheWire as exc:
                    if error is not None or value is None:
                        raise
                    # The answer cannot travel (its type is not registered):
                    # the asker learns why instead of timing out.
                    self._dead(envelope, "publish_failed", exc)
                    envelope = self._reply_envelope(request, to, None, exc)
                    await transport.publish(envelope)
        except TimeoutError:
            self._dead(envelope, "publish_timeout")
        except OrderloomError as exc:  # NotOnTheWire, TransportError
            self._dead(envelope, "publish_failed", exc)
        else:
            self._record("publish", envelope.recipient, envelope)
        finally:
            self._settle()

    def _reply_arrived(self, envelope: Envelope, reply: KernelReply) -> None:
        """Complete the pending ask ``reply`` answers (a late one is dropped, as here)."""
        pending = self._asks.get(reply.request_id)
        if pending is None:
            if reply.error is None:
                self._dead(envelope, "late_reply")
            return
        if reply.error is not None:
            pending.error = error_for(envelope.sender or "", reply.request_id, reply.error)
        else:
            pending.value = reply.value
        pending.event.set()

    def _set_timer(self, cell: _LiveCell, delay: float, message: Message) -> TimerId:
        envelope = self._envelope(cell, cell.address, message, None, None)
        self._timer_seq += 1
        timer = TimerId(self._timer_seq)
        if delay == 0:
            # Due now: queued at once (as tell does), so it is in the mailbox
            # before the handler's next await, whatever the scheduler does.
            try:
                cell.outbox.send_nowait(envelope)
            except (anyio.WouldBlock, anyio.ClosedResourceError):
                pass  # a full mailbox: the timer task below waits on it
            else:
                self._inflight += 1
                cell.timers[timer] = None
                cell.fired[envelope.message_id] = (cell.incarnation, timer)
                self._record("timer", cell.address, envelope, "fired")
                return timer
        scope = anyio.CancelScope()
        cell.timers[timer] = scope
        self._timers_due[envelope.message_id] = self.now() + delay
        self._start_task(self._timer_task, cell, timer, scope, envelope, delay,
                         name=f"timer {timer}")
        return timer

    async def _timer_task(
        self, cell: _LiveCell, timer: TimerId, scope: anyio.CancelScope, envelope: Envelope,
        delay: float,
    ) -> None:
        try:
            with scope:
                await anyio.sleep(delay / self.speed)
            if (cell.timers.pop(timer, None) is None
                    or self._cells.get(cell.address) is not cell):
                return  # cancelled, or the actor stopped or restarted
            cell.fired[envelope.message_id] = (cell.incarnation, None)
            self._record("timer", cell.address, envelope, "fired")
            self._inflight += 1  # counted before settle() stops waiting for the timer
        finally:
            self._timers_due.pop(envelope.message_id, None)
        await self._post(envelope, counted=True)

    def _stale_timer(self, cell: _LiveCell, envelope: Envelope) -> bool:
        """True (and the timer dropped) if ``envelope`` is a timer's message
        that must not be delivered: set by a failed instance, or cancelled."""
        incarnation, timer = cell.fired.pop(envelope.message_id)
        if incarnation != cell.incarnation:
            self._record("timer", cell.address, envelope, "dropped: timer_of_failed_instance")
            return True
        if timer is not None:
            if timer not in cell.timers:
                self._record("timer", cell.address, envelope, "cancelled")
                return True
            del cell.timers[timer]
        return False

    # -- the actor task ---------------------------------------------------------------

    async def _actor_task(self, cell: _LiveCell) -> None:
        try:
            await self._actor_loop(cell)
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish_stop(cell)

    async def _actor_loop(self, cell: _LiveCell) -> None:
        """Start, handle messages one at a time, restart on failure: a loop,
        so a thousand restarts do not nest a thousand frames."""
        # Each start (spawn or restart) was counted in flight when it was
        # decided, and is settled once on_start has run (or failed).
        starting = True
        while True:
            if starting:
                starting = False
                cell.busy = True
                try:
                    await cell.actor.on_start()
                except Exception as exc:
                    if not await self._supervise(cell, None, exc):
                        return
                    starting = True
                    continue
                finally:
                    cell.busy = False
                    self._settle()
                cell.state = _RUNNING
            if cell.stop_requested:
                return
            item = await cell.inbox.receive()
            if isinstance(item, _Wake):
                self._settle()
                continue
            if cell.fired and item.message_id in cell.fired and self._stale_timer(cell, item):
                self._settle()
                continue
            cell.busy = True
            try:
                error = await self._handle(cell, item)
                if self._arrived:
                    self._turned(cell, item, error is None)
                if error is None:
                    if self._acks:
                        self._acknowledge(item)
                else:
                    if self._acks:
                        self._forget_delivery(item)
                    if not await self._supervise(cell, item, error):
                        return
                    starting = True
            finally:
                cell.busy = False
                self._settle()

    async def _handle(self, cell: _LiveCell, envelope: Envelope) -> Exception | None:
        """One turn; returns the exception supervision must act on, if any."""
        self.delivered += 1
        self._record("deliver", cell.address, envelope)
        actor = cell.actor
        message = envelope.body
        method = actor.handler_for(type(message))
        if method is None:
            error = UnhandledMessage(cell.address, type(message).__qualname__,
                                     envelope.message_id)
            self._record_failure(cell.address, envelope, error, "recorded")
            self._dead(envelope, "unhandled", error)
            if envelope.reply_to is not None:
                self._reply(envelope, None, error)
            return None
        # ``current`` stays set if the turn is cancelled (shutdown): then
        # _finish_stop dead-letters the message instead of losing it.
        cell.current = envelope
        try:
            result = await method(actor, message)
        except Exception as exc:
            cell.current = None
            if envelope.reply_to is not None and self._awaited(envelope):
                # pykka semantics: the exception goes back to the asker and
                # the actor carries on with its state.
                self._record_failure(cell.address, envelope, exc, "replied")
                self._reply(envelope, None, exc)
                return None
            return exc
        cell.current = None
        if envelope.reply_to is not None:
            self._reply(envelope, result, None)
        return None

    async def _supervise(
        self, cell: _LiveCell, envelope: Envelope | None, error: Exception
    ) -> bool:
        """Record a failure and restart the actor; False means stop it instead."""
        if envelope is not None:
            self._dead(envelope, "handler_failed", error)
        await self._inline_hook(
            cell, cell.actor.on_failure(error, envelope.body if envelope else None), "on_failure")
        budget = cell.budget
        if budget is None:
            budget = cell.budget = RestartBudget(cell.restart)
        delay = self._decide_restart(budget, cell.address, envelope, error,
                                     stop_requested=cell.stop_requested)
        if delay is None:
            cell.failed_with = error
            return False
        cell.state = _RESTARTING
        # The failed instance's timers never reach its successor: the
        # sleeping ones are cancelled here; fired ones still in the mailbox
        # carry the old incarnation and are dropped when dequeued.
        for scope in cell.timers.values():
            if scope is not None:
                scope.cancel()
        cell.timers.clear()
        cell.incarnation += 1
        # While it waits out the backoff, the failed message (or start) is
        # still in flight, but due at the restart: settle() does not wait for it.
        self._backoffs[cell.address] = self.now() + delay
        try:
            with anyio.CancelScope() as backoff:
                cell.backoff = backoff
                await anyio.sleep(delay / self.speed)
        finally:
            del self._backoffs[cell.address]
        cell.backoff = None
        if _stopping(cell):  # stop() may have come during the backoff
            return False
        self._record("restart", cell.address, detail=f"attempt {budget.attempts}")
        try:
            actor = cell.factory()
        except Exception as exc:  # e.g. its persisted state cannot be loaded
            self._record_failure(cell.address, None, exc, "stopped", hook="factory")
            cell.failed_with = exc
            return False
        actor.ctx = cell
        cell.actor = actor
        cell.state = _STARTING
        self._inflight += 1  # the successor's on_start
        return True

    async def _inline_hook(self, cell: _LiveCell, coro: Coroutine[Any, Any, Any], name: str) -> None:
        try:
            with anyio.fail_after(self.send_timeout / self.speed):
                await coro
        except Exception as exc:
            self._record_failure(cell.address, None, exc, "recorded", hook=name)

    async def _finish_stop(self, cell: _LiveCell) -> None:
        if cell.state == _STOPPED:
            return
        cell.state = _STOPPED
        if self._cells.get(cell.address) is cell:
            del self._cells[cell.address]
        for scope in cell.timers.values():
            if scope is not None:
                scope.cancel()
        cell.timers.clear()
        for child in list(cell.children):
            child_cell = self._cells.get(child)
            if child_cell is not None and child_cell.parent == cell.address:
                self.stop(child)
        parent = self._cells.get(cell.parent) if cell.parent is not None else None
        if parent is not None:
            parent.children.pop(cell.address, None)
        if cell.current is not None:  # cancelled mid-turn by shutdown
            self._dead(cell.current, "actor_stopped")
            if self._acks:
                self._forget_delivery(cell.current)
            if cell.current.reply_to is not None:
                self._reply(cell.current, None, ActorNotFound(cell.address))
            cell.current = None
        await self._inline_hook(cell, cell.actor.on_stop(), "on_stop")
        cell.outbox.close()
        handed_on: list[Envelope] = []
        # An actor that stopped itself (passivated, retired) may have been
        # sent more meanwhile: what its activator would start again takes it.
        successor: _LiveCell | None = None
        handover = self._passes_on(cell)
        while True:
            try:
                item = cell.inbox.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            if isinstance(item, Envelope):
                if handover and item.message_id not in cell.fired:
                    if successor is None:
                        successor = (self._cells.get(cell.address)
                                     or self._activated(cell.address))
                        handover = successor is not None
                    if successor is not None and self._hand_over(successor, item):
                        continue  # still in flight, now in the successor's mailbox
                if cell.fired.get(item.message_id, (0, None))[1] is not None:
                    # A zero-delay timer still cancellable: as under simulation,
                    # a timer not delivered by the stop is cancelled with it.
                    self._settle()
                elif handover and item.message_id not in cell.fired:
                    # The successor's mailbox is full: the rest still go to it
                    # (their receipts and acks with them), in their order, by
                    # one task below that waits. Still counted in flight. The
                    # stopped actor's own timers die with it.
                    handed_on.append(item)
                else:
                    self._undeliverable(item, "actor_stopped")
            else:
                self._settle()  # a wake the actor never read
        cell.inbox.close()
        if handed_on:
            self._start_task(self._post_in_order, handed_on, name=f"hand on {cell.address}")
        error = cell.failed_with
        self._record("stop", cell.address, detail="failed" if error else "")
        if error is not None:
            to = cell.parent
            notice = self._child_failed(
                cell.address, error,
                parent_running=to is not None and to in self._cells and not self._closed)
            if notice is not None and to is not None:
                self._post_later(self._envelope(None, to, notice, None, None), 0.0)
        # Break the actor <-> cell cycle (the cell is its ``ctx``): a stopped
        # actor is freed by reference counting at once.
        del cell.actor.ctx

    def _passes_on(self, cell: _LiveCell) -> bool:
        """Whether mail for ``cell``, which has stopped, goes to a successor (it
        stopped itself, not by failing, and an activator can start another)."""
        return cell.failed_with is None and not self._closed and self._activate is not None

    def _hand_over(self, successor: _LiveCell, envelope: Envelope) -> bool:
        """Put ``envelope`` (left in a stopped actor's mailbox) in its
        successor's; False if that mailbox is full or closed."""
        try:
            successor.outbox.send_nowait(envelope)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        self._record("handover", successor.address, envelope)
        return True


def _stopping(cell: _LiveCell) -> bool:
    # A function, so the type checker does not carry a narrowing of the flag
    # across the awaits in which another task may have set it.
    return cell.stop_requested
