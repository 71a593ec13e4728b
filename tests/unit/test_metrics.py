"""The metrics collector: hand-made telemetry streams in, exact health metrics out."""

from __future__ import annotations

from typing import Any

import pytest

from orderloom.actors import (
    CaseClosed,
    CaseDecided,
    CaseHandedOff,
    CaseOpened,
    CommandRefused,
    EventIgnored,
    MetricsCollector,
    OrderFinished,
    OrderStageEntered,
    OrderStuck,
    SystemViewChanged,
    SystemViewScheduled,
    TeamLoad,
    WrongAction,
)
from orderloom.actors.coordinator._streaming import QuantileSketch, StepAverage

Stream = list[tuple[float, object]]


def make(**kw: Any) -> MetricsCollector:
    args: dict[str, Any] = {"warm_up": 0.0, "horizon": 1000.0, "series_step": 100.0,
                            "systems": ("finance",), "teams": ("care",)}
    return MetricsCollector(**{**args, **kw})


def feed(c: MetricsCollector, stream: Stream) -> None:
    # A kernel emits in time order; a stable sort lets tests list events per case.
    for t, event in sorted(stream, key=lambda p: p[0]):
        c.on_emit(t, "test", event)


def placed(oid: str) -> OrderStageEntered:
    return OrderStageEntered(order_id=oid, stage="placed")


def enter(oid: str, stage: str, previous: str) -> OrderStageEntered:
    return OrderStageEntered(order_id=oid, stage=stage, previous=previous)


def done(oid: str, state: str = "closed") -> OrderFinished:
    return OrderFinished(order_id=oid, final_state=state, placed_at=0.0)


def stuck(oid: str, stage: str, reason: str, age: float) -> OrderStuck:
    return OrderStuck(order_id=oid, stage=stage, reason=reason, age=age, deadline=age)


def opened(oid: str, case: str, team: str = "A", reason: str = "fraud",
           deadline: float = 1e9) -> CaseOpened:
    return CaseOpened(order_id=oid, case_id=case, reason=reason, team=team,
                      deadline=deadline, proposal="release")


def handoff(oid: str, case: str, a: str, b: str) -> CaseHandedOff:
    return CaseHandedOff(order_id=oid, case_id=case, reason="fraud", from_team=a, to_team=b)


def decided(oid: str, case: str, team: str = "A", decision: str = "release",
            erroneous: bool = False, reason: str = "fraud") -> CaseDecided:
    return CaseDecided(order_id=oid, case_id=case, reason=reason, team=team,
                       reviewer=f"{team}#1", proposal="release", decision=decision,
                       override=decision != "release", erroneous=erroneous)


def closed(oid: str, case: str, team: str = "A", outcome: str = "release") -> CaseClosed:
    return CaseClosed(order_id=oid, case_id=case, reason="fraud", team=team, outcome=outcome)


def view(oid: str, system: str, status: str) -> SystemViewChanged:
    return SystemViewChanged(order_id=oid, system=system, status=status)


def due(oid: str, system: str, status: str, at: float) -> SystemViewScheduled:
    return SystemViewScheduled(order_id=oid, system=system, status=status, at=at)


def load(team: str, q: int, busy: int, staff: int) -> TeamLoad:
    return TeamLoad(order_id="", team=team, queue_length=q, busy=busy, staff=staff)


# -- orders, throughput, cycle times ----------------------------------------------------


def test_placed_throughput_and_final_states() -> None:
    """Placements, closed orders per hour and terminal states are counted per order."""
    c = make(horizon=3600.0)
    feed(c, [(0, placed("a")), (10, placed("b")), (20, placed("c")),
             (50, done("b", "canceled")), (100, done("a"))])
    m, _, _ = c.finish(3600.0)
    assert m["orders.placed"] == 3
    assert m["throughput"] == 1
    assert m["throughput.per_hour"] == 1.0
    assert m["orders_by_final_state.closed"] == 1
    assert m["orders_by_final_state.canceled"] == 1


