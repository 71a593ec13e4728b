"""Refused input: what the dead-letter topic and table keep of a payload that was refused.

A payload from outside (an ingest topic, an HTTP webhook, an envelope on a
``to/`` topic) that cannot be taken becomes a :class:`RefusedPayload`: the
closed reason, where it came from, the field path and what was expected,
and the payload **redacted** (ids and structure kept, people removed). It is
published on ``orderloom/v1/dead/{reason}`` (:meth:`RefusedPayload.to_json`)
and recorded in the store's dead-letter table
(:meth:`~orderloom.runtime.Store.record_dead_letter`) once per delivery:
a record made from the raw bytes carries their :func:`delivery_key`, and a
store keeps one row per key, so a broker's redelivery of a payload refused
before its acknowledgement, or a sender's retry of the same bytes to the
same door, adds no second row. A record without a key (a body too large to
read whole) is kept every time.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import attrs

from ._wire_errors import IngestError, IngestReason

__all__ = ["RefusedPayload", "dead_letter_of_row", "dead_letter_row", "delivery_key"]


def dump_json(data: object, *, allow_nan: bool = True) -> str:
    # The codec's compact form; _codec imports the store, which imports this.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)


def _json_value(_: object, a: attrs.Attribute[Any], value: object) -> None:
    try:
        dump_json(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"RefusedPayload.{a.name} must be plain JSON data") from exc


@attrs.frozen(kw_only=True)
class RefusedPayload:
    """One refused payload.

    Invariants: ``reason`` is an :class:`IngestReason`; ``detail`` is an
    :class:`IngestError`'s message (it never quotes a payload value);
    ``payload`` is redacted JSON data (never the raw bytes).

    Attributes:
        reason: why it was refused (the dead topic's last level).
        source: the ingest source (``shopify``, ``wms``), or ``wire`` for an
            envelope that came on a ``to/`` topic.
        origin: where it came in: the MQTT topic, or ``POST /ingest/<source>``.
        path: where in the payload (``body.lines[0].unit_price``; ``""``: the whole).
        detail: the error's message.
        received_at: when it was refused, seconds since the epoch.
        payload: the payload, redacted.
        type_name: the message type's wire name, when it was read.
        delivery: :func:`delivery_key` of the raw bytes it was made from
            (None: not known); what a store records it once under. Not part
            of equality, and not published or read back.
    """

    reason: IngestReason = attrs.field(converter=IngestReason)
    source: str
    origin: str
    path: str = ""
    detail: str
    received_at: float
    payload: object = attrs.field(validator=_json_value)
    type_name: str | None = None
    delivery: str | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def of(cls, error: IngestError, *, source: str, origin: str, received_at: float,
           payload: object, raw: bytes | None = None) -> RefusedPayload:
        """The record of ``error`` (its reason, path, type and message);
        ``raw``: the bytes as delivered, for its :func:`delivery_key`."""
        return cls(reason=error.reason, source=source, origin=origin, path=error.path,
                   delivery=None if raw is None else delivery_key(origin, raw),
                   detail=str(error), received_at=received_at, payload=_finite(payload),
                   type_name=error.type_name)

    def to_json(self) -> bytes:
        """The record as published on the dead-letter topic (UTF-8 JSON)."""
        return dump_json(self.as_dict(), allow_nan=False).encode("utf-8")

    def as_dict(self) -> dict[str, Any]:
        """The record as plain JSON data (``topic`` is the origin, for older readers)."""
        return {"reason": self.reason.value, "source": self.source, "origin": self.origin,
                "topic": self.origin, "path": self.path, "type": self.type_name,
                "detail": self.detail, "received_at": self.received_at,
                "payload": self.payload}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefusedPayload:
        """The record :meth:`as_dict` gave (a stored row)."""
        received = data["received_at"]
        if not isinstance(received, (int, float)) or not math.isfinite(received):
            raise ValueError("received_at must be a finite number")
        return cls(reason=data["reason"], source=data["source"], origin=data["origin"],
                   path=data.get("path", ""), detail=data["detail"], received_at=received,
                   payload=data["payload"], type_name=data.get("type"))


def _finite(value: object) -> object:
    """``value`` with NaN and the infinities (a lenient parse's) as text: the
    record must be strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "<redacted: number>"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def dead_letter_row(letter: RefusedPayload) -> tuple[Any, ...]:
    """The columns of the stores' ``dead_letters`` table: reason, source,
    origin, path, detail, type, received_at, payload (JSON text)."""
    return (letter.reason.value, letter.source, letter.origin, letter.path, letter.detail,
            letter.type_name, letter.received_at, dump_json(letter.payload, allow_nan=False))


def delivery_key(origin: str, raw: bytes) -> str:
    """What makes two refused deliveries the same one: a SHA-256 (hex) of
    where they came in and their raw bytes. Only the digest is kept, never
    the bytes."""
    digest = hashlib.sha256(origin.encode("utf-8"))
    digest.update(b"\0")
    digest.update(raw)
    return digest.hexdigest()


def dead_letter_of_row(row: Sequence[Any]) -> RefusedPayload:
    """A :class:`RefusedPayload` from the columns :func:`dead_letter_row` gave."""
    reason, source, origin, path, detail, type_name, received_at, payload = row
    return RefusedPayload(reason=reason, source=source, origin=origin, path=path,
                          detail=detail, type_name=type_name, received_at=float(received_at),
                          payload=json.loads(payload))
