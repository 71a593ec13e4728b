"""The pure order model: decide, evolve, apply and fold, scenario by scenario."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from orderloom.actors import (
    Approver,
    ApproveShipment,
    AssignWarehouse,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CommandRejected,
    CustomerNotified,
    Delivered,
    EventRejected,
    FulfillmentAccepted,
    FulfillmentOrderCreated,
    FulfillmentRejected,
    FulfillmentStatus,
    FulfillmentSubmitted,
    HandOffHold,
    HoldOpened,
    HoldReason,
    HoldReleased,
    HoldStatus,
    InvalidTransition,
    ItemsPicked,
    LabelCreated,
    Lifecycle,
    MoneyView,
    NotificationKind,
    NotifyCustomer,
    OpenHold,
    OrderPlaced,
    OrderState,
    Outcome,
    OutcomeKind,
    Payment,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentOutcomeUnknown,
    PaymentRefunded,
    PlaceOrder,
    RefundPayment,
    ReleaseBasis,
    ReleaseHold,
    RequestReturn,
    ReturnReceived,
    ShipmentDelayed,
    ShipmentStatus,
    Shipped,
    SubmitFulfillment,
    apply,
    check_invariants,
    check_money_views,
    check_step,
    decide,
    fold,
    handle,
)
from tests.strategies import command, event, lines, qty


class Order:
    """A small driver: commands numbered in order, events from named sources."""

    def __init__(self) -> None:
        self.state = OrderState(order_id="O1")
        self.n = 0
        self.seqs: dict[str, int] = {}
        self.journal: list[Any] = []

    def do(self, cls: type[Any], **fields: Any) -> tuple[Any, ...]:
        self.n += 1
        self.state, events = handle(self.state, command(cls, self.n, **fields))
        self.journal.extend(events)
        return events

    def hear(self, cls: type[Any], source: str = "gateway", **fields: Any) -> OutcomeKind:
        self.seqs[source] = self.seqs.get(source, 0) + 1
        return self.offer(event(cls, source, self.seqs[source], **fields))

    # Methods, not attribute reads: mypy would narrow ``o.state.lifecycle`` across calls.
    def lifecycle(self) -> Lifecycle:
        return self.state.lifecycle

    def payment(self) -> Payment:
        return self.state.payment

    def offer(self, ev: Any) -> OutcomeKind:
        before = self.state
        self.state, outcome = apply(self.state, ev)
        self.journal.append(ev)
        assert check_step(before, ev, outcome, self.state) == ()
        return outcome.kind


def placed() -> Order:
    """O1: L1 2 x 5.00 and L2 1 x 10.00 (20.00 due)."""
    o = Order()
    o.do(PlaceOrder, customer_id="C1", currency="EUR",
         lines=lines(("L1", 2, 500), ("L2", 1, 1000)))
    return o


def paid_by_authorization() -> Order:
    o = placed()
    o.do(AuthorizePayment, amount=2000)
    assert o.hear(PaymentAuthorized, request_id="c2", authorization_id="A1",
                  amount=2000) is OutcomeKind.APPLIED
    return o


def test_happy_path_reaches_delivered_with_every_dimension_in_step() -> None:
    """Place, authorize, assign, submit, accept, pick, label, ship, capture, deliver."""
    o = paid_by_authorization()
    assert (o.state.lifecycle, o.state.payment) == (Lifecycle.READY_FOR_FULFILLMENT,
                                                    Payment.AUTHORIZED)
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    for cls in (FulfillmentAccepted, ItemsPicked):
        assert o.hear(cls, "warehouse/W1", fulfillment_order_id="F1") is OutcomeKind.APPLIED
    o.hear(LabelCreated, "warehouse/W1", fulfillment_order_id="F1", carrier="DHL",
           tracking_number="T1")
    o.hear(Shipped, "warehouse/W1", fulfillment_order_id="F1")
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentCaptured, request_id="c5", authorization_id="A1", capture_id="K1", amount=2000)
    o.hear(Delivered, "carrier", fulfillment_order_id="F1")
    fo = o.state.fulfillment_orders[0]
    assert (fo.status, fo.shipment, fo.release) == (
        FulfillmentStatus.CLOSED, ShipmentStatus.DELIVERED, ReleaseBasis.PAYMENT_SECURED)
    assert (o.state.lifecycle, o.state.payment) == (Lifecycle.DELIVERED, Payment.PAID)
    assert [li.shipped for li in o.state.line_items] == [2, 1]
    assert check_invariants(o.state) == ()


def test_split_shipments_make_the_order_partially_fulfilled_until_all_ship() -> None:
    """Two fulfillment orders at two warehouses: one shipped is partial, both are fulfilled."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2))
    o.do(AssignWarehouse, fulfillment_order_id="F2", warehouse_id="W2", lines=qty(L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.do(SubmitFulfillment, fulfillment_order_id="F2")
    o.hear(Shipped, "warehouse/W2", fulfillment_order_id="F2")
    assert o.lifecycle() is Lifecycle.PARTIALLY_FULFILLED
    o.hear(Delivered, "carrier", fulfillment_order_id="F2")
    assert o.lifecycle() is Lifecycle.PARTIALLY_FULFILLED
    o.hear(Shipped, "warehouse/W1", fulfillment_order_id="F1")
    assert o.lifecycle() is Lifecycle.FULFILLED
    o.hear(Delivered, "carrier", fulfillment_order_id="F1")
    assert o.lifecycle() is Lifecycle.DELIVERED


def test_short_shipment_closes_incomplete_and_returns_units_for_reassignment() -> None:
    """A warehouse shipping 1 of 2 units leaves the fulfillment order incomplete, 1 unit ordered."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.hear(Shipped, "warehouse/W1", fulfillment_order_id="F1", lines=qty(L1=1, L2=1))
    l1 = o.state.line("L1")
    assert l1 is not None and (l1.shipped, l1.ordered, l1.allocated) == (1, 1, 0)
    assert o.state.fulfillment_orders[0].status is FulfillmentStatus.INCOMPLETE
    assert o.lifecycle() is Lifecycle.PARTIALLY_FULFILLED
    o.do(AssignWarehouse, fulfillment_order_id="F2", warehouse_id="W2", lines=qty(L1=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F2")
    o.hear(Shipped, "warehouse/W2", fulfillment_order_id="F2")
    assert o.lifecycle() is Lifecycle.FULFILLED


def test_rejected_fulfillment_puts_units_back_to_ordered() -> None:
    """A warehouse refusal (stockout) frees the units so another warehouse can take them."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.hear(FulfillmentRejected, "warehouse/W1", fulfillment_order_id="F1", reason="stockout")
    l1 = o.state.line("L1")
    assert l1 is not None and (l1.ordered, l1.allocated) == (2, 0)
    assert o.state.fulfillment_orders[0].status is FulfillmentStatus.REJECTED


def test_partial_refunds_add_up_and_cannot_exceed_captures() -> None:
    """Refund 5.00 then 15.00 of 20.00: partially refunded, then refunded, then refused."""
    o = paid_by_authorization()
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentCaptured, request_id="c3", authorization_id="A1", capture_id="K1", amount=2000)
    o.do(RefundPayment, amount=500)
    o.hear(PaymentRefunded, request_id="c4", refund_id="R1", amount=500)
    assert o.payment() is Payment.PARTIALLY_REFUNDED
    o.do(RefundPayment, amount=1500)
    with pytest.raises(CommandRejected, match="exceeds"):
        o.do(RefundPayment, amount=1)  # 15.00 is still in flight
    o.hear(PaymentRefunded, request_id="c5", refund_id="R2", amount=1500)
    assert (o.state.payment, o.state.refunded_amount) == (Payment.REFUNDED, 2000)
    assert check_invariants(o.state) == ()


def test_partial_capture_makes_the_order_partially_paid() -> None:
    """Capturing less than is due leaves the order partially paid."""
    o = paid_by_authorization()
    o.do(CapturePayment, authorization_id="A1", amount=1200)
    o.hear(PaymentCaptured, request_id="c3", authorization_id="A1", capture_id="K1", amount=1200)
    assert o.payment() is Payment.PARTIALLY_PAID


def test_hold_takes_the_order_off_the_standard_path_and_records_handoffs() -> None:
    """A hold puts order and open fulfillment orders on hold; handoffs A->B->A are recorded."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(OpenHold, hold_id="H1", reason=HoldReason.INCORRECT_ADDRESS,
         owner_team="customer-care", deadline=100.0)
    assert o.lifecycle() is Lifecycle.ON_HOLD
    assert o.state.fulfillment_orders[0].status is FulfillmentStatus.ON_HOLD
    o.do(HandOffHold, hold_id="H1", to_team="fulfillment-ops", by="person:bob")
    o.do(HandOffHold, hold_id="H1", to_team="customer-care")
    hold = o.state.hold("H1")
    assert hold is not None
    assert [(h.from_team, h.to_team) for h in hold.handoffs] == [
        ("customer-care", "fulfillment-ops"), ("fulfillment-ops", "customer-care")]
    assert hold.owner_team == "customer-care"
    o.do(ReleaseHold, hold_id="H1", resolution="address confirmed")
    assert o.lifecycle() is Lifecycle.READY_FOR_FULFILLMENT
    assert [fo.status for fo in o.state.fulfillment_orders] == [FulfillmentStatus.OPEN]


def test_irreversible_commands_on_hold_need_a_person() -> None:
    """While a hold is open, submit/capture/cancel are refused unless someone approved them."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(OpenHold, hold_id="H1", reason=HoldReason.HIGH_RISK_OF_FRAUD, owner_team="fraud",
         deadline=50.0)
    for cls, fields in ((CapturePayment, {"authorization_id": "A1", "amount": 2000}),
                        (CancelOrder, {"reason": "fraud"})):
        with pytest.raises(CommandRejected, match="high_risk_of_fraud"):
            o.do(cls, **fields)
    events = o.do(CancelOrder, reason="fraud confirmed", approved_by="person:alice",
                  approver=Approver.PERSON)
    assert [type(e).__name__ for e in events] == [
        "HoldReleased", "OrderCanceled", "PaymentVoidRequested"]
    assert o.lifecycle() is Lifecycle.CANCELED
    assert o.state.fulfillment_orders[0].status is FulfillmentStatus.CANCELED
    assert all(li.canceled == li.quantity for li in o.state.line_items)