def test_cycle_time_per_stage_and_end_to_end() -> None:
    """Each stage's duration runs to the next stage entered; end-to-end runs placed→closed."""
    c = make()
    stream: Stream = []
    for i, total in enumerate((100, 200, 300, 400, 500)):
        oid, t0 = f"o{i}", float(i)
        stream += [(t0, placed(oid)), (t0 + 10, enter(oid, "awaiting_payment", "placed")),
                   (t0 + 40, enter(oid, "ready_for_fulfillment", "awaiting_payment")),
                   (t0 + total, enter(oid, "closed", "ready_for_fulfillment")),
                   (t0 + total, done(oid))]
    feed(c, stream)
    m, _, _ = c.finish(1000.0)
    assert m["cycle_time.placed.p50"] == pytest.approx(10.0)
    assert m["cycle_time.awaiting_payment.p99"] == pytest.approx(30.0)
    assert m["cycle_time.ready_for_fulfillment.p50"] == pytest.approx(260.0)
    assert m["cycle_time.end_to_end.p50"] == pytest.approx(300.0)
    assert m["cycle_time.end_to_end.p95"] == pytest.approx(480.0)
    assert m["cycle_time.end_to_end.p99"] == pytest.approx(496.0)
    assert "cycle_time.closed.p50" not in m  # a terminal stage has no duration


def test_warm_up_excludes_orders_placed_before_it() -> None:
    """Orders placed before warm-up are left out of order metrics; placements at it count."""
    c = make(warm_up=100.0, horizon=3700.0)
    feed(c, [(50, placed("early")), (100, placed("b")), (150, placed("c")),
             (160, stuck("early", "placed", "no_progress", 110)),
             (170, opened("early", "k1")), (180, opened("c", "k2")),
             (200, enter("early", "closed", "placed")), (200, done("early")),
             (300, enter("b", "closed", "placed")), (300, done("b"))])
    m, _, _ = c.finish(3700.0)
    assert m["orders.placed"] == 2
    assert m["throughput"] == 1
    assert m["throughput.per_hour"] == 1.0  # one closed in the hour after warm-up
    assert m["stuck_orders"] == 0
    assert m["exceptions"] == 1 and m["exception_rate"] == 0.5
    assert m["cycle_time.end_to_end.p50"] == 200.0


# -- stuck orders -------------------------------------------------------------------------


def test_stuck_orders_distinct_by_stage_and_reason_with_ages() -> None:
    """Stuck counts distinct orders (per stage and reason); each stuck spell's age in
    its stage counts once: when the order moves on, or at the end if still stuck."""
    c = make()
    feed(c, [(0, placed("a")), (0, placed("b")), (0, placed("c")),
             (600, stuck("a", "placed", "no_progress", 600)),
             (650, stuck("b", "placed", "awaiting_payment", 300)),
             (800, enter("a", "awaiting_payment", "placed")),
             (900, stuck("a", "awaiting_payment", "no_progress", 100)),
             (950, stuck("a", "awaiting_payment", "no_progress", 200))])
    m, _, _ = c.finish(1000.0)
    assert m["stuck_orders"] == 2
    assert m["stuck_orders.rate"] == pytest.approx(2 / 3)
    assert m["stuck_orders.by_stage.placed"] == 2
    assert m["stuck_orders.by_stage.awaiting_payment"] == 1
    assert m["stuck_orders.by_reason.no_progress"] == 1
    assert m["stuck_orders.by_reason.awaiting_payment"] == 1
    # a: 800 s in placed (moved on at 800), then 200 s in awaiting_payment by
    # the end (reported twice, counted once); b: 1000 s in placed by the end.
    # Ages 200, 800, 1000: p50 at h=1, p95 at h=1.9.
    assert m["stuck_orders.age.p50"] == pytest.approx(800.0)
    assert m["stuck_orders.age.p95"] == pytest.approx(980.0)
    assert m["stuck_orders.age.max"] == 1000.0
    again, _, _ = c.finish(1000.0)  # the end-of-run ages are in the result only
    assert again["stuck_orders.age.max"] == 1000.0


def test_stuck_series_counts_orders_until_they_move_or_finish() -> None:
    """An order is stuck in the series from its report to its next stage or its
    finish; each point counts the spells in force in the interval ending at it."""
    c = make(horizon=600.0)
    feed(c, [(0, placed("a")), (0, placed("b")),
             (100, stuck("a", "placed", "no_progress", 100)),
             (150, stuck("b", "placed", "no_progress", 150)),
             (250, stuck("a", "placed", "no_progress", 250)),
             (300, enter("a", "awaiting_payment", "placed")),
             (400, done("b", "canceled"))])
    _, s, _ = c.finish(600.0)
    # (200, 300] held both until a moved on at 300; (300, 400] held b until 400.
    assert s["stuck_orders"] == [(0.0, 0.0), (100.0, 1.0), (200.0, 2.0), (300.0, 2.0),
                                 (400.0, 1.0), (500.0, 0.0), (600.0, 0.0)]


