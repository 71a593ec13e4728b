"""The Shopify adapter: a signed webhook in, orderloom order events out.

Pure: the caller (the MQTT ingest consumer, the HTTP webhook endpoint) hands
over the topic, the headers and the raw body; :func:`shopify_to_messages`
verifies the signature, parses strictly and maps the payload to events, or
raises :class:`~orderloom.runtime.IngestError` with a reason code.
:func:`shopify_dead_letter` turns a refusal into the dead-letter record
(reason, detail, redacted payload). Nothing here reads a clock or keeps
state: the inbox (keyed by the webhook id) and the order's own stale test
(its sources are monotonic, see ``order._sources``) do the rest downstream.

The mapping (``docs/ingest-shopify.md`` has the table):

- every ``orders/*`` topic carries the whole order, so each yields the
  order's ``OrderPlaced`` (one event id per order: the first to arrive
  places it, the rest are duplicates or stale); ``orders/cancelled`` and an
  ``orders/updated`` with ``cancelled_at`` add ``OrderCanceled``;
- ``order_transactions/create`` maps successful authorizations, captures,
  sales, voids and refunds to the gateway facts; failures, errors and
  pending transactions map to nothing (orderloom records a decline only
  against a request it made);
- ``fulfillments/create`` and ``fulfillments/update`` map to the fulfillment
  order, its submission, then shipped, delivered, canceled or rejected;
- ``refunds/create`` maps its successful refund transactions (the same
  events, with the same ids, as their ``order_transactions/create``) and the
  line items refunded with ``restock_type: cancel``.

Sources: ``shopify:<shop>`` for the order itself, and one source per
fulfillment, transaction and refund below it, all monotonic, so a late
older snapshot of the same thing is stale and one thing's delay never makes
another's events stale.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from orderloom.runtime import ID_PATTERN, MAX_ENVELOPE_BYTES, IngestError, IngestReason, parse_json

from ..order import _messages as m
from ..order._sources import monotonic_seq, platform_source
from ._money import minor_units
from ._redact import redact_payload

__all__ = [
    "SHOPIFY_TOPICS",
    "IngestDeadLetter",
    "Ingested",
    "ingest_shopify",
    "shopify_dead_letter",
    "shopify_to_messages",
    "verify_shopify_hmac",
]

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_HEADER = "X-Shopify-Shop-Domain"

_ID = re.compile(ID_PATTERN)
_SHOP = re.compile(r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*")
_TOPIC = re.compile(r"[a-z_]{1,32}/[a-z_]{1,32}")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MS = dt.timedelta(milliseconds=1)
_CANCEL_REASONS = frozenset({"customer", "declined", "fraud", "inventory", "other", "staff"})
_SHA256_BYTES = 32


# -- values -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Ingested:
    """One accepted webhook, mapped.

    Invariants: ``order_id`` matches the id format (``shopify:<shop>:<order
    id>``); ``event_id`` is the webhook id (a redelivery has the same one,
    so the inbox dedupes it); ``source`` is ``shopify:<shop>``;
    ``source_time`` (seconds since the epoch) is the payload's own time
    (``updated_at``, ``processed_at`` or ``created_at``); ``events`` may be
    empty (a pending transaction: accepted, nothing to record).
    """

    order_id: str
    event_id: str
    source: str
    topic: str
    source_time: float
    events: tuple[m.Event, ...]


@attrs.frozen(kw_only=True)
class IngestDeadLetter:
    """A refused webhook, as the dead-letter topic and table keep it.

    ``detail`` is the error's message (it never quotes payload values);
    ``payload`` is the body with everything personal removed; ``topic`` and
    ``event_id`` are kept only when they have the expected shape.
    """

    source: str
    reason: IngestReason
    detail: str
    path: str
    topic: str | None
    event_id: str | None
    payload: object


# -- the signature ----------------------------------------------------------------------


def verify_shopify_hmac(raw_body: bytes, header_b64: str | None, secret: bytes) -> bool:
    """Whether ``header_b64`` is the base64 HMAC-SHA256 of ``raw_body`` under ``secret``.

    A missing, non-text, non-base64 or wrongly sized header is False; the
    digests are compared in constant time.

    Raises:
        ValueError: ``secret`` is empty (every body would be signable).
    """
    if not secret:
        raise ValueError("the webhook secret must not be empty")
    if not isinstance(header_b64, str) or not header_b64.isascii():
        return False
    try:
        given = base64.b64decode(header_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(given) != _SHA256_BYTES:
        return False
    expected = hmac.new(secret, raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)


# -- the entry points -------------------------------------------------------------------


def shopify_to_messages(topic: str, headers: Mapping[str, str], raw_body: bytes, *,
                        shop: str, secret: bytes) -> Ingested:
    """Verify and map one Shopify webhook.

    Args:
        topic: the webhook topic (``orders/create``); when the
            ``X-Shopify-Topic`` header is present it must agree.
        headers: the request's headers (names compared case-insensitively).
        raw_body: the body exactly as received (the signature covers it).
        shop: the shop's handle or domain (``acme`` or ``acme.myshopify.com``).
        secret: the app's webhook signing secret.

    Raises:
        IngestError: with its reason: ``too_large``, ``bad_signature``,
            ``unsupported_topic``, a JSON reason, ``missing_field``,
            ``bad_field``, ``bad_id``, ``bad_money``, ``unknown_currency`` or
            ``bad_timestamp``. Its message never quotes a payload value.
        ValueError: ``shop`` or ``secret`` is not usable (a configuration error).
    """
    if not isinstance(shop, str) or not _SHOP.fullmatch(shop):
        raise ValueError("shop must be a lower-case shop handle or domain")
    if len(raw_body) > MAX_ENVELOPE_BYTES:
        raise IngestError(IngestReason.TOO_LARGE, f"{len(raw_body)} bytes, more than "
                          f"{MAX_ENVELOPE_BYTES}")
    given = _header(headers, HMAC_HEADER)
    if not verify_shopify_hmac(raw_body, given, secret):
        what = "missing" if given is None else "does not match the body"
        raise IngestError(IngestReason.BAD_SIGNATURE, f"{HMAC_HEADER} {what}",
                          path=f"headers.{HMAC_HEADER}")
    mapper = _MAPPERS.get(topic)
    if mapper is None:
        raise IngestError(IngestReason.UNSUPPORTED_TOPIC, "not one of the mapped topics: "
                          + ", ".join(SHOPIFY_TOPICS), path="topic")
    header_topic = _header(headers, TOPIC_HEADER)
    if header_topic is not None and header_topic != topic:
        raise IngestError(IngestReason.BAD_FIELD, "the header names another topic",
                          path=f"headers.{TOPIC_HEADER}")
    header_shop = _header(headers, SHOP_HEADER)
    if header_shop is not None and header_shop not in (shop, f"{shop}.myshopify.com"):
        raise IngestError(IngestReason.BAD_FIELD, "the header names another shop",
                          path=f"headers.{SHOP_HEADER}")
    webhook_id = _header(headers, WEBHOOK_ID_HEADER)
    if webhook_id is None:
        raise IngestError(IngestReason.MISSING_FIELD, "the webhook id is absent",
                          path=f"headers.{WEBHOOK_ID_HEADER}")
    if not _ID.fullmatch(webhook_id):
        raise IngestError(IngestReason.BAD_ID, "expected 1 to 64 of A-Z a-z 0-9 . _ : -",
                          path=f"headers.{WEBHOOK_ID_HEADER}")
    data = parse_json(raw_body)
    if not isinstance(data, dict):
        raise IngestError(IngestReason.NOT_AN_OBJECT, "the body is not a JSON object")
    return mapper(_Ctx(shop=shop, topic=topic, webhook_id=webhook_id), data)


def shopify_dead_letter(topic: str, headers: Mapping[str, str], raw_body: bytes,
                        error: IngestError, *, shop: str) -> IngestDeadLetter:
    """The dead-letter record of a webhook :func:`shopify_to_messages` refused."""
    webhook_id = _header(headers, WEBHOOK_ID_HEADER)
    return IngestDeadLetter(
        source=f"shopify:{shop}" if _SHOP.fullmatch(shop) else "shopify",
        reason=error.reason, detail=str(error), path=error.path,
        topic=topic if isinstance(topic, str) and _TOPIC.fullmatch(topic) else None,
        event_id=webhook_id if webhook_id is not None and _ID.fullmatch(webhook_id) else None,
        payload=redact_payload(raw_body))


def ingest_shopify(topic: str, headers: Mapping[str, str], raw_body: bytes, *, shop: str,
                   secret: bytes) -> Ingested | IngestDeadLetter:
    """:func:`shopify_to_messages`, or the dead-letter record of its refusal."""
    try:
        return shopify_to_messages(topic, headers, raw_body, shop=shop, secret=secret)
    except IngestError as exc:
        return shopify_dead_letter(topic, headers, raw_body, exc, shop=shop)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value if isinstance(value, str) else None
    return None


# -- reading the payload ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Ctx:
    shop: str
    topic: str
    webhook_id: str

    def order_id(self, shopify_id: int) -> str:
        order_id = f"shopify:{self.shop}:{shopify_id}"
        if not _ID.fullmatch(order_id):
            raise IngestError(IngestReason.BAD_ID, "shopify:<shop>:<order id> is longer "
                              "than 64 characters", path="order_id")
        return order_id

    def source(self, *stream: str) -> str:
        return platform_source("shopify", self.shop, *stream)


def _field(data: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise IngestError(IngestReason.MISSING_FIELD, "required", path=_at(path, key))
    return data[key]


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _shopify_id(data: Mapping[str, Any], key: str, path: str = "") -> int:
    value = _field(data, key, path)
    if type(value) is not int or value <= 0:
        raise IngestError(IngestReason.BAD_ID, "expected a positive integer id",
                          path=_at(path, key))
    return value


def _object(data: Mapping[str, Any], key: str, path: str = "") -> dict[str, Any]:
    value = _field(data, key, path)
    if not isinstance(value, dict):
        raise IngestError(IngestReason.BAD_FIELD, "expected an object", path=_at(path, key))
    return value


def _objects(data: Mapping[str, Any], key: str, path: str = "") -> list[dict[str, Any]]:
    value = _field(data, key, path)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise IngestError(IngestReason.BAD_FIELD, "expected an array of objects",
                          path=_at(path, key))
    return value


def _text(data: Mapping[str, Any], key: str, path: str = "") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise IngestError(IngestReason.BAD_FIELD, "expected a string or null",
                          path=_at(path, key))
    return value or None


def _quantity(data: Mapping[str, Any], key: str, path: str) -> int:
    value = _field(data, key, path)
    if type(value) is not int or value <= 0:
        raise IngestError(IngestReason.BAD_FIELD, "expected a positive integer",
                          path=_at(path, key))
    return value


def _time_ms(data: Mapping[str, Any], keys: tuple[str, ...], path: str = "") -> tuple[int, str]:
    """The first of ``keys`` present and non-null, as epoch milliseconds, and its key."""
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        where = _at(path, key)
        if not isinstance(value, str):
            raise IngestError(IngestReason.BAD_TIMESTAMP, "expected an ISO 8601 string",
                              path=where)
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise IngestError(IngestReason.BAD_TIMESTAMP, "expected an ISO 8601 time with "
                              "an offset", path=where) from None
        if moment.tzinfo is None:
            raise IngestError(IngestReason.BAD_TIMESTAMP, "the time has no UTC offset",
                              path=where)
        ms = (moment - _EPOCH) // _MS
        if ms < 0:
            raise IngestError(IngestReason.BAD_TIMESTAMP, "before 1970", path=where)
        return ms, key
    raise IngestError(IngestReason.MISSING_FIELD, "required (one of: " + ", ".join(keys) + ")",
                      path=_at(path, keys[0]))


class _Events:
    """Builds one webhook's events for one source, numbered by its source time."""

    def __init__(self, ctx: _Ctx, order_id: str, source: str, at_ms: int) -> None:
        self.ctx, self.order_id, self.source, self.at_ms = ctx, order_id, source, at_ms
        self.events: list[m.Event] = []

    def add(self, cls: type[m.Event], event_id: str, occurred_ms: int | None = None,
            **fields: Any) -> None:
        occurred = self.at_ms if occurred_ms is None else occurred_ms
        try:
            self.events.append(cls(
                order_id=self.order_id, event_id=event_id, source=self.source,
                source_seq=monotonic_seq(self.at_ms, len(self.events)),
                occurred_at=occurred / 1000, **fields))
        except (ValueError, TypeError) as exc:
            # The message's validators refused a value; their text may quote
            # it, so it is not passed on.
            raise IngestError(IngestReason.BAD_FIELD, f"the payload makes an invalid "
                              f"{cls.__name__} ({type(exc).__name__})") from exc

    def ingested(self) -> Ingested:
        return Ingested(order_id=self.order_id, event_id=self.ctx.webhook_id,
                        source=self.ctx.source(), topic=self.ctx.topic,
                        source_time=self.at_ms / 1000, events=tuple(self.events))


