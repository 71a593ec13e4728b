"""The ingest seam: Shopify and generic-envelope sources in, envelopes for the
coordinator out; every bad-input class refused with a reason and a redacted record."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from orderloom.actors import (
    INTAKE,
    EnvelopeSource,
    IngestConfigError,
    IngestSeam,
    LineItemSpec,
    OrderPlaced,
    PaymentCaptured,
    PlaceOrder,
    ShopifySource,
    ingest_sources,
    wire_codec,
)
from orderloom.actors.coordinator import CaseDecision, GatewayCapture
from orderloom.runtime import (
    Address,
    Envelope,
    IngestAccepted,
    IngestReason,
    InvalidTopic,
    RefusedPayload,
)

from tests.shopify import ORDER, PERSONAL, SECRET, SHOP, sign
from tests.shopify import fixture as shopify_fixture

# orders_create.json's updated_at, plus a minute.
NOW = dt.datetime.fromisoformat("2024-05-02T10:16:28+02:00").timestamp()
CODEC = wire_codec()
SEAM = IngestSeam(CODEC, {"shopify": ShopifySource(shop=SHOP, secret=SECRET),
                          "wms": EnvelopeSource()})


def shopify(name: str = "orders_create", topic: str = "orders/create", *,
            secret: bytes = SECRET, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
            ) -> tuple[dict[str, str], bytes]:
    raw = shopify_fixture(name)
    sig = sign(raw, secret)
    return ({"x-shopify-topic": topic, "X-Shopify-Hmac-Sha256": sig,
             "X-Shopify-Webhook-Id": webhook_id,
             "X-Shopify-Shop-Domain": f"{SHOP}.myshopify.com"}, raw)


def placed(order_id: str = "O-1", **changes: Any) -> OrderPlaced:
    fields: dict[str, Any] = dict(
        order_id=order_id, event_id="e1", source="wms", source_seq=1, occurred_at=NOW - 5,
        customer_id="C-7", currency="EUR",
        lines=(LineItemSpec(line_id="L1", sku="SKU-1", quantity=2, unit_price=450),))
    return OrderPlaced(**(fields | changes))


def envelope_json(body: Any = None, **changes: Any) -> dict[str, Any]:
    env = Envelope("m-1", None, "O-1", None, INTAKE, NOW, body or placed(), None)
    data: dict[str, Any] = json.loads(CODEC.encode_envelope(env))
    for key, value in changes.items():
        if key.startswith("body_"):
            data["body"][key[5:]] = value
        else:
            data[key] = value
    return data


def ingest(source: str, raw: bytes, headers: dict[str, str] | None = None
           ) -> IngestAccepted | RefusedPayload:
    return SEAM.ingest(source, headers or {}, raw, origin=f"orderloom/v1/in/{source}", now=NOW)


def refused(source: str, raw: bytes, headers: dict[str, str] | None = None) -> RefusedPayload:
    out = ingest(source, raw, headers)
    assert isinstance(out, RefusedPayload), out
    text = json.dumps(out.as_dict())
    for word in PERSONAL:
        assert word not in text  # nothing personal in the record
    return out


# -- Shopify -----------------------------------------------------------------------------


def test_a_signed_orders_create_becomes_its_order_placed_for_intake() -> None:
    """A valid webhook's events go to intake, correlated with the order, ids from the webhook."""
    headers, raw = shopify()
    out = ingest("shopify", raw, headers)
    assert isinstance(out, IngestAccepted) and out.source == "shopify"
    [env] = out.envelopes
    assert (env.recipient, env.correlation_id, env.sender, env.reply_to, env.sent_at) == (
        INTAKE, ORDER, None, None, NOW)
    assert isinstance(env.body, OrderPlaced) and env.body.order_id == ORDER
    assert env.message_id.startswith("in:") and len(env.message_id) <= 64


