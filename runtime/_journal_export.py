"""Journal export: every journal of a store as JSON lines (``orderloom journal export``).

One line per journaled event, streams in name order and each stream's events
in version order, each line a JSON object with exactly the keys of
:data:`JOURNAL_LINE_KEYS`::

    {"address": "order/o1", "version": 1, "type": "OrderPlaced", "type_version": 1,
     "at": 1764530000.25, "event": {"order_id": "o1", ...}}

``address`` is the stream (the persistent actor's address), ``version`` the
event's place in it (1, 2, 3, ... without gaps), ``type`` the store codec's
name of the event's class and ``event`` the object that codec encodes (its
JSON text, embedded as an object), so ``codec.decode(type, json.dumps(event))``
gives the event back. ``type_version`` is the schema version of that type (the
caller says which; 1 by default). ``at`` is the committing turn's clock
reading (kernel seconds: epoch seconds from a live coordinator, virtual
seconds from a simulation), or null. The layout is documented in
``docs/wire.md`` ("Journal export").

The writer reads one stream at a time, so memory holds one stream's
journal, not the store's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO

from ._codec import Codec, dump_json
from ._store import CodecError, Recorded, Store

__all__ = ["JOURNAL_LINE_KEYS", "export_journal", "journal_line"]

JOURNAL_LINE_KEYS = ("address", "version", "type", "type_version", "at", "event")
"""The keys of every line of a journal export, in the order they are written."""


def _one(_: type) -> int:
    return 1


def journal_line(record: Recorded, codec: Codec,
                 type_version: Callable[[type], int] = _one) -> str:
    """The JSON line (without its newline) of one journaled event.

    Raises:
        CodecError: the codec cannot encode the event (see :class:`Codec`).
    """
    name, text = codec.encode(record.event)
    try:
        return dump_json({
            "address": record.stream, "version": record.version, "type": name,
            "type_version": type_version(type(record.event)), "at": record.recorded_at,
            "event": json.loads(text)}, allow_nan=False)
    except ValueError as exc:  # NaN or an infinity: not JSON, so not exported
        raise CodecError(name, f"{record.stream} version {record.version}: cannot export: "
                               f"{exc}") from exc


def export_journal(store: Store, codec: Codec, out: TextIO, *,
                   type_version: Callable[[type], int] = _one) -> int:
    """Write every journal of ``store`` to ``out`` as JSON lines; return the line count.

    Args:
        store: the store to read (only read: nothing in it changes).
        codec: encodes each event (a durable store's own codec, e.g. the
            coordinator's ``journal_codec()``).
        out: a text stream; one line per event is written, as it is read.
        type_version: the schema version of an event's class.

    Raises:
        CodecError: an event the codec cannot encode.
        StoreError: the store failed or holds an unreadable row.
    """
    count = 0
    for stream in store.streams():
        for record in store.journal(stream):
            out.write(journal_line(record, codec, type_version) + "\n")
            count += 1
    return count
