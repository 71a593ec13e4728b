"""Support teams: people reviewing exception cases in shifts.

A :class:`SupportTeam` holds a FIFO queue of :class:`~._protocol.CaseAssigned`
cases. Reviewers on duty (the shifts' staff, nobody during an absence) take
the oldest case, review it for ``review.sample(rng)`` seconds (a scheduled
timer, never a sleep: the team keeps accepting cases meanwhile) and send a
:class:`~._protocol.CaseDecision` to the case's ``notify`` address.

A decision is drawn in three steps, one ``rng`` draw ``u`` deciding the first
two so that the configured rates are the marginal probabilities:

1. ``u < reassign_rate``: ``"reassign"`` to another team. The team the case
   came from (``history[-1]``) is preferred when it is a permitted target:
   "not ours, send it back" is how real teams ping-pong a case (A→B→A), the
   bounce the health metrics measure.
2. If an oracle knows the right answer for the case's reason
   (:func:`right_decision`), the reviewer gives it, except with
   ``error_rate`` the other option (``erroneous`` in telemetry); the
   ``override_rate`` does not apply: overrides follow from the truth.
3. Otherwise ``u < reassign_rate + override_rate``: an option other than
   automation's proposal (a manual override); else the proposal.

``rng`` is the review's own stream, keyed by the order, the case's reason,
its hops and how many such reviews the team did before (see
:class:`~._dist.KeyedRandom`): a case's review time and decision do not
depend on what other cases the team had (common random numbers).

Days are ``floor(now / 86400)``, weekdays ``day % 7``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from random import Random
from typing import Any

import attrs

from orderloom.runtime import Actor, Message, TimerId, handler

from ..order._documents import probability
from ._dist import Dist, KeyedRandom, Window
from ..coordinator._protocol import CaseAssigned, CaseDecision, CaseWithdrawn, Decision, OrderTruth
from ..coordinator._telemetry import CaseClosed, CaseDecided, TeamLoad

__all__ = ["Shift", "SupportTeam", "TeamConfig", "right_decision"]

DAY = 86400.0
_ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)
_REASSIGN = Decision.REASSIGN


def _days(_: object, a: attrs.Attribute[Any], v: tuple[int, ...]) -> None:
    if not v or len(set(v)) != len(v) or any(d not in _ALL_DAYS for d in v):
        raise ValueError(f"{a.name}: expected distinct weekdays in 0..6, got {v!r}")


@attrs.frozen
class Shift:
    """``staff`` people on duty from ``start_hour`` to ``end_hour`` on ``days``.

    A shift with ``end_hour < start_hour`` runs overnight and belongs to the
    day it starts. Invariants: ``0 <= start_hour < 24``, ``0 < end_hour <= 24``,
    ``end_hour != start_hour``, ``staff >= 0``, ``days`` distinct in 0..6.
    """

    start_hour: float
    end_hour: float
    staff: int
    days: tuple[int, ...] = attrs.field(default=_ALL_DAYS, validator=_days)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.start_hour < 24:
            raise ValueError(f"start_hour: expected 0 <= start_hour < 24, got {self.start_hour!r}")
        if not 0 < self.end_hour <= 24 or self.end_hour == self.start_hour:
            raise ValueError(
                f"end_hour: expected in (0, 24] and != start_hour, got {self.end_hour!r}")
        if self.staff < 0:
            raise ValueError(f"staff: expected >= 0, got {self.staff!r}")

    def interval(self, day: int) -> tuple[float, float] | None:
        """The shift's ``[start, end)`` in kernel seconds on ``day``, if it works that day."""
        if day % 7 not in self.days:
            return None
        start = day * DAY + self.start_hour * 3600.0
        end = day * DAY + self.end_hour * 3600.0
        return start, end + DAY if self.end_hour < self.start_hour else end


