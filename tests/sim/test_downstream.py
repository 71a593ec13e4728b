"""Downstream systems under the SimPy kernel: lag, loss, outages, version order, projections."""

from __future__ import annotations

from typing import Any

import pytest

from orderloom.actors import SystemViewChanged
from orderloom.actors._dist import Dist, Window
from orderloom.actors._downstream import DownstreamConfig, DownstreamSystem, project
from orderloom.actors._protocol import SyncOrder, SyncSnapshot
from orderloom.simulation import SimKernel


def _snap(version: int, order_id: str = "o1", **kw: Any) -> SyncSnapshot:
    fields: dict[str, Any] = {
        "lifecycle": "ready_for_fulfillment", "payment": "paid", "captured": 1000,
        "refunded": 0, "shipped_units": 0, "customer_status": "processing",
    }
    fields.update(kw)
    return SyncSnapshot(order_id=order_id, version=version, **fields)


def _world(config: DownstreamConfig, seed: int = 0
           ) -> tuple[SimKernel, DownstreamSystem, list[tuple[float, SystemViewChanged]]]:
    kernel = SimKernel(seed=seed)
    events: list[tuple[float, SystemViewChanged]] = []
    kernel.add_sink(lambda t, addr, ev: events.append((t, ev))
                    if isinstance(ev, SystemViewChanged) else None)
    kernel.spawn(lambda: DownstreamSystem(config), config.system)
    actor = kernel.actor(config.system)
    assert isinstance(actor, DownstreamSystem)
    return kernel, actor, events


def test_snapshot_is_applied_after_the_lag() -> None:
    """A snapshot changes the system's view, and emits its projection, only after the lag."""
    kernel, system, events = _world(DownstreamConfig(system="finance", lag=Dist.fixed(5.0)))
    kernel.tell("finance", SyncOrder(snapshot=_snap(1)), delay=2)
    kernel.run(until=6.9)
    assert system.view("o1") is None
    kernel.run()
    assert events == [(7.0, SystemViewChanged(order_id="o1", system="finance",
                                              status="captured=1000;refunded=0"))]
    assert system.view("o1") == _snap(1)


def test_failed_updates_are_lost() -> None:
    """With failure_rate 1 no snapshot reaches the view and nothing is emitted."""
    kernel, system, events = _world(DownstreamConfig(system="crm", failure_rate=1.0))
    kernel.tell("crm", SyncOrder(snapshot=_snap(1)))
    kernel.tell("crm", SyncOrder(snapshot=_snap(2, customer_status="shipped")), delay=1)
    kernel.run()
    assert system.view("o1") is None and system.lost == 2 and system.applied == 0
    assert events == []


def test_failure_rate_is_honoured_statistically() -> None:
    """Over 2000 orders, the share of lost updates matches failure_rate."""
    kernel, system, _ = _world(DownstreamConfig(system="crm", failure_rate=0.3,
                                                lag=Dist.exponential(3.0)), seed=5)
    n = 2000
    for i in range(n):
        kernel.tell("crm", SyncOrder(snapshot=_snap(1, order_id=f"o{i}")), delay=i * 0.5)
    kernel.run()
    assert system.received == n and system.applied + system.lost == n
    assert abs(system.lost / n - 0.3) < 0.03


def test_outage_loses_updates_arriving_or_landing_in_it() -> None:
    """Updates that arrive, or whose lag ends, inside an outage are lost; later ones apply."""
    config = DownstreamConfig(system="support", lag=Dist.fixed(10.0),
                              outages=(Window(start=100, end=200),))
    kernel, system, events = _world(config)
    kernel.tell("support", SyncOrder(snapshot=_snap(1, lifecycle="placed")), delay=95)
    kernel.tell("support", SyncOrder(snapshot=_snap(2, lifecycle="on_hold")), delay=150)
    kernel.tell("support", SyncOrder(snapshot=_snap(3, lifecycle="canceled")), delay=195)
    kernel.tell("support", SyncOrder(snapshot=_snap(4, lifecycle="fulfilled")), delay=200)
    kernel.run()
    assert system.lost == 3
    assert events == [(210.0, SystemViewChanged(order_id="o1", system="support",
                                                status="fulfilled;paid"))]


def test_older_snapshot_never_overwrites_a_newer_one() -> None:
    """Out-of-order delivery: a lower version arriving after a higher one is skipped."""
    kernel, system, events = _world(DownstreamConfig(system="finance"))
    kernel.tell("finance", SyncOrder(snapshot=_snap(3, refunded=400)))
    kernel.tell("finance", SyncOrder(snapshot=_snap(2, refunded=0)), delay=1)
    kernel.tell("finance", SyncOrder(snapshot=_snap(3, refunded=400)), delay=2)
    kernel.run()
    assert system.view("o1") == _snap(3, refunded=400)
    assert system.stale == 2
    assert [e.status for _, e in events] == ["captured=1000;refunded=400"]


def test_random_lag_reorders_but_the_newest_version_wins() -> None:
    """With a random lag snapshots land out of order, yet each order ends at its newest version."""
    kernel, system, _ = _world(DownstreamConfig(system="crm", lag=Dist.exponential(20.0)),
                               seed=2)
    for i in range(200):
        kernel.tell("crm", SyncOrder(snapshot=_snap(i + 1, order_id=f"o{i % 10}")), delay=i)
    kernel.run()
    assert system.stale > 0
    assert {o: system.view(f"o{o}").version for o in range(10)  # type: ignore[union-attr]
            } == {o: 191 + o for o in range(10)}


