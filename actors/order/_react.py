"""The policy engine: what automation does next with one order, as the policy says.

:func:`react` is a pure function: given the order's state, a trigger
(events just applied, a person's decision, a customer's cancellation, a
stuck order's escalation, or one of its own timers), the policy and the
time, it returns a :class:`~._reaction.Reaction`: commands to decide and
effects to perform, in the order model's vocabulary. It sends, schedules
and emits nothing itself and reads no context, so every policy knob is
unit-tested as a table (``tests/unit/test_react.py``); the coordinator's
order actor performs the reaction.

It reacts to trustworthy events (payment authorized or captured, risk
assessed, warehouse assignment completed, shipment created, ...) and to the
order's state. It never acts on a hunch: a command is only proposed when
the state it will be decided against allows it, and irreversible ones
(capture, refund, cancel, ship) on an exception path wait for a person
unless the policy waives that approval. Everything it reads is the order's
state, folded from the order's events (what automation learns from other
actors is recorded as an event first), so a restored order decides as the
lost one would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _messages as m
from ._order_state import CancelRequest, OrderState
from ._policy import (
    AddressAction,
    AmbiguousPaymentAction,
    CaptureMode,
    FulfillmentTrigger,
    HighRiskAction,
    IrreversibleAction,
    Policy,
    ShortageAction,
)
from ._reaction import (
    AssignCase,
    CancelAsked,
    Effect,
    EventsApplied,
    IdSource,
    PersonDecided,
    PolicyTimer,
    QueryGateway,
    Reaction,
    ResendRequest,
    SetTimer,
    StuckEscalated,
    TimerKind,
    Trigger,
    VerifyAddress,
    WithdrawCase,
    Wiring,
)
from ._sourcing import Need, StockView, choose_sources, tried_warehouses, unassigned_units
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
)

__all__ = ["automation_name", "react", "unsafe_shipments"]

# Tuples, not frozensets: membership in a tuple of enum members is an
# identity test, in a frozenset a call of the Python-level ``Enum.__hash__``.
_GONE = (FS.REJECTED, FS.CANCELED)
# Where a requested cancellation can still happen (as ``decide`` allows it).
_CANCELABLE = (L.PLACED, L.AWAITING_PAYMENT, L.READY_FOR_FULFILLMENT)
_RELEASE, _CANCEL = Decision.RELEASE, Decision.CANCEL
_LEVEL_SCORE = {Risk.NONE: 0.0, Risk.LOW: 0.2, Risk.MEDIUM: 0.5, Risk.HIGH: 0.9}
_NO_VIEW = StockView()
_NO_WIRING = Wiring()


def automation_name(policy: Policy) -> str:
    """Who automation's commands are issued by under ``policy``."""
    return f"automation:{policy.name}"


def react(state: OrderState, trigger: Trigger, policy: Policy, now: float, *,
          ids: IdSource, wiring: Wiring = _NO_WIRING, stock: StockView = _NO_VIEW) -> Reaction:
    """Automation's answer to ``trigger`` for the order in ``state``.

    Args:
        state: the order's state (after the trigger's events, for
            :class:`~._reaction.EventsApplied`).
        trigger: what happened.
        policy: the automation policy.
        now: the time, in seconds (stamps commands, sets case deadlines).
        ids: fresh ids for what the reaction creates.
        wiring: the coordinator's addresses and warehouses.
        stock: the coordinator's stock view, which ``policy.sourcing`` reads.

    Returns:
        The commands to decide (in order) and the effects to perform.
    """
    r = _Reacting(state, policy, now, ids, wiring, stock)
    match trigger:
        case EventsApplied():
            commands = r.applied(trigger.events, trigger.progress)
        case PersonDecided():
            commands = r.decided(trigger)
        case CancelAsked():
            commands = r.customer_cancel(trigger)
        case StuckEscalated():
            commands = r.escalate(trigger)
        case PolicyTimer():
            commands = r.timer(trigger)
        case _:
            raise TypeError(f"react: no reaction to {type(trigger).__name__}")
    return Reaction(commands=tuple(commands), effects=tuple(r.effects))


