"""The policy engine as a pure function: ``react`` per policy knob, as tables.

Each table gives a knob's setting and what automation must propose (the
commands) and do (the effects) for one order state and trigger. ``react``
runs here with no kernel, no context and no actor: ids come from a
counter, the time is a number. The world tests (tests/sim) show the same
knobs through whole simulated days; these pin each decision on its own.

Knobs ``react`` does not read are pinned where they act: ``duplicates`` in
the Automation actor's tests, ``stuck_deadlines`` and ``downstream_sync`` in
the order actor's (tests/sim).
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    AddressAction,
    AddressVerified,
    AmbiguousPaymentAction,
    AmbiguousPaymentPolicy,
    Approver,
    AssignCase,
    AssignWarehouse,
    AuthorizePayment,
    COORDINATOR_SOURCE,
    CancelAsked,
    CaptureMode,
    Decision,
    EventsApplied,
    FraudPolicy,
    FulfillmentRejected,
    FulfillmentTrigger,
    GatewayCapture,
    HandOffHold,
    HoldHandedOff,
    HighRiskAction,
    HoldOpened,
    HoldReason,
    IrreversibleAction,
    OpenHold,
    OrderPlaced,
    OrderScreened,
    OrderState,
    PaymentFailed,
    PaymentFailure,
    PaymentOutcomeUnknown,
    PersonDecided,
    PlaceOrder,
    Policy,
    PolicyTimer,
    QueryGateway,
    Reaction,
    Risk,
    RiskAssessed,
    RiskRecommendation,
    Route,
    SetTimer,
    ShortageAction,
    ShortageRecorded,
    Sourcing,
    StockView,
    StuckEscalated,
    SubmitFulfillment,
    TimerKind,
    VerifyAddress,
    WithdrawCase,
    Wiring,
    react,
)
from tests.strategies import qty
from tests.unit.test_order_model import Order, lines

NOW = 1000.0
WIRING = Wiring(warehouses=("W1", "W2"))


def _policy(**knobs: Any) -> Policy:
    return attrs.evolve(Policy(name="t"), **knobs)


def _react(state: OrderState, trigger: Any, policy: Policy | None = None, *,
           wiring: Wiring = WIRING, stock: StockView | None = None) -> Reaction:
    counter = itertools.count(1)
    return react(state, trigger, policy or _policy(), NOW, ids=lambda: f"id{next(counter)}",
                 wiring=wiring, stock=stock or StockView())


def _kinds(reaction: Reaction) -> list[str]:
    return [type(c).__name__ for c in reaction.commands]


def _learn(o: Order, cls: type[Any], **fields: Any) -> Any:
    """Record a coordinator observation, as the order actor does."""
    seq = o.state.last_seq(COORDINATOR_SOURCE) + 1
    e = cls(order_id="O1", event_id=f"learnt-{seq}", source=COORDINATOR_SOURCE,
            source_seq=seq, occurred_at=float(seq), **fields)
    o.offer(e)
    return e


def _placed() -> Order:
    o = Order()
    o.do(PlaceOrder, customer_id="C1", currency="EUR",
         lines=lines(("L1", 2, 500), ("L2", 1, 1000)))
    return o


def _screened(o: Order) -> Order:
    _learn(o, OrderScreened, duplicate_of=None)
    _learn(o, AddressVerified, ok=True)
    return o


def _authorized(risk: Risk | None = Risk.LOW) -> Order:
    """Placed, screened, address good, 20.00 authorized (A1), risk assessed."""
    o = _screened(_placed())
    o.do(AuthorizePayment, amount=2000)
    from orderloom.actors import PaymentAuthorized
    o.hear(PaymentAuthorized, request_id=f"c{o.n}", authorization_id="A1", amount=2000)
    if risk is not None:
        o.hear(RiskAssessed, level=risk, recommendation=RiskRecommendation.ACCEPT,
               provider="psp", score=0.1)
    return o


def _hold(o: Order, reason: HoldReason = HoldReason.POLICY_EXCEPTION,
          team: str = "customer-care") -> str:
    hold_id = f"H{o.n + 1}"
    o.do(OpenHold, hold_id=hold_id, reason=reason, owner_team=team, deadline=NOW + 600)
    return hold_id


def _placed_event(o: Order) -> OrderPlaced:
    placed = [e for e in o.journal if isinstance(e, OrderPlaced)]
    return placed[0]


# -- fulfillment_trigger -------------------------------------------------------------


@pytest.mark.parametrize(("trigger", "expected"), [
    (FulfillmentTrigger.PAYMENT_CAPTURED, ["CapturePayment"]),
    (FulfillmentTrigger.PAYMENT_AUTHORIZED, ["CapturePayment", "AssignWarehouse"]),
])
def test_fulfillment_trigger_decides_when_work_goes_to_a_warehouse(
        trigger: FulfillmentTrigger, expected: list[str]) -> None:
    """With payment authorized, only a payment_authorized trigger sends work to a
    warehouse; payment_captured waits for the capture it proposes."""
    r = _react(_authorized().state, EventsApplied(), _policy(fulfillment_trigger=trigger))
    assert _kinds(r) == expected
    assign = [c for c in r.commands if isinstance(c, AssignWarehouse)]
    assert all(a.warehouse_id == "W1" and a.lines == qty(L1=2, L2=1) for a in assign)


def test_order_placed_trigger_approves_shipment_at_once_and_asks_for_payment() -> None:
    """order_placed: automation approves shipment before anything is known about
    the money (typed as automation's approval), then authorizes."""
    o = _placed()
    r = _react(o.state, EventsApplied(events=(_placed_event(o),)),
               _policy(fulfillment_trigger=FulfillmentTrigger.ORDER_PLACED))
    assert _kinds(r)[:2] == ["ApproveShipment", "AuthorizePayment"]
    approve = r.commands[0]
    assert approve.approver is Approver.AUTOMATION and approve.approved_by == "automation:t"  # type: ignore[attr-defined]


def test_nothing_ships_while_screening_address_or_risk_is_pending() -> None:
    """Each missing fact (screening, address verdict, risk) keeps the order from a warehouse."""
    policy = _policy(fulfillment_trigger=FulfillmentTrigger.PAYMENT_AUTHORIZED)
    assert "AssignWarehouse" not in _kinds(_react(_authorized(risk=None).state, EventsApplied(),
                                                  policy))
    o = _placed()
    _learn(o, OrderScreened, duplicate_of=None)  # no address verdict yet
    from orderloom.actors import PaymentAuthorized
    o.do(AuthorizePayment, amount=2000)
    o.hear(PaymentAuthorized, request_id=f"c{o.n}", authorization_id="A1", amount=2000)
    o.hear(RiskAssessed, level=Risk.LOW, recommendation=RiskRecommendation.ACCEPT,
           provider="psp", score=0.1)
    assert "AssignWarehouse" not in _kinds(_react(o.state, EventsApplied(), policy))
    # With no address service, addresses are taken as given.
    no_service = Wiring(warehouses=("W1",), checks_addresses=False)
    assert "AssignWarehouse" in _kinds(_react(o.state, EventsApplied(), policy,
                                              wiring=no_service))


# -- capture ----------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "expected"), [
    (CaptureMode.ON_AUTHORIZATION, ["CapturePayment", "AssignWarehouse"]),
    (CaptureMode.ON_SHIPMENT, ["AssignWarehouse"]),
])
def test_capture_mode_decides_when_money_is_taken(mode: CaptureMode,
                                                  expected: list[str]) -> None:
    """on_authorization captures at once; on_shipment waits for a shipment."""
    policy = _policy(capture=mode, fulfillment_trigger=FulfillmentTrigger.PAYMENT_AUTHORIZED)
    r = _react(_authorized().state, EventsApplied(), policy)
    assert _kinds(r) == expected
    if mode is CaptureMode.ON_AUTHORIZATION:
        cap = r.commands[0]
        assert (cap.authorization_id, cap.amount) == ("A1", 2000)  # type: ignore[attr-defined]


