"""Transition tables: every legal move accepted, every illegal one refused with a typed error."""

from __future__ import annotations

import enum
import itertools
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderloom.actors import (
    TRANSITIONS,
    FulfillmentStatus,
    HoldReason,
    HoldStatus,
    InvalidTransition,
    Lifecycle,
    LineItemQuantityState,
    Payment,
    Risk,
    RiskRecommendation,
    ShipmentStatus,
    allowed_next,
    check_transition,
)
from orderloom.runtime import DomainError, OrderloomError
from tests.strategies import dimensions, state_pairs

DIMENSIONS = sorted(TRANSITIONS, key=lambda t: t.__name__)


@pytest.mark.parametrize("dimension", DIMENSIONS, ids=lambda t: t.__name__)
def test_table_has_one_row_per_state_and_stays_in_its_enum(dimension: type[enum.Enum]) -> None:
    """Each table names every state of its enum once and only targets states of that enum."""
    table = TRANSITIONS[dimension]
    assert set(table) == set(dimension)
    for targets in table.values():
        assert all(isinstance(t, dimension) for t in targets)


@pytest.mark.parametrize("dimension", DIMENSIONS, ids=lambda t: t.__name__)
def test_every_pair_is_accepted_exactly_when_the_table_allows_it(
    dimension: type[enum.Enum],
) -> None:
    """Exhaustively over all (current, attempted) pairs: legal moves pass, others raise."""
    table = TRANSITIONS[dimension]
    for current, attempted in itertools.product(dimension, repeat=2):
        if attempted in table[current]:
            check_transition("O1", dimension.__name__, current, attempted)
        else:
            with pytest.raises(InvalidTransition) as info:
                check_transition("O1", dimension.__name__, current, attempted)
            err = info.value
            assert (err.order_id, err.dimension, err.current, err.attempted) == (
                "O1", dimension.__name__, current, attempted)


@pytest.mark.parametrize("dimension", DIMENSIONS, ids=lambda t: t.__name__)
def test_staying_put_is_not_a_transition(dimension: type[enum.Enum]) -> None:
    """No table lists a self-loop: callers check only dimensions that actually move."""
    for state in dimension:
        assert state not in TRANSITIONS[dimension][state]


@given(st.data())
def test_check_transition_agrees_with_allowed_next(data: st.DataObject) -> None:
    """check_transition raises exactly when the attempted state is not in allowed_next."""
    dimension = data.draw(dimensions())
    current, attempted = data.draw(state_pairs(dimension))
    legal = attempted in allowed_next(current)
    try:
        check_transition("O9", "x", current, attempted)
    except InvalidTransition:
        assert not legal
    else:
        assert legal


def test_state_names_follow_the_issue() -> None:
    """The enums carry the Shopify/commercetools-style names operators recognise."""
    assert [s.value for s in Lifecycle] == [
        "placed", "awaiting_payment", "ready_for_fulfillment", "partially_fulfilled",
        "fulfilled", "delivered", "closed", "on_hold", "canceled", "return_in_progress",
        "returned"]
    assert {s.value for s in Payment} == {
        "pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded",
        "voided", "expired", "failed", "unknown"}
    assert {s.value for s in FulfillmentStatus} == {
        "open", "scheduled", "submitted", "accepted", "rejected", "in_progress", "on_hold",
        "incomplete", "closed", "canceled"}
    assert {s.value for s in ShipmentStatus} == {
        "pending", "label_created", "shipped", "delayed", "delivered", "returned"}
    assert {s.value for s in Risk} == {"pending", "none", "low", "medium", "high"}
    assert {s.value for s in RiskRecommendation} == {"none", "accept", "investigate", "cancel"}
    assert {s.value for s in HoldReason} == {
        "awaiting_payment", "high_risk_of_fraud", "incorrect_address",
        "inventory_out_of_stock", "duplicate_order", "split_fulfillment_decision",
        "payment_ambiguous", "policy_exception", "other"}
    assert {s.value for s in LineItemQuantityState} == {
        "ordered", "allocated", "picked", "shipped", "canceled", "returned"}


def test_standard_lifecycle_path_is_legal() -> None:
    """placed -> awaiting_payment -> ready -> partially fulfilled -> fulfilled -> delivered -> closed."""
    path = [Lifecycle.PLACED, Lifecycle.AWAITING_PAYMENT, Lifecycle.READY_FOR_FULFILLMENT,
            Lifecycle.PARTIALLY_FULFILLED, Lifecycle.FULFILLED, Lifecycle.DELIVERED,
            Lifecycle.CLOSED]
    for current, attempted in itertools.pairwise(path):
        check_transition("O1", "lifecycle", current, attempted)


@pytest.mark.parametrize(("dimension", "terminal"), [
    (Lifecycle, Lifecycle.CLOSED), (Payment, Payment.REFUNDED), (Payment, Payment.VOIDED),
    (FulfillmentStatus, FulfillmentStatus.CLOSED),
    (FulfillmentStatus, FulfillmentStatus.CANCELED),
    (FulfillmentStatus, FulfillmentStatus.REJECTED), (ShipmentStatus, ShipmentStatus.RETURNED),
    (HoldStatus, HoldStatus.RELEASED), (LineItemQuantityState, LineItemQuantityState.CANCELED),
])
def test_terminal_states_have_no_way_out(dimension: type[enum.Enum], terminal: enum.Enum) -> None:
    """Closed, refunded, voided, canceled, rejected, returned and released states are final."""
    assert allowed_next(terminal) == frozenset()


def test_shipped_goods_never_go_back_to_pending() -> None:
    """A shipment, once shipped, cannot return to pending or label_created."""
    for earlier in (ShipmentStatus.PENDING, ShipmentStatus.LABEL_CREATED):
        with pytest.raises(InvalidTransition):
            check_transition("O1", "shipment[F1]", ShipmentStatus.SHIPPED, earlier)


def test_risk_never_returns_to_pending() -> None:
    """Once assessed, risk can be re-assessed to another level but never be pending again."""
    for level in (Risk.NONE, Risk.LOW, Risk.MEDIUM, Risk.HIGH):
        assert Risk.PENDING not in allowed_next(level)


def test_invalid_transition_is_a_domain_value_error_with_a_clear_message() -> None:
    """InvalidTransition sits on the domain branch, is a ValueError and names the move."""
    err = InvalidTransition("O7", "payment", Payment.VOIDED, Payment.PAID)
    assert isinstance(err, DomainError)
    assert isinstance(err, OrderloomError)
    assert isinstance(err, ValueError)
    assert str(err) == "order O7: payment cannot move from 'voided' to 'paid'"


def test_invalid_transition_survives_pickling() -> None:
    """The error crosses process boundaries (parallel replications) with its attributes."""
    err = pickle.loads(pickle.dumps(InvalidTransition("O7", "lifecycle", Lifecycle.CLOSED,
                                                      Lifecycle.PLACED)))
    assert (err.order_id, err.dimension, err.current, err.attempted) == (
        "O7", "lifecycle", Lifecycle.CLOSED, Lifecycle.PLACED)
