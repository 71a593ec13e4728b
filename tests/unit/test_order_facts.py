"""Automation's facts in the journal: what the policy engine used to keep in memory.

Each fact is an event of the order (what another actor told it, recorded as
it arrives; or a request decided from a command) folded by ``evolve``, so a
state folded from the journal carries everything a later decision reads.
"""

from __future__ import annotations

from typing import Any

import pytest

from orderloom.actors import (
    AddressVerified,
    Approver,
    AssignWarehouse,
    AuthorizePayment,
    COORDINATOR_SOURCE,
    CancelFulfillment,
    CancelOrder,
    CancelRequest,
    CancellationRequested,
    CapturePayment,
    CommandRejected,
    Decision,
    EventRejected,
    FulfillmentRejected,
    HoldReason,
    OpenHold,
    OrderScreened,
    OutcomeKind,
    PaymentAuthorized,
    PaymentFailed,
    PaymentFailure,
    ReleaseHold,
    RequestCancellation,
    RequestRiskReplay,
    RiskReplayRequested,
    Shortage,
    ShortageRecorded,
    SourcingKind,
    SourcingStep,
    SubmitFulfillment,
    evolve,
    fold,
)
from tests.strategies import qty
from tests.unit.test_order_model import Order, paid_by_authorization, placed


def _learn(o: Order, cls: type[Any], **fields: Any) -> Any:
    """The order actor records what another actor told it as a coordinator event."""
    seq = o.state.last_seq(COORDINATOR_SOURCE) + 1
    e = cls(order_id="O1", event_id=f"learnt-{seq}", source=COORDINATOR_SOURCE, source_seq=seq,
            occurred_at=float(seq), **fields)
    assert o.offer(e) is OutcomeKind.APPLIED
    return e


def _hold(o: Order, reason: HoldReason, hold_id: str = "H1", **fields: object) -> None:
    o.do(OpenHold, hold_id=hold_id, reason=reason, owner_team="customer-care",
         deadline=float(o.n + 100), **fields)


def test_screening_is_recorded_and_a_duplicate_cleared_only_by_a_go_on_decision() -> None:
    """OrderScreened records the duplicate; releasing its case as decided (release)
    clears it, a plain release or a cancel decision does not."""
    o = placed()
    assert (o.state.screened, o.state.duplicate_of) == (False, None)
    e = _learn(o, OrderScreened, duplicate_of="O0")
    assert isinstance(e, OrderScreened) and e.duplicate_of == "O0"
    assert (o.state.screened, o.state.duplicate_of) == (True, "O0")
    for decision in (None, Decision.CANCEL):
        _hold(o, HoldReason.DUPLICATE_ORDER, hold_id=f"H{o.n}")
        o.do(ReleaseHold, hold_id=f"H{o.n - 1}", resolution="r", decision=decision)
        assert o.state.duplicate_of == "O0"
    _hold(o, HoldReason.DUPLICATE_ORDER, hold_id="HX")
    o.do(ReleaseHold, hold_id="HX", resolution="r", decision=Decision.RELEASE)
    assert o.state.duplicate_of is None and o.state.hold("HX").decision is Decision.RELEASE  # type: ignore[union-attr]
    assert fold(o.journal) == o.state


def test_address_verdict_is_recorded_and_a_go_on_decision_accepts_the_address() -> None:
    """AddressVerified records whether the address is usable (ok or corrected);
    a person letting the address case go on makes it usable."""
    o = placed()
    assert o.state.address_usable is None
    e = _learn(o, AddressVerified, ok=False, corrected=True)
    assert isinstance(e, AddressVerified) and e.usable and o.state.address_usable is True
    _learn(o, AddressVerified, ok=False)
    assert o.state.address_usable is False
    _hold(o, HoldReason.INCORRECT_ADDRESS)
    o.do(ReleaseHold, hold_id="H1", resolution="r", decision=Decision.REASSIGN)
    assert o.state.address_usable is True


def test_shortages_are_kept_per_fulfillment_order_until_an_assignment_settles_them() -> None:
    """ShortageRecorded keeps the latest report per rejected fulfillment order,
    in arrival order; an assignment that settles shortages empties them; a
    report about an unknown fulfillment order is rejected."""
    o = paid_by_authorization()
    with pytest.raises(EventRejected):
        evolve(o.state, ShortageRecorded(order_id="O1", event_id="x", source=COORDINATOR_SOURCE,
                                         source_seq=9, occurred_at=9.0,
                                         fulfillment_order_id="F9", warehouse_id="W1",
                                         available=()))
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    e = _learn(o, ShortageRecorded, fulfillment_order_id="F1", warehouse_id="W1",
               available=qty(L1=1))
    assert isinstance(e, ShortageRecorded)
    _learn(o, ShortageRecorded, fulfillment_order_id="F1", warehouse_id="W1",
           available=qty(L2=1))
    assert o.state.shortages == (Shortage(fulfillment_order_id="F1", warehouse_id="W1",
                                          available=qty(L2=1)),)
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    assert o.hear(FulfillmentRejected, "warehouse/W1", fulfillment_order_id="F1",
                  reason="stock") is OutcomeKind.APPLIED
    o.do(AssignWarehouse, fulfillment_order_id="F3", warehouse_id="W2", lines=qty(L1=2),
         settles_shortages=True, backorder=True)
    assert o.state.shortages == ()
    assert o.state.fulfillment_order("F3").backorder is True  # type: ignore[union-attr]
    assert fold(o.journal) == o.state