# -- orders/* ---------------------------------------------------------------------------


def _order_topic(ctx: _Ctx, data: dict[str, Any]) -> Ingested:
    order_id = ctx.order_id(_shopify_id(data, "id"))
    at_ms, _ = _time_ms(data, ("updated_at", "created_at"))
    out = _Events(ctx, order_id, ctx.source(), at_ms)
    _placed(ctx, out, data)
    cancelled = data.get("cancelled_at")
    if ctx.topic == "orders/cancelled" and cancelled is None:
        raise IngestError(IngestReason.MISSING_FIELD, "a cancelled order names its "
                          "cancellation time", path="cancelled_at")
    if ctx.topic in ("orders/cancelled", "orders/updated") and cancelled is not None:
        canceled_ms, _ = _time_ms(data, ("cancelled_at",))
        reason = data.get("cancel_reason")
        reason = reason if isinstance(reason, str) and reason in _CANCEL_REASONS else "other"
        out.add(m.OrderCanceled, f"{order_id}:canceled", canceled_ms,
                reason=f"shopify:{reason}", canceled_by=ctx.source())
    return out.ingested()


def _placed(ctx: _Ctx, out: _Events, data: dict[str, Any]) -> None:
    currency = _field(data, "currency", "")
    items = _objects(data, "line_items")
    if not items:
        raise IngestError(IngestReason.BAD_FIELD, "an order has at least one line item",
                          path="line_items")
    lines = []
    for i, item in enumerate(items):
        path = f"line_items[{i}]"
        line_id = _shopify_id(item, "id", path)
        variant = item.get("variant_id")
        sku = _text(item, "sku", path) or (
            f"variant:{variant}" if type(variant) is int and variant > 0 else f"line:{line_id}")
        lines.append(m.LineItemSpec(
            line_id=str(line_id), sku=sku, quantity=_quantity(item, "quantity", path),
            unit_price=minor_units(_field(item, "price", path), currency,
                                   path=_at(path, "price"))))
    customer = data.get("customer")
    customer_id = (f"shopify:{ctx.shop}:customer:{_shopify_id(customer, 'id', 'customer')}"
                   if isinstance(customer, dict) else f"shopify:{ctx.shop}:guest")
    created_ms, _ = _time_ms(data, ("created_at",))
    out.add(m.OrderPlaced, f"{out.order_id}:placed", created_ms, customer_id=customer_id,
            currency=currency, lines=tuple(lines))