def test_a_stuck_spell_shorter_than_the_sample_step_shows_in_the_series() -> None:
    """A spell between two sample points, even one that ends at the instant it
    starts (flagged stuck, then put on hold), shows at the next point; two such
    spells in one interval count two, as they do in the metric."""
    c = make(horizon=400.0)
    feed(c, [(0, placed("a")), (0, placed("b")), (0, placed("c")),
             (120, stuck("a", "placed", "no_progress", 120)),
             (130, enter("a", "awaiting_payment", "placed")),
             (250, stuck("b", "placed", "no_progress", 250)),
             (250, enter("b", "on_hold", "placed")),
             (260, stuck("c", "placed", "no_progress", 260)),
             (260, enter("c", "on_hold", "placed"))])
    m, s, _ = c.finish(400.0)
    assert m["stuck_orders"] == 3
    assert s["stuck_orders"] == [(0.0, 0.0), (100.0, 0.0), (200.0, 1.0), (300.0, 2.0),
                                 (400.0, 0.0)]


# -- exceptions, bounces, overrides -----------------------------------------------------


def test_a_rate_with_nothing_to_divide_by_is_absent_not_zero() -> None:
    """With orders but no case, the exception rate is 0 and the bounce and
    override rates are left out (no case, no decision): absent is not zero."""
    c = make(warm_up=0.0, horizon=3600.0)
    feed(c, [(10, placed("a")), (20, enter("a", "closed", "placed")), (20, done("a"))])
    m, _, _ = c.finish(3600.0)
    assert m["exception_rate"] == 0.0 and m["stuck_orders.rate"] == 0.0
    assert "bounce_rate" not in m and "manual_overrides.rate" not in m
    empty, _, _ = make(warm_up=0.0, horizon=3600.0).finish(3600.0)
    assert not {"exception_rate", "stuck_orders.rate", "state_mismatches.rate"} & set(empty)


def test_exception_rate_by_reason_per_placed_order() -> None:
    """Cases opened per placed order, in total and by reason."""
    c = make()
    feed(c, [(0, placed(o)) for o in "abcd"] + [
        (1, opened("a", "k1", reason="fraud")), (1, opened("b", "k2", reason="fraud")),
        (1, opened("c", "k3", reason="incorrect_address"))])
    m, _, _ = c.finish(10.0)
    assert m["exceptions"] == 3
    assert m["exception_rate"] == 0.75
    assert m["exception_rate.by_reason.fraud"] == 0.5
    assert m["exception_rate.by_reason.incorrect_address"] == 0.25


def test_bounce_is_a_return_to_a_visited_team_not_an_onward_handoff() -> None:
    """A→B→A bounces once, A→B→C never, A→B→A→B twice; pairs are sorted team names."""
    c = make()
    feed(c, [(0, placed("o")),
             (1, opened("o", "k1", team="A")), (2, handoff("o", "k1", "A", "B")),
             (3, handoff("o", "k1", "B", "A")),
             (1, opened("o", "k2", team="A")), (2, handoff("o", "k2", "A", "B")),
             (3, handoff("o", "k2", "B", "C")),
             (1, opened("o", "k3", team="B")), (2, handoff("o", "k3", "B", "A")),
             (3, handoff("o", "k3", "A", "B")), (4, handoff("o", "k3", "B", "A")),
             (1, opened("o", "k4", team="C"))])
    m, _, _ = c.finish(10.0)
    assert m["handoffs"] == 7
    assert m["bounce_rate"] == 3 / 4
    assert m["bounce_rate.by_pair.A~B"] == 3 / 4
    assert not any(k.startswith("bounce_rate.by_pair.B-C") for k in m)