def test_facts_keep_arriving_while_on_hold_and_count_on_release() -> None:
    """Payment authorized during a hold: the order is ready for fulfillment once released."""
    o = placed()
    o.do(OpenHold, hold_id="H1", reason=HoldReason.DUPLICATE_ORDER, owner_team="customer-care",
         deadline=10.0)
    o.do(AuthorizePayment, amount=2000)
    o.hear(PaymentAuthorized, request_id="c3", authorization_id="A1", amount=2000)
    assert (o.state.lifecycle, o.state.held_lifecycle) == (
        Lifecycle.ON_HOLD, Lifecycle.READY_FOR_FULFILLMENT)
    o.do(ReleaseHold, hold_id="H1", resolution="not a duplicate")
    assert (o.state.lifecycle, o.state.held_lifecycle) == (
        Lifecycle.READY_FOR_FULFILLMENT, None)


def test_one_open_case_per_reason() -> None:
    """A second hold for a reason that already has an open one is refused; after
    the first is released, the reason may be raised again."""
    o = placed()
    o.do(OpenHold, hold_id="H1", reason=HoldReason.AWAITING_PAYMENT, owner_team="payments-ops",
         deadline=10.0)
    with pytest.raises(CommandRejected, match="H1 is already open for awaiting_payment"):
        o.do(OpenHold, hold_id="H2", reason=HoldReason.AWAITING_PAYMENT,
             owner_team="payments-ops", deadline=10.0)
    o.do(OpenHold, hold_id="H3", reason=HoldReason.OTHER, owner_team="customer-care",
         deadline=10.0)
    o.do(ReleaseHold, hold_id="H1", resolution="paid")
    o.do(OpenHold, hold_id="H4", reason=HoldReason.AWAITING_PAYMENT, owner_team="payments-ops",
         deadline=20.0)
    assert [h.hold_id for h in o.state.open_holds] == ["H3", "H4"]


