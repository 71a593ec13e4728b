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
4. runs the policy engine (:func:`._react.react`, a pure function) and
   performs its reaction: the effects it chose, in order, then its
   commands, decided like any other.

The engine runs inside the order's own turn, so it always sees the state
its commands will be decided against: no race between two automation
decisions for one order. Cross-order policy (duplicate detection,
escalation) lives in the Automation and Watchdog actors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from orderloom.runtime import (
    Address,
    DomainError,
    Message,
    PersistentActor,
    Store,
    TimerId,
    handler,
)

from ..order import _messages as m
from ..order._decide import COORDINATOR_SOURCE
from ..order._invariants import check_decision, check_step
from ..order._order import OutcomeKind, apply_probed, decide_probed
from ._order_record import (
    CopyCounted,
    EventHeld,
    FinishReported,
    HeldTaken,
    OrderRecord,
    StageEntered,
    SyncDue,
    SyncFlushed,
    WrongActionReported,
    evolve_record,
)
from ..order._order_state import OrderState, PaymentRequest
from ..order._sources import SourceOrdering, awaits_gap, source_ordering
from ..order._reaction import (
    AssignCase,
    CancelAsked,
    EventsApplied,
    PersonDecided,
    PolicyTimer,
    QueryGateway,
    Reaction,
    SetTimer,
    StuckEscalated,
    Trigger,
    VerifyAddress,
    WithdrawCase,
)
from ..order._react import react, unsafe_shipments
from ._settings import OrderSettings
from ..order._sourcing import StockView
from ..order._policy import SyncMode
from ._protocol import (
    AddressChecked,
    CaseAssigned,
    CaseDecision,
    CaseWithdrawn,
    CheckAddress,
    CustomerCancel,
    Escalate,
    GatewayAuthorize,
    GatewayCapture,
    GatewayQuery,
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
    team_address,
    warehouse_address,
)
from ..order._states import TERMINAL_STAGES, Lifecycle, PaymentOperation, RequestStatus
from ._telemetry import (
    ActionTaken,
    CaseHandedOff,
    CaseOpened,
    CommandRefused,
    EventIgnored,
    GatewayTimedOut,
    OrderFinished,
    OrderStageEntered,
    OrderStuck,
    SystemViewChanged,
    WrongAction,
    chain_of,
)
from ._views import project

__all__ = ["OrderActor"]


_APPLIED = OutcomeKind.APPLIED
_NO_VIEW = StockView()
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


