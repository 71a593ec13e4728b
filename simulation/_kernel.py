"""The SimPy kernel: actor coroutines driven in virtual time.

Design (measured, see ``bench/kernel.py``): there is no SimPy process per
actor. A delivery is a triggered SimPy event with one callback; when it fires
the kernel either appends the envelope to the actor's mailbox (the actor is
busy) or runs the handler coroutine at once. A handler that suspends yields
one of the ops in :mod:`._ops`; the kernel turns it into a SimPy event whose
callback resumes the coroutine. Idle actors cost no events at all.

Every event is pushed on SimPy's queue as ``Environment.schedule`` would
push it, so the total order of deliveries is SimPy's ``(time, priority,
sequence)``; :meth:`SimKernel.run` pops it in that order. With ``shuffle=True``
the priority of each delivery is drawn from a seeded stream, which reorders
same-time deliveries (and only those) reproducibly.
"""

from __future__ import annotations

import fnmatch
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.core import StopSimulation
from simpy.events import URGENT, Event

from orderloom.runtime import (
    Actor,
    ActorFactory,
    ActorNotFound,
    Address,
    AskTimeout,
    DuplicateAddress,
    KernelRecords,
    Envelope,
    ForeignAwaitable,
    Message,
    NotAMessage,
    RestartBudget,
    RestartPolicy,
    TimerId,
    UnhandledMessage,
)

from ._faults import LinkFaults
from ._ops import AskOp, SleepOp

# A link rule: its faults, its own seeded stream, and its window [start, end).
_LinkRule = tuple[LinkFaults, random.Random, float, float]

__all__ = ["SimKernel"]

# Cell states.
_STARTING = 0  # on_start has not finished; deliveries queue
_RUNNING = 1
_RESTARTING = 2  # waiting out a restart backoff; deliveries queue
_DOWN = 3  # taken down by a fault; deliveries are dead-lettered
_STOPPED = 4

_NORMAL = 1
_URGENT = 0

_new_envelope = tuple.__new__


