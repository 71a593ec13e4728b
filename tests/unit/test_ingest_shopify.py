"""The Shopify adapter: signatures, every topic's mapping, money, ids,
staleness through the order model, refusals and their redacted dead letters."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from orderloom.actors import (
    SHOPIFY_TOPICS,
    Delivered,
    FulfillmentCanceled,
    FulfillmentOrderCreated,
    FulfillmentSubmitted,
    IngestDeadLetter,
    Ingested,
    LineItemsCanceled,
    LineItemSpec,
    LineQuantity,
    OrderCanceled,
    OrderPlaced,
    OrderState,
    OutcomeKind,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
    Shipped,
    apply,
    ingest_shopify,
    minor_units,
    monotonic_seq,
    redact_payload,
    shopify_to_messages,
    verify_shopify_hmac,
)
from orderloom.runtime import IngestError, IngestReason

from tests.shopify import FIXTURES, ORDER, SECRET, SHOP, sign
from tests.shopify import headers as shopify_headers

PEGS, TENT = "13996578472024", "13996578504792"
PERSONAL = ("Greta", "Lindqvist", "greta.lindqvist@example.com", "+49 30 1234567",
            "Kastanienallee", "10435", "Berlin", "203.0.113.41", "Jonas", "Nachbarn", "4242")


def _body(name: str, **changes: Any) -> bytes:
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return json.dumps(data, ensure_ascii=False).encode()


def _headers(raw: bytes, topic: str, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
             **extra: str) -> dict[str, str]:
    return {**shopify_headers(raw, topic, webhook_id), "X-Shopify-API-Version": "2024-04",
            **extra}


def _ingest(topic: str, name: str, webhook_id: str = "wh-1", **changes: Any) -> Ingested:
    raw = _body(name, **changes)
    return shopify_to_messages(topic, _headers(raw, topic, webhook_id), raw, shop=SHOP,
                               secret=SECRET)


def _refused(topic: str, raw: bytes, headers: dict[str, str] | None = None) -> IngestError:
    with pytest.raises(IngestError) as caught:
        shopify_to_messages(topic, _headers(raw, topic) if headers is None else headers, raw,
                            shop=SHOP, secret=SECRET)
    return caught.value


def _offer(state: OrderState | None, events: tuple[Any, ...]) -> tuple[OrderState,
                                                                       list[OutcomeKind]]:
    state = state or OrderState(order_id=ORDER)
    kinds = []
    for event in events:
        state, outcome = apply(state, event)
        kinds.append(outcome.kind)
    return state, kinds


# -- the signature ----------------------------------------------------------------------


def test_a_correct_signature_verifies() -> None:
    """The base64 HMAC-SHA256 of the raw body under the secret is accepted."""
    raw = _body("orders_create")
    assert verify_shopify_hmac(raw, sign(raw), SECRET)


@pytest.mark.parametrize("header", [
    None, "", "not base64!", base64.b64encode(b"short").decode(),
    sign(b"another body"), sign(b"{}", b"another secret")])
def test_a_missing_malformed_or_wrong_signature_fails(header: str | None) -> None:
    """A missing, non-base64, wrongly sized or mismatching header does not verify."""
    assert not verify_shopify_hmac(_body("orders_create"), header, SECRET)


def test_an_empty_secret_is_a_configuration_error() -> None:
    """With no secret every body would be signable, so verification refuses to run."""
    with pytest.raises(ValueError):
        verify_shopify_hmac(b"{}", sign(b"{}"), b"")


def test_a_body_changed_after_signing_is_refused() -> None:
    """One changed byte of the body makes the webhook a bad_signature refusal."""
    raw = _body("orders_create")
    headers = _headers(raw, "orders/create")
    error = _refused("orders/create", raw.replace(b"24.50", b"00.50"), headers)
    assert error.reason is IngestReason.BAD_SIGNATURE


def test_headers_are_matched_case_insensitively() -> None:
    """Lower-case header names (as HTTP/2 delivers them) work the same."""
    raw = _body("orders_create")
    headers = {k.lower(): v for k, v in _headers(raw, "orders/create").items()}
    assert shopify_to_messages("orders/create", headers, raw, shop=SHOP, secret=SECRET).events


# -- every topic ------------------------------------------------------------------------


def test_orders_create_places_the_order() -> None:
    """orders/create: the order id, webhook id, source, time and an OrderPlaced with lines."""
    got = _ingest("orders/create", "orders_create", webhook_id="wh-create")
    assert (got.order_id, got.event_id, got.source, got.topic) == (
        ORDER, "wh-create", "shopify:acme-outdoor", "orders/create")
    assert got.source_time == 1714637728.0  # updated_at 10:15:28+02:00
    (placed,) = got.events
    assert placed == OrderPlaced(
        order_id=ORDER, event_id=f"{ORDER}:placed", source="shopify:acme-outdoor",
        source_seq=monotonic_seq(1714637728000), occurred_at=1714637727.0,
        customer_id="shopify:acme-outdoor:customer:7123456789012", currency="EUR",
        lines=(LineItemSpec(line_id=PEGS, sku="TENT-PEG-10", quantity=2, unit_price=2450),
               LineItemSpec(line_id=TENT, sku="TENT-2P-GRN", quantity=1, unit_price=12900)))


def test_orders_paid_and_updated_place_the_same_order() -> None:
    """orders/paid and orders/updated carry the order too: the same OrderPlaced event id."""
    for topic, name in (("orders/paid", "orders_paid"), ("orders/updated", "orders_updated")):
        (placed,) = _ingest(topic, name).events
        assert isinstance(placed, OrderPlaced) and placed.event_id == f"{ORDER}:placed"


def test_orders_cancelled_cancels_with_the_reason() -> None:
    """orders/cancelled: the order, then OrderCanceled at cancelled_at with Shopify's reason."""
    placed, canceled = _ingest("orders/cancelled", "orders_cancelled").events
    assert isinstance(canceled, OrderCanceled)
    assert (canceled.reason, canceled.canceled_by) == ("shopify:customer", "shopify:acme-outdoor")
    assert canceled.occurred_at == 1714640560.0
    assert canceled.source_seq == placed.source_seq + 1


