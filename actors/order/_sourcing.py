"""Sourcing: which warehouses an order's unassigned units are sent to.

:func:`choose_sources` is a pure function of the units to place, the
warehouses that have not failed the order yet (in the order they are
listed, which is the order of preference), what the coordinator believes
each of them has free (:class:`StockView`) and the policy's
:class:`~._policy.Sourcing` knob. The engine turns its answer into
``AssignWarehouse`` commands; nothing here runs.

The view is a belief, not the warehouses' truth, so every knob keeps
today's fallback: a warehouse that rejects a fulfillment order is marked
tried and the units go to the next one, and the shortage policy decides
once every warehouse has been tried. A line that no untried warehouse is
believed to have is still tried at the first of them (the view may be
behind a restock); it gets a fulfillment order of its own there, so that
its likely rejection does not take lines that warehouse has with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._messages import LineQuantity
from ._policy import Sourcing
from ._states import FulfillmentStatus, SourcingKind

if TYPE_CHECKING:
    from ._order_state import OrderState

__all__ = ["Need", "Source", "StockView", "choose_sources", "tried_warehouses",
           "unassigned_units"]

_GONE = (FulfillmentStatus.REJECTED, FulfillmentStatus.CANCELED)


def _positive(_: object, a: attrs.Attribute[Any], v: int) -> None:
    if not (isinstance(v, int) and v > 0):
        raise ValueError(f"{a.name} must be a positive integer, got {v!r}")


@attrs.frozen(kw_only=True)
class StockView:
    """What the coordinator believes each warehouse has free, per SKU.

    It holds each warehouse's latest stock report (``StockLevels``, folded by
    the Inventory actor from the messages warehouses send it): reports come
    when a warehouse starts, after each replenishment, and when it rejects
    a fulfillment order that its last report said it could cover. It never
    reads a warehouse's memory, so it can be wrong:

    - Stale high: units other orders took since the report are not
      subtracted. An order can be sent where the stock just ran out; the
      warehouse rejects it (and reports again), and the order goes on to
      the next warehouse as with ``first_listed``.
    - Stale low: units freed since the report (a canceled or damaged
      fulfillment order's reservation) count only from the next report,
      so a line may go to a less preferred warehouse.
    - Unknown: a warehouse that never reported is believed to have
      everything; with no reports at all every knob chooses as
      ``first_listed`` does.

    Invariant: every level is an int >= 0; ``as_of`` has a time for each
    warehouse in ``levels``.
    """

    levels: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    as_of: Mapping[str, float] = attrs.field(factory=dict)

    def units(self, warehouse_id: str, sku: str) -> int | None:
        """Believed free units of ``sku``; None when the warehouse never reported."""
        levels = self.levels.get(warehouse_id)
        if levels is None:
            return None
        return levels.get(sku, 0)

    def with_report(self, warehouse_id: str, levels: Mapping[str, int],
                    as_of: float) -> StockView:
        """The view once a warehouse's complete report is in; a report older
        than the one held (reordered on the way) changes nothing."""
        held = self.as_of.get(warehouse_id)
        if held is not None and as_of < held:
            return self
        return StockView(levels={**self.levels, warehouse_id: dict(levels)},
                         as_of={**self.as_of, warehouse_id: as_of})


@attrs.frozen(kw_only=True)
class Need:
    """Unassigned units of one order line. Invariant: ``quantity > 0``."""

    line_id: str
    sku: str
    quantity: int = attrs.field(validator=_positive)


@attrs.frozen(kw_only=True)
class Source:
    """One fulfillment order to create: ``lines`` (sorted by line id) at a warehouse."""

    warehouse_id: str
    lines: tuple[LineQuantity, ...]


class _Believed:
    """Units the view still believes free while one order's lines are placed
    (the scratchpad of one call)."""

    def __init__(self, view: StockView) -> None:
        self.view = view
        self.taken: dict[tuple[str, str], int] = {}

    def cover(self, warehouse_id: str, needs: Sequence[Need]) -> list[Need]:
        """The needs (in order) the warehouse is believed to cover together,
        besides what this call already placed there."""
        covered: list[Need] = []
        extra: dict[str, int] = {}
        for need in needs:
            units = self.view.units(warehouse_id, need.sku)
            using = self.taken.get((warehouse_id, need.sku), 0) + extra.get(need.sku, 0)
            if units is None or units - using >= need.quantity:
                covered.append(need)
                extra[need.sku] = extra.get(need.sku, 0) + need.quantity
        return covered

    def take(self, warehouse_id: str, needs: Sequence[Need]) -> None:
        for need in needs:
            key = (warehouse_id, need.sku)
            self.taken[key] = self.taken.get(key, 0) + need.quantity


def _lines(needs: Sequence[Need]) -> tuple[LineQuantity, ...]:
    return tuple(LineQuantity(line_id=n.line_id, quantity=n.quantity)
                 for n in sorted(needs, key=lambda n: n.line_id))


def choose_sources(needs: Sequence[Need], warehouses: Sequence[str], view: StockView,
                   sourcing: Sourcing) -> tuple[Source, ...]:
    """The fulfillment orders for ``needs`` across the untried ``warehouses``.

    - ``first_listed``: everything to the first warehouse.
    - ``stock_aware``: each line to the first warehouse believed to have it.
    - ``fewest_splits``: the warehouse believed to cover the most lines takes
      them (the whole order if one can; ties go to the one listed first),
      then the one covering most of the rest, and so on.

    Lines no warehouse is believed to have go, in a fulfillment order of
    their own, to the first warehouse (see the module docstring). Sources
    come in the warehouses' order, that one last. Lines are whole: a line is
    never split across warehouses here (the shortage policy may split it).

    Args:
        needs: the units to place, one per line.
        warehouses: the warehouses not yet tried, most preferred first.
        view: what the coordinator believes each warehouse has free.
        sourcing: the policy's knob.
    """
    if not needs or not warehouses:
        return ()
    if sourcing is Sourcing.FIRST_LISTED:
        return (Source(warehouse_id=warehouses[0], lines=_lines(needs)),)
    believed = _Believed(view)
    placed: dict[str, list[Need]] = {}
    left: list[Need] = []
    if sourcing is Sourcing.STOCK_AWARE:
        for need in needs:
            for wh in warehouses:
                if believed.cover(wh, (need,)):
                    believed.take(wh, (need,))
                    placed.setdefault(wh, []).append(need)
                    break
            else:
                left.append(need)
    else:  # FEWEST_SPLITS: greedy set cover, preference order breaking ties
        left = list(needs)
        candidates = list(warehouses)
        while left and candidates:
            best_wh, best = candidates[0], believed.cover(candidates[0], left)
            for wh in candidates[1:]:
                covered = believed.cover(wh, left)
                if len(covered) > len(best):
                    best_wh, best = wh, covered
            if not best:
                break
            believed.take(best_wh, best)
            placed[best_wh] = best
            candidates.remove(best_wh)
            left = [n for n in left if n not in best]
    sources = [Source(warehouse_id=wh, lines=_lines(placed[wh]))
               for wh in warehouses if wh in placed]
    if left:
        sources.append(Source(warehouse_id=warehouses[0], lines=_lines(left)))
    return tuple(sources)


def unassigned_units(s: OrderState) -> dict[str, int]:
    """Units per line id that no live fulfillment order of ``s`` covers."""
    owed = {li.line_id: li.quantity - li.canceled for li in s.line_items}
    for fo in s.fulfillment_orders:
        if fo.status in _GONE:
            continue
        for lq in fo.lines:
            owed[lq.line_id] = owed.get(lq.line_id, 0) - lq.quantity
    return {k: v for k, v in owed.items() if v > 0}


def tried_warehouses(s: OrderState, everywhere: int) -> set[str]:
    """Warehouses that failed the order since sourcing last started over.

    Sourcing starts over when a redrive round (with the warehouses it
    withdrew work from) finds every one of the ``everywhere`` warehouses tried.
    """
    tried: set[str] = set()
    in_round = False
    for step in s.sourcing:
        kind = step.kind
        if in_round and kind is not SourcingKind.WITHDRAWN:
            in_round = False  # the round is over: did it try them all?
            if len(tried) >= everywhere:
                tried = set()
        if kind is SourcingKind.REDRIVE:
            in_round = True
        elif step.warehouse_id is not None:
            tried.add(step.warehouse_id)
    if in_round and len(tried) >= everywhere:
        tried = set()
    return tried
