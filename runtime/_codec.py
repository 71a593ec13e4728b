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
from typing import Protocol

import attrs
from cattrs.preconf.json import make_converter

from ._store import CodecError, UnknownTypeName, UnregisteredType

__all__ = ["AttrsCodec", "Codec"]


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
    keep reading rows written before a class was renamed. Field types are
    structured as declared, so a field declared as a base class (or
    ``object``) holding a subclass instance does not round-trip: declare
    concrete types (or unions of them) in stored classes.

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
        self._converter = make_converter()

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
            return name, json.dumps(data, separators=(",", ":"), ensure_ascii=False)
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
