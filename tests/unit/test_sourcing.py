"""Sourcing as a pure choice: an order's lines and the stock view give its fulfillment orders."""

from __future__ import annotations

import pytest

from orderloom.actors import (
    LineQuantity,
    Need,
    Source,
    Sourcing,
    StockView,
    choose_sources,
)

FIRST, AWARE, FEWEST = Sourcing.FIRST_LISTED, Sourcing.STOCK_AWARE, Sourcing.FEWEST_SPLITS

Lines = tuple[tuple[str, str, int], ...]  # line id, sku, units
Levels = dict[str, dict[str, int]]  # warehouse -> sku -> free units (a warehouse's report)
Chosen = list[tuple[str, tuple[tuple[str, int], ...]]]  # warehouse, (line id, units)

TWO = ("W1", "W2")
THREE = ("W1", "W2", "W3")
A_B: Lines = (("l1", "A", 1), ("l2", "B", 1))


def _choose(sourcing: Sourcing, lines: Lines, levels: Levels,
            warehouses: tuple[str, ...] = TWO) -> Chosen:
    view = StockView()
    for wh, skus in levels.items():
        view = view.with_report(wh, skus, as_of=0.0)
    needs = [Need(line_id=line, sku=sku, quantity=n) for line, sku, n in lines]
    return [(s.warehouse_id, tuple((lq.line_id, lq.quantity) for lq in s.lines))
            for s in choose_sources(needs, warehouses, view, sourcing)]


# (sourcing, lines, what warehouses reported, warehouses untried) -> fulfillment orders
TABLE: list[tuple[str, Sourcing, Lines, Levels, tuple[str, ...], Chosen]] = [
    # first_listed: the whole order to the first untried warehouse, whatever the view says.
    ("first_listed, no view", FIRST, A_B, {}, TWO,
     [("W1", (("l1", 1), ("l2", 1)))]),
    ("first_listed ignores the view", FIRST, A_B, {"W1": {}, "W2": {"A": 9, "B": 9}}, TWO,
     [("W1", (("l1", 1), ("l2", 1)))]),
    ("first_listed after W1 failed", FIRST, A_B, {}, ("W2",),
     [("W2", (("l1", 1), ("l2", 1)))]),
    # stock_aware: each line to the first warehouse believed to have it.
    ("stock_aware, no report: as first_listed", AWARE, A_B, {}, TWO,
     [("W1", (("l1", 1), ("l2", 1)))]),
    ("stock_aware, W1 has it all", AWARE, A_B, {"W1": {"A": 1, "B": 1}, "W2": {"A": 5, "B": 5}},
     TWO, [("W1", (("l1", 1), ("l2", 1)))]),
    ("stock_aware splits by line, preference first", AWARE, A_B,
     {"W1": {"B": 3}, "W2": {"A": 3, "B": 3}}, TWO,
     [("W1", (("l2", 1),)), ("W2", (("l1", 1),))]),
    ("stock_aware counts units, not SKUs", AWARE, (("l1", "A", 3),),
     {"W1": {"A": 2}, "W2": {"A": 3}}, TWO, [("W2", (("l1", 3),))]),
    ("stock_aware adds up lines of one SKU", AWARE, (("l1", "A", 2), ("l2", "A", 2)),
     {"W1": {"A": 3}, "W2": {"A": 3}}, TWO, [("W1", (("l1", 2),)), ("W2", (("l2", 2),))]),
    ("stock_aware trusts a warehouse that never reported", AWARE, A_B, {"W1": {"B": 1}}, TWO,
     [("W1", (("l2", 1),)), ("W2", (("l1", 1),))]),
    ("stock_aware tries the first where none is believed, on its own", AWARE, A_B,
     {"W1": {"B": 1}, "W2": {"B": 1}}, TWO, [("W1", (("l2", 1),)), ("W1", (("l1", 1),))]),
    ("stock_aware, nothing anywhere", AWARE, A_B, {"W1": {}, "W2": {}}, TWO,
     [("W1", (("l1", 1), ("l2", 1)))]),
    ("stock_aware, only untried warehouses", AWARE, A_B, {"W1": {"A": 1, "B": 1}, "W2": {"A": 1}},
     ("W2",), [("W2", (("l1", 1),)), ("W2", (("l2", 1),))]),
    # fewest_splits: the warehouse covering most lines first, ties to the first listed.
    ("fewest_splits, no report: as first_listed", FEWEST, A_B, {}, TWO,
     [("W1", (("l1", 1), ("l2", 1)))]),
    ("fewest_splits keeps the order whole where stock_aware splits", FEWEST, A_B,
     {"W1": {"B": 3}, "W2": {"A": 3, "B": 3}}, TWO, [("W2", (("l1", 1), ("l2", 1)))]),
    ("fewest_splits, a tie goes to the first listed", FEWEST, A_B,
     {"W1": {"A": 1, "B": 1}, "W2": {"A": 1, "B": 1}}, TWO, [("W1", (("l1", 1), ("l2", 1)))]),
    ("fewest_splits, the most lines then the rest", FEWEST,
     (("l1", "A", 1), ("l2", "B", 1), ("l3", "C", 1)),
     {"W1": {"A": 1}, "W2": {"A": 1, "B": 1}, "W3": {"C": 1}}, THREE,
     [("W2", (("l1", 1), ("l2", 1))), ("W3", (("l3", 1),))]),
    ("fewest_splits counts units against one warehouse", FEWEST,
     (("l1", "A", 2), ("l2", "A", 2), ("l3", "B", 1)),
     {"W1": {"A": 3, "B": 1}, "W2": {"A": 4}}, TWO,
     [("W1", (("l1", 2), ("l3", 1))), ("W2", (("l2", 2),))]),
    ("fewest_splits tries the first where none is believed, on its own", FEWEST,
     (("l1", "A", 1), ("l2", "B", 1), ("l3", "C", 1)),
     {"W1": {"A": 1}, "W2": {"A": 1, "B": 1}}, TWO,
     [("W2", (("l1", 1), ("l2", 1))), ("W1", (("l3", 1),))]),
]