def test_overrides_exclude_reassignments() -> None:
    """An override departs from the proposal other than by reassigning; the rate is per
    decision on a proposal (a reassignment hands the case on, deciding nothing)."""
    c = make()
    feed(c, [(0, placed("o"))] + [(1, opened("o", k)) for k in ("k1", "k2", "k3", "k4")] + [
        (2, decided("o", "k1", team="A", decision="cancel", reason="fraud")),
        (2, decided("o", "k2", team="A", decision="reassign")),
        (2, decided("o", "k3", team="B", decision="release", erroneous=True)),
        (2, decided("o", "k4", team="B", decision="cancel", reason="duplicate_order"))])
    m, _, _ = c.finish(10.0)
    assert m["manual_overrides"] == 2
    assert m["manual_overrides.rate"] == pytest.approx(2 / 3)
    assert m["manual_overrides.by_reason.fraud"] == 1
    assert m["manual_overrides.by_reason.duplicate_order"] == 1
    assert m["manual_overrides.by_team.A"] == 1 and m["manual_overrides.by_team.B"] == 1
    assert m["reviewer_errors"] == 1


# -- state mismatches -------------------------------------------------------------------


def test_mismatch_intervals_late_downstream_and_out_of_order_recovery() -> None:
    """Disagreement runs from the coordinator's report until the system shows the same status."""
    c = make(systems=("finance", "crm"))
    feed(c, [(0, placed("o")),
             (0, view("o", "coordinator:finance", "a")), (0, view("o", "coordinator:crm", "x")),
             (0, view("o", "crm", "x")),  # caught up at once: zero-length, not a mismatch
             (5, view("o", "finance", "a")),  # late: 5 s
             (10, view("o", "coordinator:finance", "b")),
             (11, view("o", "coordinator:finance", "c")),
             (14, view("o", "finance", "c")),  # skipped "b": 4 s
             (20, view("o", "crm", "y")),  # ahead of the coordinator: 10 s
             (30, view("o", "coordinator:crm", "y")),
             (30, view("o", "support", "zzz"))])  # not a tracked system
    m, _, _ = c.finish(100.0)
    assert m["state_mismatches"] == 1
    assert m["state_mismatches.rate"] == 1.0
    assert m["state_mismatches.total_duration"] == 19.0
    assert m["state_mismatches.max_duration"] == 10.0
    assert m["state_mismatches.by_system.finance"] == 1
    assert m["state_mismatches.by_system.crm"] == 1


def test_downstream_report_before_the_coordinator_is_no_mismatch() -> None:
    """A system reporting first disagrees with nobody until the coordinator reports."""
    c = make()
    feed(c, [(0, placed("o")), (0, placed("p")),
             (1, view("o", "finance", "a")), (8, view("o", "coordinator:finance", "a"))])
    m, s, _ = c.finish(100.0)
    assert m["state_mismatches"] == 0
    assert m["state_mismatches.total_duration"] == 0.0
    assert m["state_mismatches.by_system.finance"] == 0
    assert all(v == 0.0 for _, v in s["state_mismatches"])


def test_mismatch_outlives_the_finish_until_the_system_catches_up() -> None:
    """Tracking continues after OrderFinished and drops the order once all systems agree."""
    c = make(horizon=400.0)
    feed(c, [(0, placed("o")), (0, view("o", "coordinator:finance", "a")),
             (0, view("o", "finance", "a")),
             (150, view("o", "coordinator:finance", "b")), (150, done("o"))])
    assert c.tracked() == {"orders": 0, "cases": 0, "views": 1}
    feed(c, [(320, view("o", "finance", "b"))])
    assert c.tracked()["views"] == 0
    m, s, _ = c.finish(400.0)
    assert m["state_mismatches"] == 1
    assert m["state_mismatches.total_duration"] == 170.0
    assert s["state_mismatches"] == [(0.0, 0.0), (100.0, 0.0), (200.0, 1.0), (300.0, 1.0),
                                     (400.0, 0.0)]


def test_open_mismatch_closes_at_finish_and_finish_is_repeatable() -> None:
    """A disagreement still open at the end counts up to now, and finish changes no state."""
    c = make(systems=("finance", "crm"))
    feed(c, [(0, placed("o")), (10, view("o", "coordinator:finance", "a")),
             (20, view("o", "coordinator:crm", "x")), (25, view("o", "crm", "x"))])
    first = c.finish(100.0)
    assert first[0]["state_mismatches.total_duration"] == 95.0
    assert first[0]["state_mismatches.max_duration"] == 90.0
    assert first[0]["state_mismatches.by_system.finance"] == 1
    assert first[0]["state_mismatches.by_system.crm"] == 1
    assert c.finish(100.0) == first


