"""The review desk: people decide a team's cases instead of a simulated team.

A :class:`ReviewDesk` sits at ``team/<name>``, where a simulation puts a
:class:`~orderloom.actors.world.SupportTeam`, and speaks the same case
protocol: it keeps the :class:`~._protocol.CaseAssigned` cases it is sent,
drops the ones withdrawn (:class:`~._protocol.CaseWithdrawn`), and answers
the case's ``notify`` address with a :class:`~._protocol.CaseDecision` once
a person acted. People act through :class:`ActOnCase` (the HTTP side sends
it with the principal who asked): approve the proposal, override it with
another option, reassign the case to another team, or add a note.

Its cases are the fold of its own journal (:class:`DeskCaseReceived`,
:class:`DeskCaseNoted`, :class:`DeskCaseDecided`, :class:`DeskCaseWithdrawn`),
so a restarted desk shows the same open cases. A decided, reassigned or
withdrawn case refuses every further action; the answer to each
:class:`ActOnCase` is kept (in memory, for the asker) as a :class:`DeskAnswer`.

The book stays bounded: a closed case (decided, reassigned, withdrawn) leaves
it once a new case arrives :data:`DESK_KEEP_CLOSED` seconds after its last entry;
its decision stays in the order's journal (``orderloom journal export``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from orderloom.runtime import Address, Kernel, Message, PersistentActor, Store, handler

from ..order._states import Decision
from ._protocol import CaseAssigned, CaseDecision, CaseWithdrawn, team_address
from ._telemetry import CaseClosed, CaseDecided, TeamLoad

__all__ = [
    "ActOnCase",
    "CaseStatus",
    "DeskAction",
    "DeskAnswer",
    "DeskBook",
    "DeskCase",
    "DeskCaseDecided",
    "DeskCaseNoted",
    "DeskCaseReceived",
    "DeskCaseWithdrawn",
    "DeskEntry",
    "DeskResult",
    "DESK_KEEP_CLOSED",
    "ReviewDesk",
    "evolve_desk",
    "is_bounce",
    "spawn_review_desks",
]


class CaseStatus(enum.Enum):
    """Where a case stands at one desk."""

    OPEN = "open"
    DECIDED = "decided"
    REASSIGNED = "reassigned"
    WITHDRAWN = "withdrawn"


class DeskAction(enum.Enum):
    """What a person does to a case (and what its history records)."""

    APPROVE = "approve"
    OVERRIDE = "override"
    REASSIGN = "reassign"
    NOTE = "note"


class DeskResult(enum.Enum):
    """How a desk answered an :class:`ActOnCase`."""

    DONE = "done"
    UNKNOWN_CASE = "unknown_case"
    CLOSED = "closed"
    INVALID = "invalid"


def _text(_: object, a: attrs.Attribute[Any], v: str) -> None:
    if not (isinstance(v, str) and v.strip()):
        raise ValueError(f"{a.name} must be a non-empty string, got {v!r}")


def is_bounce(history: tuple[str, ...], to_team: str) -> bool:
    """A reassignment to ``to_team`` is a bounce when the case was there
    before (A→B→A), as the metrics count it; A→B→C is not."""
    return to_team in history


# -- the command from people ------------------------------------------------------


@attrs.frozen(kw_only=True)
class ActOnCase(Message):
    """A person acts on a case: ``by`` is who (the request's principal),
    ``why`` their reason, ``request_id`` names the answer (:class:`DeskAnswer`).

    Invariants: ``by`` and ``request_id`` non-empty; ``OVERRIDE`` names a
    ``decision`` other than ``REASSIGN``; ``REASSIGN`` names the team ``to``;
    ``NOTE`` has a non-empty ``why``.
    """

    request_id: str = attrs.field(validator=_text)
    case_id: str = attrs.field(validator=_text)
    action: DeskAction = attrs.field(validator=attrs.validators.instance_of(DeskAction))
    by: str = attrs.field(validator=_text)
    why: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    decision: Decision | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Decision)))
    to: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.action is DeskAction.OVERRIDE and (
                self.decision is None or self.decision is Decision.REASSIGN):
            raise ValueError("decision: an override names release or cancel")
        if self.action is DeskAction.REASSIGN and not (self.to and self.to.strip()):
            raise ValueError("to: a reassignment names the team it goes to")
        if self.action is DeskAction.NOTE and not self.why.strip():
            raise ValueError("why: a note needs its text")


@attrs.frozen(kw_only=True)
class DeskAnswer:
    """A desk's answer to the :class:`ActOnCase` ``request_id``; ``status`` is
    the case's status after it (None for an unknown case)."""

    request_id: str
    result: DeskResult
    detail: str = ""
    status: CaseStatus | None = None


# -- the desk's journal --------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DeskCaseReceived(Message):
    """Journal: a case came to the desk at ``at`` (again, after it left: a new visit)."""

    case: CaseAssigned
    at: float


@attrs.frozen(kw_only=True)
class DeskCaseNoted(Message):
    """Journal: ``by`` added ``note`` to an open case. Invariant: note non-empty."""

    case_id: str
    by: str
    note: str
    at: float


@attrs.frozen(kw_only=True)
class DeskCaseDecided(Message):
    """Journal: ``by`` decided a case (``REASSIGN`` with ``handoff_to``), saying ``note``."""

    case_id: str
    by: str
    action: DeskAction
    decision: Decision
    handoff_to: str | None = None
    note: str = ""
    at: float


@attrs.frozen(kw_only=True)
class DeskCaseWithdrawn(Message):
    """Journal: the order withdrew an open case (it needs no person any more)."""

    case_id: str
    at: float


DeskEvent = DeskCaseReceived | DeskCaseNoted | DeskCaseDecided | DeskCaseWithdrawn


@attrs.frozen(kw_only=True)
class DeskEntry:
    """One line of a case's history at the desk."""

    at: float
    what: str
    by: str = ""
    note: str = ""
    decision: Decision | None = None
    to: str | None = None


@attrs.frozen(kw_only=True)
class DeskCase:
    """A case as the desk holds it: what the order sent, where it stands, what happened."""

    case: CaseAssigned
    status: CaseStatus
    received_at: float
    history: tuple[DeskEntry, ...] = ()
    decided_by: str | None = None
    decision: Decision | None = None
    note: str = ""


@attrs.frozen(kw_only=True)
class DeskBook:
    """Every case the desk was sent, by case id (the fold of its journal)."""

    cases: Mapping[str, DeskCase] = attrs.field(factory=dict)

    def open_cases(self) -> list[DeskCase]:
        """The open cases, oldest first."""
        return sorted((c for c in self.cases.values() if c.status is CaseStatus.OPEN),
                      key=lambda c: (c.received_at, c.case.case_id))


DESK_KEEP_CLOSED = 7 * 86400.0
"""Kernel seconds a closed case stays in a desk's book after its last entry:
the page and API show it that long, and a copy the order re-sends meanwhile
(a decided cancel waiting for in-flight work) is recognised. A week: far
beyond any in-flight work, and a busy desk's book stays a week of cases."""


def evolve_desk(book: DeskBook, event: DeskEvent) -> DeskBook:
    """The desk's cases after ``event`` (pure). A received case first drops
    the closed cases whose last entry is more than :data:`DESK_KEEP_CLOSED` older
    than it."""
    if isinstance(event, DeskCaseReceived):
        horizon = event.at - DESK_KEEP_CLOSED
        cases = {case_id: held for case_id, held in book.cases.items()
                 if held.status is CaseStatus.OPEN or held.history[-1].at >= horizon}
        case = event.case
        cases[case.case_id] = DeskCase(
            case=case, status=CaseStatus.OPEN, received_at=event.at,
            history=(*_previous(book, case.case_id),
                     DeskEntry(at=event.at, what="received",
                               by=case.history[-1] if case.history else "automation")))
        return DeskBook(cases=cases)
    cases = dict(book.cases)
    held = cases[event.case_id]
    if isinstance(event, DeskCaseNoted):
        held = attrs.evolve(held, history=(*held.history, DeskEntry(
            at=event.at, what=DeskAction.NOTE.value, by=event.by, note=event.note)))
    elif isinstance(event, DeskCaseDecided):
        status = (CaseStatus.REASSIGNED if event.action is DeskAction.REASSIGN
                  else CaseStatus.DECIDED)
        held = attrs.evolve(
            held, status=status, decided_by=event.by, decision=event.decision, note=event.note,
            history=(*held.history, DeskEntry(at=event.at, what=event.action.value, by=event.by,
                                              note=event.note, decision=event.decision,
                                              to=event.handoff_to)))
    else:
        held = attrs.evolve(held, status=CaseStatus.WITHDRAWN, history=(
            *held.history, DeskEntry(at=event.at, what="withdrawn", by="automation")))
    cases[event.case_id] = held
    return DeskBook(cases=cases)


def _previous(book: DeskBook, case_id: str) -> tuple[DeskEntry, ...]:
    before = book.cases.get(case_id)
    return before.history if before is not None else ()


class ReviewDesk(PersistentActor[DeskBook]):
    """People deciding one team's cases (see the module docstring).

    Args:
        team: the team's name (the desk runs at ``team/<team>``).
        store: where its journal lives.
    """

    snapshot_every = 256

    def __init__(self, team: str, store: Store) -> None:
        if not team:
            raise ValueError("team: expected a non-empty team name")
        self.team = team
        super().__init__(store)

    def initial_state(self) -> DeskBook:
        return DeskBook()

    def evolve(self, state: DeskBook, event: DeskEvent) -> DeskBook:
        return evolve_desk(state, event)

    @property
    def book(self) -> DeskBook:
        """The desk's cases."""
        return self.state

    def case(self, case_id: str) -> DeskCase | None:
        """One case, if the desk was ever sent it."""
        return self.state.cases.get(case_id)

    async def on_start(self) -> None:
        """Restore the cases, then report the queue (the metrics' ``queue_length``)."""
        await super().on_start()
        self._report_load()

    @handler
    async def on_case(self, msg: CaseAssigned) -> None:
        """Keep a case. A copy re-sent while it is open here, or after it was
        decided here (the order re-sends a case to its owners when it is
        stuck, and a decided cancel waits for in-flight work), is ignored; a
        case that left (reassigned, withdrawn) and comes back is a new visit."""
        held = self.state.cases.get(msg.case_id)
        if held is not None and held.status in (CaseStatus.OPEN, CaseStatus.DECIDED):
            return
        self.record(DeskCaseReceived(case=msg, at=self.ctx.now()))
        self._report_load()

    @handler
    async def on_withdrawn(self, msg: CaseWithdrawn) -> None:
        """The order no longer needs a person for an open case."""
        held = self.state.cases.get(msg.case_id)
        if held is None or held.status is not CaseStatus.OPEN:
            return
        self.record(DeskCaseWithdrawn(case_id=msg.case_id, at=self.ctx.now()))
        self.ctx.emit(CaseClosed(order_id=held.case.order_id, case_id=msg.case_id,
                                 reason=held.case.reason, team=self.team, outcome="withdrawn"))
        self._report_load()

    @handler
    async def on_act(self, msg: ActOnCase) -> DeskAnswer:
        """A person acted: note it, or decide the case and tell its order.
        The answer is returned to the asker, after this turn's commit."""
        held = self.state.cases.get(msg.case_id)
        if held is None:
            return self._answer(msg, DeskResult.UNKNOWN_CASE,
                                f"no case {msg.case_id} at {self.team}")
        if held.status is not CaseStatus.OPEN:
            return self._answer(msg, DeskResult.CLOSED,
                                f"case {msg.case_id} is {held.status.value}", held.status)
        now, case = self.ctx.now(), held.case
        if msg.action is DeskAction.NOTE:
            self.record(DeskCaseNoted(case_id=msg.case_id, by=msg.by, note=msg.why, at=now))
            return self._answer(msg, DeskResult.DONE, "noted", CaseStatus.OPEN)
        problem = self._problem(msg, case)
        if problem:
            return self._answer(msg, DeskResult.INVALID, problem, held.status)
        decision = (case.proposal if msg.action is DeskAction.APPROVE
                    else Decision.REASSIGN if msg.action is DeskAction.REASSIGN
                    else msg.decision or case.proposal)  # OVERRIDE: never None (invariant)
        handoff = msg.to if msg.action is DeskAction.REASSIGN else None
        self.record(DeskCaseDecided(case_id=msg.case_id, by=msg.by, action=msg.action,
                                    decision=decision, handoff_to=handoff, note=msg.why, at=now))
        await self.ctx.send(case.notify, CaseDecision(
            order_id=case.order_id, case_id=case.case_id, team=self.team, reviewer=msg.by,
            decision=decision, proposal=case.proposal, handoff_to=handoff, note=msg.why,
        ), correlation_id=case.order_id)
        self.ctx.emit(CaseDecided(
            order_id=case.order_id, case_id=case.case_id, reason=case.reason, team=self.team,
            reviewer=msg.by, proposal=case.proposal, decision=decision,
            override=decision != case.proposal, erroneous=False))
        self.ctx.emit(CaseClosed(order_id=case.order_id, case_id=case.case_id,
                                 reason=case.reason, team=self.team, outcome=decision.value))
        self._report_load()
        return self._answer(msg, DeskResult.DONE, decision.value,
                            self.state.cases[msg.case_id].status)

    def _report_load(self) -> None:
        # The open cases are the queue. People at a desk are not rostered
        # here: no staff and no busy count, so no utilisation either.
        self.ctx.emit(TeamLoad(order_id="", team=self.team,
                               queue_length=len(self.state.open_cases()), busy=0, staff=0))

    def _problem(self, msg: ActOnCase, case: CaseAssigned) -> str:
        """Why ``msg`` cannot decide ``case`` ("" when it can)."""
        if msg.action is DeskAction.OVERRIDE:
            if msg.decision not in case.options:
                options = ", ".join(o.value for o in case.options)
                return f"decision: expected one of the case's options ({options})"
            if msg.decision == case.proposal:
                return "decision: an override differs from the proposal (approve it instead)"
        if msg.action is DeskAction.REASSIGN and msg.to == self.team:
            return f"to: the case is already with {self.team}"
        return ""

    def _answer(self, msg: ActOnCase, result: DeskResult, detail: str,
                status: CaseStatus | None = None) -> DeskAnswer:
        # Returned to the asker (the HTTP side asks, so it hears it only
        # after this turn committed) and emitted (released after the commit
        # too); not state, so not journaled.
        answer = DeskAnswer(request_id=msg.request_id, result=result, detail=detail,
                            status=status)
        self.ctx.emit(answer)
        return answer


def spawn_review_desks(kernel: Kernel, teams: Sequence[str], store: Store) -> tuple[Address, ...]:
    """Spawn a :class:`ReviewDesk` for each of ``teams`` at ``team/<name>``
    (where a simulation puts its simulated team), journaling in ``store``.

    Returns:
        their addresses (for a transport's subscriptions: the orders'
        cases for these teams must reach this process).
    """
    if len(set(teams)) != len(teams):
        raise ValueError(f"teams: expected distinct team names, got {list(teams)!r}")
    return tuple(kernel.spawn(lambda team=team: ReviewDesk(team, store),  # type: ignore[misc]
                              team_address(team)) for team in teams)
