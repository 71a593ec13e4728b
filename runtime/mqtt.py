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
  every one of them is (after their turns). A refusal is counted, passed to
  ``on_refused`` (the store's dead-letter table; in a worker thread, waited
  for), published on the dead topic and acknowledged, in that order.

- Reconnection (``reconnect=``, on by default): when the connection breaks
  after a successful first connect (a failed first connect fails at once),
  the transport connects again with the same client id and ``clean_start``
  off, waiting a capped, jittered exponential backoff between attempts
  (:func:`reconnect_delay`), and subscribes again. The broker resumes the
  session and redelivers what was not acknowledged; an acknowledgement for a
  message of the old connection is never sent on the new one (its message id
  may name another message there). Meanwhile :attr:`MqttTransport.connected`
  is False and a publish waits for the next connection (its caller bounds the
  wait); a publish whose connection broke before its PUBACK is published
  again on the next one (same payload, same message id: receivers dedupe).
  With ``give_up_after`` the transport fails with a :class:`TransportError`
  once an outage lasted that long.

aiomqtt runs on asyncio only, so the kernel using this transport must too.
"""

from __future__ import annotations

import asyncio
import functools
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType

import aiomqtt
import anyio
import anyio.to_thread
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

__all__ = ["LinkEvent", "LinkLost", "LinkRestored", "MqttTls", "MqttTransport", "Reconnect",
           "reconnect_delay", "subscription_filter"]

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


@attrs.frozen(kw_only=True)
class Reconnect:
    """How :class:`MqttTransport` reconnects after its connection broke.

    Attempt ``n`` (1, 2, ...) waits :func:`reconnect_delay`: ``first_delay *
    2**(n-1)`` capped at ``max_delay``, times a jitter factor in [0.5, 1] so
    that nodes cut off together do not come back in step.

    Invariants: ``0 < first_delay <= max_delay``; ``give_up_after`` is None
    (never give up) or > 0.

    Attributes:
        first_delay: seconds before the first attempt (at most, with jitter).
        max_delay: the cap on the wait between two attempts (seconds).
        give_up_after: seconds of outage after which the transport stops
            trying and fails (None: it keeps trying until it is closed).
    """

    first_delay: float = 0.2
    max_delay: float = 30.0
    give_up_after: float | None = None

    def __attrs_post_init__(self) -> None:
        if not 0 < self.first_delay <= self.max_delay:
            raise ValueError(f"Reconnect: need 0 < first_delay <= max_delay (seconds), got "
                             f"first_delay={self.first_delay!r}, max_delay={self.max_delay!r}")
        if self.give_up_after is not None and not self.give_up_after > 0:
            raise ValueError(f"Reconnect: give_up_after must be > 0 seconds or None, "
                             f"got {self.give_up_after!r}")


def reconnect_delay(attempt: int, policy: Reconnect, rng: random.Random) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (1-based): capped
    exponential backoff, jittered by a factor drawn from ``rng`` in [0.5, 1].

    Raises:
        ValueError: ``attempt`` is not >= 1.
    """
    if attempt < 1:
        raise ValueError(f"reconnect_delay: attempt must be >= 1, got {attempt!r}")
    # min() before the power would overflow for a long outage's attempt count.
    doublings = min(attempt - 1, 64)
    ceiling = min(policy.max_delay, policy.first_delay * 2.0 ** doublings)
    return ceiling * rng.uniform(0.5, 1.0)


@attrs.frozen(kw_only=True)
class LinkLost:
    """The broker connection broke; the transport is reconnecting.

    Attributes:
        error: what broke it (the client library's message; no payload).
    """

    error: str


@attrs.frozen(kw_only=True)
class LinkRestored:
    """The transport is connected again (session resumed, subscriptions renewed).

    Invariants: ``attempts >= 1``; ``outage >= 0``.

    Attributes:
        attempts: connection attempts it took, the successful one included.
        outage: seconds from noticing the break to the new connection.
    """

    attempts: int
    outage: float


