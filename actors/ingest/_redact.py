"""Redaction of a refused platform payload, for the dead-letter topic and table.

The structure is kept so an operator can see what was sent and where it
broke; people are not. Personal fields (names, emails, phone numbers,
addresses, the customer, card details, IPs, free-text notes) are replaced by
``"<removed>"`` whatever they hold, nested objects included. Numbers, bools
and nulls stay. A string stays only under a key known to hold a code, a
status, a timestamp or an amount, and only when it is short and plain;
every other string becomes ``"<redacted: N chars>"``. Keys that do not look
like a platform's field names (they may be anything, an email included)
become ``"<key N>"``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from orderloom.runtime import MAX_ENVELOPE_BYTES

__all__ = ["PERSONAL_KEYS", "redact_payload"]

PERSONAL_KEYS = frozenset({
    "customer", "email", "contact_email", "phone", "sms_marketing_phone",
    "billing_address", "shipping_address", "default_address", "addresses", "destination",
    "origin_address", "first_name", "last_name", "name", "title", "variant_title",
    "address1", "address2", "city", "zip", "province", "province_code", "country",
    "country_code", "company", "latitude", "longitude", "browser_ip", "client_details",
    "note", "note_attributes", "properties", "tags", "payment_details", "receipt",
    "credit_card_number", "credit_card_name", "credit_card_bin", "credit_card_company",
    "avs_result_code", "cvv_result_code", "landing_site", "referring_site", "user_id",
    "device_id", "customer_locale", "cart_token", "checkout_token", "token", "order_status_url",
    "tracking_number", "tracking_numbers", "tracking_url", "tracking_urls", "message",
    "authorization", "discount_codes",
})
"""Fields removed whole from a refused payload: people, and free text that may name them."""

_KEPT_STRINGS = frozenset({
    "currency", "presentment_currency", "financial_status", "fulfillment_status", "kind",
    "status", "shipment_status", "cancel_reason", "restock_type", "source_name", "gateway",
    "error_code", "service", "tracking_company", "sku", "admin_graphql_api_id",
    "created_at", "updated_at", "processed_at", "cancelled_at", "closed_at",
    "price", "amount", "total_price", "subtotal_price", "total_tax", "total_discounts",
    "total_line_items_price", "current_total_price", "current_subtotal_price", "subtotal",
})
_PLAIN = re.compile(r"[A-Za-z0-9 ._:/+#-]{0,64}")
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")


def redact_payload(raw: bytes) -> object:
    """``raw`` (a platform's request body) with everything personal taken out.

    A body that is too large, not UTF-8 or not JSON is not parsed: it
    becomes ``{"unparsed_bytes": N}``.
    """
    if len(raw) > MAX_ENVELOPE_BYTES:
        return {"unparsed_bytes": len(raw)}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return {"unparsed_bytes": len(raw)}
    return _redact(data, None)


def _redact(value: Any, key: str | None) -> object:
    if key in PERSONAL_KEYS:
        return "<removed>"
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for n, (k, v) in enumerate(value.items()):
            name = k if isinstance(k, str) and _FIELD_NAME.fullmatch(k) else f"<key {n}>"
            out[name] = _redact(v, name)
        return out
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    if isinstance(value, str):
        if key in _KEPT_STRINGS and _PLAIN.fullmatch(value):
            return value
        return f"<redacted: {len(value)} chars>"
    if isinstance(value, float) and not math.isfinite(value):  # a lenient parse's NaN
        return "<redacted: number>"
    return value
