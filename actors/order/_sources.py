"""How a source numbers its events for one order: sequenced or monotonic.

A **sequenced** source (the gateway, a warehouse, the coordinator) numbers
its events for an order 1, 2, 3, ...: an event past the next expected one
waits for the gap to fill (the order actor resequences), and one not newer
than the last applied is stale.

A **monotonic** source (a commerce platform such as Shopify, which sends
webhooks without sequence numbers) numbers its events by *source time*
(:func:`monotonic_seq`): an event is applied if it is newer than the last
one applied from that source for that order, and is stale otherwise, even
when its id is new (an older snapshot must not undo a newer one). Gaps are
the normal case, so nothing ever waits for one.

Which is which is read from the source's name, built by one function per
kind: a platform source (:func:`platform_source`) names its platform and
account as ``<platform>:<account>``, with an optional stream after a
``/`` (``shopify:acme``, ``shopify:acme/fulfillment/42``); the sequenced
sources' names hold no ``:`` before their first ``/`` (``gateway``,
``warehouse/W1``, ``coordinator``).

A sequenced source that restarts without its counters (an emulator process,
a system that loses its state) would number an order's events from 1 again:
those would be refused as duplicates (same event ids) or stale (numbers not
newer). It starts a new **epoch** instead (:func:`epoch_source`): its events
go out under ``<source>/<epoch>``, a source the order has not seen, so they
count from 1 without clashing with the ones sent before the restart. Each
epoch is ordered on its own; nothing orders one epoch after another (the
order's transitions still refuse a fact that would move it backwards).
"""

from __future__ import annotations

import enum
import re

from . import _messages as m
from ._order_state import OrderState

__all__ = [
    "MAX_EVENTS_PER_INSTANT",
    "SourceOrdering",
    "awaits_gap",
    "epoch_source",
    "monotonic_seq",
    "platform_source",
    "source_ordering",
]

MAX_EVENTS_PER_INSTANT = 1000
"""How many events a monotonic source may send for one order at one millisecond
(the events one webhook maps to); they are ordered by their index."""

# Sequence numbers stay within what every JSON parser keeps exact (2**53 - 1):
# milliseconds * 1000 reach it in the year 2255.
_MAX_SEQ = 2**53 - 1
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_STREAM = re.compile(r"[A-Za-z0-9._-]+")
_EPOCH = re.compile(r"[A-Za-z0-9._-]{1,40}")


class SourceOrdering(enum.Enum):
    """How a source numbers its events for one order."""

    SEQUENCED = "sequenced"  # 1, 2, 3, ...: an event past a gap waits for it
    MONOTONIC = "monotonic"  # by source time: not newer is stale; gaps are normal


def source_ordering(source: str) -> SourceOrdering:
    """Whether ``source`` is sequenced or monotonic (see the module docstring)."""
    head = source.split("/", 1)[0]
    return SourceOrdering.MONOTONIC if ":" in head else SourceOrdering.SEQUENCED


def platform_source(platform: str, account: str, *stream: str) -> str:
    """The name of a monotonic source: ``<platform>:<account>[/<stream>...]``.

    Args:
        platform: lower-case word (``shopify``).
        account: the shop or account (letters, digits, ``. _ -``).
        stream: optional levels below it (``"fulfillment", "42"``), each of
            letters, digits, ``. _ -``.

    Raises:
        ValueError: a part breaks its format.
    """
    if not _NAME.fullmatch(platform):
        raise ValueError("platform must be a lower-case word")
    if not _ACCOUNT.fullmatch(account):
        raise ValueError("account must be letters, digits, '.', '_' or '-'")
    if not all(_STREAM.fullmatch(level) for level in stream):
        raise ValueError("each stream level must be letters, digits, '.', '_' or '-'")
    return "/".join((f"{platform}:{account}", *stream))


def epoch_source(source: str, epoch: str | None) -> str:
    """The name a sequenced ``source`` numbers its events under in ``epoch``:
    ``<source>/<epoch>``, or ``source`` itself when ``epoch`` is None (a
    source that keeps its counters, like the simulated world).

    Raises:
        ValueError: ``source`` is not sequenced, or ``epoch`` is not 1 to 40
            letters, digits, ``. _ -``.
    """
    if source_ordering(source) is not SourceOrdering.SEQUENCED:
        raise ValueError(f"epochs are for sequenced sources, not {source!r}")
    if epoch is None:
        return source
    if not _EPOCH.fullmatch(epoch):
        raise ValueError(f"epoch must be 1 to 40 letters, digits, '.', '_' or '-', got {epoch!r}")
    return f"{source}/{epoch}"


def monotonic_seq(at_ms: int, index: int = 0) -> int:
    """The sequence number of the ``index``-th event a monotonic source sent at
    ``at_ms`` (its source time in integer milliseconds since the epoch).

    Later times give larger numbers; at one time, a larger index does.

    Raises:
        ValueError: ``at_ms`` negative or too large, or ``index`` outside
            ``[0, MAX_EVENTS_PER_INSTANT)``.
    """
    if type(at_ms) is not int or at_ms < 0:
        raise ValueError("at_ms must be an int >= 0")
    if type(index) is not int or not 0 <= index < MAX_EVENTS_PER_INSTANT:
        raise ValueError(f"index must lie in [0, {MAX_EVENTS_PER_INSTANT})")
    seq = at_ms * MAX_EVENTS_PER_INSTANT + index + 1
    if seq > _MAX_SEQ:
        raise ValueError("at_ms is too far in the future for an exact sequence number")
    return seq


def awaits_gap(state: OrderState, event: m.Event, counted: int = 0) -> bool:
    """Whether ``event`` must wait for earlier events of its source before it
    is offered to ``state``: an event of a sequenced source past the next
    expected number. A monotonic source's event never waits.

    A copy of an applied event under a fresh number (a gateway's replay)
    waits too: its number is one of the source's, and the ones before it
    may still come. ``counted`` is the highest number of the source already
    accounted for by such copies (0 if none); the next expected number is
    one past it or past the last applied one, whichever is higher."""
    if source_ordering(event.source) is SourceOrdering.MONOTONIC:
        return False
    return event.source_seq > max(state.last_seq(event.source), counted) + 1
