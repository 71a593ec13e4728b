"""An order's truth is its journal: a restart loses nothing automation knew.

The policy engine is a pure function of the order's state; everything it
reads is the order's state. These tests run orders through the exception paths in a simulated
world, record each order's journal (the events its actor applied), and check
that the state folded from the journal alone equals the live state and that
the engine reacts to it exactly as to the live state.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    CancelAsked,
    Event,
    EventsApplied,
    Lifecycle,
    OrderSettings,
    OrderState,
    OrderTruth,
    OutcomeKind,
    PersonDecided,
    Reaction,
    StockView,
    StuckEscalated,
    WarehouseConfig,
    fold,
    react,
)
from orderloom.actors.coordinator import _order_actor
from orderloom.runtime import ActorNotFound

from .world import OrderSpec, run_world, warehouses


def _reactions(settings: OrderSettings, state: OrderState, now: float) -> list[Any]:
    """What the engine proposes, and does, for a few triggers on ``state``."""
    triggers: list[tuple[str, Any]] = [
        ("progress", EventsApplied()),
        ("escalate", StuckEscalated(stage=state.lifecycle)),
        ("customer_cancel", CancelAsked()),
    ]
    for hold in state.open_holds:
        for decision in hold.options:
            triggers.append((f"decided {hold.hold_id} {decision}", PersonDecided(
                case_id=hold.hold_id, decision=decision, by=f"{hold.owner_team}#1")))
    out: list[tuple[str, Reaction]] = []
    for name, trigger in triggers:
        ids = iter(range(1, 10_000))
        board = settings.stock
        out.append((name, react(state, trigger, settings.policy, now,
                                ids=lambda: f"id-{next(ids)}", wiring=settings.wiring,
                                stock=board.view if board is not None else StockView())))
    return out


def _split_stock() -> tuple[WarehouseConfig, ...]:
    return tuple(attrs.evolve(w, replenish_every=6 * 3600.0, replenish_to={"A": 10, "B": 10})
                 if w.warehouse_id == "W1" else w
                 for w in warehouses(W1={"A": 5, "B": 1}, W2={"A": 5}))


ORDERS = (
    OrderSpec(order_id="o1", lines=(("A", 1, 1000), ("B", 3, 500))),  # shortage: split
    OrderSpec(order_id="o2", at=30.0, truth=OrderTruth(address_ok=False,
                                                       address_fixable=False)),
    OrderSpec(order_id="o3", at=60.0, customer_id="c3"),
    OrderSpec(order_id="o4", at=90.0, customer_id="c3", truth=OrderTruth(duplicate_of="o3")),
    OrderSpec(order_id="o5", at=120.0, customer_id="c5",
              truth=OrderTruth(risk_score=0.95, fraudulent=True)),
    OrderSpec(order_id="o6", at=150.0, customer_id="c6", truth=OrderTruth(payment_declines=True)),
)


@pytest.mark.parametrize("policy", ["cautious", "balanced"])
@pytest.mark.parametrize("until", [100.0, 400.0, 1500.0, 4 * 3600.0, 3 * 86400.0])
def test_state_folded_from_the_journal_decides_like_the_live_order(
    policy: str, until: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped anywhere in its life, each order's journal folds to its live state,
    and a fresh engine on that state proposes and does what the live one does."""
    journals: dict[str, list[Event]] = defaultdict(list)
    apply_probed = _order_actor.apply_probed

    def recording(state: OrderState, event: Event, probe: OrderState | None) -> Any:
        after, outcome = apply_probed(state, event, probe)
        if outcome.kind is OutcomeKind.APPLIED:
            journals[state.order_id].append(event)
        return after, outcome

    monkeypatch.setattr(_order_actor, "apply_probed", recording)
    ran = run_world(list(ORDERS), policy=policy, until=until, warehouses=_split_stock())
    checked = 0
    for spec in ORDERS:
        try:
            actor = ran.kernel.actor(f"order/{spec.order_id}")
        except ActorNotFound:
            continue  # not placed yet
        live: OrderState = actor.order  # type: ignore[attr-defined]
        folded = fold(journals[spec.order_id], order_id=spec.order_id)
        assert folded == live, spec.order_id
        settings: OrderSettings = actor.settings  # type: ignore[attr-defined]
        now = ran.kernel.now()
        reactions = _reactions(settings, folded, now)
        assert reactions == _reactions(settings, live, now), spec.order_id
        checked += 1
    assert checked or until < 200.0
    if until == 3 * 86400.0:  # the journals hold the facts automation learnt
        assert ran.state("o4").duplicate_of is not None or ran.state(
            "o4").lifecycle is Lifecycle.CANCELED
        assert ran.state("o2").address_usable is False
        assert all(ran.state(o.order_id).screened for o in ORDERS)
