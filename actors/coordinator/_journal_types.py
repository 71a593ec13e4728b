"""The types an order coordinator writes to a durable store, and their codec.

A durable store (SQLite, PostgreSQL) encodes what it holds: the order
actors' journal entries and snapshots (:class:`OrderRecord`), the
Automation actor's, the messages of durable timers (:class:`TimerDue`
wraps them) and of the outbox. :func:`journal_codec` is an
:class:`~orderloom.runtime.AttrsCodec` for all of them, found by walking
the package's public names and the coordinator's private timer messages;
a type missing here fails loudly at the first commit that holds it
(:class:`~orderloom.runtime.UnregisteredType`).
"""

from __future__ import annotations

import attrs

from orderloom.runtime import AttrsCodec, TimerDue

from ..order import _messages, _order_state, _reaction, _states
from . import _automation, _desk, _inventory, _order_actor, _order_record, _protocol, _telemetry
from ._wire_types import wire_types

__all__ = ["journal_codec", "journal_type_version", "journal_types"]


def journal_types() -> tuple[type, ...]:
    """Every attrs class an order coordinator's store may hold."""
    found: dict[type, None] = {TimerDue: None, _reaction.PolicyTimer: None}
    for module in (_messages, _states, _order_state, _protocol, _order_record, _automation,
                   _telemetry, _order_actor, _inventory, _desk):
        for value in vars(module).values():
            if (isinstance(value, type) and attrs.has(value)
                    and value.__module__ == module.__name__):
                found[value] = None
    return tuple(found)


def journal_codec() -> AttrsCodec:
    """An :class:`~orderloom.runtime.AttrsCodec` for :func:`journal_types`."""
    return AttrsCodec(journal_types())


def journal_type_version(cls: type) -> int:
    """The schema version of a journaled class, as a journal export states it:
    its version in the wire registry (:func:`wire_types`) where it has one, else 1."""
    return _VERSIONS.get(cls, 1)


_VERSIONS: dict[type, int] = {w.cls: w.version for w in wire_types()}
