"""Downstream systems under the SimPy kernel: lag, loss, outages, version order, projections.

A system announces when an update will land (``SystemViewScheduled``, at
the update's arrival); the tests read the landings off the announcements.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    Dist,
    DownstreamConfig,
    DownstreamSystem,
    KeyedRandom,
    MetricsCollector,
    OrderFinished,
    OrderRetired,
    OrderStageEntered,
    SyncOrder,
    SyncSnapshot,
    SystemViewChanged,
    SystemViewScheduled,
    Window,
    project,
)
from orderloom.runtime import Actor, Address, Message, handler
from orderloom.simulation import SimKernel


def _snap(version: int, order_id: str = "o1", **kw: Any) -> SyncSnapshot:
    fields: dict[str, Any] = {
        "lifecycle": "ready_for_fulfillment", "payment": "paid", "captured": 1000,
        "refunded": 0, "shipped_units": 0, "customer_status": "processing",
    }
    fields.update(kw)
    return SyncSnapshot(order_id=order_id, version=version, **fields)


def _world(config: DownstreamConfig, seed: int = 0
           ) -> tuple[SimKernel, DownstreamSystem, list[tuple[float, SystemViewScheduled]]]:
    kernel = SimKernel(seed=seed)
    events: list[tuple[float, SystemViewScheduled]] = []
    kernel.add_sink(lambda t, addr, ev: events.append((t, ev))
                    if isinstance(ev, SystemViewScheduled) else None)
    kernel.spawn(lambda: DownstreamSystem(config), config.system)
    actor = kernel.actor(config.system)
    assert isinstance(actor, DownstreamSystem)
    return kernel, actor, events


def test_snapshot_is_applied_after_the_lag() -> None:
    """A snapshot changes the system's view only after the lag; its projection
    and landing time are announced when it arrives."""
    kernel, system, events = _world(DownstreamConfig(system="finance", lag=Dist.fixed(5.0)))
    kernel.tell("finance", SyncOrder(snapshot=_snap(1)), delay=2)
    kernel.run(until=6.9)
    assert system.view("o1") is None
    assert events == [(2.0, SystemViewScheduled(order_id="o1", system="finance",
                                                 status="captured=1000;refunded=0", at=7.0))]
    kernel.run(until=7.0)
    assert system.view("o1") == _snap(1)
    assert system.status("o1") == "captured=1000;refunded=0"


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
    assert events == [(200.0, SystemViewScheduled(order_id="o1", system="support",
                                                  status="fulfilled;paid", at=210.0))]


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
    kernel.run(until=5000.0)  # nothing wakes the system when a lag ends: run past them
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
        return [(round(e.at, 9), e.status) for _, e in events if e.order_id == "o1"]

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
        return {e.status: round(e.at - 1000.0 * (statuses.index(e.status) + 1), 6)
                for _, e in events}

    direct = landed(["confirmed", "shipped"])
    detour = landed(["confirmed", "processing", "partially_shipped", "shipped"])
    assert direct["shipped"] == detour["shipped"]
    assert direct["confirmed"] == detour["confirmed"]
    assert detour["processing"] != detour["shipped"]


def test_a_retiring_order_flushes_its_pending_batch_sync() -> None:
    """Under a batch policy whose interval outlasts the order's stay, the order
    sends its final snapshot before it retires: no system keeps a stale view."""
    import attrs

    from orderloom.actors import DownstreamSyncPolicy, SyncMode, load_builtin_policy
    from orderloom.runtime import ActorNotFound
    from tests.sim.world import OrderSpec, run_world

    policy = attrs.evolve(load_builtin_policy("aggressive"), downstream_sync=DownstreamSyncPolicy(
        mode=SyncMode.BATCH, batch_interval=6 * 3600.0))
    ran = run_world([OrderSpec(order_id="o1", at=60.0)], policy=policy, retire_after=600.0,
                    until=86400.0)
    with pytest.raises(ActorNotFound):  # the order retired
        ran.kernel.actor("order/o1")
    final: dict[str, str] = {}
    for event in ran.of(SystemViewChanged, "o1"):  # the coordinator's views
        final[event.system] = event.status
    landings = sorted((e.at, i, e) for i, e in enumerate(ran.of(SystemViewScheduled, "o1")))
    for _, _, scheduled in landings:  # the systems' (no overtaking at a fixed lag)
        final[scheduled.system] = scheduled.status
    systems = ("finance", "crm", "support", "notifications")
    assert final["coordinator:finance"].startswith("captured=")
    assert {s: final.get(s) for s in systems} == {s: final[f"coordinator:{s}"] for s in systems}


def test_a_retired_orders_last_snapshot_lands_then_is_forgotten() -> None:
    """A retirement notice that overtakes the order's last snapshot (still in
    its lag) lets that snapshot land, then forgets the order: no view is kept
    for a retired order."""
    from orderloom.actors import OrderRetired

    kernel, system, events = _world(DownstreamConfig(system="finance", lag=Dist.fixed(5.0)))
    kernel.tell("finance", SyncOrder(snapshot=_snap(1)))
    kernel.tell("finance", OrderRetired(order_id="o1", fulfillment_order_ids=(), captured=1000,
                                        refunded=0), delay=1.0)
    kernel.run()
    assert events == [(0.0, SystemViewScheduled(order_id="o1", system="finance",
                                                status="captured=1000;refunded=0", at=5.0))]
    assert system.view("o1") is None and system.status("o1") is None


def test_a_snapshot_after_the_retirement_notice_lands_before_the_order_is_forgotten() -> None:
    """A snapshot delayed past the order's retirement notice still lands; the
    order is forgotten once its last snapshot has landed, not before."""
    from orderloom.actors import OrderRetired

    kernel, system, _ = _world(DownstreamConfig(system="finance", lag=Dist.fixed(5.0)))
    kernel.tell("finance", SyncOrder(snapshot=_snap(1)))
    kernel.tell("finance", OrderRetired(order_id="o1"), delay=1.0)
    kernel.tell("finance", SyncOrder(snapshot=_snap(2, refunded=100)), delay=2.0)
    kernel.tell("finance", SyncOrder(snapshot=_snap(1, order_id="o2")), delay=6.0)
    kernel.run(until=6.5)
    assert system.view("o1") == _snap(1)
    kernel.run(until=7.0)
    assert system.view("o1") is None and system.view("o2") is None  # o2 lands at 11
    kernel.run(until=11.0)
    assert system.view("o2") == _snap(1, order_id="o2")


# -- the same landings as a timer per update ---------------------------------------------


@attrs.frozen(kw_only=True)
class _Land(Message):
    """Timer of the reference system: write ``snapshot`` now."""

    snapshot: SyncSnapshot
    status: str


class _TimerSystem(Actor):
    """The reference: a system that sets a timer per update and reports its
    view when the timer fires (same keyed draws, same loss and stale rules)."""

    def __init__(self, config: DownstreamConfig) -> None:
        self.config = config
        self.views: dict[str, SyncSnapshot] = {}
        self.statuses: dict[str, str] = {}
        self.seen: dict[tuple[str, str], int] = {}
        self.keyed = KeyedRandom(lambda: self.ctx.rng.getrandbits(64))

    @handler
    async def on_sync(self, msg: SyncOrder) -> None:
        status = project(self.config.system, msg.snapshot)
        key = (msg.snapshot.order_id, status)
        n = self.seen[key] = self.seen.get(key, 0) + 1
        rng = self.keyed.at(f"{msg.snapshot.order_id}/{status}/{n}")
        lag = self.config.lag.sample(rng)
        if rng.random() < self.config.failure_rate or self.config.down_at(self.ctx.now()):
            return
        self.ctx.schedule(lag, _Land(snapshot=msg.snapshot, status=status))

    @handler
    async def on_land(self, msg: _Land) -> None:
        order_id = msg.snapshot.order_id
        current = self.views.get(order_id)
        if self.config.down_at(self.ctx.now()) or (
                current is not None and current.version >= msg.snapshot.version):
            return
        self.views[order_id] = msg.snapshot
        if self.statuses.get(order_id) != msg.status:
            self.statuses[order_id] = msg.status
            self.ctx.emit(SystemViewChanged(order_id=order_id, system=self.config.system,
                                            status=msg.status))


@attrs.frozen(kw_only=True)
class _Publish(Message):
    """The test's coordinator: its view of an order is now ``snapshot``."""

    snapshot: SyncSnapshot
    first: bool = False
    last: bool = False