def test_orders_updated_with_a_cancellation_cancels_under_the_same_id() -> None:
    """An orders/updated showing cancelled_at maps to the same OrderCanceled as orders/cancelled."""
    cancelled = _ingest("orders/cancelled", "orders_cancelled").events[1]
    updated = _ingest("orders/updated", "orders_cancelled").events[1]
    assert updated == cancelled


@pytest.mark.parametrize(("name", "expected"), [
    ("authorization", [(PaymentAuthorized, "7011234560001", 18790)]),
    ("sale", [(PaymentAuthorized, "7011234560003", 18790),
              (PaymentCaptured, "7011234560003", 18790)]),
    ("capture", [(PaymentCaptured, "7011234560001", 18790)]),
    ("void", [(PaymentVoided, "7011234560001", None)]),
    ("refund", [(PaymentRefunded, "7011234560005", 2450)]),
    ("failure", []),
    ("pending", []),
])
def test_order_transactions_map_by_kind_and_status(
        name: str, expected: list[tuple[type, str, int | None]]) -> None:
    """Each successful transaction kind maps to its gateway fact; failure and pending to none."""
    got = _ingest("order_transactions/create", f"order_transactions_{name}")
    assert got.order_id == ORDER
    found = [(type(e), getattr(e, "authorization_id", None) or getattr(e, "refund_id"),
              getattr(e, "amount", None)) for e in got.events]
    assert found == expected
    assert all(e.source.startswith("shopify:acme-outdoor/transaction/") for e in got.events)


def test_a_capture_names_its_authorization_and_itself() -> None:
    """A capture's authorization is its parent transaction; the capture id is its own id."""
    (captured,) = _ingest("order_transactions/create", "order_transactions_capture").events
    assert isinstance(captured, PaymentCaptured)
    assert (captured.authorization_id, captured.capture_id) == ("7011234560001", "7011234560002")


