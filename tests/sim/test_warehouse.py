"""The simulated warehouse under the SimPy kernel: stock, pickers, labels, carriers, outages."""

from __future__ import annotations

from typing import Any

import pytest

from orderloom.actors import (
    CarrierConfig,
    Delivered,
    Dist,
    Event,
    FulfillmentRejected,
    ItemsPicked,
    LabelCreated,
    LineQuantity,
    PickLine,
    Shipped,
    StockLevel,
    StockLevels,
    StockShortage,
    Warehouse,
    WarehouseCancel,
    WarehouseConfig,
    WarehouseSubmit,
    Window,
)
from orderloom.runtime import Actor, Address, Message, handler
from orderloom.simulation import SimKernel

REC = Address("rec")
WH = "warehouse/W1"


class Recorder(Actor):
    """Keeps every order event, stock shortage and stock report it is sent, with its arrival time."""

    def __init__(self) -> None:
        self.got: list[tuple[float, Message]] = []

    @handler(Event, StockShortage, StockLevels)
    async def on_message(self, msg: Message) -> None:
        self.got.append((self.ctx.now(), msg))


def _config(**overrides: Any) -> WarehouseConfig:
    base: dict[str, Any] = dict(
        warehouse_id="W1", stock={"A": 10, "B": 4}, pickers=1, pick=Dist.fixed(10.0),
        pack=Dist.fixed(5.0), carriers=(CarrierConfig(name="dhl", transit=Dist.fixed(100.0)),),
    )
    return WarehouseConfig(**{**base, **overrides})


def _world(config: WarehouseConfig, seed: int = 0) -> tuple[SimKernel, Warehouse, Recorder]:
    kernel = SimKernel(seed=seed)
    kernel.spawn(lambda: Warehouse(config), WH)
    kernel.spawn(Recorder, REC)
    kernel.spawn(Recorder, "automation")
    kernel.spawn(Recorder, "inventory")
    wh, rec = kernel.actor(WH), kernel.actor(REC)
    assert isinstance(wh, Warehouse) and isinstance(rec, Recorder)
    return kernel, wh, rec


def _submit(fo: str, *lines: tuple[str, int], order: str = "o1",
            backorder: bool = False) -> WarehouseSubmit:
    picks = tuple(PickLine(line_id=f"{fo}-{i}", sku=sku, quantity=q)
                  for i, (sku, q) in enumerate(lines))
    return WarehouseSubmit(order_id=order, fulfillment_order_id=fo, lines=picks, notify=REC,
                           backorder=backorder)


def _cancel(fo: str, order: str = "o1") -> WarehouseCancel:
    return WarehouseCancel(order_id=order, fulfillment_order_id=fo, notify=REC)


def _trace(rec: Recorder, fo: str | None = None) -> list[tuple[float, str]]:
    return [(t, type(e).__name__) for t, e in rec.got
            if fo is None or getattr(e, "fulfillment_order_id", None) == fo]


def test_happy_path_timeline_is_exact() -> None:
    """Accept at 0, picked at 10, label and shipment at 15, delivered at 115, seqs 1..5."""
    kernel, wh, rec = _world(_config())
    kernel.tell(WH, _submit("f1", ("A", 2), ("B", 1)))
    kernel.run()
    assert _trace(rec) == [(0.0, "FulfillmentAccepted"), (10.0, "ItemsPicked"),
                           (15.0, "LabelCreated"), (15.0, "Shipped"), (115.0, "Delivered")]
    events = [e for _, e in rec.got]
    assert all(isinstance(e, Event) for e in events)
    assert [(e.source, e.source_seq, e.occurred_at) for e in events if isinstance(e, Event)] == [
        (WH, 1, 0.0), (WH, 2, 10.0), (WH, 3, 15.0), (WH, 4, 15.0), (WH, 5, 115.0)]
    assert len({e.event_id for e in events if isinstance(e, Event)}) == 5
    label, shipped = events[2], events[3]
    assert isinstance(label, LabelCreated) and isinstance(shipped, Shipped)
    assert label.carrier == "dhl" and shipped.tracking_number == label.tracking_number
    assert shipped.lines == (LineQuantity(line_id="f1-0", quantity=2),
                             LineQuantity(line_id="f1-1", quantity=1))
    assert (wh.available("A"), wh.available("B")) == (8, 3)


