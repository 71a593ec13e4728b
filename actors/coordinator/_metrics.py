"""The metrics collector: a kernel sink folding telemetry into the health metrics.

``kernel.add_sink(collector.on_emit)`` streams every ``ctx.emit`` through
:class:`MetricsCollector`; ``finish(now)`` returns the ``(metrics, series,
examples)`` of a :class:`~._result.ReplicationResult`. The telemetry of
:mod:`orderloom.actors.coordinator._telemetry` is the only input, so the definitions are
the same live and simulated.

Memory stays bounded on million-order runs: an order's record is dropped on
its ``OrderFinished``, its cases once no team holds them any more, its
cross-system views once every system agrees after the finish. What remains
is counters, :class:`~._streaming.QuantileSketch` es and series with at most
``horizon / series_step + 1`` points.

Windows. An order *counts* when its placement (``OrderStageEntered`` with
``previous == ""``) is seen at or after ``warm_up``; order and case metrics
(stuck, exceptions, bounces, overrides, mismatches, cycle times, SLA) cover
counted orders only. Team metrics (``queue_length``, ``utilisation``,
``throughput_cases``, ``time_in_team``) and event counts (``events_ignored``,
``commands_refused``) cover ``[warm_up, now]`` whatever the order. Wrong
actions are never excluded: they are a safety proof, not a steady-state
estimate, and one hidden in the warm-up is still a bug. Series cover the
whole run, warm-up included, at ``series_start + k * series_step`` up to ``min(now,
horizon)``; each point is the state once every event at that instant applied.
``stuck_orders`` and ``state_mismatches`` count counted orders only, as their
metrics do, so a chart never shows a stuck order its table leaves out (an
order placed in the warm-up); queue lengths and orders per stage count
everything (load is load, whoever's order). A ``stuck_orders`` point counts
the stuck spells in force at some moment of the interval ending at it (those
open at its start and those begun in it), so a spell shorter than
``series_step`` still shows, as it counts in the metric: even one that starts
and ends at one instant, as when an order flagged stuck is put on hold at
once (payment-outage flags some 150 orders so during its outage: a snapshot
at each point saw none of them, the most at once says 1). Not so
``state_mismatches``: a disagreement that ends at the instant it starts is one
system updating just after another, which no metric counts. Quantile-type metrics (``cycle_time.*``, ``stuck_orders.age.*``,
``time_in_team.*``) are omitted when they have no sample.

Views. A system's view of an order changes when it says so
(``SystemViewChanged``) or when it said it would (``SystemViewScheduled``,
for a time still to come): the collector keeps the announced changes and
applies each at its time, before any event of a later (or the same) time,
so they fold exactly as if the system had reported them then.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from heapq import heappop, heappush
from sys import intern
from typing import Any

from ..order._states import SETTLED_STAGES, Approver, Decision
from ._telemetry import (
    ActionTaken,
    CaseClosed,
    CaseDecided,
    CaseHandedOff,
    CaseOpened,
    CommandRefused,
    EventIgnored,
    GatewayTimedOut,
    OrderFinished,
    OrderStageEntered,
    OrderStuck,
    SystemViewChanged,
    SystemViewScheduled,
    TeamLoad,
    WrongAction,
)

from ._metrics_state import Case, Order, Slot, Team, Views
from ._streaming import QuantileSketch

__all__ = ["PAIR_SEPARATOR", "MetricsCollector"]

PAIR_SEPARATOR = "~"
_SETTLED = frozenset(stage.value for stage in SETTLED_STAGES)
"""Joins the two (sorted) team names of ``bounce_rate.by_pair.<A>-<B>``."""

_COORDINATOR = "coordinator:"
_PS = (0.5, 0.95, 0.99)
Series = dict[str, list[tuple[float, float]]]


def _rate(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _ratio(out: dict[str, float], name: str, part: float, whole: float) -> None:
    """Set ``out[name]`` to ``part / whole``, or leave it out when there is
    nothing to divide by: a bounce rate of a run with no case is undefined,
    not 0 (absent is not zero)."""
    if whole:
        out[name] = part / whole


def _bump(counter: dict[str, float], key: str, by: float = 1.0) -> None:
    counter[key] = counter.get(key, 0.0) + by


_LIVE_YEARS = 10 * 365 * 86400.0  # a live fold's horizon, in seconds


class MetricsCollector:
    """Streams telemetry into the health metrics of one replication.

    Args:
        warm_up: orders placed before it do not count; team time-averages
            start at it.
        horizon: the run's end; series stop there.
        series_step: sampling period of the series (e.g. ``horizon / 200``).
        series_start: the series' first grid point (a live process starts
            its grid at its start time, not at the epoch).
        systems: the downstream systems whose views are compared with the
            coordinator's (``SystemViewChanged`` for any other is ignored).
        teams: teams reported even if they never emit (more are added as seen).
        mismatch_grace: a disagreement must last longer than this to make an
            order count in ``state_mismatches`` (durations always count in full).
        standalone_cases: count cases that belong to no order seen placed
            (a review desk fed with cases directly, as in the M/M/c scenario).

    ``bounce_rate.by_pair.<A>-<B>`` (``A < B``): bounces between A and B, in
    either direction, per case opened, a bounce being a handoff to a team the
    case already visited; the pairs sum to ``bounce_rate``. A case handed
    A→B→A→B bounces twice (once on A, once on B), both on pair ``A-B``.
    """

    def __init__(self, *, warm_up: float, horizon: float, series_step: float,
                 systems: tuple[str, ...] = (), teams: tuple[str, ...] = (),
                 mismatch_grace: float = 0.0, standalone_cases: bool = False,
                 series_start: float = 0.0) -> None:
        if series_step <= 0:
            raise ValueError(f"series_step: expected > 0, got {series_step!r}")
        if series_start > warm_up:
            raise ValueError(f"series_start: expected <= warm_up ({warm_up!r}), "
                             f"got {series_start!r}")
        if horizon < warm_up:
            raise ValueError(f"horizon: expected >= warm_up ({warm_up!r}), got {horizon!r}")
        self.warm_up, self.horizon, self.series_step = warm_up, horizon, series_step
        self.series_start = series_start
        self.systems, self.mismatch_grace = systems, mismatch_grace
        # A view event's system -> (the system's name, whether it is the
        # coordinator's view): each order's slots are keyed by the one name
        # object, not by a copy sliced from every event.
        self._system_of: dict[str, tuple[str, bool]] = {
            **{name: (name, False) for name in systems},
            **{_COORDINATOR + name: (name, True) for name in systems}}
        self.standalone_cases = standalone_cases
        self._orders: dict[str, Order] = {}
        self._cases: dict[str, Case] = {}
        self._views: dict[str, Views] = {}
        self._teams: dict[str, Team] = {}
        self._n: dict[str, float] = {}  # plain counters, by metric name
        self._by: dict[str, dict[str, float]] = {}  # breakdowns: family -> key -> count
        self._examples: dict[str, str] = {}
        self._cycle: dict[str, QuantileSketch] = {}
        self._stuck_age = QuantileSketch()
        self._team_time: dict[str, tuple[float, int]] = {}  # team -> (sum, count)
        self._mismatch_max = 0.0
        self._stuck_now = 0
        self._mismatched_now = 0
        self._stuck_spells = 0  # stuck spells in force since the last series point
        # Announced downstream view changes, as (at, landing number, order,
        # system); an entry no longer in its slot's plan was replaced.
        self._landings: list[tuple[float, int, str, str]] = []
        self._landing_seq = 0
        self._series: Series = {"stuck_orders": [], "state_mismatches": []}
        self._next_k = 0
        self._next_t = series_start
        self._dispatch: dict[type, Callable[[float, Any], None] | None] = {
            OrderStageEntered: self._stage, OrderStuck: self._stuck,
            OrderFinished: self._finished, CaseOpened: self._opened,
            CaseHandedOff: self._handed_off, CaseDecided: self._decided,
            CaseClosed: self._closed, SystemViewChanged: self._view,
            SystemViewScheduled: self._scheduled, TeamLoad: self._load,
            WrongAction: self._wrong, EventIgnored: self._ignored,
            CommandRefused: self._refused, ActionTaken: self._action,
            GatewayTimedOut: self._timed_out,
        }
        self._in_stage: dict[str, int] = {}
        for team in teams:
            self._team(team)

    @classmethod
    def for_live_process(cls, start: float, teams: tuple[str, ...] = ()) -> MetricsCollector:
        """The fold of a live coordinator process started at ``start`` (epoch
        seconds): everything counts from its start, its series take a point a
        day from then on, for ten years; it compares no downstream system's
        view, since those live in the downstream systems' own processes and
        only the coordinator's side would reach it (every open order would
        read as mismatched)."""
        return cls(warm_up=start, horizon=start + _LIVE_YEARS, series_step=86400.0,
                   series_start=start, teams=teams)

    # -- the sink --------------------------------------------------------------------

    def on_emit(self, time: float, address: str, event: object) -> None:
        """The kernel sink: fold one telemetry event (anything else is ignored)."""
        if self._landings and self._landings[0][0] <= time:
            self._land(time)
        if time > self._next_t:
            self._sample(time, inclusive=False)
        kind = type(event)
        try:
            handle = self._dispatch[kind]
        except KeyError:  # a subclass or a foreign event: resolve once, then cache
            handle = next((self._dispatch[k] for k in kind.__mro__ if k in self._dispatch), None)
            self._dispatch[kind] = handle
        if handle is not None:
            handle(time, event)

    def tracked(self) -> dict[str, int]:
        """Per-order state still held: orders in flight, cases, cross-system views."""
        return {"orders": len(self._orders), "cases": len(self._cases),
                "views": len(self._views)}

    # -- orders ----------------------------------------------------------------------

    def _stage(self, t: float, e: OrderStageEntered) -> None:
        order = self._orders.get(e.order_id)
        if e.previous == "":
            if order is None and e.order_id not in self._views:
                counted = t >= self.warm_up
                self._orders[e.order_id] = Order(counted=counted, placed=t, stage=e.stage)
                self._in_stage[e.stage] = self._in_stage.get(e.stage, 0) + 1
                if self.systems:  # else nothing would ever compare them
                    self._views[e.order_id] = Views(counted=counted)
                if counted:
                    _bump(self._n, "orders.placed")
            return
        if order is None:
            return
        if order.stuck_now:  # rarely: spare the call
            self._unstick(order, t)
        self._in_stage[order.stage] = self._in_stage.get(order.stage, 0) - 1
        self._in_stage[e.stage] = self._in_stage.get(e.stage, 0) + 1
        if order.counted:
            self._sketch(f"cycle_time.{order.stage}").add(t - order.entered)
            if e.stage == "fulfilled" and not order.shipped:
                # Throughput and end-to-end cycle time are order-to-ship: the
                # coordinator's work ends when every unit left a warehouse
                # (delivery is the carrier's clock).
                order.shipped = True
                _bump(self._n, "throughput")
                self._sketch("cycle_time.end_to_end").add(t - order.placed)
        order.stage, order.entered = e.stage, t

    def _stuck(self, t: float, e: OrderStuck) -> None:
        order = self._orders.get(e.order_id)
        if order is None:
            return
        if not order.stuck_now:
            order.stuck_now = True
            if order.counted:
                self._stuck_now += 1
                self._stuck_spells += 1
        if not order.counted:
            return
        if order.stuck is None:
            order.stuck = set()
            _bump(self._n, "stuck_orders")
        for family, key in (("stuck_orders.by_stage", e.stage),
                            ("stuck_orders.by_reason", e.reason)):
            if (family, key) not in order.stuck:
                order.stuck.add((family, key))
                _bump(self._by.setdefault(family, {}), key)

    def _unstick(self, order: Order, t: float) -> None:
        """The order left its stage (or finished): a stuck spell ends, and
        its age in the stage joins the distribution once, however many
        times the watchdog surfaced it meanwhile."""
        if order.stuck_now:
            order.stuck_now = False
            if order.counted:
                self._stuck_now -= 1
                self._stuck_age.add(t - order.entered)

    def _finished(self, t: float, e: OrderFinished) -> None:
        order = self._orders.pop(e.order_id, None)
        if order is None:
            return
        self._in_stage[order.stage] = self._in_stage.get(order.stage, 0) - 1
        self._unstick(order, t)
        if order.counted:
            _bump(self._by.setdefault("orders_by_final_state", {}), e.final_state)
            if e.final_state == "closed":
                _bump(self._n, "orders_closed")
                if not order.shipped:  # closed without a recorded shipment stage
                    order.shipped = True
                    _bump(self._n, "throughput")
                    self._sketch("cycle_time.end_to_end").add(t - order.placed)
        for case_id in order.cases or ():
            case = self._cases.get(case_id)
            if case is not None:
                case.order_done = True
                if not case.arrivals:
                    del self._cases[case_id]
        views = self._views.get(e.order_id)
        if views is not None:
            views.finished = True
            if not views.bad:
                del self._views[e.order_id]

    def _sketch(self, name: str) -> QuantileSketch:
        sketch = self._cycle.get(name)
        if sketch is None:
            sketch = self._cycle[name] = QuantileSketch()
        return sketch

    # -- cases -----------------------------------------------------------------------

    def _opened(self, t: float, e: CaseOpened) -> None:
        order = self._orders.get(e.order_id)
        if e.case_id in self._cases:
            return
        if order is None:
            if not self.standalone_cases:
                return  # a case of an order we never saw placed
            # A review desk fed directly with cases (no orders): counted by its own time.
            case = Case(counted=t >= self.warm_up, deadline=e.deadline, teams=[e.team])
            case.order_done = True
        else:
            case = Case(counted=order.counted, deadline=e.deadline, teams=[e.team])
            if order.cases is None:
                order.cases = [e.case_id]
            else:
                order.cases.append(e.case_id)
        case.arrivals[e.team] = t
        self._cases[e.case_id] = case
        if case.counted:
            _bump(self._n, "exceptions")
            _bump(self._by.setdefault("exception_rate.by_reason", {}), e.reason)

    def _handed_off(self, t: float, e: CaseHandedOff) -> None:
        case = self._cases.get(e.case_id)
        if case is None:
            return
        case.arrivals.setdefault(e.to_team, t)  # a team already holding it ignores the copy
        if case.counted:
            _bump(self._n, "handoffs")
            if e.to_team in case.teams:
                _bump(self._n, "bounces")
                pair = PAIR_SEPARATOR.join(sorted((e.from_team, e.to_team)))
                _bump(self._by.setdefault("bounce_rate.by_pair", {}), pair)
        if e.to_team not in case.teams:
            case.teams.append(e.to_team)

    def _decided(self, t: float, e: CaseDecided) -> None:
        if t >= self.warm_up:
            _bump(self._team(e.team).counts, "throughput_cases")
        case = self._cases.get(e.case_id)
        if case is None:
            return
        if case.counted:
            if e.decision != Decision.REASSIGN:  # a handoff, not a decision on the proposal
                _bump(self._n, "decisions")
            if e.override and e.decision != Decision.REASSIGN:
                _bump(self._n, "manual_overrides")
                _bump(self._by.setdefault("manual_overrides.by_reason", {}), e.reason)
                _bump(self._by.setdefault("manual_overrides.by_team", {}), e.team)
            if e.erroneous:
                _bump(self._n, "reviewer_errors")
        self._leave(t, e.case_id, case, e.team)

    def _closed(self, t: float, e: CaseClosed) -> None:
        case = self._cases.get(e.case_id)
        if case is not None:
            self._leave(t, e.case_id, case, e.team)

    def _leave(self, t: float, case_id: str, case: Case, team: str) -> None:
        """``team`` let the case go (decided or closed: the first of the two counts)."""
        arrived = case.arrivals.pop(team, None)
        if arrived is None:
            return
        if arrived >= self.warm_up:
            total, n = self._team_time.get(team, (0.0, 0))
            self._team_time[team] = (total + (t - arrived), n + 1)
        if case.counted and not case.breached and t > case.deadline:
            self._breach(case, team)
        if case.order_done and not case.arrivals:
            del self._cases[case_id]

    def _breach(self, case: Case, team: str) -> None:
        case.breached = True
        _bump(self._n, "sla_breaches")
        _bump(self._by.setdefault("sla_breaches.by_team", {}), team)

    # -- cross-system views ------------------------------------------------------------

    def _view(self, t: float, e: SystemViewChanged) -> None:
        views = self._views.get(e.order_id)
        if views is None:
            return
        known = self._system_of.get(e.system)
        if known is None:
            return
        system, coordinator = known
        slot = views.slots.get(system)
        if slot is None:
            slot = views.slots[system] = Slot()
        # Interned: a view is one of few texts, kept once for every open order.
        if coordinator:
            slot.coordinator = intern(e.status)
        else:
            slot.downstream = intern(e.status)
        self._compare(t, e.order_id, views, slot, system)

    def _scheduled(self, t: float, e: SystemViewScheduled) -> None:
        """A system's view will change at ``e.at``: replace its plan from then on."""
        views = self._views.get(e.order_id)
        if views is None:
            return
        system = e.system
        if system not in self.systems:
            return
        slot = views.slots.get(system)
        if slot is None:
            slot = views.slots[system] = Slot()
        plan = slot.plan
        while plan and plan[-1][0] > e.at:
            plan.pop()  # overtaken: its entry in ``_landings`` is skipped
        if e.at <= t:  # no lag: it lands now (what was due before has landed)
            slot.plan = None
            slot.downstream = e.status
            self._compare(t, e.order_id, views, slot, system)
            return
        if plan is None:
            plan = slot.plan = []
        self._landing_seq = seq = self._landing_seq + 1
        plan.append((e.at, seq, e.status))
        heappush(self._landings, (e.at, seq, e.order_id, system))

    def _land(self, until: float) -> None:
        """Apply the announced view changes due by ``until``, each at its time."""
        landings = self._landings
        while landings and landings[0][0] <= until:
            at, seq, order_id, system = heappop(landings)
            views = self._views.get(order_id)
            if views is None:
                continue  # the order's views are dropped: every system agreed
            slot = views.slots.get(system)
            plan = slot.plan if slot is not None else None
            if slot is None or not plan or plan[0][1] != seq:
                continue  # replaced by a later announcement
            status = plan.pop(0)[2]
            if not plan:
                slot.plan = None  # most slots wait for nothing: no list each
            if at > self._next_t:
                self._sample(at, inclusive=False)
            slot.downstream = status
            self._compare(at, order_id, views, slot, system)

    def _compare(self, t: float, order_id: str, views: Views, slot: Slot, system: str) -> None:
        """A side of ``slot`` changed at ``t``: open or close its disagreement."""
        ours, theirs = slot.coordinator, slot.downstream
        bad = ours is not None and ours != theirs
        since = slot.since
        if bad and since is None:
            slot.since = t
            views.bad += 1
            if views.bad == 1 and views.counted:
                self._mismatched_now += 1
        elif not bad and since is not None:
            slot.since = None
            views.bad -= 1
            if not views.bad and views.counted:
                self._mismatched_now -= 1
            if views.counted:
                self._close_mismatch(views, system, t - since)
            if views.finished and not views.bad:
                del self._views[order_id]

    def _close_mismatch(self, views: Views, system: str, span: float) -> None:
        # Runs for every disagreement that ends, however short: the bump and
        # the ``max`` are inlined (a call each).
        n = self._n
        n["state_mismatches.total_duration"] = n.get("state_mismatches.total_duration", 0.0) + span
        if span > self._mismatch_max:
            self._mismatch_max = span
        if span > self.mismatch_grace:
            hit = views.hit
            if hit is None:
                _bump(self._n, "state_mismatches")
                hit = views.hit = set()
            if system not in hit:
                hit.add(system)
                _bump(self._by.setdefault("state_mismatches.by_system", {}), system)

    # -- teams and plain counts --------------------------------------------------------

    def _team(self, name: str) -> Team:
        team = self._teams.get(name)
        if team is None:
            team = self._teams[name] = Team(self.warm_up)
            points = self._series[f"queue_length.{name}"] = []
            points += [(self._grid(k), 0.0) for k in range(self._next_k)]
        return team

    def _load(self, t: float, e: TeamLoad) -> None:
        team = self._team(e.team)
        team.queue.set(t, e.queue_length)
        team.busy.set(t, e.busy)
        team.staff.set(t, e.staff)
        team.on_duty_busy.set(t, min(e.busy, e.staff))
        team.overtime.set(t, max(e.busy - e.staff, 0))

    def _wrong(self, t: float, e: WrongAction) -> None:
        _bump(self._n, "wrong_actions")
        _bump(self._by.setdefault("wrong_actions", {}), e.invariant)
        self._examples.setdefault(e.invariant, e.order_id)

    def _ignored(self, t: float, e: EventIgnored) -> None:
        if t >= self.warm_up:
            _bump(self._by.setdefault("events_ignored", {}), e.outcome)

    def _refused(self, t: float, e: CommandRefused) -> None:
        if t >= self.warm_up:
            _bump(self._n, "commands_refused")

    def _action(self, t: float, e: ActionTaken) -> None:
        """Every accepted command by type; and irreversible actions taken on an
        exception path on automation's own approval (no person decided)."""
        if t < self.warm_up:
            return
        actions = self._by.get("actions")
        if actions is None:  # not ``setdefault``: it would build a dict per action
            actions = self._by["actions"] = {}
        _bump(actions, e.command_type)
        if e.irreversible and e.on_exception_path and e.approver != Approver.PERSON.value:
            _bump(self._n, "unreviewed_irreversible")

    def _timed_out(self, t: float, e: GatewayTimedOut) -> None:
        if t >= self.warm_up:
            _bump(self._by.setdefault("gateway_timeouts", {}), e.operation)
            _bump(self._n, "gateway_timeouts")

    # -- series ------------------------------------------------------------------------

    def _sample(self, until: float, *, inclusive: bool) -> None:
        """Record every grid point before ``until`` (or at it, if ``inclusive``)."""
        k, t = self._next_k, self._next_t
        while t <= self.horizon and (t < until or (inclusive and t == until)):
            self._series["stuck_orders"].append((t, float(self._stuck_spells)))
            self._series["state_mismatches"].append((t, float(self._mismatched_now)))
            self._stuck_spells = self._stuck_now  # the next interval starts with these
            for name, team in self._teams.items():
                self._series[f"queue_length.{name}"].append((t, team.queue.value))
            for stage, count in self._in_stage.items():
                # Orders in each open stage: how work piles up and drains.
                if stage not in _SETTLED:
                    self._series.setdefault(f"in_stage.{stage}", []).append((t, float(count)))
            k += 1
            t = self._grid(k)
        # Past the horizon no point is due: park the trigger at infinity.
        self._next_k, self._next_t = k, t if t <= self.horizon else float("inf")

    def _grid(self, k: int) -> float:
        """The series' ``k``-th grid point."""
        return self.series_start + k * self.series_step

    # -- the result --------------------------------------------------------------------

    def finish(self, now: float) -> tuple[dict[str, float], Series, dict[str, str]]:
        """The replication's ``(metrics, series, examples)`` at kernel time ``now``.

        Open intervals (mismatches, team loads, cases past their deadline) are
        closed at ``now`` in the result only: calling it again, or streaming
        on, stays consistent.
        """
        self._land(now)
        self._sample(now, inclusive=True)
        n, by = dict(self._n), {family: dict(keys) for family, keys in self._by.items()}
        mismatch_max = self._mismatch_max
        for views in self._views.values():  # open disagreements end, for now, at `now`
            if not views.counted:
                continue
            hit = set(views.hit or ())
            for system, slot in views.slots.items():
                if slot.since is None:
                    continue
                span = now - slot.since
                _bump(n, "state_mismatches.total_duration", span)
                mismatch_max = max(mismatch_max, span)
                if span > self.mismatch_grace and system not in hit:
                    if not hit:
                        _bump(n, "state_mismatches")
                    hit.add(system)
                    _bump(by.setdefault("state_mismatches.by_system", {}), system)
        for case in self._cases.values():  # still held past the deadline
            if case.counted and not case.breached and case.arrivals and now > case.deadline:
                holder = max(case.arrivals.items(), key=lambda kv: (kv[1], kv[0]))[0]
                _bump(n, "sla_breaches")
                _bump(by.setdefault("sla_breaches.by_team", {}), holder)
        return self._metrics(now, n, by, mismatch_max), self._copy_series(), dict(self._examples)

    def _metrics(self, now: float, n: dict[str, float], by: dict[str, dict[str, float]],
                 mismatch_max: float) -> dict[str, float]:
        placed, cases = n.get("orders.placed", 0.0), n.get("exceptions", 0.0)
        hours = (now - self.warm_up) / 3600.0
        out: dict[str, float] = {
            name: n.get(name, 0.0) for name in (
                "orders.placed", "throughput", "orders_closed", "stuck_orders", "exceptions",
                "handoffs", "manual_overrides", "reviewer_errors", "state_mismatches",
                "state_mismatches.total_duration", "wrong_actions", "sla_breaches",
                "commands_refused", "unreviewed_irreversible", "gateway_timeouts")}
        out["throughput.per_hour"] = _rate(n.get("throughput", 0.0), hours)
        _ratio(out, "stuck_orders.rate", n.get("stuck_orders", 0.0), placed)
        _ratio(out, "exception_rate", cases, placed)
        _ratio(out, "bounce_rate", n.get("bounces", 0.0), cases)
        _ratio(out, "manual_overrides.rate", n.get("manual_overrides", 0.0),
               n.get("decisions", 0.0))
        _ratio(out, "state_mismatches.rate", n.get("state_mismatches", 0.0), placed)
        out["state_mismatches.max_duration"] = mismatch_max
        by.setdefault("state_mismatches.by_system", {})
        for system in self.systems:
            by["state_mismatches.by_system"].setdefault(system, 0.0)
        per_case = {"exception_rate.by_reason": placed, "bounce_rate.by_pair": cases}
        for family, keys in by.items():
            for key, count in keys.items():
                whole = per_case.get(family)
                out[f"{family}.{key}"] = count if whole is None else _rate(count, whole)
        for name, sketch in self._cycle.items():
            for p, q in zip(_PS, sketch.quantiles(_PS), strict=True):
                out[f"{name}.p{round(p * 100)}"] = q
        ages = self._stuck_age
        still = [now - o.entered for o in self._orders.values() if o.stuck_now and o.counted]
        if still:  # still stuck at the end: their age so far, in the result only
            ages = copy.deepcopy(ages)
            for age in still:
                ages.add(age)
        if ages.count:
            p50, p95 = ages.quantiles((0.5, 0.95))
            out["stuck_orders.age.p50"], out["stuck_orders.age.p95"] = p50, p95
            out["stuck_orders.age.max"] = ages.maximum()
        for name, team in self._teams.items():
            out[f"queue_length.{name}"] = team.queue.average(now)
            out[f"queue_length.{name}.max"] = team.queue.maximum(now)
            # Against the staff on duty, so at most 1; work past shifts apart.
            _ratio(out, f"utilisation.{name}", team.on_duty_busy.area(now),
                   team.staff.area(now))
            out[f"overtime.{name}"] = team.overtime.area(now) / 3600.0
            out[f"busy.{name}"] = team.busy.average(now)
            out[f"throughput_cases.{name}"] = team.counts.get("throughput_cases", 0.0)
        for name, (total, count) in self._team_time.items():
            out[f"time_in_team.{name}"] = total / count
        return dict(sorted(out.items()))

    def _copy_series(self) -> Series:
        return {name: list(points) for name, points in sorted(self._series.items())}
