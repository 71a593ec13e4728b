"""Record and replay: a simulated run's journal, exported, replayed in a scenario's world."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import attrs
import pytest

from orderloom.actors import (
    Approver,
    CancellationRequested,
    LineItemSpec,
    OrderPlaced,
    journal_codec,
    journal_type_version,
)
from orderloom.runtime import (
    JOURNAL_LINE_KEYS,
    MemoryStore,
    Recorded,
    export_journal,
    journal_line,
)
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import (
    IncomparableReports,
    JournalError,
    Recording,
    ReplayStorefront,
    Report,
    Scenario,
    SimKernel,
    compare,
    read_recording,
    recording_from_records,
    replay,
    resolve_run,
    run_replication,
    simulate,
)


# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("sim.test_replay")

def recorded_scenario() -> Scenario:
    """Baseline for two hours, with many duplicate orders and customer cancels."""
    base = resolve_run("baseline", horizon="2h", replications=1, seed=3)
    faults = attrs.evolve(base.demand.faults, duplicate_orders=0.3, cancellations=0.4)
    return attrs.evolve(base, demand=attrs.evolve(base.demand, faults=faults))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run journaled to SQLite, and its export (the SQLite file, the JSON lines)."""
    folder = tmp_path_factory.mktemp("journal")
    db = folder / "orders.db"
    with SqliteStore(db, journal_codec()) as store:
        run_replication(recorded_scenario(), 0, store=store)
        out = folder / "journal.jsonl"
        with out.open("w", encoding="utf-8") as handle:
            export_journal(store, journal_codec(), handle, type_version=journal_type_version)
    return db, out


def test_export_round_trips_every_event(exported: tuple[Path, Path]) -> None:
    """Every exported line decodes to the stored event with its address, version and
    time; the line count is the store's event count."""
    db, out = exported
    lines = out.read_text(encoding="utf-8").splitlines()
    codec = journal_codec()
    with SqliteStore(db, codec) as store:
        assert len(lines) == store.stats()["events"]
        stored = [r for s in store.streams() for r in store.journal(s)]
    decoded = []
    for text in lines:
        data = json.loads(text)
        assert tuple(data) == JOURNAL_LINE_KEYS
        event = codec.decode(data["type"], json.dumps(data["event"]))
        assert data["type_version"] == journal_type_version(type(event))
        decoded.append((data["address"], data["version"], event, data["at"]))
    assert decoded == [(r.stream, r.version, r.event, r.recorded_at) for r in stored]
    kinds = Counter(type(event).__name__ for _, _, event, _ in decoded)
    assert kinds["OrderPlaced"] > 10 and kinds["OrderKeyRecorded"] == kinds["OrderPlaced"]


def test_recording_takes_placements_and_customer_cancels(exported: tuple[Path, Path]) -> None:
    """The recording holds one placement per OrderPlaced (ids, customers, lines kept)
    and one cancel per customer's CancellationRequested (few: most customers' late
    cancels find the order done), shifted to start at 0."""
    db, out = exported
    recording = read_recording(out)
    with SqliteStore(db, journal_codec()) as store:
        events = [r for s in store.streams() for r in store.journal(s)]
    placed = [r for r in events if isinstance(r.event, OrderPlaced)]
    asked = [r for r in events if isinstance(r.event, CancellationRequested)
             and r.event.approver is Approver.CUSTOMER]
    assert recording.orders == len(placed) and recording.cancels == len(asked)
    assert sorted(recording.order_ids()) == sorted(r.event.order_id for r in placed)
    first = min(r.recorded_at or 0.0 for r in placed)
    assert recording.first_at == first and recording.actions[0].at == 0.0
    assert [a.at for a in recording.actions] == sorted(a.at for a in recording.actions)
    by_id = {r.event.order_id: r for r in placed}
    for action in recording.actions:
        message = action.message
        if action.to == "intake":
            event = by_id[message.order_id].event  # type: ignore[attr-defined]
            assert (message.customer_id, message.lines) == (  # type: ignore[attr-defined]
                event.customer_id, event.lines)
            assert action.at == by_id[event.order_id].recorded_at - first
        else:
            assert action.to == f"order/{message.order_id}"  # type: ignore[attr-defined]


