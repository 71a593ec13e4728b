"""The review desk actor: people decide a team's cases in its place (SimPy kernel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    DESK_KEEP_CLOSED,
    ActOnCase,
    CaseAssigned,
    CaseStatus,
    CaseWithdrawn,
    Decision,
    DeskAction,
    DeskAnswer,
    DeskCase,
    DeskCaseDecided,
    DeskCaseReceived,
    DeskResult,
    Lifecycle,
    MetricsCollector,
    ReviewDesk,
    evolve_desk,
    is_bounce,
    journal_codec,
    journal_type_version,
)
from orderloom.actors.order import _messages as m
from orderloom.runtime import MemoryStore, Store, export_journal
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import SimKernel, read_recording

from ..desk import SPECS, act, desk_world


_ANSWERS: dict[int, dict[str, DeskAnswer]] = {}


def _world(store: Store | None = None, **kw: Any) -> tuple[SimKernel, Store]:
    kernel, journals = SimKernel(seed=1), store or MemoryStore()
    answers = _ANSWERS.setdefault(id(kernel), {})
    kernel.add_sink(lambda t, a, e: answers.__setitem__(e.request_id, e)
                    if isinstance(e, DeskAnswer) else None)
    desk_world(kernel, journals, **kw)
    kernel.run(600.0)
    return kernel, journals


def _answers(kernel: SimKernel) -> dict[str, DeskAnswer]:
    """The desk's answers, as emitted after each turn's commit, by request id."""
    return _ANSWERS[id(kernel)]


def _desk(kernel: SimKernel, team: str = "fraud") -> ReviewDesk:
    desk = kernel.actor(f"team/{team}")
    assert isinstance(desk, ReviewDesk)
    return desk


def _case_of(kernel: SimKernel, order_id: str, team: str = "fraud") -> DeskCase:
    (case,) = [c for c in _desk(kernel, team).book.cases.values() if c.case.order_id == order_id]
    return case


def _journal(store: Store, order_id: str) -> list[Any]:
    return [r.event for r in store.journal(f"order/{order_id}")]


def test_cases_wait_at_the_desk_with_their_proposal_and_options() -> None:
    """Held orders' cases reach the desk and stay open until a person acts."""
    kernel, _ = _world()
    kernel.run(6000.0)
    book = _desk(kernel).book
    assert sorted((c.case.order_id, c.case.reason, c.case.proposal, c.status)
                  for c in book.open_cases()) == [
        ("f1", "high_risk_of_fraud", Decision.CANCEL, CaseStatus.OPEN),
        ("f2", "high_risk_of_fraud", Decision.CANCEL, CaseStatus.OPEN)]
    assert {kernel.actor(f"order/{s.order_id}").order.lifecycle  # type: ignore[attr-defined]
            for s in SPECS} == {Lifecycle.ON_HOLD}


def test_approve_carries_out_the_proposal_and_the_order_journals_who_and_why() -> None:
    """Approving a proposed cancel cancels the order; its journal names the person and reason."""
    kernel, store = _world()
    case = _case_of(kernel, "f1")
    kernel.tell("team/fraud", act(case.case.case_id, DeskAction.APPROVE, "alice", "stolen card"))
    kernel.run(3000.0)
    assert kernel.actor("order/f1").order.lifecycle is Lifecycle.CANCELED  # type: ignore[attr-defined]
    (asked,) = [e for e in _journal(store, "f1") if isinstance(e, m.CancellationRequested)]
    assert (asked.requested_by, asked.note) == ("alice", "stolen card")
    after = _case_of(kernel, "f1")
    assert (after.status, after.decided_by, after.decision) == (
        CaseStatus.DECIDED, "alice", Decision.CANCEL)
    assert _answers(kernel)["r1"].result is DeskResult.DONE


def test_override_releases_the_hold_with_who_what_and_why_in_the_journal() -> None:
    """An override is a release by the person, with the decision and their note journaled."""
    kernel, store = _world()
    case = _case_of(kernel, "f2")
    kernel.tell("team/fraud", act(case.case.case_id, DeskAction.OVERRIDE, "bob",
                                  "known customer", decision=Decision.RELEASE))
    kernel.run(6000.0)
    (released,) = [e for e in _journal(store, "f2") if isinstance(e, m.HoldReleased)]
    assert (released.released_by, released.decision, released.note) == (
        "bob", Decision.RELEASE, "known customer")
    order = kernel.actor("order/f2").order  # type: ignore[attr-defined]
    assert order.lifecycle not in (Lifecycle.ON_HOLD, Lifecycle.CANCELED)
    assert order.hold(case.case.case_id).note == "known customer"


