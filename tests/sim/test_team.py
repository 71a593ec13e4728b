"""Support teams under the SimPy kernel: queueing, shifts, absences, decisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    CaseAssigned,
    CaseClosed,
    CaseDecided,
    CaseDecision,
    CaseWithdrawn,
    Dist,
    OrderTruth,
    Shift,
    SupportTeam,
    TeamConfig,
    TeamLoad,
    Window,
    right_decision,
)
from orderloom.runtime import Actor, Address, handler
from orderloom.simulation import SimKernel

H = 3600.0
DAY = 86400.0


class Recorder(Actor):
    """Keeps every decision it is sent, with its arrival time."""

    def __init__(self) -> None:
        self.got: list[tuple[float, CaseDecision]] = []

    @handler
    async def on_decision(self, msg: CaseDecision) -> None:
        self.got.append((self.ctx.now(), msg))


def _case(i: int, *, reason: str = "other", proposal: str = "release",
          options: tuple[str, ...] = ("release", "cancel"),
          history: tuple[str, ...] = ()) -> CaseAssigned:
    return CaseAssigned(
        order_id=f"o{i}", case_id=f"c{i}", reason=reason, team="ops", proposal=proposal,
        options=options, opened_at=0.0, deadline=DAY, history=history, notify=Address("rec"),
    )


def _world(config: TeamConfig, oracle: Callable[[str], OrderTruth] | None = None,
           seed: int = 0) -> tuple[SimKernel, list[tuple[float, Any]]]:
    kernel = SimKernel(seed=seed)
    events: list[tuple[float, Any]] = []
    kernel.add_sink(lambda t, addr, ev: events.append((t, ev)))
    kernel.spawn(lambda: SupportTeam(config, oracle), f"team/{config.name}")
    kernel.spawn(Recorder, "rec")
    return kernel, events


def _decisions(kernel: SimKernel) -> list[tuple[float, CaseDecision]]:
    rec = kernel.actor("rec")
    assert isinstance(rec, Recorder)
    return rec.got


def _times(kernel: SimKernel) -> dict[str, float]:
    return {d.case_id: t for t, d in _decisions(kernel)}


def _config(**kw: Any) -> TeamConfig:
    kw.setdefault("name", "ops")
    kw.setdefault("review", Dist.fixed(10.0))
    # These tests run the kernel until it is idle: no staffing ticks unless asked.
    kw.setdefault("track_staff", False)
    return TeamConfig(**kw)


def test_fifo_queue_and_staff_capacity_timeline() -> None:
    """Two reviewers take cases oldest first; the TeamLoad trace follows queue and busy counts."""
    kernel, events = _world(_config(shifts=(Shift(0, 24, 2),)))
    for i in range(5):
        kernel.tell("team/ops", _case(i))
    kernel.run()
    assert [(t, d.case_id, d.reviewer) for t, d in _decisions(kernel)] == [
        (10.0, "c0", "ops#1"), (10.0, "c1", "ops#2"), (20.0, "c2", "ops#1"),
        (20.0, "c3", "ops#2"), (30.0, "c4", "ops#1"),
    ]
    loads = [(t, e.queue_length, e.busy, e.staff) for t, e in events if isinstance(e, TeamLoad)]
    assert loads == [
        (0.0, 0, 0, 2), (0.0, 0, 1, 2), (0.0, 0, 2, 2), (0.0, 1, 2, 2), (0.0, 2, 2, 2),
        (0.0, 3, 2, 2), (10.0, 2, 2, 2), (10.0, 1, 2, 2), (20.0, 0, 2, 2), (20.0, 0, 1, 2),
        (30.0, 0, 0, 2),
    ]


def test_decision_telemetry_and_message_fields() -> None:
    """A decided case yields a CaseDecision to notify plus CaseDecided and CaseClosed telemetry."""
    kernel, events = _world(_config())
    kernel.tell("team/ops", _case(1, reason="policy_exception"))
    kernel.run()
    [(_, decision)] = _decisions(kernel)
    assert decision == CaseDecision(order_id="o1", case_id="c1", team="ops", reviewer="ops#1",
                                    decision="release", proposal="release")
    cases = [e for _, e in events if isinstance(e, (CaseDecided, CaseClosed))]
    assert cases == [
        CaseDecided(order_id="o1", case_id="c1", reason="policy_exception", team="ops",
                    reviewer="ops#1", proposal="release", decision="release", override=False),
        CaseClosed(order_id="o1", case_id="c1", reason="policy_exception", team="ops",
                   outcome="release"),
    ]


def test_no_work_outside_shift_and_pickup_at_shift_start() -> None:
    """Cases wait for the 9-17 shift; a case in hand at 17:00 is finished; later ones wait a day."""
    kernel, _ = _world(_config(shifts=(Shift(9, 17, 1),), review=Dist.fixed(600.0)))
    kernel.tell("team/ops", _case(0), delay=3 * H)
    kernel.tell("team/ops", _case(1), delay=16 * H + 55 * 60)
    kernel.tell("team/ops", _case(2), delay=16 * H + 58 * 60)
    kernel.run()
    assert _times(kernel) == {
        "c0": 9 * H + 600, "c1": 17 * H + 5 * 60, "c2": DAY + 9 * H + 600,
    }


def test_weekday_shifts_skip_the_weekend() -> None:
    """A weekday-only shift leaves a Saturday case until Monday morning (day 7)."""
    config = _config(shifts=(Shift(9, 17, 1, days=(0, 1, 2, 3, 4)),))
    kernel, _ = _world(config)
    kernel.tell("team/ops", _case(0), delay=5 * DAY + 10 * H)
    kernel.run()
    assert _times(kernel) == {"c0": 7 * DAY + 9 * H + 10}


def test_waiting_cases_are_picked_up_when_more_staff_comes_on() -> None:
    """A second shift starting at 9:00 takes a waiting case while the night reviewer is busy."""
    config = _config(shifts=(Shift(0, 24, 1), Shift(9, 17, 1)), review=Dist.fixed(2 * H))
    kernel, _ = _world(config)
    kernel.tell("team/ops", _case(0), delay=8 * H)
    kernel.tell("team/ops", _case(1), delay=8 * H)
    kernel.run()
    assert _times(kernel) == {"c0": 10 * H, "c1": 11 * H}


def test_absence_window_stops_new_work() -> None:
    """Nobody starts a case during an absence; the case in hand is finished, the queue waits."""
    config = _config(absences=(Window(start=100, end=500),), review=Dist.fixed(100.0))
    kernel, events = _world(config)
    kernel.tell("team/ops", _case(0), delay=50)
    kernel.tell("team/ops", _case(1), delay=60)
    kernel.tell("team/ops", _case(2), delay=150)
    kernel.run()
    assert _times(kernel) == {"c0": 150.0, "c1": 600.0, "c2": 700.0}
    assert (150.0, TeamLoad(order_id="", team="ops", queue_length=2, busy=0, staff=0)) in events


def test_overnight_shift_and_staffing_changes() -> None:
    """An overnight shift covers the small hours of the next day; next_change finds its edges."""
    config = _config(shifts=(Shift(22, 6, 3, days=(0,)),))
    assert config.staff_at(23 * H) == 3
    assert config.staff_at(DAY + 5 * H) == 3
    assert config.staff_at(DAY + 23 * H) == 0
    assert config.next_change(0.0) == 22 * H
    assert config.next_change(23 * H) == DAY + 6 * H
    assert config.next_change(23 * H, increase_only=True) == 7 * DAY + 22 * H
    assert _config(shifts=(Shift(9, 17, 0),)).next_change(0.0, increase_only=True) is None


def test_track_staff_reports_load_at_shift_edges() -> None:
    """With track_staff the team emits TeamLoad when a shift starts and ends, idle or not."""
    kernel, events = _world(_config(shifts=(Shift(9, 17, 2),), track_staff=True))
    kernel.run(until=DAY)
    loads = [(t, e.staff) for t, e in events if isinstance(e, TeamLoad)]
    assert loads == [(0.0, 0), (9 * H, 2), (17 * H, 0)]


def test_override_and_reassign_rates() -> None:
    """Over 2000 cases, reassign and override frequencies match their configured rates."""
    config = _config(shifts=(Shift(0, 24, 50),), override_rate=0.2, reassign_rate=0.1,
                     reassign_to=("fraud",), review=Dist.exponential(30.0))
    kernel, events = _world(config, seed=7)
    n = 2000
    for i in range(n):
        kernel.tell("team/ops", _case(i), delay=i * 5.0)
    kernel.run()
    decided = [e for _, e in events if isinstance(e, CaseDecided)]
    assert len(decided) == n
    kinds = Counter(e.decision for e in decided)
    assert abs(kinds["reassign"] / n - 0.1) < 0.025
    assert abs(kinds["cancel"] / n - 0.2) < 0.03
    assert all(e.override == (e.decision != "release") for e in decided)
    assert not any(e.erroneous for e in decided)
    handoffs = {d.handoff_to for _, d in _decisions(kernel) if d.decision == "reassign"}
    assert handoffs == {"fraud"}


def test_error_rate_against_the_oracle() -> None:
    """With an oracle, reviewers answer right except at the error rate, flagged erroneous."""
    def oracle(order_id: str) -> OrderTruth:
        return OrderTruth(fraudulent=int(order_id[1:]) % 3 == 0)

    config = _config(shifts=(Shift(0, 24, 50),), error_rate=0.1, override_rate=0.5)
    kernel, events = _world(config, oracle, seed=3)
    n = 2000
    for i in range(n):
        kernel.tell("team/ops", _case(i, reason="high_risk_of_fraud"), delay=i * 1.0)
    kernel.run()
    decided = [e for _, e in events if isinstance(e, CaseDecided)]
    assert len(decided) == n
    for e in decided:
        right = right_decision(e.reason, oracle(e.order_id))
        assert e.erroneous == (e.decision != right)
    assert abs(sum(e.erroneous for e in decided) / n - 0.1) < 0.02


def test_right_decisions() -> None:
    """The oracle settles fraud, duplicate and address cases and leaves judgement calls open."""
    assert right_decision("high_risk_of_fraud", OrderTruth(fraudulent=True)) == "cancel"
    assert right_decision("high_risk_of_fraud", OrderTruth()) == "release"
    assert right_decision("duplicate_order", OrderTruth(duplicate_of="o1")) == "cancel"
    assert right_decision("incorrect_address",
                          OrderTruth(address_ok=False, address_fixable=False)) == "cancel"
    assert right_decision("policy_exception", OrderTruth(fraudulent=True)) is None


def test_reassign_prefers_the_previous_team() -> None:
    """A reassigned case goes back to the team it came from (A→B→A); without one, to any target."""
    config = _config(reassign_rate=1.0, reassign_to=("fraud", "payments"), review=Dist.fixed(1))
    kernel, _ = _world(config, seed=1)
    for i in range(40):
        kernel.tell("team/ops", _case(i, history=("payments",)))
    for i in range(40, 80):
        kernel.tell("team/ops", _case(i, history=("customer-care",)))
    kernel.run()
    got = {d.case_id: d.handoff_to for _, d in _decisions(kernel)}
    assert {got[f"c{i}"] for i in range(40)} == {"payments"}
    assert {got[f"c{i}"] for i in range(40, 80)} == {"fraud", "payments"}


def test_withdrawn_cases_get_no_decision() -> None:
    """Withdrawing a queued case or one under review sends nothing; the reviewer takes the next."""
    kernel, events = _world(_config(review=Dist.fixed(100.0)))
    for i in range(3):
        kernel.tell("team/ops", _case(i))
    kernel.tell("team/ops", CaseWithdrawn(order_id="o1", case_id="c1"), delay=10)
    kernel.tell("team/ops", CaseWithdrawn(order_id="o0", case_id="c0"), delay=20)
    kernel.tell("team/ops", CaseWithdrawn(order_id="o9", case_id="c9"), delay=30)
    kernel.run()
    assert _times(kernel) == {"c2": 120.0}
    closed = [(t, e.case_id, e.outcome) for t, e in events if isinstance(e, CaseClosed)]
    assert closed == [(10.0, "c1", "withdrawn"), (20.0, "c0", "withdrawn"),
                      (120.0, "c2", "release")]


def test_duplicate_assignment_is_ignored() -> None:
    """A case re-sent while the team holds it is reviewed once; sent back later it is new."""
    kernel, _ = _world(_config())
    kernel.tell("team/ops", _case(0))
    kernel.tell("team/ops", _case(0), delay=5)
    kernel.tell("team/ops", _case(0), delay=50)
    kernel.run()
    assert [(t, d.case_id) for t, d in _decisions(kernel)] == [(10.0, "c0"), (60.0, "c0")]


def test_same_seed_same_decisions() -> None:
    """Two runs with one seed produce identical decisions and times."""
    def run() -> list[tuple[float, str, str]]:
        config = _config(override_rate=0.3, review=Dist.exponential(50.0),
                         shifts=(Shift(0, 24, 3),))
        kernel, _ = _world(config, seed=11)
        for i in range(50):
            kernel.tell("team/ops", _case(i), delay=i * 7.0)
        kernel.run()
        return [(t, d.case_id, d.decision) for t, d in _decisions(kernel)]

    assert run() == run()


@pytest.mark.parametrize("kwargs", [
    {"override_rate": 0.7, "reassign_rate": 0.4, "reassign_to": ("x",)},
    {"reassign_rate": 0.1, "reassign_to": ("ops",)},
    {"reassign_rate": 0.1},
    {"error_rate": 1.5},
    {"name": ""},
])
def test_bad_team_config_is_rejected(kwargs: dict[str, Any]) -> None:
    """Out-of-range rates, self-reassignment and missing targets are refused at construction."""
    with pytest.raises(ValueError):
        _config(**kwargs)


@pytest.mark.parametrize("args", [(24, 8, 1), (9, 9, 1), (9, 25, 1), (9, 17, -1),
                                  (9, 17, 1, (7,)), (9, 17, 1, ())])
def test_bad_shift_is_rejected(args: tuple[Any, ...]) -> None:
    """Hours outside the day, empty shifts, negative staff and bad weekdays are refused."""
    with pytest.raises(ValueError):
        Shift(*args)


def test_a_cases_review_time_and_decision_do_not_depend_on_other_cases() -> None:
    """Common random numbers: a review draws its time and decision from a stream
    keyed by the order, the reason and the hops, so cases another policy sends
    meanwhile change neither (given a free reviewer: queueing is their real effect)."""
    config = _config(shifts=(Shift(0, 24, 50),), review=Dist.exponential(600.0),
                     override_rate=0.3, reassign_rate=0.2, reassign_to=("fraud",))

    def reviewed(others: int) -> list[tuple[float, str, str | None]]:
        kernel, _ = _world(config, seed=8)
        for i in range(others):
            kernel.tell("team/ops", _case(100 + i, reason="fraud_review"))
        for i in range(6):
            kernel.tell("team/ops", _case(i), delay=5.0)
        kernel.run()
        return [(round(t, 9), d.decision, d.handoff_to) for t, d in _decisions(kernel)
                if int(d.order_id[1:]) < 100]

    alone = reviewed(0)
    assert len({d for _, d, _ in alone}) >= 2  # the draws do vary between cases
    assert reviewed(5) == alone
    assert reviewed(30) == alone


def test_an_orders_next_case_of_a_reason_is_a_fresh_draw() -> None:
    """The order numbers its cases of one reason (``visit``): its second such case
    draws anew, while the same visit of the same case draws the same."""
    config = _config(shifts=(Shift(0, 24, 50),), review=Dist.exponential(600.0))
    kernel, _ = _world(config, seed=8)
    first = _case(1)
    kernel.tell("team/ops", first)
    kernel.tell("team/ops", attrs.evolve(first, case_id="c1-again", visit=1))
    kernel.tell("team/ops", attrs.evolve(first, case_id="c1-next", visit=2))
    kernel.run()
    times = _times(kernel)
    assert times["c1"] == times["c1-again"]
    assert times["c1-next"] != times["c1"]