# -- fraud ------------------------------------------------------------------------


@pytest.mark.parametrize(("score", "fraud", "approvals", "expected", "proposal"), [
    (0.95, FraudPolicy(high_risk_action=HighRiskAction.AUTO_CANCEL), frozenset(),
     ["CancelOrder"], None),
    (0.95, FraudPolicy(high_risk_action=HighRiskAction.AUTO_CANCEL),
     frozenset({IrreversibleAction.CANCEL}), ["OpenHold"], Decision.CANCEL),
    (0.95, FraudPolicy(high_risk_action=HighRiskAction.HOLD), frozenset(), ["OpenHold"],
     Decision.CANCEL),
    (0.7, FraudPolicy(), frozenset(), ["OpenHold"], Decision.RELEASE),
    (0.9, FraudPolicy(), frozenset(), ["OpenHold"], Decision.CANCEL),  # at cancel_above
    (0.6, FraudPolicy(), frozenset(), ["OpenHold"], Decision.RELEASE),  # at review_above
    (0.3, FraudPolicy(), frozenset(), ["CapturePayment"], None),
    (0.7, FraudPolicy(review_above=0.8), frozenset(), ["CapturePayment"], None),
    (0.85, FraudPolicy(review_above=0.5, cancel_above=0.8,
                       high_risk_action=HighRiskAction.AUTO_CANCEL), frozenset(),
     ["CancelOrder"], None),
])
def test_fraud_knobs_route_a_risk_score(score: float, fraud: FraudPolicy,
                                        approvals: frozenset[IrreversibleAction],
                                        expected: list[str], proposal: Decision | None) -> None:
    """A score at or above cancel_above cancels (auto_cancel, if cancels need no
    approval) or opens a fraud case proposing cancel; at or above review_above a
    case proposing release; below it the standard path goes on (capture)."""
    o = _authorized(risk=None)
    o.hear(RiskAssessed, level=Risk.HIGH, recommendation=RiskRecommendation.INVESTIGATE,
           provider="psp", score=score)
    e = o.journal[-1]
    r = _react(o.state, EventsApplied(events=(e,)),
               _policy(fraud=fraud, approval_required=approvals))
    assert _kinds(r) == expected
    if proposal is not None:
        hold = r.commands[0]
        assert isinstance(hold, OpenHold)
        assert (hold.reason, hold.proposal) == (HoldReason.HIGH_RISK_OF_FRAUD, proposal)
    if expected == ["CancelOrder"]:
        assert r.commands[0].approver is Approver.AUTOMATION  # type: ignore[attr-defined]