@attrs.frozen(kw_only=True)
class TeamConfig:
    """A support team: shifts, review time, decision rates, absences.

    Invariants: rates in [0, 1] with ``reassign_rate + override_rate <= 1``;
    ``reassign_to`` never names the team itself and is non-empty when
    ``reassign_rate > 0``. ``track_staff`` (the default) emits
    :class:`TeamLoad` at every staffing change too, so utilisation and
    overtime see a shift end when it happens, not at the team's next event
    (a timer per shift edge, forever: run the kernel with ``until``).
    """

    name: str
    review: Dist
    shifts: tuple[Shift, ...] = (Shift(0, 24, 1),)
    override_rate: float = attrs.field(default=0.0, validator=probability)
    reassign_rate: float = attrs.field(default=0.0, validator=probability)
    reassign_to: tuple[str, ...] = ()
    error_rate: float = attrs.field(default=0.0, validator=probability)
    absences: tuple[Window, ...] = ()
    track_staff: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: expected a non-empty team name")
        if self.reassign_rate + self.override_rate > 1.0:
            raise ValueError("reassign_rate + override_rate: expected <= 1")
        if self.name in self.reassign_to:
            raise ValueError(f"reassign_to: a team cannot reassign to itself ({self.name!r})")
        if self.reassign_rate > 0 and not self.reassign_to:
            raise ValueError("reassign_to: expected at least one team when reassign_rate > 0")

    def staff_at(self, t: float) -> int:
        """People on duty at kernel time ``t`` (0 during an absence)."""
        if any(w.contains(t) for w in self.absences):
            return 0
        day = math.floor(t / DAY)
        total = 0
        for shift in self.shifts:
            for d in (day - 1, day):
                span = shift.interval(d)
                if span is not None and span[0] <= t < span[1]:
                    total += shift.staff
        return total

    def next_change(self, t: float, *, increase_only: bool = False) -> float | None:
        """The first time after ``t`` when staffing changes (or rises); None if never."""
        horizon = max([t, *(w.end for w in self.absences)]) + 8 * DAY
        points = {b for w in self.absences for b in (w.start, w.end)}
        for shift in self.shifts:
            for d in range(math.floor(t / DAY) - 1, math.floor(horizon / DAY) + 1):
                points.update(shift.interval(d) or ())
        previous = self.staff_at(t)
        for b in sorted(p for p in points if t < p <= horizon):
            current = self.staff_at(b)
            if current > previous or (current != previous and not increase_only):
                return b
            previous = current
        return None


def right_decision(reason: str, truth: OrderTruth) -> Decision | None:
    """What a reviewer who knows the truth should decide, for the reasons it settles.

    Fraud: cancel a fraudulent order, release the others. Duplicate: cancel a
    true duplicate. Address: cancel only an address neither valid nor fixable.
    Other reasons are judgement calls: None.
    """
    cancel, release = Decision.CANCEL, Decision.RELEASE
    if reason == "high_risk_of_fraud":
        return cancel if truth.fraudulent else release
    if reason == "duplicate_order":
        return cancel if truth.duplicate_of is not None else release
    if reason == "incorrect_address":
        return release if truth.address_ok or truth.address_fixable else cancel
    return None


@attrs.frozen(kw_only=True)
class _ReviewDone(Message):
    """Timer: the reviewer of ``case_id`` finished."""

    case_id: str


@attrs.frozen(kw_only=True)
class _WakeUp(Message):
    """Timer: staffing rose, waiting cases can be picked up."""


@attrs.frozen(kw_only=True)
class _StaffTick(Message):
    """Timer (``track_staff``): staffing changed; ``token`` names the tick chain."""

    token: str


@attrs.frozen(kw_only=True)
class _Review:
    case: CaseAssigned
    slot: int
    timer: TimerId
    key: str = ""  # where the review's draws continue (its keyed stream)
    drawn: int = 0


