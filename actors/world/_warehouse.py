"""The simulated warehouse: stock, reservations, pickers, labels, carriers.

A :class:`~._protocol.WarehouseSubmit` is accepted when stock covers it
(the units are reserved) or when it asks for a backorder; it then waits for
a picker (first come, first served), is picked, packed and labelled (a
failed label is retried), ships, and is delivered after the carrier's
transit time (possibly reporting a delay first). Every answer is an order
event sent to the request's ``notify`` address under
``source="warehouse/<id>"`` (an emulator process:
``warehouse/<id>/<epoch>``, see :func:`~..order._sources.epoch_source`) and
a per-order ``source_seq``. Durations are
timers (never ``ctx.sleep``), so fulfillment orders overlap.

Rejection reasons: ``insufficient_stock`` (after a :class:`StockShortage`
to ``automation``) and ``damaged_goods`` (a random rejection found while
picking, before :class:`ItemsPicked`; the reservation is released).

Stock reports: the warehouse sends its free stock (:class:`StockLevels`)
to ``inventory`` when it starts, after each replenishment, and when it
rejects for insufficient stock a fulfillment order that its last report
said it could cover (the report was stale: a stock-out is reported once,
not once per rejection). No report per order.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from random import Random
from typing import Any, TypeVar

import attrs

from orderloom.runtime import Actor, Address, Message, TimerId, handler

from ..order._documents import probability
from ..order._sources import epoch_source
from ._dist import Dist, KeyedRandom, Window
from ..order._messages import (
    Delivered, Event, FulfillmentAccepted, FulfillmentCanceled, FulfillmentRejected, ItemsPicked,
    LabelCreated, LineQuantity, ShipmentDelayed, Shipped,
)
from ..coordinator._protocol import (
    OrderRetired, PickLine, StockLevel, StockLevels, StockShortage, WarehouseCancel,
    WarehouseSubmit,
)

__all__ = ["CarrierConfig", "Warehouse", "WarehouseConfig"]

AUTOMATION = Address("automation")
INVENTORY = Address("inventory")
E = TypeVar("E", bound=Event)


def _levels(levels: Mapping[str, int]) -> dict[str, int]:
    for sku, units in levels.items():
        if type(units) is not int or units < 0:
            raise ValueError(f"stock of {sku!r}: expected an int >= 0, got {units!r}")
    return dict(levels)


@attrs.frozen(kw_only=True)
class CarrierConfig:
    """A carrier: transit time and how often (and how long) it is late.

    Invariants: name non-empty; ``delay_rate`` in [0, 1].
    """

    name: str
    transit: Dist = Dist.fixed(86_400.0)
    delay_rate: float = attrs.field(default=0.0, validator=probability)
    delay: Dist = Dist.fixed(86_400.0)

    def __attrs_post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: expected a non-empty carrier name")


@attrs.frozen(kw_only=True)
class WarehouseConfig:
    """How a simulated warehouse behaves.

    Attributes:
        warehouse_id: names the warehouse (address ``warehouse/<id>``).
        stock: units on hand per SKU at start (unknown SKUs have none).
        replenish_every: period of replenishment; None: never.
        replenish_to: each replenishment raises a SKU's free stock to this level.
        pickers: fulfillment orders in pick/pack at once; the rest queue FIFO.
        pick: time to pick a fulfillment order.
        pack: time to pack it (a label is attempted at the end).
        label_failure_rate: probability that a label attempt fails.
        label_retry: wait before the next label attempt.
        carriers: one is drawn per shipment.
        reject_rate: probability that picking finds the goods damaged.
        outages: ``down`` windows: requests arriving then are ignored
            (work already accepted goes on).

    Invariants: ``pickers >= 1``; rates in [0, 1), so labels eventually
    succeed; at least one carrier; outage windows are ``down``.
    """

    warehouse_id: str
    stock: dict[str, int] = attrs.field(factory=dict, converter=_levels)
    replenish_every: float | None = None
    replenish_to: dict[str, int] = attrs.field(factory=dict, converter=_levels)
    pickers: int = 1
    pick: Dist = Dist.fixed(0.0)
    pack: Dist = Dist.fixed(0.0)
    label_failure_rate: float = attrs.field(default=0.0, validator=probability)
    label_retry: Dist = Dist.fixed(60.0)
    carriers: tuple[CarrierConfig, ...] = (CarrierConfig(name="post"),)
    reject_rate: float = attrs.field(default=0.0, validator=probability)
    outages: tuple[Window, ...] = ()

    def __attrs_post_init__(self) -> None:
        if not self.warehouse_id:
            raise ValueError("warehouse_id: expected a non-empty id")
        if self.pickers < 1:
            raise ValueError(f"pickers: expected >= 1, got {self.pickers!r}")
        if self.replenish_every is not None and not self.replenish_every > 0:
            raise ValueError(f"replenish_every: expected None or > 0, got {self.replenish_every!r}")
        if self.label_failure_rate >= 1:
            raise ValueError("label_failure_rate: expected < 1 (a label must be possible)")
        if not self.carriers:
            raise ValueError("carriers: expected at least one carrier")
        for w in self.outages:
            if w.mode != "down":
                raise ValueError(f"outages: a warehouse supports mode 'down', got {w.mode!r}")


class _Stage(enum.Enum):
    """Where a fulfillment order is inside the warehouse."""

    BACKORDERED = "backordered"
    QUEUED = "queued"
    PICKING = "picking"
    PACKING = "packing"
    LABELING = "labeling"  # waiting to retry a failed label
    IN_TRANSIT = "in_transit"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    CANCELED = "canceled"
    REJECTED = "rejected"


# Tuples, not frozensets: ``in`` a tuple compares by identity, ``in`` a
# frozenset calls ``Enum.__hash__`` (Python code).
_AT_PICKER = (_Stage.PICKING, _Stage.PACKING, _Stage.LABELING)
_CANCELABLE = (*_AT_PICKER, _Stage.BACKORDERED, _Stage.QUEUED)


@attrs.frozen(kw_only=True)
class _Step(Message):
    """Timer: fulfillment order ``key`` finished ``stage``."""

    key: str
    stage: _Stage


@attrs.frozen(kw_only=True)
class _Replenish(Message):
    """Timer: the periodic replenishment."""


@attrs.define
class _Job:
    submit: WarehouseSubmit
    stage: _Stage
    reserved: bool = False
    timer: TimerId | None = None
    late_by: float | None = None  # drawn at shipping: the carrier will be this late
    key: str = ""  # "<order>/<n>": the n-th fulfillment order of the order here
    draws: int = 0  # draw groups taken so far (pick, pack, label, ship...)


class Warehouse(Actor):
    """A warehouse with stock, reservations, picker capacity and carriers.

    A resubmission of a known fulfillment order id is ignored (the first
    submission's events stand). :class:`WarehouseCancel` before shipping
    releases the reservation and answers :class:`FulfillmentCanceled`;
    after shipping (or for an unknown or finished order) it is ignored.

    Args:
        config: the behaviour model.
        epoch: None in the simulator; an emulator process's own epoch, so
            its events (``source="warehouse/<id>/<epoch>"``, ids under it)
            never clash with those of an earlier run that counted from 1 too.
    """

    def __init__(self, config: WarehouseConfig, epoch: str | None = None) -> None:
        self.config = config
        self.source = epoch_source(f"warehouse/{config.warehouse_id}", epoch)
        # Tracking numbers count labels per run: an epoch keeps them unique too.
        self._label_prefix = f"{config.warehouse_id}-{epoch}" if epoch else config.warehouse_id
        self._free: dict[str, int] = dict(config.stock)
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._backorders: list[str] = []
        self._busy = 0
        self._seq: dict[str, int] = {}
        self._submits: dict[str, int] = {}  # order -> fulfillment orders received
        self._labels = 0
        self._keyed = KeyedRandom(lambda: self.ctx.rng.getrandbits(64))
        self._reported: dict[str, int] = {}  # the free stock of the last report

    def available(self, sku: str) -> int:
        """Free (unreserved) units of ``sku``."""
        return self._free.get(sku, 0)

    async def on_start(self) -> None:
        """Report the stock on hand and start the replenishment cycle, if any."""
        if self.config.replenish_every is not None:
            self.ctx.schedule(self.config.replenish_every, _Replenish())
        await self._report_stock()

    @handler
    async def on_submit(self, msg: WarehouseSubmit) -> None:
        """Accept (reserving stock, or as a backorder) or reject a fulfillment order."""
        key = msg.fulfillment_order_id
        if self._down() or key in self._jobs:
            return
        n = self._submits[msg.order_id] = self._submits.get(msg.order_id, 0) + 1
        job_key = f"{msg.order_id}/{n}"
        if self._covers(msg.lines):
            self._jobs[key] = _Job(submit=msg, stage=_Stage.QUEUED, key=job_key)
            self._reserve(self._jobs[key])
            await self._tell(msg, FulfillmentAccepted)
            self._queue.append(key)
            self._dispatch()
        elif msg.backorder:
            self._jobs[key] = _Job(submit=msg, stage=_Stage.BACKORDERED, key=job_key)
            self._backorders.append(key)
            await self._tell(msg, FulfillmentAccepted)
        else:
            self._jobs[key] = _Job(submit=msg, stage=_Stage.REJECTED, key=job_key)
            if self._covered_by(self._reported, msg.lines):
                await self._report_stock()  # the last report promised what is not here
            await self.ctx.send(AUTOMATION, StockShortage(
                order_id=msg.order_id, fulfillment_order_id=key,
                warehouse_id=self.config.warehouse_id, available=self._coverable(msg.lines)))
            await self._tell(msg, FulfillmentRejected, reason="insufficient_stock")

    @handler
    async def on_cancel(self, msg: WarehouseCancel) -> None:
        """Withdraw a fulfillment order that has not shipped."""
        job = self._jobs.get(msg.fulfillment_order_id)
        if self._down() or job is None or job.stage not in _CANCELABLE:
            return
        if job.timer is not None:
            self.ctx.cancel(job.timer)
        if job.stage in _AT_PICKER:
            self._busy -= 1
        elif job.stage is _Stage.QUEUED:
            self._queue.remove(msg.fulfillment_order_id)
        else:
            self._backorders.remove(msg.fulfillment_order_id)
        self._release(job)
        job.stage = _Stage.CANCELED
        await self._tell(job.submit, FulfillmentCanceled, notify=msg.notify,
                         reason="canceled_on_request")
        self._fill_backorders()
        self._dispatch()

    @handler
    async def on_retired(self, msg: OrderRetired) -> None:
        """Forget a finished order's fulfillment orders (only those no longer
        at a picker or waiting: work in progress is never dropped)."""
        for key in msg.fulfillment_order_ids:
            job = self._jobs.get(key)
            if job is not None and job.stage not in _CANCELABLE:
                if job.timer is not None:
                    self.ctx.cancel(job.timer)
                del self._jobs[key]
        self._seq.pop(msg.order_id, None)
        self._submits.pop(msg.order_id, None)

    @handler
    async def on_replenish(self, msg: _Replenish) -> None:
        """Top free stock up to the configured levels and fill backorders."""
        for sku, level in self.config.replenish_to.items():
            self._free[sku] = max(self._free.get(sku, 0), level)
        self._fill_backorders()
        self._dispatch()
        await self._report_stock()
        if self.config.replenish_every is not None:
            self.ctx.schedule(self.config.replenish_every, _Replenish())

    @handler
    async def on_step(self, msg: _Step) -> None:
        """Move a fulfillment order to its next stage when a duration elapses."""
        job = self._jobs.get(msg.key)
        if job is None:
            return  # the order was retired (its parcel's last scan is not reported)
        if job.stage is not msg.stage:
            return  # canceled meanwhile (its timer was cancelled; belt and braces)
        job.timer = None
        cfg, rng = self.config, self._draws(job)
        if msg.stage is _Stage.PICKING:
            if self._chance(cfg.reject_rate, rng):
                self._release(job)
                self._fill_backorders()
                self._finish_at_picker(job, _Stage.REJECTED)
                await self._tell(job.submit, FulfillmentRejected, reason="damaged_goods")
                return
            await self._tell(job.submit, ItemsPicked)
            self._start(job, _Stage.PACKING, cfg.pack.sample(rng))
        elif msg.stage in (_Stage.PACKING, _Stage.LABELING):
            if self._chance(cfg.label_failure_rate, rng):
                self._start(job, _Stage.LABELING, cfg.label_retry.sample(rng))
                return
            await self._ship(job)
        elif msg.stage is _Stage.IN_TRANSIT and job.late_by is not None:
            # Reported when the parcel was due, as carriers do.
            await self._tell(job.submit, ShipmentDelayed, reason="carrier_delay")
            self._start(job, _Stage.DELAYED, job.late_by)
        else:  # IN_TRANSIT on time, or DELAYED
            job.stage = _Stage.DELIVERED
            await self._tell(job.submit, Delivered)

    async def _ship(self, job: _Job) -> None:
        rng = self._draws(job)
        carrier = rng.choice(self.config.carriers)
        self._labels += 1
        tracking = f"{carrier.name}-{self._label_prefix}-{self._labels:06d}"
        if self._chance(carrier.delay_rate, rng):
            job.late_by = carrier.delay.sample(rng)
        submit = job.submit
        await self._tell(submit, LabelCreated, carrier=carrier.name, tracking_number=tracking)
        # The reservation leaves with the goods: free stock is unchanged.
        job.reserved = False
        self._finish_at_picker(job, _Stage.IN_TRANSIT)
        lines = tuple(LineQuantity(line_id=p.line_id, quantity=p.quantity) for p in submit.lines)
        await self._tell(submit, Shipped, lines=lines, tracking_number=tracking)
        self._start(job, _Stage.IN_TRANSIT, carrier.transit.sample(rng))

    def _finish_at_picker(self, job: _Job, stage: _Stage) -> None:
        job.stage = stage
        self._busy -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Give free pickers the oldest queued fulfillment orders."""
        while self._busy < self.config.pickers and self._queue:
            job = self._jobs[self._queue.popleft()]
            self._busy += 1
            self._start(job, _Stage.PICKING, self.config.pick.sample(self._draws(job)))

    def _start(self, job: _Job, stage: _Stage, duration: float) -> None:
        job.stage = stage
        job.timer = self.ctx.schedule(
            duration, _Step(key=job.submit.fulfillment_order_id, stage=stage))

    def _fill_backorders(self) -> None:
        """Reserve for backorders that stock now covers, oldest first."""
        for key in list(self._backorders):
            job = self._jobs[key]
            if self._covers(job.submit.lines):
                self._reserve(job)
                self._backorders.remove(key)
                job.stage = _Stage.QUEUED
                self._queue.append(key)

    @staticmethod
    def _needs(lines: tuple[PickLine, ...]) -> dict[str, int]:
        needs: dict[str, int] = {}
        for line in lines:
            needs[line.sku] = needs.get(line.sku, 0) + line.quantity
        return needs

    def _covers(self, lines: tuple[PickLine, ...]) -> bool:
        return all(self.available(sku) >= n for sku, n in self._needs(lines).items())

    def _covered_by(self, levels: dict[str, int], lines: tuple[PickLine, ...]) -> bool:
        return all(levels.get(sku, 0) >= n for sku, n in self._needs(lines).items())

    async def _report_stock(self) -> None:
        """Tell the coordinator's inventory what is free now, every SKU kept here."""
        self._reported = dict(self._free)
        await self.ctx.send(INVENTORY, StockLevels(
            warehouse_id=self.config.warehouse_id, as_of=self.ctx.now(),
            levels=tuple(StockLevel(sku=sku, units=n)
                         for sku, n in sorted(self._free.items()))))

    def _coverable(self, lines: tuple[PickLine, ...]) -> tuple[PickLine, ...]:
        """What free stock could cover of ``lines``, line by line in order."""
        left = dict(self._free)
        covered = []
        for line in lines:
            n = min(line.quantity, left.get(line.sku, 0))
            if n > 0:
                left[line.sku] -= n
                covered.append(PickLine(line_id=line.line_id, sku=line.sku, quantity=n))
        return tuple(covered)

    def _reserve(self, job: _Job) -> None:
        for sku, n in self._needs(job.submit.lines).items():
            self._free[sku] = self._free.get(sku, 0) - n
        job.reserved = True

    def _release(self, job: _Job) -> None:
        if job.reserved:
            for sku, n in self._needs(job.submit.lines).items():
                self._free[sku] = self._free.get(sku, 0) + n
            job.reserved = False

    async def _tell(self, submit: WarehouseSubmit, cls: type[E], *,
                    notify: Address | None = None, **fields: Any) -> None:
        order_id = submit.order_id
        seq = self._seq.get(order_id, 0) + 1
        self._seq[order_id] = seq
        event = cls(order_id=order_id, event_id=f"{self.source}:{order_id}:{seq}",
                    source=self.source, source_seq=seq, occurred_at=self.ctx.now(),
                    **{"fulfillment_order_id": submit.fulfillment_order_id, **fields})
        await self.ctx.send(notify if notify is not None else submit.notify, event)

    def _down(self) -> bool:
        outages = self.config.outages
        if not outages:  # the usual case: no generator, no clock read
            return False
        now = self.ctx.now()
        return any(w.contains(now) for w in outages)

    def _draws(self, job: _Job) -> KeyedRandom:
        """The job's next draw group, from the warehouse's keyed stream: a
        fulfillment order's pick, pack, label and carrier draws depend on
        the order and its place in them, not on what else the warehouse did
        (common random numbers across policies)."""
        job.draws += 1
        return self._keyed.at(f"{job.key}/{job.draws}")

    @staticmethod
    def _chance(rate: float, rng: Random) -> bool:
        # No draw for a zero rate: switching a fault off leaves other draws unchanged.
        return rate > 0 and rng.random() < rate