class OrderActor(PersistentActor[OrderRecord]):
    """The coordinator's record of one order, and its automation.

    Its state is the fold of its stream in the store (:class:`OrderRecord`:
    the order's applied events and the coordinator's notes). Each message is
    one turn, committed before its sends, timers and telemetry are released;
    a restarted actor restores from the store and carries on. What it keeps
    besides (handles of its pending timers, the views last published) is
    rebuilt from the store in :meth:`on_start`: the views and their key are
    functions of the order's state, the timer handles and the stuck check's
    due time come from :meth:`pending_timers`. So an open order may stop
    while it waits (``settings.passivate_idle_after``) and come back the
    same; a finished one waits for its retirement instead, which also tells
    the outside systems they may forget it.

    Args:
        order_id: the order.
        settings: policy, addresses and timeouts shared by all orders.
        store: where the order's journal lives (stream ``order/{order_id}``).
    """

    snapshot_every = 8
    """On a durable store, a snapshot every 8 journal entries: a restore folds
    at most that many (a store that is not durable takes one every turn)."""

    # One per order in flight: no instance dictionary.
    __slots__ = ("order_id", "settings", "_views", "_view_key", "_timeouts",
                 "_stuck_due", "_stuck_timer", "_sync_timer", "_retire_timer")

    def __init__(self, order_id: str, settings: OrderSettings, store: Store) -> None:
        self.order_id = order_id
        self.settings = settings
        # Derived from the store (see on_start): the views last published and
        # the handles of the pending timers the actor may cancel.
        self._views: dict[str, str] = {}
        self._view_key: tuple[object, ...] | None = None
        self._timeouts: dict[str, TimerId] = {}  # request id -> its gateway timeout
        self._stuck_due: float | None = None
        self._stuck_timer: TimerId | None = None
        self._sync_timer: TimerId | None = None  # a batch flush is due
        self._retire_timer: TimerId | None = None
        super().__init__(store)
        self.passivate_after = settings.passivate_idle_after

    # -- the journal -------------------------------------------------------------------

    def initial_state(self) -> OrderRecord:
        return OrderRecord(order=OrderState(order_id=self.order_id))

    def evolve(self, state: OrderRecord, event: object) -> OrderRecord:
        return evolve_record(state, event)

    @property
    def order(self) -> OrderState:
        """The order's state: the fold of its applied events."""
        return self.state.order

    async def on_start(self) -> None:
        """Restore the record, then what the actor keeps besides: the views it
        published at the end of its last turn (a function of the order's
        state) and the handles of its pending timers."""
        await super().on_start()
        if self.version:
            order = self.state.order
            self._view_key = _view_key(order)
            snapshot = SyncSnapshot.of(order)
            self._views = {system: project(system, snapshot)
                           for system in self.settings.downstream}
        for handle, message in self.pending_timers():
            match message:
                case RequestTimedOut():
                    self._timeouts[message.request_id] = handle
                case StuckCheck():
                    self._stuck_due, self._stuck_timer = message.entered_at, handle
                case _SyncFlush():
                    self._sync_timer = handle
                case _Retire():
                    self._retire_timer = handle

    def quiescent(self) -> bool:
        """An open order may passivate: nothing it keeps lives only in memory
        (see the class docstring). A finished one retires instead."""
        return not self.state.finished

    # -- inputs --------------------------------------------------------------------

    @handler
    async def on_command(self, command: m.Command) -> None:
        """A command from a person, the engine, or another actor."""
        await self._run((command,))

    @handler
    async def on_event(self, event: m.Event) -> None:
        """An outside fact: resequenced per source, then applied."""
        order = self.state.order
        if awaits_gap(order, event, self.state.copies.get(event.source, 0)):
            # A gap in a sequenced source: hold the event until the missing
            # ones arrive (or give up waiting), so a reordered pair is applied
            # in order, not dropped. A monotonic source never waits.
            expected = self.state.next_seq(event.source)
            waiting = self.state.held.get(event.source)
            if waiting and (held := waiting.get(event.source_seq)) is not None \
                    and held.event_id == event.event_id:
                self.ctx.emit(EventIgnored(
                    order_id=self.order_id, event_type=type(event).__name__,
                    event_id=event.event_id, source=event.source,
                    outcome=OutcomeKind.DUPLICATE.value, reason="already held for a gap"))
                return
            if not waiting:
                self.ctx.schedule(self.settings.resequence_timeout,
                                  _Resequence(source=event.source, gap=expected))
            self.record(EventHeld(event=event))
            return
        monotonic = source_ordering(event.source) is SourceOrdering.MONOTONIC
        if monotonic and self._parked(event):
            return
        applied = self._offer((event,), park=monotonic)
        if self.state.held:  # rarely: most events arrive in order
            if not monotonic:
                applied += self._drain_pending(event.source)
            if applied:
                applied += self._retry_parked()
        await self._after(applied)

    def _parked(self, event: m.Event) -> bool:
        """Whether ``event`` is a copy of one already parked (reported as a duplicate)."""
        held = self.state.held.get(event.source, {}).get(event.source_seq)
        if held is None or held.event_id != event.event_id:
            return False
        self.ctx.emit(EventIgnored(
            order_id=self.order_id, event_type=type(event).__name__,
            event_id=event.event_id, source=event.source,
            outcome=OutcomeKind.DUPLICATE.value, reason="already parked"))
        return True

    def _retry_parked(self) -> list[m.Event]:
        """Offer the parked events of monotonic sources again, oldest first,
        for as long as one of them applies: a platform's events that came
        ahead of what they need (a capture before its authorization) apply
        once that has arrived. Each is taken out only when it applies or is
        now stale; the rest wait for their timer."""
        applied: list[m.Event] = []
        progress = True
        while progress:
            progress = False
            for source, pending in sorted(self.state.held.items()):
                if source_ordering(source) is not SourceOrdering.MONOTONIC:
                    continue
                for seq in sorted(pending):
                    event = pending[seq]
                    _, outcome = apply_probed(self.state.order, event, None)
                    if outcome.kind is OutcomeKind.REJECTED:
                        continue  # still ahead of what it needs
                    self.record(HeldTaken(source=source, seqs=(seq,)))
                    got = self._offer((event,))
                    applied += got
                    progress = progress or bool(got)
                if progress:
                    break  # the state changed: start over from the oldest
        return applied

    @handler
    async def on_resequence(self, msg: _Resequence) -> None:
        """Waited long enough for a gap: apply what is held, in order. For a
        monotonic source (no gaps), the parked event ``msg.gap`` (its sequence
        number) has waited long enough: offered once more, and reported
        ignored if it still cannot apply."""
        if source_ordering(msg.source) is SourceOrdering.MONOTONIC:
            parked = self.state.held.get(msg.source, {}).get(msg.gap)
            if parked is None:
                return  # it applied meanwhile
            self.record(HeldTaken(source=msg.source, seqs=(msg.gap,)))
            applied = self._offer((parked,))
            if applied and self.state.held:
                applied += self._retry_parked()
            await self._after(applied)
            return
        pending = self.state.held.get(msg.source)
        if self.state.next_seq(msg.source) != msg.gap or not pending:
            return  # that gap was filled; a newer one has its own timer
        seqs = tuple(sorted(pending))
        self.record(HeldTaken(source=msg.source, seqs=seqs))
        applied = self._offer(tuple(pending[k] for k in seqs))
        await self._after(applied)

    @handler
    async def on_timeout(self, msg: RequestTimedOut) -> None:
        """A gateway request got no answer: its outcome is now unknown."""
        self._timeouts.pop(msg.request_id, None)  # it fired
        order = self.state.order
        request = order.request(msg.request_id)
        if request is None or request.status is not RequestStatus.PENDING:
            return
        self.ctx.emit(GatewayTimedOut(order_id=self.order_id, request_id=msg.request_id,
                                      operation=request.operation.value))
        seq = order.last_seq(COORDINATOR_SOURCE) + 1
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
        seq = self.state.order.last_seq(COORDINATOR_SOURCE) + 1
        event = kind(order_id=self.order_id, event_id=self.ctx.new_id(),
                     source=COORDINATOR_SOURCE, source_seq=seq, occurred_at=self.ctx.now(),
                     **fields)
        await self._after(self._offer((event,)))

    @handler
    async def on_shortage(self, msg: StockShortage) -> None:
        """A warehouse said what it could cover of a rejected fulfillment order."""
        if self.state.order.fulfillment_order(msg.fulfillment_order_id) is None:
            return  # not one of this order's
        await self._learnt(m.ShortageRecorded, fulfillment_order_id=msg.fulfillment_order_id,
                           warehouse_id=msg.warehouse_id, available=tuple(
                               m.LineQuantity(line_id=pl.line_id, quantity=pl.quantity)
                               for pl in msg.available if pl.quantity > 0))

    @handler
    async def on_decision(self, msg: CaseDecision) -> None:
        """A person decided one of this order's cases."""
        await self._run(await self._policy(PersonDecided(
            case_id=msg.case_id, decision=msg.decision, by=msg.reviewer,
            handoff_to=msg.handoff_to, note=msg.note, team=msg.team)))

    @handler
    async def on_customer_cancel(self, msg: CustomerCancel) -> None:
        """The customer wants the order canceled."""
        await self._run(await self._policy(CancelAsked(reason=msg.reason)))

    @handler
    async def on_escalate(self, msg: Escalate) -> None:
        """The watchdog escalates this stuck order."""
        await self._run(await self._policy(StuckEscalated(stage=msg.stage)))

    @handler
    async def on_policy_timer(self, msg: PolicyTimer) -> None:
        """A retry or reconciliation the engine scheduled."""
        await self._run(await self._policy(msg))

    @handler
    async def on_stuck_check(self, msg: StuckCheck) -> None:
        """Is the order still where it was a deadline ago?"""
        if msg.entered_at != self._stuck_due:
            return  # superseded by an earlier check
        self._stuck_due = self._stuck_timer = None  # it fired
        record = self.state
        stage = record.stage
        if record.finished or stage is None:
            return  # the order is done
        now = self.ctx.now()
        deadline = self._deadline(stage)
        if not deadline:
            return
        due = record.stage_since + deadline
        if now < due:
            self._arm_stuck_check(due)  # the stage changed since: check its own deadline
            return
        holds = record.order.open_holds
        reason = holds[0].reason.value if holds else "no_progress"
        age = now - record.stage_since
        self.ctx.emit(OrderStuck(order_id=self.order_id, stage=stage.value, reason=reason,
                                 age=age, deadline=deadline))
        await self.ctx.send(self.settings.watchdog, StuckReport(
            order_id=self.order_id, stage=stage.value, reason=reason, age=age, deadline=deadline,
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
        telling the systems that hold details of it that they may forget them.
        Its journal stays in the store: a later message restores it."""
        self._retire_timer = None
        order = self.state.order
        if order.unresolved_requests() or self.state.held:
            self._retire_timer = self.ctx.schedule(self.settings.retire_after, _Retire())
            return
        if self._sync_timer is not None:
            # A batch flush is still due: the systems get the final state now,
            # not never (the timer would find the actor gone).
            self.ctx.cancel(self._sync_timer)
            self._sync_timer = None
            await self._push_snapshot()
        fos = order.fulfillment_orders
        notice = OrderRetired(order_id=self.order_id,
                              fulfillment_order_ids=tuple(fo.fulfillment_order_id for fo in fos),
                              captured=order.captured_amount,
                              refunded=order.refunded_amount)
        for address in (self.settings.gateway, *(Address(s) for s in self.settings.downstream),
                        *sorted({warehouse_address(fo.warehouse_id) for fo in fos})):
            await self.ctx.send(address, notice)
        # Nothing stays pending for a retired order (a stuck check not yet
        # due, the timeout of an answered request): its stream goes quiet.
        for handle, _ in self.pending_timers():
            self.ctx.cancel(handle)
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
            if f"{command.command_id}:1" in self.state.order.seen_event_ids:
                # A redelivery of a command already applied: nothing to do again.
                emit(EventIgnored(order_id=self.order_id, event_type=type(command).__name__,
                                  event_id=command.command_id, source=command.issued_by,
                                  outcome=OutcomeKind.DUPLICATE.value,
                                  reason="the command was applied already"))
                continue
            try:
                events, probes = decide_probed(self.state.order, command)
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
                on_exception_path=bool(self.state.order.open_holds), approved_by=approved_by,
                approver=approver))
            for violation in check_decision(self.state.order, command):
                self._wrong(violation.name, violation.detail)
            applied = self._offer(events, probes)
            # The engine's state-driven step runs only once the queue is empty,
            # so it never proposes what a queued command is about to do.
            queue += await self._react(applied, progress=not queue)
        if queue:
            self.ctx.emit(CommandRefused(order_id=self.order_id, command_type="*",
                                         issued_by="engine", reason="command budget exhausted"))
        await self._publish()
        if self.state.finished and self._retire_timer is None:
            # Restored after it retired (a message came for a finished order):
            # it retires again once quiet.
            self._retire_timer = self.ctx.schedule(self.settings.retire_after, _Retire())

    async def _after(self, applied: Sequence[m.Event]) -> None:
        await self._run(await self._react(applied))

    def _offer(
        self, events: Sequence[m.Event], probes: Sequence[OrderState] = (),
        park: bool = False,
    ) -> list[m.Event]:
        """Apply events one by one; record what was not applied and any violation.

        ``probes``: the states ``decide_probed`` reached by evolving ``events``
        in turn from the current state; each is reused while the chain of
        applied states still matches the probe's (it always does unless an
        event is not applied), instead of evolving the event again.
        ``park``: an event the order refuses (not a duplicate, not stale) is
        parked instead of dropped, for ``resequence_timeout`` seconds: a
        monotonic source's events may overtake what they need, and a platform
        does not send them again.
        """
        applied: list[m.Event] = []
        expected: OrderState | None = self.state.order if probes else None
        for i, event in enumerate(events):
            before = self.state.order
            probe = probes[i] if before is expected else None
            after, outcome = apply_probed(before, event, probe)
            expected = probe
            if outcome.kind is _APPLIED:
                applied.append(event)
                self.record(event, self.state.with_order(after))
            elif park and outcome.kind is OutcomeKind.REJECTED:
                self.record(EventHeld(event=event))
                self.ctx.schedule(self.settings.resequence_timeout,
                                  _Resequence(source=event.source, gap=event.source_seq))
                continue  # no violation: nothing happened to the order
            else:
                if (outcome.kind is OutcomeKind.DUPLICATE and event.source != COORDINATOR_SOURCE
                        and event.source_seq >= self.state.next_seq(event.source)
                        and source_ordering(event.source) is SourceOrdering.SEQUENCED):
                    # An outside source's copy under a fresh number (a replay):
                    # the number is spent, so its next event must not wait for it.
                    self.record(CopyCounted(source=event.source, seq=event.source_seq))
                self.ctx.emit(EventIgnored(
                    order_id=self.order_id, event_type=type(event).__name__,
                    event_id=event.event_id, source=event.source, outcome=outcome.kind.value,
                    reason=str(outcome.error) if outcome.error else ""))
            for violation in check_step(before, event, outcome, after):
                self._wrong(violation.name, violation.detail)
        return applied

    def _wrong(self, invariant: str, detail: str) -> None:
        """Report a broken invariant once per order, with the message that caused it."""
        key = f"{invariant}:{detail}"
        if key in self.state.reported:
            return
        self.record(WrongActionReported(key=key))
        self.ctx.emit(WrongAction(order_id=self.order_id, invariant=invariant,
                                  detail=detail, chain=chain_of(self.ctx.envelope)))

    def _drain_pending(self, source: str) -> list[m.Event]:
        applied: list[m.Event] = []
        while pending := self.state.held.get(source):
            nxt = self.state.next_seq(source)
            event = pending.get(nxt)
            if event is None:
                # A further gap: it gets its own wait.
                self.ctx.schedule(self.settings.resequence_timeout,
                                  _Resequence(source=source, gap=nxt))
                break
            self.record(HeldTaken(source=source, seqs=(nxt,)))
            applied += self._offer((event,))
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
        for detail in unsafe_shipments(self.state.order, applied):
            self._wrong("never_ship_unpaid", detail)
        self._telemetry()
        order = self.state.order
        # Tested here, not in a coroutine of its own: nearly every turn does not finish.
        if (not self.state.finished and order.lifecycle in TERMINAL_STAGES
                and not order.open_holds):
            await self._finish()
        for event in applied:  # a plain loop: no generator for ``any``
            if isinstance(event, m.OrderPlaced):
                await self.ctx.send(self.settings.automation, OrderUpdated(
                    order_id=self.order_id, state=order, events=tuple(applied)))
                break
        if self.state.finished:
            return []
        return await self._policy(EventsApplied(events=tuple(applied), progress=progress))

    async def _policy(self, trigger: Trigger) -> list[m.Command]:
        """Run the policy engine on ``trigger`` and perform its effects, in the
        order it chose them (the turn releases them after its commit); its
        commands are returned for deciding."""
        ctx, settings = self.ctx, self.settings
        board = settings.stock
        order = self.state.order
        reaction: Reaction = react(order, trigger, settings.policy, ctx.now(),
                                   ids=ctx.new_id, wiring=settings.wiring,
                                   stock=board.view if board is not None else _NO_VIEW)
        for effect in reaction.effects:
            if isinstance(effect, SetTimer):
                ctx.schedule(effect.delay, effect.timer)
            elif isinstance(effect, QueryGateway):
                await ctx.send(settings.gateway, GatewayQuery(
                    order_id=self.order_id, request_id=effect.request_id, notify=ctx.address))
            elif isinstance(effect, AssignCase):
                await self._assign_case(effect)
            elif isinstance(effect, WithdrawCase):
                await ctx.send(team_address(effect.team),
                               CaseWithdrawn(order_id=self.order_id, case_id=effect.hold_id))
            elif isinstance(effect, VerifyAddress):
                if settings.address_service is not None:
                    await ctx.send(settings.address_service,
                                   CheckAddress(order_id=self.order_id, correct=effect.correct))
            else:  # ResendRequest: the same request again (its id is the idempotency key)
                request = order.request(effect.request_id)
                if request is not None:
                    await ctx.send(settings.gateway, self._gateway_message(request))
        return list(reaction.commands)

    async def _assign_case(self, effect: AssignCase) -> None:
        """Put a case in a team's queue (and say it opened, or moved)."""
        order, ctx = self.state.order, self.ctx
        hold = order.hold(effect.hold_id)
        if effect.handed_off_from is not None:
            ctx.emit(CaseHandedOff(order_id=self.order_id, case_id=effect.hold_id,
                                   reason=hold.reason.value if hold else "other",
                                   from_team=effect.handed_off_from, to_team=effect.team))
        if hold is None:
            return
        reason = hold.reason.value
        visit = [h.hold_id for h in order.holds if h.reason is hold.reason].index(
            hold.hold_id) + 1
        if not hold.handoffs:
            ctx.emit(CaseOpened(order_id=self.order_id, case_id=hold.hold_id, reason=reason,
                                team=effect.team, deadline=hold.deadline,
                                proposal=hold.proposal))
        await ctx.send(team_address(effect.team), CaseAssigned(
            order_id=self.order_id, case_id=hold.hold_id, reason=reason, team=effect.team,
            proposal=hold.proposal, options=hold.options, opened_at=hold.opened_at,
            deadline=hold.deadline, history=tuple(h.from_team for h in hold.handoffs),
            escalate_to=self.settings.policy.route(hold.reason).escalate_to,
            notify=ctx.address, visit=visit))

    async def _effect(self, event: m.Event) -> None:
        """The outbox: each decided event's message to the outside, exactly once."""
        s, me, order = self.settings, self.ctx.address, self.state.order
        match event:
            case (m.PaymentAuthorizationRequested() | m.PaymentCaptureRequested()
                  | m.PaymentVoidRequested() | m.PaymentRefundRequested()):
                request = order.request(event.request_id)
                if request is not None:
                    await self.ctx.send(s.gateway, self._gateway_message(request))
            case m.FulfillmentSubmitted():
                fo = order.fulfillment_order(event.fulfillment_order_id)
                if fo is not None:
                    lines = tuple(PickLine(line_id=lq.line_id, sku=self._sku(lq.line_id),
                                           quantity=lq.quantity) for lq in fo.lines)
                    await self.ctx.send(warehouse_address(fo.warehouse_id), WarehouseSubmit(
                        order_id=self.order_id, fulfillment_order_id=fo.fulfillment_order_id,
                        lines=lines, notify=me,
                        backorder=fo.backorder))
            case m.FulfillmentCanceled():
                fo = order.fulfillment_order(event.fulfillment_order_id)
                if fo is not None:
                    await self.ctx.send(warehouse_address(fo.warehouse_id), WarehouseCancel(
                        order_id=self.order_id, fulfillment_order_id=fo.fulfillment_order_id,
                        notify=me))
            case _:
                return
        if isinstance(event, (m.PaymentAuthorizationRequested, m.PaymentCaptureRequested,
                              m.PaymentVoidRequested, m.PaymentRefundRequested)):
            self._timeouts[event.request_id] = self.ctx.schedule(
                s.gateway_timeout, RequestTimedOut(order_id=self.order_id,
                                                   request_id=event.request_id))

    def _gateway_message(self, r: PaymentRequest) -> Message:
        """The gateway's message for payment request ``r``: sent once when the
        request is decided, and again as is (same id, the gateway's
        idempotency key) when the policy retries an unknown outcome."""
        oid, me = self.order_id, self.ctx.address
        if r.operation is PaymentOperation.AUTHORIZE:
            return GatewayAuthorize(order_id=oid, request_id=r.request_id, notify=me,
                                    amount=r.amount,
                                    customer_id=self.state.order.customer_id or "")
        if r.operation is PaymentOperation.CAPTURE and r.authorization_id:
            return GatewayCapture(order_id=oid, request_id=r.request_id, notify=me,
                                  authorization_id=r.authorization_id, amount=r.amount)
        if r.operation is PaymentOperation.VOID and r.authorization_id:
            return GatewayVoid(order_id=oid, request_id=r.request_id, notify=me,
                               authorization_id=r.authorization_id)
        return GatewayRefund(order_id=oid, request_id=r.request_id, notify=me, amount=r.amount)

    def _cancel_resolved_timeouts(self) -> None:
        """Cancel the timeouts of requests the gateway answered: once a request
        is no longer pending it never is again, so ``on_timeout`` would ignore
        the timer; cancelling it spares the kernel a delivery per request."""
        order = self.state.order
        resolved = [rid for rid in self._timeouts
                    if (r := order.request(rid)) is None
                    or r.status is not RequestStatus.PENDING]
        for rid in resolved:
            self.ctx.cancel(self._timeouts.pop(rid))

    def _sku(self, line_id: str) -> str:
        line = self.state.order.line(line_id)
        return line.sku if line is not None else line_id

    def _telemetry(self) -> None:
        """Report a stage change, and arm the new stage's stuck check."""
        stage = self.state.order.lifecycle
        current = self.state.stage
        if stage is not current:
            now = self.ctx.now()
            # ``_value_``: the ``value`` property is Python code in 3.11.
            previous = current._value_ if current is not None else ""
            self.record(StageEntered(stage=stage, at=now))
            self.ctx.emit(OrderStageEntered(order_id=self.order_id, stage=stage._value_,
                                            previous=previous))
            deadline = self._deadline(stage)
            if deadline and (self._stuck_due is None or now + deadline < self._stuck_due):
                self._arm_stuck_check(now + deadline)

    async def _finish(self) -> None:
        """The order reached a terminal stage with no hold open: report it."""
        order = self.state.order
        self.record(FinishReported(at=self.ctx.now()))
        await self._publish()  # the final views precede the finish
        self.ctx.emit(OrderFinished(order_id=self.order_id, final_state=order.lifecycle._value_,
                                    placed_at=order.placed_at or 0.0))
        if self._stuck_timer is not None:
            # A finished order is never stuck (``on_stuck_check`` returns at
            # once): its pending check would be a turn that does nothing.
            self.ctx.cancel(self._stuck_timer)
            self._stuck_due = self._stuck_timer = None
        self._retire_timer = self.ctx.schedule(self.settings.retire_after, _Retire())

    async def _publish(self) -> None:
        """Tell the downstream systems what changed for them, once per turn.

        Called when a turn's changes are all in (and before the order's
        finish is reported): states the order passed through within the turn
        lasted no time, so no system is sent them and no view mismatch is
        opened for them, as an outbox publishes once per transaction.
        """
        order = self.state.order
        # Every projection is a function of the snapshot's fields other than
        # the order id and the version: while those are unchanged, no view can
        # have changed, so the snapshot and projections are not rebuilt.
        key = _view_key(order)
        if key == self._view_key:
            return
        self._view_key = key
        snapshot = SyncSnapshot.of(order)
        changed: list[str] = []
        for system in self.settings.downstream:
            status = project(system, snapshot)
            if self._views.get(system) != status:
                self._views[system] = status
                changed.append(system)
                self.ctx.emit(SystemViewChanged(order_id=self.order_id,
                                                system=f"coordinator:{system}",
                                                status=status))
        if not changed:
            return
        if self.settings.policy.downstream_sync.mode is SyncMode.PUSH:
            await self._push_snapshot(changed, snapshot)
            return
        owed = self.state.sync_due
        if not owed.issuperset(changed):
            self.record(SyncDue(systems=owed.union(changed)))
        if self._sync_timer is None:
            now = self.ctx.now()
            interval = self.settings.policy.downstream_sync.batch_interval
            self._sync_timer = self.ctx.schedule((now // interval + 1) * interval - now,
                                                 _SyncFlush())

    def _deadline(self, stage: Lifecycle) -> float:
        if stage in TERMINAL_STAGES:
            return 0.0
        if stage is Lifecycle.DELIVERED:
            s = self.state.order
            if s.captured_amount - s.refunded_amount >= s.amount_due:
                return 0.0  # delivered and paid: nothing is due
        return self.settings.policy.stuck_deadlines.get(stage, 0.0)

    def _arm_stuck_check(self, due: float) -> None:
        """One pending stuck check per order (not one per stage): memory stays
        flat however many stages an order goes through."""
        if self._stuck_timer is not None:
            self.ctx.cancel(self._stuck_timer)
        self._stuck_due = due
        self._stuck_timer = self.ctx.schedule(due - self.ctx.now(), StuckCheck(
            order_id=self.order_id, stage="", version=0, entered_at=due))

    async def _push_snapshot(self, systems: Sequence[str] | None = None,
                             snapshot: SyncSnapshot | None = None) -> None:
        """Send the latest snapshot to ``systems`` (None: the systems a batch
        flush owes it); ``snapshot``: the current state's, if the caller built it."""
        if systems is None:
            owed = self.state.sync_due
            if not owed:
                return
            self.record(SyncFlushed())
            systems = [s for s in self.settings.downstream if s in owed]
        if snapshot is None:
            snapshot = SyncSnapshot.of(self.state.order)
        sync = SyncOrder(snapshot=snapshot)
        for system in systems:
            await self.ctx.send(Address(system), sync)


def _view_key(order: OrderState) -> tuple[object, ...]:
    """What every downstream projection of ``order`` depends on (the snapshot's
    fields other than the order id and the version)."""
    return (order.lifecycle, order.held_lifecycle, order.payment, order.captured_amount,
            order.refunded_amount, order.line_items, len(order.notifications))
