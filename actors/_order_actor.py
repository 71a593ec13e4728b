"""The Order actor: one per order, the single writer of its state.

Everything that changes an order goes through here: commands are decided
(``decide``) and their events applied; outside events (gateway webhooks,
warehouse events) are resequenced per source, deduplicated and applied
(``apply``); nothing illegal is applied and every refusal is recorded.
After each change the actor

1. performs the change's effects exactly once (the outbox: a decided
   ``PaymentCaptureRequested`` becomes one ``GatewayCapture``, ...),
2. checks the named invariants and emits a ``WrongAction`` per violation,
3. emits telemetry (stage changes, stuck orders, the finish) and, once per
   turn, the coordinator's view per downstream system and the snapshot
   the systems whose view changed are sent,
4. runs the policy engine (:mod:`._engine`) for the next commands.

The engine runs inside the order's own turn, so it always sees the state
its commands will be decided against: no race between two automation
decisions for one order. Cross-order policy (duplicate detection,
escalation) lives in the Automation and Watchdog actors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from orderloom.runtime import Actor, Address, DomainError, Message, TimerId, handler

from . import _messages as m
from ._decide import COORDINATOR_SOURCE
from ._downstream import project
from ._engine import Engine, OrderSettings
from ._invariants import check_decision, check_step_changed
from ._order import OutcomeKind, apply_probed, decide_probed
from ._order_state import OrderState
from ._policy import SyncMode
from ._protocol import (
    AddressChecked,
    CaseDecision,
    CustomerCancel,
    Escalate,
    GatewayAuthorize,
    GatewayCapture,
    GatewayRefund,
    GatewayVoid,
    OrderRetired,
    OrderUpdated,
    PickLine,
    RequestTimedOut,
    Screened,
    StockShortage,
    StuckCheck,
    StuckReport,
    SyncOrder,
    SyncSnapshot,
    WarehouseCancel,
    WarehouseSubmit,
)
from ._states import TERMINAL_STAGES, Lifecycle, RequestStatus
from ._telemetry import (
    ActionTaken,
    CommandRefused,
    EventIgnored,
    GatewayTimedOut,
    OrderFinished,
    OrderStageEntered,
    OrderStuck,
    SystemViewChanged,
    WrongAction,
)

# The shared empty set the per-order fields start from (``frozenset()`` is
# a new object each call).
_NONE: frozenset[str] = frozenset()

__all__ = ["OrderActor"]


_APPLIED = OutcomeKind.APPLIED
# The decided events ``_effect`` sends a message for.
_OUTBOX = (m.PaymentAuthorizationRequested, m.PaymentCaptureRequested, m.PaymentVoidRequested,
           m.PaymentRefundRequested, m.FulfillmentSubmitted, m.FulfillmentCanceled)


@attrs.frozen(kw_only=True)
class _Resequence(Message):
    """Timer: stop waiting for the gap at ``gap`` in ``source``'s sequence."""

    source: str
    gap: int = 0


@attrs.frozen(kw_only=True)
class _SyncFlush(Message):
    """Timer: batch mode sends the latest snapshot downstream."""


@attrs.frozen(kw_only=True)
class _Retire(Message):
    """Timer: a finished, quiet order's actor can stop."""