def test_mismatch_grace_counts_orders_only_past_it() -> None:
    """With a grace, short disagreements add duration but do not count the order."""
    c = make(mismatch_grace=3.0)
    feed(c, [(0, placed("o")), (0, placed("p")),
             (0, view("o", "coordinator:finance", "a")), (2, view("o", "finance", "a")),
             (0, view("p", "coordinator:finance", "a")), (5, view("p", "finance", "a"))])
    m, _, _ = c.finish(10.0)
    assert m["state_mismatches"] == 1
    assert m["state_mismatches.rate"] == 0.5
    assert m["state_mismatches.total_duration"] == 7.0


def test_an_announced_view_change_folds_as_a_change_at_its_time() -> None:
    """A system's SystemViewScheduled counts as its view changing at ``at``,
    between the events before and after it, and in the series."""
    c = make(horizon=400.0)
    feed(c, [(0, placed("o")), (0, view("o", "coordinator:finance", "a")),
             (10, due("o", "finance", "a", at=250.0)),
             (300, view("o", "coordinator:finance", "b"))])
    assert c.tracked()["views"] == 1
    m, s, _ = c.finish(400.0)
    assert m["state_mismatches"] == 1
    assert m["state_mismatches.total_duration"] == 250.0 + 100.0
    assert s["state_mismatches"] == [(0.0, 1.0), (100.0, 1.0), (200.0, 1.0), (300.0, 1.0),
                                     (400.0, 1.0)]
    late = make(horizon=400.0)  # the same change reported by the system when it happens
    feed(late, [(0, placed("o")), (0, view("o", "coordinator:finance", "a")),
                (250, view("o", "finance", "a")), (300, view("o", "coordinator:finance", "b"))])
    assert late.finish(400.0) == (m, s, {})


def test_an_overtaking_announcement_replaces_the_later_plan() -> None:
    """An announcement replaces what the system announced from its time on: an
    overtaken update never shows; an earlier one still lands first."""
    c = make()
    feed(c, [(0, placed("o")), (0, view("o", "coordinator:finance", "c")),
             (0, due("o", "finance", "a", at=20.0)),
             (1, due("o", "finance", "b", at=90.0)),  # overtaken by "c" below: never shows
             (2, due("o", "finance", "c", at=40.0)),
             (50, due("o", "finance", "c", at=50.0))])  # no lag: lands at once
    m, s, _ = c.finish(100.0)
    assert m["state_mismatches.total_duration"] == 40.0  # nothing, then "a", until "c" at 40
    assert m["state_mismatches.max_duration"] == 40.0
    assert s["state_mismatches"] == [(0.0, 1.0), (100.0, 0.0)]


def test_due_changes_land_at_finish_and_after_the_order_is_dropped_are_ignored() -> None:
    """finish applies the changes due by now (not later ones); a change due
    after every system agreed on a finished order finds it dropped."""
    c = make(systems=("finance", "crm"))
    feed(c, [(0, placed("o")), (0, view("o", "coordinator:finance", "a")),
             (0, due("o", "finance", "a", at=60.0)), (0, due("o", "finance", "z", at=500.0)),
             (0, placed("p")), (0, view("p", "coordinator:crm", "x")),
             (1, due("p", "crm", "x", at=5.0)), (2, due("p", "crm", "y", at=30.0)),
             (3, done("p"))])
    first = c.finish(100.0)
    m = first[0]
    assert m["state_mismatches.total_duration"] == 60.0 + 5.0  # "y" finds "p" dropped at 5
    assert m["state_mismatches.by_system.crm"] == 1
    assert c.tracked()["views"] == 1
    assert c.finish(100.0) == first


# -- teams, SLAs ------------------------------------------------------------------------