LinkEvent = LinkLost | LinkRestored
"""What ``on_link`` hears about the connection (for logs)."""


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
            redacted) before it is published, e.g. ``store.record_dead_letter``;
            it runs in a worker thread (a store write does not stall the
            event loop), and the refusal waits for it.
        clock: seconds since the epoch, for the gate's ``now`` and the records.
        username: the broker login (None: anonymous).
        password: the login's password.
        tls: connect over TLS with these files (None: plain TCP).
        reconnect: how to reconnect after the connection broke (None: a
            broken connection fails the transport with a :class:`TransportError`).
        on_link: told when the connection breaks and when it is back
            (:class:`LinkLost`, :class:`LinkRestored`), e.g. to log it.
        rng: draws the backoff's jitter (None: a fresh ``random.Random()``).
        monotonic: a monotonic clock (seconds) for outages and ``give_up_after``.

    Attributes:
        published: envelopes published and confirmed by the broker (PUBACK).
        delivered: inbound envelopes handed to the kernel (dead-lettered
            payloads are not envelopes and not counted here).
        dead_letters: inbound payloads refused, each published to a dead topic.
        reconnects: connections made again after a break.
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
        reconnect: Reconnect | None = Reconnect(),
        on_link: Callable[[LinkEvent], None] | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
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
        self.reconnect = reconnect
        self.on_link = on_link
        self._rng = rng if rng is not None else random.Random()
        self._monotonic = monotonic
        self.dead_letters = 0  # payloads refused (each published to a dead topic)
        self.published = 0  # envelopes the broker confirmed (PUBACK)
        self.delivered = 0  # inbound envelopes handed to the kernel
        self.reconnects = 0  # connections made again after a break
        # The connection in use; None while there is none (an outage, or
        # closed). Acknowledgements compare against it (see _ack).
        self._client: aiomqtt.Client | None = None
        # Set while connected; a fresh one (unset) from a break to the next connection.
        self._up = anyio.Event()
        # Why the transport no longer connects (closed, gave up): publishes fail with it.
        self._failure: TransportError | None = None
        # Publishes waiting for their PUBACK on the current connection: a
        # break cancels them, and each publishes again on the next connection.
        self._in_flight: set[anyio.CancelScope] = set()
        self._publishing = anyio.Semaphore(window)
        send, receive = anyio.create_memory_object_stream[Delivery](window)
        self._send: MemoryObjectSendStream[Delivery] = send
        self._receive: MemoryObjectReceiveStream[Delivery] = receive
        self._tg: TaskGroup | None = None
        self._entered = False
        # The current reader's own scope: stop_reading() must not cancel the
        # task group's scope, which also covers the code inside ``async with``.
        self._reading = anyio.CancelScope()
        self._reading_stopped = False
        self._reader_running = False

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> MqttTransport:
        try:
            client = await self._open()
        except TransportError:
            self._send.close()  # never used: a failed connect leaves nothing open
            self._receive.close()
            raise
        try:
            self._tg = await anyio.create_task_group().__aenter__()
        except BaseException:
            await self._close(client)
            raise
        self._entered = True
        self._client = client  # connected from here on, before the task below runs
        self._up.set()
        self._tg.start_soon(self._keep_connected, client, name=f"mqtt link {self.client_id}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if not self._entered or self._tg is None:
            raise TransportError("close", "MqttTransport was not entered")
        self._entered = False
        self._fail(TransportError("publish", "the transport is closed"))
        tg, self._tg = self._tg, None
        tg.cancel_scope.cancel()
        try:
            return await tg.__aexit__(exc_type, exc, tb)
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
        next session. Publishing goes on (the kernel drains its outbox), on a
        new connection too if this one breaks.
        """
        self._reading_stopped = True
        self._reading.cancel()
        if not self._reader_running:  # an outage: no reader to close the stream
            self._send.close()

    # -- the Transport protocol -------------------------------------------------------

    async def publish(self, envelope: Envelope) -> None:
        """Publish ``envelope`` at QoS 1 to its recipient's topic; return on PUBACK.

        While the transport is reconnecting this waits for the connection
        (the caller bounds the wait, as the live kernel's ``send_timeout`` does).

        Raises:
            NotOnTheWire: the envelope cannot be encoded.
            TransportError: closed, gave up reconnecting, or the broker did
                not confirm in time (then ``retryable``).
        """
        payload = self.codec.encode_envelope(envelope)
        await self._publish(to_topic(envelope.recipient), payload)
        self.published += 1

    async def publish_dead_letter(self, letter: RefusedPayload) -> None:
        """Publish ``letter`` (already redacted) on ``orderloom/v1/dead/{reason}``; return on PUBACK.

        Raises:
            TransportError: as :meth:`publish`.
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

    # -- the connection ---------------------------------------------------------------

    def _new_client(self) -> aiomqtt.Client:
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
        return client

    async def _open(self) -> aiomqtt.Client:
        """A new connection (a new client: acknowledgements never cross
        connections), subscribed to every filter.

        Raises:
            TransportError: the connect or a subscribe failed (``operation`` says which).
        """
        client = self._new_client()
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            _drop_socket(client)
            raise TransportError("connect", f"{self.hostname}:{self.port}: {exc}") from exc
        except BaseException:  # cancelled mid-connect (the transport closes)
            await self._close(client)
            _drop_socket(client)
            raise
        try:
            # Again after a reconnect: the resumed session has them already,
            # but a broker that lost its sessions (no persistence) does not.
            for topic_filter in self.filters:
                granted = await client.subscribe(topic_filter, qos=_QOS)
                # MQTT 5 answers with reason codes (>= 0x80: refused).
                if any(isinstance(code, ReasonCode) and code.is_failure for code in granted):
                    raise TransportError("subscribe", f"{topic_filter}: refused by the broker")
        except aiomqtt.MqttError as exc:
            await self._close(client)
            raise TransportError("subscribe", str(exc)) from exc
        except BaseException:
            await self._close(client)
            raise
        return client

    async def _close(self, client: aiomqtt.Client) -> None:
        """Leave ``client``: a DISCONNECT if it is still connected, bounded, not cancellable."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
            try:
                await client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass  # it is gone either way

    def _fail(self, error: TransportError) -> None:
        """No more connections: waiting and later publishes fail with ``error``."""
        if self._failure is None:
            self._failure = error
        self._client = None  # acknowledgements from now on are for a gone connection
        self._up.set()  # wakes the publishes waiting for a connection

    async def _keep_connected(self, client: aiomqtt.Client) -> None:
        """Hold the connection; when it breaks, connect again (or fail)."""
        try:
            while True:
                error = await self._hold(client)
                if self.reconnect is None:
                    raise TransportError(
                        "receive", f"{self.hostname}:{self.port}: {error}") from error
                client, restored = await self._reconnect(self.reconnect, error)
                self._client = client  # connected (readiness) before it is told
                self._up.set()
                self._tell(restored)
        except TransportError as exc:
            self._fail(exc)
            raise
        finally:
            self._send.close()

    async def _hold(self, client: aiomqtt.Client) -> BaseException:
        """Use ``client`` until its connection breaks; returns what broke it."""
        lost = client._disconnected  # noqa: SLF001 (aiomqtt has no public "disconnected" wait)
        self._client = client
        self._up.set()
        try:
            async with anyio.create_task_group() as tg:
                if not self._reading_stopped:
                    self._reading = anyio.CancelScope()
                    tg.start_soon(self._read_until_stopped, client, self._reading,
                                  name=f"mqtt reader {self.client_id}")
                await asyncio.wait((lost,))
                tg.cancel_scope.cancel()  # the reader: its messages are redelivered
        finally:
            if self._client is client:
                self._client = None
            if self._failure is None:
                self._up = anyio.Event()
            # Publishes waiting for a PUBACK on the broken connection start again on the next.
            for scope in self._in_flight:
                scope.cancel()
            self._in_flight.clear()
            await self._close(client)  # also when the transport closes: a DISCONNECT
        error = lost.exception() if not lost.cancelled() else None
        return error if error is not None else aiomqtt.MqttError("disconnected")

    async def _reconnect(self, policy: Reconnect,
                         error: BaseException) -> tuple[aiomqtt.Client, LinkRestored]:
        """Connect again, with backoff, having told ``on_link`` of the break.

        Raises:
            TransportError: ``give_up_after`` passed without a connection.
        """
        self._tell(LinkLost(error=f"{type(error).__name__}: {error}"))
        began = self._monotonic()
        attempts = 0
        last: BaseException = error
        while True:
            attempts += 1
            delay = reconnect_delay(attempts, policy, self._rng)
            if policy.give_up_after is not None:
                left = policy.give_up_after - (self._monotonic() - began)
                if left <= 0:
                    raise TransportError(
                        "connect", f"{self.hostname}:{self.port}: gave up reconnecting after "
                        f"{attempts - 1} attempts over {policy.give_up_after} s "
                        f"(broker.reconnect_give_up_after): {last}") from last
                delay = min(delay, left)
            await anyio.sleep(delay)
            try:
                client = await self._open()
            except TransportError as exc:
                last = exc
                continue
            self.reconnects += 1
            return client, LinkRestored(attempts=attempts,
                                        outage=max(0.0, self._monotonic() - began))

    def _tell(self, event: LinkEvent) -> None:
        if self.on_link is not None:
            self.on_link(event)

    async def _connection(self, broken: aiomqtt.Client | None) -> aiomqtt.Client:
        """The connection to publish on, waiting for one while there is none;
        never ``broken`` (a connection a publish saw break, not yet replaced)."""
        while True:
            failure = self._failure
            if failure is not None:  # a fresh error per call (one instance would gather tracebacks)
                raise TransportError("publish", f"no connection ({failure})") from failure
            client = self._client
            if client is not None and client is not broken:
                return client
            if client is None:
                await self._up.wait()
            else:  # the break is not noticed yet: _hold() replaces it shortly
                await anyio.sleep(0.01)

    # -- internals --------------------------------------------------------------------

    async def _publish(self, topic: str, payload: bytes) -> None:
        async with self._publishing:
            broken: aiomqtt.Client | None = None
            while True:
                client = await self._connection(broken)
                with anyio.CancelScope() as scope:
                    self._in_flight.add(scope)
                    try:
                        await client.publish(topic, payload, qos=_QOS, timeout=self.timeout)
                    except aiomqtt.MqttError as exc:
                        if self.reconnect is None or client._client.is_connected():  # noqa: SLF001
                            raise TransportError("publish", f"{topic}: {exc}",
                                                 retryable=self.reconnect is not None) from exc
                        broken = client  # the connection broke under it: again on the next
                        continue
                    finally:
                        self._in_flight.discard(scope)
                if not scope.cancelled_caught:
                    break
                # The connection broke while it waited for its PUBACK: the
                # broker may or may not have it; the next connection gets it
                # again under the same message id.
                broken = client
        crash_point("publish.after_confirm")

    async def _read_until_stopped(self, client: aiomqtt.Client, scope: anyio.CancelScope) -> None:
        self._reader_running = True
        try:
            with scope:
                await self._read(client)
        except aiomqtt.MqttError:
            pass  # the connection broke: _hold() sees it and reconnects
        finally:
            self._reader_running = False
            if self._reading_stopped:
                self._send.close()  # the deliveries end (stop_reading)

    async def _read(self, client: aiomqtt.Client) -> None:
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
            payload=self.codec.redacted(payload), raw=payload))

    async def _refuse(self, letter: RefusedPayload) -> None:
        self.dead_letters += 1  # counted before it can be seen on the topic
        if self.on_refused is not None:
            # A store write (SQLite, PostgreSQL) must not stall the event
            # loop. The reader waits for it (the record is written before
            # the letter is published and the message acknowledged), and the
            # wait is not cancellable, so the store is not closed under it.
            await anyio.to_thread.run_sync(self.on_refused, letter)
        await self.publish_dead_letter(letter)


def _drop_socket(client: aiomqtt.Client) -> None:
    """Close the socket of a connect that did not complete: aiomqtt leaves it
    open when no CONNACK came in time, and a long outage makes many attempts."""
    paho = client._client  # noqa: SLF001
    if paho.socket() is not None:
        paho.disconnect()  # ends the half-open connection; paho closes the socket


def _payload(message: aiomqtt.Message) -> bytes:
    raw = message.payload
    return bytes(raw) if isinstance(raw, (bytes, bytearray)) else str(raw).encode()
