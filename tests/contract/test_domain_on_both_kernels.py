"""The order domain is kernel-agnostic: the same world reaches the same outcomes
under the SimPy kernel and the live anyio kernel (compressed clock)."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from orderloom.actors import (
    CarrierConfig,
    CaseOpened,
    Dist,
    Lifecycle,
    TERMINAL_STAGES,
    OrderTruth,
    load_builtin_policy,
)
from orderloom.runtime.live import LiveKernel
from orderloom.simulation import SimKernel, WorldConfig, build_world

from ..sim.world import OrderSpec, place, teams, warehouses


ORDERS = [
    OrderSpec(order_id="ok"),
    OrderSpec(order_id="fraud", truth=OrderTruth(risk_score=0.95, fraudulent=True)),
    OrderSpec(order_id="address", truth=OrderTruth(address_ok=False, address_fixable=False)),
    OrderSpec(order_id="declined", truth=OrderTruth(payment_declines=True)),
]
UNTIL = 6000.0


def _config() -> WorldConfig:
    (wh,) = warehouses(W1={"A": 10})
    wh = attrs.evolve(wh, carriers=(CarrierConfig(name="post", transit=Dist.fixed(600.0)),))
    return WorldConfig(policy=load_builtin_policy("cautious"), teams=teams(review=300.0),
                       warehouses=(wh,), retire_after=1e9)


def _outcome(kernel: Any, telemetry: list[Any]) -> dict[str, Any]:
    finals = {o.order_id: kernel.actor(f"order/{o.order_id}").order.lifecycle for o in ORDERS}
    cases = sorted((e.order_id, e.reason, e.team) for e in telemetry if isinstance(e, CaseOpened))
    return {"finals": finals, "cases": cases}


def _finished(kernel: Any) -> bool:
    return all(kernel.is_running(f"order/{o.order_id}")
               and kernel.actor(f"order/{o.order_id}").order.lifecycle in TERMINAL_STAGES
               for o in ORDERS)


def _truths() -> Any:
    table = {o.order_id: o.truth for o in ORDERS}
    return lambda oid: table.get(oid, OrderTruth())


def test_same_outcomes_under_both_kernels() -> None:
    """Final states and exception cases agree between simulation and live."""
    sim = SimKernel(seed=1)
    sim_telemetry: list[Any] = []
    sim.add_sink(lambda t, a, e: sim_telemetry.append(e))
    build_world(sim, _config(), _truths())
    for spec in ORDERS:
        sim.tell("intake", place(spec))
    sim.run(UNTIL)
    expected = _outcome(sim, sim_telemetry)
    assert expected["finals"] == {"ok": Lifecycle.CLOSED, "fraud": Lifecycle.CANCELED,
                                  "address": Lifecycle.CANCELED, "declined": Lifecycle.CANCELED}

    async def live_run() -> dict[str, Any]:
        telemetry: list[Any] = []
        # 1,000x: the gateway's 30 s timeout is 30 real ms; at 20,000x (1.5 ms)
        # a loaded machine's stall fired it and opened cases simulation never did.
        async with LiveKernel(seed=1, speed=1_000.0) as live:
            live.add_sink(lambda t, a, e: telemetry.append(e))
            build_world(live, _config(), _truths())
            for spec in ORDERS:
                live.tell("intake", place(spec))
            # Not a fixed UNTIL: on a loaded machine the compressed clock runs
            # ahead of the work. Until every order finished, with a bound.
            while live.now() < UNTIL * 10 and not _finished(live):
                await live.sleep(UNTIL / 20)
            return _outcome(live, telemetry)

    assert anyio.run(live_run) == expected