@pytest.mark.parametrize(("auto_release", "expected"), [(True, ["CapturePayment"]),
                                                        (False, ["OpenHold"])])
def test_auto_release_low_risk_decides_on_an_investigate_recommendation(
        auto_release: bool, expected: list[str]) -> None:
    """A low score the provider says to investigate is reviewed unless the policy
    releases low risk automatically."""
    o = _authorized(risk=None)
    o.hear(RiskAssessed, level=Risk.LOW, recommendation=RiskRecommendation.INVESTIGATE,
           provider="psp", score=0.2)
    r = _react(o.state, EventsApplied(events=(o.journal[-1],)),
               _policy(fraud=FraudPolicy(auto_release_low_risk=auto_release)))
    assert _kinds(r) == expected


# -- address_failure --------------------------------------------------------------


@pytest.mark.parametrize(("action", "correct"), [(AddressAction.HOLD, False),
                                                  (AddressAction.AUTO_CORRECT, True)])
def test_address_failure_asks_the_service_to_correct_or_only_check(
        action: AddressAction, correct: bool) -> None:
    """On placement the address service is asked to check (and with auto_correct
    to correct) the address; with no service nothing is asked."""
    o = _placed()
    trigger = EventsApplied(events=(_placed_event(o),))
    r = _react(o.state, trigger, _policy(address_failure=action))
    assert [e for e in r.effects if isinstance(e, VerifyAddress)] == [VerifyAddress(correct)]
    none = _react(o.state, trigger, _policy(address_failure=action),
                  wiring=Wiring(checks_addresses=False))
    assert not [e for e in none.effects if isinstance(e, VerifyAddress)]


