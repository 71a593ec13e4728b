"""The MQTT transport rides out a broker restart (a Mosquitto of the test's own).

A coordinator node (a persistent ledger on SQLite, its outbox published over
the broker) and a peer node run in this process, each on its own
MqttTransport with reconnection. The broker is stopped and started again on
the same port with its persistence file; every assertion is about order and
causality (what happened before what, what was applied how often), and the
waits are hang guards only.
"""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import attrs
import pytest

from orderloom.runtime import (
    Actor,
    Address,
    AttrsCodec,
    Envelope,
    FieldRules,
    Message,
    PersistentActor,
    TransportError,
    WireCodec,
    WireType,
    handler,
    to_topic,
)
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.mqtt import LinkEvent, LinkLost, LinkRestored, MqttTransport, Reconnect
from orderloom.runtime.sqlite import SqliteStore
from tests import broker

pytestmark = pytest.mark.integration

HANG_GUARD = 120.0  # real seconds; generous on a loaded machine, times nothing
SESSION = 600  # seconds the broker keeps a session of ours after a disconnect
# Quick attempts, so the test does not wait out a long backoff; jitter seeded.
FAST = Reconnect(first_delay=0.05, max_delay=0.5)


@attrs.frozen(kw_only=True)
class Credit(Message):
    """A command to the ledger (over the broker, or told locally)."""

    n: int


@attrs.frozen(kw_only=True)
class Credited(Message):
    """The ledger's event."""

    n: int


@attrs.frozen(kw_only=True)
class Noted(Message):
    """What the ledger tells the peer for each credit (through its outbox)."""

    n: int


CODEC = WireCodec([WireType(name="test.credit", version=1, cls=Credit),
                   WireType(name="test.noted", version=1, cls=Noted)],
                  rules=FieldRules(sequences=frozenset({"n"})))


class Ledger(PersistentActor[tuple[int, ...]]):
    """Records each credit once (the inbox skips a redelivery) and notes it to the peer."""

    def __init__(self, store: SqliteStore, peer: Address) -> None:
        super().__init__(store)
        self.peer = peer

    def initial_state(self) -> tuple[int, ...]:
        return ()

    def evolve(self, state: tuple[int, ...], event: Any) -> tuple[int, ...]:
        assert isinstance(event, Credited)
        return (*state, event.n)

    @handler
    async def on_credit(self, msg: Credit) -> None:
        self.record(Credited(n=msg.n))
        await self.ctx.send(self.peer, Noted(n=msg.n))


class Sink(Actor):
    """The peer: keeps every envelope it gets (duplicates included)."""

    def __init__(self, got: list[Envelope]) -> None:
        self.got = got

    @handler
    async def on_noted(self, msg: Noted) -> None:
        assert self.ctx.envelope is not None
        self.got.append(self.ctx.envelope)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await anyio.sleep(0.02)


async def _shop(port: int, client_id: str, to: Address, n: int) -> None:
    """A foreign client publishes a Credit to the ledger (QoS 1, PUBACK awaited)."""
    envelope = Envelope(f"credit-{n}", None, None, None, to, 1.0, Credit(n=n))
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id) as client:
        await client.publish(to_topic(to), CODEC.encode_envelope(envelope), qos=1)


