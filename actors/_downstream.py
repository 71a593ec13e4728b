"""Downstream systems (finance, CRM, support): each keeps its own view of an order.

The coordinator pushes :class:`~._protocol.SyncOrder` snapshots; a
:class:`DownstreamSystem` applies one after a lag, unless the update is
lost (``failure_rate``, or an outage window at arrival or at apply time), in
which case its view stays stale until the next snapshot. A snapshot older
than the view (a lower ``version``, delivered out of order) never overwrites
it.

:func:`~._views.project` (the coordinator's) is the one summary of a
snapshot per system: the system emits
``SystemViewChanged(system, project(system, applied))`` and the coordinator
``project(system, its own snapshot)``, so equal strings mean agreement.
"""

from __future__ import annotations

from typing import Any

import attrs

from orderloom.runtime import Actor, Message, handler

from ._documents import probability
from ._dist import Dist, KeyedRandom, Window
from ._protocol import OrderRetired, SyncOrder, SyncSnapshot
from ._telemetry import SystemViewChanged
from ._views import project

__all__ = ["DownstreamConfig", "DownstreamSystem", "project"]


def _name(_: object, a: attrs.Attribute[Any], v: str) -> None:
    if not v:
        raise ValueError(f"{a.name}: expected a non-empty system name")


@attrs.frozen(kw_only=True)
class DownstreamConfig:
    """A downstream system: its name, update lag, loss rate and outages.

    Invariants: ``system`` non-empty; ``failure_rate`` in [0, 1].
    """

    system: str = attrs.field(validator=_name)
    lag: Dist = Dist.fixed(0.0)
    failure_rate: float = attrs.field(default=0.0, validator=probability)
    outages: tuple[Window, ...] = ()

    def down_at(self, t: float) -> bool:
        """Whether the system is in an outage at kernel time ``t``."""
        return any(w.contains(t) for w in self.outages)


@attrs.frozen(kw_only=True)
class _Apply(Message):
    """Timer: write ``snapshot`` to the view now (its lag elapsed); ``status``
    is its projection for this system."""

    snapshot: SyncSnapshot
    status: str


class DownstreamSystem(Actor):
    """Finance, CRM or support: a lagging, lossy copy of each order's state.

    Args:
        config: the system.

    Attributes:
        received: snapshots received; ``applied``: written to the view;
        ``lost``: lost to failures or outages; ``stale``: older than the view
        (or equal) when their lag elapsed, and skipped.
    """

    def __init__(self, config: DownstreamConfig) -> None:
        self.config = config
        self._views: dict[str, SyncSnapshot] = {}
        self._status: dict[str, str] = {}
        # order -> view -> snapshots received with that view (keys their draws)
        self._syncs: dict[str, dict[str, int]] = {}
        # order -> snapshots still waiting out their lag, and the retired
        # orders among them: forgotten once their last snapshot landed.
        self._in_flight: dict[str, int] = {}
        self._retired: set[str] = set()
        self._keyed = KeyedRandom(lambda: self.ctx.rng.getrandbits(64))
        self.received = 0
        self.applied = 0
        self.lost = 0
        self.stale = 0

    def view(self, order_id: str) -> SyncSnapshot | None:
        """The snapshot this system holds for an order (None if it never got one)."""
        return self._views.get(order_id)

    def status(self, order_id: str) -> str | None:
        """The projected view of an order, as last emitted."""
        return self._status.get(order_id)

    @handler
    async def on_sync(self, msg: SyncOrder) -> None:
        """Take a snapshot in; it is applied after the lag unless lost."""
        self.received += 1
        # Both draws always happen so one fault setting does not shift the
        # random stream of the other. They are keyed by the order and the
        # view the snapshot brings (and how many times it came): common
        # random numbers, so other orders' traffic does not move them, and
        # under another policy the same update of the same order (say, to
        # "shipped") meets the same lag and loss even if the order's
        # snapshots before it differed. The seed is the only draw from ctx.rng.
        config = self.config
        order_id = msg.snapshot.order_id
        status = project(config.system, msg.snapshot)
        seen = self._syncs.get(order_id)
        if seen is None:  # not ``setdefault``: it would build a dict per call
            seen = self._syncs[order_id] = {}
        n = seen[status] = seen.get(status, 0) + 1
        rng = self._keyed.at(f"{order_id}/{status}/{n}")
        lag = config.lag.sample(rng)
        failed = rng.random() < config.failure_rate
        if failed or (config.outages and config.down_at(self.ctx.now())):
            self.lost += 1
            return
        self._in_flight[order_id] = self._in_flight.get(order_id, 0) + 1
        self.ctx.schedule(lag, _Apply(snapshot=msg.snapshot, status=status))

    @handler
    async def on_retired(self, msg: OrderRetired) -> None:
        """Forget a finished order's view, once the snapshots still on their
        way have landed (the order's last sync may be sent with its notice)."""
        if msg.order_id in self._in_flight:
            self._retired.add(msg.order_id)
        else:
            self._forget(msg.order_id)

    def _forget(self, order_id: str) -> None:
        self._views.pop(order_id, None)
        self._status.pop(order_id, None)
        self._syncs.pop(order_id, None)
        self._retired.discard(order_id)

    @handler
    async def on_apply(self, msg: _Apply) -> None:
        """Write the snapshot unless the system is down or already holds a newer one."""
        snapshot = msg.snapshot
        order_id = snapshot.order_id
        left = self._in_flight[order_id] - 1
        if left:
            self._in_flight[order_id] = left
        else:
            del self._in_flight[order_id]
        self._apply(msg)
        if not left and order_id in self._retired:
            self._forget(order_id)

    def _apply(self, msg: _Apply) -> None:
        snapshot = msg.snapshot
        config = self.config
        if config.outages and config.down_at(self.ctx.now()):
            self.lost += 1
            return
        current = self._views.get(snapshot.order_id)
        if current is not None and current.version >= snapshot.version:
            self.stale += 1
            return
        self._views[snapshot.order_id] = snapshot
        self.applied += 1
        status = msg.status
        if self._status.get(snapshot.order_id) != status:
            self._status[snapshot.order_id] = status
            self.ctx.emit(SystemViewChanged(
                order_id=snapshot.order_id, system=self.config.system, status=status,
            ))