def test_an_unusable_address_opens_one_case_proposing_release() -> None:
    """A failed verdict opens an incorrect-address case routed as the policy says."""
    o = _placed()
    e = _learn(o, AddressVerified, ok=False)
    policy = _policy(routing={**Policy(name="x").routing,
                              HoldReason.INCORRECT_ADDRESS: Route(team="addr-team",
                                                                  deadline=300.0)})
    r = _react(o.state, EventsApplied(events=(e,)), policy)
    hold = r.commands[0]
    assert isinstance(hold, OpenHold)
    assert (hold.reason, hold.owner_team, hold.deadline, hold.proposal) == (
        HoldReason.INCORRECT_ADDRESS, "addr-team", NOW + 300.0, Decision.RELEASE)


# -- ambiguous_payment ------------------------------------------------------------


def _unknown() -> tuple[Order, PaymentOutcomeUnknown]:
    o = _screened(_placed())
    o.do(AuthorizePayment, amount=2000)
    request_id = f"c{o.n}"
    e = _learn(o, PaymentOutcomeUnknown, request_id=request_id)
    return o, e


@pytest.mark.parametrize(("action", "commands", "timer"), [
    (AmbiguousPaymentAction.HOLD, ["OpenHold"], None),
    (AmbiguousPaymentAction.RETRY, [], TimerKind.RETRY),
    (AmbiguousPaymentAction.RECONCILE, [], TimerKind.QUERY),
])
def test_ambiguous_payment_action_on_an_unknown_outcome(
        action: AmbiguousPaymentAction, commands: list[str], timer: TimerKind | None) -> None:
    """hold asks payments-ops at once; retry and reconcile set their first check
    after the first backoff step."""
    o, e = _unknown()
    policy = _policy(ambiguous_payment=AmbiguousPaymentPolicy(action=action, retries=2,
                                                              backoff=(40.0, 90.0)))
    r = _react(o.state, EventsApplied(events=(e,)), policy)
    assert _kinds(r) == commands
    schedules = [x for x in r.effects if isinstance(x, SetTimer)]
    if timer is None:
        assert not schedules
        assert r.commands[0].reason is HoldReason.PAYMENT_AMBIGUOUS  # type: ignore[attr-defined]
    else:
        assert schedules == [SetTimer(40.0, PolicyTimer(kind=timer, request_id=e.request_id,
                                                        attempt=1))]


@pytest.mark.parametrize(("attempt", "expected"), [
    (1, [("query",), ("timer", TimerKind.QUERY, 2, 90.0)]),
    (2, [("query",), ("timer", TimerKind.GIVE_UP, 0, 0.0)]),
])
def test_reconcile_queries_with_backoff_then_gives_up_to_a_person(
        attempt: int, expected: list[tuple[Any, ...]]) -> None:
    """Each query timer asks the gateway and sets the next, with the policy's
    backoff; past ``retries`` the next timer is a give-up, due at once."""
    o, e = _unknown()
    policy = _policy(ambiguous_payment=AmbiguousPaymentPolicy(retries=2, backoff=(40.0, 90.0)))
    r = _react(o.state, PolicyTimer(kind=TimerKind.QUERY, request_id=e.request_id,
                                    attempt=attempt), policy)
    got: list[tuple[Any, ...]] = []
    for x in r.effects:
        if isinstance(x, QueryGateway):
            assert x.request_id == e.request_id
            got.append(("query",))
        elif isinstance(x, SetTimer):
            got.append(("timer", x.timer.kind, x.timer.attempt, x.delay))
    assert got == expected and r.commands == ()


