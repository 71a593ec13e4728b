"""The coordinator's inventory view: per-location stock as the warehouses report it.

Warehouses send :class:`~._protocol.StockLevels` to ``inventory`` (as a
WMS's inventory-level feed would): when they start, after each
replenishment, and when they reject a fulfillment order that their last
report said they could cover. The :class:`Inventory` actor folds the
reports into a :class:`~._sourcing.StockView` and sets it on the
:class:`StockBoard` that every order's engine reads when it sources (no
message per order). What the view can get wrong is said on ``StockView``.
"""

from __future__ import annotations

from orderloom.runtime import PersistentActor, Store, handler

from ._protocol import StockLevels
from ..order._sourcing import StockView

__all__ = ["Inventory", "StockBoard"]


class StockBoard:
    """The latest :class:`StockView`, shared by the coordinator's actors.

    Mutable on purpose: the :class:`Inventory` actor sets :attr:`view` after
    each report it folds (and when it is restored), and it alone; the order
    engines only read it, in their own turns. The view itself is frozen.
    """

    __slots__ = ("view",)

    def __init__(self) -> None:
        self.view = StockView()


class Inventory(PersistentActor[StockView]):
    """Folds warehouses' stock reports into the view on its board.

    Its state is the fold of its journal (the reports), so a restarted
    instance puts the same view back on the board.

    Args:
        board: where the view is published for the order engines.
        store: where the journal lives.
    """

    snapshot_every = 64

    def __init__(self, board: StockBoard, store: Store) -> None:
        self.board = board
        super().__init__(store)

    def initial_state(self) -> StockView:
        return StockView()

    def evolve(self, view: StockView, event: StockLevels) -> StockView:
        """The view with the report in (an older one than held changes nothing)."""
        return view.with_report(event.warehouse_id,
                                {level.sku: level.units for level in event.levels},
                                event.as_of)

    async def on_start(self) -> None:
        """Restore the view from the journal and publish it."""
        await super().on_start()
        self.board.view = self.state

    @handler
    async def on_levels(self, msg: StockLevels) -> None:
        """A warehouse reported its free stock (an older report than the one
        held, reordered on the way, is not recorded)."""
        held = self.state.as_of.get(msg.warehouse_id)
        if held is not None and msg.as_of < held:
            return
        self.record(msg)
        self.board.view = self.state