@pytest.mark.parametrize("system", ["finance", "crm", "support", "fulfillment"])
def test_projection_matches_the_coordinator_side(system: str) -> None:
    """The status a system emits equals project(system, snapshot) of the coordinator's copy."""
    snapshot = _snap(4, lifecycle="fulfilled", customer_status="shipped", shipped_units=2)
    kernel, _, events = _world(DownstreamConfig(system=system))
    kernel.tell(system, SyncOrder(snapshot=snapshot))
    kernel.run()
    assert [e.status for _, e in events] == [project(system, snapshot)]


def test_projection_only_sees_what_the_system_cares_about() -> None:
    """Finance ignores the lifecycle, CRM ignores money, an unknown system sees every field."""
    a = _snap(1)
    b = _snap(2, lifecycle="on_hold", payment="partially_refunded", refunded=200)
    assert project("crm", a) == project("crm", b)
    assert project("finance", a) != project("finance", b)
    assert project("support", a) != project("support", b)
    assert project("warehouse", a) == project("warehouse", _snap(9))
    assert project("warehouse", a) != project("warehouse", _snap(1, shipped_units=1))


def test_unchanged_projection_emits_nothing() -> None:
    """A newer snapshot with the same projection updates the view without a telemetry event."""
    kernel, system, events = _world(DownstreamConfig(system="crm"))
    kernel.tell("crm", SyncOrder(snapshot=_snap(1)))
    kernel.tell("crm", SyncOrder(snapshot=_snap(2, captured=500)), delay=1)
    kernel.run()
    assert system.view("o1") == _snap(2, captured=500)
    assert len(events) == 1


def test_bad_downstream_config_is_rejected() -> None:
    """An empty system name or a failure rate outside [0, 1] is refused."""
    with pytest.raises(ValueError):
        DownstreamConfig(system="")
    with pytest.raises(ValueError):
        DownstreamConfig(system="crm", failure_rate=-0.1)


def test_an_orders_lags_and_losses_do_not_depend_on_other_orders() -> None:
    """Common random numbers: an order's snapshot draws its lag and loss from a
    stream keyed by the order and the view it brings, so other orders' syncs
    change nothing for it."""
    config = DownstreamConfig(system="crm", failure_rate=0.3, lag=Dist.exponential(30.0))

    def landed(others: int) -> list[tuple[float, str]]:
        kernel, _, events = _world(config, seed=4)
        for i in range(others):
            kernel.tell("crm", SyncOrder(snapshot=_snap(1, order_id=f"other{i}")))
        for v in range(1, 9):
            kernel.tell("crm", SyncOrder(snapshot=_snap(v, customer_status=f"s{v}")),
                        delay=100.0 * v)
        kernel.run()
        return [(round(t, 9), e.status) for t, e in events if e.order_id == "o1"]

    alone = landed(0)
    assert 2 < len(alone) < 8  # some lost, some applied
    assert landed(5) == alone
    assert landed(40) == alone


def test_the_same_update_meets_the_same_lag_whatever_came_before_it() -> None:
    """Under another policy an order may pass through other states first; its
    update to a given view still draws the same lag (keyed by the view)."""
    config = DownstreamConfig(system="crm", lag=Dist.exponential(30.0))

    def landed(statuses: list[str]) -> dict[str, float]:
        kernel, _, events = _world(config, seed=2)
        for v, status in enumerate(statuses, start=1):
            kernel.tell("crm", SyncOrder(snapshot=_snap(v, customer_status=status)),
                        delay=1000.0 * v)
        kernel.run()
        return {e.status: round(t - 1000.0 * (statuses.index(e.status) + 1), 6)
                for t, e in events}

    direct = landed(["confirmed", "shipped"])
    detour = landed(["confirmed", "processing", "partially_shipped", "shipped"])
    assert direct["shipped"] == detour["shipped"]
    assert direct["confirmed"] == detour["confirmed"]
    assert detour["processing"] != detour["shipped"]


def test_a_retiring_order_flushes_its_pending_batch_sync() -> None:
    """Under a batch policy whose interval outlasts the order's stay, the order
    sends its final snapshot before it retires: no system keeps a stale view."""
    import attrs

    from orderloom.actors._policy import DownstreamSyncPolicy, SyncMode, load_builtin_policy
    from orderloom.runtime import ActorNotFound
    from tests.sim.world import OrderSpec, run_world

    policy = attrs.evolve(load_builtin_policy("aggressive"), downstream_sync=DownstreamSyncPolicy(
        mode=SyncMode.BATCH, batch_interval=6 * 3600.0))
    ran = run_world([OrderSpec(order_id="o1", at=60.0)], policy=policy, retire_after=600.0,
                    until=86400.0)
    with pytest.raises(ActorNotFound):  # the order retired
        ran.kernel.actor("order/o1")
    final: dict[str, str] = {}
    for event in ran.of(SystemViewChanged, "o1"):
        final[event.system] = event.status
    systems = ("finance", "crm", "support", "notifications")
    assert final["coordinator:finance"].startswith("captured=")
    assert {s: final.get(s) for s in systems} == {s: final[f"coordinator:{s}"] for s in systems}


def test_a_retired_orders_last_snapshot_lands_then_is_forgotten() -> None:
    """A retirement notice that overtakes the order's last snapshot (still in
    its lag) lets that snapshot land, then forgets the order: no view is kept
    for a retired order."""
    from orderloom.actors._protocol import OrderRetired

    kernel, system, events = _world(DownstreamConfig(system="finance", lag=Dist.fixed(5.0)))
    kernel.tell("finance", SyncOrder(snapshot=_snap(1)))
    kernel.tell("finance", OrderRetired(order_id="o1", fulfillment_order_ids=(), captured=1000,
                                        refunded=0), delay=1.0)
    kernel.run()
    assert events == [(5.0, SystemViewChanged(order_id="o1", system="finance",
                                              status="captured=1000;refunded=0"))]
    assert system.view("o1") is None and system.status("o1") is None
