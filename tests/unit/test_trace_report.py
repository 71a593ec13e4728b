"""``report trace``: the compact trace file and the story read from it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from orderloom.actors import ActionTaken, OrderStageEntered, WrongAction
from orderloom.runtime import TraceEvent
from orderloom.simulation import (
    TraceError,
    causal_chain,
    clock,
    order_story,
    raw_lines,
    read_trace,
    trace_overview,
    write_trace,
)

Record = dict[str, Any]


def msg(t: float, mid: str, ty: str, fr: str, to: str, c: str = "", **extra: Any) -> Record:
    """A delivered-message record as the trace file holds it."""
    record: Record = {"t": t, "k": "msg", "id": mid, "ty": ty, "to": to, **extra}
    if fr:
        record["fr"] = fr
    if c:
        record["c"] = c
    return record


# An order placed at 01:00:00, shipped by the warehouse at 01:05:00 before
# its payment was secured; a timer of the storefront placed it (three rounds).
TRACE: list[Record] = [
    msg(3000.0, "m1", "_Arrive", "storefront", "storefront", tm=True),
    msg(3300.0, "m2", "_Arrive", "storefront", "storefront", "m1", tm=True),
    msg(3600.0, "m3", "_Arrive", "storefront", "storefront", "m2", tm=True),
    msg(3600.0, "m4", "PlaceOrder", "storefront", "order/o1", "m3"),
    {"t": 3600.0, "k": "ActionTaken", "o": "o1", "in": "m4", "command_type": "PlaceOrder",
     "issued_by": "storefront"},
    {"t": 3600.0, "k": "OrderStageEntered", "o": "o1", "in": "m4", "stage": "placed"},
    {"t": 3600.0, "k": "ActionTaken", "o": "o1", "in": "m4",
     "command_type": "SubmitFulfillment", "issued_by": "automation:aggressive",
     "irreversible": True},
    {"t": 3600.0, "k": "SystemViewChanged", "o": "o1", "in": "m4",
     "system": "coordinator:support", "status": "placed;pending"},
    {"t": 3600.0, "k": "SystemViewChanged", "o": "o1", "in": "m4",
     "system": "coordinator:finance", "status": "captured=0;refunded=0"},
    msg(3600.0, "m5", "WarehouseSubmit", "order/o1", "warehouse/W1", "m4"),
    msg(3600.0, "m6", "TimerDue", "order/o1", "order/o1", "m4", tm=True),
    msg(3900.0, "m7", "Shipped", "warehouse/W1", "order/o1", "m5"),
    {"t": 3900.0, "k": "WrongAction", "o": "o1", "in": "m7", "invariant": "never_ship_unpaid",
     "detail": "shipped before payment", "chain": ["m5", "m7"]},
    {"t": 90_000.0, "k": "OrderStuck", "o": "o2", "stage": "on_hold",
     "reason": "awaiting_payment", "age": 7200.0, "deadline": 3600.0},
]


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "00:00:00"), (29_643.2, "08:14:03"), (86_399.9, "23:59:59"),
    (86_400.0 + 29_643.0, "day 2 08:14:03"),
])
def test_clock_reads_kernel_seconds_as_a_time_of_day(seconds: float, text: str) -> None:
    """Kernel seconds read as a clock from 00:00, naming the day past the first."""
    assert clock(seconds) == text


def test_causal_chain_follows_causation_ids_and_folds_a_rearming_timer() -> None:
    """The chain goes back through causation ids, oldest first, and a timer
    that re-arms itself counts as one link with its rounds."""
    chain = causal_chain(TRACE, "m7")
    assert [m["id"] for m in chain] == ["m3", "m4", "m5", "m7"]
    assert chain[0]["rounds"] == 3


def test_causal_chain_stops_at_a_message_the_trace_does_not_hold() -> None:
    """A cause missing from the trace ends the chain; an unknown id gives none."""
    assert [m["id"] for m in causal_chain(TRACE[4:], "m7")] == ["m5", "m7"]
    assert causal_chain(TRACE, "m99") == []


def test_order_story_tells_each_turn_once_with_the_wrong_action_and_final_state() -> None:
    """One line per message the order handled with what came of it, the wrong
    action with the messages that led to it, and a final-state line."""
    assert order_story(TRACE, "o1") == [
        "01:00:00  storefront → order: PlaceOrder",
        "          decided by storefront: PlaceOrder",
        "          stage (new) → placed",
        "          decided by automation:aggressive: SubmitFulfillment (irreversible)",
        "          sent WarehouseSubmit → warehouse/W1",
        "          set timers: TimerDue",
        "01:05:00  warehouse/W1 → order: Shipped",
        "          !! WRONG ACTION never_ship_unpaid: shipped before payment",
        "",
        "!! wrong action at 01:05:00: never_ship_unpaid — shipped before payment",
        "          the messages that led to it, oldest first:",
        "          01:00:00  storefront → storefront: timer _Arrive [m3] "
        "(the last of 3 rounds of this timer)",
        "          01:00:00  storefront → order/o1: PlaceOrder [m4]",
        "                    the order decided: SubmitFulfillment by automation:aggressive",
        "          01:00:00  order/o1 → warehouse/W1: WarehouseSubmit [m5]",
        "          01:05:00  warehouse/W1 → order/o1: Shipped [m7]",
        "",
        "final state (last change 01:00:00, trace ends day 2 01:00:00): "
        "lifecycle placed, payment pending; captured 0 cents, refunded 0 cents",
    ]


def test_order_story_of_an_unknown_order_is_empty() -> None:
    """An order the trace never mentions has no story."""
    assert order_story(TRACE, "o404") == []


def test_raw_lines_keep_every_field_with_clock_and_seconds() -> None:
    """--raw shows every record of the order with its clock time, seconds and fields."""
    lines = raw_lines(TRACE, "o1")
    assert len(lines) == 10
    assert lines[-1].startswith("01:05:00    3900.000 s  WrongAction")
    assert "chain=['m5', 'm7']" in lines[-1]


def test_overview_lists_wrong_actions_first_then_stuck_spells() -> None:
    """With no order given: one line per order worth a look, wrong actions first."""
    assert trace_overview(TRACE) == [
        "o1         wrong action never_ship_unpaid  first at 01:05:00",
        "o2         stuck in on_hold (awaiting_payment) for 2.0 h  first at day 2 01:00:00",
    ]


def test_write_trace_folds_emits_and_timer_records_into_one_record_each(tmp_path: Path) -> None:
    """The written trace has one record per delivery (a timer's marked) and
    per telemetry event (tied to its turn's message), fields left out when empty."""
    kernel = [
        TraceEvent(time=0.0, kind="spawn", actor="order/o1", detail="OrderActor"),
        TraceEvent(time=1.0, kind="deliver", actor="order/o1", message_type="PlaceOrder",
                   message_id="m1", sender="intake"),
        TraceEvent(time=1.0, kind="emit", actor="order/o1", message_type="PlaceOrder",
                   message_id="m1", detail="ActionTaken"),
        TraceEvent(time=1.0, kind="emit", actor="order/o1", message_type="PlaceOrder",
                   message_id="m1", detail="OrderStageEntered"),
        TraceEvent(time=2.0004, kind="timer", actor="order/o1", message_type="TimerDue",
                   message_id="m2", detail="fired", sender="order/o1", causation_id="m1"),
        TraceEvent(time=2.0004, kind="deliver", actor="order/o1", message_type="TimerDue",
                   message_id="m2", sender="order/o1", causation_id="m1"),
        TraceEvent(time=3.0, kind="emit", actor="gateway", detail="WrongAction"),
    ]
    telemetry = [
        (1.0, "order/o1", ActionTaken(order_id="o1", command_type="PlaceOrder",
                                      issued_by="storefront", irreversible=False,
                                      on_exception_path=False)),
        (1.0, "order/o1", OrderStageEntered(order_id="o1", stage="placed")),
        (3.0, "gateway", WrongAction(order_id="o1", invariant="money_conserved", detail="x")),
    ]
    path = tmp_path / "trace.jsonl.gz"
    write_trace(path, kernel, telemetry)
    assert read_trace(path) == [
        {"t": 0.0, "k": "spawn", "a": "order/o1", "d": "OrderActor"},
        {"t": 1.0, "k": "msg", "id": "m1", "ty": "PlaceOrder", "fr": "intake", "to": "order/o1"},
        {"t": 1.0, "k": "ActionTaken", "o": "o1", "in": "m1", "command_type": "PlaceOrder",
         "issued_by": "storefront"},
        {"t": 1.0, "k": "OrderStageEntered", "o": "o1", "in": "m1", "stage": "placed"},
        {"t": 2.0, "k": "msg", "id": "m2", "ty": "TimerDue", "fr": "order/o1", "to": "order/o1",
         "c": "m1", "tm": True},
        {"t": 3.0, "k": "WrongAction", "o": "o1", "a": "gateway", "invariant": "money_conserved",
         "detail": "x", "chain": []},
    ]


def test_read_trace_reads_the_first_uncompressed_format(tmp_path: Path) -> None:
    """A trace.jsonl of the first format reads as today's records (its emit
    records, which repeat the telemetry, dropped)."""
    path = tmp_path / "trace.jsonl"
    old = [
        {"t": 1.0, "type": "kernel", "kind": "deliver", "actor": "order/o1",
         "message": "PlaceOrder", "message_id": "m1", "detail": ""},
        {"t": 1.0, "type": "kernel", "kind": "emit", "actor": "order/o1", "message": "",
         "message_id": "", "detail": "OrderStageEntered"},
        {"t": 1.0, "type": "OrderStageEntered", "actor": "order/o1", "order_id": "o1",
         "stage": "placed", "previous": ""},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    assert read_trace(path) == [
        {"t": 1.0, "k": "msg", "id": "m1", "ty": "PlaceOrder", "to": "order/o1"},
        {"t": 1.0, "k": "OrderStageEntered", "o": "o1", "stage": "placed"},
    ]


@pytest.mark.parametrize("content", [b"\xff\xfe not text", b"{not json", b'{"orderloom_trace": 9}\n'])
def test_read_trace_refuses_what_is_not_a_trace_it_can_read(tmp_path: Path, content: bytes) -> None:
    """Bytes that are not a trace, or a trace of another format version, raise TraceError."""
    path = tmp_path / "trace.jsonl.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(TraceError):
        read_trace(path)


def test_stuck_telemetry_reads_in_the_story_with_units() -> None:
    """A stuck spell in an order's story says its age and deadline in hours."""
    story = order_story(TRACE, "o2")
    assert story[0] == ("day 2 01:00:00  order: stuck in on_hold (awaiting_payment) "
                        "for 2.0 h, deadline 1.0 h")


def test_a_teams_decision_is_told_with_the_message_that_brings_it() -> None:
    """What a team emitted about the order in the turn that told the order, at
    that instant, reads under that message rather than on lines of its own."""
    records = [
        msg(100.0, "m1", "_ReviewDone", "team/fraud", "team/fraud", tm=True),
        {"t": 100.0, "k": "CaseDecided", "o": "o1", "a": "team/fraud", "in": "m1",
         "case_id": "c1", "team": "fraud", "reviewer": "fraud#1", "proposal": "release",
         "decision": "cancel", "override": True},
        msg(100.0, "m2", "CaseDecision", "team/fraud", "order/o1", "m1"),
        {"t": 100.0, "k": "ActionTaken", "o": "o1", "in": "m2", "command_type": "CancelOrder",
         "issued_by": "fraud#1", "irreversible": True},
    ]
    assert order_story(records, "o1")[:3] == [
        "00:01:40  team/fraud → order: CaseDecision",
        "          case c1 decided by fraud#1 (fraud): cancel, automation proposed release "
        "(overrides automation)",
        "          decided by fraud#1: CancelOrder (irreversible)",
    ]