def test_queue_time_average_max_and_utilisation_from_a_step_function() -> None:
    """Queue and utilisation are time-averages over [warm_up, now] of the TeamLoad
    steps; a team no one staffed has no utilisation (absent, not 0)."""
    c = make(warm_up=100.0, horizon=500.0, teams=("care", "idle"))
    feed(c, [(0, load("care", 10, 1, 2)), (50, load("care", 4, 1, 2)),
             (200, load("care", 2, 2, 2)), (300, load("care", 0, 0, 1)),
             (400, load("care", 6, 1, 1))])
    m, s, _ = c.finish(500.0)
    assert m["queue_length.care"] == 3.0  # (4 + 2 + 0 + 6) * 100 / 400
    assert m["queue_length.care.max"] == 6.0  # the 10 was before warm-up
    assert m["utilisation.care"] == pytest.approx(400 / 600)
    assert m["queue_length.idle"] == 0.0 and "utilisation.idle" not in m
    assert s["queue_length.care"] == [(0.0, 10.0), (100.0, 4.0), (200.0, 2.0), (300.0, 0.0),
                                      (400.0, 6.0), (500.0, 6.0)]
    assert s["queue_length.idle"] == [(t, 0.0) for t in (0.0, 100.0, 200.0, 300.0, 400.0, 500.0)]


def test_reviews_past_a_shift_are_overtime_not_utilisation() -> None:
    """Busy reviewers beyond the staff on duty (a review running past a shift's
    end) count as overtime, in reviewer-hours; utilisation stays at most 1."""
    c = make(warm_up=0.0, horizon=7200.0, teams=("fraud",))
    feed(c, [(0, load("fraud", 3, 2, 2)), (3600, load("fraud", 3, 2, 1)),
             (5400, load("fraud", 0, 0, 1))])
    m, _, _ = c.finish(7200.0)
    # On duty: 2 for 1 h, 1 for 1 h = 3 reviewer-hours; busy on duty 2 h + 0.5 h.
    assert m["utilisation.fraud"] == pytest.approx(2.5 / 3.0)
    assert m["overtime.fraud"] == pytest.approx(0.5)  # one review ran 30 min past
    assert m["busy.fraud"] == pytest.approx((2 * 3600 + 2 * 1800) / 7200)


def test_team_seen_late_gets_a_series_aligned_with_the_others() -> None:
    """A team first seen mid-run gets zeros at the earlier grid points."""
    c = make(horizon=300.0)
    feed(c, [(150, load("late", 3, 0, 0))])
    _, s, _ = c.finish(300.0)
    assert s["queue_length.late"] == [(0.0, 0.0), (100.0, 0.0), (200.0, 3.0), (300.0, 3.0)]
    assert len(s["queue_length.care"]) == 4


def test_a_series_grid_starts_where_the_collector_says() -> None:
    """A live fold starts its grid at its own start (an epoch time), not at 0:
    its first event records one point, not one per step since 1970; a team
    seen late aligns with that grid."""
    start = 1_700_000_000.0
    c = make(warm_up=start, horizon=start + 300.0, series_start=start)
    feed(c, [(start + 150, placed("a")), (start + 150, load("late", 3, 0, 0))])
    _, s, _ = c.finish(start + 300.0)
    grid = [start, start + 100.0, start + 200.0, start + 300.0]
    assert [t for t, _ in s["stuck_orders"]] == grid
    assert s["queue_length.late"] == [(start, 0.0), (start + 100.0, 0.0),
                                      (start + 200.0, 3.0), (start + 300.0, 3.0)]
    with pytest.raises(ValueError, match="series_start"):
        make(warm_up=0.0, series_start=10.0)


def test_a_live_processs_fold_keeps_no_views_and_no_grid_before_its_start() -> None:
    """serve's fold: the coordinator's view changes are not kept (no downstream
    side ever reaches it), and its grid starts at the process's start."""
    start = 1_700_000_000.0
    c = MetricsCollector.for_live_process(start, ("care",))
    feed(c, [(start + 5, placed("a")), (start + 6, view("a", "coordinator:finance", "paid"))])
    assert c.tracked() == {"orders": 1, "cases": 0, "views": 0}
    metrics, s, _ = c.finish(start + 10)
    assert metrics["state_mismatches"] == 0
    assert s["stuck_orders"] == [(start, 0.0)]