def test_a_broker_restart_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    """The broker stops (SIGTERM) and starts again on the same port: the coordinator
    hears LinkLost (not connected) then LinkRestored (connected again); a credit told
    during the outage commits and its outbox message, held while there is no broker,
    reaches the peer after the reconnect; a credit published for the coordinator while
    it is still away is handled; every credit is applied exactly once, and the outbox
    ends empty."""
    run = f"t{uuid.uuid4().hex[:12]}"
    ledger, sink = Address(f"{run}/coord/ledger"), Address(f"{run}/peer/sink")
    store = SqliteStore(tmp_path / "ledger.db", AttrsCodec([Credited, Noted]))
    links: list[tuple[LinkEvent, bool]] = []
    got: list[Envelope] = []

    async def main(mosquitto: broker.Mosquitto) -> None:
        port = mosquitto.port
        coord = MqttTransport(CODEC, client_id=f"{run}-coord", subscriptions=[f"{run}/coord/#"],
                              port=port, session_expiry=SESSION, reconnect=FAST,
                              rng=random.Random(1),
                              on_link=lambda event: links.append((event, coord.connected)))
        peer = MqttTransport(CODEC, client_id=f"{run}-peer", subscriptions=[f"{run}/peer/#"],
                             port=port, session_expiry=SESSION, reconnect=FAST,
                             rng=random.Random(2))
        with anyio.fail_after(HANG_GUARD):
            async with coord, peer, LiveKernel(transport=coord) as kernel, \
                    LiveKernel(transport=peer) as peer_kernel:
                kernel.spawn(lambda: Ledger(store, sink), ledger)
                peer_kernel.spawn(lambda: Sink(got), sink)
                await _shop(port, f"{run}-shop", ledger, 1)
                await _until(lambda: [e.body for e in got] == [Noted(n=1)])
                await _until(lambda: not store.pending_outbox(10, stream=ledger))  # confirmed

                await anyio.to_thread.run_sync(mosquitto.stop)
                await _until(lambda: len(links) == 1)
                assert not coord.connected
                kernel.tell(ledger, Credit(n=2))  # as an HTTP ingest would, mid-outage
                await _until(lambda: len(store.journal(ledger)) == 2)
                # Committed, its message not confirmed: the entry waits in the outbox.
                held = [e.message for e in store.pending_outbox(10, stream=ledger)]
                assert held == [Noted(n=2)] and not coord.connected

                await anyio.to_thread.run_sync(mosquitto.start)
                # Published for the coordinator's session, whether or not it is back yet.
                await _shop(port, f"{run}-shop", ledger, 3)
                await _until(lambda: {e.body for e in got} == {Noted(n=n) for n in (1, 2, 3)})
                await _until(lambda: not store.pending_outbox(10, stream=ledger))
                assert coord.connected and coord.reconnects == 1
        assert [(type(event), connected) for event, connected in links] == [
            (LinkLost, False), (LinkRestored, True)]
        restored = links[1][0]
        assert isinstance(restored, LinkRestored) and restored.attempts >= 1
        assert [r.event for r in store.journal(ledger)] == [Credited(n=n) for n in (1, 2, 3)]
        # At least once on the wire, each under one id (the outbox entry's): a
        # receiver's inbox applies a repeat once.
        by_id = {e.message_id: e.body for e in got}
        assert len(by_id) == 3 and set(by_id.values()) == {Noted(n=n) for n in (1, 2, 3)}

    with broker.restartable_broker(tmp_path, persistence=True) as mosquitto:
        try:
            anyio.run(main, mosquitto, backend="asyncio")  # aiomqtt runs on asyncio only
        finally:
            store.close()


def test_a_connect_without_connack_leaves_no_socket_open() -> None:
    """A 'broker' that accepts TCP but never answers the CONNECT: the connect fails
    with a TransportError naming it, and the transport ends the connection itself
    (a DISCONNECT, then the end of the stream), so a long outage's attempts leak no
    sockets."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ended: list[bytes] = []

    def mute_broker() -> None:
        connection, _ = listener.accept()
        with connection:
            received = b""
            while chunk := connection.recv(4096):
                received += chunk
            ended.append(received)

    async def main() -> None:
        transport = MqttTransport(CODEC, client_id=f"t{uuid.uuid4().hex[:12]}",
                                  subscriptions=["x"], port=port, timeout=0.5)
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: anyio.to_thread.run_sync(mute_broker))
                with pytest.raises(TransportError) as caught:
                    await transport.__aenter__()
        assert caught.value.operation == "connect"

    with listener:
        anyio.run(main, backend="asyncio")
    # Its CONNECT, then a DISCONNECT and the end: closed by the transport, not
    # by paho's keepalive a minute later (which sends no DISCONNECT).
    assert len(ended) == 1 and ended[0].startswith(b"\x10") and ended[0].endswith(b"\xe0\x00")
