"""Each invariant declares the state fields it reads; the order actor's
incremental check (``check_changes``) relies on that list being complete.

Random states, including broken ones, are built field by field; a check must
give the same answer whatever the fields outside its ``reads`` hold, and
``check_changes`` must find every violation ``check_step`` finds that the
step could have caused.
"""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from orderloom.actors import (
    INVARIANTS,
    Authorization,
    AuthorizationStatus,
    Capture,
    FulfillmentOrder,
    FulfillmentStatus,
    Hold,
    HoldReason,
    HoldStatus,
    LineItem,
    Notification,
    NotificationKind,
    OrderPlaced,
    OrderState,
    Payment,
    PaymentOperation,
    PaymentRequest,
    Refund,
    ReleaseBasis,
    RequestStatus,
    ShipmentStatus,
    check_changes,
    check_invariants,
)
from orderloom.actors._order import Outcome, OutcomeKind
from tests.strategies import event as event_of
from tests.strategies import lines

IDS = st.sampled_from(["A1", "A2"])
SMALL = st.integers(min_value=0, max_value=4)
MONEY = st.sampled_from([0, 500, 1000, 2000])

line_items = st.builds(
    LineItem, line_id=st.sampled_from(["L1", "L2"]), sku=st.just("S"), unit_price=MONEY,
    quantity=SMALL, ordered=SMALL, allocated=SMALL, picked=SMALL, shipped=SMALL,
    canceled=SMALL, returned=SMALL)
fulfillment_orders = st.builds(
    FulfillmentOrder, fulfillment_order_id=st.sampled_from(["F1", "F2"]),
    warehouse_id=st.just("W1"), lines=st.just(()),
    status=st.sampled_from(list(FulfillmentStatus)),
    shipment=st.sampled_from(list(ShipmentStatus)),
    release=st.one_of(st.none(), st.sampled_from(list(ReleaseBasis))))
holds = st.builds(
    Hold, hold_id=st.sampled_from(["H1", "H2"]), reason=st.sampled_from(list(HoldReason)),
    owner_team=st.sampled_from(["", "fraud"]), opened_at=st.sampled_from([0.0, 5.0]),
    deadline=st.sampled_from([1.0, 10.0]), status=st.sampled_from(list(HoldStatus)))
authorizations = st.builds(
    Authorization, authorization_id=IDS, amount=MONEY,
    status=st.sampled_from(list(AuthorizationStatus)), at_version=SMALL)
captures = st.builds(Capture, capture_id=st.sampled_from(["K1", "K2"]), authorization_id=IDS,
                     amount=MONEY, at_version=SMALL)
refunds = st.builds(Refund, refund_id=st.sampled_from(["R1", "R2"]), amount=MONEY,
                    at_version=SMALL)
requests = st.builds(
    PaymentRequest, request_id=st.sampled_from(["Q1", "Q2", "Q3"]),
    operation=st.sampled_from(list(PaymentOperation)), amount=MONEY,
    authorization_id=st.one_of(st.none(), IDS), status=st.sampled_from(list(RequestStatus)),
    at_version=SMALL)
notifications = st.builds(
    Notification, kind=st.sampled_from(list(NotificationKind)),
    fulfillment_order_id=st.sampled_from(["F1", None]), at=st.just(1.0),
    shipment_existed=st.booleans())


def _few(items: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[object, ...]]:
    return st.lists(items, max_size=3).map(tuple)


states = st.builds(
    OrderState, order_id=st.just("O1"), version=SMALL, placed_at=st.just(0.0),
    payment=st.sampled_from(list(Payment)), line_items=_few(line_items),
    fulfillment_orders=_few(fulfillment_orders), holds=_few(holds),
    authorizations=_few(authorizations), captures=_few(captures), refunds=_few(refunds),
    payment_requests=_few(requests), failed_authorizations=SMALL,
    canceled_at_version=st.one_of(st.none(), SMALL), notifications=_few(notifications))

FIELDS = [a.name for a in attrs.fields(OrderState) if a.init]


@settings(max_examples=300, deadline=None)
@given(states, states)
def test_each_check_depends_only_on_the_fields_it_reads(a: OrderState, b: OrderState) -> None:
    """Taking every other field from another state never changes a check's answer."""
    for inv in INVARIANTS:
        assert inv.reads, f"{inv.name} declares no reads"
        assert set(inv.reads) <= set(FIELDS), inv.name
        hybrid = OrderState(**{f: getattr(a if f in inv.reads else b, f) for f in FIELDS})
        assert list(inv.check(hybrid)) == list(inv.check(a)), inv.name


@settings(max_examples=300, deadline=None)
@given(states, states, st.sets(st.sampled_from(FIELDS)))
def test_check_changes_finds_what_the_step_can_have_caused(
    before: OrderState, other: OrderState, changed: set[str]
) -> None:
    """``check_changes`` = the violations of ``after`` minus those whose fields
    are untouched (which ``before`` already had)."""
    values = {f: getattr(other if f in changed else before, f) for f in FIELDS}
    after = OrderState(**values)
    # Fields not in ``changed`` are the very same objects in both states.
    event = event_of(OrderPlaced, "storefront", 99, customer_id="C", currency="EUR",
                     lines=lines(("L1", 1, 500)))
    outcome = Outcome(kind=OutcomeKind.APPLIED, event_id=event.event_id, source=event.source,
                      source_seq=event.source_seq)
    got = set(check_changes(before, event, outcome, after))
    full = set(check_invariants(after))
    assert got <= full
    assert full - got <= set(check_invariants(before))