def test_give_up_opens_a_payments_case_only_while_the_outcome_is_still_unknown() -> None:
    """A give-up timer opens a payment-ambiguous case (release only); once the
    request resolved it does nothing."""
    o, e = _unknown()
    give_up = PolicyTimer(kind=TimerKind.GIVE_UP, request_id=e.request_id)
    r = _react(o.state, give_up)
    hold = r.commands[0]
    assert isinstance(hold, OpenHold)
    assert (hold.reason, hold.options) == (HoldReason.PAYMENT_AMBIGUOUS, (Decision.RELEASE,))
    from orderloom.actors import PaymentAuthorized
    o.hear(PaymentAuthorized, request_id=e.request_id, authorization_id="A1", amount=2000)
    assert _react(o.state, give_up) == Reaction()


@pytest.mark.parametrize(("failures", "expected"), [(1, "schedule"), (2, "schedule"),
                                                    (3, "hold")])
def test_gateway_unavailable_reauthorizes_until_retries_run_out(failures: int,
                                                                expected: str) -> None:
    """An unavailable gateway is retried after the backoff up to ``retries`` times,
    then becomes a case for payments."""
    o = _screened(_placed())
    policy = _policy(ambiguous_payment=AmbiguousPaymentPolicy(retries=2, backoff=(5.0, 50.0)))
    last = None
    for _ in range(failures):
        o.do(AuthorizePayment, amount=2000)
        o.hear(PaymentFailed, request_id=f"c{o.n}", reason=PaymentFailure.GATEWAY_UNAVAILABLE)
        last = o.journal[-1]
    r = _react(o.state, EventsApplied(events=(last,)), policy)
    if expected == "schedule":
        assert r.commands == ()
        assert r.effects == (SetTimer((5.0, 50.0)[failures - 1],
                                      PolicyTimer(kind=TimerKind.REAUTHORIZE)),)
    else:
        assert _kinds(r) == ["OpenHold"]
        assert r.commands[0].proposal is Decision.CANCEL  # type: ignore[attr-defined]


# -- stock_shortage and sourcing --------------------------------------------------


def _rejected_everywhere(available_at_w2: int) -> tuple[Order, list[Any]]:
    """Authorized and captured enough to fulfil; W1 and W2 both rejected; W2 said it
    has ``available_at_w2`` of L1."""
    o = _authorized()
    from orderloom.actors import (
        AssignWarehouse as Assign,
        CapturePayment,
        PaymentCaptured,
    )
    o.do(CapturePayment, authorization_id="A1", amount=2000)
    o.hear(PaymentCaptured, request_id=f"c{o.n}", authorization_id="A1", capture_id="K1",
           amount=2000)
    applied: list[Any] = []
    for wh in ("W1", "W2"):
        o.do(Assign, fulfillment_order_id=f"F{wh}", warehouse_id=wh, lines=qty(L1=2, L2=1))
        o.do(SubmitFulfillment, fulfillment_order_id=f"F{wh}")
        o.hear(FulfillmentRejected, f"warehouse/{wh}", fulfillment_order_id=f"F{wh}",
               reason="no stock")
        applied = [o.journal[-1]]
    avail = qty(L1=available_at_w2) if available_at_w2 else ()
    _learn(o, ShortageRecorded, fulfillment_order_id="FW2", warehouse_id="W2", available=avail)
    return o, applied


