"""Codecs: how a durable store turns frozen attrs objects into text and back.

A :class:`Codec` maps an object to ``(type_name, json_text)`` and back. The
type name is stored next to the text, so a row says what it holds without
the schema knowing the domain. :class:`AttrsCodec` is the default, built on
cattrs' JSON converter: enums (by value), tuples, frozensets, nested attrs
classes, dicts and None round-trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, get_origin

from functools import partial

import attrs
from cattrs import Converter
from cattrs.preconf.json import make_converter
from cattrs.strategies import configure_tagged_union, include_subclasses

from ._store import CodecError, UnknownTypeName, UnregisteredType

__all__ = ["TYPE_TAG", "AttrsCodec", "Codec", "dump_json", "json_converter"]

TYPE_TAG = "__type__"
"""The JSON key naming the stored class of an object in a registered class hierarchy."""


def json_converter(*, forbid_extra_keys: bool = False) -> Converter:
    """The cattrs converter both the store codec and the wire codec build on.

    cattrs' JSON preset (enums by value, tuples as lists, datetimes as ISO
    text, floats as they are), plus frozensets as lists sorted by their JSON
    text, so that equal objects always encode to equal text.
    """
    converter = make_converter(forbid_extra_keys=forbid_extra_keys)

    def _sorted_set(value: frozenset[Any] | set[Any]) -> list[Any]:
        return sorted((converter.unstructure(item) for item in value), key=dump_json)

    converter.register_unstructure_hook_func(_is_set, _sorted_set)
    return converter


def _is_set(tp: Any) -> bool:
    return tp is frozenset or tp is set or get_origin(tp) in (frozenset, set)


def dump_json(data: object, *, allow_nan: bool = True) -> str:
    """Compact JSON text of unstructured data (non-ASCII kept as it is).

    Raises:
        ValueError: ``allow_nan`` is False and ``data`` holds NaN or an infinity.
    """
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)


class Codec(Protocol):
    """Turns stored objects into ``(type_name, json_text)`` and back."""

    def encode(self, obj: object) -> tuple[str, str]:
        """The stable type name of ``obj`` and its JSON text."""
        ...

    def decode(self, type_name: str, text: str) -> object:
        """The object ``encode`` was given, from its type name and text."""
        ...


class AttrsCodec:
    """A :class:`Codec` for a fixed registry of attrs classes.

    Each class is stored under a stable name: its qualified name
    (``__qualname__``, e.g. ``"PaymentCaptured"``) unless ``names`` gives
    another — use ``names`` when two classes share a qualified name, or to
    keep reading rows written before a class was renamed. A field declared
    as a registered class holding an instance of a registered subclass
    round-trips: objects of a registered hierarchy carry their stored name
    under :data:`TYPE_TAG`. A field declared ``object`` or ``Any``, or as an
    unregistered base, does not: declare registered (or concrete) types in
    stored classes.

    Args:
        types: the attrs classes the codec may encode and decode.
        names: optional overrides, class -> stored name.

    Raises:
        CodecError: a type is not an attrs class, or two types share a name.
    """

    def __init__(self, types: Iterable[type], *, names: Mapping[type, str] | None = None
                 ) -> None:
        overrides = dict(names or {})
        self._names: dict[type, str] = {}
        self._types: dict[str, type] = {}
        for cls in [*types, *overrides]:
            if cls in self._names:
                continue
            if not attrs.has(cls):
                raise CodecError(cls.__qualname__, "is not an attrs class")
            name = overrides.get(cls, cls.__qualname__)
            if name in self._types:
                raise CodecError(name, f"names both {self._types[name].__module__}."
                                       f"{self._types[name].__qualname__} and "
                                       f"{cls.__module__}.{cls.__qualname__}; "
                                       "give one of them another name in names=")
            self._names[cls] = name
            self._types[name] = cls
        self._converter = json_converter()
        # A field declared as a registered base class (``events: tuple[Event, ...]``)
        # holding subclass instances must keep the subclass: cattrs would otherwise
        # write only the base's fields and read back a base instance, silently.
        # Tag every class of a registered hierarchy with its stored name instead.
        registered = list(self._types.values())
        tag = partial(configure_tagged_union, tag_generator=self._names.__getitem__,
                      tag_name=TYPE_TAG)
        for base in registered:
            if any(other is not base and issubclass(base, other) for other in registered):
                continue  # handled with its registered ancestor
            subclasses = tuple(c for c in registered if c is not base and issubclass(c, base))
            if subclasses:
                include_subclasses(base, self._converter, subclasses=subclasses,
                                   union_strategy=tag)

    @property
    def type_names(self) -> Mapping[str, type]:
        """The registry: stored name -> class."""
        return dict(self._types)

    def encode(self, obj: object) -> tuple[str, str]:
        """The stored name of ``obj``'s class and its compact JSON text.

        Raises:
            UnregisteredType: ``obj``'s class was not given to the codec.
            CodecError: the object holds something JSON cannot carry.
        """
        cls = type(obj)
        name = self._names.get(cls)
        if name is None:
            raise UnregisteredType(obj)
        try:
            data = self._converter.unstructure(obj, unstructure_as=cls)
            return name, dump_json(data)
        except (TypeError, ValueError) as exc:
            raise CodecError(name, f"cannot encode: {exc}") from exc

    def decode(self, type_name: str, text: str) -> object:
        """The object stored as ``type_name`` with JSON ``text``.

        Raises:
            UnknownTypeName: no registered class has that name.
            CodecError: the text is not JSON, or does not fit the class (its
                validators included); the cause is chained.
        """
        cls = self._types.get(type_name)
        if cls is None:
            raise UnknownTypeName(type_name, self._types)
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise CodecError(type_name, f"stored text is not JSON: {exc}") from exc
        try:
            return self._converter.structure(data, cls)
        except Exception as exc:
            # cattrs raises ClassValidationError (an ExceptionGroup) or whatever the
            # class's validators raise; all mean "this text does not fit the class".
            raise CodecError(type_name, f"stored text does not fit the class: {exc!r}"
                             ) from exc