class _TimerEnvelope(Envelope):
    """The envelope of a timer's message: an :class:`Envelope` that a restart
    can tell apart in the mailbox (a failed instance's fired timers never
    reach its successor). Built like an envelope, at the same cost."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Envelope" + Envelope.__repr__(self)[len("_TimerEnvelope"):]


class _Scheduled(Event):
    """A SimPy event triggered at creation, with a single kernel callback.

    Made by :func:`_schedule`, never by calling the class.
    """


def _schedule(
    env: simpy.Environment, value: Any, callback: Callable[[Any], None], priority: int,
    delay: float,
) -> None:
    """Put a :class:`_Scheduled` on ``env``'s queue, due in ``delay``.

    It does what ``simpy.Timeout(env, delay, value)`` does, but lets the kernel
    choose the priority, skips the per-event closure and costs one Python call
    (a class with an ``__init__`` costs two here, ``env.schedule`` one more).
    """
    event = _new_scheduled(_Scheduled)
    event.env = env
    event.callbacks = [callback]
    event._value = value
    event._ok = True
    # What ``env.schedule`` does (the priority is a plain int, not SimPy's
    # EventPriority NewType).
    heappush(env._queue, (env._now + delay, priority, next(env._eid), event))  # type: ignore[misc]


_new_scheduled = object.__new__


class _PendingAsk:
    __slots__ = ("cell", "coro", "timeout", "target", "message_type")

    def __init__(
        self, cell: _SimCell, coro: Coroutine[Any, Any, Any], timeout: float,
        target: str, message_type: str,
    ) -> None:
        self.cell = cell
        self.coro = coro
        self.timeout = timeout
        self.target = target
        self.message_type = message_type


class _SimCell:
    """One actor's slot in the kernel; it is also the actor's ``ctx``."""

    __slots__ = (
        "_kernel", "_address", "actor", "factory", "restart", "parent", "mailbox",
        "state", "coro", "current", "_rng", "budget", "timers", "children",
        "stop_requested", "incarnation",
    )

    def __init__(
        self, kernel: SimKernel, address: Address, actor: Actor, factory: ActorFactory,
        restart: RestartPolicy, parent: Address | None,
    ) -> None:
        self._kernel = kernel
        self._address = address
        self.actor = actor
        self.factory = factory
        self.restart = restart
        self.parent = parent
        self.mailbox: deque[Envelope] | None = None  # created on first queueing
        self.state = _STARTING
        self.coro: Coroutine[Any, Any, Any] | None = None
        self.current: Envelope | None = None
        self._rng: random.Random | None = None
        self.incarnation = 0  # bumped on every restart/crash: stale events compare it
        self.budget: RestartBudget | None = None  # created on the first failure
        self.timers: set[int] | None = None
        self.children: dict[Address, None] | None = None  # ordered set: O(1) removal
        self.stop_requested = False

    # -- the Context protocol -------------------------------------------------

    @property
    def address(self) -> Address:
        return self._address

    @property
    def envelope(self) -> Envelope | None:
        return self.current

    @property
    def rng(self) -> random.Random:
        # Created lazily: a Random holds 2.5 KB of state, more than an idle
        # actor is allowed to cost.
        rng = self._rng
        if rng is None:
            rng = self._rng = random.Random(f"{self._kernel.seed}/{self._address}")
        return rng

    def now(self) -> float:
        return self._kernel.env._now  # not the ``now`` property: handlers call this often

    def new_id(self) -> str:
        # A kernel-wide counter: an address can be reused by a later actor.
        kernel = self._kernel
        kernel._id_seq += 1
        return f"{self._address}:{kernel._id_seq}"

    def sleep(self, delay: float) -> SleepOp:
        if delay < 0:
            raise ValueError(f"actor {self._address}: sleep({delay!r}) needs a delay >= 0")
        return SleepOp(delay)

    async def send(
        self, to: Address, message: Message, *, delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> None:
        kernel = self._kernel
        kernel._post(kernel._envelope(self, to, message, correlation_id, None), delay)

    async def ask(self, to: Address, message: Message, *, timeout: float) -> Any:
        if not timeout > 0:
            raise ValueError(f"actor {self._address}: ask timeout must be > 0, got {timeout!r}")
        envelope = self._kernel._envelope(self, to, message, None, self._address)
        return await AskOp(envelope, timeout)

    def schedule(self, delay: float, message: Message) -> TimerId:
        if delay < 0:
            raise ValueError(f"actor {self._address}: schedule({delay!r}) needs a delay >= 0")
        return self._kernel._set_timer(self, delay, message)

    def cancel(self, timer: TimerId) -> bool:
        timers = self.timers
        if timers is None or timer not in timers:
            return False
        timers.discard(timer)
        self._kernel._timer_dropped()
        return True

    def spawn(
        self, factory: ActorFactory, name: str, *, restart: RestartPolicy | None = None
    ) -> Address:
        address = self._kernel.spawn(factory, name, restart=restart, parent=self._address)
        if self.children is None:
            self.children = {}
        self.children[address] = None
        return address

    def stop(self, address: Address | None = None) -> None:
        self._kernel.stop(address if address is not None else self._address)

    def emit(self, event: object) -> None:
        self._kernel._emit(self._address, event, self.current)


class SimKernel(KernelRecords):
    """Runs actors in SimPy virtual time, deterministically from a seed.

    Args:
        seed: the run seed; per-actor ``ctx.rng`` streams and fault streams
            derive from it.
        shuffle: reorder same-time deliveries with a seeded stream.
        trace: record every delivery, timer, restart and dead letter as
            :class:`~orderloom.runtime.TraceEvent` in :attr:`trace`.
        env: an existing SimPy environment to share (default: a new one).
        default_restart: the restart policy of actors spawned without one.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        shuffle: bool = False,
        trace: bool = False,
        env: simpy.Environment | None = None,
        default_restart: RestartPolicy | None = None,
    ) -> None:
        super().__init__(trace=trace)
        self.env = env if env is not None else simpy.Environment(initial_time=0.0)
        self.seed = seed
        self.default_restart = default_restart or RestartPolicy()
        self.delivered = 0
        self._cells: dict[str, _SimCell] = {}
        self._asks: dict[str, _PendingAsk] = {}
        self._seq = 0
        self._id_seq = 0
        self._timer_seq = 0
        self._dead_timers = 0  # cancelled timers still in SimPy's queue
        self._shuffle = random.Random(f"{seed}/shuffle") if shuffle else None
        # Bound once, not per scheduled event (each binding is an allocation).
        self._delivery_cb: Callable[[Event], None] = self._on_delivery
        self._timer_cb: Callable[[Event], None] = self._on_timer
        self._links: list[tuple[str, str, _LinkRule]] = []
        self._link_cache: dict[tuple[str, str], tuple[_LinkRule, ...]] = {}

    # -- public API -------------------------------------------------------------

    def now(self) -> float:
        """Current virtual time."""
        return self.env.now

    def run(self, until: float | None = None) -> None:
        """Advance virtual time until ``until`` (or until nothing is scheduled).

        Same semantics as ``env.run(until)``, but the kernel's own events
        (nearly all of them) are dispatched here without ``Environment.step``:
        one call per event instead of three. Any other event (a SimPy process
        sharing ``env``, the ``until`` stop event, a failed event) is left to
        ``env.step`` itself. The order is SimPy's heap order either way.
        """
        env = self.env
        if type(env) is not simpy.Environment:
            env.run(until=until)  # a subclass may override step(), e.g. real time
            return
        stop: Event | None = None
        if until is not None:
            # As Environment.run does: an URGENT event at ``until`` that stops it.
            at = until if isinstance(until, int) else float(until)
            if at <= env._now:
                raise ValueError(
                    f"until ({at}) must be greater than the current simulation time"
                )
            stop = Event(env)
            stop._ok = True
            stop._value = None
            env.schedule(stop, URGENT, at - env._now)
            stop.callbacks.append(StopSimulation.callback)
        queue = env._queue
        step = env.step
        try:
            while queue:
                if type(queue[0][3]) is _Scheduled:
                    env._now, _, _, event = heappop(queue)
                    callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
                    for callback in callbacks:
                        callback(event)
                else:
                    step()
        except StopSimulation:
            return
        if stop is not None:
            raise RuntimeError(
                f'No scheduled events left but "until" event was not triggered: {stop}'
            )

    def spawn(
        self,
        factory: ActorFactory,
        name: str,
        *,
        restart: RestartPolicy | None = None,
        parent: Address | None = None,
    ) -> Address:
        """Create an actor at address ``name``; its ``on_start`` runs at once (virtual)."""
        if name in self._cells:
            raise DuplicateAddress(name)
        actor = factory()
        if not isinstance(actor, Actor):
            raise TypeError(f"factory for {name!r} returned {type(actor).__qualname__}, not an Actor")
        address = Address(name)
        cell = _SimCell(self, address, actor, factory, restart or self.default_restart, parent)
        actor.ctx = cell
        self._cells[name] = cell
        if self.trace is not None:
            self._record("spawn", name, detail=type(actor).__qualname__)
        _schedule(self.env, cell, self._on_start, _URGENT, 0)
        return address

    def tell(
        self, to: Address | str, message: Message, *, delay: float = 0.0,
        correlation_id: str | None = None,
    ) -> str:
        """Send a message from outside the actor system; returns its message id."""
        envelope = self._envelope(None, Address(to), message, correlation_id, None)
        self._post(envelope, delay)
        return envelope.message_id

    def stop(self, address: Address | str) -> None:
        """Stop an actor once its current turn is over (at once if idle)."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        if cell.coro is not None or cell.current is not None or cell.state == _STARTING:
            # Mid-turn, or on_start not run yet: on_start and the turn finish
            # first, then the actor stops (as in the live kernel).
            cell.stop_requested = True
        else:
            self._finish_stop(cell, None)

    def shutdown(self) -> None:
        """Stop every actor, newest first (``on_stop`` runs; what is still
        queued is dead-lettered), mirroring the live kernel's shutdown."""
        for address in reversed(list(self._cells)):
            cell = self._cells.get(address)
            if cell is not None:
                if cell.coro is not None:
                    cell.coro.close()
                    cell.coro = None
                if cell.current is not None:
                    self._dead(cell.current, "actor_stopped")
                    cell.current = None
                self._finish_stop(cell, None)

    def is_running(self, address: Address | str) -> bool:
        """True while an actor is registered and not down."""
        cell = self._cells.get(address)
        return cell is not None and cell.state != _DOWN

    def actor(self, address: Address | str) -> Actor:
        """The current instance at ``address`` (for tests and inspection)."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        return cell.actor

    def set_link_faults(self, sender: str, recipient: str, faults: LinkFaults, *,
                        start: float = 0.0, end: float = math.inf) -> None:
        """Apply ``faults`` to messages whose sender and recipient match the
        glob patterns (``"gateway"``, ``"order/*"``; ``"-"`` is "from outside")
        and that are due in ``[start, end)`` (virtual seconds; a message is
        due at its send time plus the delay its sender asked for).

        Every matching rule in force acts, in the order they were set: a
        message is lost if any rule drops it (independent draws, so drop
        probabilities combine as ``1 - (1 - p1)(1 - p2)``), each rule may
        duplicate it, and the rules' extra delays (delay and reorder jitter)
        add. Each rule has its own seeded stream.
        """
        if not start < end:
            raise ValueError(f"link fault {sender}->{recipient}: end ({end!r}) must be after "
                             f"start ({start!r})")
        stream = f"{self.seed}/link/{sender}->{recipient}"
        same = sum(1 for s, r, _ in self._links if (s, r) == (sender, recipient))
        rng = random.Random(stream if not same else f"{stream}#{same}")
        self._links.append((sender, recipient, (faults, rng, float(start), float(end))))
        self._link_cache.clear()

    def take_down(self, address: Address | str) -> None:
        """Crash an actor now: its in-flight turn, mailbox and timers are lost
        (dead-lettered as ``actor_down``) until :meth:`bring_up`."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        if cell.state == _DOWN:
            return
        if cell.coro is not None:
            cell.coro.close()
            cell.coro = None
        if cell.current is not None:
            self._dead(cell.current, "actor_down")
            cell.current = None
        self._drain_mailbox(cell, "actor_down")
        cell.timers = None
        cell.incarnation += 1
        for mid in [m for m, p in self._asks.items() if p.cell is cell]:
            del self._asks[mid]
        cell.state = _DOWN
        if self.trace is not None:
            self._record("down", address)

    def crash(self, address: Address | str) -> bool:
        """Crash an idle actor and start a fresh instance from its factory at
        once, as a process restart would: the instance and its timers (fired
        ones too) are gone, the messages in its mailbox wait for the successor
        (they were not taken yet). A persistent actor restores from its store.

        Returns:
            False (and does nothing) when the actor is in a turn, starting,
            restarting, down or stopped: crashes land between turns.

        Raises:
            ActorNotFound: no actor at ``address``.
        """
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        if cell.state != _RUNNING or cell.current is not None or cell.coro is not None:
            return False
        cell.timers = None
        if cell.mailbox:
            self._drop_fired_timers(cell)
        if self.trace is not None:
            self._record("crash", cell._address)
        self._reincarnate(cell)
        return True

    def bring_up(self, address: Address | str) -> None:
        """Restart a taken-down actor from a fresh instance (its state is lost)."""
        cell = self._cells.get(address)
        if cell is None:
            raise ActorNotFound(address)
        if cell.state != _DOWN:
            return
        if self.trace is not None:
            self._record("up", address)
        self._reincarnate(cell)

    def schedule_outage(self, address: Address | str, start: float, duration: float) -> None:
        """Take ``address`` down at virtual time ``start`` for ``duration``."""
        if start < self.env.now or duration < 0:
            raise ValueError(
                f"outage of {address}: start {start} must be >= now ({self.env.now}) "
                f"and duration {duration} >= 0"
            )
        delay = start - self.env.now
        _schedule(self.env, address, self._outage_begins, _URGENT, delay)
        _schedule(self.env, address, self._outage_ends, _URGENT, delay + duration)

    def _outage_begins(self, event: Event) -> None:
        address: str = event._value
        if address in self._cells:
            self.take_down(address)
        elif self.trace is not None:
            self._record("down", address, detail="skipped: no such actor")

    def _outage_ends(self, event: Event) -> None:
        address: str = event._value
        if address in self._cells:
            self.bring_up(address)
        elif self.trace is not None:
            self._record("up", address, detail="skipped: no such actor")

    # -- envelopes and delivery -----------------------------------------------

    def _envelope(
        self, sender: _SimCell | None, to: Address, message: Message,
        correlation_id: str | None, reply_to: Address | None,
    ) -> Envelope:
        if not isinstance(message, Message):
            raise NotAMessage(sender._address if sender else "", to, message)
        self._seq = seq = self._seq + 1
        # ``tuple.__new__`` builds the NamedTuple without its Python-level
        # ``__new__`` (one call less per message); every field is given.
        if sender is None:
            return _new_envelope(Envelope, (f"m{seq}", None, correlation_id, None, to,
                                            self.env._now, message, reply_to))
        cause = sender.current
        if cause is None:
            return _new_envelope(Envelope, (f"m{seq}", None, correlation_id, sender._address,
                                            to, self.env._now, message, reply_to))
        return _new_envelope(Envelope, (
            f"m{seq}", cause.message_id,
            correlation_id if correlation_id is not None else cause.correlation_id,
            sender._address, to, self.env._now, message, reply_to,
        ))

    def _priority(self) -> int:
        shuffle = self._shuffle
        return _NORMAL if shuffle is None else shuffle.randrange(1, 1 << 30)

    def _post(self, envelope: Envelope, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"send to {envelope.recipient}: delay must be >= 0, got {delay!r}")
        if self._links:
            rules = self._link_for(envelope.sender or "-", envelope.recipient)
            if rules:
                due = self.env._now + delay
                active = [r for r in rules if r[2] <= due < r[3]]
                if active:
                    for faults, rng, _, _ in active:
                        if faults.drop and rng.random() < faults.drop:
                            if self.trace is not None:
                                self._record("drop", envelope.recipient, envelope)
                            self._dead(envelope, "dropped_by_fault")
                            return
                    for faults, rng, _, _ in active:
                        if faults.duplicate and rng.random() < faults.duplicate:
                            if self.trace is not None:
                                self._record("duplicate", envelope.recipient, envelope)
                            _schedule(self.env, envelope, self._delivery_cb, self._priority(),
                                      delay + sum(self._jitter(f, g) for f, g, _, _ in active))
                    delay += sum(self._jitter(f, g) for f, g, _, _ in active)
        shuffle = self._shuffle  # self._priority(), inlined on this hot path
        _schedule(self.env, envelope, self._delivery_cb,
                  _NORMAL if shuffle is None else shuffle.randrange(1, 1 << 30), delay)

    @staticmethod
    def _jitter(faults: LinkFaults, rng: random.Random) -> float:
        extra = 0.0
        if faults.delay and rng.random() < faults.delay:
            extra += rng.uniform(faults.delay_min, faults.delay_max)
        if faults.reorder:
            extra += rng.uniform(0.0, faults.reorder)
        return extra

    def _link_for(self, sender: str, recipient: str) -> tuple[_LinkRule, ...]:
        """Every rule whose patterns match the link, in the order they were set."""
        key = (sender, recipient)
        try:
            return self._link_cache[key]
        except KeyError:
            pass
        found = tuple(rule for s_pat, r_pat, rule in self._links
                      if fnmatch.fnmatchcase(sender, s_pat)
                      and fnmatch.fnmatchcase(recipient, r_pat))
        if len(self._link_cache) > 100_000:
            self._link_cache.clear()  # bounded: many short-lived addresses in long runs
        self._link_cache[key] = found
        return found

    def _on_delivery(self, event: Event) -> None:
        envelope: Envelope = event._value
        cell = self._cells.get(envelope.recipient)
        # The common case of _deliver, inlined: an idle running actor, no trace.
        if (cell is not None and cell.state == _RUNNING and cell.current is None
                and not cell.mailbox and self.trace is None):
            self._run(cell, envelope)
        else:
            self._deliver(envelope)

    def _deliver(self, envelope: Envelope) -> None:
        cell = self._cells.get(envelope.recipient)
        if cell is None:
            self._undeliverable(envelope, "unknown_address")
            return
        state = cell.state
        if state == _RUNNING and cell.current is None and not cell.mailbox:
            if self.trace is not None:
                self._record("deliver", cell._address, envelope)
            self._run(cell, envelope)
        elif state == _DOWN:
            self._undeliverable(envelope, "actor_down")
        else:
            if self.trace is not None:
                self._record("deliver", cell._address, envelope, "queued")
            mailbox = cell.mailbox
            if mailbox is None:
                mailbox = cell.mailbox = deque()
            mailbox.append(envelope)

    def _undeliverable(self, envelope: Envelope, reason: str) -> None:
        self._dead(envelope, reason)
        # A crashed (down) actor cannot answer: its askers time out, as they
        # would against a real dead service. A missing one is known at once.
        if envelope.reply_to is not None and reason != "actor_down":
            self._reply(envelope, None, ActorNotFound(envelope.recipient))

    # -- turns -----------------------------------------------------------------

    def _run(self, cell: _SimCell, envelope: Envelope) -> None:
        """Handle ``envelope`` and then the queued mailbox, as long as turns
        complete without suspending (a loop, not recursion)."""
        while True:
            self.delivered += 1
            cell.current = envelope
            message = envelope.body
            actor = cell.actor
            method = type(actor)._resolved.get(type(message)) or actor.handler_for(type(message))
            if method is None:
                self._unhandled(cell, envelope)
            elif not self._drive(cell, method(actor, message), None, None):
                return  # suspended; the resume callback continues the mailbox
            if cell.state != _RUNNING:
                return
            mailbox = cell.mailbox
            if not mailbox:
                return
            envelope = mailbox.popleft()

    def _drive(
        self, cell: _SimCell, coro: Coroutine[Any, Any, Any], value: Any,
        error: BaseException | None,
    ) -> bool:
        """Run ``coro`` until it suspends (False) or its turn ends (True)."""
        while True:
            try:
                if error is None:
                    op = coro.send(value)
                else:
                    op = coro.throw(error)
            except StopIteration as stop:
                # The turn is complete (inlined: once per message).
                envelope = cell.current
                cell.current = None
                cell.coro = None
                if envelope is not None and envelope.reply_to is not None:
                    self._reply(envelope, stop.value, None)
                if cell.state == _STARTING:
                    cell.state = _RUNNING
                if cell.stop_requested:
                    self._finish_stop(cell, None)
                return True
            except Exception as exc:  # the handler failed: supervision decides
                self._failed(cell, exc)
                return True
            value = error = None
            kind = type(op)
            if kind is SleepOp:
                cell.coro = coro
                if self.trace is not None:
                    self._record("timer", cell._address, cell.current, f"sleep {op.delay!r}")
                _schedule(self.env, (cell, coro, None, None), self._on_resume,
                          self._priority(), op.delay)
                return False
            if kind is AskOp:
                envelope = op.envelope
                if envelope.recipient not in self._cells:
                    self._dead(envelope, "unknown_address")
                    error = ActorNotFound(envelope.recipient)
                    continue
                cell.coro = coro
                self._asks[envelope.message_id] = _PendingAsk(
                    cell, coro, op.timeout, envelope.recipient, type(envelope.body).__qualname__
                )
                self._post(envelope, 0.0)
                _schedule(self.env, envelope, self._on_ask_timeout, self._priority(), op.timeout)
                return False
            current = cell.current
            error = ForeignAwaitable(
                cell._address,
                type(current.body).__qualname__ if current is not None else "on_start",
                op,
            )

    def _on_resume(self, event: Event) -> None:
        cell, coro, value, error = event._value
        if cell.coro is not coro:
            return  # the actor was taken down or restarted meanwhile
        cell.coro = None
        if self._drive(cell, coro, value, error):
            self._after_turn(cell)

    def _after_turn(self, cell: _SimCell) -> None:
        if cell.state == _RUNNING and cell.mailbox:
            self._run(cell, cell.mailbox.popleft())

    def _unhandled(self, cell: _SimCell, envelope: Envelope) -> None:
        error = UnhandledMessage(cell._address, type(envelope.body).__qualname__, envelope.message_id)
        self._record_failure(cell._address, envelope, error, "recorded")
        self._dead(envelope, "unhandled", error)
        cell.current = None
        if envelope.reply_to is not None:
            self._reply(envelope, None, error)

    # -- asks ------------------------------------------------------------------

    def _reply(self, request: Envelope, result: Any, error: BaseException | None) -> None:
        pending = self._asks.pop(request.message_id, None)
        if pending is None:
            if request.reply_to is not None and error is None:
                self._dead(request, "late_reply")
            return
        _schedule(self.env, (pending.cell, pending.coro, result, error), self._on_resume,
                  self._priority(), 0)

    def _on_ask_timeout(self, event: Event) -> None:
        request: Envelope = event._value
        pending = self._asks.pop(request.message_id, None)
        if pending is None:
            return  # already answered
        error = AskTimeout(
            pending.cell._address, pending.target, pending.message_type,
            request.message_id, pending.timeout,
        )
        if self.trace is not None:
            self._record("timer", pending.cell._address, request, "ask timeout")
        _schedule(self.env, (pending.cell, pending.coro, None, error), self._on_resume,
                  _URGENT, 0)

    # -- timers ----------------------------------------------------------------

    def _set_timer(self, cell: _SimCell, delay: float, message: Message) -> TimerId:
        envelope = self._envelope(cell, cell._address, message, None, None)
        envelope = _new_envelope(_TimerEnvelope, envelope)
        self._timer_seq += 1
        timer = TimerId(self._timer_seq)
        if cell.timers is None:
            cell.timers = set()
        cell.timers.add(timer)
        shuffle = self._shuffle  # self._priority(), inlined on this hot path
        _schedule(self.env, (cell, timer, envelope), self._timer_cb,
                  _NORMAL if shuffle is None else shuffle.randrange(1, 1 << 30), delay)
        return timer

    def _timer_live(self, cell: _SimCell, timer: int) -> bool:
        timers = cell.timers
        return timers is not None and timer in timers and self._cells.get(cell._address) is cell

    def _timer_dropped(self, count: int = 1) -> None:
        """Count dead timers still queued; compact the queue when they are a quarter of it.

        SimPy cannot unschedule an event, so a cancelled timer (say a parcel's
        delivery scan three days out, dropped when its order retires) would
        hold memory until its time comes. Every so often the kernel rebuilds
        the queue without them: O(n) once per n/4 cancellations (at most a
        third more queue than live events). It reads
        SimPy's queue (``(time, priority, id, event)`` tuples) directly; the
        order of the surviving events is unchanged, so runs stay identical.
        """
        self._dead_timers += count
        queue = self.env._queue
        if self._dead_timers > max(1_000, len(queue) // 4):
            on_timer = self._on_timer
            kept = [item for item in queue
                    if not (item[3].callbacks == [on_timer]
                            and not self._timer_live(item[3]._value[0], item[3]._value[1]))]
            heapq.heapify(kept)
            queue[:] = kept
            self._dead_timers = 0

    def _on_timer(self, event: Event) -> None:
        cell: _SimCell
        timer: int
        envelope: Envelope
        cell, timer, envelope = event._value
        # _timer_live, inlined: a timer fires for about every other message.
        timers = cell.timers
        if timers is None or timer not in timers or self._cells.get(cell._address) is not cell:
            self._dead_timers = max(0, self._dead_timers - 1)
            return  # cancelled, or the actor went down / stopped
        timers.discard(timer)
        if self.trace is not None:
            self._record("timer", cell._address, envelope, "fired")
        elif cell.state == _RUNNING and cell.current is None and not cell.mailbox:
            self._run(cell, envelope)  # _deliver's common case (the cell is registered)
            return
        self._deliver(envelope)

    # -- supervision -------------------------------------------------------------

    def _on_start(self, event: Event) -> None:
        cell: _SimCell = event._value
        if cell.state != _STARTING or self._cells.get(cell._address) is not cell:
            return
        cell.current = None
        if self._drive(cell, cell.actor.on_start(), None, None):
            self._after_turn(cell)

    def _failed(self, cell: _SimCell, error: Exception) -> None:
        envelope = cell.current
        cell.current = None
        cell.coro = None
        if envelope is not None and envelope.reply_to is not None \
                and envelope.message_id in self._asks:
            # pykka semantics: an asked handler's exception goes back to the
            # asker, and the actor keeps its state and carries on.
            self._record_failure(cell._address, envelope, error, "replied")
            self._reply(envelope, None, error)
            if cell.state == _STARTING:
                cell.state = _RUNNING
            if cell.stop_requested:
                self._finish_stop(cell, None)
            return
        if envelope is not None:
            self._dead(envelope, "handler_failed", error)
        self._inline_hook(cell, cell.actor.on_failure(error, envelope.body if envelope else None),
                          "on_failure")
        budget = cell.budget
        if budget is None:
            budget = cell.budget = RestartBudget(cell.restart)
        delay = self._decide_restart(budget, cell._address, envelope, error,
                                     stop_requested=cell.stop_requested)
        if delay is None:
            self._finish_stop(cell, error)
            return
        cell.state = _RESTARTING
        # The failed instance's timers never reach its successor: those not
        # fired yet are forgotten here, those fired but queued are dropped.
        cell.timers = None
        if cell.mailbox:
            self._drop_fired_timers(cell)
        cell.incarnation += 1
        _schedule(self.env, (cell, cell.incarnation), self._on_restart, _URGENT, delay)

    def _drop_fired_timers(self, cell: _SimCell) -> None:
        """Remove the failed instance's fired timers from the mailbox (a trace record each)."""
        mailbox = cell.mailbox or deque()
        kept: deque[Envelope] = deque()
        for envelope in mailbox:
            if type(envelope) is _TimerEnvelope:
                if self.trace is not None:
                    self._record("timer", cell._address, envelope,
                                 "dropped: timer_of_failed_instance")
            else:
                kept.append(envelope)
        cell.mailbox = kept

    def _on_restart(self, event: Event) -> None:
        cell: _SimCell = event._value[0]
        if (cell.state != _RESTARTING or event._value[1] != cell.incarnation
                or self._cells.get(cell._address) is not cell):
            return
        if self.trace is not None:
            attempt = cell.budget.attempts if cell.budget is not None else 0
            self._record("restart", cell._address, detail=f"attempt {attempt}")
        self._reincarnate(cell)

    def _reincarnate(self, cell: _SimCell) -> None:
        cell.incarnation += 1
        try:
            actor = cell.factory()
        except Exception as exc:  # e.g. its persisted state cannot be loaded
            self._record_failure(cell._address, None, exc, "stopped", hook="factory")
            self._finish_stop(cell, exc)
            return
        actor.ctx = cell
        cell.actor = actor
        cell.state = _STARTING
        cell.current = None
        if self._drive(cell, actor.on_start(), None, None):
            self._after_turn(cell)

    def _finish_stop(self, cell: _SimCell, error: BaseException | None) -> None:
        if cell.state == _STOPPED:
            return
        was_down = cell.state == _DOWN
        cell.state = _STOPPED
        self._cells.pop(cell._address, None)
        if cell.timers:
            self._timer_dropped(len(cell.timers))
        cell.timers = None
        cell.stop_requested = False
        for child in list(cell.children or ()):
            child_cell = self._cells.get(child)
            if child_cell is not None and child_cell.parent == cell._address:
                self.stop(child)
        parent = self._cells.get(cell.parent) if cell.parent is not None else None
        if parent is not None and parent.children:
            parent.children.pop(cell._address, None)
        if not was_down:  # a crashed instance gets no on_stop
            self._inline_hook(cell, cell.actor.on_stop(), "on_stop")
        self._drain_mailbox(cell, "actor_stopped")
        if self.trace is not None:
            self._record("stop", cell._address, detail="failed" if error else "")
        if error is not None:
            to = cell.parent
            notice = self._child_failed(cell._address, error,
                                        parent_running=to is not None and to in self._cells)
            if notice is not None and to is not None:
                self._post(self._envelope(None, to, notice, None, None), 0.0)
        if cell.coro is None:
            # The actor and its cell refer to each other (the cell is its
            # ``ctx``). Break the cycle, so a stopped actor (an order that
            # retired, with its state) is freed by reference counting at
            # once, not by a full run of the cyclic collector much later.
            del cell.actor.ctx

    def _inline_hook(self, cell: _SimCell, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a hook that must not suspend (``on_failure``, ``on_stop``)."""
        saved = cell.current
        try:
            op = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:
            self._record_failure(cell._address, None, exc, "recorded", hook=name)
            return
        finally:
            cell.current = saved
        coro.close()
        self._record_failure(
            cell._address, None, ForeignAwaitable(cell._address, name, op), "recorded", hook=name
        )

    def _drain_mailbox(self, cell: _SimCell, reason: str) -> None:
        mailbox = cell.mailbox
        cell.mailbox = None
        for envelope in mailbox or ():
            self._undeliverable(envelope, reason)

    def cells(self) -> Iterable[str]:
        """Addresses of the registered actors, in spawn order."""
        return list(self._cells)
