"""The address service under the SimPy kernel: latency, validity and corrections."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from orderloom.actors import (
    AddressChecked,
    AddressService,
    AddressServiceConfig,
    CheckAddress,
    Dist,
    OrderTruth,
)
from orderloom.runtime import Actor, Address, Message, handler
from orderloom.simulation import SimKernel


@attrs.frozen(kw_only=True)
class Check(Message):
    order_id: str
    correct: bool = False
    attempt: int = 1


class Client(Actor):
    """Asks the service on the test's behalf and keeps the answers."""

    def __init__(self) -> None:
        self.got: list[tuple[float, AddressChecked]] = []

    @handler
    async def on_check(self, msg: Check) -> None:
        await self.ctx.send(Address("address-service"), CheckAddress(
            order_id=msg.order_id, correct=msg.correct, attempt=msg.attempt))

    @handler
    async def on_answer(self, msg: AddressChecked) -> None:
        self.got.append((self.ctx.now(), msg))


TRUTHS = {
    "good": OrderTruth(),
    "fixable": OrderTruth(address_ok=False, address_fixable=True),
    "hopeless": OrderTruth(address_ok=False, address_fixable=False),
}


def _run(checks: list[Check], config: AddressServiceConfig,
         oracle: Callable[[str], OrderTruth] | None = TRUTHS.__getitem__,
         seed: int = 0) -> list[tuple[float, AddressChecked]]:
    kernel = SimKernel(seed=seed)
    kernel.spawn(lambda: AddressService(config, oracle), "address-service")
    kernel.spawn(Client, "client")
    for check in checks:
        kernel.tell("client", check)
    kernel.run()
    client = kernel.actor("client")
    assert isinstance(client, Client)
    return client.got


def test_answers_the_sender_after_the_latency() -> None:
    """Every check is answered to its sender once the latency has elapsed, without serialising."""
    got = _run([Check(order_id="good"), Check(order_id="hopeless")],
               AddressServiceConfig(latency=Dist.fixed(3.0)))
    assert got == [(3.0, AddressChecked(order_id="good", ok=True)),
                   (3.0, AddressChecked(order_id="hopeless", ok=False))]


@pytest.mark.parametrize(("order_id", "correct", "rate", "expected"), [
    ("fixable", True, 1.0, AddressChecked(order_id="fixable", ok=False, corrected=True)),
    ("fixable", True, 0.0, AddressChecked(order_id="fixable", ok=False)),
    ("fixable", False, 1.0, AddressChecked(order_id="fixable", ok=False)),
    ("hopeless", True, 1.0, AddressChecked(order_id="hopeless", ok=False)),
    ("good", True, 1.0, AddressChecked(order_id="good", ok=True)),
])
def test_outcomes(order_id: str, correct: bool, rate: float, expected: AddressChecked) -> None:
    """Only a bad but fixable address, with a correction asked for, can come back corrected."""
    got = _run([Check(order_id=order_id, correct=correct)],
               AddressServiceConfig(correct_success_rate=rate))
    assert [a for _, a in got] == [expected]


def test_correction_success_rate() -> None:
    """Over 2000 fixable addresses the share corrected matches correct_success_rate."""
    n = 2000
    got = _run([Check(order_id="fixable", correct=True, attempt=i + 1) for i in range(n)],
               AddressServiceConfig(correct_success_rate=0.7, latency=Dist.exponential(2.0)),
               seed=4)
    assert len(got) == n
    assert abs(sum(a.corrected for _, a in got) / n - 0.7) < 0.03


def test_an_orders_answer_does_not_depend_on_other_orders() -> None:
    """Common random numbers: an order's latency and correction are drawn from its
    own keyed stream, so other orders checked before it change nothing for it;
    its next attempt is a fresh draw."""
    config = AddressServiceConfig(correct_success_rate=0.5, latency=Dist.exponential(2.0))
    mine = [Check(order_id="fixable", correct=True, attempt=a) for a in range(1, 31)]

    def answers(others: int) -> list[tuple[float, AddressChecked]]:
        checks = [Check(order_id="hopeless", correct=True, attempt=i + 1)
                  for i in range(others)]
        return sorted((t, a) for t, a in _run(checks + mine, config, seed=3)
                      if a.order_id == "fixable")

    alone = answers(0)
    assert 5 < sum(a.corrected for _, a in alone) < 25  # the attempts differ
    assert answers(7) == alone
    assert answers(50) == alone


def test_without_an_oracle_every_address_is_ok() -> None:
    """Live (no oracle), the simulated service reports every address valid."""
    got = _run([Check(order_id="hopeless", correct=True)], AddressServiceConfig(), oracle=None)
    assert [a for _, a in got] == [AddressChecked(order_id="hopeless", ok=True)]


def test_request_from_outside_is_counted_unanswered() -> None:
    """A check told from outside the actor system has nobody to answer and is counted."""
    kernel = SimKernel()
    kernel.spawn(lambda: AddressService(AddressServiceConfig()), "address-service")
    kernel.tell("address-service", CheckAddress(order_id="o1"))
    kernel.run()
    service = kernel.actor("address-service")
    assert isinstance(service, AddressService) and service.unanswered == 1
    assert kernel.dead_letters == []