def test_releasing_a_released_hold_is_an_invalid_transition() -> None:
    """A second release of one hold is refused by the hold table and recorded, not applied."""
    o = placed()
    o.do(OpenHold, hold_id="H1", reason=HoldReason.OTHER, owner_team="customer-care",
         deadline=10.0)
    o.do(ReleaseHold, hold_id="H1", resolution="done")
    before = o.state
    outcome = apply(before, event(
        HoldReleased, "desk", 1,
        hold_id="H1", released_by="person:x", resolution="again"))[1]
    assert outcome.kind is OutcomeKind.REJECTED
    assert isinstance(outcome.error, InvalidTransition)
    assert outcome.error.current is HoldStatus.RELEASED


def test_duplicate_events_are_ignored() -> None:
    """The same event twice, or a gateway resend under a new id, changes nothing."""
    o = placed()
    o.do(AuthorizePayment, amount=2000)
    auth = event(PaymentAuthorized, "gateway", 1, request_id="c2", authorization_id="A1",
                 amount=2000)
    assert o.offer(auth) is OutcomeKind.APPLIED
    state = o.state
    assert o.offer(auth) is OutcomeKind.DUPLICATE
    resend = attrs.evolve(auth, event_id="other-id", source_seq=2)
    assert o.offer(resend) is OutcomeKind.DUPLICATE
    assert o.state is state


