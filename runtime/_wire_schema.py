"""The JSON Schema (draft 2020-12) of a :class:`~orderloom.runtime.WireCodec`'s envelopes.

Generated from the registrations, so the published schema cannot drift from
what the decoder accepts: one ``oneOf`` branch per registered type and
version, its body an object of exactly the class's fields. The decoder is
stricter than the schema in one way: message invariants (a positive amount,
a proposal among the options) are checked by the classes' validators only.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import attrs

from ._wire import (
    ID_PATTERN,
    MAX_FREE_ID,
    SAFE_INTEGER,
    _collection,
    _optional,
    _unwrap,
    field_types,
)

if TYPE_CHECKING:
    from ._wire import WireCodec, WireType

__all__ = ["SCHEMA_ID", "wire_schema"]

SCHEMA_ID = "https://orderloom.dev/schema/wire/v1/envelope.json"

# Anchored with a lookahead, not "$": in Python's re (and some others) "$"
# also matches before a final newline, so "O1\n" would pass.
_END = "(?![\\s\\S])"
_ID = {"type": "string", "pattern": f"^{ID_PATTERN}{_END}"}
_ADDRESS = {"type": "string", "pattern": f"^{ID_PATTERN}(/{ID_PATTERN}){{0,7}}{_END}"}
_FREE_ID = {"type": "string", "maxLength": MAX_FREE_ID,
            "pattern": f"^[^\\u0000-\\u001f\\u007f-\\u009f+#]*{_END}"}
_TIME = {"type": "number", "minimum": 0}
_INT = {"type": "integer", "minimum": -SAFE_INTEGER, "maximum": SAFE_INTEGER}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _def_name(wt: WireType) -> str:
    return f"{wt.name}@{wt.version}"


class _Builder:
    def __init__(self, codec: WireCodec) -> None:
        self.codec = codec
        self.defs: dict[str, Any] = {}

    def body(self, wt: WireType) -> dict[str, Any]:
        name = _def_name(wt)
        if name not in self.defs:
            self.defs[name] = {}  # reserved first: a body may nest its own type
            self.defs[name] = self.object(wt.cls, f"{wt.name} v{wt.version}: "
                                          f"{_first_line(wt.cls.__doc__)}")
        return {"$ref": f"#/$defs/{name}"}

    def value(self, cls: type) -> dict[str, Any]:
        name = cls.__qualname__
        if name not in self.defs:
            self.defs[name] = {}
            self.defs[name] = self.object(cls, _first_line(cls.__doc__))
        return {"$ref": f"#/$defs/{name}"}

    def object(self, cls: type, title: str) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required = []
        for a, tp in field_types(cls):
            props[a.name] = self.field(a.name, tp)
            if a.default is attrs.NOTHING:
                required.append(a.name)
        out: dict[str, Any] = {"type": "object", "description": title, "properties": props,
                               "additionalProperties": False}
        if required:
            out["required"] = required
        return out

    def field(self, name: str, tp: Any) -> dict[str, Any]:
        inner, nullable = _optional(_unwrap(tp))
        rules = self.codec.rules
        schema: dict[str, Any]
        if name in rules.order_ids:
            schema = _ID if _collection(inner) is None else {"type": "array", "items": _ID}
        elif name in rules.ids:
            schema = _FREE_ID if _collection(inner) is None else {"type": "array",
                                                                  "items": _FREE_ID}
        elif name in rules.money:
            schema = {"type": "integer", "minimum": 0, "maximum": SAFE_INTEGER}
        elif name in rules.sequences:
            schema = {"type": "integer", "minimum": 1, "maximum": SAFE_INTEGER}
        elif name in rules.timestamps:
            schema = _TIME
        else:
            schema = self.type(inner)
        return _nullable(schema) if nullable else schema

    def type(self, tp: Any) -> dict[str, Any]:
        tp, nullable = _optional(_unwrap(tp))
        if nullable:
            return _nullable(self.type(tp))
        coll = _collection(tp)
        if coll is not None:
            kind, item = coll
            out = {"type": "array", "items": self.type(item)}
            return {**out, "uniqueItems": True} if kind is frozenset else out
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return _INT
        if tp is float:
            return {"type": "number"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        if self.codec.polymorphic(tp):
            # One definition per family, shared by every field that holds it
            # (a timer's message and a reply's value are both any message).
            name = f"typed {tp.__qualname__}"
            if name not in self.defs:
                self.defs[name] = {}
                self.defs[name] = {"oneOf": [self.typed(wt) for wt in self.codec.types
                                             if issubclass(wt.cls, tp)]}
            return {"$ref": f"#/$defs/{name}"}
        return self.value(tp)

    def typed(self, wt: WireType) -> dict[str, Any]:
        return {"type": "object", "required": ["type", "v", "body"],
                "additionalProperties": False,
                "properties": {"type": {"const": wt.name}, "v": {"const": wt.version},
                               "body": self.body(wt)}}


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]


def wire_schema(codec: WireCodec) -> dict[str, Any]:
    """The schema: the envelope's fields, then one branch per registered type and version."""
    builder = _Builder(codec)
    branches = [{"properties": {"type": {"const": wt.name}, "v": {"const": wt.version},
                                "body": builder.body(wt)}} for wt in codec.types]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "orderloom wire envelope",
        "description": "A message between orderloom processes (see docs/wire.md). Generated "
                       "from the registry: `orderloom wire-schema > docs/wire-schema.json`.",
        "type": "object",
        "required": ["type", "v", "id", "recipient", "sent_at", "body"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "description": "the message type's wire name"},
            "v": {"type": "integer", "description": "the message type's version"},
            "id": {**_ID, "description": "the message id (receivers dedupe on it)"},
            "causation_id": _nullable(_ID),
            "correlation_id": _nullable(_ID),
            "sender": _nullable(_ADDRESS),
            "recipient": _ADDRESS,
            "reply_to": _nullable(_ADDRESS),
            "sent_at": {**_TIME, "description": "the sender's clock, kernel seconds"},
            "body": {"type": "object"},
        },
        "oneOf": branches,
        "$defs": dict(sorted(builder.defs.items())),
    }
