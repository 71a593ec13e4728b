"""Per-source ordering: sequenced sources wait on gaps, monotonic sources
(numbered by source time) apply what is newer and call the rest stale."""

from __future__ import annotations

import pytest

from orderloom.actors import (
    MAX_EVENTS_PER_INSTANT,
    LineItemSpec,
    OrderPlaced,
    OrderState,
    OutcomeKind,
    PaymentAuthorized,
    SourceOrdering,
    apply,
    awaits_gap,
    fold,
    monotonic_seq,
    platform_source,
    source_ordering,
)

from ..strategies import event

SHOP = "shopify:acme"


def _placed() -> OrderState:
    placed = OrderPlaced(order_id="O1", event_id="placed", source="coordinator", source_seq=1,
                         occurred_at=0.0, customer_id="c1", currency="EUR",
                         lines=(LineItemSpec(line_id="l1", sku="s", quantity=1,
                                             unit_price=100),))
    return fold([placed])


def _auth(source: str, seq: int, auth_id: str) -> PaymentAuthorized:
    return event(PaymentAuthorized, source, seq, event_id=f"{source}:{auth_id}",
                 authorization_id=auth_id, amount=100)


@pytest.mark.parametrize(("source", "ordering"), [
    ("gateway", SourceOrdering.SEQUENCED),
    ("warehouse/W1", SourceOrdering.SEQUENCED),
    ("coordinator", SourceOrdering.SEQUENCED),
    ("shopify:acme", SourceOrdering.MONOTONIC),
    ("shopify:acme/fulfillment/42", SourceOrdering.MONOTONIC),
    ("warehouse/W:1", SourceOrdering.SEQUENCED),
])
def test_ordering_is_read_from_the_source_name(source: str, ordering: SourceOrdering) -> None:
    """A `<platform>:<account>` head names a monotonic source; any other name a sequenced one."""
    assert source_ordering(source) is ordering


# (source, seqs already applied, offered seq, new id?, expected outcome, waits for a gap?)
TABLE = [
    # sequenced: next one applies, a gap waits, not newer is stale
    ("gateway", (1,), 2, True, OutcomeKind.APPLIED, False),
    ("gateway", (1,), 5, True, OutcomeKind.APPLIED, True),
    ("gateway", (1, 2), 2, True, OutcomeKind.STALE, False),
    ("gateway", (1, 2), 2, False, OutcomeKind.DUPLICATE, False),
    # monotonic: newer applies however far ahead, never waits; not newer is stale
    (SHOP, (monotonic_seq(1_000),), monotonic_seq(9_000), True, OutcomeKind.APPLIED, False),
    (SHOP, (monotonic_seq(1_000),), monotonic_seq(1_000, 1), True, OutcomeKind.APPLIED, False),
    (SHOP, (monotonic_seq(5_000),), monotonic_seq(1_000), True, OutcomeKind.STALE, False),
    (SHOP, (monotonic_seq(5_000),), monotonic_seq(5_000), True, OutcomeKind.STALE, False),
    # a resend of the last applied event is stale too (not newer comes first)
    (SHOP, (monotonic_seq(5_000),), monotonic_seq(5_000), False, OutcomeKind.STALE, False),
    # a resend offered after newer ones under its own (earlier) time: stale
    (SHOP, (monotonic_seq(1_000), monotonic_seq(5_000)), monotonic_seq(1_000), False,
     OutcomeKind.STALE, False),
    # first event of a monotonic source: applied whatever its number
    (SHOP, (), monotonic_seq(1_700_000_000_000), True, OutcomeKind.APPLIED, False),
]


@pytest.mark.parametrize(("source", "before", "seq", "new_id", "outcome", "waits"), TABLE)
def test_outcome_table(source: str, before: tuple[int, ...], seq: int, new_id: bool,
                       outcome: OutcomeKind, waits: bool) -> None:
    """Each row: what apply() makes of an event, and whether the actor would hold it for a gap."""
    state = _placed()
    for n, s in enumerate(before):
        state, out = apply(state, _auth(source, s, f"a{n}"))
        assert out.kind is OutcomeKind.APPLIED
    offered = _auth(source, seq, "new" if new_id else f"a{len(before) - 1}")
    assert awaits_gap(state, offered) is waits
    after, out = apply(state, offered)
    assert out.kind is outcome
    assert (after is state) is (outcome is not OutcomeKind.APPLIED)


def test_monotonic_seq_orders_time_then_index() -> None:
    """Later source times give larger numbers; within one millisecond, the index orders."""
    assert monotonic_seq(0) == 1
    assert monotonic_seq(1, 0) > monotonic_seq(0, MAX_EVENTS_PER_INSTANT - 1)
    assert monotonic_seq(7, 2) > monotonic_seq(7, 1) > monotonic_seq(7)


@pytest.mark.parametrize(("at_ms", "index"), [
    (-1, 0), (0, -1), (0, MAX_EVENTS_PER_INSTANT), (10**13, 0), (1.5, 0), (True, 0)])
def test_monotonic_seq_refuses_what_cannot_be_exact(at_ms: object, index: object) -> None:
    """Negative or non-int times, out-of-range indexes and far-future times are refused."""
    with pytest.raises(ValueError):
        monotonic_seq(at_ms, index)  # type: ignore[arg-type]


def test_platform_source_builds_monotonic_names() -> None:
    """platform_source joins platform, account and stream; bad parts are refused."""
    assert platform_source("shopify", "acme") == "shopify:acme"
    assert platform_source("shopify", "acme", "refund", "7") == "shopify:acme/refund/7"
    for bad in (("Shopify", "acme"), ("shopify", "a/b"), ("shopify", "")):
        with pytest.raises(ValueError):
            platform_source(*bad)
    with pytest.raises(ValueError):
        platform_source("shopify", "acme", "a/b")
