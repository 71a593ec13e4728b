"""The ingest seam: payloads from outside sources in, envelopes for the kernel out.

An :class:`IngestGate` takes what an outside source sent, as received (the
source's name, its headers, the raw body) and either accepts it as the
envelopes to deliver (:class:`IngestAccepted`, each with a message id
derived from the source's own ids, so a retried webhook carries the same
ids and the recipients' inboxes dedupe it) or refuses it as a redacted
:class:`~orderloom.runtime.RefusedPayload`. A gate is pure: no clock (the
caller passes ``now``), no I/O, no state; nothing changes on a refusal.

The MQTT transport (``orderloom/v1/in/{source}``) and the HTTP webhook
routes (``POST /ingest/{source}``) call the same gate. The order domain's
gate is :class:`orderloom.actors.IngestSeam`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from ._contract import Envelope
from ._refused import RefusedPayload

__all__ = ["IngestAccepted", "IngestGate"]


@attrs.frozen(kw_only=True)
class IngestAccepted:
    """An accepted payload: the envelopes to deliver, in order (maybe none: a
    pending payment is accepted with nothing to record).

    Invariant: every envelope's recipient is one the source may address.
    """

    source: str
    envelopes: tuple[Envelope, ...]


class IngestGate(Protocol):
    """Checks and translates outside payloads (see the module docstring)."""

    @property
    def sources(self) -> frozenset[str]:
        """The configured source names (each one level of ``orderloom/v1/in/{source}``)."""
        ...

    def self_authenticating(self, source: str) -> bool:
        """Whether ``source``'s payloads carry their own proof of origin (a
        webhook signature) that the gate verifies, so an HTTP caller needs no
        bearer token."""
        ...

    def ingest(self, source: str, headers: Mapping[str, str], raw_body: bytes, *,
               origin: str, now: float) -> IngestAccepted | RefusedPayload:
        """Accept or refuse one payload.

        Args:
            source: the source's name (from the topic or the URL path).
            headers: the request's headers or the MQTT 5 user properties
                (names compared case-insensitively).
            raw_body: the body exactly as received.
            origin: where it came in (the topic, or ``POST /ingest/<source>``),
                for the dead-letter record.
            now: the caller's clock, seconds since the epoch: far-off
                timestamps are refused against it.
        """
        ...