def test_fulfillments_create_ships() -> None:
    """fulfillments/create with status success: fulfillment order, submitted, shipped."""
    got = _ingest("fulfillments/create", "fulfillments_create")
    assert [type(e) for e in got.events] == [FulfillmentOrderCreated, FulfillmentSubmitted,
                                             Shipped]
    created, _, shipped = got.events
    assert isinstance(created, FulfillmentOrderCreated) and isinstance(shipped, Shipped)
    assert created.lines == (LineQuantity(line_id=PEGS, quantity=2),
                             LineQuantity(line_id=TENT, quantity=1))
    assert created.warehouse_id == "shopify-location-71234567890"
    assert shipped.tracking_number == "00340434161094042557"
    assert got.source == "shopify:acme-outdoor"
    assert {e.source for e in got.events} == {"shopify:acme-outdoor/fulfillment/4901234567890"}


@pytest.mark.parametrize(("changes", "last"), [
    ({"shipment_status": "delivered"}, Delivered),
    ({"status": "cancelled"}, FulfillmentCanceled),
    ({"status": "pending", "shipment_status": None}, FulfillmentSubmitted),
])
def test_fulfillments_update_maps_the_status(changes: dict[str, Any], last: type) -> None:
    """fulfillments/update: delivered adds Delivered, cancelled cancels, pending only submits."""
    got = _ingest("fulfillments/update", "fulfillments_update", **changes)
    assert type(got.events[-1]) is last


def test_refunds_create_refunds_money_and_cancels_lines() -> None:
    """refunds/create: its refund transactions and the lines refunded with restock_type cancel."""
    refunded, canceled = _ingest("refunds/create", "refunds_create").events
    assert isinstance(refunded, PaymentRefunded) and isinstance(canceled, LineItemsCanceled)
    assert (refunded.refund_id, refunded.amount) == ("7011234560005", 2450)
    assert canceled.lines == (LineQuantity(line_id=PEGS, quantity=1),)


def test_a_refund_seen_on_both_topics_is_one_refund() -> None:
    """The refund transaction from refunds/create and order_transactions/create has one event id."""
    from_refund = _ingest("refunds/create", "refunds_create").events[0]
    from_txn = _ingest("order_transactions/create", "order_transactions_refund").events[0]
    assert from_refund.event_id == from_txn.event_id


def test_every_topic_is_mapped() -> None:
    """Each supported topic has a fixture that maps without error."""
    fixtures = {"orders/create": "orders_create", "orders/paid": "orders_paid",
                "orders/cancelled": "orders_cancelled", "orders/updated": "orders_updated",
                "order_transactions/create": "order_transactions_sale",
                "fulfillments/create": "fulfillments_create",
                "fulfillments/update": "fulfillments_update",
                "refunds/create": "refunds_create"}
    assert set(fixtures) == set(SHOPIFY_TOPICS)
    for topic, name in fixtures.items():
        assert _ingest(topic, name).order_id == ORDER


def test_a_whole_order_life_folds_cleanly() -> None:
    """Create, authorize, capture, ship, deliver: every mapped event applies to the order."""
    state, kinds = None, []
    for topic, name in (("orders/create", "orders_create"),
                        ("order_transactions/create", "order_transactions_authorization"),
                        ("orders/paid", "orders_paid"),
                        ("order_transactions/create", "order_transactions_capture"),
                        ("fulfillments/create", "fulfillments_create"),
                        ("fulfillments/update", "fulfillments_update")):
        state, got = _offer(state, _ingest(topic, name).events)
        kinds += got
    assert kinds.count(OutcomeKind.REJECTED) == 0
    assert state is not None and state.captured_amount == 18790


# -- ids and redelivery -----------------------------------------------------------------


def test_a_redelivered_webhook_keeps_its_event_id() -> None:
    """The same webhook delivered twice gives the same event id and events (the inbox dedupes)."""
    first = _ingest("orders/create", "orders_create", webhook_id="wh-same")
    again = _ingest("orders/create", "orders_create", webhook_id="wh-same")
    assert first == again and first.event_id == "wh-same"


