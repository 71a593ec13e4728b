"""The policy engine: what automation does next with one order, as the policy says.

It reacts to trustworthy events (payment authorized or captured, risk
assessed, warehouse assignment completed, shipment created, ...) and to the
order's state, and proposes commands. It never acts on a hunch: a command is
only proposed when the state it will be decided against allows it, and
irreversible ones (capture, refund, cancel, ship) on an exception path wait
for a person unless the policy waives that approval.

One engine per order, run by the Order actor inside its own turn. It keeps
no memory of the order: everything it reads is the order's state, folded
from the order's events (what automation learns from other actors is
recorded as an event first: screening, address verdict, stock shortages,
cancellation requests, risk replays), plus its settings. An engine built
afresh for a restored order therefore decides as the lost one would have.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import attrs

from orderloom.runtime import Address, Context, Message

from . import _messages as m
from ._inventory import StockBoard
from ._order_state import CancelRequest, OrderState
from ._policy import (
    AmbiguousPaymentAction,
    CaptureMode,
    FulfillmentTrigger,
    HighRiskAction,
    IrreversibleAction,
    Policy,
    ShortageAction,
)
from ._protocol import (
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
)
from ._sourcing import Need, StockView, choose_sources
from ._states import (
    Approver,
    AuthorizationStatus,
    Decision,
    FulfillmentStatus as FS,
    HoldReason as R,
    Lifecycle as L,
    NotificationKind,
    TERMINAL_STAGES as _DONE,
    Payment,
    PaymentFailure,
    PaymentOperation as Op,
    RequestStatus,
    Risk,
    ShipmentStatus,
    SourcingKind,
)
from ._telemetry import CaseHandedOff, CaseOpened

__all__ = ["Engine", "OrderSettings"]

# Tuples, not frozensets: membership in a tuple of enum members is an
# identity test, in a frozenset a call of the Python-level ``Enum.__hash__``
# (the engine tests these on every reaction).
_GONE = (FS.REJECTED, FS.CANCELED)
# Where a requested cancellation can still happen (as ``decide`` allows it).
_CANCELABLE = (L.PLACED, L.AWAITING_PAYMENT, L.READY_FOR_FULFILLMENT)
_RELEASE, _CANCEL = Decision.RELEASE, Decision.CANCEL
_LEVEL_SCORE = {Risk.NONE: 0.0, Risk.LOW: 0.2, Risk.MEDIUM: 0.5, Risk.HIGH: 0.9}


@attrs.frozen(kw_only=True)
class OrderSettings:
    """What every Order actor of one coordinator shares.

    Attributes:
        policy: the automation policy.
        warehouses: warehouse ids in order of preference.
        downstream: downstream system addresses (also their names).
        gateway_timeout: seconds before a gateway request's outcome is unknown.
        resequence_timeout: seconds to wait for a gap in a source's sequence.
        retire_after: seconds a finished order's actor lingers for late messages.
        stock: the coordinator's stock view, which the policy's ``sourcing``
            reads (None: no view, every warehouse believed to have everything).
    """

    policy: Policy
    warehouses: tuple[str, ...] = ("W1",)
    downstream: tuple[str, ...] = ("finance", "crm", "support", "notifications")
    gateway: Address = Address("gateway")
    automation: Address = Address("automation")
    watchdog: Address = Address("watchdog")
    address_service: Address | None = Address("address-service")
    gateway_timeout: float = 30.0
    resequence_timeout: float = 60.0
    retire_after: float = 900.0
    stock: StockBoard | None = None


_NO_VIEW = StockView()


class Engine:
    """Automation's decisions for one order: a function of the order's state,
    the input at hand and the settings; it holds no per-order data."""

    class TimerKind(enum.StrEnum):
        """What an engine timer is for."""

        REAUTHORIZE = "reauthorize"  # the gateway was unavailable: authorize again
        RISK = "risk"  # no risk assessment yet: ask for the authorization again
        GIVE_UP = "give_up"  # out of retries on an unknown outcome: a person decides
        QUERY = "query"  # ask the gateway what became of a request
        RETRY = "retry"  # send a request with an unknown outcome again

    @attrs.frozen(kw_only=True)
    class Timer(Message):
        """A retry or reconciliation the engine scheduled for itself."""

        kind: Engine.TimerKind
        request_id: str = ""
        attempt: int = 0

    # Settings only (shared by every order of a coordinator): an order's
    # memory is its state. A test holds the engine to these slots.
    __slots__ = ("settings", "policy", "actor_name")

    def __init__(self, settings: OrderSettings) -> None:
        self.settings = settings
        self.policy = settings.policy
        self.actor_name = f"automation:{settings.policy.name}"

    # -- helpers ---------------------------------------------------------------------

    def _stamp(self, ctx: Context, by: str | None = None) -> dict[str, Any]:
        return {"order_id": ctx.address.removeprefix("order/"), "command_id": ctx.new_id(),
                "issued_at": ctx.now(), "issued_by": by or self.actor_name}

    def _approval(self, s: OrderState, action: IrreversibleAction) -> tuple[bool, dict[str, Any]]:
        """May automation take ``action`` now, and under whose approval (the
        command's ``approved_by`` and ``approver`` fields)?"""
        if not s.open_holds:
            return True, {}
        if self.policy.needs_approval(action):
            return False, {}
        return True, {"approved_by": self.actor_name, "approver": Approver.AUTOMATION}

    def _hold(self, s: OrderState, ctx: Context, reason: R, proposal: Decision,
              options: tuple[Decision, ...] = (_RELEASE, _CANCEL), note: str = "") -> m.Command | None:
        if any(h.reason is reason for h in s.open_holds):
            return None
        route = self.policy.route(reason)
        hold_id = ctx.new_id()
        return m.OpenHold(**self._stamp(ctx), hold_id=hold_id, reason=reason,
                          owner_team=route.team, deadline=ctx.now() + route.deadline, note=note,
                          proposal=proposal, options=options)

    # -- inputs from other actors ----------------------------------------------------------

    async def decided(self, s: OrderState, msg: CaseDecision, ctx: Context) -> list[m.Command]:
        hold = s.hold(msg.case_id)
        if hold is None or hold not in s.open_holds:
            return []  # decided after the case was closed: nothing to do
        who = msg.reviewer
        if msg.decision is Decision.REASSIGN and msg.handoff_to and msg.handoff_to != hold.owner_team:
            return [m.HandOffHold(**self._stamp(ctx, who), hold_id=hold.hold_id,
                                  to_team=msg.handoff_to, note=msg.note)]
        if msg.decision is _CANCEL:
            return await self._request_cancel(s, ctx, f"{hold.reason.value}: decided by {who}",
                                              who, Approver.PERSON, hold_id=hold.hold_id)
        # The release records the decision: the fold clears what the case
        # was about (see ``_evolve``) and no withdrawal goes to the team.
        cmds: list[m.Command] = [m.ReleaseHold(**self._stamp(ctx, who), hold_id=hold.hold_id,
                                               resolution=f"released by {who}",
                                               decision=msg.decision)]
        follow = await self._after_release(s, hold.reason, ctx)
        return cmds + follow

    async def _after_release(self, s: OrderState, reason: R, ctx: Context) -> list[m.Command]:
        """What a person's "go on" means for each reason (besides what the
        release itself records: an address or duplicate case let go, capture
        failures reviewed)."""
        if s.cancel_request is not None and s.progress in _CANCELABLE:
            # The customer asked to cancel: once no case is open the cancel goes
            # ahead (``_progress``); a release must not start new work first.
            return []
        if reason is R.PAYMENT_AMBIGUOUS:
            for r in s.unresolved_requests():
                await self._query(s, r.request_id, ctx)
                self._schedule_check(ctx, _QUERY, r.request_id, 1)
        elif reason is R.AWAITING_PAYMENT:
            for r in s.unresolved_requests():
                if r.status is RequestStatus.UNKNOWN:
                    await self._query(s, r.request_id, ctx)
                    self._schedule_check(ctx, _QUERY, r.request_id, 1)
            return self._authorize(s, ctx)
        elif reason in (R.INVENTORY_OUT_OF_STOCK, R.SPLIT_FULFILLMENT_DECISION):
            return self._shortage(s, ctx, ShortageAction.SPLIT
                                  if reason is R.SPLIT_FULFILLMENT_DECISION
                                  else ShortageAction.BACKORDER)
        elif reason in (R.POLICY_EXCEPTION, R.OTHER):
            return self._redrive(s, ctx)
        return []

    async def customer_cancel(self, s: OrderState, msg: CustomerCancel,
                              ctx: Context) -> list[m.Command]:
        """A customer's cancellation (see :meth:`_request_cancel`)."""
        if s.progress in _DONE:
            return []
        return await self._request_cancel(s, ctx, msg.reason, "customer", Approver.CUSTOMER)

    async def _request_cancel(self, s: OrderState, ctx: Context, reason: str, by: str,
                              approver: Approver, hold_id: str | None = None) -> list[m.Command]:
        """Cancel on a customer's or a person's word, safely: pull back work
        not yet picked, let unknown gateway outcomes resolve, then cancel.
        Once goods are picked or shipped it cannot be undone: a customer's
        request becomes a case; a person's decision releases their hold."""
        shipped = any(fo.shipment is not ShipmentStatus.PENDING or fo.picked
                      for fo in s.fulfillment_orders if fo.status not in _GONE)
        if shipped:
            if hold_id is not None:
                return [m.ReleaseHold(**self._stamp(ctx, by), hold_id=hold_id,
                                      resolution="cancel decided, but the goods already left",
                                      decision=_CANCEL)]
            hold = self._hold(s, ctx, R.POLICY_EXCEPTION, _RELEASE, (_RELEASE, _CANCEL),
                              note="customer asked to cancel after picking or shipping")
            return [hold] if hold else []
        request = CancelRequest(reason=reason, requested_by=by, approver=approver)
        for r in s.unresolved_requests():
            if r.status is RequestStatus.UNKNOWN:
                await self._query(s, r.request_id, ctx)
                self._schedule_check(ctx, _QUERY, r.request_id, 1)
        pulls: list[m.Command] = [
            m.CancelFulfillment(**self._stamp(ctx, by),
                                fulfillment_order_id=fo.fulfillment_order_id, reason=reason)
            for fo in s.fulfillment_orders if fo.status in (FS.OPEN, FS.SCHEDULED, FS.SUBMITTED,
                                                            FS.ACCEPTED, FS.ON_HOLD)]
        # Recorded first: until the order is canceled the request stands, and
        # every later step reads it from the state.
        asked: list[m.Command] = [m.RequestCancellation(**self._stamp(ctx, by), reason=reason,
                                                        approver=approver)]
        return asked + pulls + self._customer_cancel_now(s, ctx, request)

    def _customer_cancel_now(self, s: OrderState, ctx: Context,
                             request: CancelRequest) -> list[m.Command]:
        """Cancel as ``request`` asks, once nothing is in flight."""
        if s.unresolved_requests():
            return []  # a gateway request is out: cancel when it resolves
        if any(fo.status in (FS.SUBMITTED, FS.ACCEPTED, FS.IN_PROGRESS)
               for fo in s.fulfillment_orders):
            return []  # wait for the warehouse to confirm the pull-back
        reason, by, approver = request.reason, request.requested_by, request.approver
        if approver is not Approver.PERSON and s.open_holds:
            # A customer's wish is a request, not a review: while a case is
            # open the cancel waits for it, unless the policy waives review.
            ok, approval = self._approval(s, IrreversibleAction.CANCEL)
            if not ok:
                return []
            by = approval["approved_by"]
            approver = approval["approver"]
        return [m.CancelOrder(**self._stamp(ctx, by), approved_by=by, approver=approver,
                              reason=reason)]

    async def escalate(self, s: OrderState, msg: Escalate, ctx: Context) -> list[m.Command]:
        if s.progress in _DONE:
            return []
        holds = s.open_holds
        if holds:
            hold = holds[0]
            target = self.policy.route(hold.reason).escalate_to
            if target and target != hold.owner_team:
                return [m.HandOffHold(**self._stamp(ctx), hold_id=hold.hold_id, to_team=target,
                                      note=f"escalated: stuck in {msg.stage}")]
            # No one to escalate to: put it back in front of its owners (a team
            # that still holds it ignores the copy).
            await self._assign_case(s, hold.hold_id, hold.owner_team, hold.reason.value, ctx)
            return []
        # Stuck before payment, or shipped with the money still not in, is a
        # payments case (its release re-authorizes or captures); otherwise a
        # policy exception (its release pulls work back from a silent warehouse).
        stage = L(msg.stage)
        unpaid_after_shipping = (stage in (L.FULFILLED, L.DELIVERED)
                                 and s.captured_amount - s.refunded_amount < s.amount_due)
        reason = (R.AWAITING_PAYMENT
                  if stage in (L.PLACED, L.AWAITING_PAYMENT) or unpaid_after_shipping
                  else R.POLICY_EXCEPTION)
        hold_cmd = self._hold(s, ctx, reason, _RELEASE, note=f"stuck in {msg.stage}")
        return [hold_cmd] if hold_cmd else []

    async def timer(self, s: OrderState, msg: Engine.Timer, ctx: Context) -> list[m.Command]:
        request = s.request(msg.request_id) if msg.request_id else None
        kind = msg.kind
        if kind is Engine.TimerKind.REAUTHORIZE:
            return self._authorize(s, ctx)
        if kind is Engine.TimerKind.RISK:
            probe = await self._probe_risk(s, ctx, msg.attempt)
            return probe + self._progress(s, ctx)
        if request is None or request.status is not RequestStatus.UNKNOWN:
            return []
        if kind is Engine.TimerKind.GIVE_UP:
            hold = self._hold(s, ctx, R.PAYMENT_AMBIGUOUS, _RELEASE, (_RELEASE,),
                              note=f"request {msg.request_id} still unknown after retries")
            return [hold] if hold else []
        if kind is Engine.TimerKind.QUERY:
            await self._query(s, msg.request_id, ctx)
            self._schedule_check(ctx, _QUERY, msg.request_id, msg.attempt + 1)
            return []
        await self._resend(s, msg.request_id, ctx)
        self._schedule_check(ctx, _RETRY, msg.request_id, msg.attempt + 1)
        return []

    # -- reacting to the order's events ----------------------------------------------------

    async def react(self, s: OrderState, applied: Sequence[m.Event], ctx: Context,
                    progress: bool = True) -> list[m.Command]:
        """Commands for the events just applied, then (with ``progress``) the
        next standard-path steps the state now allows."""
        cmds: list[m.Command] = []
        for event in applied:
            for cmd in await self._on(s, event, ctx):
                # Events applied together (a gap filled, a batch released) are
                # each seen against the same state: the first hold proposed for
                # a reason stands for the others, so one reason opens one case.
                if isinstance(cmd, m.OpenHold) and any(
                        isinstance(c, m.OpenHold) and c.reason is cmd.reason for c in cmds):
                    continue
                cmds.append(cmd)
        if progress and not cmds and not (len(applied) == 1
                                          and type(applied[0]) is m.ShortageRecorded):
            # (A shortage report alone changes nothing the standard path reads:
            # sourcing reads it once every warehouse has been tried.)
            cmds += await self._probe_risk(s, ctx)
            cmds += self._progress(s, ctx)
        return cmds

    async def _probe_risk(self, s: OrderState, ctx: Context,
                          attempt: int = 0) -> list[m.Command]:
        """Payment is secured but no risk assessment arrived (lost, or dropped
        as stale after a long reorder): ask the gateway to replay the
        authorization, which carries the assessment again. The first probe
        is recorded (``RiskReplayRequested``); its follow-ups are timers."""
        if s.risk is not Risk.PENDING or not s.payment_secured or s.progress in _DONE:
            return []
        if attempt == 0 and s.risk_replay_requested:
            return []  # a probe is already under way
        auths = [r for r in s.payment_requests if r.operation is Op.AUTHORIZE
                 and r.status is RequestStatus.SUCCEEDED]
        if not auths or attempt > self.policy.ambiguous_payment.retries:
            return []
        request_id = auths[-1].request_id
        await self._query(s, request_id, ctx)
        ctx.schedule(self.policy.ambiguous_payment.delay(attempt + 1),
                     Engine.Timer(kind=Engine.TimerKind.RISK, attempt=attempt + 1))
        if attempt:
            return []
        return [m.RequestRiskReplay(**self._stamp(ctx), request_id=request_id)]

    async def _on(self, s: OrderState, e: m.Event, ctx: Context) -> list[m.Command]:
        p = self.policy
        match e:
            case m.OrderPlaced():
                cmds = self._authorize(s, ctx)
                if self.settings.address_service is not None:
                    correct = p.address_failure.value == "auto_correct"
                    await ctx.send(self.settings.address_service,
                                   CheckAddress(order_id=s.order_id, correct=correct))
                if p.fulfillment_trigger is FulfillmentTrigger.ORDER_PLACED:
                    cmds.insert(0, m.ApproveShipment(**self._stamp(ctx), approved_by=self.actor_name,
                                                     approver=Approver.AUTOMATION,
                                                     reason="policy fulfils on order placed"))
                return cmds
            case m.OrderScreened():
                if e.duplicate_of is not None:
                    case = self._hold(s, ctx, R.DUPLICATE_ORDER, _CANCEL,
                                      note=f"same key as {e.duplicate_of}")
                    return [case] if case else []
                return []
            case m.AddressVerified():
                if not e.usable:
                    case = self._hold(s, ctx, R.INCORRECT_ADDRESS, _RELEASE,
                                      note="address failed validation")
                    return [case] if case else []
                return []
            case m.RiskAssessed():
                return self._risk(s, e, ctx)
            case m.PaymentFailed():
                return self._payment_failed(s, e, ctx)
            case m.PaymentOutcomeUnknown():
                return await self._ambiguous(s, e.request_id, ctx)
            case m.FulfillmentRejected():
                if self._next_warehouse(s) is None:
                    return self._shortage(s, ctx, p.stock_shortage)
                return []
            case m.Shipped():
                return [m.NotifyCustomer(**self._stamp(ctx), kind=NotificationKind.SHIPPED,
                                         fulfillment_order_id=e.fulfillment_order_id)]
            case m.HoldOpened():
                await self._assign_case(s, e.hold_id, e.owner_team, e.reason.value, ctx)
            case m.HoldHandedOff():
                hold = s.hold(e.hold_id)
                reason = hold.reason.value if hold else "other"
                ctx.emit(CaseHandedOff(order_id=s.order_id, case_id=e.hold_id, reason=reason,
                                       from_team=e.from_team, to_team=e.to_team))
                await self._assign_case(s, e.hold_id, e.to_team, reason, ctx)
            case m.HoldReleased():
                # Released otherwise than as its team decided: the team that
                # has the case now drops it.
                released = s.hold(e.hold_id)
                if e.decision is None and released is not None:
                    await ctx.send(Address(f"team/{released.owner_team}"),
                                   CaseWithdrawn(order_id=s.order_id, case_id=e.hold_id))
        return []

    async def _assign_case(self, s: OrderState, hold_id: str, team: str, reason: str,
                           ctx: Context) -> None:
        hold = s.hold(hold_id)
        if hold is None:
            return
        proposal, options = hold.proposal, hold.options
        history = tuple(h.from_team for h in hold.handoffs)
        visit = [h.hold_id for h in s.holds if h.reason is hold.reason].index(hold_id) + 1
        route = self.policy.route(hold.reason)
        if not hold.handoffs:
            ctx.emit(CaseOpened(order_id=s.order_id, case_id=hold_id, reason=reason, team=team,
                                deadline=hold.deadline, proposal=proposal))
        await ctx.send(Address(f"team/{team}"), CaseAssigned(
            order_id=s.order_id, case_id=hold_id, reason=reason, team=team, proposal=proposal,
            options=options, opened_at=hold.opened_at, deadline=hold.deadline, history=history,
            escalate_to=route.escalate_to, notify=ctx.address, visit=visit))

    def _risk(self, s: OrderState, e: m.RiskAssessed, ctx: Context) -> list[m.Command]:
        fraud = self.policy.fraud
        score = e.score if e.score is not None else _LEVEL_SCORE.get(e.level, 0.5)
        if score >= fraud.cancel_above:
            ok, approval = self._approval(s, IrreversibleAction.CANCEL)
            auto = (fraud.high_risk_action is HighRiskAction.AUTO_CANCEL
                    and not self.policy.needs_approval(IrreversibleAction.CANCEL))
            if auto and ok:
                approval = approval or {"approved_by": self.actor_name,
                                        "approver": Approver.AUTOMATION}
                return [m.CancelOrder(**self._stamp(ctx), **approval,
                                      reason=f"high fraud risk ({score:.2f})")]
            hold = self._hold(s, ctx, R.HIGH_RISK_OF_FRAUD, _CANCEL, note=f"score {score:.2f}")
            return [hold] if hold else []
        review = score >= fraud.review_above or (
            not fraud.auto_release_low_risk and e.recommendation.value == "investigate")
        if review:
            hold = self._hold(s, ctx, R.HIGH_RISK_OF_FRAUD, _RELEASE, note=f"score {score:.2f}")
            return [hold] if hold else []
        return []

    def _payment_failed(self, s: OrderState, e: m.PaymentFailed,
                        ctx: Context) -> list[m.Command]:
        request = s.request(e.request_id)
        if request is None:
            return []
        if request.operation is Op.AUTHORIZE:
            if e.reason is PaymentFailure.UNKNOWN_REQUEST:
                return self._authorize(s, ctx)  # reconciliation: it never happened
            if e.reason is PaymentFailure.GATEWAY_UNAVAILABLE:
                # This failure included: the fold records each request's failure.
                attempt = sum(1 for r in s.payment_requests if r.operation is Op.AUTHORIZE
                              and r.failure is PaymentFailure.GATEWAY_UNAVAILABLE)
                if attempt <= self.policy.ambiguous_payment.retries:
                    ctx.schedule(self.policy.ambiguous_payment.delay(attempt),
                                 Engine.Timer(kind=Engine.TimerKind.REAUTHORIZE))
                    return []
            hold = self._hold(s, ctx, R.AWAITING_PAYMENT, _CANCEL, note=e.reason)
            return [hold] if hold else []
        if request.operation is Op.CAPTURE:
            hold = self._hold(s, ctx, R.AWAITING_PAYMENT, _RELEASE, note=f"capture: {e.reason}")
            return [hold] if hold else []
        return []

    async def _ambiguous(self, s: OrderState, request_id: str, ctx: Context) -> list[m.Command]:
        action = self.policy.ambiguous_payment.action
        if action is AmbiguousPaymentAction.HOLD:
            hold = self._hold(s, ctx, R.PAYMENT_AMBIGUOUS, _RELEASE, (_RELEASE,),
                              note=f"request {request_id}")
            return [hold] if hold else []
        kind = _RETRY if action is AmbiguousPaymentAction.RETRY else _QUERY
        self._schedule_check(ctx, kind, request_id, 1)
        return []

    def _schedule_check(self, ctx: Context, kind: Engine.TimerKind, request_id: str,
                        attempt: int) -> None:
        policy = self.policy.ambiguous_payment
        if attempt > max(1, policy.retries):
            # Out of retries: a person must look (the hold is opened on the next
            # reaction; we cannot decide a command from here).
            ctx.schedule(0.0, Engine.Timer(kind=Engine.TimerKind.GIVE_UP,
                                           request_id=request_id))
            return
        ctx.schedule(policy.delay(attempt), Engine.Timer(kind=kind, request_id=request_id,
                                                         attempt=attempt))

    async def _query(self, s: OrderState, request_id: str, ctx: Context) -> None:
        await ctx.send(self.settings.gateway, GatewayQuery(
            order_id=s.order_id, request_id=request_id, notify=ctx.address))

    async def _resend(self, s: OrderState, request_id: str, ctx: Context) -> None:
        r = s.request(request_id)
        if r is None:
            return
        me, gw = ctx.address, self.settings.gateway
        msg: Message
        if r.operation is Op.AUTHORIZE:
            msg = GatewayAuthorize(order_id=s.order_id, request_id=request_id, notify=me,
                                   amount=r.amount, customer_id=s.customer_id or "")
        elif r.operation is Op.CAPTURE and r.authorization_id:
            msg = GatewayCapture(order_id=s.order_id, request_id=request_id, notify=me,
                                 authorization_id=r.authorization_id, amount=r.amount)
        elif r.operation is Op.VOID and r.authorization_id:
            msg = GatewayVoid(order_id=s.order_id, request_id=request_id, notify=me,
                              authorization_id=r.authorization_id)
        else:
            msg = GatewayRefund(order_id=s.order_id, request_id=request_id, notify=me,
                                amount=r.amount)
        await ctx.send(gw, msg)

    # -- the standard path, from the state -----------------------------------------------

    def _authorize(self, s: OrderState, ctx: Context) -> list[m.Command]:
        if s.progress in _DONE or s.unresolved_requests(Op.AUTHORIZE) or s.payment_secured:
            return []
        covered = s.open_authorized_amount + s.captured_amount - s.refunded_amount
        due = s.amount_due - covered
        if due <= 0:
            return []
        return [m.AuthorizePayment(**self._stamp(ctx), amount=due)]

    def _progress(self, s: OrderState, ctx: Context) -> list[m.Command]:
        progress = s.progress
        if not s.placed or progress in _DONE:
            return []
        request = s.cancel_request
        if request is not None and progress in _CANCELABLE:
            # (Once goods left despite the pull-back the request is moot and
            # the order goes on.)
            return self._customer_cancel_now(s, ctx, request)
        cmds: list[m.Command] = []
        cmds += self._capture(s, ctx)
        if self._may_fulfil(s):
            cmds += self._assign(s, ctx)
            ok, approval = self._approval(s, IrreversibleAction.SHIP)
            if ok:
                for fo in s.fulfillment_orders:
                    if fo.status in (FS.OPEN, FS.SCHEDULED):
                        cmds.append(m.SubmitFulfillment(**self._stamp(ctx), **approval,
                                                        fulfillment_order_id=fo.fulfillment_order_id))
        # The coordinator's work is over once every unit shipped and the money
        # is in: close (delivery scans still update the shipment while the
        # order's actor lingers; the carrier's clock is not the policy's).
        if (progress in (L.FULFILLED, L.DELIVERED) and not s.open_holds
                and not s.unresolved_requests()
                and s.captured_amount - s.refunded_amount >= s.amount_due):
            cmds.append(m.CloseOrder(**self._stamp(ctx)))
        return cmds

    def _capture(self, s: OrderState, ctx: Context) -> list[m.Command]:
        if s.capture_failures or s.payment is Payment.UNKNOWN:
            return []
        if not any(a.status is AuthorizationStatus.OPEN for a in s.authorizations):
            return []  # nothing to capture (most calls): skip the checks below
        if self.policy.capture is CaptureMode.ON_SHIPMENT and not any(
                fo.shipment in (ShipmentStatus.SHIPPED, ShipmentStatus.DELAYED,
                                ShipmentStatus.DELIVERED) for fo in s.fulfillment_orders):
            return []
        busy = {r.authorization_id for r in s.payment_requests
                if r.operation in (Op.CAPTURE, Op.VOID) and r.status is not RequestStatus.FAILED}
        ok, approval = self._approval(s, IrreversibleAction.CAPTURE)
        if not ok:
            return []
        return [m.CapturePayment(**self._stamp(ctx), **approval,
                                 authorization_id=a.authorization_id, amount=a.amount)
                for a in s.authorizations
                if a.status is AuthorizationStatus.OPEN and a.authorization_id not in busy]

    def _may_fulfil(self, s: OrderState) -> bool:
        if s.progress not in (L.PLACED, L.AWAITING_PAYMENT, L.READY_FOR_FULFILLMENT,
                              L.PARTIALLY_FULFILLED):
            return False
        trigger = self.policy.fulfillment_trigger
        if trigger is FulfillmentTrigger.ORDER_PLACED:
            return s.ship_approved_by is not None
        if not (s.screened and self._address_ok(s) and s.duplicate_of is None
                and s.risk is not Risk.PENDING):
            return False
        if trigger is FulfillmentTrigger.PAYMENT_AUTHORIZED:
            return s.payment_secured
        return s.captured_amount - s.refunded_amount >= s.amount_due

    def _unassigned(self, s: OrderState) -> dict[str, int]:
        owed = {li.line_id: li.quantity - li.canceled for li in s.line_items}
        for fo in s.fulfillment_orders:
            if fo.status in _GONE:
                continue
            for lq in fo.lines:
                owed[lq.line_id] = owed.get(lq.line_id, 0) - lq.quantity
        return {k: v for k, v in owed.items() if v > 0}

    def _address_ok(self, s: OrderState) -> bool:
        """The address service's verdict; with no service, addresses are taken as given."""
        if s.address_usable is None:
            return self.settings.address_service is None
        return s.address_usable

    def _tried(self, s: OrderState) -> set[str]:
        """Warehouses that failed the order since sourcing last started over:
        it starts over when a redrive round (with the warehouses it withdrew
        work from) finds every warehouse tried."""
        everywhere = len(self.settings.warehouses)
        tried: set[str] = set()
        in_round = False
        for step in s.sourcing:
            kind = step.kind
            if in_round and kind is not SourcingKind.WITHDRAWN:
                in_round = False  # the round is over: did it try them all?
                if len(tried) >= everywhere:
                    tried = set()
            if kind is SourcingKind.REDRIVE:
                in_round = True
            elif step.warehouse_id is not None:
                tried.add(step.warehouse_id)
        if in_round and len(tried) >= everywhere:
            tried = set()
        return tried

    def _next_warehouse(self, s: OrderState) -> str | None:
        tried = self._tried(s) if s.sourcing else ()
        for wh in self.settings.warehouses:
            if wh not in tried:
                return wh
        return None

    def _assign(self, s: OrderState, ctx: Context) -> list[m.Command]:
        """Fulfillment orders for the unassigned units, at warehouses that have
        not failed the order, as the policy's sourcing chooses (``_sourcing``)."""
        if any(fo.status in (FS.OPEN, FS.SCHEDULED) for fo in s.fulfillment_orders):
            return []
        missing = self._unassigned(s)
        if not missing:
            return []
        tried = self._tried(s) if s.sourcing else ()
        untried = [wh for wh in self.settings.warehouses if wh not in tried]
        if not untried:
            return []
        needs = [Need(line_id=k, sku=self._sku(s, k), quantity=v)
                 for k, v in sorted(missing.items())]
        board = self.settings.stock
        sources = choose_sources(needs, untried, board.view if board is not None else _NO_VIEW,
                                 self.policy.sourcing)
        return [self._assignment(ctx, src.warehouse_id,
                                 {lq.line_id: lq.quantity for lq in src.lines})
                for src in sources]

    @staticmethod
    def _sku(s: OrderState, line_id: str) -> str:
        line = s.line(line_id)
        return line.sku if line is not None else line_id

    def _assignment(self, ctx: Context, wh: str, lines: dict[str, int],
                    backorder: bool = False, settles: bool = False) -> m.Command:
        fo_id = ctx.new_id()
        return m.AssignWarehouse(
            **self._stamp(ctx), fulfillment_order_id=fo_id, warehouse_id=wh,
            lines=tuple(m.LineQuantity(line_id=k, quantity=v) for k, v in sorted(lines.items())),
            backorder=backorder, settles_shortages=settles)

    def _shortage(self, s: OrderState, ctx: Context, action: ShortageAction) -> list[m.Command]:
        missing = self._unassigned(s)
        if not missing:
            return []
        best: dict[str, int] = {}
        best_wh = None
        for info in s.shortages:
            avail = {lq.line_id: min(lq.quantity, missing.get(lq.line_id, 0))
                     for lq in info.available}
            avail = {k: v for k, v in avail.items() if v > 0}
            if sum(avail.values()) > sum(best.values()):
                best, best_wh = avail, info.warehouse_id
        first = self.settings.warehouses[0]
        rest = {k: v - best.get(k, 0) for k, v in missing.items() if v - best.get(k, 0) > 0}
        if action is ShortageAction.HOLD:
            reason = R.SPLIT_FULFILLMENT_DECISION if best else R.INVENTORY_OUT_OF_STOCK
            hold = self._hold(s, ctx, reason, _RELEASE, note="stock does not cover the order")
            return [hold] if hold else []
        # The first assignment below settles the shortages read here: later
        # sourcing reads only those reported after it.
        if action is ShortageAction.BACKORDER or not best or best_wh is None:
            if action is ShortageAction.CANCEL_LINE and not best:
                hold = self._hold(s, ctx, R.INVENTORY_OUT_OF_STOCK, _CANCEL,
                                  note="nothing in stock")
                return [hold] if hold else []
            return [self._assignment(ctx, first, missing, backorder=True, settles=True)]
        cmds: list[m.Command] = [self._assignment(ctx, best_wh, best, settles=True)]
        if rest and action is ShortageAction.SPLIT:
            cmds.append(self._assignment(ctx, first, rest, backorder=True))
        elif rest and action is ShortageAction.CANCEL_LINE:
            cmds.insert(0, m.CancelLineItems(**self._stamp(ctx), lines=tuple(
                m.LineQuantity(line_id=k, quantity=v) for k, v in sorted(rest.items()))))
        return cmds

    def _redrive(self, s: OrderState, ctx: Context) -> list[m.Command]:
        """After a stuck order's hold is released: pull work back from a silent
        warehouse so the next one gets it (the withdrawal records the
        warehouse as tried; see :meth:`_tried` for when sourcing starts over)."""
        return [m.CancelFulfillment(**self._stamp(ctx),
                                    fulfillment_order_id=fo.fulfillment_order_id,
                                    reason="stuck at the warehouse", redrive=True)
                for fo in s.fulfillment_orders
                if fo.status in (FS.SUBMITTED, FS.ACCEPTED) and not fo.picked]

    def unsafe_shipments(self, s: OrderState, applied: Sequence[m.Event]) -> list[str]:
        """Shipments that left on automation's own approval before payment was
        secured: the policy's trade-off made concrete (a person's approval is
        an explicit decision; a blanket policy approval is not)."""
        found = []
        for e in applied:
            if (isinstance(e, m.Shipped) and not s.payment_secured
                    and s.ship_approver is Approver.AUTOMATION):
                found.append(f"fulfillment order {e.fulfillment_order_id} shipped before "
                             f"payment was secured (approved by {s.ship_approved_by})")
        return found


_QUERY = Engine.TimerKind.QUERY
_RETRY = Engine.TimerKind.RETRY
