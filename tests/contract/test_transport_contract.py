"""The transport contract: every behaviour, run against LoopbackTransport and
MqttTransport (the latter marked ``integration``, on the shared Mosquitto; it
skips when no broker answers, and fails under ``CI=true``).

Kernels talk through the transport as two nodes would. Every assertion is
about order and causality (what arrived, with which ids, before what); the
timeouts are hang guards only. aiomqtt runs on asyncio only; the loopback
transport runs on asyncio and trio.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import aiomqtt
import anyio
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
import anyio.lowlevel
import attrs
import pytest

from orderloom.runtime import (
    Actor,
    IngestAccepted,
    IngestError,
    IngestReason,
    RefusedPayload,
    ActorNotFound,
    Address,
    Delivery,
    Envelope,
    FieldRules,
    KernelReply,
    Message,
    RemoteError,
    ReplyFailureKind,
    RestartPolicy,
    Transport,
    WireCodec,
    WireType,
    dead_topic,
    handler,
    ingest_topic,
    to_topic,
)
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.loopback import LoopbackBroker, LoopbackTransport
from orderloom.runtime.mqtt import MqttTransport
from tests import broker

HANG_GUARD = 60.0  # real seconds for a whole test; generous on a loaded machine
ASK_GUARD = 30.0  # kernel seconds (speed 1): an ask's timeout, a hang guard too
SESSION = 120  # seconds the broker keeps a session of ours after a disconnect


@attrs.frozen(kw_only=True)
class Start(Message):
    """Tells an actor on node A to talk to ``to`` (local, never on the wire)."""

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
class Explode(Message):
    """A request whose handler fails, with personal data in the exception's text."""

    email: str


@attrs.frozen(kw_only=True)
class Unlisted(Message):
    """An answer whose type is not registered: it cannot travel."""

    n: int


@attrs.frozen(kw_only=True)
class AskUnlisted(Message):
    """A request whose handler answers with an :class:`Unlisted`."""

    n: int


CODEC = WireCodec(
    [WireType(name="test.ping", version=1, cls=Ping),
     WireType(name="test.pong", version=1, cls=Pong),
     WireType(name="test.explode", version=1, cls=Explode),
     WireType(name="test.ask_unlisted", version=1, cls=AskUnlisted),
     WireType(name="kernel.reply", version=1, cls=KernelReply)],
    rules=FieldRules())


class FeedGate:
    """A test ingest gate: source ``<run>-feed``; a payload ``{"key", "n", "copies"}``
    with the user property ``x-feed-key: k`` becomes ``copies`` pings to ``to``."""

    def __init__(self, run: str, to: str) -> None:
        self.source, self.to = f"{run}-feed", Address(to)

    @property
    def sources(self) -> frozenset[str]:
        return frozenset({self.source})

    def self_authenticating(self, source: str) -> bool:
        return False

    def ingest(self, source: str, headers: Any, raw_body: bytes, *, origin: str,
               now: float) -> IngestAccepted | RefusedPayload:
        data = json.loads(raw_body)
        if {k.lower(): v for k, v in headers.items()}.get("x-feed-key") != "k":
            error = IngestError(IngestReason.BAD_SIGNATURE, "no feed key", path="headers")
            return RefusedPayload.of(error, source=source, origin=origin, received_at=now,
                                     payload={"key": data["key"]})
        return IngestAccepted(source=source, envelopes=tuple(
            Envelope(f"{data['key']}-{i}", None, None, None, self.to, now,
                     Ping(n=data["n"] + i)) for i in range(data["copies"])))


def _feed(key: str, n: int, copies: int) -> bytes:
    return json.dumps({"key": key, "n": n, "copies": copies}).encode()


# -- the two implementations behind one harness -------------------------------------------

Node = LoopbackTransport | MqttTransport