def test_an_order_id_too_long_for_the_format_is_refused() -> None:
    """shopify:<shop>:<order id> must fit the id format (64 characters)."""
    raw = _body("orders_create")
    long_shop = "a" * 50
    headers = _headers(raw, "orders/create")
    del headers["X-Shopify-Shop-Domain"]
    with pytest.raises(IngestError) as caught:
        shopify_to_messages("orders/create", headers, raw, shop=long_shop, secret=SECRET)
    assert caught.value.reason is IngestReason.BAD_ID


# -- staleness through the order model ---------------------------------------------------


def test_an_older_orders_updated_after_a_newer_one_is_stale() -> None:
    """An orders/updated with an older updated_at, arriving after a newer one, is stale."""
    newer = _ingest("orders/updated", "orders_cancelled", webhook_id="wh-new").events
    older = _ingest("orders/updated", "orders_updated", webhook_id="wh-old").events
    state, kinds = _offer(None, newer)
    assert kinds == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    after, kinds = _offer(state, older)
    assert kinds == [OutcomeKind.STALE] and after is state


def test_an_older_fulfillment_status_cannot_undo_a_cancel() -> None:
    """A late fulfillment 'success' older than its 'cancelled' is stale: nothing ships."""
    state, _ = _offer(None, _ingest("orders/create", "orders_create").events)
    cancelled = _ingest("fulfillments/update", "fulfillments_update", status="cancelled",
                        updated_at="2024-05-02T17:00:00+02:00").events
    state, kinds = _offer(state, cancelled)
    assert kinds[-1] is OutcomeKind.APPLIED
    late = _ingest("fulfillments/create", "fulfillments_create").events
    _, kinds = _offer(state, late)
    assert kinds == [OutcomeKind.STALE] * 3


def test_a_late_transaction_is_not_stale() -> None:
    """Transactions are separate sources: an older capture after a newer refund still applies."""
    state, _ = _offer(None, _ingest("orders/create", "orders_create").events)
    state, _ = _offer(state, _ingest("order_transactions/create",
                                     "order_transactions_authorization").events)
    state, kinds = _offer(state, _ingest("order_transactions/create",
                                         "order_transactions_refund").events)
    state, kinds = _offer(state, _ingest("order_transactions/create",
                                         "order_transactions_capture").events)
    assert kinds == [OutcomeKind.APPLIED]


# -- money --------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "currency", "units"), [
    ("19.99", "EUR", 1999), ("0.01", "USD", 1), ("0", "EUR", 0), ("19.9", "EUR", 1990),
    ("19", "GBP", 1900), ("1500", "JPY", 1500), ("1500.00", "JPY", 1500),
    ("12.345", "KWD", 12345), ("0.5", "KWD", 500), ("19.990", "EUR", 1999),
    ("9007199254740.99", "EUR", 900719925474099),
])
def test_money_converts_exactly_by_exponent(value: str, currency: str, units: int) -> None:
    """Decimal strings become minor units by the currency's exponent, exactly."""
    assert minor_units(value, currency, path="amount") == units