def test_stale_events_never_regress_state() -> None:
    """An older event from a source that already reported something newer is ignored."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.offer(event(Shipped, "warehouse/W1", 2, fulfillment_order_id="F1"))
    o.offer(event(Delivered, "carrier", 5, fulfillment_order_id="F1"))
    state = o.state
    assert o.offer(event(FulfillmentAccepted, "warehouse/W1", 1,
                         fulfillment_order_id="F1")) is OutcomeKind.STALE
    assert o.offer(event(ShipmentDelayed, "carrier", 4, fulfillment_order_id="F1",
                         reason="weather")) is OutcomeKind.STALE
    assert o.state is state
    assert o.lifecycle() is Lifecycle.DELIVERED


def test_out_of_order_event_from_another_source_is_rejected_not_applied() -> None:
    """A late 'accepted' from a new source after shipment is an illegal move, recorded as such."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.hear(Shipped, "warehouse/W1", fulfillment_order_id="F1")
    state = o.state
    state2, outcome = apply(state, event(FulfillmentAccepted, "wms-relay", 1,
                                         fulfillment_order_id="F1"))
    assert outcome.kind is OutcomeKind.REJECTED and state2 is state
    assert isinstance(outcome.error, InvalidTransition)
    assert (outcome.error.dimension, outcome.error.current, outcome.error.attempted) == (
        "fulfillment[F1]", FulfillmentStatus.CLOSED, FulfillmentStatus.ACCEPTED)


def test_event_before_order_placed_is_rejected() -> None:
    """A payment webhook for an order not yet placed is refused and leaves no trace."""
    state = OrderState(order_id="O1")
    new, outcome = apply(state, event(PaymentAuthorized, "gateway", 1, authorization_id="A1",
                                      amount=100))
    assert outcome.kind is OutcomeKind.REJECTED and new is state
    assert isinstance(outcome.error, EventRejected)


def test_ambiguous_gateway_outcome_blocks_irreversible_actions_until_reconciled() -> None:
    """A capture that timed out makes payment unknown; cancel and re-capture wait for the truth."""
    o = paid_by_authorization()
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentOutcomeUnknown, "gateway-client", request_id="c3")
    assert o.payment() is Payment.UNKNOWN
    with pytest.raises(CommandRejected, match="unknown"):
        o.do(CancelOrder, reason="customer asked")
    with pytest.raises(CommandRejected):
        o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentCaptured, request_id="c3", authorization_id="A1", capture_id="K1",
           amount=2000)
    assert o.payment() is Payment.PAID


def test_failed_capture_returns_to_authorized_and_may_be_retried() -> None:
    """A declined capture leaves the authorization open; a new capture request is allowed."""
    o = paid_by_authorization()
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentFailed, request_id="c3", reason="declined")
    assert o.payment() is Payment.AUTHORIZED
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    assert check_invariants(o.state) == ()


def test_no_fulfillment_without_secured_payment_or_approval() -> None:
    """Submitting unpaid is refused; a person's approval releases it with basis 'approved'."""
    o = placed()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    with pytest.raises(CommandRejected, match="not secured"):
        o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.do(ApproveShipment, approved_by="person:alice", reason="B2B net terms",
         approver=Approver.PERSON)
    assert o.lifecycle() is Lifecycle.READY_FOR_FULFILLMENT
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    assert o.state.fulfillment_orders[0].release is ReleaseBasis.APPROVED


def test_no_capture_after_cancel() -> None:
    """decide refuses a capture on a canceled order; a late gateway capture is flagged."""
    o = paid_by_authorization()
    o.do(CancelOrder, reason="customer asked")
    with pytest.raises(CommandRejected, match="canceled"):
        o.do(CapturePayment, authorization_id="A1", amount=2000)
    late, outcome = apply(o.state, event(PaymentCaptured, "gateway", 9, authorization_id="A1",
                                         capture_id="K9", amount=2000))
    assert outcome.kind is OutcomeKind.APPLIED  # money moved: recorded as told
    names = {v.name for v in check_invariants(late)}
    assert "never_capture_after_cancel" in names


