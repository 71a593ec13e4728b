"""What the policy engine is given and what it answers: triggers, wiring, reactions.

:func:`~._react.react` is a pure function from an order's state and a
trigger to a :class:`Reaction`: the commands automation proposes (decided
by the order actor against the same state) and the effects it asks for, in
order. Both are in the order model's own vocabulary: the coordinator's
order actor is the shell that turns an effect into a message to another
actor (a gateway query, a case for a team), a timer or telemetry, and
releases them only after its turn commits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TypeAlias

import attrs

from orderloom.runtime import Message

from . import _messages as m
from ._states import Decision, Lifecycle

__all__ = [
    "AssignCase",
    "CancelAsked",
    "Effect",
    "EventsApplied",
    "IdSource",
    "PersonDecided",
    "PolicyTimer",
    "QueryGateway",
    "Reaction",
    "ResendRequest",
    "SetTimer",
    "StuckEscalated",
    "TimerKind",
    "Trigger",
    "VerifyAddress",
    "WithdrawCase",
    "Wiring",
]


class TimerKind(enum.StrEnum):
    """What a timer the policy engine sets is for."""

    REAUTHORIZE = "reauthorize"  # the gateway was unavailable: authorize again
    RISK = "risk"  # no risk assessment yet: ask for the authorization again
    GIVE_UP = "give_up"  # out of retries on an unknown outcome: a person decides
    QUERY = "query"  # ask the gateway what became of a request
    RETRY = "retry"  # send a request with an unknown outcome again


# -- triggers ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PolicyTimer(Message):
    """A retry or reconciliation the policy engine set for its order (it comes
    back as a trigger).

    Invariant: ``request_id`` names a payment request of the order for
    ``GIVE_UP``, ``QUERY`` and ``RETRY``; ``attempt`` >= 0 counts the
    follow-ups so far.
    """

    kind: TimerKind
    request_id: str = ""
    attempt: int = 0


@attrs.frozen(kw_only=True)
class EventsApplied:
    """Trigger: these events were just applied to the order (in this order).

    Attributes:
        events: the applied events; empty to ask only for the next steps.
        progress: also propose the standard path's next steps (False while
            commands of the same turn are still queued: their events come
            first, so the engine never proposes what one is about to do).
    """

    events: tuple[m.Event, ...] = ()
    progress: bool = True


@attrs.frozen(kw_only=True)
class PersonDecided:
    """Trigger: a person decided one of the order's cases.

    Attributes:
        case_id: the case (the hold's id).
        decision: what they decided (``REASSIGN`` with ``handoff_to``).
        by: who decided (the commands it leads to are issued by them).
        handoff_to: the team a reassigned case goes to.
        note: their note.
        team: the team they decided for (None: not said). A decision from a
            team that no longer owns the case (it was escalated or handed
            on meanwhile) is stale and changes nothing.
    """

    case_id: str
    decision: Decision = attrs.field(converter=Decision)
    by: str
    handoff_to: str | None = None
    note: str = ""
    team: str | None = None


@attrs.frozen(kw_only=True)
class CancelAsked:
    """Trigger: the customer asked to cancel the order."""

    reason: str = "customer request"


@attrs.frozen(kw_only=True)
class StuckEscalated:
    """Trigger: the order has been stuck in ``stage`` past its deadline."""

    stage: Lifecycle = attrs.field(converter=Lifecycle)


Trigger: TypeAlias = EventsApplied | PersonDecided | CancelAsked | StuckEscalated | PolicyTimer
"""What the engine reacts to."""


# -- effects ----------------------------------------------------------------------


@attrs.frozen
class SetTimer:
    """Effect: bring ``timer`` back as a trigger ``delay`` seconds from now (>= 0)."""

    delay: float
    timer: PolicyTimer


@attrs.frozen
class QueryGateway:
    """Effect: ask the payment gateway what became of request ``request_id``."""

    request_id: str


@attrs.frozen
class ResendRequest:
    """Effect: send payment request ``request_id`` to the gateway again (same
    id: the gateway treats it as an idempotency key)."""

    request_id: str


@attrs.frozen
class VerifyAddress:
    """Effect: ask the address service to check the order's address (and with
    ``correct``, to correct it if it can)."""

    correct: bool


@attrs.frozen
class AssignCase:
    """Effect: put case ``hold_id`` in ``team``'s queue (with ``handed_off_from``,
    because it was handed off from that team)."""

    hold_id: str
    team: str
    handed_off_from: str | None = None


@attrs.frozen
class WithdrawCase:
    """Effect: tell ``team`` that case ``hold_id`` was closed without it."""

    hold_id: str
    team: str


Effect: TypeAlias = SetTimer | QueryGateway | ResendRequest | VerifyAddress | AssignCase | WithdrawCase

IdSource: TypeAlias = Callable[[], str]
"""Fresh ids for the commands, cases and fulfillment orders a reaction
creates (the order actor passes its context's ``new_id``: deterministic
under simulation; tests pass a counter)."""


@attrs.frozen(kw_only=True)
class Wiring:
    """What the engine reads of the coordinator's set-up (shared by every
    order of a coordinator; no per-order data).

    Attributes:
        warehouses: warehouse ids in order of preference (at least one).
        checks_addresses: an address service checks addresses; without one,
            addresses are taken as given.
    """

    warehouses: tuple[str, ...] = attrs.field(
        default=("W1",), validator=attrs.validators.min_len(1))
    checks_addresses: bool = True


@attrs.frozen(kw_only=True)
class Reaction:
    """The engine's answer to one trigger.

    Attributes:
        commands: commands to decide, in order (each may still be refused).
        effects: what to do besides, in the order the engine chose it.
    """

    commands: tuple[m.Command, ...] = ()
    effects: tuple[Effect, ...] = ()