def test_a_decided_case_refuses_further_actions() -> None:
    """After a decision, approve, override, reassign and note are all refused as closed."""
    kernel, store = _world()
    case_id = _case_of(kernel, "f2").case.case_id
    kernel.tell("team/fraud", act(case_id, DeskAction.OVERRIDE, "bob", "ok",
                                  decision=Decision.RELEASE))
    kernel.run(700.0)
    for i, action in enumerate(DeskAction):
        kernel.tell("team/fraud", ActOnCase(
            request_id=f"again-{i}", case_id=case_id, action=action, by="carol", why="again",
            decision=Decision.CANCEL if action is DeskAction.OVERRIDE else None,
            to="customer-care" if action is DeskAction.REASSIGN else None))
    kernel.run(3000.0)
    answers = _answers(kernel)
    assert [answers[f"again-{i}"].result for i in range(4)] == [DeskResult.CLOSED] * 4
    assert len([e for e in _journal(store, "f2") if isinstance(e, m.HoldReleased)]) == 1


def test_notes_keep_the_case_open_and_join_its_history() -> None:
    """A note is history, not a decision."""
    kernel, _ = _world()
    case_id = _case_of(kernel, "f1").case.case_id
    kernel.tell("team/fraud", act(case_id, DeskAction.NOTE, "alice", "calling the bank"))
    kernel.run(700.0)
    case = _case_of(kernel, "f1")
    assert case.status is CaseStatus.OPEN
    assert [(e.what, e.by, e.note) for e in case.history] == [
        ("received", "automation", ""), ("note", "alice", "calling the bank")]


def test_invalid_actions_are_answered_and_change_nothing() -> None:
    """An override to the proposal, or a reassignment to the desk itself, is refused."""
    kernel, _ = _world()
    case_id = _case_of(kernel, "f1").case.case_id
    kernel.tell("team/fraud", act(case_id, DeskAction.OVERRIDE, "a", "x",
                                  decision=Decision.CANCEL, request_id="same"))
    kernel.tell("team/fraud", act(case_id, DeskAction.REASSIGN, "a", "x", to="fraud",
                                  request_id="self"))
    kernel.tell("team/fraud", act("nope", DeskAction.APPROVE, request_id="unknown"))
    kernel.run(700.0)
    answers = _answers(kernel)
    assert (answers["same"].result, answers["self"].result, answers["unknown"].result) == (
        DeskResult.INVALID, DeskResult.INVALID, DeskResult.UNKNOWN_CASE)
    assert answers["same"].detail.startswith("decision:")
    assert answers["self"].detail.startswith("to:")
    assert _case_of(kernel, "f1").status is CaseStatus.OPEN


def test_reassign_there_and_back_is_one_bounce() -> None:
    """fraud -> customer-care -> fraud: the case returns as a new visit; only the way back bounces."""
    kernel, store = _world(desks=("fraud", "customer-care"))
    case_id = _case_of(kernel, "f1").case.case_id
    kernel.tell("team/fraud", act(case_id, DeskAction.REASSIGN, "alice", "not fraud",
                                  to="customer-care"))
    kernel.run(700.0)
    moved = _case_of(kernel, "f1", "customer-care")
    assert moved.status is CaseStatus.OPEN and moved.case.history == ("fraud",)
    assert not is_bounce((), "customer-care") and is_bounce(moved.case.history, "fraud")
    assert not is_bounce(("payments-ops",), "fraud")  # A->B->C is no bounce
    kernel.tell("team/customer-care", act(case_id, DeskAction.REASSIGN, "bob", "it is fraud",
                                          to="fraud", request_id="r2"))
    kernel.run(800.0)
    back = _case_of(kernel, "f1")
    assert back.status is CaseStatus.OPEN and back.case.history == ("fraud", "customer-care")
    assert [e.what for e in back.history] == ["received", "reassign", "received"]
    assert _case_of(kernel, "f1", "customer-care").status is CaseStatus.REASSIGNED
    handoffs = [(e.from_team, e.to_team, e.by, e.note) for e in _journal(store, "f1")
                if isinstance(e, m.HoldHandedOff)]
    assert handoffs == [("fraud", "customer-care", "alice", "not fraud"),
                        ("customer-care", "fraud", "bob", "it is fraud")]