def test_picker_capacity_makes_the_third_order_wait() -> None:
    """With two pickers, the third fulfillment order starts when the first ships (t=15)."""
    kernel, _, rec = _world(_config(pickers=2))
    for fo, order in (("f1", "o1"), ("f2", "o2"), ("f3", "o3")):
        kernel.tell(WH, _submit(fo, ("A", 1), order=order))
    kernel.run()
    picked = {e.fulfillment_order_id: t for t, e in rec.got if isinstance(e, ItemsPicked)}
    assert picked == {"f1": 10.0, "f2": 10.0, "f3": 25.0}
    assert _trace(rec, "f3")[-1] == (130.0, "Delivered")


def test_insufficient_stock_reports_shortage_then_rejects() -> None:
    """Without backorder, a shortage goes to automation with what is coverable, then a rejection."""
    kernel, wh, rec = _world(_config())
    kernel.tell(WH, _submit("f1", ("A", 3), ("B", 6), ("C", 1)))
    kernel.run()
    auto = kernel.actor("automation")
    assert isinstance(auto, Recorder)
    ((t, shortage),) = auto.got
    assert t == 0.0 and isinstance(shortage, StockShortage)
    assert (shortage.fulfillment_order_id, shortage.warehouse_id) == ("f1", "W1")
    assert shortage.available == (PickLine(line_id="f1-0", sku="A", quantity=3),
                                  PickLine(line_id="f1-1", sku="B", quantity=4))
    ((_, rejected),) = rec.got
    assert isinstance(rejected, FulfillmentRejected) and rejected.reason == "insufficient_stock"
    assert (wh.available("A"), wh.available("B")) == (10, 4)


def test_stock_is_reported_at_start_after_replenishment_and_when_a_report_went_stale() -> None:
    """Free stock goes to inventory at start, after each replenishment, and on a rejection
    its last report would have covered (once: a known stock-out is not reported again)."""
    config = _config(stock={"A": 3, "B": 4}, replenish_every=100.0, replenish_to={"A": 3})
    kernel, _, rec = _world(config)
    for at, fo in ((1.0, "f1"), (2.0, "f2"), (3.0, "f3")):
        kernel.tell(WH, _submit(fo, ("A", 2), order=fo), delay=at)
    kernel.run(until=150)
    assert [(t, type(e).__name__) for t, e in rec.got] == [
        (1.0, "FulfillmentAccepted"), (2.0, "FulfillmentRejected"),
        (3.0, "FulfillmentRejected"), (11.0, "ItemsPicked"), (16.0, "LabelCreated"),
        (16.0, "Shipped"), (116.0, "Delivered")]
    inventory = kernel.actor("inventory")
    assert isinstance(inventory, Recorder)

    def levels(**units: int) -> tuple[StockLevel, ...]:
        return tuple(StockLevel(sku=sku, units=n) for sku, n in units.items())

    assert inventory.got == [
        (0.0, StockLevels(warehouse_id="W1", levels=levels(A=3, B=4), as_of=0.0)),
        (2.0, StockLevels(warehouse_id="W1", levels=levels(A=1, B=4), as_of=2.0)),
        (100.0, StockLevels(warehouse_id="W1", levels=levels(A=3, B=4), as_of=100.0)),
    ]


def test_lines_sharing_a_sku_are_counted_together() -> None:
    """Two lines of the same SKU must be covered together, not each on its own."""
    kernel, _, rec = _world(_config())
    kernel.tell(WH, _submit("f1", ("B", 3), ("B", 3)))
    kernel.run()
    assert _trace(rec) == [(0.0, "FulfillmentRejected")]


