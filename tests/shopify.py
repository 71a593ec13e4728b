"""The Shopify webhooks the tests replay: the shop, its secret, the fixtures
(``tests/fixtures/shopify``, one order's webhooks) and how Shopify signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "shopify"
SECRET = b"hush-its-a-webhook-secret"
SHOP = "acme-outdoor"
ORDER = "shopify:acme-outdoor:5802390487128"  # the fixtures' order, as the adapter names it
# The customer's data in every fixture: none of it may reach a log, a dead
# letter or a journal.
PERSONAL = ("Greta", "Lindqvist", "greta.lindqvist@example.com", "Kastanienallee")


def fixture(name: str) -> bytes:
    """The raw body of ``tests/fixtures/shopify/<name>.json``."""
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(raw: bytes, secret: bytes = SECRET) -> str:
    """Shopify's ``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret, raw, hashlib.sha256).digest()).decode()


def headers(raw: bytes, topic: str, webhook_id: str, *,
            secret: bytes = SECRET) -> dict[str, str]:
    """The headers Shopify sends with ``raw`` on ``topic``, signed with ``secret``."""
    return {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sign(raw, secret),
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Shop-Domain": f"{SHOP}.myshopify.com"}