@pytest.mark.parametrize(("sourcing", "lines", "levels", "untried", "expected"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_choose_sources(sourcing: Sourcing, lines: Lines, levels: Levels,
                        untried: tuple[str, ...], expected: Chosen) -> None:
    """Each knob value turns lines and the view into the fulfillment orders of the table."""
    assert _choose(sourcing, lines, levels, untried) == expected


@pytest.mark.parametrize("sourcing", list(Sourcing))
def test_nothing_to_place_or_nowhere_to_place_it_chooses_nothing(sourcing: Sourcing) -> None:
    """No units, or no untried warehouse, give no fulfillment order."""
    assert choose_sources([], TWO, StockView(), sourcing) == ()
    assert choose_sources([Need(line_id="l1", sku="A", quantity=1)], (), StockView(),
                          sourcing) == ()


@pytest.mark.parametrize("sourcing", list(Sourcing))
def test_every_unit_is_placed_once(sourcing: Sourcing) -> None:
    """Whatever the view, the chosen fulfillment orders hold each line's units exactly once."""
    view = StockView().with_report("W1", {"A": 1}, 0.0).with_report("W2", {"B": 2, "C": 1}, 0.0)
    needs = [Need(line_id=f"l{i}", sku=sku, quantity=n)
             for i, (sku, n) in enumerate((("A", 1), ("B", 2), ("C", 2), ("D", 1)))]
    chosen = choose_sources(needs, THREE, view, sourcing)
    placed = sorted((lq.line_id, lq.quantity) for s in chosen for lq in s.lines)
    assert placed == [(n.line_id, n.quantity) for n in needs]
    assert all(s.lines and list(s.lines) == sorted(s.lines, key=lambda lq: lq.line_id)
               for s in chosen)


def test_view_keeps_each_warehouses_latest_report() -> None:
    """A later report replaces a warehouse's levels; an older one (reordered) changes nothing."""
    view = StockView().with_report("W1", {"A": 5, "B": 1}, as_of=10.0)
    assert (view.units("W1", "A"), view.units("W1", "C"), view.units("W2", "A")) == (5, 0, None)
    newer = view.with_report("W1", {"A": 2}, as_of=20.0)
    assert (newer.units("W1", "A"), newer.units("W1", "B")) == (2, 0)
    assert newer.with_report("W1", {"A": 9}, as_of=15.0) is newer
    assert view.units("W1", "A") == 5  # frozen: the older view is unchanged


def test_a_source_is_a_fulfillment_order_to_create() -> None:
    """A Source carries the warehouse and the line quantities an AssignWarehouse needs."""
    (source,) = choose_sources([Need(line_id="l2", sku="B", quantity=2),
                                Need(line_id="l1", sku="A", quantity=1)], TWO, StockView(), FIRST)
    assert source == Source(warehouse_id="W1", lines=(LineQuantity(line_id="l1", quantity=1),
                                                      LineQuantity(line_id="l2", quantity=2)))