class Net(Protocol):
    """What a contract test needs from a network of nodes."""

    def transport(self, client_id: str, subscriptions: Sequence[str]
                  ) -> AbstractAsyncContextManager[Node]:
        """A node's transport (the same client id resumes the same session)."""
        ...

    async def inject(self, address: str, payload: bytes) -> None:
        """Publish raw bytes to ``address``'s topic, as a foreign client would."""
        ...

    async def dead(self, address: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        """Wait for ``count`` dead letters of payloads sent to ``address``: (topic, record)."""
        ...

    def ingesting(self, client_id: str, subscriptions: Sequence[str], gate: FeedGate,
                  refused: list[RefusedPayload]) -> AbstractAsyncContextManager[Node]:
        """A node's transport that also ingests ``gate``'s sources (refusals to ``refused``)."""
        ...

    async def inject_ingest(self, source: str, payload: bytes,
                            properties: Sequence[tuple[str, str]]) -> None:
        """Publish on ``source``'s ingest topic with MQTT 5 user properties."""
        ...

    async def dead_on(self, topic: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        """Wait for ``count`` dead letters of payloads that came on ``topic``."""
        ...


class LoopbackNet:
    """Nodes connected through one LoopbackBroker."""

    def __init__(self) -> None:
        self.broker = LoopbackBroker()

    def transport(self, client_id: str, subscriptions: Sequence[str]
                  ) -> AbstractAsyncContextManager[Node]:
        return LoopbackTransport(self.broker, CODEC, client_id=client_id,
                                 subscriptions=subscriptions)

    async def inject(self, address: str, payload: bytes) -> None:
        self.broker.publish_raw(to_topic(address), payload)
        await anyio.lowlevel.checkpoint()

    async def dead(self, address: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        return await self.dead_on(to_topic(address), count)

    def ingesting(self, client_id: str, subscriptions: Sequence[str], gate: FeedGate,
                  refused: list[RefusedPayload]) -> AbstractAsyncContextManager[Node]:
        return LoopbackTransport(self.broker, CODEC, client_id=client_id,
                                 subscriptions=subscriptions, ingest=gate,
                                 on_refused=refused.append)

    async def inject_ingest(self, source: str, payload: bytes,
                            properties: Sequence[tuple[str, str]]) -> None:
        self.broker.publish_raw(ingest_topic(source), payload, properties)
        await anyio.lowlevel.checkpoint()

    async def dead_on(self, topic: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        while True:
            found = [d for d in self.broker.dead_letters if d[1]["topic"] == topic]
            if len(found) >= count:
                return found
            await anyio.sleep(0.005)


class MqttNet:
    """Nodes connected through the shared Mosquitto; a raw client injects and
    watches the dead-letter topics."""

    def __init__(self, host: str, port: int, raw: aiomqtt.Client) -> None:
        self.host, self.port, self.raw = host, port, raw
        self.dead_letters: list[tuple[str, dict[str, Any]]] = []

    def transport(self, client_id: str, subscriptions: Sequence[str]
                  ) -> AbstractAsyncContextManager[Node]:
        return MqttTransport(CODEC, client_id=client_id, subscriptions=subscriptions,
                             hostname=self.host, port=self.port, session_expiry=SESSION)

    async def inject(self, address: str, payload: bytes) -> None:
        await self.raw.publish(to_topic(address), payload, qos=1)

    async def dead(self, address: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        return await self.dead_on(to_topic(address), count)

    def ingesting(self, client_id: str, subscriptions: Sequence[str], gate: FeedGate,
                  refused: list[RefusedPayload]) -> AbstractAsyncContextManager[Node]:
        return MqttTransport(CODEC, client_id=client_id, subscriptions=subscriptions,
                             hostname=self.host, port=self.port, session_expiry=SESSION,
                             ingest=gate, on_refused=refused.append)

    async def inject_ingest(self, source: str, payload: bytes,
                            properties: Sequence[tuple[str, str]]) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = list(properties)
        await self.raw.publish(ingest_topic(source), payload, qos=1, properties=props)

    async def dead_on(self, topic: str, count: int) -> list[tuple[str, dict[str, Any]]]:
        while True:
            found = [d for d in self.dead_letters if d[1]["topic"] == topic]
            if len(found) >= count:
                return found
            await anyio.sleep(0.005)

    async def watch(self) -> None:
        async for message in self.raw.messages:
            assert isinstance(message.payload, bytes)
            self.dead_letters.append((str(message.topic), json.loads(message.payload)))


@asynccontextmanager
async def _mqtt_net(run: str) -> AsyncIterator[Net]:
    host, port = broker.shared_broker()
    async with aiomqtt.Client(host, port, identifier=f"{run}-raw",
                              protocol=aiomqtt.ProtocolVersion.V5) as raw, \
            anyio.create_task_group() as tg:
        await raw.subscribe("orderloom/v1/dead/#", qos=1)
        net = MqttNet(host, port, raw)
        tg.start_soon(net.watch)
        yield net
        tg.cancel_scope.cancel()


@asynccontextmanager
async def _loopback_net(run: str) -> AsyncIterator[Net]:
    yield LoopbackNet()


@attrs.frozen
class Opener:
    """How to open the network a test runs on, and on which anyio backend."""

    open: Callable[[str], AbstractAsyncContextManager[Net]]
    backend: str


@pytest.fixture(params=["loopback-asyncio", "loopback-trio",
                        pytest.param("mqtt", marks=pytest.mark.integration)])
def open_net(request: pytest.FixtureRequest) -> Opener:
    """The network each test runs on: loopback (on both backends) or MQTT (asyncio only)."""
    if request.param == "mqtt":
        broker.shared_broker()  # skip (or fail under CI=true) before the run starts
        return Opener(_mqtt_net, "asyncio")
    return Opener(_loopback_net, request.param.removeprefix("loopback-"))


def _run(opener: Opener, main: Callable[[Net, str], Awaitable[None]]) -> None:
    run = f"t{uuid.uuid4().hex[:12]}"  # addresses and client ids no other run shares

    async def body() -> None:
        with anyio.fail_after(HANG_GUARD):
            async with opener.open(run) as net:
                await main(net, run)

    anyio.run(body, backend=opener.backend)


# -- actors -------------------------------------------------------------------------------


class Pinger(Actor):
    """Node A: pings on Start, keeps the pong's envelope."""

    def __init__(self, got: list[Envelope], done: anyio.Event) -> None:
        self.got, self.done = got, done

    @handler
    async def on_start_msg(self, msg: Start) -> None:
        await self.ctx.send(Address(msg.to), Ping(n=7))

    @handler
    async def on_pong(self, msg: Pong) -> None:
        assert self.ctx.envelope is not None
        self.got.append(self.ctx.envelope)
        self.done.set()


class Ponger(Actor):
    """Node B: answers a ping to its sender (a tell) and to its asker (the return value)."""

    def __init__(self, got: list[Envelope]) -> None:
        self.got = got

    @handler
    async def on_ping(self, msg: Ping) -> Pong | None:
        envelope = self.ctx.envelope
        assert envelope is not None and envelope.sender is not None
        self.got.append(envelope)
        if envelope.reply_to is not None:
            return Pong(n=msg.n + 1)
        await self.ctx.send(envelope.sender, Pong(n=msg.n + 1))
        return None

    @handler
    async def on_explode(self, msg: Explode) -> None:
        raise ValueError(f"cannot reach {msg.email}")

    @handler
    async def on_ask_unlisted(self, msg: AskUnlisted) -> Unlisted:
        return Unlisted(n=msg.n)


class Asker(Actor):
    """Node A: on Start asks ``to`` (a Ping, or an Explode) and keeps what came back."""

    def __init__(self, request: Message, got: list[object], done: anyio.Event) -> None:
        self.request, self.got, self.done = request, got, done

    @handler
    async def on_start_msg(self, msg: Start) -> None:
        try:
            self.got.append(await self.ctx.ask(Address(msg.to), self.request, timeout=ASK_GUARD))
        except (RemoteError, ActorNotFound) as exc:
            self.got.append(exc)
        self.done.set()


class FailsOnce(Actor):
    """Fails the first ping it ever sees (shared across sessions), keeps every envelope."""

    def __init__(self, seen: list[Envelope], failed: anyio.Event) -> None:
        self.seen, self.failed = seen, failed

    @handler
    async def on_ping(self, msg: Ping) -> None:
        assert self.ctx.envelope is not None
        self.seen.append(self.ctx.envelope)
        if not self.failed.is_set():
            self.failed.set()
            raise RuntimeError("injected: the turn fails")


def _nodes(net: Net, run: str) -> tuple[AbstractAsyncContextManager[Node],
                                        AbstractAsyncContextManager[Node]]:
    return (net.transport(f"{run}-a", [f"{run}/a/#"]),
            net.transport(f"{run}-b", [f"{run}/b/#"]))


def _envelope(message_id: str, run: str, to: str, body: Message) -> Envelope:
    return Envelope(message_id, None, None, Address(f"{run}/a/x"), Address(to), 1.0, body)


# -- the contract -------------------------------------------------------------------------


def test_a_tell_crosses_and_the_answer_comes_back_with_its_provenance(open_net: Opener) -> None:
    """A ping from node A to node B and the pong back keep message ids, causation,
    correlation and sender on both hops, the pong caused by the ping."""
    at_a: list[Envelope] = []
    at_b: list[Envelope] = []

    async def main(net: Net, run: str) -> None:
        pinger, ponger = Address(f"{run}/a/pinger"), Address(f"{run}/b/ponger")
        done = anyio.Event()
        ta, tb = _nodes(net, run)
        async with ta as a_t, tb as b_t, LiveKernel(transport=a_t) as a, \
                LiveKernel(transport=b_t) as b:
            a.spawn(lambda: Pinger(at_a, done), pinger)
            b.spawn(lambda: Ponger(at_b), ponger)
            start_id = a.tell(pinger, Start(to=ponger), correlation_id="corr-1")
            await done.wait()
        ping, pong = at_b[0], at_a[0]
        assert (ping.causation_id, ping.correlation_id, ping.sender, ping.recipient,
                ping.body) == (start_id, "corr-1", pinger, ponger, Ping(n=7))
        assert (pong.causation_id, pong.correlation_id, pong.sender, pong.recipient,
                pong.body) == (ping.message_id, "corr-1", ponger, pinger, Pong(n=8))
        assert a.dead_letters == [] and b.dead_letters == []

    _run(open_net, main)


def test_an_ask_of_a_remote_actor_returns_its_answer(open_net: Opener) -> None:
    """ctx.ask from node A to an actor on node B returns B's answer; B saw the
    request with the asker as sender and reply_to, caused by A's Start."""
    got: list[object] = []
    at_b: list[Envelope] = []

    async def main(net: Net, run: str) -> None:
        asker, ponger = Address(f"{run}/a/asker"), Address(f"{run}/b/ponger")
        done = anyio.Event()
        ta, tb = _nodes(net, run)
        async with ta as a_t, tb as b_t, LiveKernel(transport=a_t) as a, \
                LiveKernel(transport=b_t) as b:
            a.spawn(lambda: Asker(Ping(n=41), got, done), asker)
            b.spawn(lambda: Ponger(at_b), ponger)
            start_id = a.tell(asker, Start(to=ponger))
            await done.wait()
        assert got == [Pong(n=42)]
        [request] = at_b
        assert (request.causation_id, request.sender, request.reply_to) == (
            start_id, asker, asker)
        assert a.dead_letters == [] and b.dead_letters == []

    _run(open_net, main)


def test_a_failing_remote_handler_gives_the_asker_the_error_redacted(open_net: Opener) -> None:
    """A handler on node B that raises gives the asker on node A a RemoteError
    (kind, exception class) whose text does not quote the payload; B's actor
    carries on (the failure is replied, not supervised)."""
    got: list[object] = []
    email = "alice.smith@example.com"

    async def main(net: Net, run: str) -> None:
        asker, ponger = Address(f"{run}/a/asker"), Address(f"{run}/b/ponger")
        done = anyio.Event()
        ta, tb = _nodes(net, run)
        async with ta as a_t, tb as b_t, LiveKernel(transport=a_t) as a, \
                LiveKernel(transport=b_t) as b:
            a.spawn(lambda: Asker(Explode(email=email), got, done), asker)
            b.spawn(lambda: Ponger([]), ponger)
            a.tell(asker, Start(to=ponger))
            await done.wait()
            assert b.is_running(ponger)
        [error] = got
        assert isinstance(error, RemoteError)
        assert (error.recipient, error.kind, error.error_type) == (
            ponger, ReplyFailureKind.HANDLER_FAILED, "ValueError")
        assert email not in str(error)
        assert [f.action for f in b.failures] == ["replied"]

    _run(open_net, main)


def test_an_answer_that_cannot_travel_gives_the_asker_not_on_the_wire(open_net: Opener) -> None:
    """A remote handler answering with an unregistered message gives the asker a
    RemoteError of kind not_on_the_wire (not a timeout); node B dead-letters the
    answer it could not send."""
    got: list[object] = []

    async def main(net: Net, run: str) -> None:
        asker, ponger = Address(f"{run}/a/asker"), Address(f"{run}/b/ponger")
        done = anyio.Event()
        ta, tb = _nodes(net, run)
        async with ta as a_t, tb as b_t, LiveKernel(transport=a_t) as a, \
                LiveKernel(transport=b_t) as b:
            a.spawn(lambda: Asker(AskUnlisted(n=3), got, done), asker)
            b.spawn(lambda: Ponger([]), ponger)
            a.tell(asker, Start(to=ponger))
            await done.wait()
            await b.drain(HANG_GUARD)
        [error] = got
        assert isinstance(error, RemoteError)
        assert (error.kind, error.error_type) == (ReplyFailureKind.NOT_ON_THE_WIRE,
                                                  "NotOnTheWire")
        assert [(d.reason, d.envelope.body) for d in b.dead_letters] == [
            ("publish_failed", KernelReply(request_id=error.request_id, value=Unlisted(n=3)))]

    _run(open_net, main)


def test_an_ask_of_an_address_with_no_actor_raises_actor_not_found(open_net: Opener) -> None:
    """An ask that reaches node B for an address B has not spawned gives the
    asker ActorNotFound, as a local ask does."""
    got: list[object] = []

    async def main(net: Net, run: str) -> None:
        asker, nobody = Address(f"{run}/a/asker"), Address(f"{run}/b/nobody")
        done = anyio.Event()
        ta, tb = _nodes(net, run)
        async with ta as a_t, tb as b_t, LiveKernel(transport=a_t) as a, \
                LiveKernel(transport=b_t) as b:
            a.spawn(lambda: Asker(Ping(n=1), got, done), asker)
            a.tell(asker, Start(to=nobody))
            await done.wait()
        [error] = got
        assert isinstance(error, ActorNotFound) and error.address == nobody
        assert [d.reason for d in b.dead_letters] == ["unknown_address"]

    _run(open_net, main)


def test_an_undecodable_payload_is_dead_lettered_with_its_reason_and_acked(
    open_net: Opener,
) -> None:
    """Garbage on node B's topic becomes a not_json dead letter, redacted; it is
    acknowledged: after a reconnect with the same client id only the next good
    message arrives."""
    got: list[Envelope] = []

    async def main(net: Net, run: str) -> None:
        ponger = Address(f"{run}/b/ponger")
        garbage = b"{not json alice@example.com"
        async with net.transport(f"{run}-b", [f"{run}/b/#"]) as t, LiveKernel(transport=t):
            await net.inject(ponger, garbage)
            [(topic, record)] = await net.dead(ponger, 1)
        assert topic == dead_topic("not_json")
        assert (record["reason"], record["payload"]) == ("not_json",
                                                         {"unparsed_bytes": len(garbage)})
        async with net.transport(f"{run}-b", [f"{run}/b/#"]) as t, \
                LiveKernel(transport=t) as b:
            b.spawn(lambda: Ponger(got), ponger)
            await net.inject(ponger, CODEC.encode_envelope(
                _envelope("m-after", run, ponger, Ping(n=1))))
            while not got:
                await anyio.sleep(0.005)
            await b.drain(HANG_GUARD)
            assert t.dead_letters == 0  # the garbage was not redelivered and refused again
        assert [e.message_id for e in got] == ["m-after"]
        assert len(await net.dead(ponger, 1)) == 1  # the garbage was not refused twice

    _run(open_net, main)


def test_a_delivery_whose_turn_failed_is_delivered_again_after_reconnect(
    open_net: Opener,
) -> None:
    """A message whose turn fails is not acknowledged: when node B reconnects
    with the same client id it is delivered again (same message id), then
    acknowledged (a third session gets only the next message)."""
    seen: list[Envelope] = []

    async def main(net: Net, run: str) -> None:
        account = Address(f"{run}/b/account")
        failed = anyio.Event()
        no_backoff = RestartPolicy(backoff=0.0)

        async def session(until: Callable[[LiveKernel], Awaitable[None]]) -> LiveKernel:
            async with net.transport(f"{run}-b", [f"{run}/b/#"]) as t, \
                    LiveKernel(transport=t) as kernel:
                kernel.spawn(lambda: FailsOnce(seen, failed), account, restart=no_backoff)
                await until(kernel)
            return kernel

        async def fails(kernel: LiveKernel) -> None:
            await net.inject(account, CODEC.encode_envelope(
                _envelope("m-1", run, account, Ping(n=1))))
            await failed.wait()
            await kernel.drain(HANG_GUARD)

        async def redelivered(kernel: LiveKernel) -> None:
            while len(seen) < 2:
                await anyio.sleep(0.005)
            await kernel.drain(HANG_GUARD)

        async def next_only(kernel: LiveKernel) -> None:
            await net.inject(account, CODEC.encode_envelope(
                _envelope("m-2", run, account, Ping(n=2))))
            while len(seen) < 3:
                await anyio.sleep(0.005)
            await kernel.drain(HANG_GUARD)

        first = await session(fails)
        assert [d.reason for d in first.dead_letters] == ["handler_failed"]
        await session(redelivered)
        await session(next_only)
        assert [e.message_id for e in seen] == ["m-1", "m-1", "m-2"]

    _run(open_net, main)


def test_acknowledging_a_delivery_twice_is_a_no_op(open_net: Opener) -> None:
    """A second ack of a delivery acknowledges nothing else: after a reconnect the
    unacknowledged one (and only it) comes again, before a new message."""

    async def main(net: Net, run: str) -> None:
        account = Address(f"{run}/b/account")

        async def take(transport: Transport, n: int) -> list[Delivery]:
            out: list[Delivery] = []
            async for delivery in transport.deliveries():
                out.append(delivery)
                if len(out) == n:
                    break
            return out

        async with net.transport(f"{run}-b", [f"{run}/b/#"]) as t:
            for mid in ("m-1", "m-2"):
                await net.inject(account, CODEC.encode_envelope(
                    _envelope(mid, run, account, Ping(n=1))))
            first, second = await take(t, 2)
            first.ack()
            first.ack()
            assert (first.acked, second.acked) == (True, False)
        async with net.transport(f"{run}-b", [f"{run}/b/#"]) as t:
            [again] = await take(t, 1)
            again.ack()
            await net.inject(account, CODEC.encode_envelope(
                _envelope("m-3", run, account, Ping(n=3))))
            [third] = await take(t, 1)
            third.ack()
        assert [d.envelope.message_id for d in (first, second, again, third)] == [
            "m-1", "m-2", "m-2", "m-3"]

    _run(open_net, main)


def test_an_ingested_payload_is_acknowledged_only_when_all_its_deliveries_are(
    open_net: Opener,
) -> None:
    """A payload on an ingest topic becomes the gate's deliveries (headers from the
    user properties); when one of its turns fails, the payload is not acknowledged
    and comes again, whole, after a reconnect; then only the next one comes."""
    seen: list[Envelope] = []

    async def main(net: Net, run: str) -> None:
        account = Address(f"{run}/b/account")
        gate = FeedGate(run, account)
        failed = anyio.Event()
        refused: list[RefusedPayload] = []
        no_backoff = RestartPolicy(backoff=0.0)

        async def session(until: Callable[[LiveKernel], Awaitable[None]]) -> None:
            async with net.ingesting(f"{run}-b", [f"{run}/b/#"], gate, refused) as t, \
                    LiveKernel(transport=t) as kernel:
                kernel.spawn(lambda: FailsOnce(seen, failed), account, restart=no_backoff)
                await until(kernel)

        def waits_for(count: int) -> Callable[[LiveKernel], Awaitable[None]]:
            async def until(kernel: LiveKernel) -> None:
                while len(seen) < count:
                    await anyio.sleep(0.005)
                await kernel.drain(HANG_GUARD)
            return until

        async def first(kernel: LiveKernel) -> None:
            await net.inject_ingest(gate.source, _feed("p1", 1, 2), [("X-Feed-Key", "k")])
            await waits_for(2)(kernel)

        async def last(kernel: LiveKernel) -> None:
            await net.inject_ingest(gate.source, _feed("p2", 5, 1), [("X-Feed-Key", "k")])
            await waits_for(5)(kernel)

        await session(first)
        await session(waits_for(4))
        await session(last)
        assert [e.message_id for e in seen] == ["p1-0", "p1-1", "p1-0", "p1-1", "p2-0"]
        assert [e.body for e in seen[:2]] == [Ping(n=1), Ping(n=2)]
        assert refused == []

    _run(open_net, main)


def test_a_refused_ingest_payload_is_recorded_dead_lettered_and_acked(open_net: Opener) -> None:
    """A payload the gate refuses goes to on_refused and the dead topic with its
    reason, is acknowledged (not refused again after a reconnect) and delivers nothing."""
    seen: list[Envelope] = []

    async def main(net: Net, run: str) -> None:
        account = Address(f"{run}/b/account")
        gate = FeedGate(run, account)
        refused: list[RefusedPayload] = []
        never_fails = anyio.Event()
        never_fails.set()  # FailsOnce has failed already: it takes every ping
        async with net.ingesting(f"{run}-b", [f"{run}/b/#"], gate, refused) as t, \
                LiveKernel(transport=t) as kernel:
            kernel.spawn(lambda: FailsOnce(seen, never_fails), account)
            await net.inject_ingest(gate.source, _feed("bad", 1, 1), [("X-Feed-Key", "nope")])
            [(topic, record)] = await net.dead_on(ingest_topic(gate.source), 1)
        assert topic == dead_topic("bad_signature")
        assert record == refused[0].as_dict() and record["payload"] == {"key": "bad"}
        async with net.ingesting(f"{run}-b", [f"{run}/b/#"], gate, refused) as t, \
                LiveKernel(transport=t) as kernel:
            kernel.spawn(lambda: FailsOnce(seen, never_fails), account)
            await net.inject_ingest(gate.source, _feed("ok", 1, 1), [("X-Feed-Key", "k")])
            while not seen:
                await anyio.sleep(0.005)
            await kernel.drain(HANG_GUARD)
        assert [e.message_id for e in seen] == ["ok-0"] and len(refused) == 1
        assert t.dead_letters == 0  # the refused one was acknowledged, not refused again

    _run(open_net, main)


def test_after_stop_ingest_payloads_wait_for_the_next_session(open_net: Opener) -> None:
    """stop_ingest leaves ingest payloads unacknowledged while envelopes still flow;
    the next session with the same client id gets them."""
    seen: list[Envelope] = []

    async def main(net: Net, run: str) -> None:
        account = Address(f"{run}/b/account")
        gate = FeedGate(run, account)
        refused: list[RefusedPayload] = []
        never_fails = anyio.Event()
        never_fails.set()
        async with net.ingesting(f"{run}-b", [f"{run}/b/#"], gate, refused) as t, \
                LiveKernel(transport=t) as kernel:
            kernel.spawn(lambda: FailsOnce(seen, never_fails), account)
            t.stop_ingest()
            await net.inject_ingest(gate.source, _feed("late", 1, 1), [("X-Feed-Key", "k")])
            await net.inject(account, CODEC.encode_envelope(
                _envelope("m-direct", run, account, Ping(n=9))))
            while not seen:
                await anyio.sleep(0.005)
            await kernel.drain(HANG_GUARD)
        assert [e.message_id for e in seen] == ["m-direct"]
        async with net.ingesting(f"{run}-b", [f"{run}/b/#"], gate, refused) as t, \
                LiveKernel(transport=t) as kernel:
            kernel.spawn(lambda: FailsOnce(seen, never_fails), account)
            while len(seen) < 2:
                await anyio.sleep(0.005)
            await kernel.drain(HANG_GUARD)
        assert [e.message_id for e in seen] == ["m-direct", "late-0"] and refused == []

    _run(open_net, main)