@pytest.mark.parametrize(("action", "available", "expected"), [
    (ShortageAction.HOLD, 2, [("OpenHold", HoldReason.SPLIT_FULFILLMENT_DECISION)]),
    (ShortageAction.HOLD, 0, [("OpenHold", HoldReason.INVENTORY_OUT_OF_STOCK)]),
    (ShortageAction.BACKORDER, 2, [("AssignWarehouse", "W1", qty(L1=2, L2=1), True)]),
    (ShortageAction.SPLIT, 2, [("AssignWarehouse", "W2", qty(L1=2), False),
                               ("AssignWarehouse", "W1", qty(L2=1), True)]),
    (ShortageAction.SPLIT, 0, [("AssignWarehouse", "W1", qty(L1=2, L2=1), True)]),
    (ShortageAction.CANCEL_LINE, 2, [("CancelLineItems", qty(L2=1)),
                                     ("AssignWarehouse", "W2", qty(L1=2), False)]),
    (ShortageAction.CANCEL_LINE, 0, [("OpenHold", HoldReason.INVENTORY_OUT_OF_STOCK)]),
])
def test_stock_shortage_once_every_warehouse_rejected(
        action: ShortageAction, available: int, expected: list[tuple[Any, ...]]) -> None:
    """Once every warehouse has rejected, the shortage knob decides: a case, a
    backorder at the first warehouse, a split around what the best one has, or
    canceling the lines no one has."""
    o, applied = _rejected_everywhere(available)
    r = _react(o.state, EventsApplied(events=tuple(applied)), _policy(stock_shortage=action))
    got: list[tuple[Any, ...]] = []
    for c in r.commands:
        if isinstance(c, OpenHold):
            got.append(("OpenHold", c.reason))
        elif isinstance(c, AssignWarehouse):
            got.append(("AssignWarehouse", c.warehouse_id, c.lines, c.backorder))
        else:
            got.append((type(c).__name__, c.lines))  # type: ignore[attr-defined]
    assert got == expected


def test_a_rejection_with_a_warehouse_left_waits_for_sourcing() -> None:
    """A rejection while an untried warehouse remains is not a shortage: the next
    progress step sources at that warehouse instead."""
    o = _authorized()
    policy = _policy(fulfillment_trigger=FulfillmentTrigger.PAYMENT_AUTHORIZED,
                     capture=CaptureMode.ON_SHIPMENT)
    o.do(AssignWarehouse, fulfillment_order_id="F1", warehouse_id="W1", lines=qty(L1=2, L2=1))
    o.do(SubmitFulfillment, fulfillment_order_id="F1")
    o.hear(FulfillmentRejected, "warehouse/W1", fulfillment_order_id="F1", reason="no stock")
    r = _react(o.state, EventsApplied(events=(o.journal[-1],)), policy)
    assign = [c for c in r.commands if isinstance(c, AssignWarehouse)]
    assert [(a.warehouse_id, a.lines) for a in assign] == [("W2", qty(L1=2, L2=1))]


@pytest.mark.parametrize(("sourcing", "expected"), [
    (Sourcing.FIRST_LISTED, [("W1", qty(L1=2, L2=1))]),
    (Sourcing.STOCK_AWARE, [("W2", qty(L1=2, L2=1))]),
    (Sourcing.FEWEST_SPLITS, [("W2", qty(L1=2, L2=1))]),
])
def test_sourcing_reads_the_stock_view_it_is_given(sourcing: Sourcing,
                                                   expected: list[tuple[str, Any]]) -> None:
    """With a view where only W2 has the lines, first_listed still tries W1 and
    the stock-reading knobs go to W2 (the view is an argument, not a lookup)."""
    view = StockView().with_report("W1", {"SKU-L1": 0, "SKU-L2": 0}, 1.0).with_report(
        "W2", {"SKU-L1": 5, "SKU-L2": 5}, 1.0)
    policy = _policy(sourcing=sourcing, fulfillment_trigger=FulfillmentTrigger.PAYMENT_AUTHORIZED,
                     capture=CaptureMode.ON_SHIPMENT)
    r = _react(_authorized().state, EventsApplied(), policy, stock=view)
    assert [(c.warehouse_id, c.lines) for c in r.commands  # type: ignore[attr-defined]
            if isinstance(c, AssignWarehouse)] == expected


# -- approval_required ------------------------------------------------------------