def _replayed_ids(recording: Recording, policy: str) -> tuple[list[str], int]:
    """The order ids a replay's coordinator journaled, and how many actions were sent."""
    scenario = attrs.evolve(resolve_run("baseline", policy=policy, replications=1),
                            horizon=recording.span + 3600.0, warm_up=0.0)
    store = MemoryStore()
    kernels: list[SimKernel] = []
    run_replication(scenario, 0, store=store, recording=recording, observe=kernels.append)
    storefront = kernels[0].actor("storefront")
    assert isinstance(storefront, ReplayStorefront)
    ids = [r.event.order_id for s in store.streams() for r in store.journal(s)
           if isinstance(r.event, OrderPlaced)]
    return ids, storefront.sent


def test_replay_under_the_same_policy_places_the_journal_orders(
        exported: tuple[Path, Path], tmp_path: Path) -> None:
    """Replayed under the recorded policy, the coordinator gets exactly the journal's
    orders (same ids, same count), and the report says it is a replay of that file."""
    _, out = exported
    recording = read_recording(out)
    ids, sent = _replayed_ids(recording, "balanced")
    assert sorted(ids) == sorted(recording.order_ids())
    assert sent == len(recording.actions)
    report = replay(out, "baseline", policy="balanced", replications=2, out=tmp_path / "r")
    assert report.metric("orders.placed").values == (recording.orders, recording.orders)
    assert report.replay is not None
    assert (report.replay["source"], report.replay["orders"], report.replay["cancels"]) == (
        str(out), recording.orders, recording.cancels)
    assert report.replay["span"] == recording.span
    assert report.horizon == recording.span + 86400.0 and report.warm_up == 0.0
    saved = Report.load(tmp_path / "r")
    assert saved.replay == report.replay
    assert f"replay of | journal {out}: {recording.orders} orders" in (
        tmp_path / "r" / "report.md").read_text()
    assert "replay of" in (tmp_path / "r" / "report.html").read_text()


def test_replay_under_another_policy_differs_in_duplicate_screening(
        exported: tuple[Path, Path]) -> None:
    """The journal holds repeated orders: cautious (duplicate detection on) opens
    duplicate-order cases for them, aggressive (detection off) opens none; both
    place every journal order."""
    _, out = exported
    recording = read_recording(out)
    cautious = replay(recording, "baseline", policy="cautious", replications=1)
    aggressive = replay(recording, "baseline", policy="aggressive", replications=1)
    for report in (cautious, aggressive):
        assert report.metric("orders.placed").mean == recording.orders
    assert cautious.metric("exception_rate.by_reason.duplicate_order").mean > 0
    assert "exception_rate.by_reason.duplicate_order" not in aggressive.metrics
    assert cautious.to_dict()["world"] == aggressive.to_dict()["world"]
    rows = {row.metric: row for row in compare(cautious, aggressive).exploratory}
    estimates = rows["exception_rate.by_reason.duplicate_order"].estimates
    assert estimates[0].mean > 0 and estimates[1].mean == 0  # paired: one world
    generated = simulate("baseline", policy="aggressive", replications=1,
                         horizon=cautious.horizon)
    with pytest.raises(IncomparableReports, match="world"):
        compare(generated, aggressive)


def _placed(order_id: str, at: float, customer: str = "c1", sku: str = "MUG") -> Recorded:
    return Recorded(stream=f"order/{order_id}", version=1, recorded_at=at, event=OrderPlaced(
        order_id=order_id, event_id=f"place-{order_id}:1", source="coordinator",
        source_seq=1, occurred_at=at, customer_id=customer, currency="EUR",
        lines=(LineItemSpec(line_id="l1", sku=sku, quantity=2, unit_price=1400),)))


def _cancel(order_id: str, at: float, approver: Approver = Approver.CUSTOMER) -> Recorded:
    return Recorded(stream=f"order/{order_id}", version=9, recorded_at=at,
                    event=CancellationRequested(
                        order_id=order_id, event_id=f"cancel-{order_id}", source="coordinator",
                        source_seq=9, occurred_at=at, reason="changed my mind",
                        requested_by="customer", approver=approver))


def test_a_customer_cancel_is_replayed_and_cancels_the_order() -> None:
    """Journal times are shifted to start at 0; a customer's cancel request reaches
    its order as a CustomerCancel and cancels it; a person's cancel is not replayed."""
    epoch = 1_764_500_000.0  # a live journal's times are epoch seconds
    recording = recording_from_records(
        [_placed("a", epoch + 10.0), _placed("b", epoch + 0.5, customer="c2"),
         _cancel("a", epoch + 11.0), _cancel("b", epoch + 20.0, Approver.PERSON)], "test")
    assert [(a.at, a.to, type(a.message).__name__) for a in recording.actions] == [
        (0.0, "intake", "PlaceOrder"), (9.5, "intake", "PlaceOrder"),
        (10.5, "order/a", "CustomerCancel")]
    assert (recording.orders, recording.cancels, recording.span) == (2, 1, 10.5)
    report = replay(recording, "baseline", policy="balanced", replications=1, drain=7200.0)
    assert report.metric("orders.placed").mean == 2
    assert report.metric("orders_by_final_state.canceled").mean == 1
    assert report.metric("orders_by_final_state.closed").mean == 1


