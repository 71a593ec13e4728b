"""The MQTT transport between live kernels, on a real Mosquitto.

Two LiveKernels run in one process, each with its own MqttTransport. Every
assertion is about order and causality (what arrived, with which ids, before
what); the timeouts are hang guards only.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import attrs
import pytest

from orderloom.runtime import (
    Actor,
    Address,
    Envelope,
    FieldRules,
    MemoryStore,
    Message,
    PersistentActor,
    StoreFailure,
    Turn,
    WireCodec,
    WireType,
    handler,
    to_topic,
)
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.mqtt import MqttTransport
from tests import broker

pytestmark = pytest.mark.integration

HANG_GUARD = 60.0  # real seconds; generous on a loaded machine
SESSION = 120  # seconds the test broker keeps a session of ours after a disconnect


@attrs.frozen(kw_only=True)
class Start(Message):
    """Tells the pinger to ping (local to node A, never on the wire)."""

    to: str


@attrs.frozen(kw_only=True)
class Ping(Message):
    """A request crossing from node A to node B."""

    n: int


@attrs.frozen(kw_only=True)
class Pong(Message):
    """The answer crossing back."""

    n: int


@attrs.frozen(kw_only=True)
class Deposit(Message):
    """A command to the persistent account."""

    amount: int


@attrs.frozen(kw_only=True)
class Deposited(Message):
    """The account's event."""

    amount: int


CODEC = WireCodec(
    [WireType(name="test.ping", version=1, cls=Ping),
     WireType(name="test.pong", version=1, cls=Pong),
     WireType(name="test.deposit", version=1, cls=Deposit)],
    rules=FieldRules(money=frozenset({"amount"})))


def _run(main: Any) -> None:
    anyio.run(main, backend="asyncio")  # aiomqtt runs on asyncio only


def _names() -> tuple[str, str]:
    """A fresh address prefix and client id prefix, so runs never share a session."""
    run = f"t{uuid.uuid4().hex[:12]}"
    return run, run


class Pinger(Actor):
    """Node A's actor: pings on Start and keeps the pong's envelope."""

    def __init__(self, got: list[Envelope], done: anyio.Event) -> None:
        self.got = got
        self.done = done

    @handler
    async def on_start_msg(self, msg: Start) -> None:
        await self.ctx.send(Address(msg.to), Ping(n=7))

    @handler
    async def on_pong(self, msg: Pong) -> None:
        assert self.ctx.envelope is not None
        self.got.append(self.ctx.envelope)
        self.done.set()


class Ponger(Actor):
    """Node B's actor: answers a ping to its sender and keeps the ping's envelope."""

    def __init__(self, got: list[Envelope]) -> None:
        self.got = got

    @handler
    async def on_ping(self, msg: Ping) -> None:
        envelope = self.ctx.envelope
        assert envelope is not None and envelope.sender is not None
        self.got.append(envelope)
        await self.ctx.send(envelope.sender, Pong(n=msg.n + 1))


def test_a_tell_crosses_the_broker_and_the_reply_comes_back_with_its_provenance() -> None:
    """An actor on kernel A pings an actor on kernel B over MQTT and gets the pong,
    with message ids, causation, correlation and sender kept on both hops; each
    transport counts one confirmed publish and one delivery."""
    host, port = broker.shared_broker()
    run, client = _names()
    pinger, ponger = Address(f"{run}/a/pinger"), Address(f"{run}/b/ponger")
    at_b: list[Envelope] = []
    at_a: list[Envelope] = []

    async def main() -> None:
        done = anyio.Event()
        ta = MqttTransport(CODEC, client_id=f"{client}-a", subscriptions=[f"{run}/a/#"],
                           hostname=host, port=port, session_expiry=SESSION)
        tb = MqttTransport(CODEC, client_id=f"{client}-b", subscriptions=[f"{run}/b/#"],
                           hostname=host, port=port, session_expiry=SESSION)
        with anyio.fail_after(HANG_GUARD):
            async with ta, tb, LiveKernel(transport=ta, trace=True) as a, \
                    LiveKernel(transport=tb) as b:
                a.spawn(lambda: Pinger(at_a, done), pinger)
                b.spawn(lambda: Ponger(at_b), ponger)
                start_id = a.tell(pinger, Start(to=ponger), correlation_id="corr-1")
                await done.wait()
                published = [e for e in a.trace or () if e.kind == "publish"]
        assert (ta.published, ta.delivered, tb.published, tb.delivered) == (1, 1, 1, 1)
        ping, pong = at_b[0], at_a[0]
        assert (ping.causation_id, ping.correlation_id, ping.sender, ping.recipient,
                ping.body) == (start_id, "corr-1", pinger, ponger, Ping(n=7))
        assert [e.message_id for e in published] == [ping.message_id]
        assert (pong.causation_id, pong.correlation_id, pong.sender, pong.recipient,
                pong.body) == (ping.message_id, "corr-1", ponger, pinger, Pong(n=8))
        assert a.dead_letters == [] and b.dead_letters == []

    _run(main)


