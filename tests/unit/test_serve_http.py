"""serve's HTTP side: readiness names what is not ready, metrics use the fold's names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from orderloom.actors import (
    INTAKE,
    EnvelopeSource,
    IngestSeam,
    MetricsCollector,
    OrderStageEntered,
    WrongAction,
    journal_codec,
    wire_codec,
)
from orderloom.cli._serve_http import (
    InboundRefused,
    LiveMetrics,
    Readiness,
    build_app,
    prometheus_name,
)
from orderloom.runtime import Envelope, MemoryStore, OutboxEntry, RefusedPayload, Store, Turn
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.ops import Tokens
from orderloom.runtime.sqlite import SqliteStore
from orderloom.runtime.webhooks import ingest_routes
from tests.sim.world import OrderSpec, place

TOKEN = "unit-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = 1_718_000_000.0


def _app(store: Store, *, connected: bool = True, max_lag: int = 10,
         fold: MetricsCollector | None = None) -> tuple[TestClient, LiveMetrics, Readiness]:
    fold = fold or MetricsCollector(warm_up=0.0, horizon=1e9, series_step=1e6)
    readiness = Readiness(lambda: connected, store, max_lag)
    metrics = LiveMetrics(LiveKernel(), fold, readiness, lambda: 3)

    async def extra(request: Request) -> PlainTextResponse:
        return PlainTextResponse("desk")

    app = build_app(Tokens({TOKEN: "ops"}), readiness, metrics, [Route("/desk", extra)])
    return TestClient(app), metrics, readiness


def _pending(store: Store, n: int) -> None:
    store.commit("order/o1", Turn(expected_version=0, outbox=tuple(
        OutboxEntry(entry_id=f"order/o1#0.{i}", stream="order/o1", recipient="gateway",
                    message=place(OrderSpec(order_id="o1"))) for i in range(n))))


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/desk"])
def test_every_endpoint_wants_a_token(path: str) -> None:
    """Without a known token every endpoint, the added ones too, answers 401."""
    client, _, _ = _app(MemoryStore())
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"}
                      ).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200


def test_ready_when_connected_with_a_small_outbox(tmp_path: Path) -> None:
    """Connected, a store that answers and an outbox under the bound: 200 with the lag."""
    with SqliteStore(tmp_path / "s.db", journal_codec()) as store:
        _pending(store, 2)
        client, _, _ = _app(store, max_lag=3)
        response = client.get("/readyz", headers=AUTH)
        assert (response.status_code, response.json()) == (200, {"ready": True, "outbox_lag": 2})


def test_not_ready_names_each_problem(tmp_path: Path) -> None:
    """Disconnected and an outbox at its bound: 503 naming the broker and the outbox."""
    with SqliteStore(tmp_path / "s.db", journal_codec()) as store:
        _pending(store, 3)
        client, _, _ = _app(store, connected=False, max_lag=3)
        response = client.get("/readyz", headers=AUTH)
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert sorted(body["not_ready"]) == ["broker", "outbox"]
        assert body["not_ready"]["outbox"].startswith("3 messages committed but not published")


def test_a_closed_store_and_a_stop_are_not_ready(tmp_path: Path) -> None:
    """A store that does not answer, and a node shutting down, are named too."""
    store = SqliteStore(tmp_path / "s.db", journal_codec())
    client, _, readiness = _app(store)
    store.close()
    readiness.stopping = True
    body = client.get("/readyz", headers=AUTH).json()
    assert sorted(body["not_ready"]) == ["process", "store"]
    assert body["outbox_lag"] is None


def test_metrics_fold_telemetry_under_the_simulators_names() -> None:
    """Telemetry folded by MetricsCollector shows as orderloom_ counters and gauges;
    wrong actions are labelled by invariant and start at 0 for every invariant."""
    fold = MetricsCollector(warm_up=0.0, horizon=1e9, series_step=1e6)
    fold.on_emit(1.0, "order/o1", OrderStageEntered(order_id="o1", stage="placed"))
    fold.on_emit(2.0, "order/o2", OrderStageEntered(order_id="o2", stage="placed"))
    client, metrics, _ = _app(MemoryStore(), fold=fold)
    metrics.on_turn(Envelope("m1", None, None, None, "order/o1", 0.0,  # type: ignore[arg-type]
                             place(OrderSpec(order_id="o1"))), 0.004)
    text = client.get("/metrics", headers=AUTH).text
    lines = set(text.splitlines())
    assert "orderloom_orders_placed_total 2.0" in lines
    assert 'orderloom_wrong_actions_total{invariant="never_ship_unpaid"} 0.0' in lines
    assert "orderloom_orders_in_flight 2.0" in lines
    assert "orderloom_open_cases 0.0" in lines
    assert "orderloom_inbound_refused_total 3.0" in lines
    assert "orderloom_outbox_lag 0.0" in lines
    assert 'orderloom_decision_latency_seconds_count{actor="order"} 1.0' in lines
    assert 'orderloom_decision_latency_seconds_bucket{actor="order",le="0.005"} 1.0' in lines
    fold.on_emit(3.0, "order/o1", WrongAction(order_id="o1", invariant="never_ship_unpaid",
                                              detail="x"))
    text = client.get("/metrics", headers=AUTH).text
    assert 'orderloom_wrong_actions_total{invariant="never_ship_unpaid"} 1.0' in text.splitlines()


def test_prometheus_names_are_made_safe() -> None:
    """A fold metric's dots and dashes become underscores after the orderloom_ prefix."""
    assert prometheus_name("cycle_time.p50") == "orderloom_cycle_time_p50"
    assert prometheus_name("queue_length.customer-care") == "orderloom_queue_length_customer_care"


