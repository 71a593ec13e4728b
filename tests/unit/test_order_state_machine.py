"""A Hypothesis state machine over the order model: commands and an unreliable world.

The coordinator's commands are rules; so is the outside world (gateway,
warehouses, carrier), whose events are generated honestly but delivered in
any order, duplicated, or replayed stale. After every step all invariants
must hold, and at the end the state must equal the fold of everything
offered.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orderloom.actors import (
    AddressVerified,
    Approver,
    ApproveShipment,
    AssignWarehouse,
    AuthorizationExpired,
    AuthorizationStatus,
    AuthorizePayment,
    CancelFulfillment,
    CancelLineItems,
    CancelOrder,
    CapturePayment,
    CloseOrder,
    Command,
    Decision,
    CommandRejected,
    CreateLabel,
    Delivered,
    Event,
    FulfillmentAccepted,
    FulfillmentRejected,
    FulfillmentStatus,
    HandOffHold,
    HoldStatus,
    InvalidTransition,
    ItemsPicked,
    LabelCreated,
    Lifecycle,
    LineQuantity,
    NotifyCustomer,
    OpenHold,
    OrderScreened,
    OrderState,
    OutcomeKind,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentOperation,
    PaymentOutcomeUnknown,
    PaymentRefunded,
    PaymentVoided,
    PlaceOrder,
    RecordRiskAssessment,
    RefundPayment,
    ReleaseHold,
    RequestCancellation,
    RequestReturn,
    RequestRiskReplay,
    RequestStatus,
    ReturnReceived,
    ShipFulfillment,
    ShipmentDelayed,
    ShipmentReturned,
    ShipmentStatus,
    Shipped,
    ShortageRecorded,
    SubmitFulfillment,
    VoidAuthorization,
    apply,
    check_invariants,
    check_step,
    decide,
    fold,
)
from tests.strategies import (
    approvers,
    hold_reasons,
    line_specs,
    notification_kinds,
    risk_levels,
    risk_recommendations,
    teams,
    warehouses,
)

IN_FLIGHT_STATUSES = (FulfillmentStatus.SUBMITTED, FulfillmentStatus.ACCEPTED,
                      FulfillmentStatus.IN_PROGRESS)
WAREHOUSE_EVENTS = ("accepted", "rejected", "picked", "label", "shipped", "short_shipped",
                    "delayed", "delivered", "returned")


class OrderMachine(RuleBasedStateMachine):
    """One order driven by random commands and a reordering, duplicating world."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 0
        self.state = OrderState(order_id="O1")
        self.offered: list[Event] = []
        self.applied: list[Event] = []
        self.inflight: list[Event] = []
        self.done: list[Command] = []
        self.seqs: dict[str, int] = {}
        self.answered: set[str] = set()
        self.sent_to_warehouse: set[str] = set()
        self.prompt = False  # deliver world events at once instead of leaving them in flight

    # -- plumbing --------------------------------------------------------------

    def _tick(self) -> float:
        self.clock += 1
        return float(self.clock)

    def _offer(self, event: Event) -> OutcomeKind:
        before = self.state
        self.state, outcome = apply(before, event)
        self.offered.append(event)
        assert check_step(before, event, outcome, self.state) == ()
        if outcome.kind is OutcomeKind.APPLIED:
            self.applied.append(event)
        return outcome.kind

    def _do(self, cls: type[Command], **fields: Any) -> None:
        if fields.get("approved_by") is not None:
            fields.setdefault("approver", Approver.PERSON)  # the strategy's approvals are a person's
        now = self._tick()
        cmd = cls(order_id="O1", command_id=f"c{self.clock}", issued_at=now,
                  issued_by="automation", **fields)
        try:
            events = decide(self.state, cmd)
        except (CommandRejected, InvalidTransition):
            return
        for event in events:
            # decide only emits what the order accepts.
            assert self._offer(event) is OutcomeKind.APPLIED
        self.done.append(cmd)
        if isinstance(cmd, SubmitFulfillment):
            self.sent_to_warehouse.add(cmd.fulfillment_order_id)

    def _emit(self, cls: type[Event], source: str, **fields: Any) -> None:
        seq = self.seqs[source] = self.seqs.get(source, 0) + 1
        self.inflight.append(cls(order_id="O1", event_id=f"{source}#{seq}", source=source,
                                 source_seq=seq, occurred_at=self._tick(), **fields))
        if self.prompt:
            self._offer(self.inflight.pop())

    # -- the coordinator's commands -----------------------------------------------

    @initialize(lines=line_specs)
    def place(self, lines: Any) -> None:
        self._do(PlaceOrder, customer_id="C1", currency="EUR", lines=lines)

    @rule(data=st.data())
    def authorize(self, data: st.DataObject) -> None:
        self._do(AuthorizePayment,
                 amount=data.draw(st.integers(1, max(1, self.state.amount_due + 100))))

    @rule(data=st.data(), approved_by=approvers)
    def capture(self, data: st.DataObject, approved_by: str | None) -> None:
        auths = self.state.authorizations
        if auths:
            auth = data.draw(st.sampled_from(auths))
            amount = data.draw(st.integers(1, auth.amount + 10))
            self._do(CapturePayment, authorization_id=auth.authorization_id, amount=amount,
                     approved_by=approved_by)

    @rule(data=st.data(), approved_by=approvers)
    def refund(self, data: st.DataObject, approved_by: str | None) -> None:
        amount = data.draw(st.integers(1, max(1, self.state.captured_amount + 10)))
        self._do(RefundPayment, amount=amount, approved_by=approved_by)

    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        if self.state.authorizations:
            auth = data.draw(st.sampled_from(self.state.authorizations))
            self._do(VoidAuthorization, authorization_id=auth.authorization_id)

    @rule(approved_by=approvers, dice=st.integers(0, 3))
    def cancel(self, approved_by: str | None, dice: int) -> None:
        if dice == 0:  # rare, or most runs would end canceled early
            self._do(CancelOrder, reason="customer asked", approved_by=approved_by)

    @rule(data=st.data())
    def cancel_lines(self, data: st.DataObject) -> None:
        open_lines = [li for li in self.state.line_items if li.ordered]
        if open_lines:
            li = data.draw(st.sampled_from(open_lines))
            self._do(CancelLineItems, lines=(
                LineQuantity(line_id=li.line_id, quantity=data.draw(st.integers(1, li.ordered))),))

    @rule(data=st.data(), warehouse=warehouses)
    def assign(self, data: st.DataObject, warehouse: str) -> None:
        open_lines = [li for li in self.state.line_items if li.ordered]
        if open_lines:
            chosen = data.draw(st.lists(st.sampled_from(open_lines), min_size=1,
                                        unique_by=lambda li: li.line_id))
            lines = tuple(LineQuantity(line_id=li.line_id,
                                       quantity=data.draw(st.integers(1, li.ordered)))
                          for li in chosen)
            self._do(AssignWarehouse, fulfillment_order_id=f"F{self.clock + 1}",
                     warehouse_id=warehouse, lines=lines, backorder=data.draw(st.booleans()),
                     settles_shortages=data.draw(st.booleans()))

    def _fo_id(self, data: st.DataObject) -> str | None:
        fos = self.state.fulfillment_orders
        return data.draw(st.sampled_from(fos)).fulfillment_order_id if fos else None

    @rule(data=st.data(), approved_by=approvers)
    def submit(self, data: st.DataObject, approved_by: str | None) -> None:
        if (fo_id := self._fo_id(data)) is not None:
            self._do(SubmitFulfillment, fulfillment_order_id=fo_id, approved_by=approved_by)

    @rule(data=st.data())
    def cancel_fulfillment(self, data: st.DataObject) -> None:
        if (fo_id := self._fo_id(data)) is not None:
            self._do(CancelFulfillment, fulfillment_order_id=fo_id, reason="rerouted",
                     redrive=data.draw(st.booleans()))

    @rule(data=st.data())
    def create_label(self, data: st.DataObject) -> None:
        if (fo_id := self._fo_id(data)) is not None:
            self._do(CreateLabel, fulfillment_order_id=fo_id, carrier="DHL", tracking_number="T")

    @rule(data=st.data(), approved_by=approvers)
    def ship(self, data: st.DataObject, approved_by: str | None) -> None:
        if (fo_id := self._fo_id(data)) is not None:
            self._do(ShipFulfillment, fulfillment_order_id=fo_id, approved_by=approved_by)

    @rule(dice=st.integers(0, 3))
    def approve_unpaid_shipment(self, dice: int) -> None:
        if dice == 0:
            self._do(ApproveShipment, approved_by="person:alice", reason="net terms",
                     approver=Approver.PERSON)

    @rule(reason=hold_reasons, team=teams, within=st.floats(0, 50),
          options=st.lists(st.sampled_from(list(Decision)), min_size=1, max_size=3,
                           unique=True), pick=st.integers(0, 2))
    def open_hold(self, reason: Any, team: str, within: float, options: list[Decision],
                  pick: int) -> None:
        self._do(OpenHold, hold_id=f"H{self.clock + 1}", reason=reason, owner_team=team,
                 deadline=self.clock + 1 + within, options=tuple(options),
                 proposal=options[pick % len(options)])

    @rule(data=st.data(), team=teams)
    def hand_off(self, data: st.DataObject, team: str) -> None:
        if self.state.holds:
            hold = data.draw(st.sampled_from(self.state.holds))
            self._do(HandOffHold, hold_id=hold.hold_id, to_team=team)

    @rule(data=st.data(), decision=st.one_of(st.none(), st.sampled_from(list(Decision))))
    def release(self, data: st.DataObject, decision: Decision | None) -> None:
        if self.state.holds:
            hold = data.draw(st.sampled_from(self.state.holds))
            self._do(ReleaseHold, hold_id=hold.hold_id, resolution="resolved", decision=decision)

    # -- facts automation records (its memory is the journal) ---------------------

    def _learn(self, cls: type[Event], **fields: Any) -> None:
        """What the order actor records as told by another actor: a coordinator event."""
        seq = self.state.last_seq("coordinator") + 1
        self._offer(cls(order_id="O1", event_id=f"learnt{self.clock}", source="coordinator",
                        source_seq=seq, occurred_at=self._tick(), **fields))

    @rule(duplicate_of=st.one_of(st.none(), st.just("O0")))
    def screened(self, duplicate_of: str | None) -> None:
        self._learn(OrderScreened, duplicate_of=duplicate_of)

    @rule(ok=st.booleans(), corrected=st.booleans())
    def address_verified(self, ok: bool, corrected: bool) -> None:
        self._learn(AddressVerified, ok=ok, corrected=corrected)

    @rule(data=st.data(), warehouse=warehouses)
    def shortage_reported(self, data: st.DataObject, warehouse: str) -> None:
        if (fo_id := self._fo_id(data)) is not None:
            lines = tuple(LineQuantity(line_id=li.line_id, quantity=data.draw(st.integers(1, 3)))
                          for li in self.state.line_items if data.draw(st.booleans()))
            self._learn(ShortageRecorded, fulfillment_order_id=fo_id, warehouse_id=warehouse,
                        available=lines)

    @rule(approver=st.sampled_from([Approver.CUSTOMER, Approver.PERSON]),
          dice=st.integers(0, 3))
    def request_cancellation(self, approver: Approver, dice: int) -> None:
        if dice == 0:
            self._do(RequestCancellation, reason="customer asked", approver=approver)

    @rule(data=st.data())
    def request_risk_replay(self, data: st.DataObject) -> None:
        if self.state.payment_requests:
            r = data.draw(st.sampled_from(self.state.payment_requests))
            self._do(RequestRiskReplay, request_id=r.request_id)

    @rule(level=risk_levels, advice=risk_recommendations)
    def assess_risk(self, level: Any, advice: Any) -> None:
        self._do(RecordRiskAssessment, level=level, recommendation=advice, provider="fraud-svc")

    @rule(data=st.data(), kind=notification_kinds)
    def notify(self, data: st.DataObject, kind: Any) -> None:
        self._do(NotifyCustomer, kind=kind, fulfillment_order_id=self._fo_id(data) or "F0")

    @rule(data=st.data())
    def request_return(self, data: st.DataObject) -> None:
        shipped = [li for li in self.state.line_items if li.shipped]
        if shipped:
            li = data.draw(st.sampled_from(shipped))
            self._do(RequestReturn, return_id=f"RT{self.clock + 1}", lines=(
                LineQuantity(line_id=li.line_id, quantity=data.draw(st.integers(1, li.shipped))),))

    @rule(dice=st.integers(0, 3))
    def close(self, dice: int) -> None:
        if dice == 0:
            self._do(CloseOrder)

    @rule(data=st.data())
    def retry_a_command(self, data: st.DataObject) -> None:
        """A retried command (same id) decides nothing new."""
        if self.done:
            assert decide(self.state, data.draw(st.sampled_from(self.done))) == ()

    @rule(data=st.data(), approved_by=approvers, steps=st.integers(1, 8))
    def autopilot(self, data: st.DataObject, approved_by: str | None, steps: int) -> None:
        """Take a few standard steps with a prompt world, so runs reach deep states."""
        for _ in range(steps):
            self._standard_step(approved_by)
            self.world_autopilot(data)

    def _standard_step(self, approved_by: str | None) -> None:
        s = self.state
        covered = s.open_authorized_amount + s.captured_amount - s.refunded_amount
        capturable = [a for a in s.authorizations if a.status is AuthorizationStatus.OPEN
                      and not any(r.authorization_id == a.authorization_id
                                  for r in s.payment_requests)]
        ordered = [li for li in s.line_items if li.ordered]
        open_fos = [fo for fo in s.fulfillment_orders
                    if fo.status in (FulfillmentStatus.OPEN, FulfillmentStatus.SCHEDULED)]
        if s.amount_due > covered and not s.unresolved_requests(PaymentOperation.AUTHORIZE):
            self._do(AuthorizePayment, amount=s.amount_due - covered)
        elif ordered:
            for i, li in enumerate(ordered):  # one fulfillment order per line: split shipment
                self._do(AssignWarehouse, fulfillment_order_id=f"F{self.clock + 1}",
                         warehouse_id=f"W{i % 2 + 1}",
                         lines=(LineQuantity(line_id=li.line_id, quantity=li.ordered),))
        elif open_fos:
            self._do(SubmitFulfillment, fulfillment_order_id=open_fos[0].fulfillment_order_id,
                     approved_by=approved_by)
        elif capturable:
            self._do(CapturePayment, authorization_id=capturable[0].authorization_id,
                     amount=capturable[0].amount, approved_by=approved_by)
        elif s.progress is Lifecycle.DELIVERED and not s.returns:
            shipped = next(li for li in s.line_items if li.shipped)
            self._do(RequestReturn, return_id="RT-auto",
                     lines=(LineQuantity(line_id=shipped.line_id, quantity=1),))

    @rule(data=st.data())
    def world_autopilot(self, data: st.DataObject) -> None:
        """The world answers promptly and truthfully: the gateway succeeds, warehouses ship."""
        self.prompt = True
        try:
            if data.draw(st.integers(0, 4)) == 0:
                self.gateway_times_out(data)
            self.gateway_answers(data, succeed=True)
            for case in self.state.returns:
                if not case.received:
                    self._emit(ReturnReceived, "warehouse/returns", return_id=case.return_id)
            for fo in self.state.fulfillment_orders:
                if fo.fulfillment_order_id not in self.sent_to_warehouse:
                    continue
                src, fid = f"warehouse/{fo.warehouse_id}", fo.fulfillment_order_id
                if fo.status is FulfillmentStatus.SUBMITTED:
                    self._emit(FulfillmentAccepted, src, fulfillment_order_id=fid)
                elif fo.status is FulfillmentStatus.ACCEPTED:
                    self._emit(Shipped, src, fulfillment_order_id=fid)
                elif fo.shipment is ShipmentStatus.SHIPPED:
                    self._emit(Delivered, "carrier", fulfillment_order_id=fid)
        finally:
            self.prompt = False

    # -- the world -------------------------------------------------------------------

    @rule(data=st.data(), succeed=st.booleans())
    def gateway_answers(self, data: st.DataObject, succeed: bool) -> None:
        """The gateway answers each request once, truthfully (delivery is another matter)."""
        waiting = [r for r in self.state.payment_requests
                   if r.request_id not in self.answered]
        if not waiting:
            return
        req = data.draw(st.sampled_from(waiting))
        self.answered.add(req.request_id)
        rid, auth_id = req.request_id, req.authorization_id or ""
        if not succeed:
            self._emit(PaymentFailed, "gateway", request_id=rid, reason="declined")
        elif req.operation is PaymentOperation.AUTHORIZE:
            self._emit(PaymentAuthorized, "gateway", request_id=rid,
                       authorization_id=f"A-{rid}", amount=req.amount)
        elif req.operation is PaymentOperation.CAPTURE:
            self._emit(PaymentCaptured, "gateway", request_id=rid, authorization_id=auth_id,
                       capture_id=f"K-{rid}", amount=req.amount)
        elif req.operation is PaymentOperation.REFUND:
            self._emit(PaymentRefunded, "gateway", request_id=rid, refund_id=f"R-{rid}",
                       amount=req.amount)
        else:
            self._emit(PaymentVoided, "gateway", request_id=rid, authorization_id=auth_id)

    @rule(data=st.data())
    def gateway_times_out(self, data: st.DataObject) -> None:
        """The gateway client gives up waiting: the outcome becomes unknown."""
        waiting = [r for r in self.state.payment_requests if r.status is RequestStatus.PENDING]
        if waiting:
            req = data.draw(st.sampled_from(waiting))
            self._emit(PaymentOutcomeUnknown, "gateway", request_id=req.request_id)

    @rule(data=st.data())
    def authorization_expires(self, data: st.DataObject) -> None:
        open_auths = [a for a in self.state.authorizations
                      if a.status is AuthorizationStatus.OPEN]
        if open_auths:
            auth = data.draw(st.sampled_from(open_auths))
            self._emit(AuthorizationExpired, "gateway", authorization_id=auth.authorization_id)

    @rule(data=st.data(), what=st.sampled_from(WAREHOUSE_EVENTS))
    def warehouse_acts(self, data: st.DataObject, what: str) -> None:
        """A warehouse or carrier reports on a fulfillment order it was sent."""
        sent = sorted(self.sent_to_warehouse)
        if not sent:
            return
        fo = self.state.fulfillment_order(data.draw(st.sampled_from(sent)))
        if fo is None:
            return
        src, fid = f"warehouse/{fo.warehouse_id}", fo.fulfillment_order_id
        if what == "accepted":
            self._emit(FulfillmentAccepted, src, fulfillment_order_id=fid)
        elif what == "rejected":
            self._emit(FulfillmentRejected, src, fulfillment_order_id=fid, reason="stockout")
        elif what == "picked":
            self._emit(ItemsPicked, src, fulfillment_order_id=fid)
        elif what == "label":
            self._emit(LabelCreated, src, fulfillment_order_id=fid, carrier="UPS",
                       tracking_number="U1")
        elif what == "shipped":
            self._emit(Shipped, src, fulfillment_order_id=fid)
        elif what == "short_shipped":
            first = fo.lines[0]
            self._emit(Shipped, src, fulfillment_order_id=fid, lines=(
                LineQuantity(line_id=first.line_id,
                             quantity=data.draw(st.integers(1, first.quantity))),))
        elif what == "delayed":
            self._emit(ShipmentDelayed, "carrier", fulfillment_order_id=fid, reason="storm")
        elif what == "delivered":
            self._emit(Delivered, "carrier", fulfillment_order_id=fid)
        else:
            self._emit(ShipmentReturned, "carrier", fulfillment_order_id=fid)

    @rule(data=st.data())
    def return_arrives(self, data: st.DataObject) -> None:
        if self.state.returns:
            case = data.draw(st.sampled_from(self.state.returns))
            self._emit(ReturnReceived, "warehouse/returns", return_id=case.return_id)

    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """Deliver any in-flight event: the network reorders freely."""
        if self.inflight:
            index = data.draw(st.integers(0, len(self.inflight) - 1))
            self._offer(self.inflight.pop(index))

    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        """Redeliver an event already offered: it must be a no-op or a late first success."""
        if self.offered:
            event = data.draw(st.sampled_from(self.offered))
            was_applied = event in self.applied
            kind = self._offer(event)
            if was_applied:
                assert kind is OutcomeKind.DUPLICATE

    @rule(data=st.data())
    def replay_stale(self, data: st.DataObject) -> None:
        """An applied event re-sent under a new id with its old sequence number is stale."""
        if self.applied:
            old = data.draw(st.sampled_from(self.applied))
            state = self.state
            kind = self._offer(type(old)(**{**_fields(old), "event_id": old.event_id + "'"}))
            assert kind in (OutcomeKind.STALE, OutcomeKind.DUPLICATE)
            assert self.state is state

    # -- properties --------------------------------------------------------------------

    @invariant()
    def all_invariants_hold(self) -> None:
        assert check_invariants(self.state) == ()

    @invariant()
    def derived_totals_match_a_fresh_computation(self) -> None:
        """The totals ``replace`` carries over or recomputes equal those of a
        state built from scratch with the same fields."""
        fresh = attrs.evolve(self.state)
        for name in ("amount_due", "units_shipped", "units_active", "authorized_amount",
                     "open_authorized_amount", "captured_amount", "refunded_amount",
                     "open_holds", "payment_secured"):
            assert getattr(self.state, name) == getattr(fresh, name), name
        assert self.state.unresolved_requests() == fresh.unresolved_requests()

    @invariant()
    def automation_facts_are_consistent(self) -> None:
        s = self.state
        assert s.duplicate_of is None or s.screened  # only a screening names a duplicate
        assert s.capture_failures >= 0
        assert s.cancel_request is None or s.progress is not Lifecycle.CANCELED
        fo_ids = {fo.fulfillment_order_id for fo in s.fulfillment_orders}
        assert all(r.fulfillment_order_id in fo_ids for r in s.shortages)
        for r in s.payment_requests:  # a recorded failure belongs to a failed request
            assert (r.failure is not None) <= (r.status is RequestStatus.FAILED)
        for h in s.holds:  # a case proposes one of its options; only a release decides
            assert h.proposal in h.options
            assert h.decision is None or h.status is not HoldStatus.OPEN

    @invariant()
    def on_hold_exactly_while_a_hold_is_open(self) -> None:
        on_hold = self.state.lifecycle is Lifecycle.ON_HOLD
        assert on_hold == bool(self.state.open_holds)
        assert (self.state.held_lifecycle is not None) == on_hold

    @invariant()
    def nothing_reaches_a_warehouse_unless_sent(self) -> None:
        for fo in self.state.fulfillment_orders:
            if fo.status in IN_FLIGHT_STATUSES:
                assert fo.fulfillment_order_id in self.sent_to_warehouse

    def teardown(self) -> None:
        assert fold(self.offered, order_id="O1") == self.state


def _fields(event: Event) -> dict[str, Any]:
    return attrs.asdict(event, recurse=False)


OrderMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderModel = OrderMachine.TestCase
TestOrderModel.__doc__ = "Random interleavings of commands and unreliable events keep every invariant."
