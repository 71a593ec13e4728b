"""LiveKernel's hooks on transport deliveries: the turn sink (arrival-to-commit
latency) and the activator (actors started on demand)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import attrs

from orderloom.runtime import Actor, ActorFactory, Address, Envelope, FieldRules, Message, WireCodec, WireType, handler
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.loopback import LoopbackBroker, LoopbackTransport

HANG_GUARD = 60.0  # real seconds: a guard against hangs, not a timing


@attrs.frozen(kw_only=True)
class Work(Message):
    """A message crossing from one kernel to the other."""

    n: int


class Worker(Actor):
    """Fails on n == 2, handles the rest."""

    def __init__(self, done: list[int]) -> None:
        self.done = done

    @handler
    async def on_work(self, msg: Work) -> None:
        if msg.n == 2:
            raise ValueError("n == 2 fails")
        self.done.append(msg.n)


CODEC = WireCodec([WireType(name="test.work", version=1, cls=Work)], rules=FieldRules())


def test_the_sink_hears_each_completed_transport_turn_once() -> None:
    """A sink gets (envelope, latency >= 0) for every remote message whose turn
    completed, none for a failed turn nor for a local message."""
    heard: list[tuple[int, float]] = []
    done: list[int] = []

    def sink(envelope: Envelope, latency: float) -> None:
        assert isinstance(envelope.body, Work)
        heard.append((envelope.body.n, latency))

    async def main() -> None:
        broker = LoopbackBroker()
        with anyio.fail_after(HANG_GUARD):
            async with LoopbackTransport(broker, CODEC, client_id="a", subscriptions=[]) as ta, \
                    LoopbackTransport(broker, CODEC, client_id="b",
                                      subscriptions=["worker"]) as tb, \
                    LiveKernel(transport=ta) as sender, LiveKernel(transport=tb) as receiver:
                receiver.add_turn_sink(sink)
                receiver.spawn(lambda: Worker(done), "worker")
                for n in (1, 2, 3):
                    sender.tell("worker", Work(n=n))
                receiver.tell("worker", Work(n=4))  # local: not a transport delivery
                while sorted(done) != [1, 3, 4]:
                    await anyio.sleep(0.01)
                await receiver.drain(HANG_GUARD)

    anyio.run(main, backend="asyncio")
    assert sorted(n for n, _ in heard) == [1, 3]
    assert all(latency >= 0 for _, latency in heard)


def _activator(done: list[int], asked: list[str]) -> Callable[[Address], ActorFactory | None]:
    """Starts a Worker at ``worker/7``, declines other addresses, fails on
    ``worker/broken``; notes each address it is asked about."""

    def activate(address: Address) -> ActorFactory | None:
        asked.append(address)
        if address == "worker/broken":
            raise RuntimeError("cannot tell")
        return (lambda: Worker(done)) if address == "worker/7" else None

    return activate


def test_the_activator_starts_an_actor_for_a_delivery_to_an_unspawned_address() -> None:
    """A delivery for a subscribed address with no actor starts the one the activator
    returns, which gets it; an address the activator declines, or one it fails on,
    is an unknown_address dead letter and the failure is recorded."""
    done: list[int] = []
    asked: list[str] = []

    activate = _activator(done, asked)

    async def main() -> LiveKernel:
        broker = LoopbackBroker()
        with anyio.fail_after(HANG_GUARD):
            async with LoopbackTransport(broker, CODEC, client_id="a", subscriptions=[]) as ta, \
                    LoopbackTransport(broker, CODEC, client_id="b",
                                      subscriptions=["worker/#"]) as tb, \
                    LiveKernel(transport=ta) as sender, LiveKernel(transport=tb) as receiver:
                receiver.set_activator(activate)
                sender.tell("worker/9", Work(n=9))
                sender.tell("worker/broken", Work(n=8))
                sender.tell("worker/7", Work(n=1))
                sender.tell("worker/7", Work(n=3))
                while done != [1, 3] or receiver.dead_letter_total < 2:
                    await anyio.sleep(0.01)
                assert receiver.is_running("worker/7")
                return receiver

    receiver = anyio.run(main, backend="asyncio")
    assert asked == ["worker/9", "worker/broken", "worker/7"]  # once: then it runs
    assert receiver.dead_letter_counts == {"unknown_address": 2}
    assert [(f.actor, f.action) for f in receiver.failures] == [("worker/broken", "recorded")]


def test_activate_starts_what_a_delivery_would_start_and_says_whether_one_runs() -> None:
    """LiveKernel.activate: True for a running actor (the activator not asked), True
    once the activator started one, False where it declines or fails (the failure
    recorded) and everywhere without an activator; nothing is delivered."""
    done: list[int] = []
    asked: list[str] = []

    activate = _activator(done, asked)

    async def main() -> LiveKernel:
        with anyio.fail_after(HANG_GUARD):
            async with LiveKernel() as kernel:
                assert kernel.activate("worker/7") is False  # no activator yet
                kernel.set_activator(activate)
                assert kernel.activate("worker/7") is True
                assert kernel.is_running("worker/7")
                assert kernel.activate("worker/7") is True  # runs: not asked again
                assert kernel.activate("worker/9") is False
                assert kernel.activate("worker/broken") is False
                assert not kernel.is_running("worker/9") and not kernel.is_running("worker/broken")
                kernel.tell("worker/7", Work(n=5))
                while done != [5]:
                    await anyio.sleep(0.01)
                return kernel

    kernel = anyio.run(main, backend="asyncio")
    assert asked == ["worker/7", "worker/9", "worker/broken"]
    assert kernel.dead_letter_total == 0
    assert [(f.actor, f.action) for f in kernel.failures] == [("worker/broken", "recorded")]
