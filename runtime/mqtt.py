"""The MQTT transport: envelopes between live kernels over a broker (aiomqtt, MQTT 5).

- Publishes go to ``orderloom/v1/to/{address}`` at QoS 1; :meth:`MqttTransport.publish`
  returns when the broker has confirmed (PUBACK), and at most ``window`` publishes
  wait for confirmation at once (the rest wait their turn).
- The session is persistent: a stable client id, ``clean_start`` off and a
  session expiry interval, so the broker keeps the subscriptions and the
  unacknowledged messages while the node is away and redelivers them when it
  comes back.
- Inbound messages are acknowledged by hand (paho's ``manual_ack_set`` and
  ``ack``; aiomqtt 2.5 has no manual ack of its own): the live kernel calls
  :meth:`Delivery.ack` after the recipient's turn completed (for a persistent
  actor: after its store commit). A turn that fails is not acknowledged and is
  redelivered when the session resumes.
- Back-pressure, never drops: MQTT 5's Receive Maximum (= ``window``) stops the
  broker sending more than ``window`` unacknowledged messages, and the stream
  of deliveries to the kernel is bounded; while the kernel does not read (a
  full mailbox), nothing more is read and the broker keeps the rest queued.
- Sockets have ``TCP_NODELAY`` (with Nagle a request-to-reply takes ~88 ms
  instead of ~0.45 ms).
- A payload that cannot be decoded goes to ``orderloom/v1/dead/{reason}``,
  redacted, and is acknowledged (it can never succeed).
- Ingest (optional, ``ingest=``): the node also subscribes to
  ``orderloom/v1/in/{source}`` for each source its :class:`~orderloom.runtime.IngestGate`
  knows. A payload there is handed to the gate with the message's MQTT 5
  user properties as its headers (Shopify's ``X-Shopify-Topic``,
  ``X-Shopify-Hmac-Sha256``, ``X-Shopify-Webhook-Id``, ``X-Shopify-Shop-Domain``);
  what it accepts becomes deliveries, and the message is acknowledged once
  every one of them is (after their turns). A refusal is published on the
  dead topic, passed to ``on_refused`` (the store's dead-letter table) and
  acknowledged.

aiomqtt runs on asyncio only, so the kernel using this transport must too.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType

import aiomqtt
import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ._contract import Envelope
from ._crash import crash_point
from ._ingest import IngestGate
from ._refused import RefusedPayload
from ._topics import (
    TOPIC_ROOT,
    InvalidTopic,
    TopicKind,
    dead_topic,
    ingest_topic,
    parse_topic,
    to_topic,
)
from ._transport import Delivery, TransportError, ack_after
from ._wire import WireCodec
from ._wire_errors import IngestError, IngestReason

__all__ = ["MqttTls", "MqttTransport", "subscription_filter"]

_QOS = 1


def subscription_filter(pattern: str) -> str:
    """The topic filter for the addresses ``pattern`` names.

    ``pattern`` is an address (``warehouse/W1``), an address prefix followed
    by ``/#`` (``order/#``: every address under it), or ``#`` (every address).

    Raises:
        InvalidTopic: the address part is not valid.
    """
    if pattern == "#":
        return f"{TOPIC_ROOT}/{TopicKind.TO.value}/#"
    if pattern.endswith("/#"):
        return to_topic(pattern[:-2]) + "/#"
    return to_topic(pattern)


@attrs.frozen(kw_only=True)
class MqttTls:
    """TLS to the broker: PEM files (None: the system's CA store, no client certificate).

    Invariant: ``cert_file`` and ``key_file`` are given together or not at all.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("MqttTls: cert_file and key_file go together")


class MqttTransport:
    """A :class:`~orderloom.runtime.Transport` on an MQTT 5 broker.

    Use as an async context manager, outside the kernel that uses it::

        async with MqttTransport(codec, client_id="node-a", subscriptions=["order/#"]) as t, \\
                LiveKernel(transport=t) as kernel:
            ...

    Args:
        codec: encodes and decodes envelopes (``orderloom.actors.wire_codec()``).
        client_id: the stable MQTT client id; the session (subscriptions and
            unacknowledged messages) belongs to it.
        subscriptions: the addresses this node serves (see :func:`subscription_filter`).
        hostname: the broker's host.
        port: the broker's port.
        window: the most unconfirmed publishes and the most unacknowledged
            inbound messages at once.
        session_expiry: how long (seconds) the broker keeps the session after
            a disconnect.
        timeout: how long (seconds) to wait for the broker to answer a
            connect, a subscribe or a publish.
        ingest: a gate for payloads from outside sources: the node subscribes
            to ``orderloom/v1/in/{source}`` for each of its sources.
        on_refused: called with each refused payload's record (already
            redacted) before it is published, e.g. ``store.record_dead_letter``.
        clock: seconds since the epoch, for the gate's ``now`` and the records.
        username: the broker login (None: anonymous).
        password: the login's password.
        tls: connect over TLS with these files (None: plain TCP).

    Attributes:
        published: envelopes published and confirmed by the broker (PUBACK).
        delivered: inbound envelopes handed to the kernel (dead-lettered
            payloads are not envelopes and not counted here).
        dead_letters: inbound payloads refused, each published to a dead topic.
    """

    def __init__(
        self,
        codec: WireCodec,
        *,
        client_id: str,
        subscriptions: Sequence[str],
        hostname: str = "127.0.0.1",
        port: int = 1883,
        window: int = 32,
        session_expiry: int = 24 * 3600,
        timeout: float = 10.0,
        ingest: IngestGate | None = None,
        on_refused: Callable[[RefusedPayload], None] | None = None,
        clock: Callable[[], float] = time.time,
        username: str | None = None,
        password: str | None = None,
        tls: MqttTls | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"MqttTransport window must be >= 1, got {window!r}")
        self.codec = codec
        self.client_id = client_id
        self.ingest = ingest
        self.ingest_stopped = False
        self.on_refused = on_refused
        self.clock = clock
        self.filters = tuple(subscription_filter(p) for p in subscriptions) + tuple(
            ingest_topic(source) for source in sorted(ingest.sources if ingest else ()))
        self.hostname = hostname
        self.port = port
        self.window = window
        self.session_expiry = session_expiry
        self.timeout = timeout
        self.username = username
        self._password = password
        self.tls = tls
        self.dead_letters = 0  # payloads refused (each published to a dead topic)
        self.published = 0  # envelopes the broker confirmed (PUBACK)
        self.delivered = 0  # inbound envelopes handed to the kernel
        self._client: aiomqtt.Client | None = None
        self._publishing = anyio.Semaphore(window)
        send, receive = anyio.create_memory_object_stream[Delivery](window)
        self._send: MemoryObjectSendStream[Delivery] = send
        self._receive: MemoryObjectReceiveStream[Delivery] = receive
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        # The reader's own scope: stop_reading() must not cancel the task
        # group's scope, which also covers the code inside ``async with``.
        self._reading = anyio.CancelScope()

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> MqttTransport:
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.SessionExpiryInterval = self.session_expiry
        # The broker sends at most this many unacknowledged messages: since a
        # message is acknowledged after its turn, a slow kernel stops the flow.
        connect.ReceiveMaximum = self.window
        client = aiomqtt.Client(
            self.hostname, self.port, identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=connect,
            max_inflight_messages=self.window, timeout=self.timeout,
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
            username=self.username, password=self._password,
            tls_params=None if self.tls is None else aiomqtt.TLSParameters(
                ca_certs=self.tls.ca_file, certfile=self.tls.cert_file,
                keyfile=self.tls.key_file),
        )
        # aiomqtt 2.5 acknowledges on receipt and has no switch for it; its
        # paho client underneath does (set before connecting).
        client._client.manual_ack_set(True)  # noqa: SLF001
        # Our window bounds the publishes waiting for their PUBACK; aiomqtt
        # warns past 10 by default, which under load is one log line per publish.
        client.pending_calls_threshold = self.window + 1
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(client)
        except aiomqtt.MqttError as exc:
            self._send.close()  # never used: a failed connect leaves nothing open
            self._receive.close()
            raise TransportError("connect", f"{self.hostname}:{self.port}: {exc}") from exc
        try:
            for topic_filter in self.filters:
                granted = await client.subscribe(topic_filter, qos=_QOS)
                # MQTT 5 answers with reason codes (>= 0x80: refused).
                if any(isinstance(code, ReasonCode) and code.is_failure for code in granted):
                    raise TransportError("subscribe", f"{topic_filter}: refused by the broker")
            self._client = client
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._tg.start_soon(self._read_until_stopped, client,
                                name=f"mqtt reader {self.client_id}")
        except aiomqtt.MqttError as exc:
            await stack.aclose()
            raise TransportError("subscribe", str(exc)) from exc
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._stack is None:
            raise TransportError("close", "MqttTransport was not entered")
        self._client = None  # acknowledgements from now on are for a gone connection
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        stack, self._stack = self._stack, None
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        finally:
            self._receive.close()

    @property
    def connected(self) -> bool:
        """Whether the connection to the broker is up (what readiness checks)."""
        client = self._client
        return client is not None and bool(client._client.is_connected())  # noqa: SLF001

    def stop_reading(self) -> None:
        """Take no more messages from the broker (a graceful stop's first step).

        Deliveries already handed over stay with the kernel; what the broker
        still holds, or sent but was not acknowledged, is redelivered to the
        next session. Publishing goes on (the kernel drains its outbox).
        """
        self._reading.cancel()

    # -- the Transport protocol -------------------------------------------------------

    async def publish(self, envelope: Envelope) -> None:
        """Publish ``envelope`` at QoS 1 to its recipient's topic; return on PUBACK.

        Raises:
            NotOnTheWire: the envelope cannot be encoded.
            TransportError: not connected, or the broker did not confirm in time.
        """
        payload = self.codec.encode_envelope(envelope)
        await self._publish(to_topic(envelope.recipient), payload)
        self.published += 1

    async def publish_dead_letter(self, letter: RefusedPayload) -> None:
        """Publish ``letter`` (already redacted) on ``orderloom/v1/dead/{reason}``; return on PUBACK.

        Raises:
            TransportError: not connected, or the broker did not confirm in time.
        """
        await self._publish(dead_topic(letter.reason.value), letter.to_json())

    def stop_ingest(self) -> None:
        """Stop taking ingest payloads (graceful shutdown: stop ingest, then drain).

        Payloads arriving on ingest topics from now on are neither delivered
        nor acknowledged: the subscription stays in the persistent session,
        so the broker delivers them again when the node reconnects.
        Envelopes for local actors keep flowing.
        """
        self.ingest_stopped = True

    def deliveries(self) -> AsyncIterator[Delivery]:
        """The inbound envelopes, bounded (``window``); ends when the transport closes."""
        return self._receive

    # -- internals --------------------------------------------------------------------

    async def _publish(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None:
            raise TransportError("publish", "the transport is not connected")
        async with self._publishing:
            try:
                await client.publish(topic, payload, qos=_QOS, timeout=self.timeout)
            except aiomqtt.MqttError as exc:
                raise TransportError("publish", f"{topic}: {exc}") from exc
        crash_point("publish.after_confirm")

    async def _read_until_stopped(self, client: aiomqtt.Client) -> None:
        with self._reading:
            await self._read(client)

    async def _read(self, client: aiomqtt.Client) -> None:
        async with self._send:
            try:
                async for message in client.messages:
                    if self.ingest is not None and str(message.topic).startswith(
                            f"{TOPIC_ROOT}/{TopicKind.IN.value}/"):
                        await self._ingest(client, self.ingest, message)
                        continue
                    crash_point("transport.received")
                    envelope = await self._decode(message)
                    if envelope is None:
                        self._ack(client, message.mid)
                        continue
                    # Bound now (a partial, not a closure over the loop's
                    # variable): each delivery acknowledges its own message.
                    ack = functools.partial(self._ack, client, message.mid)
                    # Waits while the kernel does not read: back-pressure, not a drop.
                    await self._send.send(Delivery(envelope, ack))
                    self.delivered += 1
            except aiomqtt.MqttError as exc:  # the connection broke
                raise TransportError("receive", f"{self.hostname}:{self.port}: {exc}") from exc

    async def _ingest(self, client: aiomqtt.Client, gate: IngestGate,
                      message: aiomqtt.Message) -> None:
        """Hand an ingest topic's payload to the gate; deliver what it accepts."""
        if self.ingest_stopped:
            return  # left unacknowledged: redelivered to the next session
        topic = str(message.topic)
        payload = _payload(message)
        headers = {str(k): str(v) for k, v in getattr(message.properties, "UserProperty", ())}
        source = topic.rsplit("/", 1)[-1]
        outcome = gate.ingest(source, headers, payload, origin=topic, now=self.clock())
        if isinstance(outcome, RefusedPayload):
            await self._refuse(outcome)
            self._ack(client, message.mid)
            return
        ack = ack_after(len(outcome.envelopes), functools.partial(self._ack, client, message.mid))
        for envelope in outcome.envelopes:
            await self._send.send(Delivery(envelope, ack))

    def _ack(self, client: aiomqtt.Client, mid: int) -> None:
        # A message id belongs to one connection: after a reconnect the same
        # id may name another message, and the broker redelivers this one.
        if self._client is client:
            client._client.ack(mid, _QOS)  # noqa: SLF001

    async def _decode(self, message: aiomqtt.Message) -> Envelope | None:
        """The envelope in ``message``, or None once it is dead-lettered."""
        payload = _payload(message)
        topic = str(message.topic)
        try:
            envelope = self.codec.decode_envelope(payload)
            if parse_topic(topic).name != envelope.recipient:
                raise IngestError(IngestReason.BAD_ADDRESS, "the recipient is not the "
                                  "topic's address", path="recipient")
        except InvalidTopic as exc:
            await self._dead(IngestError(IngestReason.BAD_ADDRESS, str(exc)), None, payload)
            return None
        except IngestError as exc:
            await self._dead(exc, topic, payload)
            return None
        return envelope

    async def _dead(self, error: IngestError, topic: str | None, payload: bytes) -> None:
        # IngestError's message never quotes a payload value, and the payload
        # itself goes out redacted.
        await self._refuse(RefusedPayload.of(
            error, source="wire", origin=topic or "", received_at=self.clock(),
            payload=self.codec.redacted(payload)))

    async def _refuse(self, letter: RefusedPayload) -> None:
        self.dead_letters += 1  # counted before it can be seen on the topic
        if self.on_refused is not None:
            self.on_refused(letter)
        await self.publish_dead_letter(letter)


def _payload(message: aiomqtt.Message) -> bytes:
    raw = message.payload
    return bytes(raw) if isinstance(raw, (bytes, bytearray)) else str(raw).encode()
