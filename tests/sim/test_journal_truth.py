"""An order's truth is its journal: a restart loses nothing automation knew.

The policy engine keeps no per-order data; everything it reads is the order's
state. These tests run orders through the exception paths in a simulated
world, record each order's journal (the events its actor applied), and check
that the state folded from the journal alone equals the live state and that
a fresh engine on it proposes exactly what the live one does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Coroutine
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    CaseDecision,
    CustomerCancel,
    Decision,
    Escalate,
    Event,
    Lifecycle,
    OrderState,
    OutcomeKind,
    fold,
)
from orderloom.actors import _order_actor
from orderloom.actors._engine import Engine, OrderSettings
from orderloom.actors._protocol import OrderTruth
from orderloom.actors._warehouse import WarehouseConfig
from orderloom.runtime import ActorNotFound, Address

from .world import OrderSpec, run_world, warehouses


def test_engine_keeps_settings_only() -> None:
    """The engine's slots are its settings; it has no instance dictionary to hide data in."""
    assert Engine.__slots__ == ("settings", "policy", "actor_name")
    from orderloom.actors._policy import load_builtin_policy

    engine = Engine(OrderSettings(policy=load_builtin_policy("cautious")))
    assert not hasattr(engine, "__dict__")


class _Ctx:
    """Just enough of an actor context to run the engine outside a kernel."""

    def __init__(self, order_id: str, now: float) -> None:
        self.address = Address(f"order/{order_id}")
        self._now = now
        self._ids = 0
        self.effects: list[tuple[str, Any, Any]] = []

    def now(self) -> float:
        return self._now

    def new_id(self) -> str:
        self._ids += 1
        return f"id-{self._ids}"

    async def send(self, to: Address, message: Any, **_: Any) -> None:
        self.effects.append(("send", to, message))

    def schedule(self, delay: float, message: Any) -> int:
        self.effects.append(("schedule", delay, message))
        return len(self.effects)

    def emit(self, event: Any) -> None:
        self.effects.append(("emit", None, event))


def _done(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never really waits (the fake context's sends don't)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the engine waited on something")


def _proposals(engine: Engine, state: OrderState, now: float) -> list[Any]:
    """What the engine proposes, and does, for a few triggers on ``state``."""
    out: list[Any] = []
    oid = state.order_id
    triggers: list[tuple[str, Any]] = [
        ("progress", lambda ctx: engine.react(state, (), ctx)),
        ("escalate", lambda ctx: engine.escalate(
            state, Escalate(order_id=oid, stage=state.lifecycle.value, reason="stuck"), ctx)),
        ("customer_cancel", lambda ctx: engine.customer_cancel(
            state, CustomerCancel(order_id=oid), ctx)),
    ]
    for hold in state.open_holds:
        for decision in hold.options:
            triggers.append((f"decided {hold.hold_id} {decision}", lambda ctx, h=hold, d=decision:
                             engine.decided(state, CaseDecision(
                                 order_id=oid, case_id=h.hold_id, team=h.owner_team,
                                 reviewer=f"{h.owner_team}#1", decision=d, proposal=h.proposal),
                                 ctx)))
    for name, trigger in triggers:
        ctx = _Ctx(oid, now)
        commands = _done(trigger(ctx))
        out.append((name, commands, ctx.effects))
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
        fresh = Engine(actor.settings)  # type: ignore[attr-defined]
        now = ran.kernel.now()
        assert _proposals(fresh, folded, now) == _proposals(
            actor.engine, live, now), spec.order_id  # type: ignore[attr-defined]
        checked += 1
    assert checked or until < 200.0
    if until == 3 * 86400.0:  # the journals hold the facts automation learnt
        assert ran.state("o4").duplicate_of is not None or ran.state(
            "o4").lifecycle is Lifecycle.CANCELED
        assert ran.state("o2").address_usable is False
        assert all(ran.state(o.order_id).screened for o in ORDERS)
