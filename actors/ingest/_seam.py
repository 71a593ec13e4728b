"""The ingest seam of the order domain: every configured outside source, one gate.

:class:`IngestSeam` implements :class:`~orderloom.runtime.IngestGate` for
the coordinator: the MQTT transport (``orderloom/v1/in/{source}``) and the
HTTP routes (``POST /ingest/{source}``) hand it ``(source, headers, raw
body)`` and deliver what it accepts. Two kinds of source:

- :class:`ShopifySource`: a Shopify webhook (the topic in ``X-Shopify-Topic``,
  signed with the app's secret), mapped by :func:`shopify_to_messages`.
  Its events go to ``intake``, which starts (or restores) the order's actor
  and hands them on; each envelope's id is derived from the webhook id, so a
  retried webhook carries the same ids.
- :class:`EnvelopeSource`: the generic envelope of the wire format, decoded
  strictly with ``now``; its recipient must be ``intake`` (a ``PlaceOrder``
  or an order event) or ``order/<id>`` (a message for that order, whose
  ``order_id`` if it has one is that id), and it may not ask (no
  ``reply_to``): an outside source never commands the gateway, a warehouse
  or automation.

Everything refused becomes a :class:`~orderloom.runtime.RefusedPayload`
with the payload redacted. Pure: no clock, no I/O, no state.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import attrs

from orderloom.runtime import (
    ID_PATTERN,
    Address,
    Envelope,
    IngestAccepted,
    IngestError,
    IngestReason,
    InvalidTopic,
    RefusedPayload,
    WireCodec,
    ingest_topic,
)

from ..order import _messages as m
from ..order._documents import DocumentError
from ._redact import redact_payload
from ._shopify import TOPIC_HEADER, shopify_to_messages

__all__ = ["INTAKE", "EnvelopeSource", "IngestConfigError", "IngestSeam", "ShopifySource",
           "ingest_sources"]

INTAKE = Address("intake")
"""Where ingested order events and new orders go (the coordinator's intake)."""

_SHOP = re.compile(r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*")
_ORDER_ADDRESS = re.compile(rf"order/({ID_PATTERN})")


def _shop(_: object, a: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _SHOP.fullmatch(value):
        raise ValueError(f"{a.name}: expected a lower-case shop handle or domain "
                         "(acme or acme.myshopify.com)")


def _secret(_: object, a: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) < 8:
        raise ValueError(f"{a.name}: expected the webhook signing secret, at least 8 bytes")


@attrs.frozen(kw_only=True)
class ShopifySource:
    """A Shopify shop's webhooks. Invariants: ``shop`` is a lower-case handle
    or domain; ``secret`` (the app's signing secret) is at least 8 bytes and
    never shown in a repr."""

    shop: str = attrs.field(validator=_shop)
    secret: bytes = attrs.field(validator=_secret, repr=False)


@attrs.frozen(kw_only=True)
class EnvelopeSource:
    """A source that publishes wire envelopes (a WMS, a relay, ``mosquitto_pub``).

    Anyone who can publish on its topic (or hold an HTTP token) is trusted
    as this source: the broker's ACL and the bearer token authenticate it.
    """


Source = ShopifySource | EnvelopeSource


class IngestConfigError(DocumentError):
    """An ingest configuration is invalid (``source``, ``problems`` as in
    DocumentError; a secret is never quoted)."""

    kind = "ingest configuration"


_KINDS = ("shopify", "envelope")


def ingest_sources(data: object, *, source: str = "ingest") -> dict[str, Source]:
    """The sources of an ingest configuration (e.g. a serve config's ``ingest:``)::

        shopify: {kind: shopify, shop: acme-outdoor, secret: "<webhook secret>"}
        wms: {kind: envelope}

    The caller resolves secrets (from the environment, a file) before this.

    Raises:
        IngestConfigError: naming ``source``, each bad field's path and what
            was expected.
    """
    if not isinstance(data, Mapping):
        raise IngestConfigError(source, ["expected a mapping of source name -> source"])
    problems: list[str] = []
    out: dict[str, Source] = {}
    for name, entry in data.items():
        try:
            ingest_topic(name)
        except (InvalidTopic, TypeError):
            problems.append(f"{name!s:.64}: a source name is one topic level: 1 to 64 of "
                            "A-Z a-z 0-9 . _ : -")
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{name}: expected a mapping with 'kind'")
            continue
        kind = entry.get("kind")
        if kind not in _KINDS:
            problems.append(f"{name}.kind: expected one of {', '.join(_KINDS)}")
            continue
        allowed = {"kind", "shop", "secret"} if kind == "shopify" else {"kind"}
        for key in sorted(set(entry) - allowed, key=str):
            problems.append(f"{name}.{key!s:.32}: not a field of a {kind} source "
                            f"(fields: {', '.join(sorted(allowed))})")
        if kind == "envelope":
            out[name] = EnvelopeSource()
            continue
        shop, secret = entry.get("shop"), entry.get("secret")
        if not isinstance(shop, str) or not _SHOP.fullmatch(shop):
            problems.append(f"{name}.shop: expected a lower-case shop handle or domain "
                            "(acme-outdoor or acme-outdoor.myshopify.com)")
        if not isinstance(secret, str) or len(secret.encode()) < 8:
            problems.append(f"{name}.secret: expected the app's webhook signing secret, "
                            "a string of at least 8 bytes")
        if isinstance(shop, str) and _SHOP.fullmatch(shop) and isinstance(secret, str) \
                and len(secret.encode()) >= 8:
            out[name] = ShopifySource(shop=shop, secret=secret.encode())
    if problems:
        raise IngestConfigError(source, problems)
    return out


class IngestSeam:
    """The coordinator's :class:`~orderloom.runtime.IngestGate`.

    Args:
        codec: the wire codec (``orderloom.actors.wire_codec()``); its
            ``max_age`` and ``max_skew`` bound the times accepted.
        sources: source name (one topic level: ``shopify``, ``wms``) -> its kind.

    Raises:
        InvalidTopic: a source name that cannot be a topic level.
        TypeError: a source that is neither kind.
    """

    def __init__(self, codec: WireCodec, sources: Mapping[str, Source]) -> None:
        for name, source in sources.items():
            ingest_topic(name)  # one valid level, or InvalidTopic
            if not isinstance(source, (ShopifySource, EnvelopeSource)):
                raise TypeError(f"source {name!r}: expected a ShopifySource or an "
                                f"EnvelopeSource, got {type(source).__name__}")
        self.codec = codec
        self._sources = dict(sources)

    @property
    def sources(self) -> frozenset[str]:
        """The configured source names."""
        return frozenset(self._sources)

    def self_authenticating(self, source: str) -> bool:
        """Shopify sources: every webhook's HMAC is verified before anything is read."""
        return isinstance(self._sources.get(source), ShopifySource)

    def ingest(self, source: str, headers: Mapping[str, str], raw_body: bytes, *,
               origin: str, now: float) -> IngestAccepted | RefusedPayload:
        """Accept one payload as envelopes, or refuse it (see the module docstring)."""
        kind = self._sources.get(source)
        try:
            if kind is None:
                raise IngestError(IngestReason.BAD_ADDRESS, "not a configured ingest source",
                                  path="source")
            if isinstance(kind, ShopifySource):
                return self._shopify(source, kind, headers, raw_body, now)
            return self._envelope(source, raw_body, now)
        except IngestError as exc:
            payload = (redact_payload(raw_body) if isinstance(kind, ShopifySource)
                       else self.codec.redacted(raw_body))
            return RefusedPayload.of(exc, source=source if kind is not None else "unknown",
                                     origin=origin, received_at=now, payload=payload,
                                     raw=raw_body)

    # -- the kinds -------------------------------------------------------------------

    def _shopify(self, name: str, shop: ShopifySource, headers: Mapping[str, str],
                 raw_body: bytes, now: float) -> IngestAccepted:
        topic = next((v for k, v in headers.items()
                      if isinstance(k, str) and k.lower() == TOPIC_HEADER.lower()), "")
        ingested = shopify_to_messages(topic if isinstance(topic, str) else "", headers,
                                       raw_body, shop=shop.shop, secret=shop.secret)
        self._recent(ingested.source_time, now, "updated_at")
        envelopes = tuple(
            Envelope(_message_id(name, ingested.event_id, i), None, ingested.order_id, None,
                     INTAKE, now, event, None)
            for i, event in enumerate(ingested.events))
        return IngestAccepted(source=name, envelopes=envelopes)

    def _envelope(self, name: str, raw_body: bytes, now: float) -> IngestAccepted:
        envelope = self.codec.decode_envelope(raw_body, now=now)
        body = envelope.body
        if envelope.reply_to is not None:
            raise IngestError(IngestReason.BAD_ADDRESS, "an outside source cannot ask "
                              "(reply_to must be null)", path="reply_to")
        if envelope.recipient == INTAKE:
            if not isinstance(body, (m.PlaceOrder, m.Event)):
                raise IngestError(IngestReason.BAD_ADDRESS, "intake takes order.place or an "
                                  "order event", path="recipient")
        else:
            match = _ORDER_ADDRESS.fullmatch(envelope.recipient)
            if match is None:
                raise IngestError(IngestReason.BAD_ADDRESS, "an outside source may address "
                                  "intake or order/<id> only", path="recipient")
            if not isinstance(body, m.Event):
                # Not a person's decision, a timer or another actor's protocol
                # message: an outside source reports facts, it does not act.
                raise IngestError(IngestReason.BAD_ADDRESS, "an outside source may send an "
                                  "order only its events (order.* facts)", path="type")
            if body.order_id != match.group(1):
                raise IngestError(IngestReason.BAD_ADDRESS, "the recipient is another "
                                  "order's address", path="recipient")
        return IngestAccepted(source=name, envelopes=(envelope,))

    def _recent(self, moment: float, now: float, path: str) -> None:
        if moment < now - self.codec.max_age or moment > now + self.codec.max_skew:
            raise IngestError(IngestReason.BAD_TIMESTAMP, "too far from now (at most "
                              f"{self.codec.max_age:g} s before or {self.codec.max_skew:g} s "
                              "after)", path=path)


def _message_id(source: str, event_id: str, index: int) -> str:
    """The id of the ``index``-th envelope of a payload: the same for every
    delivery of it (the recipients' inboxes dedupe on it), of the id format."""
    digest = hashlib.sha256(f"{source}\n{event_id}\n{index}".encode()).hexdigest()
    return f"in:{digest[:40]}"