def test_customer_hears_shipped_only_after_shipment() -> None:
    """A 'shipped' notice is refused before shipment; a raw one recorded early is flagged."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    with pytest.raises(CommandRejected, match="no shipment"):
        o.do(NotifyCustomer, kind=NotificationKind.SHIPPED, fulfillment_order_id="F1")
    early = event(CustomerNotified, "notifications", 1, kind=NotificationKind.SHIPPED,
                  fulfillment_order_id="F1")
    flagged, _ = apply(o.state, early)
    assert [v.name for v in check_invariants(flagged)] == [
        "never_notify_shipped_before_shipment"]
    o.hear(Shipped, "warehouse/W1", fulfillment_order_id="F1")
    o.do(NotifyCustomer, kind=NotificationKind.SHIPPED, fulfillment_order_id="F1")
    assert check_invariants(o.state) == ()


def test_unsafe_facts_are_recorded_and_flagged_by_invariants() -> None:
    """Double capture, over-refund and unpaid release, folded from a journal, are all caught."""
    journal = [
        event(OrderPlaced, "shop", 1,
              customer_id="C1", currency="EUR", lines=lines(("L1", 1, 1000))),
        event(PaymentAuthorized, "gateway", 1, authorization_id="A1", amount=1000),
        event(PaymentCaptured, "gateway", 2, authorization_id="A1", capture_id="K1",
              amount=1000),
        event(PaymentCaptured, "gateway", 3, authorization_id="A1", capture_id="K2",
              amount=1000),
        event(PaymentRefunded, "gateway", 4, refund_id="R1", amount=2500),
    ]
    names = {v.name for v in check_invariants(fold(journal))}
    assert names == {"never_two_captures_per_authorization", "never_refund_more_than_captured",
                     "money_conserved"}
    unpaid = fold([journal[0],
                   event(FulfillmentOrderCreated, "coordinator", 1, fulfillment_order_id="F1",
                         warehouse_id="W1", lines=qty(L1=1)),
                   event(FulfillmentSubmitted, "coordinator", 2, fulfillment_order_id="F1")])
    assert [v.name for v in check_invariants(unpaid)] == ["never_ship_unpaid"]


def test_returns_move_units_and_lifecycle() -> None:
    """A return of a delivered unit goes return_in_progress -> returned and lowers what is due."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.hear(Shipped, "warehouse/W1", fulfillment_order_id="F1")
    o.hear(Delivered, "carrier", fulfillment_order_id="F1")
    with pytest.raises(CommandRejected):
        o.do(RequestReturn, return_id="RT1", lines=qty(L1=3))
    o.do(RequestReturn, return_id="RT1", lines=qty(L1=1))
    assert o.lifecycle() is Lifecycle.RETURN_IN_PROGRESS
    o.hear(ReturnReceived, "warehouse/W1", return_id="RT1")
    l1 = o.state.line("L1")
    assert l1 is not None and (l1.shipped, l1.returned) == (1, 1)
    assert (o.state.lifecycle, o.state.amount_due) == (Lifecycle.RETURNED, 1500)


def test_state_is_a_fold_of_its_journal() -> None:
    """Folding the journal (duplicates and all) rebuilds exactly the live state."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.hear(Shipped, "warehouse/W1", fulfillment_order_id="F1")
    o.offer(o.journal[-1])
    assert fold(o.journal) == o.state


def test_retried_command_decides_nothing_new() -> None:
    """Deciding a command whose events were already applied returns no events."""
    o = placed()
    cmd = command(AuthorizePayment, 50, amount=2000)
    o.state, first = handle(o.state, cmd)
    assert len(first) == 1
    assert decide(o.state, cmd) == ()


def test_decided_events_are_deterministic() -> None:
    """Same state and command give the same events: ids, sequence and time come from inputs."""
    o = placed()
    cmd = command(AuthorizePayment, 7, amount=2000)
    assert decide(o.state, cmd) == decide(o.state, cmd)
    (ev,) = decide(o.state, cmd)
    assert (ev.event_id, ev.source, ev.source_seq, ev.occurred_at) == (
        "c7:1", "coordinator", 2, 7.0)


def test_command_rejected_carries_ids() -> None:
    """CommandRejected names order, command id and type, and is a ValueError."""
    o = placed()
    with pytest.raises(CommandRejected) as info:
        o.do(CapturePayment, authorization_id="nope", amount=1)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.order_id, err.command_id, err.command_type) == ("O1", "c2", "CapturePayment")


def test_check_step_flags_a_state_change_on_a_stale_event() -> None:
    """never_regress_on_stale_event fires if a non-applied event changed the state."""
    o = placed()
    ev = event(PaymentAuthorized, "gateway", 1, authorization_id="A1", amount=10)
    stale = Outcome(kind=OutcomeKind.STALE, event_id=ev.event_id, source=ev.source,
                    source_seq=ev.source_seq)
    tampered = attrs.evolve(o.state, version=99)
    assert [v.name for v in check_step(o.state, ev, stale, tampered)] == [
        "never_regress_on_stale_event"]


def test_money_views_must_match_the_order() -> None:
    """A finance ledger that disagrees with the order's captures is a money_conserved violation."""
    o = paid_by_authorization()
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentCaptured, request_id="c3", authorization_id="A1", capture_id="K1",
           amount=2000)
    views = {"gateway": MoneyView(captured=2000, refunded=0),
             "finance": MoneyView(captured=0, refunded=0)}
    (violation,) = check_money_views(o.state, views)
    assert violation.name == "money_conserved" and "finance" in violation.detail