def test_an_undecodable_payload_goes_to_the_dead_letter_topic_redacted_and_acked() -> None:
    """Garbage and a payload with personal data on a node's topic land on
    orderloom/v1/dead/{reason} redacted, are acknowledged (not redelivered on
    reconnect), and a good message after them is still delivered."""
    host, port = broker.shared_broker()
    run, client = _names()
    ponger = Address(f"{run}/b/ponger")
    email = "alice.smith@example.com"
    foreign = json.dumps({"type": "shop.order", "v": 1, "id": "x1", "recipient": ponger,
                          "sent_at": 1.0, "body": {"email": email}}).encode()

    async def main() -> None:
        dead: list[tuple[str, dict[str, Any]]] = []
        with anyio.fail_after(HANG_GUARD):
            async with aiomqtt.Client(host, port, identifier=f"{client}-raw") as raw:
                await raw.subscribe("orderloom/v1/dead/#", qos=1)
                transport = MqttTransport(CODEC, client_id=f"{client}-b",
                                          subscriptions=[f"{run}/b/#"], hostname=host,
                                          port=port, session_expiry=SESSION)
                async with transport, LiveKernel(transport=transport):
                    await raw.publish(to_topic(ponger), b"{not json", qos=1)
                    await raw.publish(to_topic(ponger), foreign, qos=1)
                    async for message in raw.messages:
                        assert isinstance(message.payload, bytes)
                        record = json.loads(message.payload)
                        if record["topic"] == to_topic(ponger):  # not another test's
                            dead.append((str(message.topic), record))
                        if len(dead) == 2:
                            break
                    assert transport.dead_letters == 2
                # Same client id again: had they not been acknowledged, the broker
                # would redeliver them before this ping, and they would be refused again.
                again = MqttTransport(CODEC, client_id=f"{client}-b",
                                      subscriptions=[f"{run}/b/#"], hostname=host, port=port,
                                      session_expiry=SESSION)
                got: list[Envelope] = []
                async with again, LiveKernel(transport=again) as b:
                    b.spawn(lambda: Ponger(got), ponger)
                    envelope = Envelope("m-after", None, None, Address(f"{run}/a/x"), ponger,
                                        1.0, Ping(n=1))
                    await raw.publish(to_topic(ponger), CODEC.encode_envelope(envelope), qos=1)
                    while not got:
                        await anyio.sleep(0.01)
                    assert again.dead_letters == 0
        assert [topic for topic, _ in dead] == ["orderloom/v1/dead/not_json",
                                                "orderloom/v1/dead/unknown_type"]
        assert dead[0][1]["payload"] == {"unparsed_bytes": len(b"{not json")}
        assert dead[1][1]["reason"] == "unknown_type"
        assert email not in json.dumps(dead[1][1])
        assert dead[1][1]["payload"]["id"] == "x1"  # ids survive redaction, personal data not
        assert got[0].message_id == "m-after"

    _run(main)


def test_a_refusal_is_counted_then_recorded_off_the_event_loop_then_published() -> None:
    """A refused payload's on_refused (a store write) runs in a worker thread, not on
    the event loop's; it sees the refusal already counted, and the dead topic's
    record arrives only after it ran."""
    host, port = broker.shared_broker()
    run, client = _names()
    ponger = Address(f"{run}/b/ponger")
    loop_thread = threading.get_ident()
    recorded: list[tuple[int, int]] = []  # (thread, dead_letters counted when called)

    async def main() -> None:
        with anyio.fail_after(HANG_GUARD):
            async with aiomqtt.Client(host, port, identifier=f"{client}-raw") as raw:
                await raw.subscribe("orderloom/v1/dead/#", qos=1)
                transport = MqttTransport(
                    CODEC, client_id=f"{client}-b", subscriptions=[f"{run}/b/#"],
                    hostname=host, port=port, session_expiry=SESSION,
                    on_refused=lambda letter: recorded.append(
                        (threading.get_ident(), transport.dead_letters)))
                async with transport, LiveKernel(transport=transport):
                    await raw.publish(to_topic(ponger), b"{not json", qos=1)
                    async for message in raw.messages:
                        assert isinstance(message.payload, bytes)
                        if json.loads(message.payload)["topic"] == to_topic(ponger):
                            seen_then = list(recorded)
                            break
        assert len(seen_then) == 1
        thread, counted = seen_then[0]
        assert thread != loop_thread and counted == 1

    _run(main)


