"""The order model's entry points: ``decide``, ``evolve``, ``apply``, ``fold``.

``evolve`` is the raw state transition; ``apply`` is what an Order actor
calls on every incoming event. It ignores duplicates (an event id already
seen, or a payment record already held under its gateway id) and stale
events (a ``source_seq`` not newer than the last one applied from that
source; for a monotonic source, numbered by source time, that test comes
first: an older snapshot is stale even under a new id), and turns an event the model refuses into a ``REJECTED`` outcome
carrying the error. In all three cases the state is returned unchanged, so
state never regresses and nothing illegal is applied; the outcome is what
the caller records.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from orderloom.runtime import DomainError

from . import _messages as m
from ._decide import COORDINATOR_SOURCE, decide, decide_probed
from ._errors import EventRejected, InvalidTransition
from ._evolve import derive_payment, evolve
from ._order_state import OrderState
from ._sources import SourceOrdering, source_ordering

__all__ = [
    "COORDINATOR_SOURCE",
    "Outcome",
    "OutcomeKind",
    "apply",
    "apply_probed",
    "decide",
    "decide_probed",
    "derive_payment",
    "evolve",
    "fold",
    "handle",
]


class OutcomeKind(enum.Enum):
    """What became of an event offered to an order."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    REJECTED = "rejected"


@attrs.frozen(kw_only=True)
class Outcome:
    """The recorded result of :func:`apply`.

    Attributes:
        kind: applied, duplicate, stale or rejected.
        event_id: the event concerned.
        source: its source.
        source_seq: its per-source sequence number.
        error: for ``REJECTED``, the :class:`InvalidTransition` or
            :class:`EventRejected` that explains it; otherwise None.
    """

    kind: OutcomeKind
    event_id: str
    source: str
    source_seq: int
    error: DomainError | None = attrs.field(default=None, eq=False)


def _already_recorded(state: OrderState, event: m.Event) -> bool:
    """A gateway resend under a new event id of a payment fact we already hold."""
    match event:
        case m.PaymentAuthorized():
            return state.authorization(event.authorization_id) is not None
        case m.PaymentCaptured():
            return any(c.capture_id == event.capture_id for c in state.captures)
        case m.PaymentRefunded():
            return any(r.refund_id == event.refund_id for r in state.refunds)
        case _:
            return False


def apply(state: OrderState, event: m.Event) -> tuple[OrderState, Outcome]:
    """Offer one event to an order; never raises for a bad event, never regresses.

    Returns:
        The new state (the same object unless the outcome is ``APPLIED``) and
        the outcome to record.
    """

    return apply_probed(state, event, None)


def apply_probed(
    state: OrderState, event: m.Event, evolved: OrderState | None
) -> tuple[OrderState, Outcome]:
    """:func:`apply`, given ``evolved`` = ``evolve(state, event)`` if the
    caller already has it (``decide_probed`` computed it); None to evolve here.
    ``evolve`` is pure, so the result is the same either way."""
    not_newer = event.source_seq <= state.last_seq(event.source)
    if not_newer and source_ordering(event.source) is SourceOrdering.MONOTONIC:
        return state, Outcome(kind=OutcomeKind.STALE, event_id=event.event_id,
                              source=event.source, source_seq=event.source_seq)
    if event.event_id in state.seen_event_ids or _already_recorded(state, event):
        return state, Outcome(kind=OutcomeKind.DUPLICATE, event_id=event.event_id,
                              source=event.source, source_seq=event.source_seq)
    if not_newer:
        return state, Outcome(kind=OutcomeKind.STALE, event_id=event.event_id,
                              source=event.source, source_seq=event.source_seq)
    if evolved is None:
        try:
            evolved = evolve(state, event)
        except (InvalidTransition, EventRejected) as exc:
            return state, Outcome(kind=OutcomeKind.REJECTED, event_id=event.event_id,
                                  source=event.source, source_seq=event.source_seq, error=exc)
    return evolved, Outcome(kind=OutcomeKind.APPLIED, event_id=event.event_id,
                            source=event.source, source_seq=event.source_seq)


def fold(events: Iterable[m.Event], *, order_id: str | None = None) -> OrderState:
    """The state an order reaches by applying ``events`` in order, from scratch.

    Duplicates, stale and rejected events are skipped exactly as :func:`apply`
    skips them, so a raw journal (with its rejected entries) folds to the
    same state the live order had.

    Raises:
        ValueError: no events and no ``order_id`` to start from.
    """
    items = list(events)
    if order_id is None:
        if not items:
            raise ValueError("fold needs an order_id when there are no events")
        order_id = items[0].order_id
    state = OrderState(order_id=order_id)
    for event in items:
        state, _ = apply(state, event)
    return state


def handle(
    state: OrderState, command: m.Command
) -> tuple[OrderState, tuple[m.Event, ...]]:
    """Decide a command and apply its events: the Order actor's command path.

    Raises:
        CommandRejected: a business rule forbids the command now.
        InvalidTransition: the command would move a dimension illegally.
    """
    events = decide(state, command)
    for event in events:
        state, _ = apply(state, event)
    return state, events
