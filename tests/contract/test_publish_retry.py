"""The live kernel retries a receipted publish (an outbox entry) while the transport
says a retry may succeed, and gives up on everything else at once.

A scripted transport stands in for the broker: each publish takes the next
outcome of its script (an error to raise, ``HANG`` to wait past the kernel's
send timeout, or None to confirm).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import attrs
import pytest

from orderloom.runtime import (
    Actor,
    Address,
    Delivery,
    Envelope,
    Message,
    NotOnTheWire,
    ReceiptedSend,
    RefusedPayload,
    TransportError,
    handler,
)
from orderloom.runtime.live import RETRY_PAUSE_MAX, LiveKernel, retry_pause

pytestmark = pytest.mark.anyio

HANG_GUARD = 30.0  # real seconds: stops a hang, times nothing
HANG = "hang"
REMOTE = Address("remote/sink")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@attrs.frozen(kw_only=True)
class Go(Message):
    """Tells the sender to send ``n`` to the remote address."""

    n: int
    receipted: bool


@attrs.frozen(kw_only=True)
class Note(Message):
    """What goes over the transport."""

    n: int


class ScriptedTransport:
    """A transport whose publishes follow a script; it records every attempt."""

    def __init__(self, script: list[BaseException | str | None]) -> None:
        self.script = script
        self.attempts: list[str] = []  # message ids, one per publish call
        self.times: list[float] = []  # anyio's clock at each attempt
        send, self.receive = anyio.create_memory_object_stream[Delivery](1)
        send.close()  # nothing ever arrives

    async def publish(self, envelope: Envelope) -> None:
        self.attempts.append(envelope.message_id)
        self.times.append(anyio.current_time())
        outcome = self.script.pop(0) if self.script else None
        if outcome == HANG:
            await anyio.sleep_forever()
        if isinstance(outcome, BaseException):
            raise outcome

    async def publish_dead_letter(self, letter: RefusedPayload) -> None:
        raise AssertionError("no dead letter is published here")

    def deliveries(self) -> AsyncIterator[Delivery]:
        return self.receive


class Sender(Actor):
    """Sends a Note per Go, with a receipt (as an outbox does) or without."""

    def __init__(self, receipts: list[int], done: anyio.Event) -> None:
        self.receipts = receipts
        self.done = done

    @handler
    async def on_go(self, msg: Go) -> None:
        ctx = self.ctx
        if msg.receipted:
            assert isinstance(ctx, ReceiptedSend)
            await ctx.send_with_receipt(REMOTE, Note(n=msg.n), message_id=f"entry-{msg.n}",
                                        on_delivered=lambda: self.receipts.append(msg.n))
        else:
            await ctx.send(REMOTE, Note(n=msg.n))
        self.done.set()  # the turn's send is over, confirmed or given up


async def _send(script: list[BaseException | str | None], *,
                receipted: bool) -> tuple[ScriptedTransport, LiveKernel, list[int]]:
    transport = ScriptedTransport(script)
    receipts: list[int] = []
    done = anyio.Event()
    try:
        with anyio.fail_after(HANG_GUARD):
            async with LiveKernel(transport=transport, trace=True, send_timeout=0.05) as kernel:
                kernel.spawn(lambda: Sender(receipts, done), "sender")
                kernel.tell("sender", Go(n=1, receipted=receipted))
                await done.wait()
                await kernel.drain(HANG_GUARD)
    finally:
        transport.receive.close()
    return transport, kernel, receipts


def _broke() -> TransportError:
    return TransportError("publish", "the connection broke", retryable=True)


async def test_a_receipted_publish_is_retried_until_the_broker_confirms() -> None:
    """Two retryable failures and a timeout later the third retry is confirmed: four
    attempts under the entry's one id, the receipt given once, no dead letter."""
    transport, kernel, receipts = await _send([_broke(), HANG, _broke(), None], receipted=True)
    assert transport.attempts == ["entry-1"] * 4
    assert receipts == [1]
    assert kernel.dead_letters == []
    retries = [r.detail for r in kernel.trace or () if r.kind == "publish" and r.detail]
    assert retries == ["retrying after publish_failed", "retrying after publish_timeout",
                       "retrying after publish_failed"]


@pytest.mark.parametrize("error", [
    TransportError("publish", "the transport is closed"),
    NotOnTheWire("Note", "not registered"),
])
async def test_a_publish_that_never_will_succeed_is_a_dead_letter_at_once(
        error: Exception) -> None:
    """A non-retryable TransportError or an envelope that cannot be encoded is tried
    once and becomes a publish_failed dead letter; its receipt never comes."""
    transport, kernel, receipts = await _send([error, None], receipted=True)
    assert transport.attempts == ["entry-1"]
    assert receipts == []
    assert [d.reason for d in kernel.dead_letters] == ["publish_failed"]


async def test_a_send_without_an_outbox_is_not_retried() -> None:
    """A plain send (nobody keeps it) is tried once even when a retry could succeed."""
    transport, kernel, _ = await _send([_broke(), None], receipted=False)
    assert len(transport.attempts) == 1
    assert [d.reason for d in kernel.dead_letters] == ["publish_failed"]


async def test_a_publish_failing_at_once_is_retried_after_a_growing_pause() -> None:
    """A transport that fails without waiting is not asked again in a busy loop:
    after each immediate failure the next attempt waits at least retry_pause(k),
    which doubles up to its cap. (A lower bound: a sleep never ends early, so
    no load can make this fail.)"""
    transport, _, receipts = await _send([_broke(), _broke(), _broke(), None], receipted=True)
    assert receipts == [1]
    gaps = [b - a for a, b in zip(transport.times, transport.times[1:])]
    assert len(gaps) == 3
    for k, gap in enumerate(gaps, start=1):
        assert gap >= retry_pause(k) - 0.005, (k, gap)
    assert [retry_pause(k) for k in (1, 2, 3)] == [0.05, 0.1, 0.2]
    assert retry_pause(100) == RETRY_PAUSE_MAX
