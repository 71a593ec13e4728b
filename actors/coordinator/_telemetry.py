"""Telemetry: what the actors ``ctx.emit`` for the health metrics.

These events are the contract between the domain and every metrics
consumer (the simulator's collector, the live coordinator's Prometheus
exporter): the health metrics are computed from them, and only from them,
so their definitions are identical live and simulated.
"""

from __future__ import annotations

import attrs

from orderloom.runtime import Envelope

__all__ = [
    "ActionTaken",
    "CaseDecided",
    "CaseHandedOff",
    "CaseClosed",
    "CaseOpened",
    "CommandRefused",
    "EventIgnored",
    "GatewayTimedOut",
    "OrderFinished",
    "OrderStageEntered",
    "OrderStuck",
    "SystemViewChanged",
    "SystemViewScheduled",
    "TeamLoad",
    "Telemetry",
    "WrongAction",
    "chain_of",
]


@attrs.frozen(kw_only=True)
class Telemetry:
    """Base of telemetry events. Invariant: ``order_id`` names one order ("" for team-level)."""

    order_id: str


@attrs.frozen(kw_only=True)
class OrderStageEntered(Telemetry):
    """The coordinator's view of an order entered a lifecycle stage.

    Invariant: ``stage`` is a :class:`~orderloom.actors.Lifecycle` value;
    ``previous`` is the stage it left ("" for a new order).
    """

    stage: str
    previous: str = ""


@attrs.frozen(kw_only=True)
class OrderStuck(Telemetry):
    """An order stayed in ``stage`` past the policy's deadline.

    Invariants: ``age`` >= ``deadline`` > 0; ``reason`` is the open hold's
    reason if the order is on hold, else ``"no_progress"``.
    """

    stage: str
    reason: str
    age: float
    deadline: float


@attrs.frozen(kw_only=True)
class CaseOpened(Telemetry):
    """An exception left the standard path: a case for a team.

    Invariants: ``team`` is the owner; ``deadline`` is absolute kernel time.
    """

    case_id: str
    reason: str
    team: str
    deadline: float
    proposal: str


@attrs.frozen(kw_only=True)
class CaseHandedOff(Telemetry):
    """A case moved from one team to another (A→B; A→B→A is a bounce)."""

    case_id: str
    reason: str
    from_team: str
    to_team: str


@attrs.frozen(kw_only=True)
class CaseDecided(Telemetry):
    """A person decided a case.

    Invariants: ``override`` is True exactly when ``decision`` differs from
    automation's ``proposal``; ``erroneous`` marks a decision the simulated
    reviewer got wrong (always False live: only the simulator knows).
    """

    case_id: str
    reason: str
    team: str
    reviewer: str
    proposal: str
    decision: str
    override: bool
    erroneous: bool = False


@attrs.frozen(kw_only=True)
class CaseClosed(Telemetry):
    """A case left its team's queue (decided, withdrawn or escalated)."""

    case_id: str
    reason: str
    team: str
    outcome: str


@attrs.frozen(kw_only=True)
class SystemViewChanged(Telemetry):
    """A downstream system (finance, crm, support, fulfillment) changed its
    view of an order, or the coordinator did (``system="coordinator"``).

    Invariant: ``status`` is a comparable summary string: two systems agree
    on an order exactly when their latest statuses are equal.
    """

    system: str
    status: str


@attrs.frozen(kw_only=True)
class SystemViewScheduled(Telemetry):
    """A downstream system will hold ``status`` as its view of an order from
    ``at`` on: it received an update and applies it once its lag elapses.

    It replaces whatever the system announced for the order from ``at`` on:
    an update that overtakes older ones still in their lag makes them land
    stale, so they never show. Consumers read it as a
    :class:`SystemViewChanged` of ``system`` at ``at``. A simulated system
    draws an update's lag when the update arrives, so it says then when its
    view changes, instead of setting a timer to wake itself at the time.

    Invariants: ``status`` as in :class:`SystemViewChanged`; ``at`` is not
    earlier than the time the event is emitted.
    """

    system: str
    status: str
    at: float


@attrs.frozen(kw_only=True)
class WrongAction(Telemetry):
    """An invariant was violated: a cascading mistake the source warns about.

    Invariants: ``invariant`` is one of the named invariants; ``chain`` is the
    causal chain of message ids that led to it, oldest first.
    """

    invariant: str
    detail: str
    chain: tuple[str, ...] = ()


def chain_of(envelope: Envelope | None) -> tuple[str, ...]:
    """A :class:`WrongAction`'s ``chain`` from the message being handled: its
    cause's id and its own, oldest first (a trace follows the cause's
    ``causation_id`` further back); empty outside a turn."""
    if envelope is None:
        return ()
    return tuple(x for x in (envelope.causation_id, envelope.message_id) if x)


@attrs.frozen(kw_only=True)
class TeamLoad(Telemetry):
    """A team's queue length and busy staff changed (``order_id`` is "")."""

    team: str
    queue_length: int
    busy: int
    staff: int


@attrs.frozen(kw_only=True)
class OrderFinished(Telemetry):
    """An order reached a terminal state (closed, canceled, returned, ...)."""

    final_state: str
    placed_at: float


@attrs.frozen(kw_only=True)
class CommandRefused(Telemetry):
    """The order refused a command (a business rule or an illegal transition)."""

    command_type: str
    issued_by: str
    reason: str


@attrs.frozen(kw_only=True)
class EventIgnored(Telemetry):
    """An event was not applied: ``outcome`` is duplicate, stale or rejected."""

    event_type: str
    event_id: str
    source: str
    outcome: str
    reason: str = ""


@attrs.frozen(kw_only=True)
class ActionTaken(Telemetry):
    """The order accepted a command: the audit log of every decision.

    Invariants: ``irreversible`` marks capture, refund, cancel and ship
    (submit to a warehouse); ``on_exception_path`` is True when the order
    had an open hold as the command was decided; ``approved_by`` is who
    approved an irreversible command (None: no approval was needed) and
    ``approver`` what kind of approver that is (an ``Approver`` value:
    ``automation``, ``person`` or ``customer``).
    """

    command_type: str
    issued_by: str
    irreversible: bool
    on_exception_path: bool
    approved_by: str | None = None
    approver: str | None = None


@attrs.frozen(kw_only=True)
class GatewayTimedOut(Telemetry):
    """A gateway request got no answer in time: its outcome is unknown."""

    request_id: str
    operation: str