def test_a_retried_webhook_carries_the_same_message_ids_and_another_does_not() -> None:
    """The message ids derive from the webhook id: a retry is deduplicated by the inbox."""
    first = ingest("shopify", *reversed(shopify()))
    again = ingest("shopify", *reversed(shopify()))
    other = ingest("shopify", *reversed(shopify(webhook_id="another-webhook")))
    assert isinstance(first, IngestAccepted) and isinstance(again, IngestAccepted)
    assert isinstance(other, IngestAccepted)
    assert [e.message_id for e in first.envelopes] == [e.message_id for e in again.envelopes]
    assert {e.message_id for e in first.envelopes}.isdisjoint(
        e.message_id for e in other.envelopes)


def test_a_sale_transaction_gives_two_envelopes_with_distinct_ids() -> None:
    """A webhook mapping to several events gives one envelope each, in order."""
    headers, raw = shopify("order_transactions_sale", "order_transactions/create")
    out = ingest("shopify", raw, headers)
    assert isinstance(out, IngestAccepted)
    assert [type(e.body).__name__ for e in out.envelopes] == ["PaymentAuthorized",
                                                              "PaymentCaptured"]
    assert len({e.message_id for e in out.envelopes}) == 2
    assert isinstance(out.envelopes[1].body, PaymentCaptured)


def test_a_bad_signature_is_refused_before_anything_is_read_and_redacted() -> None:
    """A wrong HMAC is bad_signature; the record keeps structure, not the customer."""
    headers, raw = shopify(secret=b"not-the-secret")
    out = refused("shopify", raw, headers)
    assert (out.reason, out.source, out.origin) == (
        IngestReason.BAD_SIGNATURE, "shopify", "orderloom/v1/in/shopify")
    assert out.path == "headers.X-Shopify-Hmac-Sha256" and out.received_at == NOW
    assert isinstance(out.payload, dict) and out.payload["id"] == 5802390487128
    assert out.payload["email"] == "<removed>"


def test_a_missing_topic_header_is_an_unsupported_topic() -> None:
    """Without X-Shopify-Topic the webhook maps to nothing: unsupported_topic."""
    headers, raw = shopify()
    del headers["x-shopify-topic"]
    assert refused("shopify", raw, headers).reason is IngestReason.UNSUPPORTED_TOPIC


def test_a_shopify_webhook_far_from_now_is_refused() -> None:
    """A webhook whose own time is more than 7 days old is bad_timestamp."""
    headers, raw = shopify()
    out = SEAM.ingest("shopify", headers, raw, origin="POST /ingest/shopify",
                      now=NOW + 8 * 86400)
    assert isinstance(out, RefusedPayload) and out.reason is IngestReason.BAD_TIMESTAMP
    assert out.origin == "POST /ingest/shopify"


def test_an_unconfigured_source_is_refused() -> None:
    """A source the seam was not given is bad_address, recorded as source 'unknown'."""
    out = refused("etsy", b"{}")
    assert (out.reason, out.source, out.path) == (IngestReason.BAD_ADDRESS, "unknown", "source")


def test_configuration_is_checked() -> None:
    """A bad shop, a short secret or a source name that is no topic level are refused."""
    with pytest.raises(ValueError, match="shop"):
        ShopifySource(shop="Acme Outdoor", secret=SECRET)
    with pytest.raises(ValueError, match="secret"):
        ShopifySource(shop=SHOP, secret=b"short")
    with pytest.raises(InvalidTopic):
        IngestSeam(CODEC, {"a/b": EnvelopeSource()})
    assert "hush" not in repr(ShopifySource(shop=SHOP, secret=SECRET))
    assert SEAM.self_authenticating("shopify") and not SEAM.self_authenticating("wms")
    assert SEAM.sources == {"shopify", "wms"}


# -- the generic envelope ----------------------------------------------------------------


def test_a_generic_envelope_to_intake_is_delivered_as_sent() -> None:
    """A valid envelope keeps its id, correlation and recipient."""
    raw = json.dumps(envelope_json()).encode()
    out = ingest("wms", raw)
    assert isinstance(out, IngestAccepted)
    [env] = out.envelopes
    assert (env.message_id, env.correlation_id, env.recipient) == ("m-1", "O-1", INTAKE)
    assert env.body == placed()


