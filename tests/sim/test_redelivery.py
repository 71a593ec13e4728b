"""Redelivery: what platforms do for hours (webhook retries, broker redelivery)
leaves an order's state and effects as one ordered delivery would.

- a ``PlaceOrder`` delivered again after the order retired restores the
  order from its journal and is refused: no second lifecycle;
- every outside event delivered again 1-5 times (new deliveries, same event),
  with a tenth of the webhooks overtaken on their links, ends with the same
  states, the same journal entries and the same irreversible effects;
- a gateway's replay (copies of applied events under fresh numbers of its
  sequence) spends those numbers: its next answer waits for no gap.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from orderloom.actors import (
    ActionTaken,
    COORDINATOR_SOURCE,
    CopyCounted,
    Event,
    EventHeld,
    EventIgnored,
    Lifecycle,
    OrderFinished,
    OrderRecord,
    OrderState,
    evolve_record,
)
from orderloom.runtime import ActorNotFound, MemoryStore, Store
from orderloom.simulation import LinkFaults

from .world import OrderSpec, Ran, place, run_world

ORDERS = (OrderSpec(order_id="o1", at=60.0),
          OrderSpec(order_id="o2", at=300.0, lines=(("A", 2, 1500), ("B", 1, 900))),
          OrderSpec(order_id="o3", at=900.0, customer_id="c2"))
RETIRE = 600.0
UNTIL = 3 * 86400.0


def _store(ran: Ran) -> Store:
    store: Store = ran.kernel.actor("intake").store  # type: ignore[attr-defined]
    return store


def _journal(ran: Ran, order_id: str) -> list[Event]:
    return [r.event for r in _store(ran).journal(f"order/{order_id}")
            if isinstance(r.event, Event)]


def _effects(ran: Ran, order_id: str) -> Counter[str]:
    return Counter(a.command_type for a in ran.of(ActionTaken, order_id) if a.irreversible)


def test_a_place_order_redelivered_after_retirement_starts_no_second_lifecycle() -> None:
    # The simulator's store keeps a retired order's journal for a while; this
    # one (with every event, for the comparison) keeps it for good.
    once = run_world(ORDERS, retire_after=RETIRE, until=UNTIL, store=MemoryStore())
    finished = {f.order_id: t for t, _, f in once.telemetry if isinstance(f, OrderFinished)}
    assert set(finished) == {"o1", "o2", "o3"}
    # Each order placed again twice after its actor retired.
    extra = [(finished[o.order_id] + RETIRE + delay, "intake", place(o))
             for o in ORDERS for delay in (60.0, 20_000.0)]
    assert all(at < UNTIL for at, _, _ in extra)
    again = run_world(ORDERS, retire_after=RETIRE, until=UNTIL, extra=extra,
                      store=MemoryStore())
    for order in ORDERS:
        oid = order.order_id
        assert _journal(again, oid) == _journal(once, oid)
        assert _effects(again, oid) == _effects(once, oid)
        assert len(again.of(OrderFinished, oid)) == 1  # finished once, not again
        ignored = [i for i in again.of(EventIgnored, oid) if i.event_type == "PlaceOrder"]
        assert [i.outcome for i in ignored] == ["duplicate", "duplicate"]  # and says so
        assert len([a for a in again.of(ActionTaken, oid) if a.command_type == "PlaceOrder"]) == 1
        with pytest.raises(ActorNotFound):  # and the order retired again
            again.kernel.actor(f"order/{oid}")


def test_duplicated_and_reordered_events_leave_state_and_effects_as_one_delivery() -> None:
    # Overtaken webhooks land within the gateway's timeout and the order's
    # resequencing wait (later ones are another story: a timeout and
    # reconciliation, or a gap given up on and its event fetched again).
    world = {"retire_after": 10 * 86400.0, "until": UNTIL, "gateway_timeout": 900.0}
    once = run_world(ORDERS, **world, store=MemoryStore())  # type: ignore[arg-type]
    draw = random.Random(7)
    extra = []
    for order in ORDERS:
        for recorded in _store(once).journal(f"order/{order.order_id}"):
            event = recorded.event
            if isinstance(event, Event) and event.source != COORDINATOR_SOURCE:
                at = recorded.recorded_at or 0.0
                extra += [(at + draw.uniform(0.0, 600.0), f"order/{order.order_id}", event)
                          for _ in range(draw.randint(1, 5))]
    assert len(extra) > 30
    overtaken = LinkFaults(delay=0.1, delay_min=1.0, delay_max=45.0)
    noisy = run_world(ORDERS, **world, extra=extra, store=MemoryStore(),  # type: ignore[arg-type]
                      links=[("gateway", "order/*", overtaken),
                             ("warehouse/*", "order/*", overtaken)])
    held = [r for o in ORDERS for r in _store(noisy).journal(f"order/{o.order_id}")
            if isinstance(r.event, EventHeld)]
    assert held  # some webhooks were overtaken and waited for their gap
    # One delivery of each event is applied; every other one is ignored and
    # says so: as a duplicate (also while its original waits for a gap), or
    # rejected when a copy overtook the original into a state not ready for it.
    redelivered = {(f"order/{m.order_id}", m.event_id) for _, _, m in extra}
    ignored = [i for i in noisy.of(EventIgnored)
               if (f"order/{i.order_id}", i.event_id) in redelivered]
    assert len(ignored) == len(extra)
    assert sum(i.outcome == "duplicate" for i in ignored) >= 0.9 * len(extra)
    for order in ORDERS:
        oid = order.order_id
        assert noisy.state(oid).lifecycle == once.state(oid).lifecycle
        assert noisy.state(oid).payment == once.state(oid).payment
        assert noisy.state(oid).captured_amount == once.state(oid).captured_amount
        # The same outside events applied once each, and the same decisions
        # (the coordinator's ids come from a counter the world shares).
        outside = {e.event_id for e in _journal(once, oid) if e.source != COORDINATOR_SOURCE}
        assert [e.event_id for e in _journal(noisy, oid) if e.source != COORDINATOR_SOURCE
                ] == sorted(outside, key=[e.event_id for e in _journal(noisy, oid)].index)
        assert Counter(type(e).__name__ for e in _journal(noisy, oid)) == Counter(
            type(e).__name__ for e in _journal(once, oid))
        assert _effects(noisy, oid) == _effects(once, oid)


def test_a_gateway_replay_spends_its_numbers_so_the_next_answer_waits_for_no_gap() -> None:
    """Every gateway answer arrives 45 s late, past the 30 s gateway timeout:
    aggressive retries, and the gateway replays its answers under fresh
    numbers (copies of applied events). Those numbers are journaled as spent
    (``CopyCounted``), so the gateway's next answer (the capture) is applied
    on arrival instead of being held for the resequencing wait (600 s here)
    as if for lost events; the order closes as soon as the late answers allow."""
    store = MemoryStore()
    late = LinkFaults(delay=1.0, delay_min=45.0, delay_max=45.0)
    ran = run_world(ORDERS[:1], policy="aggressive", store=store, resequence_timeout=600.0,
                    links=[("gateway", "order/*", late)])
    journal = [r.event for r in store.journal("order/o1")]
    assert [type(e).__name__ for e in journal].count("CopyCounted") >= 2
    assert not [e for e in journal if isinstance(e, EventHeld)]
    (finished,) = [t for t, _, f in ran.telemetry if isinstance(f, OrderFinished)]
    assert finished < 60.0 + 600.0  # placed at 60 s; with a 600 s wait it ends past 660 s
    assert ran.state("o1").lifecycle is Lifecycle.CLOSED
    # Restored from its journal (as after a crash), the order knows those
    # numbers are spent: the record folds to the one the actor held.
    record = OrderRecord(order=OrderState(order_id="o1"))
    for entry in journal:
        record = evolve_record(record, entry)
    copies = [e for e in journal if isinstance(e, CopyCounted)]
    gateway = copies[-1].source
    assert record.copies[gateway] == copies[-1].seq
    assert record.next_seq(gateway) == max(copies[-1].seq, record.order.last_seq(gateway)) + 1