class _Ingesting:
    """serve's HTTP app with the ingest route of a generic ``wms`` source, wired as
    ``_run`` wires it: the stop flag is readiness', refusals are counted for the
    metrics beside the transport's (3 here)."""

    def __init__(self, store: Store, *, stopping: list[bool] | None = None) -> None:
        self.store = store
        self.kernel = LiveKernel()  # not started: nothing may be delivered to it
        self.readiness = Readiness(lambda: True, store, 10)
        self.refused = InboundRefused(lambda: 3)
        metrics = LiveMetrics(self.kernel, MetricsCollector(warm_up=0.0, horizon=1e9,
                                                            series_step=1e6),
                              self.readiness, self.refused)
        # ``stopping``: the flag's successive answers (the last one repeats), to
        # place a stop between two reads; else the readiness flag, as serve does.
        flags = stopping

        def is_stopping() -> bool:
            if flags is None:
                return self.readiness.stopping
            return flags.pop(0) if len(flags) > 1 else flags[0]

        async def desk(request: Request) -> PlainTextResponse:
            return PlainTextResponse("desk")

        routes = [Route("/desk", desk), *ingest_routes(
            IngestSeam(wire_codec(), {"wms": EnvelopeSource()}), self.kernel, store=store,
            clock=lambda: NOW, stopping=is_stopping, on_refused=self.refused.on_refused)]
        self.client = TestClient(build_app(Tokens({TOKEN: "ops"}), self.readiness, metrics,
                                           routes))


def _placement() -> bytes:
    """A valid ``PlaceOrder`` envelope for intake (docs/wire.md)."""
    return wire_codec().encode_envelope(Envelope(
        "m-1", None, "O-1", None, INTAKE, NOW,
        place(OrderSpec(order_id="O-1", at=NOW)), None))