# -- order_transactions/create ----------------------------------------------------------


def _transaction_topic(ctx: _Ctx, data: dict[str, Any]) -> Ingested:
    order_id = ctx.order_id(_shopify_id(data, "order_id"))
    txn = _shopify_id(data, "id")
    at_ms, _ = _time_ms(data, ("processed_at", "created_at"))
    out = _Events(ctx, order_id, ctx.source("transaction", str(txn)), at_ms)
    _transaction(out, data, "")
    return out.ingested()


def _transaction(out: _Events, data: dict[str, Any], path: str) -> None:
    """The gateway facts of one transaction (none unless it succeeded)."""
    txn = _shopify_id(data, "id", path)
    kind, status = data.get("kind"), data.get("status")
    if kind not in ("authorization", "capture", "sale", "void", "refund"):
        raise IngestError(IngestReason.BAD_FIELD, "expected authorization, capture, sale, "
                          "void or refund", path=_at(path, "kind"))
    if status not in ("success", "failure", "error", "pending"):
        raise IngestError(IngestReason.BAD_FIELD, "expected success, failure, error or "
                          "pending", path=_at(path, "status"))
    if status != "success":
        return
    key = f"{out.order_id}:txn:{txn}"
    if kind == "void":
        parent = _shopify_id(data, "parent_id", path)
        out.add(m.PaymentVoided, f"{key}:voided", authorization_id=str(parent))
        return
    amount = minor_units(_field(data, "amount", path), _field(data, "currency", path),
                         path=_at(path, "amount"))
    if amount == 0:
        raise IngestError(IngestReason.BAD_MONEY, "a successful payment moves money",
                          path=_at(path, "amount"))
    if kind in ("authorization", "sale"):
        out.add(m.PaymentAuthorized, f"{key}:authorized", authorization_id=str(txn),
                amount=amount)
    if kind == "sale":
        out.add(m.PaymentCaptured, f"{key}:captured", authorization_id=str(txn),
                capture_id=str(txn), amount=amount)
    elif kind == "capture":
        parent = _shopify_id(data, "parent_id", path)
        out.add(m.PaymentCaptured, f"{key}:captured", authorization_id=str(parent),
                capture_id=str(txn), amount=amount)
    elif kind == "refund":
        out.add(m.PaymentRefunded, f"{key}:refunded", refund_id=str(txn), amount=amount)