@pytest.mark.parametrize(("approvals", "expected"), [
    (frozenset(IrreversibleAction), []),
    (frozenset(), ["CapturePayment"]),
])
def test_approval_required_keeps_irreversible_steps_behind_an_open_case(
        approvals: frozenset[IrreversibleAction], expected: list[str]) -> None:
    """While a case is open, capture waits for a person unless the policy waives
    approval, and then it says so: approved by automation, typed."""
    o = _authorized()
    _hold(o)
    r = _react(o.state, EventsApplied(), _policy(approval_required=approvals))
    assert _kinds(r) == expected
    for c in r.commands:
        assert (c.approver, c.approved_by) == (Approver.AUTOMATION, "automation:t")  # type: ignore[attr-defined]


# -- routing and cases ------------------------------------------------------------


def test_an_opened_case_is_assigned_to_its_team_with_its_proposal() -> None:
    """A HoldOpened event puts the case in its owner team's queue."""
    o = _authorized()
    hold_id = _hold(o, HoldReason.POLICY_EXCEPTION, team="fulfillment-ops")
    opened = [e for e in o.journal if isinstance(e, HoldOpened)][-1]
    r = _react(o.state, EventsApplied(events=(opened,), progress=False))
    assert r == Reaction(effects=(AssignCase(hold_id, "fulfillment-ops"),))


@pytest.mark.parametrize(("escalate_to", "expected"), [("supervisors", "HandOffHold"),
                                                       (None, "reassigned")])
def test_escalation_hands_a_case_on_or_puts_it_back_in_front_of_its_team(
        escalate_to: str | None, expected: str) -> None:
    """A stuck order with a case goes to the route's escalation team, or, with none,
    its case is assigned to its owners again."""
    o = _authorized()
    _hold(o, HoldReason.POLICY_EXCEPTION, team="customer-care")
    policy = _policy(routing={**Policy(name="x").routing, HoldReason.POLICY_EXCEPTION: Route(
        team="customer-care", deadline=600.0, escalate_to=escalate_to)})
    r = _react(o.state, StuckEscalated(stage=o.state.lifecycle), policy)
    if expected == "HandOffHold":
        assert _kinds(r) == ["HandOffHold"]
        assert r.commands[0].to_team == "supervisors"  # type: ignore[attr-defined]
    else:
        assert r == Reaction(effects=(AssignCase(f"H{o.n}", "customer-care"),))


@pytest.mark.parametrize(("stage_unpaid", "reason"), [(True, HoldReason.AWAITING_PAYMENT),
                                                      (False, HoldReason.POLICY_EXCEPTION)])
def test_escalation_without_a_case_opens_one_for_the_right_team(
        stage_unpaid: bool, reason: HoldReason) -> None:
    """Stuck before payment is a payments case; stuck later a policy exception."""
    o = _placed() if stage_unpaid else _authorized()
    r = _react(o.state, StuckEscalated(stage=o.state.lifecycle))
    assert [(type(c).__name__, c.reason) for c in r.commands] == [  # type: ignore[attr-defined]
        ("OpenHold", reason)]


@pytest.mark.parametrize(("decision", "expected"), [
    (Decision.RELEASE, ["ReleaseHold"]),
    (Decision.CANCEL, ["RequestCancellation", "CancelOrder"]),
    (Decision.REASSIGN, ["HandOffHold"]),
])
def test_a_persons_decision(decision: Decision, expected: list[str]) -> None:
    """Release records the decision; cancel requests and (nothing in flight)
    cancels on the person's approval; reassign hands the case to another team."""
    o = _authorized(risk=None)
    hold_id = _hold(o, HoldReason.HIGH_RISK_OF_FRAUD, team="fraud")
    msg = PersonDecided(case_id=hold_id, decision=decision, by="fraud#1",
                        handoff_to="customer-care" if decision is Decision.REASSIGN else None)
    r = _react(o.state, msg)
    assert _kinds(r) == expected
    assert all(c.issued_by == "fraud#1" for c in r.commands)
    if decision is Decision.CANCEL:
        assert r.commands[-1].approver is Approver.PERSON  # type: ignore[attr-defined]