@pytest.mark.parametrize(("cls", "fields"), [
    (AuthorizePayment, {"amount": 0}),
    (AuthorizePayment, {"amount": -5}),
    (AuthorizePayment, {"amount": 10.5}),
    (OpenHold, {"hold_id": "H", "reason": HoldReason.OTHER, "owner_team": " ",
                "deadline": 1.0}),
    (PlaceOrder, {"customer_id": "C", "currency": "eur", "lines": lines(("L1", 1, 1))}),
    (PlaceOrder, {"customer_id": "C", "currency": "EUR", "lines": ()}),
])
def test_message_validators_refuse_invalid_commands(cls: type[Any], fields: Any) -> None:
    """Non-positive or fractional amounts, blank owners, bad currency, empty orders are refused."""
    with pytest.raises(ValueError):
        command(cls, 1, **fields)


def test_messages_require_tuples_not_lists() -> None:
    """Collections in messages are tuples, so a message is immutable all the way down."""
    with pytest.raises(TypeError):
        command(PlaceOrder, 1, customer_id="C", currency="EUR",
                lines=list(lines(("L1", 1, 1))))


def test_hold_deadline_cannot_precede_opening() -> None:
    """A HoldOpened event whose deadline is before it happened cannot be built."""
    with pytest.raises(ValueError, match="deadline"):
        event(HoldOpened, "coordinator", 1, at=10.0, hold_id="H", reason=HoldReason.OTHER,
              owner_team="fraud", deadline=5.0)


def test_warehouse_confirming_a_recorded_cancel_releases_nothing_twice() -> None:
    """A FulfillmentCanceled for an already canceled fulfillment order leaves the
    units allocated to the replacement fulfillment order alone."""
    from orderloom.actors import (
        AssignWarehouse, CancelFulfillment, FulfillmentCanceled, LineItemSpec, LineQuantity,
        PlaceOrder, apply, handle,
    )

    def stamp(n: int) -> dict[str, object]:
        return {"order_id": "o1", "command_id": f"c{n}", "issued_at": float(n),
                "issued_by": "test"}

    state = handle(__import__("orderloom.actors", fromlist=["OrderState"]).OrderState(
        order_id="o1"), PlaceOrder(**stamp(1), customer_id="c", currency="EUR", lines=(
            LineItemSpec(line_id="l1", sku="A", quantity=2, unit_price=100),)))[0]
    lines = (LineQuantity(line_id="l1", quantity=2),)
    state = handle(state, AssignWarehouse(**stamp(2), fulfillment_order_id="fo1",
                                          warehouse_id="W1", lines=lines))[0]
    state = handle(state, CancelFulfillment(**stamp(3), fulfillment_order_id="fo1",
                                            reason="redrive"))[0]
    state = handle(state, AssignWarehouse(**stamp(4), fulfillment_order_id="fo2",
                                          warehouse_id="W2", lines=lines))[0]
    assert state.line("l1").allocated == 2  # type: ignore[union-attr]
    confirm = FulfillmentCanceled(order_id="o1", event_id="wh:1", source="warehouse/W1",
                                  source_seq=1, occurred_at=5.0, fulfillment_order_id="fo1",
                                  reason="canceled_on_request")
    state, _ = apply(state, confirm)
    line = state.line("l1")
    assert line is not None and (line.ordered, line.allocated) == (0, 2)