@pytest.mark.parametrize(("value", "currency", "reason"), [
    ("19.999", "EUR", IngestReason.BAD_MONEY),   # more decimals than EUR has
    ("1500.5", "JPY", IngestReason.BAD_MONEY),   # JPY has none
    ("1.2345", "KWD", IngestReason.BAD_MONEY),   # KWD has three
    ("-1.00", "EUR", IngestReason.BAD_MONEY),
    ("+1.00", "EUR", IngestReason.BAD_MONEY),
    ("1e3", "EUR", IngestReason.BAD_MONEY),
    ("NaN", "EUR", IngestReason.BAD_MONEY),
    ("Infinity", "EUR", IngestReason.BAD_MONEY),
    (" 1.00", "EUR", IngestReason.BAD_MONEY),
    ("01.00", "EUR", IngestReason.BAD_MONEY),
    ("1.", "EUR", IngestReason.BAD_MONEY),
    ("", "EUR", IngestReason.BAD_MONEY),
    (19.99, "EUR", IngestReason.BAD_MONEY),      # a JSON number, not a string
    (1999, "EUR", IngestReason.BAD_MONEY),
    (None, "EUR", IngestReason.BAD_MONEY),
    ("99999999999999.99", "EUR", IngestReason.BAD_MONEY),  # beyond 2**53 - 1 minor units
    ("19.99", "XYZ", IngestReason.UNKNOWN_CURRENCY),
    ("19.99", "eur", IngestReason.UNKNOWN_CURRENCY),
    ("19.99", None, IngestReason.UNKNOWN_CURRENCY),
])
def test_money_that_is_not_exact_plain_or_known_is_refused(value: object, currency: object,
                                                           reason: IngestReason) -> None:
    """Rounding, signs, exponents, NaN, floats and unknown currencies are refused."""
    with pytest.raises(IngestError) as caught:
        minor_units(value, currency, path="line_items[0].price")
    assert caught.value.reason is reason and caught.value.path == "line_items[0].price"


def test_an_order_priced_in_a_float_is_refused_with_its_path() -> None:
    """A line price sent as a JSON number is bad_money at its path."""
    data = json.loads(_body("orders_create"))
    data["line_items"][1]["price"] = 129.0
    error = _refused("orders/create", json.dumps(data).encode())
    assert (error.reason, error.path) == (IngestReason.BAD_MONEY, "line_items[1].price")


# -- refusals -----------------------------------------------------------------------------


def _mangled(**changes: Any) -> bytes:
    return _body("orders_create", **changes)


@pytest.mark.parametrize(("topic", "raw", "reason"), [
    ("products/create", _body("orders_create"), IngestReason.UNSUPPORTED_TOPIC),
    ("orders/create", b'{"id": 1, "id": 2}', IngestReason.DUPLICATE_KEY),
    ("orders/create", b'{"id": NaN}', IngestReason.NON_FINITE_NUMBER),
    ("orders/create", b'{"id": 1', IngestReason.NOT_JSON),
    ("orders/create", b"[1, 2]", IngestReason.NOT_AN_OBJECT),
    ("orders/create", b"\xff\xfe", IngestReason.BAD_UTF8),
    ("orders/create", b" " * (64 * 1024 + 1), IngestReason.TOO_LARGE),
    ("orders/create", _mangled(currency="ZZZ"), IngestReason.UNKNOWN_CURRENCY),
    ("orders/create", _mangled(id="5802390487128"), IngestReason.BAD_ID),
    ("orders/create", _mangled(line_items=[]), IngestReason.BAD_FIELD),
    ("orders/create", _mangled(created_at="2024-05-02 10:15"), IngestReason.BAD_TIMESTAMP),
    ("orders/create", _mangled(created_at="yesterday"), IngestReason.BAD_TIMESTAMP),
    ("orders/cancelled", _mangled(), IngestReason.MISSING_FIELD),  # no cancelled_at
    ("order_transactions/create", _body("order_transactions_capture", parent_id=None),
     IngestReason.BAD_ID),
    ("order_transactions/create", _body("order_transactions_sale", kind="chargeback"),
     IngestReason.BAD_FIELD),
    ("order_transactions/create", _body("order_transactions_sale", amount="0.00"),
     IngestReason.BAD_MONEY),
    ("fulfillments/create", _body("fulfillments_create", status="lost"), IngestReason.BAD_FIELD),
])
def test_bad_webhooks_are_refused_with_a_reason(topic: str, raw: bytes,
                                                reason: IngestReason) -> None:
    """Each kind of bad input is an IngestError with its reason code."""
    assert _refused(topic, raw).reason is reason