class _Coordinator(Actor):
    """Emits the coordinator's side of the metric and syncs the system, as the order actor does."""

    @handler
    async def on_publish(self, msg: _Publish) -> None:
        order_id = msg.snapshot.order_id
        if msg.first:
            self.ctx.emit(OrderStageEntered(order_id=order_id, stage="placed"))
        self.ctx.emit(SystemViewChanged(order_id=order_id, system="coordinator:crm",
                                        status=project("crm", msg.snapshot)))
        await self.ctx.send(Address("crm"), SyncOrder(snapshot=msg.snapshot))
        if msg.last:
            self.ctx.emit(OrderFinished(order_id=order_id, final_state="closed", placed_at=0.0))
            await self.ctx.send(Address("crm"), OrderRetired(order_id=order_id), delay=300.0)


def _mismatches(seed: int, system: Callable[[DownstreamConfig], Actor]
                ) -> tuple[dict[str, float], list[tuple[float, float]], int]:
    """Metrics and series of a random stream of syncs (reordered and duplicated
    copies among them) to one system, and the messages the kernel delivered."""
    config = DownstreamConfig(system="crm", lag=Dist.exponential(60.0), failure_rate=0.1,
                              outages=(Window(start=900.0, end=1100.0),))
    kernel = SimKernel(seed=seed)
    collector = MetricsCollector(warm_up=0.0, horizon=4000.0, series_step=25.0,
                                 systems=("crm",), mismatch_grace=30.0)
    kernel.add_sink(collector.on_emit)
    kernel.spawn(lambda: system(config), "crm")
    kernel.spawn(_Coordinator, "coordinator")
    draw = random.Random(seed)
    for o in range(40):
        t = draw.uniform(0.0, 2000.0)
        versions = draw.randint(1, 7)
        for v in range(1, versions + 1):
            snapshot = _snap(v, order_id=f"o{o}", customer_status=draw.choice("abc"))
            kernel.tell("coordinator", _Publish(snapshot=snapshot, first=v == 1,
                                                last=v == versions and o % 2 == 0), delay=t)
            if draw.random() < 0.3:  # a copy that a faulty link delays past later ones
                kernel.tell("crm", SyncOrder(snapshot=snapshot), delay=t + draw.expovariate(1 / 90))
            t += draw.expovariate(1 / 40.0)
    kernel.run(until=4000.0)
    metrics, series, _ = collector.finish(kernel.now())
    return metrics, series["state_mismatches"], kernel.delivered


@pytest.mark.parametrize("seed", range(12))
def test_announced_landings_fold_as_a_timer_per_update_does(seed: int) -> None:
    """Announcing each update's landing when it arrives gives exactly the
    mismatch metrics and series of a system that sets a timer per update,
    under loss, outages, overtaking, reordered and duplicated syncs; and the
    kernel delivers one message per sync instead of two."""
    metrics, series, delivered = _mismatches(seed, DownstreamSystem)
    ref_metrics, ref_series, ref_delivered = _mismatches(seed, _TimerSystem)
    mismatch = {k: v for k, v in metrics.items() if k.startswith("state_mismatches")}
    assert mismatch == {k: v for k, v in ref_metrics.items() if k.startswith("state_mismatches")}
    assert mismatch["state_mismatches"] > 0
    assert series == ref_series
    assert delivered < ref_delivered
