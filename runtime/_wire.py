"""The wire format: envelopes as JSON, for messages that cross a process or are persisted.

A :class:`WireCodec` is built from an explicit list of :class:`WireType`
registrations (a stable wire name such as ``"order.place"``, an integer
version, the attrs class), the :class:`FieldRules` saying which body fields
hold ids, money, sequence numbers and timestamps, and optional
:class:`Upgrader` functions that lift an older version's body to the next.
It encodes an :class:`~orderloom.runtime.Envelope` to JSON bytes and decodes
strictly: anything it does not fully understand is an :class:`IngestError`
with a closed reason code, and its message never quotes payload values.

The codec knows no domain: the registrations come from the caller (the
coordinator registers the order domain's messages).
"""

from __future__ import annotations

import enum
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union, get_args, get_origin

import attrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn

from ._codec import dump_json, json_converter
from ._contract import Address, Envelope, Message
from ._wire_errors import IngestError, IngestReason, NotOnTheWire, WireRegistrationError

__all__ = [
    "ID_PATTERN",
    "MAX_DEPTH",
    "MAX_ENVELOPE_BYTES",
    "FieldRules",
    "Upgrader",
    "WireCodec",
    "WireType",
    "field_types",
    "parse_json",
]

MAX_ENVELOPE_BYTES = 64 * 1024
"""The largest envelope accepted, in bytes of UTF-8 JSON."""

MAX_DEPTH = 32
"""The deepest nesting of JSON objects and arrays accepted."""

ID_PATTERN = r"[A-Za-z0-9._:-]{1,64}"
"""Order ids, message ids and each segment of an actor address (never ``/ + #``)."""

SAFE_INTEGER = 2**53 - 1
"""Integers beyond this lose precision in JavaScript and many JSON parsers."""

MAX_FREE_ID = 128
"""The longest id of another kind (request, event, hold ids...)."""

_ID = re.compile(ID_PATTERN)
_ADDRESS = re.compile(rf"{ID_PATTERN}(?:/{ID_PATTERN}){{0,7}}")
# Ids other than order and message ids may hold "/" (a void's request id is
# "<command>/void/<authorization>"); they travel in payloads, never in topics.
_FREE_ID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f+#]")
_WIRE_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
# Payload keys are quoted in errors only when they look like our field names
# (a foreign key may be anything, an email address included).
_SAFE_KEY = re.compile(r"[a-z_][a-z0-9_]{0,31}")

ENVELOPE_FIELDS = ("type", "v", "id", "causation_id", "correlation_id", "sender", "recipient",
                   "reply_to", "sent_at", "body")
_ENVELOPE_REQUIRED = frozenset({"type", "v", "id", "recipient", "sent_at", "body"})
_TYPED_FIELDS = ("type", "v", "body")


@attrs.frozen(kw_only=True)
class WireType:
    """One registered message type.

    Invariants: ``name`` is dotted lower-case words (``order.place``) and
    never the class name, so renaming a class does not change the wire;
    ``version`` >= 1; ``cls`` is a frozen attrs :class:`Message` subclass.
    """

    name: str
    version: int
    cls: type[Message]


@attrs.frozen(kw_only=True)
class Upgrader:
    """Lifts a body of ``name`` at ``from_version`` to ``from_version + 1``.

    ``upgrade`` gets the decoded JSON object (not yet validated) and returns
    the next version's; a chain of them lets old senders keep talking.
    """

    name: str
    from_version: int
    upgrade: Callable[[dict[str, Any]], dict[str, Any]]


def _names(_: object, a: attrs.Attribute[Any], v: frozenset[str]) -> None:
    if not isinstance(v, frozenset) or not all(isinstance(n, str) and n for n in v):
        raise ValueError(f"{a.name} must be a frozenset of field names")


