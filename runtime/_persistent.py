"""Persistent actors: a turn is a transaction on a store, effects follow the commit.

A :class:`PersistentActor` keeps its state as the fold of its journal (a
stream in a :class:`~orderloom.runtime.Store`, named by its address). Each
turn (one message) runs the handler against the state, then commits in one
store transaction:

- the events the handler recorded (:meth:`PersistentActor.record`),
- the inbound message id (the inbox: a redelivered message is skipped),
- the messages it sent (the outbox), the telemetry it emitted,
- the timers it set or cancelled (durable: absolute due time, an id unique
  in the stream), and every ``snapshot_every`` events a snapshot.

Only after the commit are the effects released, in the order the handler
made them: sends and timers reach the kernel, telemetry the sinks. A sent
message leaves the outbox only once it is safe (its receiver committed the
turn that handled it, or the broker confirmed it): on a kernel that gives
receipts (:class:`ReceiptedSend`, the live kernel) each message goes out
with its entry id as its message id, so a receiver's inbox knows a
redelivery; a receiver on the same store takes the entry out of the outbox
in its own commit. A handler
that raises commits nothing and releases nothing; the kernel restarts the
actor, which restores from the store (snapshot, then the events after it)
and re-arms its pending durable timers (a timer due meanwhile fires at
once). So a crash at any point restores to the last commit and redoes
nothing twice.

It is written against the kernel contract only (:class:`Context`), so both
kernels run it the same way. Under the SimPy kernel the release happens in
the same handler call at the same virtual time and in the same order, so it
changes no event order. A persistent actor's handler may not ``await``
``ctx.sleep`` or ``ctx.ask``: other actors would run while its effects wait
for the commit (:class:`TurnSuspended`).

An actor whose ``passivate_after`` is set stops (passivates) once it has had
no turn for that long and :meth:`PersistentActor.quiescent` says nothing of
it lives only in memory: its journal and durable timers are in the store,
and whoever restarts it (a message through the live kernel's activator, a
watch over the store's due timers) gets the same actor back.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from ._contract import (
    Actor,
    ActorFactory,
    Address,
    Context,
    Envelope,
    Handler,
    Message,
    RestartPolicy,
    TimerId,
)
from ._crash import crash_point
from ._errors import KernelError
from ._store import DurableTimer, OutboxEntry, Snapshot, Store, StoreError, Turn

__all__ = ["PersistentActor", "ReceiptedSend", "TimerDue", "TurnSuspended"]

_WHOLE_OUTBOX = 1 << 30  # an actor's pending outbox is re-sent whole on restore

S = TypeVar("S")


class TurnSuspended(KernelError, RuntimeError):
    """A persistent actor's handler awaited the kernel in the middle of a turn.

    Attributes:
        actor: the actor's address.
        operation: ``sleep`` or ``ask``.
    """

    def __init__(self, actor: str, operation: str) -> None:
        self.actor = actor
        self.operation = operation
        super().__init__(
            f"persistent actor {actor} awaited ctx.{operation}() inside a turn: its effects are "
            "released only when the turn commits; schedule a timer or send a message instead")


@attrs.frozen(kw_only=True)
class TimerDue(Message):
    """A durable timer fired: ``message`` is delivered in a turn that also
    removes the timer from the store. Invariant: ``timer_id`` is the stored id."""

    timer_id: str
    message: Message


@runtime_checkable
class ReceiptedSend(Protocol):
    """A kernel context that tells when a sent message is safe: the live
    kernel's (the SimPy kernel runs persistent actors on a store that does
    not outlive the process, so it has no outbox to keep)."""

    async def send_with_receipt(
        self, to: Address, message: Message, *, message_id: str, on_delivered: Callable[[], None],
        delay: float = 0.0, correlation_id: str | None = None,
    ) -> None:
        """Send ``message`` as ``message_id``; call ``on_delivered`` once the
        recipient's turn for it completed or the transport confirmed it."""
        ...

    async def forward(self, to: Address, message: Message, *,
                      correlation_id: str | None = None) -> None:
        """Send ``message`` on; the message being handled is acknowledged
        (to the broker) once ``message`` is safe, not when the turn ends."""
        ...


