"""A world whose fraud cases go to people: review desks replace simulated teams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import anyio

from orderloom.actors import (
    ActOnCase,
    DeskAction,
    Decision,
    OrderTruth,
    ReviewDesk,
    load_builtin_policy,
    spawn_review_desks,
    team_address,
)
from orderloom.actors.coordinator import spawn_coordinator
from orderloom.runtime import Kernel, MemoryStore, Store
from orderloom.runtime.live import LiveKernel
from orderloom.simulation import WorldConfig, world_actors

from .sim.world import OrderSpec, place, teams, warehouses

FRAUDULENT = OrderTruth(risk_score=0.95, fraudulent=True)
GENUINE_BUT_RISKY = OrderTruth(risk_score=0.95, fraudulent=False)

SPECS = (
    OrderSpec(order_id="f1", customer_id="c1", truth=FRAUDULENT),
    OrderSpec(order_id="f2", customer_id="c2", truth=GENUINE_BUT_RISKY),
)
"""Two orders the cautious policy holds for the fraud team, proposing to cancel."""


def config() -> WorldConfig:
    (wh,) = warehouses(W1={"A": 10})
    return WorldConfig(policy=load_builtin_policy("cautious"), teams=teams(review=300.0),
                       warehouses=(wh,), retire_after=1e9)


def desk_world(kernel: Kernel, store: Store, *, desks: Sequence[str] = ("fraud",),
               specs: Sequence[OrderSpec] = SPECS) -> None:
    """The coordinator and the simulated world on ``kernel``, with a review
    desk instead of the simulated team for each of ``desks``; ``specs`` placed."""
    cfg = config()
    table = {s.order_id: s.truth for s in specs}
    spawn_coordinator(kernel, cfg.settings(), store)
    for address, factory in world_actors(cfg, lambda oid: table.get(oid, OrderTruth())).items():
        if address not in {team_address(t) for t in desks}:
            kernel.spawn(factory, address)
    spawn_review_desks(kernel, desks, store)
    for spec in specs:
        kernel.tell("intake", place(spec))


def act(case_id: str, action: DeskAction, by: str = "alice", why: str = "", *,
        decision: Decision | None = None, to: str | None = None,
        request_id: str = "r1") -> ActOnCase:
    return ActOnCase(request_id=request_id, case_id=case_id, action=action, by=by, why=why,
                     decision=decision, to=to)



ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
TOKENS = {ALICE: "alice", BOB: "bob"}


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` real seconds."""
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@asynccontextmanager
async def live_desk(*, desks: Sequence[str] = ("fraud",), speed: float = 20.0,
                    specs: Sequence[OrderSpec] = SPECS) -> AsyncIterator[tuple[LiveKernel, Store]]:
    """A live kernel running :func:`desk_world`, once every order's case is at its desk.

    At 20x a case's 4 h deadline (after which the watchdog escalates it away
    from the desk) is 12 real minutes off: far beyond any test's waits.
    """
    store = MemoryStore()
    async with LiveKernel(seed=1, speed=speed) as kernel:
        desk_world(kernel, store, desks=desks, specs=specs)

        def all_held() -> bool:
            held = set()
            for team in desks:
                if kernel.is_running(team_address(team)):
                    desk = kernel.actor(team_address(team))
                    assert isinstance(desk, ReviewDesk)
                    held |= {c.case.order_id for c in desk.book.open_cases()}
            return held >= {s.order_id for s in specs}

        await wait_until(all_held, "every order's case at the desk")
        yield kernel, store