def test_a_generic_envelope_to_its_order_is_accepted() -> None:
    """order/<id> is allowed when the body's order id is that id."""
    raw = json.dumps(envelope_json(recipient="order/O-1")).encode()
    out = ingest("wms", raw)
    assert isinstance(out, IngestAccepted) and out.envelopes[0].recipient == Address("order/O-1")


def _place() -> PlaceOrder:
    return PlaceOrder(order_id="O-1", command_id="c1", issued_at=NOW, issued_by="shop",
                      customer_id="C-7", currency="EUR",
                      lines=(LineItemSpec(line_id="L1", sku="S", quantity=1, unit_price=100),))


def _decision() -> CaseDecision:
    return CaseDecision(order_id="O-1", case_id="h1", team="fraud", reviewer="alice",
                        decision="release", proposal="cancel")


def _gateway() -> GatewayCapture:
    return GatewayCapture(order_id="O-1", request_id="r1", notify=Address("order/O-1"),
                          authorization_id="a1", amount=100)


BAD: list[tuple[str, bytes, IngestReason]] = [
    ("non_json", b"{not json", IngestReason.NOT_JSON),
    ("truncated", json.dumps(envelope_json()).encode()[:-7], IngestReason.NOT_JSON),
    ("too_large", b'{"x": "' + b"a" * (64 * 1024) + b'"}', IngestReason.TOO_LARGE),
    ("bad_utf8", b'{"type": "\xff\xfe"}', IngestReason.BAD_UTF8),
    ("nan", json.dumps(envelope_json(sent_at=float("nan"))).encode(),
     IngestReason.NON_FINITE_NUMBER),
    ("duplicate_key", json.dumps(envelope_json()).encode()[:-1] + b', "id": "m-2"}',
     IngestReason.DUPLICATE_KEY),
    ("unknown_field", json.dumps(envelope_json(body_colour="red")).encode(),
     IngestReason.UNKNOWN_FIELD),
    ("wrong_type_field", json.dumps(envelope_json(body_currency=7)).encode(),
     IngestReason.BAD_FIELD),
    ("missing_id", json.dumps({k: v for k, v in envelope_json().items() if k != "id"}).encode(),
     IngestReason.MISSING_FIELD),
    ("missing_event_id", json.dumps(envelope_json(body=None) | {"body": {
        k: v for k, v in envelope_json()["body"].items() if k != "event_id"}}).encode(),
     IngestReason.MISSING_FIELD),
    ("unknown_type", json.dumps(envelope_json(type="order.teleported")).encode(),
     IngestReason.UNKNOWN_TYPE),
    ("unknown_version", json.dumps(envelope_json(v=9)).encode(), IngestReason.UNKNOWN_VERSION),
    ("float_money", json.dumps(envelope_json() | {"body": envelope_json()["body"] | {
        "lines": [{"line_id": "L1", "sku": "S", "quantity": 1, "unit_price": 4.5}]}}).encode(),
     IngestReason.BAD_MONEY),
    ("negative_money", json.dumps(envelope_json() | {"body": envelope_json()["body"] | {
        "lines": [{"line_id": "L1", "sku": "S", "quantity": 1, "unit_price": -450}]}}).encode(),
     IngestReason.BAD_MONEY),
    ("impossible_sequence", json.dumps(envelope_json(body_source_seq=0)).encode(),
     IngestReason.BAD_SEQUENCE),
    ("id_with_slash", json.dumps(envelope_json(id="m/1")).encode(), IngestReason.BAD_ID),
    ("id_with_plus", json.dumps(envelope_json(body_order_id="O+1")).encode(),
     IngestReason.BAD_ID),
    ("id_with_hash", json.dumps(envelope_json(correlation_id="O#1")).encode(),
     IngestReason.BAD_ID),
    ("id_with_newline", json.dumps(envelope_json(body_event_id="e\n1")).encode(),
     IngestReason.BAD_ID),
    ("far_past", json.dumps(envelope_json(body_occurred_at=NOW - 8 * 86400)).encode(),
     IngestReason.BAD_TIMESTAMP),
    ("far_future", json.dumps(envelope_json(sent_at=NOW + 3600)).encode(),
     IngestReason.BAD_TIMESTAMP),
    ("recipient_gateway", json.dumps(envelope_json(_gateway(), recipient="gateway")).encode(),
     IngestReason.BAD_ADDRESS),
    ("recipient_automation", json.dumps(envelope_json(recipient="automation")).encode(),
     IngestReason.BAD_ADDRESS),
    ("another_order", json.dumps(envelope_json(recipient="order/O-2")).encode(),
     IngestReason.BAD_ADDRESS),
    ("asks", json.dumps(envelope_json(reply_to="gateway")).encode(), IngestReason.BAD_ADDRESS),
    ("command_to_intake", json.dumps(envelope_json(_gateway())).encode(),
     IngestReason.BAD_ADDRESS),
    # A person's decision (or any non-event) forged by an outside source.
    ("decision_to_order", json.dumps(envelope_json(_decision(), recipient="order/O-1")).encode(),
     IngestReason.BAD_ADDRESS),
    ("command_to_order", json.dumps(envelope_json(_place(), recipient="order/O-1")).encode(),
     IngestReason.BAD_ADDRESS),
]