# -- fulfillments/* ---------------------------------------------------------------------


def _fulfillment_topic(ctx: _Ctx, data: dict[str, Any]) -> Ingested:
    order_id = ctx.order_id(_shopify_id(data, "order_id"))
    fid = _shopify_id(data, "id")
    at_ms, _ = _time_ms(data, ("updated_at", "created_at"))
    out = _Events(ctx, order_id, ctx.source("fulfillment", str(fid)), at_ms)
    status = data.get("status")
    if status not in ("pending", "open", "success", "cancelled", "error", "failure"):
        raise IngestError(IngestReason.BAD_FIELD, "expected pending, open, success, "
                          "cancelled, error or failure", path="status")
    fo = f"shopify-fulfillment-{fid}"
    location = data.get("location_id")
    warehouse = f"shopify-location-{location}" if type(location) is int else "shopify"
    lines = tuple(
        m.LineQuantity(line_id=str(_shopify_id(item, "id", f"line_items[{i}]")),
                       quantity=_quantity(item, "quantity", f"line_items[{i}]"))
        for i, item in enumerate(_objects(data, "line_items")))
    key = f"{order_id}:fulfillment:{fid}"
    created_ms, _ = _time_ms(data, ("created_at", "updated_at"))
    out.add(m.FulfillmentOrderCreated, f"{key}:created", created_ms,
            fulfillment_order_id=fo, warehouse_id=warehouse, lines=lines)
    out.add(m.FulfillmentSubmitted, f"{key}:submitted", created_ms, fulfillment_order_id=fo)
    if status == "success":
        out.add(m.Shipped, f"{key}:shipped", fulfillment_order_id=fo,
                tracking_number=_text(data, "tracking_number"))
        if data.get("shipment_status") == "delivered":
            out.add(m.Delivered, f"{key}:delivered", fulfillment_order_id=fo)
    elif status == "cancelled":
        out.add(m.FulfillmentCanceled, f"{key}:canceled", fulfillment_order_id=fo,
                reason="shopify:cancelled")
    elif status in ("error", "failure"):
        out.add(m.FulfillmentRejected, f"{key}:rejected", fulfillment_order_id=fo,
                reason=f"shopify:{status}")
    return out.ingested()


