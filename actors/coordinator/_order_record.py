"""The order actor's journal: the order's events and the coordinator's own notes.

An order actor's stream holds two kinds of entries:

- the order's events (:class:`~orderloom.actors.Event`), exactly those that
  were applied, in the order they were applied; their fold is the
  :class:`OrderState`;
- the coordinator's notes about its handling of the order (the classes
  below): an outside event held back until a gap in its source's sequence
  fills, a copy of an applied event that came under a newer number of its
  source (the number is accounted for, so nothing waits for it), the stage
  it reported and since when, the finish it reported, the wrong actions it
  reported, the downstream systems owed a batch sync.

:class:`OrderRecord` is the fold of both (:func:`evolve_record`, pure).
Everything an order actor reads in a later turn is in it, or in the
actor's pending durable timers; so a restarted order actor restores from
its store and carries on as if it had never stopped.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from orderloom.runtime import Message

from ..order import _messages as m
from ..order._evolve import evolve
from ..order._order_state import OrderState
from ..order._states import Lifecycle

__all__ = [
    "CopyCounted",
    "EventHeld",
    "FinishReported",
    "HeldTaken",
    "OrderRecord",
    "StageEntered",
    "SyncDue",
    "SyncFlushed",
    "WrongActionReported",
    "evolve_record",
]


@attrs.frozen(kw_only=True)
class EventHeld(Message):
    """An outside event arrived ahead of its source's sequence and waits for the gap.

    Invariant: ``event.source_seq`` is past the next expected one of its source.
    """

    event: m.Event


@attrs.frozen(kw_only=True)
class HeldTaken(Message):
    """Held events of ``source`` were taken out of the wait to be offered in order."""

    source: str
    seqs: tuple[int, ...]


@attrs.frozen(kw_only=True)
class CopyCounted(Message):
    """A copy of an applied event came under number ``seq`` of its sequenced
    ``source`` (a gateway replays what it sent before under fresh numbers):
    the copy is not applied, but its number is accounted for, so the source's
    next event does not wait for it as for a gap."""

    source: str
    seq: int


@attrs.frozen(kw_only=True)
class StageEntered(Message):
    """The coordinator reported the order entering ``stage`` at ``at`` (kernel seconds)."""

    stage: Lifecycle
    at: float


@attrs.frozen(kw_only=True)
class FinishReported(Message):
    """The order was reported finished (terminal, no hold open) at ``at``."""

    at: float


@attrs.frozen(kw_only=True)
class WrongActionReported(Message):
    """A broken invariant was reported for the order; ``key`` is ``invariant:detail``
    (each is reported once per order)."""

    key: str


@attrs.frozen(kw_only=True)
class SyncDue(Message):
    """Batch sync: ``systems`` (all of them, not only the new ones) are owed the
    order's latest snapshot at the next flush."""

    systems: frozenset[str]


@attrs.frozen(kw_only=True)
class SyncFlushed(Message):
    """Batch sync: the owed systems were sent the latest snapshot."""


_NO_HELD: Mapping[str, Mapping[int, m.Event]] = {}
_NO_COPIES: Mapping[str, int] = {}
_NONE: frozenset[str] = frozenset()


@attrs.frozen(kw_only=True)
class OrderRecord:
    """What an order actor knows of its order: the fold of its stream.

    Attributes:
        order: the order's state (the fold of its events).
        held: per source, the events waiting for a gap in its sequence (by seq).
        copies: per sequenced source, the highest number a copy of an applied
            event came under (see :class:`CopyCounted`).
        stage: the stage last reported (None before the first event).
        stage_since: when that stage was entered (kernel seconds).
        finished: the finish was reported.
        reported: the wrong actions reported, as ``invariant:detail``.
        sync_due: batch sync: the systems owed the latest snapshot.
    """

    order: OrderState
    held: Mapping[str, Mapping[int, m.Event]] = _NO_HELD
    copies: Mapping[str, int] = _NO_COPIES
    stage: Lifecycle | None = None
    stage_since: float = 0.0
    finished: bool = False
    reported: frozenset[str] = _NONE
    sync_due: frozenset[str] = _NONE

    def next_seq(self, source: str) -> int:
        """The number the next event of sequenced ``source`` is expected under:
        one past the last applied or the last copy counted, whichever is higher."""
        return max(self.order.last_seq(source), self.copies.get(source, 0)) + 1

    def with_order(self, order: OrderState) -> OrderRecord:
        """This record with ``order`` as the order's state (the fold of an
        applied event, computed by the caller)."""
        return OrderRecord(order=order, held=self.held, copies=self.copies, stage=self.stage,
                           stage_since=self.stage_since, finished=self.finished,
                           reported=self.reported, sync_due=self.sync_due)


def evolve_record(record: OrderRecord, entry: object) -> OrderRecord:
    """The record after one journal entry (pure).

    Raises:
        TypeError: ``entry`` is neither an order event nor a coordinator note.
    """
    if isinstance(entry, m.Event):
        return record.with_order(evolve(record.order, entry))
    match entry:
        case EventHeld(event=event):
            held = dict(record.held)
            held[event.source] = {**held.get(event.source, {}), event.source_seq: event}
            return attrs.evolve(record, held=held)
        case HeldTaken(source=source, seqs=seqs):
            held = dict(record.held)
            left = {seq: e for seq, e in held.get(source, {}).items() if seq not in seqs}
            if left:
                held[source] = left
            else:
                held.pop(source, None)
            return attrs.evolve(record, held=held or _NO_HELD)
        case CopyCounted(source=source, seq=seq):
            return attrs.evolve(record, copies={**record.copies, source: seq})
        case StageEntered(stage=stage, at=at):
            return attrs.evolve(record, stage=stage, stage_since=at)
        case FinishReported():
            return attrs.evolve(record, finished=True)
        case WrongActionReported(key=key):
            return attrs.evolve(record, reported=record.reported | {key})
        case SyncDue(systems=systems):
            return attrs.evolve(record, sync_due=systems)
        case SyncFlushed():
            return attrs.evolve(record, sync_due=_NONE)
    raise TypeError(f"order journal: cannot fold a {type(entry).__qualname__} "
                    "(expected an order event or a coordinator note)")