@attrs.frozen(kw_only=True)
class FieldRules:
    """Which body fields (by name, at any depth) hold what, checked before decoding.

    Attributes:
        order_ids: order ids (:data:`ID_PATTERN`); a list of them too.
        ids: other ids: at most 128 characters, no control characters, ``+`` or ``#``.
        money: amounts in minor units: integers >= 0 (never floats or bools).
        sequences: per-source sequence numbers: integers >= 1.
        timestamps: times in kernel seconds: numbers >= 0, and near ``now``
            when the decoder is given one.

    Invariant: a name belongs to one rule at most.
    """

    order_ids: frozenset[str] = attrs.field(default=frozenset(), validator=_names)
    ids: frozenset[str] = attrs.field(default=frozenset(), validator=_names)
    money: frozenset[str] = attrs.field(default=frozenset(), validator=_names)
    sequences: frozenset[str] = attrs.field(default=frozenset(), validator=_names)
    timestamps: frozenset[str] = attrs.field(default=frozenset(), validator=_names)

    def __attrs_post_init__(self) -> None:
        groups = (self.order_ids, self.ids, self.money, self.sequences, self.timestamps)
        seen: set[str] = set()
        for group in groups:
            if seen & group:
                raise ValueError(f"field names in two rules: {sorted(seen & group)}")
            seen |= group


class _Mismatch(Exception):
    """A JSON value of the wrong kind (raised inside cattrs, translated to bad_field)."""

    def __init__(self, expected: str) -> None:
        self.expected = expected
        super().__init__(f"expected {expected}")


class _At(Exception):
    """An error at ``segment`` of a collection (a path step cattrs does not note)."""

    def __init__(self, segment: str, cause: BaseException) -> None:
        self.segment = segment
        self.cause = cause
        super().__init__(segment)


def _join(path: str, segment: str) -> str:
    if not path:
        return segment.removeprefix(".")
    return path + (segment if segment.startswith("[") else "." + segment)


def _key(key: str) -> str:
    return key if _SAFE_KEY.fullmatch(key) else "<unnamed>"


def field_types(cls: type) -> list[tuple[attrs.Attribute[Any], Any]]:
    """The attrs fields of ``cls`` with their annotations resolved."""
    hints = typing.get_type_hints(cls)
    return [(a, hints[a.name]) for a in attrs.fields(cls)]


def _unwrap(tp: Any) -> Any:
    """A NewType's underlying type (``Address`` is a ``str``)."""
    while hasattr(tp, "__supertype__"):
        tp = tp.__supertype__
    return tp