# -- refunds/create ---------------------------------------------------------------------


def _refund_topic(ctx: _Ctx, data: dict[str, Any]) -> Ingested:
    order_id = ctx.order_id(_shopify_id(data, "order_id"))
    rid = _shopify_id(data, "id")
    at_ms, _ = _time_ms(data, ("processed_at", "created_at"))
    out = _Events(ctx, order_id, ctx.source("refund", str(rid)), at_ms)
    for i, txn in enumerate(_objects(data, "transactions")):
        if txn.get("kind") != "refund":
            raise IngestError(IngestReason.BAD_FIELD, "a refund's transactions are refunds",
                              path=f"transactions[{i}].kind")
        _transaction(out, txn, f"transactions[{i}]")
    canceled = []
    for i, item in enumerate(_objects(data, "refund_line_items")):
        if item.get("restock_type") == "cancel":
            path = f"refund_line_items[{i}]"
            canceled.append(m.LineQuantity(line_id=str(_shopify_id(item, "line_item_id", path)),
                                           quantity=_quantity(item, "quantity", path)))
    if canceled:
        out.add(m.LineItemsCanceled, f"{order_id}:refund:{rid}:lines_canceled",
                lines=tuple(canceled))
    return out.ingested()


_MAPPERS: Mapping[str, Callable[[_Ctx, dict[str, Any]], Ingested]] = {
    "orders/create": _order_topic,
    "orders/paid": _order_topic,
    "orders/cancelled": _order_topic,
    "orders/updated": _order_topic,
    "order_transactions/create": _transaction_topic,
    "fulfillments/create": _fulfillment_topic,
    "fulfillments/update": _fulfillment_topic,
    "refunds/create": _refund_topic,
}

SHOPIFY_TOPICS: tuple[str, ...] = tuple(_MAPPERS)
"""The webhook topics mapped; any other is refused with ``unsupported_topic``."""