def test_ingest_answers_503_once_stopping_and_the_other_routes_keep_working() -> None:
    """Once serve is stopping, POST /ingest answers 503 ``stopping`` with Retry-After
    and reads nothing (a bad payload is not even recorded), while /healthz and the
    desk still answer; before the stop the same payload is refused and recorded."""
    store = MemoryStore()
    node = _Ingesting(store)
    before = node.client.post("/ingest/wms", content=b"{not json", headers=AUTH)
    assert (before.status_code, before.json()["error"]) == (422, "not_json")
    assert len(store.dead_letters()) == 1
    node.readiness.stopping = True
    during = node.client.post("/ingest/wms", content=b"{not json", headers=AUTH)
    assert during.status_code == 503
    assert during.json()["error"] == "stopping"
    assert int(during.headers["Retry-After"]) > 0
    assert len(store.dead_letters()) == 1  # nothing read, nothing recorded
    assert node.client.get("/healthz", headers=AUTH).status_code == 200
    assert node.client.get("/desk", headers=AUTH).text == "desk"
    assert node.client.get("/readyz", headers=AUTH).status_code == 503


def test_a_stop_that_begins_while_the_body_is_read_delivers_nothing() -> None:
    """Not stopping when the request came, stopping once its (valid) body was read:
    503 ``stopping``, the envelope is not delivered and intake not activated."""
    node = _Ingesting(MemoryStore(), stopping=[False, True])
    response = node.client.post("/ingest/wms", content=_placement(), headers=AUTH)
    assert (response.status_code, response.json()["error"]) == (503, "stopping")
    assert "Retry-After" in response.headers
    assert node.kernel.delivered == 0 and node.kernel.dead_letter_total == 0
    assert not node.kernel.is_running(INTAKE)


def test_refusals_over_http_count_in_inbound_refused_total() -> None:
    """A payload refused by POST /ingest counts in orderloom_inbound_refused_total
    beside the transport's refusals (3 + 2); an accepted one does not."""
    node = _Ingesting(MemoryStore())
    for body in (b"{not json", b"[]"):
        assert node.client.post("/ingest/wms", content=body, headers=AUTH).status_code == 422
    # Accepted by the gate; intake does not run on this kernel: 503, not a refusal.
    unavailable = node.client.post("/ingest/wms", content=_placement(), headers=AUTH)
    assert unavailable.json()["error"] == "recipient_unavailable"
    lines = node.client.get("/metrics", headers=AUTH).text.splitlines()
    assert "orderloom_inbound_refused_total 5.0" in lines


class _WhereRecorded(MemoryStore):
    """A MemoryStore that notes, for each dead letter, whether it was written on a
    thread running an event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.on_event_loop: list[bool] = []

    def record_dead_letter(self, letter: RefusedPayload) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.on_event_loop.append(False)
        else:
            self.on_event_loop.append(True)
        super().record_dead_letter(letter)


def test_a_refusal_is_recorded_off_the_event_loop() -> None:
    """The store write of an HTTP refusal runs in a worker thread, not on the event
    loop the kernel shares, and is done before the answer."""
    store = _WhereRecorded()
    node = _Ingesting(store)
    assert node.client.post("/ingest/wms", content=b"{not json", headers=AUTH).status_code == 422
    assert store.on_event_loop == [False]
    assert [d.reason.value for d in store.dead_letters()] == ["not_json"]


def test_a_fold_without_downstream_systems_shows_no_state_mismatches() -> None:
    """serve's fold compares no downstream view (they live in other processes):
    /metrics leaves state_mismatches out instead of reading 0; a fold that
    compares a system shows them."""
    blind = MetricsCollector(warm_up=0.0, horizon=1e9, series_step=1e6)
    blind.on_emit(1.0, "order/o1", OrderStageEntered(order_id="o1", stage="placed"))
    text = _app(MemoryStore(), fold=blind)[0].get("/metrics", headers=AUTH).text
    assert "orderloom_orders_placed_total 1.0" in text.splitlines()
    assert "state_mismatches" not in text
    seeing = MetricsCollector(warm_up=0.0, horizon=1e9, series_step=1e6, systems=("finance",))
    seeing.on_emit(1.0, "order/o1", OrderStageEntered(order_id="o1", stage="placed"))
    text = _app(MemoryStore(), fold=seeing)[0].get("/metrics", headers=AUTH).text
    assert "orderloom_state_mismatches 0.0" in text.splitlines()
