"""A platform's webhooks (a monotonic source: no sequence numbers, no resend)
may overtake the events they need: a capture that arrives before its
authorization is parked and applied once the authorization is in, not lost.
On the SimPy kernel, with the Shopify fixtures mapped by the adapter."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    EventIgnored,
    Ingested,
    OrderActor,
    OrderSettings,
    ingest_shopify,
    load_builtin_policy,
)
from orderloom.actors.coordinator import spawn_coordinator
from orderloom.runtime import MemoryStore
from orderloom.simulation import SimKernel

from tests.shopify import ORDER, SECRET, SHOP
from tests.shopify import fixture as shopify_fixture, headers as shopify_headers

NOW = dt.datetime.fromisoformat("2024-05-02T14:03:00+02:00").timestamp()
FLOW = {"orders_create": "orders/create", "orders_paid": "orders/paid",
        "orders_updated": "orders/updated",
        "order_transactions_authorization": "order_transactions/create",
        "order_transactions_capture": "order_transactions/create"}
RESEQUENCE = 60.0  # OrderSettings' default resequence_timeout (seconds)


def ingested(name: str) -> Ingested:
    raw = shopify_fixture(name)
    got = ingest_shopify(FLOW[name], shopify_headers(raw, FLOW[name], f"wh-{name}"), raw,
                         shop=SHOP, secret=SECRET)
    assert isinstance(got, Ingested), got
    return got


def deliver(names: list[str], gap: float = 1.0) -> tuple[Any, list[EventIgnored]]:
    """Each webhook's events told to intake ``gap`` seconds apart; the order's
    Shopify-decided state, and what the order ignored."""
    kernel = SimKernel(seed=1)
    ignored: list[EventIgnored] = []
    kernel.add_sink(lambda t, a, e: ignored.append(e) if isinstance(e, EventIgnored) else None)
    spawn_coordinator(kernel, OrderSettings(policy=load_builtin_policy("cautious")),
                      MemoryStore())
    for name in names:
        for event in ingested(name).events:
            kernel.tell("intake", event)
        kernel.run(kernel.now() + gap)
    kernel.run(kernel.now() + 2 * RESEQUENCE)  # every parked event's wait is over
    actor = kernel.actor(f"order/{ORDER}")
    assert isinstance(actor, OrderActor)
    order = actor.state.order
    assert not actor.state.held  # nothing left parked
    # What was decided, not at which journal version (that depends on the order
    # in which the facts came).
    return (order.lifecycle, order.line_items, _unversioned(order.authorizations),
            _unversioned(order.captures)), ignored


def _unversioned(items: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(attrs.evolve(item, at_version=0) for item in items)


def test_a_capture_ahead_of_its_authorization_is_applied_once_that_arrives() -> None:
    ordered, _ = deliver(list(FLOW))
    assert ordered[2] and ordered[3]  # authorized and captured
    overtaken, ignored = deliver(["orders_create", "orders_paid", "order_transactions_capture",
                                  "order_transactions_authorization", "orders_updated"])
    assert overtaken == ordered
    assert not [e for e in ignored if e.event_type == "PaymentCaptured"]


@pytest.mark.parametrize("names", [
    list(p) for p in itertools.islice(itertools.permutations(FLOW), 0, None, 7)])
def test_any_delivery_order_ends_as_the_ordered_one(names: list[str]) -> None:
    """Every seventh permutation of the five webhooks (18 of 120), delivered a
    second apart: the order ends where one ordered delivery ends (the
    placement included: events ahead of orders/create wait for it)."""
    ordered, _ = deliver(list(FLOW))
    got, _ = deliver(names)
    assert got == ordered


def test_a_parked_event_that_never_becomes_possible_is_reported_after_the_wait() -> None:
    """A capture whose authorization never comes is parked, then reported
    ignored (rejected) once resequence_timeout has passed; the order is as if
    the capture had not come."""
    without, _ = deliver(["orders_create", "orders_paid", "orders_updated"])
    got, ignored = deliver(["orders_create", "orders_paid", "order_transactions_capture",
                            "orders_updated"])
    assert got == without
    assert [e.outcome for e in ignored if e.event_type == "PaymentCaptured"] == ["rejected"]
