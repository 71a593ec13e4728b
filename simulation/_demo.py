"""A small checkout model on the SimPy kernel (the demo the CLI runs).

Customers place orders with a shop; the shop asks a payment gateway to
authorize each one (latency, declines and an outage window), and tells the
customer the outcome. Messages on the gateway link can be duplicated and
delayed. It exercises every kernel feature the domain will rely on: send,
ask with timeouts, timers, seeded per-actor randomness, supervision, link
faults, actor outages and tracing.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import attrs

from orderloom.runtime import Actor, Address, AskTimeout, Message, handler

from ._determinism import check_determinism
from ._faults import LinkFaults
from ._kernel import SimKernel

__all__ = ["DemoResult", "build_demo", "run_demo"]


@attrs.frozen(kw_only=True)
class PlaceOrder(Message):
    """A customer places an order. Invariant: ``amount`` > 0 (minor units)."""

    order_id: str
    amount: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen(kw_only=True)
class Authorize(Message):
    """The shop asks the gateway to authorize ``amount`` for ``order_id``."""

    order_id: str
    amount: int


@attrs.frozen(kw_only=True)
class OrderConfirmed(Message):
    """The shop tells the customer the order's payment was authorized."""

    order_id: str


@attrs.frozen(kw_only=True)
class OrderDeclined(Message):
    """The shop tells the customer the payment failed or timed out."""

    order_id: str
    reason: str


class Shop(Actor):
    """Asks the gateway for each order and reports the outcome."""

    def __init__(self, gateway: Address, timeout: float) -> None:
        self.gateway = gateway
        self.timeout = timeout

    @handler
    async def on_place(self, msg: PlaceOrder) -> None:
        envelope = self.ctx.envelope
        customer = envelope.sender if envelope is not None else None
        try:
            ok = await self.ctx.ask(
                self.gateway, Authorize(order_id=msg.order_id, amount=msg.amount),
                timeout=self.timeout,
            )
        except AskTimeout:
            outcome: Message = OrderDeclined(order_id=msg.order_id, reason="gateway_timeout")
        else:
            outcome = (OrderConfirmed(order_id=msg.order_id) if ok
                       else OrderDeclined(order_id=msg.order_id, reason="declined"))
        self.ctx.emit(outcome)
        if customer is not None:
            await self.ctx.send(customer, outcome)


class Gateway(Actor):
    """Authorizes after a random latency; declines a share of payments."""

    def __init__(self, decline_rate: float, mean_latency: float) -> None:
        self.decline_rate = decline_rate
        self.mean_latency = mean_latency

    @handler
    async def on_authorize(self, msg: Authorize) -> bool:
        rng = self.ctx.rng
        await self.ctx.sleep(rng.expovariate(1.0 / self.mean_latency))
        return rng.random() >= self.decline_rate


@attrs.frozen(kw_only=True)
class _Arrive(Message):
    pass


class Customers(Actor):
    """Places ``count`` orders with exponential inter-arrival times."""

    def __init__(self, shop: Address, count: int, rate: float) -> None:
        self.shop = shop
        self.left = count
        self.rate = rate

    async def on_start(self) -> None:
        self.ctx.schedule(self.ctx.rng.expovariate(self.rate), _Arrive())

    @handler
    async def on_arrive(self, msg: _Arrive) -> None:
        order_id = self.ctx.new_id()
        amount = self.ctx.rng.randint(500, 20_000)
        await self.ctx.send(self.shop, PlaceOrder(order_id=order_id, amount=amount),
                            correlation_id=order_id)
        self.left -= 1
        if self.left > 0:
            self.ctx.schedule(self.ctx.rng.expovariate(self.rate), _Arrive())

    @handler(OrderConfirmed, OrderDeclined)
    async def on_outcome(self, msg: OrderConfirmed | OrderDeclined) -> None:
        """Customers hear back; nothing further to do in the demo."""


def build_demo(kernel: SimKernel, *, orders: int, outage: tuple[float, float] | None) -> None:
    """Spawn the demo's actors and faults on ``kernel``."""
    kernel.spawn(lambda: Gateway(decline_rate=0.05, mean_latency=2.0), "gateway")
    kernel.spawn(lambda: Shop(gateway=Address("gateway"), timeout=30.0), "shop")
    kernel.spawn(lambda: Customers(Address("shop"), orders, rate=1 / 5.0), "customers")
    kernel.set_link_faults("shop", "gateway", LinkFaults(duplicate=0.02, delay=0.1,
                                                         delay_min=1.0, delay_max=40.0))
    if outage is not None:
        kernel.schedule_outage("gateway", outage[0], outage[1])


@attrs.frozen(kw_only=True)
class DemoResult:
    """What the demo measured."""

    seed: int
    orders: int
    outcomes: dict[str, int]
    delivered: int
    virtual_seconds: float
    wall_seconds: float
    dead_letters: dict[str, int]
    failures: int
    deterministic: str

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        rate = self.delivered / self.wall_seconds if self.wall_seconds else 0.0
        return [
            f"seed={self.seed} orders={self.orders}",
            "outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())),
            f"messages delivered={self.delivered} virtual_time={self.virtual_seconds:.0f}s "
            f"wall={self.wall_seconds:.3f}s ({rate:,.0f} msgs/s)",
            "dead letters: " + (", ".join(f"{k}={v}" for k, v in sorted(self.dead_letters.items()))
                                or "none"),
            f"handler failures={self.failures}",
            f"determinism: {self.deterministic}",
        ]


def run_demo(*, seed: int, orders: int, outage: tuple[float, float] | None = (600.0, 900.0),
             check: bool = True) -> DemoResult:
    """Run the checkout demo once (and, with ``check``, a determinism self-check)."""
    kernel = SimKernel(seed=seed)
    outcomes: collections.Counter[str] = collections.Counter()

    def count(_: float, __: str, event: Any) -> None:
        outcomes[type(event).__name__ if not isinstance(event, OrderDeclined)
                 else f"declined:{event.reason}"] += 1

    kernel.add_sink(count)
    build_demo(kernel, orders=orders, outage=outage)
    started = time.perf_counter()
    kernel.run()
    wall = time.perf_counter() - started
    verdict = "not checked"
    if check:
        report = check_determinism(
            lambda k: build_demo(k, orders=min(orders, 200), outage=outage), seed=seed
        )
        verdict = report.describe()
    return DemoResult(
        seed=seed, orders=orders, outcomes=dict(outcomes), delivered=kernel.delivered,
        virtual_seconds=kernel.now(), wall_seconds=wall,
        dead_letters=dict(collections.Counter(d.reason for d in kernel.dead_letters)),
        failures=len(kernel.failures), deterministic=verdict,
    )