@pytest.mark.parametrize(("case", "raw", "reason"), BAD, ids=[b[0] for b in BAD])
def test_every_bad_input_class_is_refused_with_its_reason(case: str, raw: bytes,
                                                          reason: IngestReason) -> None:
    """Each bad payload is refused with its reason, redacted, and yields no envelope."""
    out = refused("wms", raw)
    assert out.reason is reason, (case, out.detail)
    assert out.source == "wms" and out.origin == "orderloom/v1/in/wms"
    assert out.detail.startswith(reason.value)
    json.dumps(out.as_dict(), allow_nan=False)  # the record itself is plain JSON


def test_a_place_order_to_intake_is_accepted() -> None:
    """intake takes a PlaceOrder from an outside source (a storefront)."""
    out = ingest("wms", json.dumps(envelope_json(_place())).encode())
    assert isinstance(out, IngestAccepted) and isinstance(out.envelopes[0].body, PlaceOrder)


def test_a_refused_generic_payload_keeps_ids_and_drops_free_text() -> None:
    """The record keeps the envelope's ids and redacts customer strings."""
    data = envelope_json(body_customer_id="Greta Lindqvist", v=9)
    out = refused("wms", json.dumps(data).encode())
    assert isinstance(out.payload, dict) and out.payload["id"] == "m-1"


def test_an_ingest_configuration_gives_its_sources() -> None:
    """ingest_sources reads {name: {kind, shop, secret}} into the seam's sources."""
    sources = ingest_sources({"shopify": {"kind": "shopify", "shop": SHOP,
                                          "secret": SECRET.decode()},
                              "wms": {"kind": "envelope"}})
    assert sources == {"shopify": ShopifySource(shop=SHOP, secret=SECRET),
                       "wms": EnvelopeSource()}


def test_a_bad_ingest_configuration_names_every_field_and_never_the_secret() -> None:
    """Every problem is reported with its path and what was expected; the secret is not quoted."""
    with pytest.raises(IngestConfigError) as caught:
        ingest_sources({"a/b": {"kind": "envelope"}, "x": {"kind": "shopify", "shop": "Bad Shop",
                                                           "secret": "s3cr", "colour": 1},
                        "y": 3, "z": {"kind": "sftp"}}, source="serve.yaml: ingest")
    assert caught.value.source == "serve.yaml: ingest"
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "a/b", "x.colour", "x.shop", "x.secret", "y", "z.kind"]
    assert "s3cr" not in str(caught.value)
    with pytest.raises(IngestConfigError, match="expected a mapping"):
        ingest_sources(["shopify"])