def unsafe_shipments(s: OrderState, applied: Sequence[m.Event]) -> list[str]:
    """Shipments among ``applied`` that left on automation's own approval
    before payment was secured: the policy's trade-off made concrete (a
    person's approval is an explicit decision; a blanket policy approval is not)."""
    found = []
    for e in applied:
        if (isinstance(e, m.Shipped) and not s.payment_secured
                and s.ship_approver is Approver.AUTOMATION):
            found.append(f"fulfillment order {e.fulfillment_order_id} shipped before "
                         f"payment was secured (approved by {s.ship_approved_by})")
    return found


class _Reacting:
    """One call of :func:`react`: its inputs, and the effects it has chosen so
    far (``effects`` is the only thing mutated: each effect is appended
    once, in the order the engine chooses it)."""

    __slots__ = ("s", "policy", "now", "ids", "wiring", "stock", "actor_name", "effects")

    def __init__(self, s: OrderState, policy: Policy, now: float, ids: IdSource,
                 wiring: Wiring, stock: StockView) -> None:
        self.s = s
        self.policy = policy
        self.now = now
        self.ids = ids
        self.wiring = wiring
        self.stock = stock
        self.actor_name = automation_name(policy)
        self.effects: list[Effect] = []

    # -- helpers ---------------------------------------------------------------------

    def _stamp(self, by: str | None = None) -> dict[str, Any]:
        return {"order_id": self.s.order_id, "command_id": self.ids(),
                "issued_at": self.now, "issued_by": by or self.actor_name}

    def _approval(self, action: IrreversibleAction) -> tuple[bool, dict[str, Any]]:
        """May automation take ``action`` now, and under whose approval (the
        command's ``approved_by`` and ``approver`` fields)?"""
        if not self.s.open_holds:
            return True, {}
        if self.policy.needs_approval(action):
            return False, {}
        return True, {"approved_by": self.actor_name, "approver": Approver.AUTOMATION}

    def _hold(self, reason: R, proposal: Decision,
              options: tuple[Decision, ...] = (_RELEASE, _CANCEL),
              note: str = "") -> list[m.Command]:
        """A case for ``reason``, unless one is open already (one reason, one case)."""
        if any(h.reason is reason for h in self.s.open_holds):
            return []
        route = self.policy.route(reason)
        hold_id = self.ids()  # drawn before the command's id (as ids always were)
        return [m.OpenHold(**self._stamp(), hold_id=hold_id, reason=reason,
                           owner_team=route.team, deadline=self.now + route.deadline,
                           note=note, proposal=proposal, options=options)]

    # -- inputs from other actors ----------------------------------------------------------

    def decided(self, msg: PersonDecided) -> list[m.Command]:
        s = self.s
        hold = s.hold(msg.case_id)
        if hold is None or hold not in s.open_holds:
            return []  # decided after the case was closed: nothing to do
        if msg.team is not None and msg.team != hold.owner_team:
            return []  # decided by a team the case was taken from: stale
        who = msg.by
        if msg.decision is Decision.REASSIGN and msg.handoff_to and msg.handoff_to != hold.owner_team:
            return [m.HandOffHold(**self._stamp(who), hold_id=hold.hold_id,
                                  to_team=msg.handoff_to, note=msg.note)]
        if msg.decision is _CANCEL:
            return self._request_cancel(f"{hold.reason.value}: decided by {who}",
                                        who, Approver.PERSON, hold_id=hold.hold_id,
                                        note=msg.note)
        # The release records the decision: the fold clears what the case
        # was about (see ``_evolve``) and no withdrawal goes to the team.
        cmds: list[m.Command] = [m.ReleaseHold(**self._stamp(who), hold_id=hold.hold_id,
                                               resolution=f"released by {who}",
                                               decision=msg.decision, note=msg.note)]
        return cmds + self._after_release(hold.reason)

    def _after_release(self, reason: R) -> list[m.Command]:
        """What a person's "go on" means for each reason (besides what the
        release itself records: an address or duplicate case let go, capture
        failures reviewed)."""
        s = self.s
        if s.cancel_request is not None and s.progress in _CANCELABLE:
            # The customer asked to cancel: once no case is open the cancel goes
            # ahead (``_progress``); a release must not start new work first.
            return []
        if reason is R.PAYMENT_AMBIGUOUS:
            for r in s.unresolved_requests():
                self._query(r.request_id)
                self._schedule_check(TimerKind.QUERY, r.request_id, 1)
        elif reason is R.AWAITING_PAYMENT:
            for r in s.unresolved_requests():
                if r.status is RequestStatus.UNKNOWN:
                    self._query(r.request_id)
                    self._schedule_check(TimerKind.QUERY, r.request_id, 1)
            return self._authorize()
        elif reason in (R.INVENTORY_OUT_OF_STOCK, R.SPLIT_FULFILLMENT_DECISION):
            return self._shortage(ShortageAction.SPLIT
                                  if reason is R.SPLIT_FULFILLMENT_DECISION
                                  else ShortageAction.BACKORDER)
        elif reason in (R.POLICY_EXCEPTION, R.OTHER):
            return self._redrive()
        return []

    def customer_cancel(self, msg: CancelAsked) -> list[m.Command]:
        """A customer's cancellation (see :meth:`_request_cancel`)."""
        if self.s.progress in _DONE:
            return []
        return self._request_cancel(msg.reason, "customer", Approver.CUSTOMER)

    def _request_cancel(self, reason: str, by: str, approver: Approver,
                        hold_id: str | None = None, note: str = "") -> list[m.Command]:
        """Cancel on a customer's or a person's word, safely: pull back work
        not yet picked, let unknown gateway outcomes resolve, then cancel.
        Once goods are picked or shipped it cannot be undone: a customer's
        request becomes a case; a person's decision releases their hold."""
        s = self.s
        shipped = any(fo.shipment is not ShipmentStatus.PENDING or fo.picked
                      for fo in s.fulfillment_orders if fo.status not in _GONE)
        if shipped:
            if hold_id is not None:
                return [m.ReleaseHold(**self._stamp(by), hold_id=hold_id,
                                      resolution="cancel decided, but the goods already left",
                                      decision=_CANCEL, note=note)]
            return self._hold(R.POLICY_EXCEPTION, _RELEASE, (_RELEASE, _CANCEL),
                              note="customer asked to cancel after picking or shipping")
        request = CancelRequest(reason=reason, requested_by=by, approver=approver)
        for r in s.unresolved_requests():
            if r.status is RequestStatus.UNKNOWN:
                self._query(r.request_id)
                self._schedule_check(TimerKind.QUERY, r.request_id, 1)
        pulls: list[m.Command] = [
            m.CancelFulfillment(**self._stamp(by),
                                fulfillment_order_id=fo.fulfillment_order_id, reason=reason)
            for fo in s.fulfillment_orders if fo.status in (FS.OPEN, FS.SCHEDULED, FS.SUBMITTED,
                                                            FS.ACCEPTED, FS.ON_HOLD)]
        # Recorded first: until the order is canceled the request stands, and
        # every later step reads it from the state.
        asked: list[m.Command] = [m.RequestCancellation(**self._stamp(by), reason=reason,
                                                        approver=approver, note=note)]
        return asked + pulls + self._customer_cancel_now(request)

    def _customer_cancel_now(self, request: CancelRequest) -> list[m.Command]:
        """Cancel as ``request`` asks, once nothing is in flight."""
        s = self.s
        if s.unresolved_requests():
            return []  # a gateway request is out: cancel when it resolves
        if any(fo.status in (FS.SUBMITTED, FS.ACCEPTED, FS.IN_PROGRESS)
               for fo in s.fulfillment_orders):
            return []  # wait for the warehouse to confirm the pull-back
        reason, by, approver = request.reason, request.requested_by, request.approver
        if approver is not Approver.PERSON and s.open_holds:
            # A customer's wish is a request, not a review: while a case is
            # open the cancel waits for it, unless the policy waives review.
            ok, approval = self._approval(IrreversibleAction.CANCEL)
            if not ok:
                return []
            by = approval["approved_by"]
            approver = approval["approver"]
        return [m.CancelOrder(**self._stamp(by), approved_by=by, approver=approver,
                              reason=reason)]

    def escalate(self, msg: StuckEscalated) -> list[m.Command]:
        s = self.s
        if s.progress in _DONE:
            return []
        holds = s.open_holds
        if holds:
            hold = holds[0]
            target = self.policy.route(hold.reason).escalate_to
            if target and target != hold.owner_team:
                return [m.HandOffHold(**self._stamp(), hold_id=hold.hold_id, to_team=target,
                                      note=f"escalated: stuck in {msg.stage.value}")]
            # No one to escalate to: put it back in front of its owners (a team
            # that still holds it ignores the copy).
            self.effects.append(AssignCase(hold.hold_id, hold.owner_team))
            return []
        # Stuck before payment, or shipped with the money still not in, is a
        # payments case (its release re-authorizes or captures); otherwise a
        # policy exception (its release pulls work back from a silent warehouse).
        stage = msg.stage
        unpaid_after_shipping = (stage in (L.FULFILLED, L.DELIVERED)
                                 and s.captured_amount - s.refunded_amount < s.amount_due)
        reason = (R.AWAITING_PAYMENT
                  if stage in (L.PLACED, L.AWAITING_PAYMENT) or unpaid_after_shipping
                  else R.POLICY_EXCEPTION)
        return self._hold(reason, _RELEASE, note=f"stuck in {stage.value}")

    def timer(self, msg: PolicyTimer) -> list[m.Command]:
        s = self.s
        request = s.request(msg.request_id) if msg.request_id else None
        kind = msg.kind
        if kind is TimerKind.REAUTHORIZE:
            return self._authorize()
        if kind is TimerKind.RISK:
            return self._probe_risk(msg.attempt) + self._progress()
        if request is None or request.status is not RequestStatus.UNKNOWN:
            return []
        if kind is TimerKind.GIVE_UP:
            return self._hold(R.PAYMENT_AMBIGUOUS, _RELEASE, (_RELEASE,),
                              note=f"request {msg.request_id} still unknown after retries")
        if kind is TimerKind.QUERY:
            self._query(msg.request_id)
            self._schedule_check(TimerKind.QUERY, msg.request_id, msg.attempt + 1)
            return []
        self.effects.append(ResendRequest(msg.request_id))
        self._schedule_check(TimerKind.RETRY, msg.request_id, msg.attempt + 1)
        return []

    # -- reacting to the order's events ----------------------------------------------------

    def applied(self, applied: Sequence[m.Event], progress: bool) -> list[m.Command]:
        """Commands for the events just applied, then (with ``progress``) the
        next standard-path steps the state now allows."""
        cmds: list[m.Command] = []
        for event in applied:
            for cmd in self._on(event):
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
            cmds += self._probe_risk()
            cmds += self._progress()
        return cmds

    def _probe_risk(self, attempt: int = 0) -> list[m.Command]:
        """Payment is secured but no risk assessment arrived (lost, or dropped
        as stale after a long reorder): ask the gateway to replay the
        authorization, which carries the assessment again. The first probe
        is recorded (``RiskReplayRequested``); its follow-ups are timers."""
        s = self.s
        if s.risk is not Risk.PENDING or not s.payment_secured or s.progress in _DONE:
            return []
        if attempt == 0 and s.risk_replay_requested:
            return []  # a probe is already under way
        auths = [r for r in s.payment_requests if r.operation is Op.AUTHORIZE
                 and r.status is RequestStatus.SUCCEEDED]
        if not auths or attempt > self.policy.ambiguous_payment.retries:
            return []
        request_id = auths[-1].request_id
        self._query(request_id)
        self.effects.append(SetTimer(self.policy.ambiguous_payment.delay(attempt + 1),
                                     PolicyTimer(kind=TimerKind.RISK, attempt=attempt + 1)))
        if attempt:
            return []
        return [m.RequestRiskReplay(**self._stamp(), request_id=request_id)]

    def _on(self, e: m.Event) -> list[m.Command]:
        s, p = self.s, self.policy
        match e:
            case m.OrderPlaced():
                cmds = self._authorize()
                if self.wiring.checks_addresses:
                    self.effects.append(VerifyAddress(
                        correct=p.address_failure is AddressAction.AUTO_CORRECT))
                if p.fulfillment_trigger is FulfillmentTrigger.ORDER_PLACED:
                    cmds.insert(0, m.ApproveShipment(**self._stamp(), approved_by=self.actor_name,
                                                     approver=Approver.AUTOMATION,
                                                     reason="policy fulfils on order placed"))
                return cmds
            case m.OrderScreened():
                if e.duplicate_of is not None:
                    return self._hold(R.DUPLICATE_ORDER, _CANCEL,
                                      note=f"same key as {e.duplicate_of}")
                return []
            case m.AddressVerified():
                if not e.usable:
                    return self._hold(R.INCORRECT_ADDRESS, _RELEASE,
                                      note="address failed validation")
                return []
            case m.RiskAssessed():
                return self._risk(e)
            case m.PaymentFailed():
                return self._payment_failed(e)
            case m.PaymentOutcomeUnknown():
                return self._ambiguous(e.request_id)
            case m.FulfillmentRejected():
                if self._next_warehouse() is None:
                    return self._shortage(p.stock_shortage)
                return []
            case m.Shipped():
                return [m.NotifyCustomer(**self._stamp(), kind=NotificationKind.SHIPPED,
                                         fulfillment_order_id=e.fulfillment_order_id)]
            case m.HoldOpened():
                self.effects.append(AssignCase(e.hold_id, e.owner_team))
            case m.HoldHandedOff():
                # The team it leaves drops it (one that reassigned it itself
                # has already; an escalation takes it from a team that has not).
                self.effects.append(WithdrawCase(e.hold_id, e.from_team))
                self.effects.append(AssignCase(e.hold_id, e.to_team, handed_off_from=e.from_team))
            case m.HoldReleased():
                # Released otherwise than as its team decided: the team that
                # has the case now drops it.
                released = s.hold(e.hold_id)
                if e.decision is None and released is not None:
                    self.effects.append(WithdrawCase(e.hold_id, released.owner_team))
        return []

    def _risk(self, e: m.RiskAssessed) -> list[m.Command]:
        fraud = self.policy.fraud
        score = e.score if e.score is not None else _LEVEL_SCORE.get(e.level, 0.5)
        if score >= fraud.cancel_above:
            ok, approval = self._approval(IrreversibleAction.CANCEL)
            auto = (fraud.high_risk_action is HighRiskAction.AUTO_CANCEL
                    and not self.policy.needs_approval(IrreversibleAction.CANCEL))
            if auto and ok:
                approval = approval or {"approved_by": self.actor_name,
                                        "approver": Approver.AUTOMATION}
                return [m.CancelOrder(**self._stamp(), **approval,
                                      reason=f"high fraud risk ({score:.2f})")]
            return self._hold(R.HIGH_RISK_OF_FRAUD, _CANCEL, note=f"score {score:.2f}")
        review = score >= fraud.review_above or (
            not fraud.auto_release_low_risk and e.recommendation.value == "investigate")
        if review:
            return self._hold(R.HIGH_RISK_OF_FRAUD, _RELEASE, note=f"score {score:.2f}")
        return []

    def _payment_failed(self, e: m.PaymentFailed) -> list[m.Command]:
        s = self.s
        request = s.request(e.request_id)
        if request is None:
            return []
        if request.operation is Op.AUTHORIZE:
            if e.reason is PaymentFailure.UNKNOWN_REQUEST:
                return self._authorize()  # reconciliation: it never happened
            if e.reason is PaymentFailure.GATEWAY_UNAVAILABLE:
                # This failure included: the fold records each request's failure.
                attempt = sum(1 for r in s.payment_requests if r.operation is Op.AUTHORIZE
                              and r.failure is PaymentFailure.GATEWAY_UNAVAILABLE)
                if attempt <= self.policy.ambiguous_payment.retries:
                    self.effects.append(SetTimer(self.policy.ambiguous_payment.delay(attempt),
                                                 PolicyTimer(kind=TimerKind.REAUTHORIZE)))
                    return []
            return self._hold(R.AWAITING_PAYMENT, _CANCEL, note=e.reason)
        if request.operation is Op.CAPTURE:
            return self._hold(R.AWAITING_PAYMENT, _RELEASE, note=f"capture: {e.reason}")
        return []

    def _ambiguous(self, request_id: str) -> list[m.Command]:
        action = self.policy.ambiguous_payment.action
        if action is AmbiguousPaymentAction.HOLD:
            return self._hold(R.PAYMENT_AMBIGUOUS, _RELEASE, (_RELEASE,),
                              note=f"request {request_id}")
        kind = TimerKind.RETRY if action is AmbiguousPaymentAction.RETRY else TimerKind.QUERY
        self._schedule_check(kind, request_id, 1)
        return []

    def _schedule_check(self, kind: TimerKind, request_id: str, attempt: int) -> None:
        policy = self.policy.ambiguous_payment
        if attempt > max(1, policy.retries):
            # Out of retries: a person must look (the hold is opened when the
            # timer comes back, against the state of that moment).
            self.effects.append(SetTimer(0.0, PolicyTimer(kind=TimerKind.GIVE_UP,
                                                          request_id=request_id)))
            return
        self.effects.append(SetTimer(policy.delay(attempt), PolicyTimer(
            kind=kind, request_id=request_id, attempt=attempt)))

    def _query(self, request_id: str) -> None:
        self.effects.append(QueryGateway(request_id))

    # -- the standard path, from the state -----------------------------------------------

    def _authorize(self) -> list[m.Command]:
        s = self.s
        if s.progress in _DONE or s.unresolved_requests(Op.AUTHORIZE) or s.payment_secured:
            return []
        covered = s.open_authorized_amount + s.captured_amount - s.refunded_amount
        due = s.amount_due - covered
        if due <= 0:
            return []
        return [m.AuthorizePayment(**self._stamp(), amount=due)]

    def _progress(self) -> list[m.Command]:
        s = self.s
        progress = s.progress
        if not s.placed or progress in _DONE:
            return []
        request = s.cancel_request
        if request is not None and progress in _CANCELABLE:
            # (Once goods left despite the pull-back the request is moot and
            # the order goes on.)
            return self._customer_cancel_now(request)
        cmds: list[m.Command] = []
        cmds += self._capture()
        if self._may_fulfil():
            cmds += self._assign()
            ok, approval = self._approval(IrreversibleAction.SHIP)
            if ok:
                for fo in s.fulfillment_orders:
                    if fo.status in (FS.OPEN, FS.SCHEDULED):
                        cmds.append(m.SubmitFulfillment(
                            **self._stamp(), **approval,
                            fulfillment_order_id=fo.fulfillment_order_id))
        # The coordinator's work is over once every unit shipped and the money
        # is in: close (delivery scans still update the shipment while the
        # order's actor lingers; the carrier's clock is not the policy's).
        if (progress in (L.FULFILLED, L.DELIVERED) and not s.open_holds
                and not s.unresolved_requests()
                and s.captured_amount - s.refunded_amount >= s.amount_due):
            cmds.append(m.CloseOrder(**self._stamp()))
        return cmds

    def _capture(self) -> list[m.Command]:
        s = self.s
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
        ok, approval = self._approval(IrreversibleAction.CAPTURE)
        if not ok:
            return []
        return [m.CapturePayment(**self._stamp(), **approval,
                                 authorization_id=a.authorization_id, amount=a.amount)
                for a in s.authorizations
                if a.status is AuthorizationStatus.OPEN and a.authorization_id not in busy]

    def _may_fulfil(self) -> bool:
        s = self.s
        if s.progress not in (L.PLACED, L.AWAITING_PAYMENT, L.READY_FOR_FULFILLMENT,
                              L.PARTIALLY_FULFILLED):
            return False
        trigger = self.policy.fulfillment_trigger
        if trigger is FulfillmentTrigger.ORDER_PLACED:
            return s.ship_approved_by is not None
        if not (s.screened and self._address_ok() and s.duplicate_of is None
                and s.risk is not Risk.PENDING):
            return False
        if trigger is FulfillmentTrigger.PAYMENT_AUTHORIZED:
            return s.payment_secured
        return s.captured_amount - s.refunded_amount >= s.amount_due

    def _address_ok(self) -> bool:
        """The address service's verdict; with no service, addresses are taken as given."""
        if self.s.address_usable is None:
            return not self.wiring.checks_addresses
        return self.s.address_usable

    def _untried(self) -> list[str]:
        s = self.s
        tried = tried_warehouses(s, len(self.wiring.warehouses)) if s.sourcing else ()
        return [wh for wh in self.wiring.warehouses if wh not in tried]

    def _next_warehouse(self) -> str | None:
        untried = self._untried()
        return untried[0] if untried else None

    def _assign(self) -> list[m.Command]:
        """Fulfillment orders for the unassigned units, at warehouses that have
        not failed the order, as the policy's sourcing chooses (``_sourcing``)."""
        s = self.s
        if any(fo.status in (FS.OPEN, FS.SCHEDULED) for fo in s.fulfillment_orders):
            return []
        missing = unassigned_units(s)
        if not missing:
            return []
        untried = self._untried()
        if not untried:
            return []
        needs = [Need(line_id=k, sku=_sku(s, k), quantity=v) for k, v in sorted(missing.items())]
        sources = choose_sources(needs, untried, self.stock, self.policy.sourcing)
        return [self._assignment(src.warehouse_id, {lq.line_id: lq.quantity for lq in src.lines})
                for src in sources]

    def _assignment(self, wh: str, lines: dict[str, int], backorder: bool = False,
                    settles: bool = False) -> m.Command:
        fo_id = self.ids()
        return m.AssignWarehouse(
            **self._stamp(), fulfillment_order_id=fo_id, warehouse_id=wh,
            lines=tuple(m.LineQuantity(line_id=k, quantity=v) for k, v in sorted(lines.items())),
            backorder=backorder, settles_shortages=settles)

    def _shortage(self, action: ShortageAction) -> list[m.Command]:
        s = self.s
        missing = unassigned_units(s)
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
        first = self.wiring.warehouses[0]
        rest = {k: v - best.get(k, 0) for k, v in missing.items() if v - best.get(k, 0) > 0}
        if action is ShortageAction.HOLD:
            reason = R.SPLIT_FULFILLMENT_DECISION if best else R.INVENTORY_OUT_OF_STOCK
            return self._hold(reason, _RELEASE, note="stock does not cover the order")
        # The first assignment below settles the shortages read here: later
        # sourcing reads only those reported after it.
        if action is ShortageAction.BACKORDER or not best or best_wh is None:
            if action is ShortageAction.CANCEL_LINE and not best:
                return self._hold(R.INVENTORY_OUT_OF_STOCK, _CANCEL, note="nothing in stock")
            return [self._assignment(first, missing, backorder=True, settles=True)]
        cmds: list[m.Command] = [self._assignment(best_wh, best, settles=True)]
        if rest and action is ShortageAction.SPLIT:
            cmds.append(self._assignment(first, rest, backorder=True))
        elif rest and action is ShortageAction.CANCEL_LINE:
            cmds.insert(0, m.CancelLineItems(**self._stamp(), lines=tuple(
                m.LineQuantity(line_id=k, quantity=v) for k, v in sorted(rest.items()))))
        return cmds

    def _redrive(self) -> list[m.Command]:
        """After a stuck order's hold is released: pull work back from a silent
        warehouse so the next one gets it (the withdrawal records the
        warehouse as tried; see ``tried_warehouses`` for when sourcing starts over)."""
        return [m.CancelFulfillment(**self._stamp(),
                                    fulfillment_order_id=fo.fulfillment_order_id,
                                    reason="stuck at the warehouse", redrive=True)
                for fo in self.s.fulfillment_orders
                if fo.status in (FS.SUBMITTED, FS.ACCEPTED) and not fo.picked]


def _sku(s: OrderState, line_id: str) -> str:
    line = s.line(line_id)
    return line.sku if line is not None else line_id