@attrs.frozen(kw_only=True)
class _IdleCheck(Message):
    """Kernel timer (not durable, never on the wire): has the actor been idle
    for ``passivate_after``? Handled outside any turn."""


_IDLE_CHECK = _IdleCheck()


class _Turn:
    """What one turn has done so far, kept until its commit.

    Mutable on purpose and only ever changed by :class:`_TurnContext` and
    :meth:`PersistentActor.record`: it is the turn's buffer, dropped with a
    failed handler.
    """

    __slots__ = ("events", "effects", "sends", "timers_set", "timers_cancelled", "outbox_ids",
                 "passivate")

    def __init__(self) -> None:
        self.events: list[object] = []
        # In the order the handler made them: ("send", to, message, delay,
        # correlation), ("emit", event), ("arm", timer), ("disarm", timer id).
        self.effects: list[tuple[Any, ...]] = []
        self.sends = 0
        self.timers_set: dict[str, DurableTimer] = {}
        self.timers_cancelled: list[str] = []
        self.outbox_ids: tuple[str, ...] = ()
        self.passivate = False  # the actor stops itself in this turn


class _TurnContext:
    """The context a persistent actor sees: the kernel's, except that sends,
    timers and telemetry inside a turn wait for the commit."""

    __slots__ = ("_actor", "_kernel")

    def __init__(self, actor: PersistentActor[Any], kernel: Context) -> None:
        self._actor = actor
        self._kernel = kernel

    @property
    def address(self) -> Address:
        return self._kernel.address

    @property
    def envelope(self) -> Envelope | None:
        return self._kernel.envelope

    @property
    def rng(self) -> random.Random:
        return self._kernel.rng

    def now(self) -> float:
        return self._kernel.now()

    def new_id(self) -> str:
        return self._kernel.new_id()

    def sleep(self, delay: float) -> Awaitable[None]:
        if self._actor._turn is not None:
            raise TurnSuspended(self._kernel.address, "sleep")
        return self._kernel.sleep(delay)

    async def ask(self, to: Address, message: Message, *, timeout: float) -> Any:
        if self._actor._turn is not None:
            raise TurnSuspended(self._kernel.address, "ask")
        return await self._kernel.ask(to, message, timeout=timeout)

    async def send(self, to: Address, message: Message, *, delay: float = 0.0,
                   correlation_id: str | None = None) -> None:
        turn = self._actor._turn
        if turn is None:
            await self._kernel.send(to, message, delay=delay, correlation_id=correlation_id)
        else:
            turn.effects.append(("send", to, message, delay, correlation_id))
            turn.sends += 1

    def schedule(self, delay: float, message: Message) -> TimerId:
        if delay < 0:
            raise ValueError(f"actor {self.address}: schedule({delay!r}) needs a delay >= 0")
        return self._actor._set_timer(self._kernel.now() + delay, message)

    def cancel(self, timer: TimerId) -> bool:
        return self._actor._cancel_timer(timer)

    def spawn(self, factory: ActorFactory, name: str, *,
              restart: RestartPolicy | None = None) -> Address:
        return self._kernel.spawn(factory, name, restart=restart)

    def stop(self, address: Address | None = None) -> None:
        turn = self._actor._turn
        if turn is not None and (address is None or address == self._kernel.address):
            turn.passivate = True  # the commit tells the store the stream goes quiet
        self._kernel.stop(address)

    def emit(self, event: object) -> None:
        turn = self._actor._turn
        if turn is None:
            self._kernel.emit(event)
        else:
            turn.effects.append(("emit", event))


def _transactional(func: Handler) -> Handler:
    """The handler run as one turn of its persistent actor."""

    async def turn(actor: Any, message: Any) -> Any:
        return await actor._run_turn(func, message)

    turn.__wrapped__ = func  # type: ignore[attr-defined]
    turn.__name__ = getattr(func, "__name__", "turn")
    return turn


