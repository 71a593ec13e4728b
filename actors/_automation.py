"""Cross-order automation: intake, duplicate screening, the watchdog.

Per-order decisions run in each order's own actor (:mod:`._engine`); what
needs a view across orders lives here:

- :class:`Intake` starts an Order actor for each new order and hands it the
  ``PlaceOrder``.
- :class:`Automation` screens new orders for duplicates (same key inside the
  policy's window) and passes warehouses' stock shortages to their order.
- :class:`Watchdog` receives stuck-order reports and escalates them.
"""

from __future__ import annotations

from collections import deque

import attrs

from orderloom.runtime import Actor, DuplicateAddress, handler

from . import _messages as m
from ._engine import OrderSettings
from ._order_actor import OrderActor
from ._protocol import Escalate, OrderUpdated, Screened, StockShortage, StuckReport, order_address

__all__ = ["Automation", "Intake", "Watchdog"]


class Intake(Actor):
    """Starts one Order actor per order id and forwards ``PlaceOrder`` to it."""

    def __init__(self, settings: OrderSettings) -> None:
        self.settings = settings

    @handler
    async def on_place(self, command: m.PlaceOrder) -> None:
        """A new order (or a redelivery of one: the order dedupes it)."""
        address = order_address(command.order_id)
        settings = self.settings
        order_id = command.order_id
        try:
            self.ctx.spawn(lambda: OrderActor(order_id, settings), address)
        except DuplicateAddress:
            pass  # a redelivery: the order's actor already runs
        await self.ctx.send(address, command, correlation_id=order_id)


@attrs.frozen(kw_only=True)
class _Seen:
    key: tuple[object, ...]
    order_id: str
    at: float


class Automation(Actor):
    """Duplicate screening across orders, and routing of stock shortages."""

    def __init__(self, settings: OrderSettings) -> None:
        self.settings = settings
        self._recent: deque[_Seen] = deque()
        self._index: dict[tuple[object, ...], _Seen] = {}

    @handler
    async def on_updated(self, msg: OrderUpdated) -> None:
        """A new order: is it a duplicate of a recent one?"""
        policy = self.settings.policy.duplicates
        duplicate_of = None
        state = msg.state
        if policy.detect and state.placed:
            now = self.ctx.now()
            while self._recent and now - self._recent[0].at > policy.window:
                old = self._recent.popleft()
                if self._index.get(old.key) is old:
                    del self._index[old.key]
            key = self._key(msg)
            seen = self._index.get(key)
            if seen is not None and seen.order_id != msg.order_id:
                duplicate_of = seen.order_id
            entry = _Seen(key=key, order_id=msg.order_id, at=now)
            self._recent.append(entry)
            self._index[key] = entry
        await self.ctx.send(order_address(msg.order_id),
                            Screened(order_id=msg.order_id, duplicate_of=duplicate_of))

    def _key(self, msg: OrderUpdated) -> tuple[object, ...]:
        s = msg.state
        parts: list[object] = []
        for field in self.settings.policy.duplicates.key:
            if field == "customer_id":
                parts.append(s.customer_id)
            elif field == "amount":
                parts.append(s.amount_due)
            elif field == "lines":
                parts.append(tuple(sorted((li.sku, li.quantity) for li in s.line_items)))
            else:  # "address": the simulated workload has none; customer stands in
                parts.append(s.customer_id)
        return tuple(parts)

    @handler
    async def on_shortage(self, msg: StockShortage) -> None:
        """A warehouse's shortage report goes to the order it concerns."""
        await self.ctx.send(order_address(msg.order_id), msg)


class Watchdog(Actor):
    """Surfaces stuck orders and escalates them to their owners' escalation team."""

    def __init__(self) -> None:
        self.reports = 0

    @handler
    async def on_stuck(self, msg: StuckReport) -> None:
        """An order missed its stage deadline."""
        self.reports += 1
        await self.ctx.send(order_address(msg.order_id), Escalate(
            order_id=msg.order_id, stage=msg.stage, reason=msg.reason, hold_id=msg.hold_id))