def test_a_withdrawn_case_refuses_actions() -> None:
    """The order withdrew the case: the desk closes it and refuses a decision."""
    kernel, _ = _world()
    case = _case_of(kernel, "f1").case
    kernel.tell("team/fraud", CaseWithdrawn(order_id=case.order_id, case_id=case.case_id))
    kernel.run(700.0)
    kernel.tell("team/fraud", act(case.case_id, DeskAction.APPROVE))
    kernel.run(800.0)
    assert _case_of(kernel, "f1").status is CaseStatus.WITHDRAWN
    assert _answers(kernel)["r1"].result is DeskResult.CLOSED


def test_a_case_resent_while_open_is_kept_once() -> None:
    """A re-sent CaseAssigned does not reset the case or its history."""
    kernel, _ = _world()
    held = _case_of(kernel, "f1")
    kernel.tell("team/fraud", act(held.case.case_id, DeskAction.NOTE, "alice", "looking"))
    kernel.run(700.0)
    kernel.tell("team/fraud", held.case)
    kernel.run(800.0)
    assert [e.what for e in _case_of(kernel, "f1").history] == ["received", "note"]
    assert isinstance(held.case, CaseAssigned)


def test_a_restarted_desk_has_the_same_cases_from_its_journal(tmp_path: Path) -> None:
    """Stopped and started again on a durable store, the desk shows the same
    open and decided cases, and a restored case can still be decided."""
    with SqliteStore(tmp_path / "desk.db", journal_codec()) as store:
        kernel, _ = _world(store)
        decided = _case_of(kernel, "f2").case.case_id
        kernel.tell("team/fraud", act(decided, DeskAction.OVERRIDE, "bob", "known customer",
                                      decision=Decision.RELEASE))
        kernel.tell("team/fraud", act(_case_of(kernel, "f1").case.case_id, DeskAction.NOTE,
                                      "alice", "calling the bank", request_id="r2"))
        kernel.run(700.0)
        before = dict(_desk(kernel).book.cases)
        kernel.stop("team/fraud")
        kernel.run(710.0)
        assert not kernel.is_running("team/fraud")
        kernel.spawn(lambda: ReviewDesk("fraud", store), "team/fraud")
        kernel.run(720.0)
        restored = _desk(kernel)
        assert dict(restored.book.cases) == before
        assert [c.case.order_id for c in restored.book.open_cases()] == ["f1"]
        open_id = _case_of(kernel, "f1").case.case_id
        kernel.tell("team/fraud", act(open_id, DeskAction.APPROVE, "alice", "confirmed",
                                      request_id="r3"))
        kernel.run(4000.0)
        assert kernel.actor("order/f1").order.lifecycle is Lifecycle.CANCELED  # type: ignore[attr-defined]


@pytest.mark.parametrize("fields", [
    {"action": DeskAction.OVERRIDE}, {"action": DeskAction.OVERRIDE, "decision": Decision.REASSIGN},
    {"action": DeskAction.REASSIGN}, {"action": DeskAction.NOTE}, {"action": DeskAction.APPROVE,
                                                                   "by": " "},
])
def test_act_on_case_refuses_incomplete_commands(fields: dict[str, Any]) -> None:
    """An override without a decision, a reassign without a team, an empty note or principal."""
    base: dict[str, Any] = {"request_id": "r", "case_id": "c", "by": "alice", **fields}
    with pytest.raises(ValueError):
        ActOnCase(**base)