class PersistentActor(Actor, Generic[S]):
    """An actor whose state is the fold of its journal in a store.

    Subclasses give the pure part, :meth:`initial_state` and :meth:`evolve`,
    and handlers that :meth:`record` events (each is folded into
    :attr:`state` at once, so the rest of the turn sees it). Everything a
    later turn reads must be in :attr:`state`: attributes set elsewhere are
    lost with the instance.

    ``passivate_after`` (seconds, None by default: never), set by a subclass
    in ``__init__``: once the actor has had no turn for that long it stops,
    if nothing would be lost (see :meth:`quiescent` and the module docstring).

    Args:
        store: where the journal lives.
        stream: its name in the store (default: the actor's address).
    """

    __slots__ = ("store", "stream", "state", "version", "_kernel_ctx", "_ctx", "_turn", "_receipts",
                 "_receipted", "_pending", "_armed", "_handles", "_handle_of", "_handle_seq",
                 "_timer_seq", "_since_snapshot", "passivate_after", "_last_turn_at")

    snapshot_every: ClassVar[int] = 0
    """Write a snapshot after this many events since the last one (0: never),
    to a durable store; a store that is not durable gets one every turn that
    records events (see :meth:`_commit`)."""

    def __init__(self, store: Store, stream: str | None = None) -> None:
        self.store = store
        self.stream = stream or ""
        self.state: S = self.initial_state()
        self.version = 0
        self._turn: _Turn | None = None
        self._pending: dict[str, DurableTimer] = {}  # durable timers in the store
        self._armed: dict[str, TimerId] = {}  # durable id -> the kernel timer carrying it
        self._handles: dict[TimerId, str] = {}  # what schedule() returned -> durable id
        self._handle_of: dict[str, TimerId] = {}  # and back
        self._handle_seq = 0
        self._timer_seq = 0
        self._since_snapshot = 0
        # Seconds without a turn after which the actor passivates (None:
        # never); a subclass sets it in ``__init__``. See _idle_check.
        self.passivate_after: float | None = None
        self._last_turn_at = 0.0  # kernel time of the last turn (or start)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every handler runs as a turn. Inherited ones are wrapped already.
        table = {t: (f if hasattr(f, "__wrapped__") else _transactional(f))
                 for t, f in cls._handlers.items() if t is not _IdleCheck}
        table.setdefault(TimerDue, _transactional(PersistentActor._timer_due))
        table[_IdleCheck] = PersistentActor._idle_check  # no turn: it reads, or it stops
        cls._handlers = table
        cls._resolved = dict(table)

    # -- the pure part (subclasses) ---------------------------------------------------

    def initial_state(self) -> S:
        """The state of a stream with no events."""
        raise NotImplementedError

    def evolve(self, state: S, event: Any) -> S:
        """The state after ``event`` (pure: no context, no I/O)."""
        raise NotImplementedError

    # -- what handlers use --------------------------------------------------------------

    def record(self, event: object, folded: S | None = None) -> None:
        """Append ``event`` to this turn's events and fold it into :attr:`state`.

        Args:
            event: the event.
            folded: the state after ``event`` when the caller has computed it
                already (it must equal ``evolve(state, event)``: a restore
                folds the journal with :meth:`evolve`); None to fold here.

        Raises:
            KernelError: called outside a turn (in ``__init__`` or a hook).
        """
        turn = self._turn
        if turn is None:
            raise KernelError(f"persistent actor {self.stream}: record() outside a turn")
        self.state = self.evolve(self.state, event) if folded is None else folded
        turn.events.append(event)

    def quiescent(self) -> bool:
        """Whether the actor may passivate now, as far as the subclass knows:
        False while something it needs lives only in its attributes (and
        would be lost with the instance). The base class checks the rest
        (see :meth:`_idle_check`). Default: True."""
        return True

    def pending_timers(self) -> list[tuple[TimerId, Message]]:
        """The durable timers pending after the last commit (restored ones
        included) and not fired or cancelled in this turn, each with a handle
        :meth:`Context.cancel` accepts, in due order. A restored actor rebuilds what it keeps about its timers from this."""
        found: list[tuple[TimerId, Message]] = []
        turn = self._turn
        gone = set(turn.timers_cancelled) if turn is not None else set()
        for timer in sorted(self._pending.values(), key=lambda t: (t.due_at, t.timer_id)):
            if timer.timer_id in gone:
                continue  # fired or cancelled in this turn
            handle = self._handle_of.get(timer.timer_id)
            if handle is None:
                self._handle_seq += 1
                handle = TimerId(self._handle_seq)
                self._handles[handle] = timer.timer_id
                self._handle_of[timer.timer_id] = handle
            found.append((handle, timer.message))  # type: ignore[arg-type]
        return found

    # -- the context -----------------------------------------------------------------

    @property
    def ctx(self) -> Context:
        """The kernel's context, with sends, timers and telemetry held until the commit."""
        return self._ctx

    @ctx.setter
    def ctx(self, context: Context) -> None:
        self._kernel_ctx = context
        self._ctx = _TurnContext(self, context)
        self._receipts: ReceiptedSend | None = (
            context if self.store.durable and isinstance(context, ReceiptedSend) else None)
        # While a turn's sends are released: the entries delivered meanwhile,
        # marked in one store call at the end instead of one call each.
        self._receipted: list[str] | None = None
        if not self.stream:
            self.stream = context.address

    @ctx.deleter
    def ctx(self) -> None:
        del self._kernel_ctx, self._ctx, self._receipts, self._receipted

    # -- lifecycle ---------------------------------------------------------------------

    async def on_start(self) -> None:
        """Restore from the store: the snapshot, the events after it, the
        pending durable timers (re-armed), the unpublished outbox (sent).
        A subclass that overrides this must await ``super().on_start()`` first."""
        loaded = self.store.load(self.stream)
        # The store holds what this class stored: its own state and events.
        state: S = (loaded.snapshot.state if loaded.snapshot is not None  # type: ignore[assignment]
                    else self.initial_state())
        for recorded in loaded.events:
            state = self.evolve(state, recorded.event)
        self.state = state
        self.version = loaded.version
        self._since_snapshot = len(loaded.events)
        kernel = self._kernel_ctx
        prefix = f"{self.version}."
        self._timer_seq = 1 + max((int(t.timer_id[len(prefix):]) for t in loaded.timers
                                   if t.timer_id.startswith(prefix)), default=-1)
        for timer in loaded.timers:
            self._pending[timer.timer_id] = timer
            self._arm(timer)
        receipts = self._receipts
        if receipts is not None:
            # Committed, but not known to be safe when the process died: sent
            # again under the same id (a receiver that has it skips it).
            unpublished = self.store.pending_outbox(_WHOLE_OUTBOX, stream=self.stream)
            for entry in unpublished:
                await receipts.send_with_receipt(
                    Address(entry.recipient), entry.message,  # type: ignore[arg-type]
                    message_id=entry.entry_id, on_delivered=self._receipt(entry.entry_id),
                    correlation_id=entry.correlation_id)
            if unpublished:
                crash_point("restore.outbox")
        else:
            while self.store.durable:  # committed, but the process died before publishing
                unpublished = self.store.pending_outbox(256, stream=self.stream)
                if not unpublished:
                    break
                for entry in unpublished:
                    await kernel.send(Address(entry.recipient), entry.message,  # type: ignore[arg-type]
                                      correlation_id=entry.correlation_id)
                crash_point("restore.outbox")
                self.store.mark_published(e.entry_id for e in unpublished)
        crash_point("actor.after_restore")
        if self.passivate_after is not None:
            self._last_turn_at = kernel.now()  # idle from its start
            kernel.schedule(self.passivate_after, _IDLE_CHECK)

    def _receipt(self, entry_id: str) -> Callable[[], None]:
        """What marks ``entry_id`` published once its message is safe."""
        def delivered() -> None:
            batch = self._receipted
            if batch is not None:
                batch.append(entry_id)
            else:
                self._mark_published((entry_id,))
        return delivered

    def _mark_published(self, entry_ids: tuple[str, ...] | list[str]) -> None:
        try:
            self.store.mark_published(entry_ids)
        except StoreError:
            pass  # still pending: sent again on the next start, and skipped there

    # -- the turn ----------------------------------------------------------------------

    async def _run_turn(self, func: Handler, message: Message) -> Any:
        kernel = self._kernel_ctx
        envelope = kernel.envelope
        inbox = cause = None
        if isinstance(message, TimerDue):
            if message.timer_id not in self._pending:
                return None  # cancelled, or fired already: nothing to do
            crash_point("timer.after_fire")
            cause = message.timer_id
        elif envelope is not None:
            inbox = envelope.message_id
            if self.store.seen(self.stream, inbox):
                return None  # a redelivery of a message already committed
        if self.passivate_after is not None:
            self._last_turn_at = kernel.now()
        turn = self._turn = _Turn()
        before = self.state
        try:
            result = await func(self, message)
        except BaseException:
            self.state = before
            raise
        finally:
            self._turn = None
        try:
            self._commit(turn, inbox, cause, kernel)
        except BaseException:
            # Nothing of the turn was recorded (a commit is atomic): the state
            # goes back with it, so an actor that carries on (an asked turn's
            # failure goes to the asker) never holds what its journal lacks.
            self.state = before
            raise
        crash_point("turn.after_commit")
        await self._release(turn, kernel)
        return result

    async def _timer_due(self, message: TimerDue) -> None:
        """A durable timer fired: remove it and handle its message in this turn."""
        turn = self._turn
        assert turn is not None  # only ever run by _run_turn
        turn.timers_cancelled.append(message.timer_id)
        self._armed.pop(message.timer_id, None)
        handle = self._handle_of.pop(message.timer_id, None)
        if handle is not None:
            del self._handles[handle]
        inner = message.message
        method = type(self).handler_for(type(inner))
        if method is None:
            raise KernelError(f"persistent actor {self.stream}: no handler for the timer "
                              f"message {type(inner).__qualname__}")
        await getattr(method, "__wrapped__", method)(self, inner)

    async def _idle_check(self, message: _IdleCheck) -> None:
        """Passivate if the actor has had no turn for ``passivate_after`` and
        nothing of it lives only in memory; otherwise check again later.

        Nothing may be lost by stopping: the subclass is :meth:`quiescent`,
        the store holds no unpublished outbox entry of the stream (its
        restore would publish it, but nothing restores an actor for that),
        and no durable timer is due within ``passivate_after`` (it would
        bring the actor back at once). The stop is a commit of its own that
        tells the store the stream goes quiet (:attr:`Turn.passivate`).
        """
        after = self.passivate_after
        if after is None:
            return
        kernel = self._kernel_ctx
        now = kernel.now()
        idle_until = self._last_turn_at + after
        if now < idle_until:
            kernel.schedule(idle_until - now, _IDLE_CHECK)
            return
        horizon = now + after
        if (not self.quiescent()
                or any(t.due_at <= horizon for t in self._pending.values())
                or (self.store.durable and self.store.pending_outbox(1, stream=self.stream))):
            kernel.schedule(after, _IDLE_CHECK)
            return
        turn = _Turn()
        turn.passivate = True
        self._commit(turn, None, None, kernel)
        kernel.stop()

    def _commit(self, turn: _Turn, inbox: str | None, cause: str | None,
                kernel: Context) -> None:
        events = tuple(turn.events)
        store = self.store
        outbox: tuple[OutboxEntry, ...] = ()
        if turn.sends and store.durable:
            stream, version = self.stream, self.version
            # The entry id is the message id on the wire, so it is unique for
            # ever (a receiver's inbox keeps it), not only among pending
            # entries, and a valid wire id (no '/'). The stream and version
            # alone repeat over turns that record no event; the turn's own
            # message (or timer) does not.
            tag = hashlib.blake2b(f"{stream}\n{inbox or cause or ''}".encode(),
                                  digest_size=10).hexdigest()
            outbox = tuple(
                OutboxEntry(entry_id=f"{version}.{tag}.{i}", stream=stream,
                            recipient=effect[1], message=effect[2], correlation_id=effect[4])
                for i, effect in enumerate(e for e in turn.effects if e[0] == "send"))
        snapshot = None
        since = self._since_snapshot + len(events)
        # A store that does not outlive the process (MemoryStore) keeps the
        # objects it is given: a snapshot there is a reference to the state
        # the actor holds anyway, so every turn that records events takes one,
        # and a store that keeps no history then holds no event of it at all.
        if (events and not store.durable) or (self.snapshot_every and since >= self.snapshot_every):
            snapshot = Snapshot(version=self.version + len(events), state=self.state)
            since = 0
        timers_set, cancelled = turn.timers_set, turn.timers_cancelled
        if not (events or inbox or outbox or timers_set or cancelled or turn.passivate):
            return
        crash_point("turn.before_commit")
        store.commit(self.stream, Turn(
            expected_version=self.version, events=events, inbox_id=inbox, outbox=outbox,
            timers_set=tuple(timers_set.values()) if timers_set else (),
            timers_cancelled=tuple(cancelled), snapshot=snapshot, recorded_at=kernel.now(),
            passivate=turn.passivate))
        self.version += len(events)
        self._since_snapshot = since
        if cancelled or timers_set:
            for timer_id in cancelled:
                self._pending.pop(timer_id, None)
            self._pending.update(timers_set)
        if outbox:
            turn.outbox_ids = tuple(e.entry_id for e in outbox)

    async def _release(self, turn: _Turn, kernel: Context) -> None:
        receipts = self._receipts if turn.outbox_ids else None
        if receipts is not None:
            self._receipted = []
            try:
                await self._release_effects(turn, kernel, receipts)
            finally:
                delivered, self._receipted = self._receipted, None
                if delivered:
                    self._mark_published(delivered)
        else:
            await self._release_effects(turn, kernel, None)

    async def _release_effects(self, turn: _Turn, kernel: Context,
                               receipts: ReceiptedSend | None) -> None:
        sent = 0
        for effect in turn.effects:
            kind = effect[0]
            if kind == "send":
                crash_point("outbox.mid" if sent else "outbox.before_publish")
                if receipts is not None:
                    entry_id = turn.outbox_ids[sent]
                    await receipts.send_with_receipt(
                        effect[1], effect[2], message_id=entry_id,
                        on_delivered=self._receipt(entry_id), delay=effect[3],
                        correlation_id=effect[4])
                else:
                    await kernel.send(effect[1], effect[2], delay=effect[3],
                                      correlation_id=effect[4])
                sent += 1
            elif kind == "emit":
                kernel.emit(effect[1])
            elif kind == "arm":
                if effect[1].timer_id in self._pending:
                    self._arm(effect[1])
            else:  # "disarm"
                armed = self._armed.pop(effect[1], None)
                if armed is not None:
                    kernel.cancel(armed)
        if turn.outbox_ids:
            crash_point("outbox.after_publish")
            if receipts is None:
                self.store.mark_published(turn.outbox_ids)

    # -- durable timers ----------------------------------------------------------------

    def _set_timer(self, due_at: float, message: Message) -> TimerId:
        timer = DurableTimer(timer_id=f"{self.version}.{self._timer_seq}", stream=self.stream,
                             due_at=due_at, message=message)
        turn = self._turn
        if turn is None:
            raise KernelError(f"persistent actor {self.stream}: a timer is set in a turn "
                              "(on_start and other hooks run outside one)")
        self._timer_seq += 1
        self._handle_seq += 1
        handle = TimerId(self._handle_seq)
        self._handles[handle] = timer.timer_id
        self._handle_of[timer.timer_id] = handle
        turn.timers_set[timer.timer_id] = timer
        turn.effects.append(("arm", timer))
        return handle

    def _cancel_timer(self, handle: TimerId) -> bool:
        timer_id = self._handles.pop(handle, None)
        if timer_id is not None:
            del self._handle_of[timer_id]
        turn = self._turn
        if timer_id is None or turn is None:
            return False
        if turn.timers_set.pop(timer_id, None) is not None:
            return True  # set and cancelled in the same turn: never stored
        if timer_id not in self._pending:
            return False
        turn.timers_cancelled.append(timer_id)
        turn.effects.append(("disarm", timer_id))
        return True

    def _arm(self, timer: DurableTimer) -> None:
        kernel = self._kernel_ctx
        delay = max(0.0, timer.due_at - kernel.now())
        self._armed[timer.timer_id] = kernel.schedule(
            delay, TimerDue(timer_id=timer.timer_id, message=timer.message))  # type: ignore[arg-type]