def _optional(tp: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, ``(tp, False)`` otherwise."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _collection(tp: Any) -> tuple[type, Any] | None:
    """``(tuple, X)`` for ``tuple[X, ...]``, ``(frozenset, X)`` for ``frozenset[X]``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple, args[0]
    if origin is frozenset and len(args) == 1:
        return frozenset, args[0]
    return None


class WireCodec:
    """Encodes envelopes of registered messages as JSON and decodes them strictly.

    Args:
        types: the registrations; names and classes must be unique.
        rules: which body fields hold ids, money, sequences and timestamps.
        upgraders: optional lifts of older versions' bodies, one per
            ``(name, from_version)``, ``from_version`` below the current one.
        max_age: with ``now``, how far in the past a timestamp may lie (seconds).
        max_skew: with ``now``, how far in the future (a sender's clock may run ahead).

    Raises:
        WireRegistrationError: a duplicate name, class or upgrader, a bad
            name or version, a class that is not a frozen attrs Message, or a
            field of a type the wire cannot carry.
    """

    def __init__(self, types: Iterable[WireType], *, rules: FieldRules,
                 upgraders: Iterable[Upgrader] = (), max_age: float = 7 * 86400.0,
                 max_skew: float = 300.0) -> None:
        self.rules = rules
        self.max_age = max_age
        self.max_skew = max_skew
        self._by_name: dict[str, WireType] = {}
        self._by_class: dict[type, WireType] = {}
        for wt in types:
            self._register(wt)
        self._upgraders: dict[tuple[str, int], Upgrader] = {}
        for up in upgraders:
            wt_ = self._by_name.get(up.name)
            if wt_ is None:
                raise WireRegistrationError(up.name, "an upgrader for a type that is not registered")
            if not 1 <= up.from_version < wt_.version:
                raise WireRegistrationError(up.name, f"an upgrader from v{up.from_version}: "
                                            f"expected a version below the current v{wt_.version}")
            if (up.name, up.from_version) in self._upgraders:
                raise WireRegistrationError(up.name, f"two upgraders from v{up.from_version}")
            self._upgraders[(up.name, up.from_version)] = up
        for wt in self._by_name.values():
            self._check_fields(wt.cls, wt.name, set())
        self._conv = self._converter()

    # -- registration ---------------------------------------------------------------

    def _register(self, wt: WireType) -> None:
        if not _WIRE_NAME.fullmatch(wt.name):
            raise WireRegistrationError(wt.name, "a wire name is dotted lower-case words "
                                        "(e.g. 'order.place')")
        if type(wt.version) is not int or wt.version < 1:
            raise WireRegistrationError(wt.name, f"version must be an int >= 1, got {wt.version!r}")
        if not (isinstance(wt.cls, type) and issubclass(wt.cls, Message) and attrs.has(wt.cls)):
            raise WireRegistrationError(wt.name, "expected an attrs Message subclass")
        # attrs has no public "is frozen"; frozen classes get its _frozen_setattrs.
        if getattr(wt.cls.__setattr__, "__name__", "") != "_frozen_setattrs":
            raise WireRegistrationError(wt.name, f"{wt.cls.__qualname__} is not frozen")
        if wt.name in self._by_name:
            raise WireRegistrationError(wt.name, "registered twice")
        if wt.cls in self._by_class:
            raise WireRegistrationError(wt.name, f"{wt.cls.__qualname__} is already registered as "
                                        f"{self._by_class[wt.cls].name!r}")
        self._by_name[wt.name] = wt
        self._by_class[wt.cls] = wt

    def _check_fields(self, cls: type, where: str, seen: set[type]) -> None:
        if cls in seen:
            return
        seen.add(cls)
        for a, tp in field_types(cls):
            self._check_type(tp, f"{where}.{a.name}", seen)

    def _check_type(self, tp: Any, where: str, seen: set[type]) -> None:
        tp, _ = _optional(_unwrap(tp))
        coll = _collection(tp)
        if coll is not None:
            self._check_type(coll[1], where + "[]", seen)
        elif tp in (str, int, float, bool) or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
            return
        elif self.polymorphic(tp):
            if not any(issubclass(c, tp) for c in self._by_class):
                raise WireRegistrationError(where, f"no registered type is a {tp.__qualname__}")
        elif isinstance(tp, type) and attrs.has(tp):
            self._check_fields(tp, where, seen)
        else:
            raise WireRegistrationError(where, f"the wire cannot carry a field of type {tp!r}")

    def polymorphic(self, tp: Any) -> bool:
        """Whether a field of type ``tp`` holds a typed value (``{"type", "v", "body"}``):
        an unregistered Message base such as ``Event``, whose registered subclasses it holds."""
        return (isinstance(tp, type) and issubclass(tp, Message)
                and tp not in self._by_class)

    @property
    def types(self) -> tuple[WireType, ...]:
        """The registrations, in the order given."""
        return tuple(self._by_name.values())

    @property
    def upgraders(self) -> Mapping[tuple[str, int], Upgrader]:
        """The upgraders by ``(name, from_version)``."""
        return dict(self._upgraders)

    def wire_type(self, cls: type) -> WireType:
        """The registration of ``cls``.

        Raises:
            NotOnTheWire: ``cls`` is not registered.
        """
        wt = self._by_class.get(cls)
        if wt is None:
            raise NotOnTheWire(cls.__qualname__, "is not a registered wire type")
        return wt

    # -- the converter ----------------------------------------------------------------

    def _converter(self) -> Any:
        conv = json_converter(forbid_extra_keys=True)
        # These hooks also catch subclasses: a StrEnum is a str, so the enum
        # kinds are registered as well (the closest class in the MRO wins).
        conv.register_structure_hook(str, _structure_str)
        conv.register_structure_hook(int, _structure_int)
        conv.register_structure_hook(float, _structure_float)
        conv.register_structure_hook(bool, _structure_bool)
        for kind in (enum.Enum, enum.StrEnum, enum.IntEnum):
            conv.register_structure_hook(kind, _structure_enum)
        conv.register_structure_hook_func(
            lambda tp: hasattr(tp, "__supertype__"),
            lambda value, tp: conv.structure(value, _unwrap(tp)))

        def collection(tp: Any) -> Callable[[Any, Any], Any]:
            kind, item = _collection(tp)  # type: ignore[misc]

            def structure(value: Any, _: Any) -> Any:
                if not isinstance(value, list):
                    raise _Mismatch("an array")
                out = []
                for i, x in enumerate(value):
                    try:
                        out.append(conv.structure(x, item))
                    except Exception as exc:
                        raise _At(f"[{i}]", exc) from exc
                return kind(out)
            return structure

        conv.register_structure_hook_factory(lambda tp: _collection(tp) is not None, collection)

        def attrs_class(tp: Any) -> Callable[[Any, Any], Any]:
            inner = make_dict_structure_fn(tp, conv, _cattrs_forbid_extra_keys=True)

            def structure(value: Any, cls: Any) -> Any:
                if not isinstance(value, dict):
                    raise _Mismatch("an object")
                return inner(value, cls)
            return structure

        conv.register_structure_hook_factory(
            lambda tp: isinstance(tp, type) and attrs.has(tp), attrs_class)

        def optional(tp: Any) -> Callable[[Any, Any], Any]:
            inner = _optional(tp)[0]

            def structure(value: Any, _: Any) -> Any:
                return None if value is None else conv.structure(value, inner)
            return structure

        # Ours, not the JSON preset's union passthrough: that hands a str-valued
        # enum's text through as a plain str (``Decision | None`` -> "release").
        conv.register_structure_hook_factory(lambda tp: _optional(tp)[1], optional)
        conv.register_structure_hook_func(self.polymorphic, self._structure_typed)
        conv.register_unstructure_hook_func(self.polymorphic, self._unstructure_typed)
        return conv

    def _unstructure_typed(self, obj: Any) -> dict[str, Any]:
        wt = self.wire_type(type(obj))
        return {"type": wt.name, "v": wt.version, "body": self._conv.unstructure(obj, wt.cls)}

    def _structure_typed(self, value: Any, base: Any) -> Any:
        if not isinstance(value, dict):
            raise _Mismatch("an object with type, v and body")
        _check_keys(value, _TYPED_FIELDS, frozenset(_TYPED_FIELDS), "")
        wt, body = self._resolve(value["type"], value["v"], value["body"], "")
        if not issubclass(wt.cls, base):
            raise IngestError(IngestReason.BAD_FIELD, f"expected a message of kind {base.__qualname__}, got "
                              f"{wt.name}", path="type")
        return self._structure_body(body, wt, path="body")

    # -- encoding ---------------------------------------------------------------------

    def encode_body(self, message: Message) -> dict[str, Any]:
        """The JSON object of ``message``'s fields (nested typed values tagged)."""
        wt = self.wire_type(type(message))
        data: dict[str, Any] = self._conv.unstructure(message, wt.cls)
        return data

    def encode_envelope(self, envelope: Envelope) -> bytes:
        """The envelope as compact UTF-8 JSON; :meth:`decode_envelope` returns an equal one.

        Raises:
            NotOnTheWire: the body's type is not registered, or an id, an
                address or a body field breaks the format (the same checks as
                decoding, without the time window), or the result is too large.
        """
        body_type = type(envelope.body).__qualname__
        wt = self.wire_type(type(envelope.body))
        data = {"type": wt.name, "v": wt.version, "id": envelope.message_id,
                "causation_id": envelope.causation_id,
                "correlation_id": envelope.correlation_id, "sender": envelope.sender,
                "recipient": envelope.recipient, "reply_to": envelope.reply_to,
                "sent_at": envelope.sent_at, "body": self.encode_body(envelope.body)}
        try:
            self._check_envelope(data, None)
            self._check_rules(data["body"], "body", None)
        except IngestError as exc:
            raise NotOnTheWire(body_type, str(exc)) from exc
        try:
            text = dump_json(data, allow_nan=False)
        except ValueError as exc:
            raise NotOnTheWire(body_type, "holds NaN or an infinity") from exc
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NotOnTheWire(body_type, "holds text that is not Unicode (a lone "
                               "surrogate)") from exc
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise NotOnTheWire(body_type, f"encodes to {len(raw)} bytes, more than the "
                               f"{MAX_ENVELOPE_BYTES} a peer accepts")
        return raw

    # -- decoding ---------------------------------------------------------------------

    def decode_envelope(self, raw: bytes, *, now: float | None = None) -> Envelope:
        """The envelope in ``raw``, checked field by field.

        Args:
            raw: the payload as received.
            now: the receiver's clock (kernel seconds); when given,
                ``sent_at`` and body timestamps must lie within ``max_age``
                before it and ``max_skew`` after it. Leave it out to read
                stored or replayed envelopes.

        Raises:
            IngestError: the payload is refused; ``reason`` says why.
        """
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise IngestError(IngestReason.NOT_AN_OBJECT, "expected a JSON object (the envelope)")
        _check_keys(data, ENVELOPE_FIELDS, _ENVELOPE_REQUIRED, "")
        wt, body = self._resolve(data["type"], data["v"], data["body"], "")
        try:
            self._check_envelope(data, now)
            message = self._structure_body(body, wt, path="body", now=now)
        except IngestError as exc:
            raise IngestError(exc.reason, exc.detail, path=exc.path,
                              type_name=f"{wt.name} v{wt.version}") from None
        return Envelope(message_id=data["id"], causation_id=data.get("causation_id"),
                        correlation_id=data.get("correlation_id"),
                        sender=_address_or_none(data.get("sender")),
                        recipient=Address(data["recipient"]), sent_at=float(data["sent_at"]),
                        body=message, reply_to=_address_or_none(data.get("reply_to")))

    def _resolve(self, name: Any, version: Any, body: Any, path: str
                 ) -> tuple[WireType, dict[str, Any]]:
        """The registration named, and the body lifted to its current version."""
        if type(name) is not str:
            raise IngestError(IngestReason.BAD_FIELD, "expected a string", path=_join(path, "type"))
        wt = self._by_name.get(name)
        if wt is None:
            # The name is not quoted: an unknown one may be anything.
            raise IngestError(IngestReason.UNKNOWN_TYPE, "no registered message type has this "
                              "name", path=_join(path, "type"))
        if type(version) is not int:
            raise IngestError(IngestReason.BAD_FIELD, "expected an integer version",
                              path=_join(path, "v"), type_name=name)
        if not isinstance(body, dict):
            raise IngestError(IngestReason.BAD_FIELD, "expected an object",
                              path=_join(path, "body"), type_name=name)
        v = version
        while v < wt.version and (name, v) in self._upgraders:
            try:
                body = self._upgraders[(name, v)].upgrade(body)
            except Exception as exc:
                # Only the kind of failure: its text may quote the payload.
                raise IngestError(IngestReason.BAD_FIELD, f"v{v} body could not be upgraded "
                                  f"({type(exc).__name__})", path=_join(path, "body"),
                                  type_name=name) from None
            v += 1
        if v != wt.version:
            froms = _froms(self._upgraders, name)
            raise IngestError(IngestReason.UNKNOWN_VERSION,
                              f"no version {version} (current: {wt.version}"
                              f"{'; upgradable from ' + froms if froms else ''})",
                              path=_join(path, "v"), type_name=name)
        return wt, body

    def _check_envelope(self, data: Mapping[str, Any], now: float | None) -> None:
        _check_order_id(data["id"], "id", "a message id")
        for key in ("causation_id", "correlation_id"):
            if data.get(key) is not None:
                _check_order_id(data[key], key, "an id")
        for key in ("sender", "recipient", "reply_to"):
            if key in data and (key == "recipient" or data[key] is not None):
                _check_address(data[key], key)
        self._check_time(data["sent_at"], "sent_at", now)

    def _structure_body(self, body: dict[str, Any], wt: WireType, *, path: str,
                        now: float | None = None) -> Message:
        self._check_rules(body, path, now)
        try:
            message: Message = self._conv.structure(body, wt.cls)
        except Exception as exc:
            raise _translate(exc, path) from None
        return message

    def _check_rules(self, value: Any, path: str, now: float | None) -> None:
        rules = self.rules
        if isinstance(value, list):
            for i, item in enumerate(value):
                self._check_rules(item, f"{path}[{i}]", now)
            return
        if not isinstance(value, dict):
            return
        for key, item in value.items():
            where = _join(path, _key(key))
            if item is None:
                continue
            if key in rules.order_ids:
                for x in (item if isinstance(item, list) else [item]):
                    _check_order_id(x, where, "an order id")
            elif key in rules.ids:
                for x in (item if isinstance(item, list) else [item]):
                    _check_free_id(x, where)
            elif key in rules.money:
                if type(item) is not int or not 0 <= item <= SAFE_INTEGER:
                    raise IngestError(IngestReason.BAD_MONEY, "expected an integer amount of "
                                      "minor units >= 0 (not a float, not a bool)", path=where)
            elif key in rules.sequences:
                if type(item) is not int or not 1 <= item <= SAFE_INTEGER:
                    raise IngestError(IngestReason.BAD_SEQUENCE, "expected an integer sequence "
                                      "number >= 1", path=where)
            elif key in rules.timestamps:
                self._check_time(item, where, now)
            else:
                self._check_rules(item, where, now)

    def _check_time(self, value: Any, path: str, now: float | None) -> None:
        if type(value) not in (int, float):
            raise IngestError(IngestReason.BAD_FIELD, "expected a number of seconds", path=path)
        if not 0 <= value < math.inf:
            raise IngestError(IngestReason.BAD_TIMESTAMP, "expected seconds >= 0", path=path)
        if now is not None and not now - self.max_age <= value <= now + self.max_skew:
            raise IngestError(IngestReason.BAD_TIMESTAMP, f"more than {self.max_age:g}s before "
                              f"or {self.max_skew:g}s after the receiver's clock", path=path)

    # -- schema and redaction ---------------------------------------------------------

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of this codec's envelopes."""
        from ._wire_schema import wire_schema

        return wire_schema(self)

    def redacted(self, payload: object) -> object:
        """``payload`` (bytes, text or decoded JSON) with everything personal taken out,
        for dead letters and logs.

        Kept: the structure, field names that look like ours, numbers, bools,
        the type name and version, and ids and addresses that pass their
        format. Every other string becomes ``"<redacted: N chars>"``;
        undecodable bytes become ``{"unparsed_bytes": N}``.
        """
        if isinstance(payload, (bytes, bytearray, memoryview)):
            data = bytes(payload)
            try:
                payload = json.loads(data.decode("utf-8"))
            except (ValueError, RecursionError):
                return {"unparsed_bytes": len(data)}
        elif isinstance(payload, str):
            text = payload
            try:
                payload = json.loads(text)
            except (ValueError, RecursionError):
                return {"unparsed_chars": len(text)}
        return self._redact(payload, None)

    def _redact(self, value: object, key: str | None) -> object:
        if isinstance(value, dict):
            return {(_key(k) if isinstance(k, str) else "<unnamed>"): self._redact(v, k)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact(v, key) for v in value]
        if not isinstance(value, str):
            return value
        rules = self.rules
        if key == "type" and _WIRE_NAME.fullmatch(value):
            return value
        if key in ("sender", "recipient", "reply_to", "notify") and _ADDRESS.fullmatch(value):
            return value
        if ((key in ("id", "causation_id", "correlation_id") or key in rules.order_ids
             or key in rules.ids) and _ID.fullmatch(value)):
            return value
        return f"<redacted: {len(value)} chars>"


def _froms(upgraders: Mapping[tuple[str, int], Upgrader], name: str) -> str:
    return ", ".join(f"v{v}" for (n, v) in sorted(upgraders) if n == name)


def _address_or_none(value: str | None) -> Address | None:
    return None if value is None else Address(value)


# -- parsing ------------------------------------------------------------------------------


class _Refused(Exception):
    """Raised by the JSON parser's hooks; carries the reason out of ``json.loads``."""

    def __init__(self, error: IngestError) -> None:
        self.error = error
        super().__init__(str(error))


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(IngestError(IngestReason.DUPLICATE_KEY,
                                       f"an object names {_key(key)!r} twice"))
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _Refused(IngestError(IngestReason.NON_FINITE_NUMBER,
                               f"{name} is not a number JSON allows"))


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(IngestError(IngestReason.NON_FINITE_NUMBER,
                                   "a number too large for a float"))
    return value


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON, refused unless it is small, UTF-8, finite, shallow and
    free of duplicate keys.

    Raises:
        IngestError: too_large, bad_utf8, not_json, too_deep, duplicate_key
            or non_finite_number.
    """
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise IngestError(IngestReason.TOO_LARGE, f"{len(raw)} bytes, more than "
                          f"{MAX_ENVELOPE_BYTES}")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(IngestReason.BAD_UTF8, f"not UTF-8 at byte {exc.start}") from None
    _check_depth(text)
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant,
                          parse_float=_float)
    except _Refused as exc:
        raise exc.error from None
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's wording ("Expecting value"), never the text.
        raise IngestError(IngestReason.NOT_JSON, f"{exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise IngestError(IngestReason.NOT_JSON, f"unreadable ({type(exc).__name__})") from None


def _check_depth(text: str) -> None:
    """Refuse deep nesting before parsing (the parser recurses per level)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise IngestError(IngestReason.TOO_DEEP, f"nested deeper than {MAX_DEPTH}")
        elif ch in "]}":
            depth -= 1


# -- field checks and cattrs hooks --------------------------------------------------------


def _check_keys(data: Mapping[str, Any], known: tuple[str, ...], required: frozenset[str],
                path: str) -> None:
    for key in data:
        if key not in known:
            raise IngestError(IngestReason.UNKNOWN_FIELD, f"no field {_key(key)!r} here "
                              f"(expected: {', '.join(known)})", path=path)
    for key in known:
        if key in required and key not in data:
            raise IngestError(IngestReason.MISSING_FIELD, "required", path=_join(path, key))


def _check_order_id(value: Any, path: str, what: str) -> None:
    if type(value) is not str or not _ID.fullmatch(value):
        raise IngestError(IngestReason.BAD_ID, f"expected {what}: 1 to 64 of A-Z a-z 0-9 . _ : -",
                          path=path)


def _check_free_id(value: Any, path: str) -> None:
    if type(value) is not str or len(value) > MAX_FREE_ID or _FREE_ID_FORBIDDEN.search(value):
        raise IngestError(IngestReason.BAD_ID, f"expected an id: at most {MAX_FREE_ID} "
                          "characters, no control characters, '+' or '#'", path=path)


def _check_address(value: Any, path: str) -> None:
    if type(value) is not str or not _ADDRESS.fullmatch(value):
        raise IngestError(IngestReason.BAD_ADDRESS, "expected an actor address: 1 to 8 "
                          "'/'-separated segments of 1 to 64 of A-Z a-z 0-9 . _ : -", path=path)


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise _Mismatch("a string")
    return value


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is not int:
        raise _Mismatch("an integer")
    if abs(value) > SAFE_INTEGER:
        raise _Mismatch("an integer within +-(2**53 - 1)")
    return value


def _structure_float(value: Any, _: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _Mismatch("a finite number")
    return float(value)


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise _Mismatch("true or false")
    return value is True


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    for member in cls:
        if type(member.value) is type(value) and member.value == value:
            return member
    raise _Mismatch("one of " + ", ".join(repr(m.value) for m in cls))


def _translate(exc: BaseException, path: str) -> IngestError:
    """The first error in cattrs' exception tree, with its path; no payload value is quoted."""
    if isinstance(exc, IngestError):
        return exc.at(path) if path else exc
    if isinstance(exc, _At):
        return _translate(exc.cause, _join(path, exc.segment))
    if isinstance(exc, ForbiddenExtraKeysError):
        names = sorted(_key(k) for k in exc.extra_fields)
        return IngestError(IngestReason.UNKNOWN_FIELD, f"no field {', '.join(names)} in "
                           f"{exc.cl.__qualname__}", path=path)
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            step = getattr(note, "name", None)
            segment = step if step is not None else f"[{getattr(note, 'index', '?')}]"
            return _translate(sub, _join(path, segment))
        for sub in without:
            return _translate(sub, path)
    if isinstance(exc, KeyError):
        return IngestError(IngestReason.MISSING_FIELD, "required", path=path)
    if isinstance(exc, _Mismatch):
        return IngestError(IngestReason.BAD_FIELD, f"expected {exc.expected}", path=path)
    # An attrs validator or converter refused the value: its text quotes the
    # value, so only its kind is kept.
    return IngestError(IngestReason.BAD_FIELD, "refused by the message's invariants "
                       f"({type(exc).__name__}; see the type's documentation)", path=path)