def test_time_in_team_and_team_throughput() -> None:
    """Time in team runs from arrival (opened or handed to) to that team's decision or close."""
    c = make(warm_up=5.0)
    feed(c, [(0, placed("o")), (0, opened("o", "k0")), (8, decided("o", "k0")),
             (10, opened("o", "k1", team="A")),
             (40, decided("o", "k1", team="A", decision="reassign")),
             (40, closed("o", "k1", team="A", outcome="reassign")),
             (41, handoff("o", "k1", "A", "B")),
             (61, decided("o", "k1", team="B")), (61, closed("o", "k1", team="B")),
             (70, opened("o", "k2", team="B")),
             (80, closed("o", "k2", team="B", outcome="withdrawn"))])
    m, _, _ = c.finish(100.0)
    assert m["throughput_cases.A"] == 2  # k0 decided at 8 (after warm-up) and k1
    assert m["throughput_cases.B"] == 1
    assert m["time_in_team.A"] == 30.0  # k0 arrived before warm-up
    assert m["time_in_team.B"] == 15.0  # (20 + 10) / 2


def test_sla_breaches_late_decisions_and_cases_open_past_deadline() -> None:
    """A case breaches once: decided or closed after its deadline, or still held past it."""
    c = make()
    feed(c, [(0, placed("o")),
             (0, opened("o", "on_time", deadline=100)), (90, decided("o", "on_time")),
             (0, opened("o", "late", team="B", deadline=100)),
             (150, decided("o", "late", team="B")),
             (0, opened("o", "twice", deadline=100)),
             (120, decided("o", "twice", decision="reassign")),
             (120, closed("o", "twice", outcome="reassign")),
             (121, handoff("o", "twice", "A", "C")), (180, decided("o", "twice", team="C")),
             (0, opened("o", "open", deadline=100)), (50, handoff("o", "open", "A", "C")),
             (0, opened("o", "open_ok", deadline=300))])
    m, _, _ = c.finish(200.0)
    assert m["sla_breaches"] == 3
    assert m["sla_breaches.by_team.B"] == 1
    assert m["sla_breaches.by_team.A"] == 1  # "twice", at its late reassignment
    assert m["sla_breaches.by_team.C"] == 1  # "open": C holds it (arrived last)


# -- counts, examples, robustness -------------------------------------------------------


def test_wrong_actions_by_invariant_with_first_example_even_in_warm_up() -> None:
    """Wrong actions are counted over the whole run; the example is the first order."""
    c = make(warm_up=100.0)
    feed(c, [(10, WrongAction(order_id="o1", invariant="never_ship_unpaid", detail="")),
             (200, WrongAction(order_id="o2", invariant="never_ship_unpaid", detail="")),
             (300, WrongAction(order_id="o3", invariant="refund_once", detail=""))])
    m, _, ex = c.finish(400.0)
    assert m["wrong_actions"] == 3
    assert m["wrong_actions.never_ship_unpaid"] == 2
    assert m["wrong_actions.refund_once"] == 1
    assert ex == {"never_ship_unpaid": "o1", "refund_once": "o3"}


def test_ignored_events_and_refused_commands_after_warm_up() -> None:
    """Ignored events by outcome and refused commands count from warm-up on."""
    c = make(warm_up=100.0)

    def ignored(outcome: str) -> EventIgnored:
        return EventIgnored(order_id="o", event_type="X", event_id="e", source="s",
                            outcome=outcome)

    refused = CommandRefused(order_id="o", command_type="Ship", issued_by="x", reason="r")
    feed(c, [(50, ignored("stale")), (150, ignored("stale")), (150, ignored("duplicate")),
             (160, ignored("duplicate")), (50, refused), (170, refused)])
    m, _, _ = c.finish(200.0)
    assert m["events_ignored.stale"] == 1
    assert m["events_ignored.duplicate"] == 2
    assert m["commands_refused"] == 1


def test_foreign_events_and_unknown_orders_are_ignored() -> None:
    """Non-telemetry objects and events for never-placed orders leave the metrics at zero."""
    c = make()
    feed(c, [(1, object()), (2, "text"), (3, stuck("ghost", "placed", "no_progress", 5)),
             (4, done("ghost")), (5, opened("ghost", "k")), (6, view("ghost", "finance", "a"))])
    m, _, _ = c.finish(10.0)
    assert m["stuck_orders"] == 0 and m["exceptions"] == 0 and m["throughput"] == 0
    assert c.tracked() == {"orders": 0, "cases": 0, "views": 0}


