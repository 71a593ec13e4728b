"""Downstream systems (finance, CRM, support): each keeps its own view of an order.

The coordinator pushes :class:`~._protocol.SyncOrder` snapshots; a
:class:`DownstreamSystem` applies one after a lag, unless the update is
lost (``failure_rate``, or an outage window at arrival or at apply time), in
which case its view stays stale until the next snapshot. A snapshot older
than the view (a lower ``version``, delivered out of order) never overwrites
it.

A system draws an update's lag and loss when the update arrives, so it
knows then when its view will change: it keeps the updates in their lag on
the order's timeline and says at once when each will land
(``SystemViewScheduled``), instead of setting a timer per update to wake
itself when the lag elapses. Its view of an order at any time is read off
the timeline; nothing has to happen at the moment an update lands.

:func:`~._views.project` (the coordinator's) is the one summary of a
snapshot per system. Both sides of the mismatch metric use it: the system
announces ``SystemViewScheduled(system, project(system, update), at)`` and
the coordinator emits ``SystemViewChanged("coordinator:<system>",
project(system, its own snapshot))``, so equal strings mean agreement.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, NamedTuple

import attrs

from orderloom.runtime import Actor, handler

from ..order._documents import probability
from ._dist import Dist, KeyedRandom, Window
from ..coordinator._protocol import OrderRetired, SyncOrder, SyncSnapshot
from ..coordinator._telemetry import SystemViewScheduled
from ..coordinator._views import project

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


class _Update(NamedTuple):
    """An update on an order's timeline: from ``due`` on, the view is
    ``snapshot`` (``version`` its version, ``status`` its projection).

    A ``NamedTuple`` (immutable) rather than an attrs class: one is built per
    update a system receives, and it is only ever read.
    """

    due: float
    version: int
    status: str
    snapshot: SyncSnapshot


class _Timeline:
    """One order as a system holds it: the update in its view, the updates
    still in their lag, and the views received.

    Mutable: changed only by :meth:`DownstreamSystem._receive` (through
    :meth:`settle`) and :meth:`DownstreamSystem.on_retired` (which marks it).

    Invariants: ``pending`` is in ascending ``due`` order with strictly
    ascending versions, all newer than ``snapshot``'s: an update overtaken
    by a newer one would land stale, so it is dropped when it is overtaken.
    """

    __slots__ = ("pending", "received", "retired", "snapshot", "status")

    def __init__(self) -> None:
        # The view, and its projection, as of the last update received (later
        # ones may have landed since: ``at`` reads the view at a given time).
        # Fields rather than the landed ``_Update``: one per order and system.
        self.snapshot: SyncSnapshot | None = None
        self.status: str | None = None
        # A tuple, rebuilt on change: it holds one or two updates, and most
        # of the time none (the empty tuple is shared, a list would not be).
        self.pending: tuple[_Update, ...] = ()
        # The views received, in order: an update's draws are keyed by its
        # view and how many times that view came. A tuple, not a counting
        # dict: an order brings each system two or three views (a dict would
        # be three times the size).
        self.received: tuple[str, ...] = ()
        self.retired = False  # the coordinator is done: forget once ``pending`` landed

    def at(self, now: float) -> tuple[SyncSnapshot | None, str | None]:
        """The view at ``now``, and its projection."""
        snapshot, status = self.snapshot, self.status
        for update in self.pending:
            if update.due > now:
                break
            snapshot, status = update.snapshot, update.status
        return snapshot, status

    def settle(self, now: float) -> None:
        """Move the updates that landed by ``now`` into the view."""
        pending = self.pending
        landed = 0
        while landed < len(pending) and pending[landed].due <= now:
            landed += 1
        if landed:
            last = pending[landed - 1]
            self.snapshot, self.status = last.snapshot, last.status
            self.pending = pending[landed:]

    def landed(self, now: float) -> bool:
        """Whether nothing is in its lag any more at ``now``."""
        return not self.pending or self.pending[-1].due <= now


class DownstreamSystem(Actor):
    """Finance, CRM or support: a lagging, lossy copy of each order's state.

    Args:
        config: the system.

    Attributes:
        received: snapshots received; ``applied``: written to the view (or
        to be, once their lag elapses); ``lost``: lost to failures or
        outages; ``stale``: older than the view (or equal) when their lag
        elapses, and skipped.
    """

    def __init__(self, config: DownstreamConfig) -> None:
        self.config = config
        self._orders: dict[str, _Timeline] = {}
        # (when its last update lands, order) for each retired order with
        # updates still in their lag: forgotten at the next message after that.
        self._retiring: list[tuple[float, str]] = []
        self._keyed = KeyedRandom(lambda: self.ctx.rng.getrandbits(64))
        self.received = 0
        self.applied = 0
        self.lost = 0
        self.stale = 0

    def view(self, order_id: str) -> SyncSnapshot | None:
        """The snapshot this system holds for an order now (None if it never
        got one, or forgot the order)."""
        return self._current(order_id)[0]

    def status(self, order_id: str) -> str | None:
        """The projected view of an order now."""
        return self._current(order_id)[1]

    def _current(self, order_id: str) -> tuple[SyncSnapshot | None, str | None]:
        timeline = self._orders.get(order_id)
        if timeline is None:
            return None, None
        now = self.ctx.now()
        if timeline.retired and timeline.landed(now):
            return None, None  # forgotten (at the latest by the next message)
        return timeline.at(now)

    @handler
    async def on_sync(self, msg: SyncOrder) -> None:
        """Take a snapshot in; it is applied after the lag unless lost."""
        self.received += 1
        now = self.ctx.now()
        if self._retiring:
            self._forget_landed(now)
        # Both draws always happen so one fault setting does not shift the
        # random stream of the other. They are keyed by the order and the
        # view the snapshot brings (and how many times it came): common
        # random numbers, so other orders' traffic does not move them, and
        # under another policy the same update of the same order (say, to
        # "shipped") meets the same lag and loss even if the order's
        # snapshots before it differed. The seed is the only draw from ctx.rng.
        config = self.config
        snapshot = msg.snapshot
        order_id = snapshot.order_id
        status = project(config.system, snapshot)
        timeline = self._orders.get(order_id)
        if timeline is None:
            timeline = self._orders[order_id] = _Timeline()
        received = timeline.received
        timeline.received = (*received, status)
        rng = self._keyed.at(f"{order_id}/{status}/{received.count(status) + 1}")
        lag = config.lag.sample(rng)
        failed = rng.random() < config.failure_rate
        due = now + lag
        # Down when it arrives, or when its lag elapses: lost either way.
        if failed or (config.outages and (config.down_at(now) or config.down_at(due))):
            self.lost += 1
            return
        self._receive(timeline, _Update(due, snapshot.version, status, snapshot), now)

    def _receive(self, timeline: _Timeline, update: _Update, now: float) -> None:
        """Put an update on the order's timeline and announce what that changes.

        Updates apply in the order of their due times, and an update no
        newer than the view when it lands is skipped: so an update is stale
        if one at least as new lands first, and it makes stale the older
        updates it overtakes (they land after it).
        """
        timeline.settle(now)
        pending = timeline.pending
        i = len(pending)
        while i and pending[i - 1].due > update.due:  # from the end: usually it goes last
            i -= 1
        # The view just before it lands: its version, and its projection.
        newest: int | None
        shown: str | None
        if i:
            newest, shown = pending[i - 1].version, pending[i - 1].status
        elif timeline.snapshot is not None:
            newest, shown = timeline.snapshot.version, timeline.status
        else:
            newest, shown = None, None
        if newest is not None and newest >= update.version:
            self.stale += 1
            return
        overtaken = i
        while overtaken < len(pending) and pending[overtaken].version <= update.version:
            overtaken += 1
        dropped = overtaken - i
        self.stale += dropped  # they would land after it, older: skipped
        self.applied += 1 - dropped
        timeline.pending = pending = (*pending[:i], update, *pending[overtaken:])
        if not dropped and i == len(pending) - 1 and shown == update.status:
            return  # the view's course does not change
        # This update, and the newer ones after it (which an announcement of
        # it would replace), from its due time on.
        system, order_id = self.config.system, update.snapshot.order_id
        for later in pending[i:]:
            self.ctx.emit(SystemViewScheduled(order_id=order_id, system=system,
                                              status=later.status, at=later.due))

    @handler
    async def on_retired(self, msg: OrderRetired) -> None:
        """Forget a finished order's view, once the snapshots still on their
        way have landed (the order's last sync may be sent with its notice)."""
        now = self.ctx.now()
        if self._retiring:
            self._forget_landed(now)
        timeline = self._orders.get(msg.order_id)
        if timeline is None:
            return
        if timeline.landed(now):
            del self._orders[msg.order_id]
            return
        timeline.retired = True
        heappush(self._retiring, (timeline.pending[-1].due, msg.order_id))

    def _forget_landed(self, now: float) -> None:
        """Forget the retired orders whose last update has landed by ``now``."""
        retiring = self._retiring
        while retiring and retiring[0][0] <= now:
            _, order_id = heappop(retiring)
            timeline = self._orders.get(order_id)
            if timeline is None or not timeline.retired:
                continue  # already forgotten (and perhaps synced anew since)
            if timeline.landed(now):
                del self._orders[order_id]
            else:  # an update came after the notice: wait for it too
                heappush(retiring, (timeline.pending[-1].due, order_id))