class FlakyStore(MemoryStore):
    """A MemoryStore whose next commit fails once: before writing (the turn is
    not committed) or after writing (committed, but the turn still fails, as
    when the process dies before it acknowledges)."""

    def __init__(self, fail: str) -> None:
        super().__init__()
        self.fail: str | None = fail
        self.failed = anyio.Event()
        self.committed: list[str | None] = []  # inbox ids of the commits that took
        self.duplicates: list[str] = []  # message ids found in the inbox (redeliveries)

    def commit(self, stream: str, turn: Turn) -> None:
        fail, self.fail = self.fail, None
        if fail == "before":
            self.failed.set()
            raise StoreFailure(":memory:", "commit", "injected before writing")
        super().commit(stream, turn)
        self.committed.append(turn.inbox_id)
        if fail == "after":
            self.failed.set()
            raise StoreFailure(":memory:", "commit", "injected after writing")

    def seen(self, stream: str, message_id: str) -> bool:
        found = super().seen(stream, message_id)
        if found:
            self.duplicates.append(message_id)
        return found


class Account(PersistentActor[int]):
    """A persistent balance: one Deposited event per deposit."""

    def initial_state(self) -> int:
        return 0

    def evolve(self, state: int, event: Any) -> int:
        assert isinstance(event, Deposited)
        return state + event.amount

    @handler
    async def on_deposit(self, msg: Deposit) -> None:
        self.record(Deposited(amount=msg.amount))


@pytest.mark.parametrize("fail", ["before", "after"])
def test_a_message_whose_turn_did_not_complete_is_redelivered_and_applied_once(
    tmp_path: Path, fail: str,
) -> None:
    """A deposit whose commit fails (before or after writing) is not acknowledged;
    when the node reconnects with the same client id the broker redelivers it,
    the account applies it exactly once (the inbox skips a committed one), and
    that delivery is acknowledged (a third session gets only new messages)."""
    run, client = _names()
    account = Address(f"{run}/b/account")
    store = FlakyStore(fail)

    async def node_b(host: str, port: int, until: Any) -> LiveKernel:
        transport = MqttTransport(CODEC, client_id=f"{client}-b", subscriptions=[f"{run}/b/#"],
                                  hostname=host, port=port, session_expiry=SESSION)
        async with transport, LiveKernel(transport=transport) as kernel:
            kernel.spawn(lambda: Account(store), account)
            await until(kernel)
        return kernel

    async def main(host: str, port: int) -> None:
        with anyio.fail_after(HANG_GUARD):
            async with MqttTransport(CODEC, client_id=f"{client}-a", subscriptions=[f"{run}/a/#"],
                                     hostname=host, port=port, session_expiry=SESSION) as ta, \
                    LiveKernel(transport=ta) as a:
                sent: list[str] = []

                async def failed(kernel: LiveKernel) -> None:
                    # Told once B's session exists (a broker keeps no message
                    # for a subscription it does not know yet).
                    sent.append(a.tell(account, Deposit(amount=5)))
                    await store.failed.wait()
                    while not kernel.dead_letters:  # the failed turn is recorded
                        await anyio.sleep(0.01)

                crashed = await node_b(host, port, failed)
                first = sent[0]
                assert [d.reason for d in crashed.dead_letters] == ["handler_failed"]
                assert store.committed == ([] if fail == "before" else [first])

                async def applied(kernel: LiveKernel) -> None:
                    # The redelivery: committed now, or found in the inbox.
                    while first not in store.committed[1 if fail == "after" else 0:] \
                            and first not in store.duplicates:
                        await anyio.sleep(0.01)
                    await kernel.drain(HANG_GUARD)

                await node_b(host, port, applied)
                second = a.tell(account, Deposit(amount=7))  # B is away: its session keeps it

                async def next_one(kernel: LiveKernel) -> None:
                    while second not in store.committed:
                        await anyio.sleep(0.01)
                    await kernel.drain(HANG_GUARD)

                await node_b(host, port, next_one)
        assert store.committed == [first, second]
        assert store.duplicates == ([] if fail == "before" else [first])
        assert [r.event for r in store.journal(account)] == [Deposited(amount=5),
                                                              Deposited(amount=7)]

    with broker.own_broker(tmp_path) as (host, port):
        _run(lambda: main(host, port))