def test_per_order_state_is_dropped_after_ten_thousand_finished_orders() -> None:
    """After 10,000 finished orders (with cases and views) no per-order state remains."""
    c = make(horizon=1e6)
    for i in range(10_000):
        oid, t = f"o{i}", float(i)
        feed(c, [(t, placed(oid)), (t, view(oid, "coordinator:finance", "a")),
                 (t, opened(oid, f"k{i}")), (t, stuck(oid, "placed", "no_progress", 1)),
                 (t + 0.5, decided(oid, f"k{i}")), (t + 0.5, closed(oid, f"k{i}")),
                 (t + 0.5, view(oid, "finance", "a")),
                 (t + 0.5, enter(oid, "closed", "placed")), (t + 0.5, done(oid))])
    assert c.tracked() == {"orders": 0, "cases": 0, "views": 0}
    m, s, _ = c.finish(10_000.0)
    assert m["throughput"] == 10_000 and m["state_mismatches"] == 10_000
    assert len(s["stuck_orders"]) == 101


def test_case_held_by_a_team_after_its_order_finished_is_kept_until_released() -> None:
    """A stale copy at an escalating team keeps the case until that team lets it go."""
    c = make()
    feed(c, [(0, placed("o")), (0, opened("o", "k")), (5, handoff("o", "k", "A", "B")),
             (9, decided("o", "k", team="B")), (9, closed("o", "k", team="B")),
             (10, enter("o", "closed", "placed")), (10, done("o"))])
    assert c.tracked()["cases"] == 1
    feed(c, [(30, decided("o", "k", team="A")), (30, closed("o", "k", team="A"))])
    assert c.tracked()["cases"] == 0
    m, _, _ = c.finish(40.0)
    assert m["time_in_team.A"] == 30.0 and m["time_in_team.B"] == 4.0


# -- the streaming accumulators ----------------------------------------------------------


def test_quantile_sketch_is_exact_up_to_capacity() -> None:
    """Below capacity the quantiles interpolate the exact order statistics."""
    sketch = QuantileSketch(capacity=100)
    for x in (5.0, 1.0, 4.0, 2.0, 3.0):
        sketch.add(x)
    assert sketch.exact
    assert sketch.quantiles((0.0, 0.25, 0.5, 1.0)) == (1.0, 2.0, 3.0, 5.0)
    assert sketch.mean() == 3.0 and sketch.maximum() == 5.0


def test_quantile_sketch_reservoir_is_bounded_and_deterministic() -> None:
    """Past capacity it keeps a fixed-size sample, the same one for the same stream."""
    def run() -> QuantileSketch:
        sketch = QuantileSketch(capacity=50)
        for i in range(10_000):
            sketch.add(float(i))
        return sketch

    a, b = run(), run()
    assert not a.exact and a.count == 10_000 and len(a._values) == 50
    assert a.maximum() == 9999.0 and a.mean() == 4999.5
    assert a.quantiles((0.5,)) == b.quantiles((0.5,))
    assert 3000.0 < a.quantiles((0.5,))[0] < 7000.0


def test_step_average_integrates_from_the_window_start() -> None:
    """Values in force before the window count only from its start."""
    avg = StepAverage(10.0)
    avg.set(0.0, 2.0)
    avg.set(20.0, 4.0)
    assert avg.area(30.0) == 60.0
    assert avg.average(30.0) == 3.0
    assert avg.maximum(30.0) == 4.0


def test_stuck_and_mismatch_series_count_the_orders_their_metrics_count() -> None:
    """An order placed in the warm-up is in neither the stuck nor the mismatch
    series, as it is in neither metric; one placed after it is in both."""
    c = make(warm_up=50.0, horizon=300.0)
    feed(c, [(0, placed("early")), (60, placed("late")),
             (110, stuck("early", "placed", "no_progress", 110)),
             (120, stuck("late", "placed", "no_progress", 60)),
             (130, view("early", "coordinator:finance", "a")),
             (140, view("late", "coordinator:finance", "a"))])
    m, s, _ = c.finish(300.0)
    assert m["stuck_orders"] == 1 and m["state_mismatches"] == 1
    assert s["stuck_orders"] == [(0.0, 0.0), (100.0, 0.0), (200.0, 1.0), (300.0, 1.0)]
    assert s["state_mismatches"] == [(0.0, 0.0), (100.0, 0.0), (200.0, 1.0), (300.0, 1.0)]
