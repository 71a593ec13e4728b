"""A small world for scenario tests: a few orders, known truths, every actor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from orderloom.actors.order import _messages as m
from orderloom.actors import (
    ActionTaken,
    CaseOpened,
    Dist,
    OrderState,
    OrderTruth,
    Policy,
    TeamConfig,
    Telemetry,
    WarehouseConfig,
    load_builtin_policy,
)
from orderloom.runtime import Message, Store
from orderloom.simulation import LinkFaults, SimKernel, WorldConfig, build_world

TEAMS = ("payments-ops", "fraud", "customer-care", "fulfillment-ops")


def teams(review: float = 600.0, **overrides: Any) -> tuple[TeamConfig, ...]:
    """One reviewer per team around the clock, fixed review time."""
    return tuple(TeamConfig(name=n, review=Dist.fixed(review), **overrides) for n in TEAMS)


def warehouses(**stock: dict[str, int]) -> tuple[WarehouseConfig, ...]:
    """Warehouses named by keyword with their stock; fixed 60 s pick and pack."""
    return tuple(WarehouseConfig(warehouse_id=wid, stock=levels, pick=Dist.fixed(60.0),
                                 pack=Dist.fixed(60.0)) for wid, levels in stock.items())


@attrs.frozen(kw_only=True)
class OrderSpec:
    """An order the test places, and what the world knows about it."""

    order_id: str
    at: float = 0.0
    customer_id: str = "c1"
    lines: tuple[tuple[str, int, int], ...] = (("A", 1, 1000),)  # sku, qty, unit price
    truth: OrderTruth = OrderTruth()


@attrs.frozen(kw_only=True)
class Ran:
    """What a scenario run leaves to assert on."""

    kernel: SimKernel
    telemetry: list[tuple[float, str, Telemetry]]

    def state(self, order_id: str) -> OrderState:
        actor = self.kernel.actor(f"order/{order_id}")
        state: OrderState = actor.order  # type: ignore[attr-defined]
        return state

    def of(self, kind: type[Telemetry], order_id: str | None = None) -> list[Any]:
        return [e for _, _, e in self.telemetry
                if isinstance(e, kind) and (order_id is None or e.order_id == order_id)]

    def cases(self, order_id: str) -> list[tuple[str, str]]:
        return [(c.reason, c.team) for c in self.of(CaseOpened, order_id)]

    def irreversible(self, order_id: str) -> list[ActionTaken]:
        return [a for a in self.of(ActionTaken, order_id) if a.irreversible]


def place(spec: OrderSpec) -> m.PlaceOrder:
    return m.PlaceOrder(
        order_id=spec.order_id, command_id=f"place-{spec.order_id}", issued_at=spec.at,
        issued_by="storefront", customer_id=spec.customer_id, currency="EUR",
        lines=tuple(m.LineItemSpec(line_id=f"l{i}", sku=sku, quantity=q, unit_price=p)
                    for i, (sku, q, p) in enumerate(spec.lines, start=1)))


def run_world(
    orders: Sequence[OrderSpec],
    *,
    policy: Policy | str = "cautious",
    until: float = 3 * 86400.0,
    seed: int = 1,
    extra: Sequence[tuple[float, str, Message]] = (),
    links: Sequence[tuple[str, str, LinkFaults]] = (),
    store: Store | None = None,
    **world: Any,
) -> Ran:
    """Place ``orders`` in a world with ``policy`` and run it to ``until``
    (``extra``: further messages, as (at, to, message), told from outside;
    ``links``: faults on links, as (sender, recipient, faults) glob patterns;
    ``store``: where the journals go, instead of the simulator's default)."""
    if isinstance(policy, str):
        policy = load_builtin_policy(policy)
    world.setdefault("teams", teams())
    world.setdefault("warehouses", warehouses(W1={"A": 100, "B": 100}))
    world.setdefault("retire_after", 10 * 86400.0)
    config = WorldConfig(policy=policy, **world)
    kernel = SimKernel(seed=seed)
    telemetry: list[tuple[float, str, Telemetry]] = []
    kernel.add_sink(lambda t, a, e: telemetry.append((t, a, e)))  # type: ignore[arg-type]
    truths = {o.order_id: o.truth for o in orders}
    for sender, recipient, faults in links:
        kernel.set_link_faults(sender, recipient, faults)
    build_world(kernel, config, lambda oid: truths.get(oid, OrderTruth()), store=store)
    for spec in orders:
        kernel.tell("intake", place(spec), delay=spec.at)
    for at, to, message in extra:
        kernel.tell(to, message, delay=at)
    kernel.run(until)
    return Ran(kernel=kernel, telemetry=telemetry)
