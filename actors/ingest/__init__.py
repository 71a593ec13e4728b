"""Ingest adapters: real platforms' payloads in, orderloom order events out.

Pure translation at the edge (DESIGN.md, "Location transparency"): a
transport (the MQTT ingest topic, the HTTP webhook endpoint) hands over a
platform's topic, headers and raw body; the adapter verifies the signature,
parses strictly, converts money to minor units and maps the payload to
order events from a monotonic source (see ``order._sources``), or refuses it
with an :class:`~orderloom.runtime.IngestError` and a redacted dead-letter
record. It imports only the order model, never the coordinator or world.
"""

from __future__ import annotations

from ._money import CURRENCY_EXPONENTS, MAX_MINOR_UNITS, minor_units
from ._redact import PERSONAL_KEYS, redact_payload
from ._seam import (
    INTAKE,
    EnvelopeSource,
    IngestConfigError,
    IngestSeam,
    ShopifySource,
    ingest_sources,
)
from ._shopify import (
    SHOPIFY_TOPICS,
    IngestDeadLetter,
    Ingested,
    ingest_shopify,
    shopify_dead_letter,
    shopify_to_messages,
    verify_shopify_hmac,
)

__all__ = [
    "CURRENCY_EXPONENTS",
    "EnvelopeSource",
    "INTAKE",
    "IngestConfigError",
    "IngestDeadLetter",
    "IngestSeam",
    "Ingested",
    "MAX_MINOR_UNITS",
    "PERSONAL_KEYS",
    "SHOPIFY_TOPICS",
    "ShopifySource",
    "ingest_shopify",
    "ingest_sources",
    "minor_units",
    "redact_payload",
    "shopify_dead_letter",
    "shopify_to_messages",
    "verify_shopify_hmac",
]