def test_a_missing_webhook_id_or_signature_is_refused() -> None:
    """Without X-Shopify-Webhook-Id: missing_field; without the HMAC header: bad_signature."""
    raw = _body("orders_create")
    headers = _headers(raw, "orders/create")
    del headers["X-Shopify-Webhook-Id"]
    assert _refused("orders/create", raw, headers).reason is IngestReason.MISSING_FIELD
    headers = _headers(raw, "orders/create")
    del headers["X-Shopify-Hmac-Sha256"]
    assert _refused("orders/create", raw, headers).reason is IngestReason.BAD_SIGNATURE


def test_headers_naming_another_topic_or_shop_are_refused() -> None:
    """A topic or shop header that disagrees with the caller's is bad_field."""
    raw = _body("orders_create")
    for extra in ({"X-Shopify-Topic": "orders/paid"},
                  {"X-Shopify-Shop-Domain": "other.myshopify.com"}):
        error = _refused("orders/create", raw, _headers(raw, "orders/create", **extra))
        assert error.reason is IngestReason.BAD_FIELD


def test_errors_never_quote_customer_data() -> None:
    """No refusal's message names a customer's name, email, phone or address."""
    data = json.loads(_body("orders_create"))
    data["customer"]["id"] = "greta.lindqvist@example.com"
    data["line_items"][0]["price"] = "Greta Lindqvist"
    for raw in (json.dumps(data).encode(), _mangled(currency="Berlin")):
        assert not any(p in str(_refused("orders/create", raw)) for p in PERSONAL)


# -- dead letters and redaction -------------------------------------------------------------


def test_a_refused_webhook_becomes_a_redacted_dead_letter() -> None:
    """ingest_shopify returns the reason, the webhook id and a payload without people."""
    raw = _mangled(currency="ZZZ")
    got = ingest_shopify("orders/create", _headers(raw, "orders/create", webhook_id="wh-9"), raw,
                         shop=SHOP, secret=SECRET)
    assert isinstance(got, IngestDeadLetter)
    assert (got.reason, got.event_id, got.topic, got.source) == (
        IngestReason.UNKNOWN_CURRENCY, "wh-9", "orders/create", "shopify:acme-outdoor")
    text = json.dumps(got.payload, ensure_ascii=False)
    assert not [p for p in PERSONAL if p in text]
    payload = got.payload
    assert isinstance(payload, dict)
    assert payload["customer"] == payload["shipping_address"] == "<removed>"
    assert payload["email"] == payload["phone"] == payload["note"] == "<removed>"
    assert payload["id"] == 5802390487128 and payload["currency"] == "ZZZ"
    assert payload["line_items"][0]["price"] == "24.50"


@pytest.mark.parametrize("name", ["orders_create", "fulfillments_create", "refunds_create",
                                  "order_transactions_authorization"])
def test_redaction_removes_people_from_every_fixture(name: str) -> None:
    """Names, emails, phones, addresses, IPs, notes and card details never survive redaction."""
    text = json.dumps(redact_payload(_body(name)), ensure_ascii=False)
    assert not [p for p in PERSONAL if p in text]


def test_redaction_of_unparseable_bodies_keeps_only_their_size() -> None:
    """A body that is not JSON, or too large, is kept only as its byte count."""
    assert redact_payload(b"Greta, Berlin") == {"unparsed_bytes": 13}
    assert redact_payload(b"[" * 70_000) == {"unparsed_bytes": 70_000}


def test_redaction_hides_foreign_keys_and_unknown_strings() -> None:
    """A key that is not a field name and a string under an unknown key are both hidden."""
    got = redact_payload(b'{"greta@example.com": 1, "whatever": "Greta", "status": "success"}')
    assert got == {"<key 0>": 1, "whatever": "<redacted: 5 chars>", "status": "success"}


# -- docs/ingest-shopify.md --------------------------------------------------------------


def test_the_mapping_doc_has_a_row_per_topic() -> None:
    """docs/ingest-shopify.md's mapping table names exactly the supported topics."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "ingest-shopify.md").read_text(
        encoding="utf-8")
    section = text.split("## Mapping", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip().strip("`") for line in section.splitlines()
            if line.startswith("| `")]
    assert rows == list(SHOPIFY_TOPICS)