def test_a_handed_off_case_leaves_the_team_it_was_taken_from() -> None:
    """A hand-off (an escalation, or a team's own reassignment) withdraws the
    case from the team it leaves and assigns it to the new one."""
    o = _authorized()
    hold_id = _hold(o, HoldReason.POLICY_EXCEPTION, team="customer-care")
    o.do(HandOffHold, hold_id=hold_id, to_team="supervisors")
    moved = [e for e in o.journal if isinstance(e, HoldHandedOff)][-1]
    r = _react(o.state, EventsApplied(events=(moved,), progress=False))
    assert r == Reaction(effects=(
        WithdrawCase(hold_id, "customer-care"),
        AssignCase(hold_id, "supervisors", handed_off_from="customer-care")))


@pytest.mark.parametrize(("team", "expected"), [
    ("supervisors", ["ReleaseHold"]), (None, ["ReleaseHold"]), ("customer-care", [])])
def test_a_decision_from_a_team_the_case_was_taken_from_is_stale(
        team: str | None, expected: list[str]) -> None:
    """After a hand-off only the owning team's decision counts (one that does
    not say its team is taken as the owner's)."""
    o = _authorized()
    hold_id = _hold(o, HoldReason.POLICY_EXCEPTION, team="customer-care")
    o.do(HandOffHold, hold_id=hold_id, to_team="supervisors")
    msg = PersonDecided(case_id=hold_id, decision=Decision.RELEASE, by="x#1", team=team)
    assert _kinds(_react(o.state, msg)) == expected


def test_a_decision_on_a_closed_case_does_nothing() -> None:
    """A decision that arrives after its case closed proposes nothing."""
    o = _authorized()
    msg = PersonDecided(case_id="gone", decision=Decision.RELEASE, by="fraud#1")
    assert _react(o.state, msg) == Reaction()


def test_a_customer_cancel_waits_for_a_gateway_request_in_flight() -> None:
    """With an authorization out, the cancel is only requested (recorded); the
    cancel itself follows once the request resolves."""
    o = _screened(_placed())
    o.do(AuthorizePayment, amount=2000)
    r = _react(o.state, CancelAsked())
    assert _kinds(r) == ["RequestCancellation"]
    assert r.commands[0].approver is Approver.CUSTOMER  # type: ignore[attr-defined]


# -- one turn, one case per reason; purity ----------------------------------------


def test_events_applied_together_open_one_case_per_reason() -> None:
    """Two declined authorizations applied together (a gap filled) open one case."""
    o = _screened(_placed())
    both: tuple[Any, ...] = ()
    for _ in range(2):
        o.do(AuthorizePayment, amount=2000)
        o.hear(PaymentFailed, request_id=f"c{o.n}", reason=PaymentFailure.DECLINED)
        both += (o.journal[-1],)
    assert all(isinstance(e, PaymentFailed) for e in both)
    r = _react(o.state, EventsApplied(events=both))
    assert [(type(c).__name__, c.reason) for c in r.commands] == [  # type: ignore[attr-defined]
        ("OpenHold", HoldReason.AWAITING_PAYMENT)]


def test_react_is_a_function_of_its_arguments() -> None:
    """The same state, trigger, policy, time and ids give equal reactions, and
    ids come only from the given source."""
    o, e = _unknown()
    trigger = EventsApplied(events=(e,))
    policy = _policy(ambiguous_payment=AmbiguousPaymentPolicy(action=AmbiguousPaymentAction.HOLD))
    a, b = _react(o.state, trigger, policy), _react(o.state, trigger, policy)
    assert a == b and a.commands
    hold = a.commands[0]
    assert isinstance(hold, OpenHold)
    assert (hold.hold_id, hold.command_id, hold.issued_at) == ("id1", "id2", NOW)


def test_an_unknown_trigger_is_refused_by_name() -> None:
    """A trigger react has no rule for is a TypeError naming its type."""
    with pytest.raises(TypeError, match="GatewayCapture"):
        _react(_placed().state, GatewayCapture(order_id="O1", request_id="r", notify="order/O1",  # type: ignore[arg-type]
                                               authorization_id="A1", amount=1))
