"""Cross-order automation: intake, duplicate screening, the watchdog.

Per-order decisions run in each order's own actor (:mod:`._react`); what
needs a view across orders lives here:

- :class:`Intake` starts an Order actor for each new order and hands it the
  ``PlaceOrder``; ingested order events (Shopify) also come through it, so
  the order's actor is started or restored from its journal first.
- :class:`Automation` screens new orders for duplicates (same key inside the
  policy's window) and passes warehouses' stock shortages to their order.
- :class:`Watchdog` receives stuck-order reports and escalates them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from orderloom.runtime import (
    Actor,
    AskTimeout,
    DuplicateAddress,
    Message,
    PersistentActor,
    ReceiptedSend,
    Store,
    handler,
)

from ..order import _messages as m
from ._settings import OrderSettings
from ._order_actor import OrderActor
from ._protocol import Escalate, OrderUpdated, Screened, StockShortage, StuckReport, order_address

__all__ = ["Automation", "DuplicateWindow", "INGEST_HANDOFF_TIMEOUT", "Intake",
           "OrderKeyRecorded", "Watchdog"]

INGEST_HANDOFF_TIMEOUT = 3600.0
"""Kernel seconds intake waits for an order to take an ingested event (a hang
guard: the live kernel's clock may be scaled, so it is generous)."""


class Intake(Actor):
    """Starts one Order actor per order id and forwards ``PlaceOrder`` to it.

    Args:
        settings: what every order actor shares.
        store: where the order actors keep their journals.
        confirm_placements: on a kernel with receipts (the live one), forward
            a placement so that its acknowledgement to the broker waits for
            the order's turn to commit, not for intake's (a crash in between
            leaves it unacknowledged, and the broker redelivers it); intake
            goes on with the next placement meanwhile. Off in simulation,
            where nothing is acknowledged.
    """

    def __init__(self, settings: OrderSettings, store: Store, *,
                 confirm_placements: bool = False) -> None:
        self.settings = settings
        self.store = store
        self.confirm_placements = confirm_placements

    @handler
    async def on_place(self, command: m.PlaceOrder) -> None:
        """A new order, or a redelivery of one: the order's actor restores from
        its journal (even after it retired) and refuses to place it twice."""
        address = order_address(command.order_id)
        settings, store = self.settings, self.store
        order_id = command.order_id
        try:
            self.ctx.spawn(lambda: OrderActor(order_id, settings, store), address)
        except DuplicateAddress:
            pass  # a redelivery: the order's actor already runs
        ctx = self.ctx
        if self.confirm_placements and isinstance(ctx, ReceiptedSend):
            await ctx.forward(address, command, correlation_id=order_id)
        else:
            await ctx.send(address, command, correlation_id=order_id)

    @handler
    async def on_event(self, event: m.Event) -> None:
        """An ingested fact about an order (a Shopify webhook's events): start
        or restore the order's actor, and return once it has taken the event.

        Asked, not told: intake's turn (and so the acknowledgement of the
        ingested message) completes only after the order's turn committed.
        The order dedupes by event id, so a redelivery changes nothing."""
        address = order_address(event.order_id)
        settings, store = self.settings, self.store
        order_id = event.order_id
        try:
            self.ctx.spawn(lambda: OrderActor(order_id, settings, store), address)
        except DuplicateAddress:
            pass  # the order's actor already runs
        try:
            await self.ctx.ask(address, event, timeout=INGEST_HANDOFF_TIMEOUT)
        except AskTimeout:
            # The event is in the order's mailbox and will be taken; intake
            # only stops waiting, so one slow order cannot stall the rest.
            pass


@attrs.frozen(kw_only=True)
class OrderKeyRecorded(Message):
    """Event of the Automation actor's journal: a new order's duplicate key was
    seen at ``at``. Invariants: ``key`` is the policy's key of the order, as
    text; ``at`` is the kernel time it was screened."""

    order_id: str
    key: str
    at: float


class LatestByKey(Mapping[str, OrderKeyRecorded]):
    """The latest order screened per key: a dictionary ``settled`` with a
    small one, ``recent``, on top (a key in ``recent`` hides it in
    ``settled``). Immutable: neither dictionary is changed once it is given
    here; :meth:`with_` makes a new value that shares ``settled``.

    Adding an order copies only ``recent``. The two merge into a new
    ``settled``, dropping the orders more than ``horizon`` seconds older
    than the newest, once ``recent`` holds about the square root of
    ``settled``'s size, or once a ``horizon`` has passed since the last
    merge (so the orders of a past burst do not outstay the window when
    later traffic repeats a few keys). An order costs O(sqrt(W)) for W keys
    in the window, instead of the O(W) of copying one dictionary per order
    (a day's window at a million orders a day made each screening copy a
    million entries), and the mapping holds at most two windows' keys.

    Screening finds what a window dropping each order as it leaves would
    find as long as the kernel's time does not go backwards (it does not in
    a run; only a restart of ``serve`` with the wall clock set back could).
    """

    __slots__ = ("_merged_at", "_recent", "_settled")
    _settled: Mapping[str, OrderKeyRecorded]
    _recent: Mapping[str, OrderKeyRecorded]
    _merged_at: float

    _MIN_RECENT = 32  # below this, merging costs more than copying ``recent``

    def __init__(self, settled: Mapping[str, OrderKeyRecorded],
                 recent: Mapping[str, OrderKeyRecorded], merged_at: float = -math.inf) -> None:
        object.__setattr__(self, "_settled", settled)
        object.__setattr__(self, "_recent", recent)
        object.__setattr__(self, "_merged_at", merged_at)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"LatestByKey is immutable (cannot set {name!r})")

    def __reduce__(self) -> tuple[type[LatestByKey], tuple[object, ...]]:
        return LatestByKey, (self._settled, self._recent, self._merged_at)

    @property
    def settled(self) -> Mapping[str, OrderKeyRecorded]:
        """The merged part."""
        return self._settled

    @property
    def recent(self) -> Mapping[str, OrderKeyRecorded]:
        """The keys added since the last merge, over ``settled``."""
        return self._recent

    def with_(self, event: OrderKeyRecorded, horizon: float) -> LatestByKey:
        """These orders and ``event``, the latest of its key from now on."""
        recent = {**self._recent, event.key: event}
        at = event.at
        if at - self._merged_at <= horizon and (
                len(recent) < self._MIN_RECENT or len(recent) ** 2 <= len(self._settled)):
            return LatestByKey(self._settled, recent, self._merged_at)
        return LatestByKey({key: e for key, e in {**self._settled, **recent}.items()
                            if at - e.at <= horizon}, {}, at)

    def get(self, key: str, default: Any = None) -> Any:
        """The latest order of ``key``, or ``default`` (without raising on a miss,
        the common case: most orders bring a new key)."""
        found = self._recent.get(key)
        return found if found is not None else self._settled.get(key, default)

    def __getitem__(self, key: str) -> OrderKeyRecorded:
        found = self._recent.get(key)
        return found if found is not None else self._settled[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._recent
        yield from (key for key in self._settled if key not in self._recent)

    def __len__(self) -> int:
        return len(self._recent) + sum(1 for key in self._settled if key not in self._recent)

    def __repr__(self) -> str:
        return f"LatestByKey({dict(self)!r})"


@attrs.frozen(kw_only=True)
class DuplicateWindow:
    """The latest order screened per duplicate key. A fold of
    :class:`OrderKeyRecorded` events.

    It may still hold keys whose latest order left the policy's window (they
    are dropped in batches, see :class:`LatestByKey`): a screening checks
    the order's time. Stored as a plain mapping; a snapshot written while
    the window also kept its entries in order (``entries``) still decodes.
    """

    latest: Mapping[str, OrderKeyRecorded] = attrs.field(factory=dict)


class Automation(PersistentActor[DuplicateWindow]):
    """Duplicate screening across orders, and routing of stock shortages.

    Its duplicate window is the fold of its own journal: restarted, it
    screens the next order against the same recent orders.
    """

    snapshot_every = 256

    def __init__(self, settings: OrderSettings, store: Store) -> None:
        self.settings = settings
        super().__init__(store)

    def initial_state(self) -> DuplicateWindow:
        return DuplicateWindow()

    def evolve(self, window: DuplicateWindow, event: OrderKeyRecorded) -> DuplicateWindow:
        """Add ``event`` as its key's latest order (see :class:`LatestByKey`)."""
        latest = window.latest
        if not isinstance(latest, LatestByKey):  # a new window, or one decoded
            latest = LatestByKey(latest, {})
        return DuplicateWindow(latest=latest.with_(event, self.settings.policy.duplicates.window))

    @handler
    async def on_updated(self, msg: OrderUpdated) -> None:
        """A new order: is it a duplicate of a recent one?"""
        policy = self.settings.policy.duplicates
        duplicate_of = None
        if policy.detect and msg.state.placed:
            now, key = self.ctx.now(), repr(self._key(msg))
            # The latest order with this key, if still in the window (the
            # newest entry of a key expires last).
            before = self.state.latest.get(key)
            if (before is not None and now - before.at <= policy.window
                    and before.order_id != msg.order_id):
                duplicate_of = before.order_id
            self.record(OrderKeyRecorded(order_id=msg.order_id, key=key, at=now))
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
