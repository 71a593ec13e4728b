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
    epoch_source,
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
    # a copy under a fresh number (a replay): the next number is offered (a
    # duplicate, whose number the actor counts as spent); past a gap it waits
    ("gateway", (1, 2), 3, False, OutcomeKind.DUPLICATE, False),
    ("gateway", (1, 2), 4, False, OutcomeKind.DUPLICATE, True),
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


def test_an_epoch_names_a_sequenced_source_of_its_own() -> None:
    """`epoch_source` appends the epoch to a sequenced source; None keeps the name."""
    assert epoch_source("gateway", "20261130T203000Z-a1b2c3") == "gateway/20261130T203000Z-a1b2c3"
    assert epoch_source("warehouse/W1", "e2") == "warehouse/W1/e2"
    assert epoch_source("gateway", None) == "gateway"
    assert source_ordering(epoch_source("gateway", "e2")) is SourceOrdering.SEQUENCED


@pytest.mark.parametrize(("source", "epoch"), [
    ("shopify:acme", "e1"),  # a monotonic source needs no epoch
    ("gateway", ""),
    ("gateway", "a/b"),
    ("gateway", "x" * 41),
    ("gateway", "new line\n"),
])
def test_an_epoch_source_refuses_what_it_cannot_name(source: str, epoch: str) -> None:
    """An epoch of a monotonic source, or one that is empty, too long or holds
    other than letters, digits, '.', '_', '-' raises ValueError."""
    with pytest.raises(ValueError):
        epoch_source(source, epoch)


def test_a_restart_counting_from_one_is_stale_unless_it_starts_a_new_epoch() -> None:
    """After a source's events 1 and 2, a restarted sender's event 1 is stale
    under the old name but applies under a new epoch, which then counts on."""
    state = _placed()
    for seq in (1, 2):
        state, outcome = apply(state, _auth("gateway/e1", seq, f"auth/e1:O1:{seq}"))
        assert outcome.kind is OutcomeKind.APPLIED
    _, outcome = apply(state, _auth("gateway/e1", 1, "auth/e1:O1:again"))
    assert outcome.kind is OutcomeKind.STALE
    for seq in (1, 2):
        restarted = _auth(epoch_source("gateway", "e2"), seq, f"auth/e2:O1:{seq}")
        assert not awaits_gap(state, restarted)
        state, outcome = apply(state, restarted)
        assert outcome.kind is OutcomeKind.APPLIED
    assert state.last_seq("gateway/e2") == 2 and state.last_seq("gateway/e1") == 2


def test_numbers_spent_by_copies_move_the_next_expected_one() -> None:
    """With numbers 3 and 4 spent by copies (``counted=4``), number 5 is the
    next expected: it does not wait, and number 6 still does."""
    state = _placed()
    for n, s in enumerate((1, 2)):
        state, _ = apply(state, _auth("gateway", s, f"a{n}"))
    assert awaits_gap(state, _auth("gateway", 5, "new"))
    assert not awaits_gap(state, _auth("gateway", 5, "new"), counted=4)
    assert awaits_gap(state, _auth("gateway", 6, "new"), counted=4)