def test_a_sku_no_warehouse_stocks_is_named_and_runs_short() -> None:
    """The replay block lists the journal's SKUs the scenario does not stock; such
    an order is placed and held for the shortage instead of closing."""
    recording = recording_from_records(
        [_placed("a", 0.0), _placed("b", 5.0, customer="c2", sku="GIZMO")], "test")
    report = replay(recording, "baseline", policy="cautious", replications=1, drain=7200.0)
    assert report.replay is not None and report.replay["unstocked_skus"] == ["GIZMO"]
    assert report.metric("orders.placed").mean == 2
    assert report.metric("orders_by_final_state.closed").mean == 1
    assert report.metric("exception_rate.by_reason.inventory_out_of_stock").mean > 0


def test_placing_an_order_twice_or_cancelling_an_unknown_one_is_refused() -> None:
    """Each names the record's place as its line."""
    with pytest.raises(JournalError, match="line 2: order 'a' is placed again"):
        recording_from_records([_placed("a", 1.0), _placed("a", 2.0)], "twice")
    with pytest.raises(JournalError, match="line 2: a cancel request for order 'x'"):
        recording_from_records([_placed("a", 1.0), _cancel("x", 2.0)], "unknown")


def _journal(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_bad_journals_are_refused_naming_file_and_line(
        exported: tuple[Path, Path], tmp_path: Path) -> None:
    """A line that is not JSON, an unknown event type, a wrong key set and a journal
    without placements are each refused with the file and the line."""
    _, out = exported
    good = out.read_text(encoding="utf-8").splitlines()
    cases = {
        "line 2: not JSON": [good[0], "{not json", *good[1:]],
        "line 3: type: unknown event type 'OrderTeleported'": [
            good[0], good[1], good[2].replace(f'"type":"{json.loads(good[2])["type"]}"',
                                              '"type":"OrderTeleported"')],
        "line 1: expected the keys": ['{"address": "order/x"}'],
        "no OrderPlaced event in its 2 lines": [
            line for line in good if '"type":"OrderPlaced"' not in line][:2],
    }
    for expected, lines in cases.items():
        path = _journal(tmp_path, lines)
        with pytest.raises(JournalError) as info:
            read_recording(path)
        assert str(info.value).startswith(f"{path}: invalid journal:")
        assert expected in str(info.value)


def test_a_horizon_within_the_span_is_refused(exported: tuple[Path, Path]) -> None:
    """--horizon must leave room for every recorded action."""
    _, out = exported
    recording = read_recording(out)
    with pytest.raises(ValueError, match="horizon: expected more than the journal's span"):
        replay(recording, "baseline", horizon=recording.span / 2, replications=1)


def test_export_from_memory_equals_export_from_sqlite(exported: tuple[Path, Path]) -> None:
    """The same run journaled to a MemoryStore exports the same lines as to SQLite."""
    _, out = exported
    store = MemoryStore()
    run_replication(recorded_scenario(), 0, store=store)
    buffer = io.StringIO()
    export_journal(store, journal_codec(), buffer, type_version=journal_type_version)
    assert buffer.getvalue() == out.read_text(encoding="utf-8")


def test_an_export_of_an_older_version_is_lifted_and_a_newer_one_refused(
        tmp_path: Path) -> None:
    """A v1 CancellationRequested (before reviewers' notes were journaled) is read
    through the wire registry's upgrader, with an empty note; a version this
    orderloom does not know is refused naming the line."""
    placed, cancel = (journal_line(r, journal_codec(), journal_type_version)
                      for r in (_placed("a", 1.0), _cancel("a", 2.0)))
    old = json.loads(cancel)
    assert old["type_version"] == 2
    old["type_version"] = 1
    del old["event"]["note"]
    recording = read_recording(_journal(tmp_path, [placed, json.dumps(old)]))
    assert recording.cancels == 1
    future = dict(old, type_version=9)
    with pytest.raises(JournalError, match="line 2: type_version: CancellationRequested "
                                           "version 9 is not one this orderloom reads"):
        read_recording(_journal(tmp_path, [placed, json.dumps(future)]))