class SupportTeam(Actor):
    """A team of reviewers deciding exception cases (see the module docstring).

    Args:
        config: the team.
        oracle: the simulated truth of an order (simulation only); without
            it, decisions follow ``override_rate`` and nothing is erroneous.

    A case re-sent while the team still holds it is ignored; a case handed
    back later (A→B→A) is a new visit.
    """

    def __init__(
        self, config: TeamConfig, oracle: Callable[[str], OrderTruth] | None = None
    ) -> None:
        self.config = config
        self.oracle = oracle
        self._queue: deque[CaseAssigned] = deque()
        self._held: set[str] = set()  # case ids queued or under review
        self._reviews: dict[str, _Review] = {}
        self._keyed = KeyedRandom(lambda: self.ctx.rng.getrandbits(64))
        self._wakeup: TimerId | None = None
        # False once next_change found no rise: staffing is weekly after the
        # last absence and next_change looks 8 days past it, so "no rise" is
        # for good and need not be searched again at every dispatch.
        self._may_rise = True
        self._tick_token = ""
        self._last_load: tuple[int, int, int] | None = None

    @property
    def queue_length(self) -> int:
        """Cases waiting for a reviewer."""
        return len(self._queue)

    @property
    def busy(self) -> int:
        """Reviewers with a case in hand."""
        return len(self._reviews)

    async def on_start(self) -> None:
        """Report the initial load; start the staff-tracking ticks if asked."""
        if self.config.track_staff:
            self._tick_token = self.ctx.new_id()
            self._schedule_tick()
        self._report_load()

    @handler
    async def on_case(self, msg: CaseAssigned) -> None:
        """Queue a case and let a free reviewer take it."""
        if msg.case_id in self._held:
            return
        self._held.add(msg.case_id)
        self._queue.append(msg)
        self._dispatch()
        self._report_load()

    @handler
    async def on_withdrawn(self, msg: CaseWithdrawn) -> None:
        """Drop a waiting case, or abandon one under review (no decision is sent)."""
        if msg.case_id not in self._held:
            return
        review = self._reviews.pop(msg.case_id, None)
        if review is not None:
            self.ctx.cancel(review.timer)
            case = review.case
        else:
            case = next(c for c in self._queue if c.case_id == msg.case_id)
            self._queue.remove(case)
        self._close(case, "withdrawn")
        self._dispatch()
        self._report_load()

    @handler
    async def on_review_done(self, msg: _ReviewDone) -> None:
        """A reviewer decided: tell the case's owner, then take the next case."""
        review = self._reviews.pop(msg.case_id, None)
        if review is None:  # withdrawn meanwhile, or a timer from before a restart
            return
        case = review.case
        rng = self._keyed.at(review.key, review.drawn)
        decision, handoff, erroneous = self._decide(case, rng)
        reviewer = f"{self.config.name}#{review.slot}"
        await self.ctx.send(case.notify, CaseDecision(
            order_id=case.order_id, case_id=case.case_id, team=self.config.name,
            reviewer=reviewer, decision=decision, proposal=case.proposal, handoff_to=handoff,
        ), correlation_id=case.order_id)
        self.ctx.emit(CaseDecided(
            order_id=case.order_id, case_id=case.case_id, reason=case.reason,
            team=self.config.name, reviewer=reviewer, proposal=case.proposal,
            decision=decision, override=decision != case.proposal, erroneous=erroneous,
        ))
        self._close(case, decision)
        self._dispatch()
        self._report_load()

    @handler
    async def on_wake_up(self, msg: _WakeUp) -> None:
        """More people came on duty: pick up waiting cases."""
        self._wakeup = None
        self._dispatch()
        self._report_load()

    @handler
    async def on_staff_tick(self, msg: _StaffTick) -> None:
        """Staffing changed (``track_staff``): report the load, pick up waiting cases."""
        if msg.token != self._tick_token:  # a chain started before a restart
            return
        self._schedule_tick()
        self._dispatch()
        self._report_load()

    # -- internals ------------------------------------------------------------------

    def _dispatch(self) -> None:
        capacity = self.config.staff_at(self.ctx.now())
        while self._queue and len(self._reviews) < capacity:
            case = self._queue.popleft()
            busy = {r.slot for r in self._reviews.values()}
            slot = next(k for k in range(1, len(busy) + 2) if k not in busy)
            key = self._review_key(case)
            rng = self._keyed.at(key)
            delay = self.config.review.sample(rng)
            timer = self.ctx.schedule(delay, _ReviewDone(case_id=case.case_id))
            self._reviews[case.case_id] = _Review(case=case, slot=slot, timer=timer, key=key,
                                                  drawn=rng.drawn)
        if self._queue and self._wakeup is None and self._may_rise:
            # Reviewers finishing will dispatch again; a wake-up is needed
            # only for cases that wait for more people to come on duty.
            now = self.ctx.now()
            at = self.config.next_change(now, increase_only=True)
            if at is not None:
                self._wakeup = self.ctx.schedule(at - now, _WakeUp())
            else:
                self._may_rise = False
        elif not self._queue and self._wakeup is not None:
            self.ctx.cancel(self._wakeup)
            self._wakeup = None

    def _schedule_tick(self) -> None:
        now = self.ctx.now()
        at = self.config.next_change(now)
        if at is not None:
            self.ctx.schedule(at - now, _StaffTick(token=self._tick_token))

    @staticmethod
    def _review_key(case: CaseAssigned) -> str:
        """The review's keyed stream: this order's ``visit``-th case for this
        reason, after this many hops. Under common random numbers the same
        exception gets the same review time and decision draws whatever else
        the team had to do (other policies send other cases); and the team
        keeps nothing per case once it is decided."""
        return f"{case.order_id}/{case.reason}/{len(case.history)}/{case.visit}"

    def _decide(self, case: CaseAssigned, rng: Random) -> tuple[Decision, str | None, bool]:
        cfg = self.config
        u = rng.random()
        if u < cfg.reassign_rate:
            back = case.history[-1] if case.history else None
            target = back if back in cfg.reassign_to else rng.choice(cfg.reassign_to)
            return _REASSIGN, target, False
        choices = [o for o in case.options if o != _REASSIGN]
        right = right_decision(case.reason, self.oracle(case.order_id)) if self.oracle else None
        if right is not None and right in choices and len(choices) > 1:
            if rng.random() < cfg.error_rate:
                return rng.choice([c for c in choices if c != right]), None, True
            return right, None, False
        others = [c for c in choices if c != case.proposal]
        if u < cfg.reassign_rate + cfg.override_rate and others:
            return rng.choice(others), None, False
        return case.proposal, None, False

    def _close(self, case: CaseAssigned, outcome: str) -> None:
        self._held.discard(case.case_id)
        self.ctx.emit(CaseClosed(
            order_id=case.order_id, case_id=case.case_id, reason=case.reason,
            team=self.config.name, outcome=outcome,
        ))

    def _report_load(self) -> None:
        load = (len(self._queue), len(self._reviews), self.config.staff_at(self.ctx.now()))
        if load != self._last_load:
            self._last_load = load
            self.ctx.emit(TeamLoad(
                order_id="", team=self.config.name,
                queue_length=load[0], busy=load[1], staff=load[2],
            ))
