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
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Coroutine
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
    ChildFailed,
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
    UnhandledMessage,
)
from ._records import KernelRecords

__all__ = ["LiveKernel"]

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
        self.restarts: list[float] = []
        self.timers: dict[int, anyio.CancelScope] = {}
        self.children: list[Address] = []
        seed = kernel.seed
        self._rng = random.Random(f"{seed}/{address}") if seed is not None else random.Random()

    # -- the Context protocol -------------------------------------------------

    @property
    def address(self) -> Address:
        return self._address

    @property
    def envelope(self) -> Envelope | None:
        return self.current

    @property
    def rng(self) -> random.Random:
        return self._rng

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
        await kernel._post(kernel._envelope(self, to, message, correlation_id, None), delay)

    async def ask(self, to: Address, message: Message, *, timeout: float) -> Any:
        if not timeout > 0:
            raise ValueError(f"actor {self._address}: ask timeout must be > 0, got {timeout!r}")
        kernel = self._kernel
        return await kernel._ask(self, kernel._envelope(self, to, message, None, self._address),
                                 timeout)

    def schedule(self, delay: float, message: Message) -> TimerId:
        if delay < 0:
            raise ValueError(f"actor {self._address}: schedule({delay!r}) needs a delay >= 0")
        return self._kernel._set_timer(self, delay, message)

    def cancel(self, timer: TimerId) -> bool:
        scope = self.timers.pop(timer, None)
        if scope is None:
            return False
        scope.cancel()
        return True

    def spawn(
        self, factory: ActorFactory, name: str, *, restart: RestartPolicy | None = None
    ) -> Address:
        address = self._kernel.spawn(factory, name, restart=restart, parent=self._address)
        self.children.append(address)
        return address

    def stop(self, address: Address | None = None) -> None:
        self._kernel.stop(address if address is not None else self._address)

    def emit(self, event: object) -> None:
        self._kernel._emit(self._address, event)


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
        self._quiet = anyio.Event()
        self._t0 = 0.0
        self._tg: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> LiveKernel:
        self._stack = AsyncExitStack()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._t0 = anyio.current_time()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._stack is not None and self._tg is not None, "kernel was not entered"
        if exc_type is None:
            await self.shutdown()
        else:
            self._tg.cancel_scope.cancel()
        return await self._stack.__aexit__(exc_type, exc, tb)

    def now(self) -> float:
        """Kernel time: ``start_time + elapsed real seconds * speed``."""
        return self.start_time + (anyio.current_time() - self._t0) * self.speed

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` kernel seconds (for drivers outside the actors)."""
        await anyio.sleep(delay / self.speed)

    async def drain(self, timeout: float) -> bool:
        """Wait (real seconds) until no message is in flight; True if quiet."""
        with anyio.move_on_after(timeout):
            while self._inflight:
                self._quiet = anyio.Event()
                await self._quiet.wait()
            return True
        return False

    async def shutdown(self, *, drain_timeout: float = 5.0) -> None:
        """Graceful stop: drain in-flight messages (up to ``drain_timeout``
        real seconds), stop every actor (``on_stop``), dead-letter what is
        left, cancel timers."""
        await self.drain(drain_timeout)
        for address in reversed(list(self._cells)):
            if address in self._cells:
                self.stop(address)
        with anyio.move_on_after(drain_timeout):
            while self._cells:
                await anyio.sleep(0.001)
        assert self._tg is not None
        self._tg.cancel_scope.cancel()

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
        self._tg.start_soon(self._actor_task, cell, name=f"actor {name}")
        return address

    def tell(
        self, to: Address | str, message: Message, *, delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> str:
        """Send from outside without waiting; a full mailbox is waited on in
        the background. Returns the message id."""
        envelope = self._envelope(None, Address(to), message, correlation_id, None)
        assert self._tg is not None, "kernel was not entered"
        cell = self._cells.get(to)
        if delay == 0 and cell is not None:
            try:
                cell.outbox.send_nowait(envelope)
            except anyio.WouldBlock:
                pass
            else:
                self._inflight += 1
                return envelope.message_id
        self._tg.start_soon(self._post, envelope, delay)
        return envelope.message_id

    async def send(
        self, to: Address | str, message: Message, *, correlation_id: str | None = None
    ) -> str:
        """Send from outside, waiting while the mailbox is full (back-pressure)."""
        envelope = self._envelope(None, Address(to), message, correlation_id, None)
        await self._post(envelope, 0.0)
        return envelope.message_id

    def stop(self, address: Address | str) -> None:
        """Stop an actor after its current turn (at once if idle)."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        cell.stop_requested = True
        if not cell.busy:
            try:
                cell.outbox.send_nowait(_WAKE)
            except (anyio.WouldBlock, anyio.ClosedResourceError):
                pass  # a full mailbox means the actor will look at the flag soon

    def is_running(self, address: Address | str) -> bool:
        """True while an actor is registered."""
        return address in self._cells

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

    async def _post(self, envelope: Envelope, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"send to {envelope.recipient}: delay must be >= 0, got {delay!r}")
        # Counted in flight from here until the receiving task has handled
        # it (or it is dead-lettered): drain() waits for the count to be 0.
        self._inflight += 1
        try:
            if delay:
                await anyio.sleep(delay / self.speed)
            cell = self._cells.get(envelope.recipient)
            if cell is None:
                self._undeliverable(envelope, "unknown_address")
                return
            try:
                cell.outbox.send_nowait(envelope)
            except anyio.WouldBlock:
                with anyio.move_on_after(self.send_timeout / self.speed):
                    await cell.outbox.send(envelope)
                    return
                self._undeliverable(envelope, "mailbox_full")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._undeliverable(envelope, "actor_stopped")
        except BaseException:
            self._settle()
            raise

    def _settle(self) -> None:
        self._inflight -= 1
        if self._inflight == 0:
            self._quiet.set()

    def _undeliverable(self, envelope: Envelope, reason: str) -> None:
        self._dead(envelope, reason)
        if envelope.reply_to is not None:
            self._reply(envelope, None, ActorNotFound(envelope.recipient))
        self._settle()

    async def _ask(self, cell: _LiveCell, envelope: Envelope, timeout: float) -> Any:
        reply = _Reply()
        self._asks[envelope.message_id] = reply
        try:
            with anyio.fail_after(timeout / self.speed):
                await self._post(envelope, 0.0)
                await reply.event.wait()
        except TimeoutError as exc:
            raise AskTimeout(
                cell.address, envelope.recipient, type(envelope.body).__qualname__,
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
            if error is None:
                self._dead(request, "late_reply")
            return
        reply.value = value
        reply.error = error
        reply.event.set()

    def _set_timer(self, cell: _LiveCell, delay: float, message: Message) -> TimerId:
        envelope = self._envelope(cell, cell.address, message, None, None)
        self._timer_seq += 1
        timer = TimerId(self._timer_seq)
        scope = anyio.CancelScope()
        cell.timers[timer] = scope
        assert self._tg is not None
        self._tg.start_soon(self._timer_task, cell, timer, scope, envelope, delay)
        return timer

    async def _timer_task(
        self, cell: _LiveCell, timer: TimerId, scope: anyio.CancelScope, envelope: Envelope,
        delay: float,
    ) -> None:
        with scope:
            await anyio.sleep(delay / self.speed)
        if cell.timers.pop(timer, None) is None or self._cells.get(cell.address) is not cell:
            return  # cancelled, or the actor stopped
        self._record("timer", cell.address, envelope, "fired")
        await self._post(envelope, 0.0)

    # -- the actor task ---------------------------------------------------------------

    async def _actor_task(self, cell: _LiveCell) -> None:
        await self._start(cell)
        while not cell.stop_requested and cell.state != _STOPPED:
            item = await cell.inbox.receive()
            if isinstance(item, _Wake):
                continue
            cell.busy = True
            try:
                await self._handle(cell, item)
            finally:
                cell.busy = False
                self._settle()
        await self._finish_stop(cell)

    async def _start(self, cell: _LiveCell) -> None:
        cell.busy = True
        try:
            await cell.actor.on_start()
        except Exception as exc:
            await self._failed(cell, None, exc)
        else:
            cell.state = _RUNNING
        finally:
            cell.busy = False

    async def _handle(self, cell: _LiveCell, envelope: Envelope) -> None:
        self.delivered += 1
        self._record("deliver", cell.address, envelope)
        actor = cell.actor
        message = envelope.body
        method = actor.handler_for(type(message))
        cell.current = envelope
        try:
            if method is None:
                error = UnhandledMessage(cell.address, type(message).__qualname__,
                                         envelope.message_id)
                self._record_failure(cell.address, envelope, error, "recorded")
                self._dead(envelope, "unhandled", error)
                if envelope.reply_to is not None:
                    self._reply(envelope, None, error)
                return
            try:
                result = await method(actor, message)
            except Exception as exc:
                await self._failed(cell, envelope, exc)
            else:
                if envelope.reply_to is not None:
                    self._reply(envelope, result, None)
        finally:
            cell.current = None

    async def _failed(self, cell: _LiveCell, envelope: Envelope | None, error: Exception) -> None:
        if envelope is not None and envelope.reply_to is not None \
                and envelope.message_id in self._asks:
            self._record_failure(cell.address, envelope, error, "replied")
            self._reply(envelope, None, error)
            if cell.state == _STARTING:
                cell.state = _RUNNING
            return
        if envelope is not None:
            self._dead(envelope, "handler_failed", error)
        await self._inline_hook(cell, cell.actor.on_failure(error, envelope.body if envelope else None),
                                "on_failure")
        policy = cell.restart
        now = self.now()
        recent = [t for t in cell.restarts if now - t < policy.window]
        if cell.stop_requested or len(recent) >= policy.max_restarts:
            self._record_failure(cell.address, envelope, error, "stopped")
            cell.failed_with = error
            cell.stop_requested = True
            return
        recent.append(now)
        cell.restarts = recent
        self._record_failure(cell.address, envelope, error, "restarted")
        cell.state = _RESTARTING
        await anyio.sleep(policy.delay(len(recent)) / self.speed)
        self._record("restart", cell.address, detail=f"attempt {len(recent)}")
        cell.actor = cell.factory()
        cell.actor.ctx = cell
        cell.state = _STARTING
        await self._start(cell)

    async def _inline_hook(self, cell: _LiveCell, coro: Coroutine[Any, Any, Any], name: str) -> None:
        try:
            with anyio.fail_after(self.send_timeout / self.speed):
                await coro
        except Exception as exc:
            self._record_failure(cell.address, None, exc, "recorded", hook=name)

    async def _finish_stop(self, cell: _LiveCell) -> None:
        cell.state = _STOPPED
        self._cells.pop(cell.address, None)
        for scope in cell.timers.values():
            scope.cancel()
        cell.timers.clear()
        for child in cell.children:
            if child in self._cells:
                self.stop(child)
        await self._inline_hook(cell, cell.actor.on_stop(), "on_stop")
        cell.outbox.close()
        while True:
            try:
                item = cell.inbox.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            if isinstance(item, Envelope):
                self._dead(item, "actor_stopped")
                if item.reply_to is not None:
                    self._reply(item, None, ActorNotFound(cell.address))
                self._settle()
        cell.inbox.close()
        error = cell.failed_with
        self._record("stop", cell.address, detail="failed" if error else "")
        if error is not None:
            notice = ChildFailed(child=cell.address, error=repr(error))
            if cell.parent is not None and cell.parent in self._cells:
                await self._post(self._envelope(None, cell.parent, notice, None, None), 0.0)
            else:
                self.escalations.append(notice)