def test_sourcing_records_rejections_redrive_rounds_and_withdrawals_in_order() -> None:
    """A rejection, a person letting a stuck order go on, and the redrive's
    withdrawal each leave a sourcing step; a plain withdrawal leaves none."""
    o = paid_by_authorization()
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2))
    o.do(AssignWarehouse, fulfillment_order_id="F2", warehouse_id="W2", lines=qty(L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.do(SubmitFulfillment, fulfillment_order_id="F2")
    o.hear(FulfillmentRejected, "warehouse/W1", fulfillment_order_id="F1", reason="stock")
    _hold(o, HoldReason.POLICY_EXCEPTION)
    o.do(ReleaseHold, hold_id="H1", resolution="r", decision=Decision.RELEASE)
    o.do(CancelFulfillment, fulfillment_order_id="F2", reason="stuck", redrive=True)
    o.do(AssignWarehouse, fulfillment_order_id="F3", warehouse_id="W3", lines=qty(L1=2))
    o.do(CancelFulfillment, fulfillment_order_id="F3", reason="rerouted")
    assert o.state.sourcing == (
        SourcingStep(kind=SourcingKind.REJECTED, warehouse_id="W1"),
        SourcingStep(kind=SourcingKind.REDRIVE),
        SourcingStep(kind=SourcingKind.WITHDRAWN, warehouse_id="W2"),
    )


def test_cancellation_request_stands_until_the_order_is_canceled() -> None:
    """CancellationRequested records reason, requester and who that is; the
    cancellation clears it; an order past the point of canceling refuses it."""
    o = paid_by_authorization()
    (e,) = o.do(RequestCancellation, by="customer", reason="changed my mind",
                approver=Approver.CUSTOMER)
    assert isinstance(e, CancellationRequested)
    assert o.state.cancel_request == CancelRequest(reason="changed my mind",
                                                   requested_by="customer",
                                                   approver=Approver.CUSTOMER)
    o.do(CancelOrder, reason="changed my mind")
    assert o.state.cancel_request is None
    with pytest.raises(CommandRejected):
        o.do(RequestCancellation, reason="again", approver=Approver.CUSTOMER)
    with pytest.raises(ValueError):
        RequestCancellation(order_id="O1", command_id="x", issued_at=0.0, issued_by="a",
                            reason="r", approver=Approver.AUTOMATION)


def test_risk_replay_is_recorded_for_a_succeeded_authorization_only() -> None:
    """RiskReplayRequested names a succeeded authorization request and sets the flag."""
    o = placed()
    o.do(AuthorizePayment, amount=2000)
    with pytest.raises(CommandRejected):
        o.do(RequestRiskReplay, request_id="c2")  # still pending
    o.hear(PaymentAuthorized, request_id="c2", authorization_id="A1", amount=2000)
    (e,) = o.do(RequestRiskReplay, request_id="c2")
    assert isinstance(e, RiskReplayRequested) and o.state.risk_replay_requested


def test_payment_failures_are_recorded_and_capture_failures_reset_by_a_payment_decision() -> None:
    """A refusal records its reason on the request; refused captures count until
    the awaiting-payment case is released as decided (any decision)."""
    o = placed()
    o.do(AuthorizePayment, amount=2000)
    o.hear(PaymentFailed, request_id="c2", reason="gateway_unavailable")
    assert o.state.request("c2").failure is PaymentFailure.GATEWAY_UNAVAILABLE  # type: ignore[union-attr]
    o.do(AuthorizePayment, amount=2000)
    o.hear(PaymentAuthorized, request_id="c3", authorization_id="A1", amount=2000)
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentFailed, request_id="c4", reason="declined")
    assert o.state.capture_failures == 1
    _hold(o, HoldReason.AWAITING_PAYMENT)
    o.do(ReleaseHold, hold_id="H1", resolution="r", decision=Decision.CANCEL)
    assert o.state.capture_failures == 0
    assert fold(o.journal) == o.state


def test_a_case_proposes_one_of_its_options() -> None:
    """OpenHold records proposal and options on the hold; a proposal outside
    the options cannot be built."""
    o = placed()
    _hold(o, HoldReason.PAYMENT_AMBIGUOUS, proposal=Decision.RELEASE,
          options=(Decision.RELEASE,))
    hold = o.state.hold("H1")
    assert hold is not None and (hold.proposal, hold.options) == (Decision.RELEASE,
                                                                   (Decision.RELEASE,))
    with pytest.raises(ValueError):
        OpenHold(order_id="O1", command_id="x", issued_at=0.0, issued_by="a", hold_id="H2",
                 reason=HoldReason.OTHER, owner_team="t", deadline=1.0,
                 proposal=Decision.CANCEL, options=(Decision.RELEASE,))