def test_the_desks_decisions_fold_into_the_simulators_metrics() -> None:
    """Decisions, overrides, the A->B->A bounce and the desk's queue reach the
    same metrics fold the simulator uses."""
    kernel, store = SimKernel(seed=1), MemoryStore()
    collector = MetricsCollector(warm_up=0.0, horizon=9000.0, series_step=100.0)
    kernel.add_sink(collector.on_emit)
    desk_world(kernel, store, desks=("fraud", "customer-care"))
    kernel.run(600.0)
    f1, f2 = (_case_of(kernel, o).case.case_id for o in ("f1", "f2"))
    kernel.tell("team/fraud", act(f2, DeskAction.OVERRIDE, "bob", "known customer",
                                  decision=Decision.RELEASE))
    kernel.tell("team/fraud", act(f1, DeskAction.REASSIGN, "alice", "not ours",
                                  to="customer-care", request_id="r2"))
    kernel.run(1200.0)
    kernel.tell("team/customer-care", act(f1, DeskAction.REASSIGN, "bob", "fraud after all",
                                          to="fraud", request_id="r3"))
    kernel.run(1800.0)
    kernel.tell("team/fraud", act(f1, DeskAction.APPROVE, "alice", "stolen card",
                                  request_id="r4"))
    kernel.run(9000.0)
    metrics, _, _ = collector.finish(kernel.now())
    assert (metrics["manual_overrides"], metrics["bounce_rate"]) == (1.0, 0.5)
    assert metrics["queue_length.fraud.max"] == 2.0
    assert metrics["throughput_cases.fraud"] == 3.0  # f2's override, f1's handoff, f1's approval


def test_a_decided_case_sent_again_stays_decided() -> None:
    """The order re-sends a stuck case to its owners: a case decided here is not reopened."""
    kernel, _ = _world()
    held = _case_of(kernel, "f1")
    kernel.tell("team/fraud", act(held.case.case_id, DeskAction.APPROVE, "alice", "stolen"))
    kernel.run(700.0)
    kernel.tell("team/fraud", held.case)
    kernel.run(800.0)
    after = _case_of(kernel, "f1")
    assert after.status is CaseStatus.DECIDED
    assert [e.what for e in after.history] == ["received", "approve"]


def test_the_book_keeps_closed_cases_a_week_and_open_ones_for_good() -> None:
    """A closed case leaves the book when a case arrives more than DESK_KEEP_CLOSED
    after its last entry; an open one stays however old: the book is bounded
    by a week of arrivals, not by the desk's whole life."""
    kernel, _ = _world()
    f1, f2 = _case_of(kernel, "f1").case, _case_of(kernel, "f2").case
    book = _desk(kernel).book
    book = evolve_desk(book, DeskCaseDecided(
        case_id=f1.case_id, action=DeskAction.APPROVE, by="alice", note="", at=1000.0,
        decision=f1.proposal))
    later = attrs.evolve(f1, case_id="later-1")
    kept = evolve_desk(book, DeskCaseReceived(case=later, at=1000.0 + DESK_KEEP_CLOSED))
    assert set(kept.cases) == {f1.case_id, f2.case_id, "later-1"}
    gone = evolve_desk(book, DeskCaseReceived(case=later, at=1000.1 + DESK_KEEP_CLOSED))
    assert set(gone.cases) == {f2.case_id, "later-1"}  # f2 is still open


def test_a_journal_export_with_the_desks_journal_reads_back_for_replay(tmp_path: Path) -> None:
    """The desk's journal and the decisions' v2 order events export and read
    back as a replay recording: people's decisions are not customer actions."""
    kernel, store = _world()
    kernel.tell("team/fraud", act(_case_of(kernel, "f1").case.case_id, DeskAction.APPROVE,
                                  "alice", "stolen card"))
    kernel.tell("team/fraud", act(_case_of(kernel, "f2").case.case_id, DeskAction.OVERRIDE,
                                  "bob", "known", decision=Decision.RELEASE, request_id="r2"))
    kernel.run(6000.0)
    path = tmp_path / "journal.jsonl"
    with path.open("w", encoding="utf-8") as out:
        lines = export_journal(store, journal_codec(), out, type_version=journal_type_version)
    exported = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    desk_types = {d["type"] for d in exported if d["address"] == "team/fraud"}
    assert desk_types == {"DeskCaseReceived", "DeskCaseDecided"}
    assert {(d["type"], d["type_version"]) for d in exported
            if d["type"] in ("HoldReleased", "CancellationRequested")} == {
        ("HoldReleased", 2), ("CancellationRequested", 2)}
    recording = read_recording(path)
    assert (recording.lines, recording.orders, recording.cancels) == (lines, 2, 0)