def test_backorder_is_filled_after_replenishment() -> None:
    """A backordered fulfillment order is accepted at once and picked after the next replenishment."""
    config = _config(stock={"A": 0}, replenish_every=100.0, replenish_to={"A": 5})
    kernel, wh, rec = _world(config)
    kernel.tell(WH, _submit("f1", ("A", 2), backorder=True), delay=1.0)
    kernel.run(until=500)
    assert _trace(rec) == [(1.0, "FulfillmentAccepted"), (110.0, "ItemsPicked"),
                           (115.0, "LabelCreated"), (115.0, "Shipped"), (215.0, "Delivered")]
    assert wh.available("A") == 5  # topped up again at t=200


def test_cancel_before_shipping_releases_stock_and_frees_the_picker() -> None:
    """Cancelling queued and picking orders answers FulfillmentCanceled, frees stock and picker."""
    kernel, wh, rec = _world(_config())
    kernel.tell(WH, _submit("f1", ("A", 4)))
    kernel.tell(WH, _submit("f2", ("A", 1), order="o2"))
    kernel.tell(WH, _cancel("f2", order="o2"), delay=2.0)
    kernel.tell(WH, _cancel("f1"), delay=3.0)
    kernel.tell(WH, _submit("f3", ("A", 1), order="o3"), delay=4.0)
    kernel.run()
    assert _trace(rec, "f1") == [(0.0, "FulfillmentAccepted"), (3.0, "FulfillmentCanceled")]
    assert _trace(rec, "f2") == [(0.0, "FulfillmentAccepted"), (2.0, "FulfillmentCanceled")]
    assert _trace(rec, "f3")[1] == (14.0, "ItemsPicked")
    assert wh.available("A") == 9


def test_cancel_after_shipping_is_ignored() -> None:
    """Once shipped, a cancel produces no event and delivery still happens."""
    kernel, _, rec = _world(_config())
    kernel.tell(WH, _submit("f1", ("A", 1)))
    kernel.tell(WH, _cancel("f1"), delay=50.0)
    kernel.run()
    assert [name for _, name in _trace(rec)] == [
        "FulfillmentAccepted", "ItemsPicked", "LabelCreated", "Shipped", "Delivered"]


def test_failed_labels_are_retried_after_label_retry() -> None:
    """A failed label attempt is retried label_retry later until one succeeds."""
    kernel, _, rec = _world(_config(label_failure_rate=0.9, label_retry=Dist.fixed(30.0)), seed=1)
    kernel.tell(WH, _submit("f1", ("A", 1)))
    kernel.run()
    (t_label,) = [t for t, name in _trace(rec) if name == "LabelCreated"]
    assert t_label > 15.0 and (t_label - 15.0) % 30.0 == 0.0
    assert _trace(rec)[-2:] == [(t_label, "Shipped"), (t_label + 100.0, "Delivered")]


def test_carrier_delay_is_reported_when_due_then_delivered_late() -> None:
    """A late carrier reports ShipmentDelayed at the due time and delivers after the delay."""
    carrier = CarrierConfig(name="ups", transit=Dist.fixed(100.0), delay_rate=1.0,
                            delay=Dist.fixed(50.0))
    kernel, _, rec = _world(_config(carriers=(carrier,)))
    kernel.tell(WH, _submit("f1", ("A", 1)))
    kernel.run()
    assert _trace(rec)[-3:] == [(15.0, "Shipped"), (115.0, "ShipmentDelayed"),
                                (165.0, "Delivered")]
    assert isinstance(rec.got[-1][1], Delivered)


def test_damaged_goods_reject_before_picking_completes() -> None:
    """With reject_rate=1 the order is rejected as damaged at pick time and its stock released."""
    kernel, wh, rec = _world(_config(reject_rate=1.0))
    kernel.tell(WH, _submit("f1", ("A", 2)))
    kernel.run()
    assert _trace(rec) == [(0.0, "FulfillmentAccepted"), (10.0, "FulfillmentRejected")]
    rejected = rec.got[-1][1]
    assert isinstance(rejected, FulfillmentRejected) and rejected.reason == "damaged_goods"
    assert wh.available("A") == 10