class OrderActor(Actor):
    """The coordinator's record of one order, and its automation.

    Args:
        order_id: the order.
        settings: policy, addresses and timeouts shared by all orders.
    """

    # One per order in flight: no instance dictionary.
    __slots__ = ("order_id", "settings", "state", "engine", "_pending", "_reported",
                 "_views", "_view_key", "_timeouts", "_stage", "_stage_since", "_stuck_due",
                 "_dirty", "_sync_timer", "_finished")

    def __init__(self, order_id: str, settings: OrderSettings) -> None:
        self.order_id = order_id
        self.settings = settings
        self.state = OrderState(order_id=order_id)
        self.engine = Engine(settings)
        self._pending: dict[str, dict[int, m.Event]] = {}  # source -> seq -> event
        # Frozen and rebound on change (rare): an empty frozenset is shared.
        self._reported: frozenset[str] = _NONE
        self._views: dict[str, str] = {}
        self._view_key: tuple[object, ...] | None = None
        self._timeouts: dict[str, TimerId] = {}  # request id -> its gateway timeout
        self._stage: Lifecycle | None = None
        self._stage_since = 0.0
        self._stuck_due: float | None = None
        self._dirty: frozenset[str] = _NONE
        self._sync_timer: TimerId | None = None  # a batch flush is due
        self._finished = False

    # -- inputs --------------------------------------------------------------------

    @handler
    async def on_command(self, command: m.Command) -> None:
        """A command from a person, the engine, or another actor."""
        await self._run((command,))

    @handler
    async def on_event(self, event: m.Event) -> None:
        """An outside fact: resequenced per source, then applied."""
        expected = self.state.last_seq(event.source) + 1
        if event.source_seq > expected and event.event_id not in self.state.seen_event_ids:
            # A gap: hold the event until the missing ones arrive (or give up
            # waiting), so a reordered pair is applied in order, not dropped.
            pending = self._pending.setdefault(event.source, {})
            if not pending:
                self.ctx.schedule(self.settings.resequence_timeout,
                                  _Resequence(source=event.source, gap=expected))
            pending[event.source_seq] = event
            return
        applied = self._offer((event,))
        if self._pending:  # rarely: most events arrive in order
            applied += self._drain_pending(event.source)
        await self._after(applied)

    @handler
    async def on_resequence(self, msg: _Resequence) -> None:
        """Waited long enough for a gap: apply what is held, in order."""
        if self.state.last_seq(msg.source) + 1 != msg.gap or msg.source not in self._pending:
            return  # that gap was filled; a newer one has its own timer
        pending = self._pending.pop(msg.source, {})
        applied = self._offer(tuple(pending[k] for k in sorted(pending)))
        await self._after(applied)

    @handler
    async def on_timeout(self, msg: RequestTimedOut) -> None:
        """A gateway request got no answer: its outcome is now unknown."""
        request = self.state.request(msg.request_id)
        if request is None or request.status is not RequestStatus.PENDING:
            return
        self.ctx.emit(GatewayTimedOut(order_id=self.order_id, request_id=msg.request_id,
                                      operation=request.operation.value))
        seq = self.state.last_seq(COORDINATOR_SOURCE) + 1
        event = m.PaymentOutcomeUnknown(
            order_id=self.order_id, event_id=f"{msg.request_id}:timeout",
            source=COORDINATOR_SOURCE, source_seq=seq, occurred_at=self.ctx.now(),
            request_id=msg.request_id)
        await self._after(self._offer((event,)))

    @handler
    async def on_screened(self, msg: Screened) -> None:
        """Automation's cross-order screening (duplicates) is in."""
        await self._learnt(m.OrderScreened, duplicate_of=msg.duplicate_of)

    @handler
    async def on_address(self, msg: AddressChecked) -> None:
        """The address service answered."""
        await self._learnt(m.AddressVerified, ok=msg.ok, corrected=msg.corrected)

    async def _learnt(self, kind: type[m.Event], **fields: Any) -> None:
        """Record what another actor told this order as the coordinator's own
        observation (as a gateway timeout is): nothing is decided, so no
        command precedes it; the engine reacts to it like to any event."""
        seq = self.state.last_seq(COORDINATOR_SOURCE) + 1
        event = kind(order_id=self.order_id, event_id=self.ctx.new_id(),
                     source=COORDINATOR_SOURCE, source_seq=seq, occurred_at=self.ctx.now(),
                     **fields)
        await self._after(self._offer((event,)))

    @handler
    async def on_shortage(self, msg: StockShortage) -> None:
        """A warehouse said what it could cover of a rejected fulfillment order."""
        if self.state.fulfillment_order(msg.fulfillment_order_id) is None:
            return  # not one of this order's
        await self._learnt(m.ShortageRecorded, fulfillment_order_id=msg.fulfillment_order_id,
                           warehouse_id=msg.warehouse_id, available=tuple(
                               m.LineQuantity(line_id=pl.line_id, quantity=pl.quantity)
                               for pl in msg.available if pl.quantity > 0))

    @handler
    async def on_decision(self, msg: CaseDecision) -> None:
        """A person decided one of this order's cases."""
        await self._run(await self.engine.decided(self.state, msg, self.ctx))

    @handler
    async def on_customer_cancel(self, msg: CustomerCancel) -> None:
        """The customer wants the order canceled."""
        await self._run(await self.engine.customer_cancel(self.state, msg, self.ctx))

    @handler
    async def on_escalate(self, msg: Escalate) -> None:
        """The watchdog escalates this stuck order."""
        await self._run(await self.engine.escalate(self.state, msg, self.ctx))

    @handler
    async def on_engine_timer(self, msg: Engine.Timer) -> None:
        """A retry or reconciliation the engine scheduled."""
        await self._run(await self.engine.timer(self.state, msg, self.ctx))

    @handler
    async def on_stuck_check(self, msg: StuckCheck) -> None:
        """Is the order still where it was a deadline ago?"""
        if msg.entered_at != self._stuck_due or self._finished or self._stage is None:
            return  # superseded by an earlier check, or the order is done
        self._stuck_due = None
        now = self.ctx.now()
        deadline = self._deadline(self._stage)
        if not deadline:
            return
        due = self._stage_since + deadline
        if now < due:
            self._arm_stuck_check(due)  # the stage changed since: check its own deadline
            return
        holds = self.state.open_holds
        reason = holds[0].reason.value if holds else "no_progress"
        stage = self._stage.value
        age = now - self._stage_since
        self.ctx.emit(OrderStuck(order_id=self.order_id, stage=stage, reason=reason,
                                 age=age, deadline=deadline))
        await self.ctx.send(self.settings.watchdog, StuckReport(
            order_id=self.order_id, stage=stage, reason=reason, age=age, deadline=deadline,
            hold_id=holds[0].hold_id if holds else None,
            team=holds[0].owner_team if holds else None))
        self._arm_stuck_check(now + deadline)  # still stuck next time: surface it again

    @handler
    async def on_sync_flush(self, msg: _SyncFlush) -> None:
        """Batch mode: send the latest snapshot downstream."""
        self._sync_timer = None
        await self._push_snapshot()

    @handler
    async def on_retire(self, msg: _Retire) -> None:
        """Stop the actor once the order is finished and nothing is in flight,
        telling the systems that hold details of it that they may forget them."""
        if self.state.unresolved_requests() or self._pending:
            self.ctx.schedule(self.settings.retire_after, _Retire())
            return
        if self._sync_timer is not None:
            # A batch flush is still due: the systems get the final state now,
            # not never (the timer would find the actor gone).
            self.ctx.cancel(self._sync_timer)
            self._sync_timer = None
            await self._push_snapshot()
        fos = self.state.fulfillment_orders
        notice = OrderRetired(order_id=self.order_id,
                              fulfillment_order_ids=tuple(fo.fulfillment_order_id for fo in fos),
                              captured=self.state.captured_amount,
                              refunded=self.state.refunded_amount)
        for address in (self.settings.gateway, *(Address(s) for s in self.settings.downstream),
                        *sorted({Address(f"warehouse/{fo.warehouse_id}") for fo in fos})):
            await self.ctx.send(address, notice)
        self.ctx.stop()

    # -- the change pipeline ----------------------------------------------------------

    async def _run(self, commands: Sequence[m.Command]) -> None:
        """Decide commands (and the engine's follow-ups) and react to each change."""
        queue = list(commands)
        budget = 64  # an engine that keeps asking is a bug; cap it, and say so
        emit = self.ctx.emit
        while queue and budget:
            budget -= 1
            command = queue.pop(0)
            try:
                events, probes = decide_probed(self.state, command)
            except DomainError as exc:
                emit(CommandRefused(order_id=self.order_id,
                                    command_type=type(command).__name__,
                                    issued_by=command.issued_by, reason=str(exc)))
                continue
            if isinstance(command, m.IrreversibleCommand):
                irreversible, approved_by = True, command.approved_by
                approver = command.approver.value if command.approver else None
            else:
                irreversible, approved_by, approver = False, None, None
            emit(ActionTaken(
                order_id=self.order_id, command_type=type(command).__name__,
                issued_by=command.issued_by, irreversible=irreversible,
                on_exception_path=bool(self.state.open_holds), approved_by=approved_by,
                approver=approver))
            for violation in check_decision(self.state, command):
                self._wrong(violation.name, violation.detail)
            applied = self._offer(events, probes)
            # The engine's state-driven step runs only once the queue is empty,
            # so it never proposes what a queued command is about to do.
            queue += await self._react(applied, progress=not queue)
        if queue:
            self.ctx.emit(CommandRefused(order_id=self.order_id, command_type="*",
                                         issued_by="engine", reason="command budget exhausted"))
        await self._publish()

    async def _after(self, applied: Sequence[m.Event]) -> None:
        await self._run(await self._react(applied))

    def _offer(
        self, events: Sequence[m.Event], probes: Sequence[OrderState] = ()
    ) -> list[m.Event]:
        """Apply events one by one; record what was not applied and any violation.

        ``probes``: the states ``decide_probed`` reached by evolving ``events``
        in turn from the current state; each is reused while the chain of
        applied states still matches the probe's (it always does unless an
        event is not applied), instead of evolving the event again.
        """
        applied: list[m.Event] = []
        expected: OrderState | None = self.state if probes else None
        for i, event in enumerate(events):
            before = self.state
            probe = probes[i] if before is expected else None
            after, outcome = apply_probed(before, event, probe)
            expected = probe
            if outcome.kind is _APPLIED:
                applied.append(event)
            else:
                self.ctx.emit(EventIgnored(
                    order_id=self.order_id, event_type=type(event).__name__,
                    event_id=event.event_id, source=event.source, outcome=outcome.kind.value,
                    reason=str(outcome.error) if outcome.error else ""))
            for violation in check_step_changed(before, event, outcome, after):
                self._wrong(violation.name, violation.detail)
            self.state = after
        return applied

    def _wrong(self, invariant: str, detail: str) -> None:
        """Report a broken invariant once per order, with the message that caused it."""
        key = f"{invariant}:{detail}"
        if key in self._reported:
            return
        self._reported |= {key}
        envelope = self.ctx.envelope
        chain = tuple(x for x in (envelope.causation_id, envelope.message_id)
                      if x) if envelope else ()
        self.ctx.emit(WrongAction(order_id=self.order_id, invariant=invariant,
                                  detail=detail, chain=chain))

    def _drain_pending(self, source: str) -> list[m.Event]:
        pending = self._pending.get(source)
        applied: list[m.Event] = []
        while pending:
            nxt = self.state.last_seq(source) + 1
            event = pending.pop(nxt, None)
            if event is None:
                break
            applied += self._offer((event,))
        if pending is not None and not pending:
            del self._pending[source]
        elif pending:  # a further gap: it gets its own wait
            self.ctx.schedule(self.settings.resequence_timeout, _Resequence(
                source=source, gap=self.state.last_seq(source) + 1))
        return applied

    async def _react(self, applied: Sequence[m.Event], progress: bool = True) -> list[m.Command]:
        if not applied:
            return []
        for event in applied:
            # Most decided events send nothing: test before starting a coroutine.
            if event.source == COORDINATOR_SOURCE and isinstance(event, _OUTBOX):
                await self._effect(event)
        if self._timeouts:
            self._cancel_resolved_timeouts()
        for detail in self.engine.unsafe_shipments(self.state, applied):
            self._wrong("never_ship_unpaid", detail)
        self._telemetry()
        state = self.state
        # Tested here, not in a coroutine of its own: nearly every turn does not finish.
        if not self._finished and state.lifecycle in TERMINAL_STAGES and not state.open_holds:
            await self._finish()
        for event in applied:  # a plain loop: no generator for ``any``
            if isinstance(event, m.OrderPlaced):
                await self.ctx.send(self.settings.automation, OrderUpdated(
                    order_id=self.order_id, state=self.state, events=tuple(applied)))
                break
        if self._finished:
            return []
        # A fresh list each call: no copy needed.
        return await self.engine.react(self.state, applied, self.ctx, progress=progress)

    async def _effect(self, event: m.Event) -> None:
        """The outbox: each decided event's message to the outside, exactly once."""
        s, me = self.settings, self.ctx.address
        match event:
            case m.PaymentAuthorizationRequested():
                await self.ctx.send(s.gateway, GatewayAuthorize(
                    order_id=self.order_id, request_id=event.request_id, notify=me,
                    amount=event.amount, customer_id=self.state.customer_id or ""))
            case m.PaymentCaptureRequested():
                await self.ctx.send(s.gateway, GatewayCapture(
                    order_id=self.order_id, request_id=event.request_id, notify=me,
                    authorization_id=event.authorization_id, amount=event.amount))
            case m.PaymentVoidRequested():
                await self.ctx.send(s.gateway, GatewayVoid(
                    order_id=self.order_id, request_id=event.request_id, notify=me,
                    authorization_id=event.authorization_id))
            case m.PaymentRefundRequested():
                await self.ctx.send(s.gateway, GatewayRefund(
                    order_id=self.order_id, request_id=event.request_id, notify=me,
                    amount=event.amount))
            case m.FulfillmentSubmitted():
                fo = self.state.fulfillment_order(event.fulfillment_order_id)
                if fo is not None:
                    lines = tuple(PickLine(line_id=lq.line_id, sku=self._sku(lq.line_id),
                                           quantity=lq.quantity) for lq in fo.lines)
                    await self.ctx.send(Address(f"warehouse/{fo.warehouse_id}"), WarehouseSubmit(
                        order_id=self.order_id, fulfillment_order_id=fo.fulfillment_order_id,
                        lines=lines, notify=me,
                        backorder=fo.backorder))
            case m.FulfillmentCanceled():
                fo = self.state.fulfillment_order(event.fulfillment_order_id)
                if fo is not None:
                    await self.ctx.send(Address(f"warehouse/{fo.warehouse_id}"), WarehouseCancel(
                        order_id=self.order_id, fulfillment_order_id=fo.fulfillment_order_id,
                        notify=me))
            case _:
                return
        if isinstance(event, (m.PaymentAuthorizationRequested, m.PaymentCaptureRequested,
                              m.PaymentVoidRequested, m.PaymentRefundRequested)):
            self._timeouts[event.request_id] = self.ctx.schedule(
                s.gateway_timeout, RequestTimedOut(order_id=self.order_id,
                                                   request_id=event.request_id))

    def _cancel_resolved_timeouts(self) -> None:
        """Cancel the timeouts of requests the gateway answered: once a request
        is no longer pending it never is again, so ``on_timeout`` would ignore
        the timer; cancelling it spares the kernel a delivery per request."""
        resolved = [rid for rid in self._timeouts
                    if (r := self.state.request(rid)) is None
                    or r.status is not RequestStatus.PENDING]
        for rid in resolved:
            self.ctx.cancel(self._timeouts.pop(rid))

    def _sku(self, line_id: str) -> str:
        line = self.state.line(line_id)
        return line.sku if line is not None else line_id

    def _telemetry(self) -> None:
        """Report a stage change, and arm the new stage's stuck check."""
        stage = self.state.lifecycle
        if stage is not self._stage:
            now = self.ctx.now()
            # ``_value_``: the ``value`` property is Python code in 3.11.
            previous = self._stage._value_ if self._stage is not None else ""
            self._stage = stage
            self._stage_since = now
            self.ctx.emit(OrderStageEntered(order_id=self.order_id, stage=stage._value_,
                                            previous=previous))
            deadline = self._deadline(stage)
            if deadline and (self._stuck_due is None or now + deadline < self._stuck_due):
                self._arm_stuck_check(now + deadline)

    async def _finish(self) -> None:
        """The order reached a terminal stage with no hold open: report it."""
        state = self.state
        self._finished = True
        await self._publish()  # the final views precede the finish
        self.ctx.emit(OrderFinished(order_id=self.order_id, final_state=state.lifecycle._value_,
                                    placed_at=state.placed_at or 0.0))
        self.ctx.schedule(self.settings.retire_after, _Retire())

    async def _publish(self) -> None:
        """Tell the downstream systems what changed for them, once per turn.

        Called when a turn's changes are all in (and before the order's
        finish is reported): states the order passed through within the turn
        lasted no time, so no system is sent them and no view mismatch is
        opened for them, as an outbox publishes once per transaction.
        """
        state = self.state
        # Every projection is a function of the snapshot's fields other than
        # the order id and the version: while those are unchanged, no view can
        # have changed, so the snapshot and projections are not rebuilt.
        key = (state.lifecycle, state.held_lifecycle, state.payment, state.captured_amount,
               state.refunded_amount, state.line_items, len(state.notifications))
        snapshot: SyncSnapshot | None = None
        if key != self._view_key:
            self._view_key = key
            snapshot = SyncSnapshot.of(state)
            for system in self.settings.downstream:
                status = project(system, snapshot)
                if self._views.get(system) != status:
                    self._views[system] = status
                    self._dirty |= {system}
                    self.ctx.emit(SystemViewChanged(order_id=self.order_id,
                                                    system=f"coordinator:{system}",
                                                    status=status))
        if self._dirty:
            if self.settings.policy.downstream_sync.mode is SyncMode.PUSH:
                await self._push_snapshot(snapshot)
            elif self._sync_timer is None:
                now = self.ctx.now()
                interval = self.settings.policy.downstream_sync.batch_interval
                self._sync_timer = self.ctx.schedule((now // interval + 1) * interval - now,
                                                     _SyncFlush())

    def _deadline(self, stage: Lifecycle) -> float:
        if stage in TERMINAL_STAGES:
            return 0.0
        if stage is Lifecycle.DELIVERED:
            s = self.state
            if s.captured_amount - s.refunded_amount >= s.amount_due:
                return 0.0  # delivered and paid: nothing is due
        return self.settings.policy.stuck_deadlines.get(stage, 0.0)

    def _arm_stuck_check(self, due: float) -> None:
        """One pending stuck check per order (not one per stage): memory stays
        flat however many stages an order goes through."""
        self._stuck_due = due
        self.ctx.schedule(due - self.ctx.now(), StuckCheck(
            order_id=self.order_id, stage="", version=0, entered_at=due))

    async def _push_snapshot(self, snapshot: SyncSnapshot | None = None) -> None:
        """Send the latest snapshot to the systems whose view of it changed
        (``snapshot``: the current state's, if the caller already built it)."""
        if snapshot is None:
            snapshot = SyncSnapshot.of(self.state)
        sync = SyncOrder(snapshot=snapshot)
        for system in self.settings.downstream:
            if system in self._dirty:
                await self.ctx.send(Address(system), sync)
        self._dirty = _NONE

