"""The workload: customers placing orders (or, for validation, raw review cases).

The storefront draws from its own ``ctx.rng``, which the kernel seeds from
the replication seed and the actor's address only: the arrivals, order
contents and data faults of replication k are the same whatever the policy
(common random numbers). The truth about each order (fraud, address,
duplicates, declines) goes into :class:`Truths`, the oracle the simulated
world consults and the coordinator never sees.
"""

from __future__ import annotations

import bisect
import itertools

import attrs

from orderloom.actors.order import _messages as m
from orderloom.actors.coordinator._protocol import (
    CaseAssigned,
    CaseDecision,
    CustomerCancel,
    Decision,
    OrderTruth,
)
from orderloom.actors.coordinator._telemetry import CaseOpened
from orderloom.runtime import Actor, Address, Message, handler

from ._scenario import Demand, Scenario

__all__ = ["CaseSource", "Storefront", "Truths"]

_DEFAULT_TRUTH = OrderTruth()


class Truths:
    """The world's truth per order; only non-default truths are stored (memory)."""

    def __init__(self) -> None:
        self._truths: dict[str, OrderTruth] = {}

    def __call__(self, order_id: str) -> OrderTruth:
        return self._truths.get(order_id, _DEFAULT_TRUTH)

    def set(self, order_id: str, truth: OrderTruth) -> None:
        if truth != _DEFAULT_TRUTH:
            self._truths[order_id] = truth

    def forget(self, order_id: str) -> None:
        """Drop an order's truth (its order retired: nobody will ask again)."""
        self._truths.pop(order_id, None)

    def __len__(self) -> int:
        return len(self._truths)


@attrs.frozen(kw_only=True)
class _Arrive(Message):
    pass


@attrs.frozen(kw_only=True)
class _Later(Message):
    """A customer's later action: a duplicate order or a cancellation."""

    message: Message
    to: str


class Storefront(Actor):
    """Customers placing orders as the scenario's demand says, until ``horizon``."""

    def __init__(self, scenario: Scenario, truths: Truths) -> None:
        self.demand: Demand = scenario.demand
        self.horizon = scenario.horizon
        self.truths = truths
        catalog = scenario.catalog
        self.skus = [item.sku for item in catalog]
        self.prices = {item.sku: item.price for item in catalog}
        self.cumulative = list(itertools.accumulate(item.weight for item in catalog))
        self.max_rate = self.demand.max_rate()
        self.count = 0

    async def on_start(self) -> None:
        self._next()

    def _next(self) -> None:
        """Thinning: candidate arrivals at the peak rate, kept with rate(t)/peak."""
        rng, now = self.ctx.rng, self.ctx.now()
        t = now
        while True:
            t += rng.expovariate(self.max_rate)
            if t >= self.horizon:
                return
            if rng.random() * self.max_rate <= self.demand.rate(t):
                self.ctx.schedule(t - now, _Arrive())
                return

    @handler
    async def on_arrive(self, msg: _Arrive) -> None:
        rng, now, d = self.ctx.rng, self.ctx.now(), self.demand
        self.count += 1
        order_id = f"o{self.count}"
        customer = f"c{rng.randrange(d.customers)}"
        lines = self._lines()
        faults = d.faults
        fraud = rng.random() < faults.fraud
        bad_address = rng.random() < faults.bad_addresses
        truth = OrderTruth(
            fraudulent=fraud,
            risk_score=rng.uniform(0.85, 1.0) if fraud else rng.betavariate(1.2, 12.0),
            address_ok=not bad_address,
            address_fixable=not (bad_address and rng.random() < faults.unfixable_addresses),
            payment_declines=rng.random() < faults.declines,
        )
        self.truths.set(order_id, truth)
        place = m.PlaceOrder(order_id=order_id, command_id=f"place-{order_id}", issued_at=now,
                             issued_by="storefront", customer_id=customer, currency="EUR",
                             lines=lines)
        await self.ctx.send(Address("intake"), place, correlation_id=order_id)
        if rng.random() < faults.duplicate_orders:
            self.count += 1
            dup_id = f"o{self.count}"
            self.truths.set(dup_id, attrs.evolve(truth, duplicate_of=order_id))
            dup = attrs.evolve(place, order_id=dup_id, command_id=f"place-{dup_id}",
                               issued_at=now)
            delay = rng.uniform(60.0, 1800.0)
            self.ctx.schedule(delay, _Later(message=attrs.evolve(dup, issued_at=now + delay),
                                            to="intake"))
        if rng.random() < faults.cancellations:
            self.ctx.schedule(rng.uniform(300.0, 4 * 3600.0), _Later(
                message=CustomerCancel(order_id=order_id), to=f"order/{order_id}"))
        self._next()

    def _lines(self) -> tuple[m.LineItemSpec, ...]:
        rng, d = self.ctx.rng, self.demand
        count = min(d.max_lines, 1 + _geometric(rng.random(), d.lines_per_order - 1))
        total = self.cumulative[-1]
        chosen: dict[str, int] = {}
        for _ in range(count):
            sku = self.skus[bisect.bisect_left(self.cumulative, rng.random() * total)]
            qty = min(d.max_quantity, 1 + _geometric(rng.random(), d.quantity - 1))
            chosen[sku] = min(d.max_quantity, chosen.get(sku, 0) + qty)
        return tuple(m.LineItemSpec(line_id=f"l{i}", sku=sku, quantity=q,
                                    unit_price=self.prices[sku])
                     for i, (sku, q) in enumerate(sorted(chosen.items()), start=1))

    @handler
    async def on_later(self, msg: _Later) -> None:
        await self.ctx.send(Address(msg.to), msg.message)


def _geometric(u: float, mean_extra: float) -> int:
    """Extra items beyond the first: geometric with the given mean (0 → none)."""
    if mean_extra <= 0:
        return 0
    p = 1.0 / (1.0 + mean_extra)
    k = 0
    acc = p
    while u > acc and k < 50:
        k += 1
        acc += p * (1 - p) ** k
    return k


class CaseSource(Actor):
    """The M/M/c validation desk: Poisson cases straight into one team.

    It plays the automation's part for these cases: it opens them
    (``CaseOpened`` telemetry) and receives the decisions.
    """

    def __init__(self, team: str, rate_per_day: float, horizon: float) -> None:
        self.team = team
        self.rate = rate_per_day / 86400.0
        self.horizon = horizon
        self.count = 0

    async def on_start(self) -> None:
        self.ctx.schedule(self.ctx.rng.expovariate(self.rate), _Arrive())

    @handler
    async def on_arrive(self, msg: _Arrive) -> None:
        self.count += 1
        case_id = f"case{self.count}"
        now = self.ctx.now()
        self.ctx.emit(CaseOpened(order_id=case_id, case_id=case_id, reason="other",
                                 team=self.team, deadline=now + 86400.0,
                                 proposal=Decision.RELEASE))
        await self.ctx.send(Address(f"team/{self.team}"), CaseAssigned(
            order_id=case_id, case_id=case_id, reason="other", team=self.team,
            proposal=Decision.RELEASE, options=(Decision.RELEASE,), opened_at=now,
            deadline=now + 86400.0, notify=self.ctx.address))
        gap = self.ctx.rng.expovariate(self.rate)
        if now + gap < self.horizon:
            self.ctx.schedule(gap, _Arrive())

    @handler
    async def on_decision(self, msg: CaseDecision) -> None:
        """Decisions come back here; nothing further to do."""
