"""Standing up the coordinator's own actors on a kernel, either kernel."""

from __future__ import annotations

import attrs

from orderloom.runtime import Kernel, Store

from ._automation import Automation, Intake, Watchdog
from ._inventory import Inventory, StockBoard
from ._settings import OrderSettings

__all__ = ["COORDINATOR_ADDRESSES", "spawn_coordinator"]

COORDINATOR_ADDRESSES = ("intake", "automation", "inventory", "watchdog", "order/#")
"""The addresses the coordinator serves (``order/#``: every order actor, each
spawned by intake); everything else an order talks to is outside it."""


def spawn_coordinator(kernel: Kernel, settings: OrderSettings, store: Store, *,
                      live: bool = False) -> OrderSettings:
    """Spawn intake, automation, the inventory view and the watchdog on ``kernel``.

    The warehouses' stock reports reach the order engines through the
    Inventory actor's board (the coordinator's view, not the warehouses').
    ``live``: the coordinator takes messages from a broker, so intake
    confirms each placement with the order before it is acknowledged
    (``Intake``'s ``confirm_placements``).

    Returns:
        ``settings`` with that board: what every order actor of this
        coordinator shares.
    """
    board = StockBoard()
    settings = attrs.evolve(settings, stock=board)
    kernel.spawn(lambda: Intake(settings, store, confirm_placements=live), "intake")
    kernel.spawn(lambda: Automation(settings, store), "automation")
    kernel.spawn(lambda: Inventory(board, store), "inventory")
    kernel.spawn(Watchdog, "watchdog")
    return settings
