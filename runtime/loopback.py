"""An in-memory transport: live kernels in one process, connected as over a broker.

A :class:`LoopbackBroker` stands in for the MQTT broker and a
:class:`LoopbackTransport` for a node's connection to it. It keeps what the
MQTT transport relies on, so the same contract tests hold for both
(``tests/contract/test_transport_contract.py``):

- every envelope is encoded and decoded with the node's
  :class:`~orderloom.runtime.WireCodec`, so a wire-format bug shows here too;
- a session belongs to a client id and outlives its connection: messages
  for its addresses queue while it is away, and a delivery that was never
  acknowledged is delivered again (first) when the same client id connects
  again, never within one connection (as MQTT does);
- at most ``window`` deliveries are unacknowledged at once, and the stream of
  deliveries is bounded: a kernel that does not read stops the flow;
- a payload that cannot be decoded (or whose recipient is not its topic's
  address) becomes a dead letter with its reason and the payload redacted,
  and is acknowledged;
- a message for addresses no session subscribes to is dropped, as a broker
  drops it;
- with an ingest gate, payloads on ``orderloom/v1/in/{source}`` (published
  with :meth:`LoopbackBroker.publish_raw` and their user properties) go
  through the gate; the message is acknowledged once every delivery made
  from it is, and a refusal is recorded and dead-lettered.

Usage::

    broker = LoopbackBroker()
    async with LoopbackTransport(broker, codec, client_id="a", subscriptions=["a/#"]) as ta, \\
            LoopbackTransport(broker, codec, client_id="b", subscriptions=["b/#"]) as tb, \\
            LiveKernel(transport=ta) as a, LiveKernel(transport=tb) as b:
        ...

Like the live kernel, it needs anyio (asyncio or trio); ``orderloom.runtime``
itself does not import it.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._contract import Envelope
from ._ingest import IngestGate
from ._refused import RefusedPayload
from ._topics import InvalidTopic, TopicKind, dead_topic, ingest_topic, parse_topic, to_topic
from ._transport import Delivery, TransportError, ack_after
from ._wire import WireCodec
from ._wire_errors import IngestError, IngestReason

__all__ = ["LoopbackBroker", "LoopbackTransport"]


def _matches(pattern: str, address: str) -> bool:
    """Whether ``address`` is one ``pattern`` names (``a/b``, ``a/#``, ``#``)."""
    if pattern == "#":
        return True
    if pattern.endswith("/#"):
        return address.startswith(pattern[:-1])
    return address == pattern


# (id, topic, payload, user properties)
_Item = tuple[int, str, bytes, tuple[tuple[str, str], ...]]


class _Session:
    """A client id's subscriptions and queued messages; outlives its connections."""

    def __init__(self, patterns: tuple[str, ...], sources: frozenset[str]) -> None:
        self.patterns = patterns
        self.sources = sources  # ingest sources (orderloom/v1/in/{source})
        self.queue: deque[_Item] = deque()
        self.unacked: dict[int, _Item] = {}  # sent on this connection
        self.connection: object | None = None  # the current connection's token
        self.wake = anyio.Event()

    def notify(self) -> None:
        self.wake.set()


class LoopbackBroker:
    """The broker of loopback transports: sessions by client id, and the dead letters.

    Attributes:
        dead_letters: ``(topic, record)`` for each refused payload, in order;
            the record is what the MQTT transport publishes on the dead topic.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._ids = itertools.count(1)
        self.dead_letters: list[tuple[str, dict[str, Any]]] = []

    def publish_raw(self, topic: str, payload: bytes,
                    user_properties: Sequence[tuple[str, str]] = ()) -> None:
        """Queue ``payload`` on ``topic`` for every session subscribed to it, as
        a foreign client would publish it (nothing is checked here);
        ``user_properties`` are MQTT 5's (an ingest source's headers)."""
        try:
            parsed = parse_topic(topic)
        except InvalidTopic:
            return  # no subscription can match it
        item = (next(self._ids), topic, payload, tuple(user_properties))
        for session in self._sessions.values():
            if parsed.kind is TopicKind.IN:
                wanted = parsed.name in session.sources
            else:
                wanted = parsed.kind is TopicKind.TO and any(
                    _matches(p, parsed.name) for p in session.patterns)
            if wanted:
                session.queue.append(item)
                session.notify()

    def _open(self, client_id: str, patterns: tuple[str, ...], sources: frozenset[str],
              token: object) -> _Session:
        session = self._sessions.get(client_id)
        if session is None:
            session = self._sessions[client_id] = _Session(patterns, sources)
        elif session.connection is not None:
            raise TransportError("connect", f"client id {client_id!r} is already connected")
        else:
            session.patterns = tuple(dict.fromkeys(session.patterns + patterns))
            session.sources = session.sources | sources
            # What the last connection never acknowledged goes first, in order.
            session.queue.extendleft(reversed(sorted(session.unacked.values())))
            session.unacked.clear()
        session.connection = token
        session.wake = anyio.Event()
        return session


class LoopbackTransport:
    """A :class:`~orderloom.runtime.Transport` through a :class:`LoopbackBroker`.

    Args:
        broker: the broker shared by the nodes to connect.
        codec: encodes and decodes envelopes.
        client_id: the session's id; connecting again with it resumes the session.
        subscriptions: the addresses this node serves (an address, ``prefix/#`` or ``#``).
        window: the most unacknowledged deliveries at once.
        ingest: a gate for payloads on ``orderloom/v1/in/{source}`` of its sources.
        on_refused: called with each refused payload's record (e.g.
            ``store.record_dead_letter``).
        clock: seconds since the epoch, for the gate's ``now`` and the records.
    """

    def __init__(
        self, broker: LoopbackBroker, codec: WireCodec, *, client_id: str,
        subscriptions: Sequence[str], window: int = 32, ingest: IngestGate | None = None,
        on_refused: Callable[[RefusedPayload], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window < 1:
            raise ValueError(f"LoopbackTransport window must be >= 1, got {window!r}")
        for pattern in subscriptions:  # the same rules as MQTT topic filters
            if pattern != "#":
                to_topic(pattern.removesuffix("/#"))
        self.broker = broker
        self.codec = codec
        self.client_id = client_id
        self.patterns = tuple(subscriptions)
        self.ingest = ingest
        self.ingest_stopped = False
        self.on_refused = on_refused
        self.clock = clock
        self.sources = frozenset(ingest.sources) if ingest is not None else frozenset()
        for source in self.sources:
            ingest_topic(source)
        self.window = window
        self.dead_letters = 0  # payloads refused on this connection
        self._session: _Session | None = None
        self._token = object()
        send, receive = anyio.create_memory_object_stream[Delivery](window)
        self._send: MemoryObjectSendStream[Delivery] = send
        self._receive: MemoryObjectReceiveStream[Delivery] = receive
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> LoopbackTransport:
        if self._session is not None:
            raise TransportError("connect", "a LoopbackTransport is entered once")
        self._session = self.broker._open(self.client_id, self.patterns, self.sources,
                                          self._token)  # noqa: SLF001
        stack = AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)  # runs first: the reader ends with the connection
        tg.start_soon(self._pump, self._session, name=f"loopback reader {self.client_id}")
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        session, stack = self._session, self._stack
        if session is None or stack is None:
            raise TransportError("close", "LoopbackTransport was not entered")
        session.connection = None  # acknowledgements from now on are for a gone connection
        self._stack = None
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        finally:
            self._receive.close()

    # -- the Transport protocol -------------------------------------------------------

    async def publish(self, envelope: Envelope) -> None:
        """Encode ``envelope`` and queue it for the sessions serving its recipient.

        Raises:
            NotOnTheWire: the envelope cannot be encoded.
            TransportError: the transport is not connected.
        """
        if self._session is None or self._session.connection is not self._token:
            raise TransportError("publish", "the transport is not connected")
        payload = self.codec.encode_envelope(envelope)
        self.broker.publish_raw(to_topic(envelope.recipient), payload)
        await anyio.lowlevel.checkpoint()  # a publish is a point where others run

    async def publish_dead_letter(self, letter: RefusedPayload) -> None:
        """Add ``letter``'s record to the broker's dead letters (its dead topic).

        Raises:
            TransportError: the transport is not connected.
        """
        if self._session is None or self._session.connection is not self._token:
            raise TransportError("publish", "the transport is not connected")
        self.broker.dead_letters.append((dead_topic(letter.reason.value), letter.as_dict()))
        await anyio.lowlevel.checkpoint()

    def stop_ingest(self) -> None:
        """Stop taking ingest payloads: from now on they are neither delivered
        nor acknowledged (the next connection of the session gets them)."""
        self.ingest_stopped = True

    def deliveries(self) -> AsyncIterator[Delivery]:
        """The inbound envelopes, bounded (``window``); ends when the transport closes."""
        return self._receive

    # -- internals --------------------------------------------------------------------

    async def _pump(self, session: _Session) -> None:
        async with self._send:
            while True:
                while not session.queue or len(session.unacked) >= self.window:
                    session.wake = anyio.Event()
                    await session.wake.wait()
                item = session.queue.popleft()
                session.unacked[item[0]] = item
                if self.ingest is not None and parse_topic(item[1]).kind is TopicKind.IN:
                    await self._ingest(session, self.ingest, item)
                    continue
                envelope = self._decode(item[1], item[2])
                if envelope is None:
                    self._ack(session, item[0])
                    continue
                # Waits while the kernel does not read: back-pressure, not a drop.
                await self._send.send(
                    Delivery(envelope, functools.partial(self._ack, session, item[0])))

    async def _ingest(self, session: _Session, gate: IngestGate, item: _Item) -> None:
        if self.ingest_stopped:
            return  # left unacknowledged: redelivered to the next connection
        key, topic, payload, properties = item
        outcome = gate.ingest(parse_topic(topic).name, dict(properties), payload, origin=topic,
                              now=self.clock())
        if isinstance(outcome, RefusedPayload):
            self._refuse(outcome)
            self._ack(session, key)
            return
        ack = ack_after(len(outcome.envelopes), functools.partial(self._ack, session, key))
        for envelope in outcome.envelopes:
            await self._send.send(Delivery(envelope, ack))

    def _refuse(self, letter: RefusedPayload) -> None:
        self.dead_letters += 1
        if self.on_refused is not None:
            self.on_refused(letter)
        self.broker.dead_letters.append((dead_topic(letter.reason.value), letter.as_dict()))

    def _ack(self, session: _Session, key: int) -> None:
        # Only the connection a delivery came on can acknowledge it; after a
        # reconnect the session delivers it again anyway.
        if session.connection is self._token and session.unacked.pop(key, None) is not None:
            session.notify()

    def _decode(self, topic: str, payload: bytes) -> Envelope | None:
        try:
            envelope = self.codec.decode_envelope(payload)
            if parse_topic(topic).name != envelope.recipient:
                raise IngestError(IngestReason.BAD_ADDRESS, "the recipient is not the "
                                  "topic's address", path="recipient")
        except IngestError as exc:
            # The record the MQTT transport publishes on the dead topic.
            self._refuse(RefusedPayload.of(exc, source="wire", origin=topic,
                                           received_at=self.clock(),
                                           payload=self.codec.redacted(payload), raw=payload))
            return None
        return envelope
