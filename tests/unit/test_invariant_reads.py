"""The Order actor checks only the invariants whose fields a step changed.

That is sound only if each invariant's declared ``reads`` covers every
field its check looks at. These tests record what the checks really read on
arbitrary states (most of them violating several invariants, so the
reporting branches run too) and hold the declarations to it; and they check
the consequence directly: no violation a change introduces is missed.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from orderloom.actors import (
    Authorization,
    AuthorizationStatus,
    Capture,
    FulfillmentOrder,
    FulfillmentStatus,
    Hold,
    HoldReason,
    HoldStatus,
    INVARIANTS,
    Lifecycle,
    LineItem,
    LineQuantity,
    Notification,
    NotificationKind,
    OrderState,
    Payment,
    PaymentOperation,
    PaymentRequest,
    Refund,
    ReleaseBasis,
    RequestStatus,
    ShipmentStatus,
    check_changed,
    check_invariants,
)
from orderloom.actors.order._order_state import DERIVED_FROM, replace

# Few ids, so captures name real authorizations, notices real fulfillment
# orders, and so on, about as often as not.
ids = st.sampled_from(["A", "B"])
small = st.integers(-1, 6)
money = st.integers(0, 3000)
versions = st.integers(0, 5)


def _tuples(strategy: st.SearchStrategy[Any], most: int = 3) -> st.SearchStrategy[Any]:
    return st.lists(strategy, max_size=most).map(tuple)


line_items = _tuples(st.builds(
    LineItem, line_id=ids, sku=st.just("SKU"), unit_price=money, quantity=small,
    ordered=small, allocated=small, picked=small, shipped=small, canceled=small,
    returned=small))
fulfillment_orders = _tuples(st.builds(
    FulfillmentOrder, fulfillment_order_id=ids, warehouse_id=st.just("W1"),
    lines=_tuples(st.builds(LineQuantity, line_id=ids, quantity=st.integers(1, 3))),
    status=st.sampled_from(FulfillmentStatus), shipment=st.sampled_from(ShipmentStatus),
    release=st.none() | st.sampled_from(ReleaseBasis)))
holds = _tuples(st.builds(
    Hold, hold_id=ids, reason=st.sampled_from(HoldReason),
    owner_team=st.sampled_from(["", " ", "fraud"]), opened_at=st.floats(0, 10),
    deadline=st.floats(0, 10), status=st.sampled_from(HoldStatus)))
authorizations = _tuples(st.builds(
    Authorization, authorization_id=ids, amount=money,
    status=st.sampled_from(AuthorizationStatus), at_version=versions))
captures = _tuples(st.builds(Capture, capture_id=ids, authorization_id=ids, amount=money,
                             at_version=versions))
refunds = _tuples(st.builds(Refund, refund_id=ids, amount=money, at_version=versions))
requests = _tuples(st.builds(
    PaymentRequest, request_id=ids, operation=st.sampled_from(PaymentOperation),
    amount=money, authorization_id=st.none() | ids, status=st.sampled_from(RequestStatus),
    at_version=versions))
notifications = _tuples(st.builds(
    Notification, kind=st.sampled_from(NotificationKind),
    fulfillment_order_id=st.none() | ids, at=st.just(1.0), shipment_existed=st.booleans()))

states = st.builds(
    OrderState, order_id=st.just("O1"), lifecycle=st.sampled_from(Lifecycle),
    payment=st.sampled_from(Payment), line_items=line_items,
    fulfillment_orders=fulfillment_orders, holds=holds, authorizations=authorizations,
    captures=captures, refunds=refunds, payment_requests=requests,
    failed_authorizations=st.integers(0, 2), canceled_at_version=st.none() | versions,
    notifications=notifications)

FIELDS = frozenset(a.name for a in attrs.fields(OrderState))


def fields_read(check: Any, state: OrderState) -> set[str]:
    """The state fields ``check`` reads on ``state``, derived totals mapped to
    the fields they come from."""
    seen: set[str] = set()

    class Spy(OrderState):  # type: ignore[misc]
        def __getattribute__(self, name: str) -> Any:
            seen.add(name)
            return object.__getattribute__(self, name)

    spy = object.__new__(Spy)
    object.__getattribute__(spy, "__dict__").update(state.__dict__)
    list(check(spy))
    read: set[str] = set()
    for name in seen & FIELDS:
        read |= DERIVED_FROM.get(name, {name})
    return read


@settings(max_examples=300, deadline=None)
@given(state=states)
def test_each_invariant_reads_only_its_declared_fields(state: OrderState) -> None:
    for inv in INVARIANTS:
        read = fields_read(inv.check, state)
        assert read <= inv.reads, (inv.name, sorted(read - inv.reads))


def test_the_spy_sees_reads_through_properties_and_methods() -> None:
    """The recorder is not blind: a derived total and a lookup method count."""
    state = OrderState(order_id="O1")
    assert fields_read(lambda s: iter([s.captured_amount]), state) == {"captures"}
    assert fields_read(lambda s: iter([s.authorization("A")]), state) == {"authorizations"}
    assert fields_read(lambda s: iter([s.payment_secured]), state) == {
        "authorizations", "payment_requests", "captures", "refunds", "line_items"}


def _key(violations: Any) -> set[tuple[str, str]]:
    return {(v.name, v.detail) for v in violations}


@settings(max_examples=300, deadline=None)
@given(before=states, other=states, data=st.data())
def test_check_changed_misses_no_new_violation(before: OrderState, other: OrderState,
                                               data: st.DataObject) -> None:
    names = sorted(FIELDS - {"order_id"} - DERIVED_FROM.keys())
    changed = data.draw(st.sets(st.sampled_from(names)))
    after = replace(before, **{f: getattr(other, f) for f in changed})
    introduced = _key(check_invariants(after)) - _key(check_invariants(before))
    found = _key(check_changed(before, after))
    assert introduced <= found
    assert found <= _key(check_invariants(after))  # nothing that is not there


def test_check_changed_skips_untouched_invariants() -> None:
    """A change to fields no invariant reads checks nothing."""
    state = OrderState(order_id="O1", holds=(Hold(
        hold_id="H", reason=list(HoldReason)[0], owner_team="", opened_at=0.0,
        deadline=1.0),))
    names = ["every_open_hold_has_owner_and_deadline"]
    assert [v.name for v in check_invariants(state)] == names
    assert check_changed(state, state) == ()
    assert check_changed(state, replace(state, version=9, source_seqs=(("shop", 1),))) == ()
    # An equal tuple that is a new object is a change: checked again.
    touched = replace(state, holds=tuple(list(state.holds)))
    assert [v.name for v in check_changed(state, touched)] == names


@settings(max_examples=200, deadline=None)
@given(a=states, b=states)
def test_each_derived_total_depends_only_on_its_declared_fields(a: OrderState,
                                                                b: OrderState) -> None:
    """The spy maps a derived total to DERIVED_FROM's fields: so a total must be a
    function of those alone (a state taking only them from ``a`` has ``a``'s total)."""
    init = [f.name for f in attrs.fields(OrderState) if f.init]
    for total, sources in DERIVED_FROM.items():
        mixed = OrderState(**{f: getattr(a if f in sources else b, f) for f in init})
        assert getattr(mixed, total) == getattr(a, total), total