def test_down_window_ignores_requests() -> None:
    """Submits and cancels arriving in a down window are ignored; work already accepted goes on."""
    kernel, _, rec = _world(_config(outages=(Window(start=5.0, end=20.0),)))
    kernel.tell(WH, _submit("f1", ("A", 1)))
    kernel.tell(WH, _cancel("f1"), delay=6.0)
    kernel.tell(WH, _submit("f2", ("A", 1), order="o2"), delay=7.0)
    kernel.tell(WH, _submit("f3", ("A", 1), order="o3"), delay=20.0)
    kernel.run()
    assert _trace(rec, "f1")[-1] == (115.0, "Delivered")
    assert _trace(rec, "f2") == []
    assert _trace(rec, "f3")[:2] == [(20.0, "FulfillmentAccepted"), (30.0, "ItemsPicked")]


def test_duplicate_submit_is_ignored() -> None:
    """Resubmitting a known fulfillment order id neither reserves twice nor answers again."""
    kernel, wh, rec = _world(_config())
    kernel.tell(WH, _submit("f1", ("A", 2)))
    kernel.tell(WH, _submit("f1", ("A", 2)), delay=1.0)
    kernel.run()
    assert len(_trace(rec)) == 5 and wh.available("A") == 8


def test_source_seq_is_per_order() -> None:
    """Two fulfillment orders of one order share its seq counter; another order starts at 1."""
    kernel, _, rec = _world(_config(pickers=3))
    kernel.tell(WH, _submit("f1", ("A", 1)))
    kernel.tell(WH, _submit("f2", ("B", 1)))
    kernel.tell(WH, _submit("g1", ("A", 1), order="o2"))
    kernel.run()
    for order in ("o1", "o2"):
        seqs = [e.source_seq for _, e in rec.got if isinstance(e, Event) and e.order_id == order]
        assert seqs == list(range(1, len(seqs) + 1))
    assert len([e for _, e in rec.got if isinstance(e, Event) and e.order_id == "o1"]) == 10


def test_config_rejects_nonsense() -> None:
    """Negative stock, no pickers, certain label failure and non-down outages are refused."""
    with pytest.raises(ValueError, match="stock"):
        _config(stock={"A": -1})
    with pytest.raises(ValueError, match="pickers"):
        _config(pickers=0)
    with pytest.raises(ValueError, match="label_failure_rate"):
        _config(label_failure_rate=1.0)
    with pytest.raises(ValueError, match="outages"):
        _config(outages=(Window(start=0, end=1, mode="slow"),))


def test_an_orders_service_times_do_not_depend_on_other_orders() -> None:
    """Common random numbers: o1's pick, pack, label and carrier draws are keyed by
    the order, so the same seed gives o1 the same durations whether or not other
    orders (another policy's extra work) were served first. (Enough pickers that
    nobody queues: waiting for a picker is the other orders' real effect.)"""
    cfg = _config(pickers=16, stock={"A": 50}, pick=Dist.exponential(60.0),
                  pack=Dist.exponential(30.0), label_failure_rate=0.3,
                  carriers=(CarrierConfig(name="dhl", transit=Dist.exponential(500.0),
                                          delay_rate=0.5, delay=Dist.exponential(300.0)),
                            CarrierConfig(name="ups", transit=Dist.exponential(900.0))))

    def durations(others: int) -> list[tuple[float, str]]:
        kernel, _, rec = _world(cfg, seed=3)
        for i in range(others):
            kernel.tell(WH, _submit(f"x{i}", ("A", 1), order=f"other{i}"))
        kernel.tell(WH, _submit("F1", ("A", 2)), delay=1.0)
        kernel.run(until=100_000)
        trace = [(t, e) for t, e in rec.got if getattr(e, "fulfillment_order_id", "") == "F1"]
        start = trace[0][0]
        return [(round(t - start, 9), type(e).__name__ + getattr(e, "carrier", "") or "")
                for t, e in trace]

    alone = durations(0)
    assert [name for _, name in alone][:2] == ["FulfillmentAccepted", "ItemsPicked"]
    assert durations(3) == alone
    assert durations(7) == alone
