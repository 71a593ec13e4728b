"""``orderloom serve`` against a real Mosquitto, with the simulated world on another kernel.

Each test owns its broker (a Mosquitto on a free port), so no other run's
coordinator or world can take its messages. The world runs a copy of the
baseline scenario with short fixed delays at one kernel second per real
second. Orders are placed by a foreign client (plain aiomqtt publishing the
JSON envelope). Every wait polls a condition with a generous deadline; the
assertions are about outcomes, never timings (except the 10 s a stop is
allowed, which is the requirement itself).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import attrs
import pytest
import yaml
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from orderloom.actors import (
    CaseAssigned,
    Decision,
    HoldReleased,
    Lifecycle,
    OrderTruth,
    OrderActor,
    OrderPlaced,
    OrderRecord,
    OrderState,
    evolve_record,
    journal_codec,
    team_address,
    wire_codec,
)
from orderloom.cli._serve import Extension, Running, ServeNode, review_desk, serve
from orderloom.cli._serve_config import ServeConfig, load_serve_config
from orderloom.runtime import Actor, handler, ingest_topic, open_store, to_topic
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.mqtt import MqttTransport
from orderloom.runtime.ops import principal_of
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import resolve_run, world_actors, world_for
from tests import broker, pg

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0  # real seconds; a hang guard on a loaded machine, not a timing
TOKEN = "integration-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CUSTOMER = "customer-private-7"  # must never show in a log
SHIPPED = (Lifecycle.FULFILLED, Lifecycle.DELIVERED, Lifecycle.CLOSED)


def _fast_scenario(folder: Path) -> Path:
    """The baseline scenario with short fixed delays (so an order ships in seconds)."""
    data = yaml.safe_load((ROOT / "scenarios" / "baseline.yaml").read_text(encoding="utf-8"))
    quick = {"kind": "fixed", "value": 0.2}
    data["name"] = "serve-test"
    for warehouse in data["warehouses"]:
        warehouse.update(pick=quick, pack=quick, label_failure_rate=0.0)
    data["gateway"] = {"latency": quick, "lost_response_rate": 0.0}
    for system in data["downstream"]:
        system.update(lag=quick, failure_rate=0.0)
    data["address"] = {"latency": quick, "correct_success_rate": 1.0}
    path = folder / "serve-test.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _config(folder: Path, port: int, *, run: str, store: str | None = None,
            broker_extra: dict[str, Any] | None = None, **extra: Any) -> Path:
    """serve's config file for a test (``extra``: more top-level keys)."""
    path = folder / "serve.yaml"
    path.write_text(yaml.safe_dump({
        "broker": {"host": "127.0.0.1", "port": port, "client_id": f"{run}-serve",
                   **(broker_extra or {})},
        # An absolute path: four slashes.
        "store": store or f"sqlite:///{folder / 'orders.db'}",
        "scenario": str(_fast_scenario(folder)),
        "policy": "cautious",
        "http": {"bind": "127.0.0.1", "port": 0, "tokens": {TOKEN: "ops"}},
        "log_level": "info",
        **extra,
    }), encoding="utf-8")
    return path


def _envelope(order_id: str) -> bytes:
    """A ``PlaceOrder`` for ``intake`` as a foreign client writes it (docs/wire.md)."""
    now = time.time()
    return json.dumps({
        "type": "order.place", "v": 1, "id": f"place-{order_id}", "recipient": "intake",
        "correlation_id": order_id, "sent_at": now,
        "body": {"order_id": order_id, "command_id": f"cmd-{order_id}", "issued_at": now,
                 "issued_by": "storefront", "customer_id": CUSTOMER, "currency": "EUR",
                 "lines": [{"line_id": "L1", "sku": "TSHIRT", "quantity": 1,
                            "unit_price": 2500}]},
    }).encode()


async def _publish(port: int, run: str, order_id: str) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"{run}-shop") as client:
        await client.publish(to_topic("intake"), _envelope(order_id), qos=1)


def _world_kernel(config: ServeConfig, port: int, run: str, *, risk: float = 0.05,
                  ) -> tuple[MqttTransport, LiveKernel, dict[str, Any]]:
    """The scenario's world (the gateway scores every order ``risk``), minus the
    teams staffed by a desk in serve."""
    scenario = resolve_run(config.scenario, policy=config.policy)
    world = world_actors(world_for(scenario, scenario.policy, random.Random(0)).world,
                         lambda order_id: OrderTruth(risk_score=risk))
    for team in config.desk_teams:
        del world[team_address(team)]
    transport = MqttTransport(wire_codec(), client_id=f"{run}-world", subscriptions=list(world),
                              port=port)
    return transport, LiveKernel(seed=2, speed=1.0, start_time=time.time(),
                                 transport=transport), world


async def _until(condition: Callable[[], bool], what: str) -> None:
    with anyio.fail_after(DEADLINE):
        while not condition():
            await anyio.sleep(0.05)


@attrs.frozen
class _Served:
    """serve running in-process: its node, its HTTP port, and the world's kernel
    (None without a world) and addresses."""

    node: ServeNode
    http: int
    world_kernel: LiveKernel | None
    world: frozenset[str]

    def shipped(self, order_id: str) -> Callable[[], bool]:
        """Whether the order's actor runs and has shipped."""
        def check() -> bool:
            if not self.node.kernel.is_running(f"order/{order_id}"):
                return False
            actor = self.node.kernel.actor(f"order/{order_id}")
            assert isinstance(actor, OrderActor)
            return actor.order.lifecycle in SHIPPED
        return check


@contextlib.asynccontextmanager
async def _serving(config: ServeConfig, port: int, run: str, *, world: bool = True,
                   risk: float = 0.05, extensions: Sequence[Extension] = (review_desk,),
                   ) -> AsyncIterator[_Served]:
    """serve in-process, entered once it is ready; beside it (unless ``world`` is
    false) the scenario's world on a kernel of its own (the gateway scores every
    order ``risk``). Leaving stops serve, then the world."""
    ready: list[Running] = []
    stop = anyio.Event()
    world_kernel: LiveKernel | None = None
    actors: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        if world:
            transport, world_kernel, actors = _world_kernel(config, port, run, risk=risk)
            await stack.enter_async_context(transport)
            await stack.enter_async_context(world_kernel)
            for address, factory in actors.items():
                world_kernel.spawn(factory, address)
        tg = await stack.enter_async_context(anyio.create_task_group())
        tg.start_soon(lambda: serve(config, stop=stop, on_ready=ready.append,
                                    extensions=extensions))
        try:
            await _until(lambda: bool(ready), "serve ready")
            yield _Served(ready[0].node, ready[0].http_port, world_kernel, frozenset(actors))
        finally:
            stop.set()


def _get(port: int, path: str, headers: dict[str, str] | None = None,
         body: dict[str, Any] | None = None) -> tuple[int, str]:
    """GET ``path`` (POST ``body`` as JSON if given): (status, text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data,
        headers={**(headers or {}), **({"Content-Type": "application/json"} if data else {})})
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _stored_order(db: Path | str, order_id: str) -> tuple[OrderState, int]:
    """The order's state folded from its journal in the SQLite file (or the store
    URL), and its event count."""
    with (SqliteStore(db, journal_codec()) if isinstance(db, Path)
          else open_store(db, journal_codec())) as store:
        events = store.journal(f"order/{order_id}")
    record = OrderRecord(order=OrderState(order_id=order_id))
    for recorded in events:
        record = evolve_record(record, recorded.event)
    return record.order, len(events)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_foreign_clients_order_ships_and_the_endpoints_report_it(
        tmp_path: Path, kind: str) -> None:
    """serve in-process (on SQLite and on PostgreSQL): a raw JSON PlaceOrder published
    by plain aiomqtt starts an order that the world ships; /healthz and /readyz say
    200, /metrics counts the order with 0 wrong actions, and every endpoint refuses a
    request without a token."""
    with contextlib.ExitStack() as stack:
        store = None
        if kind == "postgresql":
            pg.conninfo()  # skips when no server answers
            store = pg.url(stack.enter_context(pg.scratch_schema()))
        _place_and_check(tmp_path, store)


def _place_and_check(tmp_path: Path, store: str | None) -> None:
    run = f"t{uuid.uuid4().hex[:10]}"
    order_id = f"{run}-o1"
    with broker.own_broker(tmp_path) as (_, port):
        config = load_serve_config(_config(tmp_path, port, run=run, store=store))

        async def main() -> None:
            async with _serving(config, port, run) as served:
                http = served.http
                await _publish(port, run, order_id)
                await _until(served.shipped(order_id), "the order shipped")
                for path in ("/healthz", "/readyz", "/metrics"):
                    status, body = await anyio.to_thread.run_sync(_get, http, path)
                    assert status == 401 and "unauthorized" in body
                    status, _ = await anyio.to_thread.run_sync(
                        _get, http, path, {"Authorization": "Bearer not-the-token"})
                    assert status == 401
                status, body = await anyio.to_thread.run_sync(_get, http, "/healthz", AUTH)
                assert (status, json.loads(body)) == (200, {"status": "ok"})
                status, body = await anyio.to_thread.run_sync(_get, http, "/readyz", AUTH)
                assert status == 200 and json.loads(body)["ready"] is True
                status, text = await anyio.to_thread.run_sync(_get, http, "/metrics", AUTH)
                lines = set(text.splitlines())
                assert status == 200
                assert "orderloom_orders_placed_total 1.0" in lines
                assert 'orderloom_wrong_actions_total{invariant="never_ship_unpaid"} 0.0' in lines
                assert not [line for line in lines if line.startswith(
                    "orderloom_wrong_actions_total") and not line.endswith(" 0.0")]
                assert any(line.startswith('orderloom_decision_latency_seconds_count{actor="order"}')
                           for line in lines)
            assert served.world_kernel is not None
            assert served.world_kernel.dead_letter_counts.get("handler_failed", 0) == 0

        anyio.run(main, backend="asyncio")
        order, events = _stored_order(store or tmp_path / "orders.db", order_id)
        assert order.lifecycle in SHIPPED and events > 0


def test_serve_rides_out_a_broker_restart(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """serve in-process, the broker stopped (SIGTERM) and started again on its port
    with its persistence file: /readyz turns 503 naming the broker, then 200 again;
    serve logs serve.broker_lost then serve.broker_reconnected; an order placed while
    serve is still away reaches it on the resumed session, is placed exactly once and
    ships."""
    run = f"t{uuid.uuid4().hex[:10]}"
    during = f"{run}-o1"
    db = tmp_path / "orders.db"
    with broker.restartable_broker(tmp_path, persistence=True) as mosquitto:
        port = mosquitto.port
        config = load_serve_config(_config(tmp_path, port, run=run, broker_extra={
            "reconnect_max_delay": 0.5}))

        async def main() -> None:
            async with _serving(config, port, run) as served:
                http = served.http

                async def readiness() -> tuple[int, dict[str, Any]]:
                    status, body = await anyio.to_thread.run_sync(_get, http, "/readyz", AUTH)
                    return status, json.loads(body)

                assert (await readiness())[0] == 200

                await anyio.to_thread.run_sync(mosquitto.stop)
                with anyio.fail_after(DEADLINE):
                    while (answer := await readiness())[0] != 503:
                        await anyio.sleep(0.05)
                assert "broker" in answer[1]["not_ready"]

                await anyio.to_thread.run_sync(mosquitto.start)
                await _publish(port, run, during)  # for serve's session, back or not
                with anyio.fail_after(DEADLINE):
                    while (await readiness())[0] != 200:
                        await anyio.sleep(0.05)
                await _until(served.shipped(during),
                             "the order placed during the outage shipped")

        with caplog.at_level(logging.INFO, logger="orderloom.serve"):
            anyio.run(main, backend="asyncio")
    events = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serve.broker_")]
    assert events == ["serve.broker_connected", "serve.broker_lost",
                      "serve.broker_reconnected"]
    reconnected = next(r for r in caplog.records
                       if r.getMessage() == "serve.broker_reconnected")
    assert reconnected.fields["attempts"] >= 1  # type: ignore[attr-defined]
    assert reconnected.fields["outage_seconds"] >= 0  # type: ignore[attr-defined]
    with SqliteStore(db, journal_codec()) as store:
        placed = [r.event for r in store.journal(f"order/{during}")
                  if isinstance(r.event, OrderPlaced)]
    assert len(placed) == 1
    order, _ = _stored_order(db, during)
    assert order.lifecycle in SHIPPED


ORDERLOOM = str(Path(sys.executable).parent / "orderloom")


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("ab") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([ORDERLOOM, "serve", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                                cwd=config.parent)


def _log_events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()
            if line.startswith("{")]


def _wait_for_event(log: Path, event: str, after: int = 0) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = [e for e in _log_events(log)[after:] if e.get("event") == event]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} in {log}:\n{log.read_text(encoding='utf-8')}")


def _stop(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=DEADLINE)
        raise
    return code, time.monotonic() - started


def test_sigterm_exits_0_and_the_orders_survive_a_restart(tmp_path: Path) -> None:
    """A serve subprocess ships an order, exits 0 within 10 s of SIGTERM, and the
    restarted process has the order's state: a redelivered PlaceOrder is ignored
    by the restored order as a duplicate, its journal is unchanged. The stderr log
    is JSON lines naming the order by id, never the customer."""
    run = f"t{uuid.uuid4().hex[:10]}"
    order_id = f"{run}-o1"
    log = tmp_path / "serve.log"
    db = tmp_path / "orders.db"
    with broker.own_broker(tmp_path) as (_, port):
        path = _config(tmp_path, port, run=run)
        config = load_serve_config(path)

        async def world_until(condition: Callable[[], bool], step: Callable[[], Awaitable[None]]
                              ) -> None:
            transport, world_kernel, world = _world_kernel(config, port, run)
            async with transport, world_kernel:
                for address, factory in world.items():
                    world_kernel.spawn(factory, address)
                await step()
                await _until(condition, "the condition")

        def shipped() -> bool:
            try:
                return _stored_order(db, order_id)[0].lifecycle in SHIPPED
            except Exception:  # the file is still being created
                return False

        first = _start(path, log)
        try:
            _wait_for_event(log, "serve.ready")
            anyio.run(world_until, shipped, lambda: _publish(port, run, order_id),
                      backend="asyncio")
        finally:
            code, seconds = _stop(first)
        assert code == 0, log.read_text(encoding="utf-8")
        assert seconds < 10.0
        _wait_for_event(log, "serve.drained")
        before, events_before = _stored_order(db, order_id)
        assert before.lifecycle in SHIPPED

        lines_before = len(_log_events(log))
        second = _start(path, log)
        try:
            ready = _wait_for_event(log, "serve.ready", after=lines_before)
            http = int(str(ready["http"]).rsplit(":", 1)[1])
            # The shop sends the same order again: the order's actor restores from
            # its journal and ignores the placement as a duplicate.
            anyio.run(_publish, port, run, order_id, backend="asyncio")
            deadline = time.monotonic() + DEADLINE
            ignored = False
            while not ignored and time.monotonic() < deadline:
                status, text = _get(http, "/metrics", AUTH)
                ignored = status == 200 and "orderloom_events_ignored_duplicate 1.0" in text
                time.sleep(0.05)
            assert ignored, text
            assert "orderloom_orders_placed_total 0.0" in text.splitlines()
        finally:
            code, seconds = _stop(second)
        assert code == 0, log.read_text(encoding="utf-8")
        assert seconds < 10.0
        after, events_after = _stored_order(db, order_id)
        assert after == before
        assert events_after == events_before
        text = log.read_text(encoding="utf-8")
        assert CUSTOMER not in text
        assert all(json.loads(line)["event"] for line in text.splitlines())
        assert any(e["event"] == "order.stage" and e["order_id"] == order_id
                   for e in _log_events(log))


def test_a_broker_gone_past_the_give_up_time_ends_serve_with_exit_1(tmp_path: Path) -> None:
    """With broker.reconnect_give_up_after set, a broker that stays away makes serve
    log serve.broker_lost, then serve.failed naming the transport, and exit 1 (its
    supervisor restarts it; the store keeps what was committed)."""
    run = f"t{uuid.uuid4().hex[:10]}"
    log = tmp_path / "serve.log"
    with broker.own_broker(tmp_path) as (_, port):
        process = _start(_config(tmp_path, port, run=run, broker_extra={
            "reconnect_max_delay": 0.2, "reconnect_give_up_after": 1}), log)
        try:
            _wait_for_event(log, "serve.ready")
        except BaseException:
            process.kill()
            process.wait(timeout=DEADLINE)
            raise
    # The broker is stopped (by its PID) when the with-block ends.
    try:
        code = process.wait(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=DEADLINE)
    assert code == 1
    lost = _wait_for_event(log, "serve.broker_lost")
    failed = _wait_for_event(log, "serve.failed")
    events = [e.get("event") for e in _log_events(log)]
    assert lost["level"] == "warning"
    assert events.index("serve.broker_lost") < events.index("serve.failed")
    assert failed["level"] == "error" and failed["error"].startswith("TransportError: ")
    assert "gave up reconnecting" in failed["error"]


class _Desk(Actor):
    """A stand-in for the review desk: keeps the cases it is handed."""

    def __init__(self, cases: list[object]) -> None:
        self.cases = cases

    @handler
    async def on_assigned(self, msg: CaseAssigned) -> None:
        self.cases.append(msg)


def test_an_extension_adds_desk_actors_and_routes_behind_the_token(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An extension gets the running node, spawns an actor for each desk team and
    adds a route that sits behind the same token check and sees the principal; a
    staffed desk team draws no 'unstaffed' warning, an unstaffed one does."""
    run = f"t{uuid.uuid4().hex[:10]}"
    cases: list[object] = []
    seen: list[tuple[str, ...]] = []

    def desk(node: ServeNode) -> list[BaseRoute]:
        seen.append(node.config.desk_teams)
        node.kernel.spawn(lambda: _Desk(cases), team_address("fraud"))

        async def whoami(request: Request) -> PlainTextResponse:
            return PlainTextResponse(principal_of(request.scope))

        return [Route("/desk/whoami", whoami)]

    with broker.own_broker(tmp_path) as (_, port):
        config = load_serve_config(_config(tmp_path, port, run=run, desk_teams=["fraud", "payments-ops"]))

        async def main() -> None:
            async with _serving(config, port, run, world=False, extensions=[desk]) as served:
                http = served.http
                assert served.node.kernel.is_running("team/fraud")
                status, body = await anyio.to_thread.run_sync(_get, http, "/desk/whoami", AUTH)
                assert (status, body) == (200, "ops")
                status, _ = await anyio.to_thread.run_sync(_get, http, "/desk/whoami")
                assert status == 401

        with caplog.at_level(logging.INFO, logger="orderloom.serve"):
            anyio.run(main, backend="asyncio")
    assert seen == [("fraud", "payments-ops")]
    unstaffed = [r.fields["team"] for r in caplog.records  # type: ignore[attr-defined]
                 if r.getMessage() == "serve.desk_team_unstaffed"]
    assert unstaffed == ["payments-ops"]


def test_a_held_order_is_decided_on_the_review_desk(tmp_path: Path) -> None:
    """With desk_teams [fraud], an order the gateway scores risky is held and its
    case reaches serve's review desk (not the world): /desk/api/cases lists it, a
    person approves it with a reason, and the order ships with the decision
    journaled as theirs."""
    run = f"t{uuid.uuid4().hex[:10]}"
    order_id = f"{run}-o1"
    with broker.own_broker(tmp_path) as (_, port):
        config = load_serve_config(_config(tmp_path, port, run=run, desk_teams=["fraud"]))
        cases: list[dict[str, Any]] = []

        async def main() -> None:
            async with _serving(config, port, run, risk=0.6) as served:
                http = served.http
                assert "team/fraud" not in served.world
                assert served.node.kernel.is_running("team/fraud")
                status, _ = await anyio.to_thread.run_sync(_get, http, "/desk/api/cases")
                assert status == 401
                await _publish(port, run, order_id)

                async def open_cases() -> list[dict[str, Any]]:
                    status, body = await anyio.to_thread.run_sync(
                        _get, http, "/desk/api/cases?status=open", AUTH)
                    assert status == 200, body
                    found: list[dict[str, Any]] = json.loads(body)["cases"]
                    return found

                with anyio.fail_after(DEADLINE):
                    while not cases:
                        cases.extend(await open_cases())
                        await anyio.sleep(0.05)
                case = cases[0]
                status, body = await anyio.to_thread.run_sync(
                    _get, http, f"/desk/api/cases/{case['case_id']}/approve", AUTH,
                    {"why": "known customer"})
                assert status == 200, body
                await _until(served.shipped(order_id), "the order shipped")

        anyio.run(main, backend="asyncio")
    assert [(c["order_id"], c["team"], c["status"]) for c in cases] == [
        (order_id, "fraud", "open")]
    with SqliteStore(tmp_path / "orders.db", journal_codec()) as store:
        journal = [r.event for r in store.journal(f"order/{order_id}")]
    released = [(e.hold_id, e.released_by, e.note, e.decision) for e in journal
                if isinstance(e, HoldReleased)]
    assert released == [(cases[0]["case_id"], "ops", "known customer", Decision.RELEASE)]


def test_orders_come_in_through_the_ingest_sources(tmp_path: Path) -> None:
    """With an envelope source in ``ingest``, an order placed by POST /ingest/wms
    (with a token; 401 without) and one published on orderloom/v1/in/wms both
    start; a payload that is not JSON is refused with 422, recorded and counted in
    orderloom_inbound_refused_total."""
    run = f"t{uuid.uuid4().hex[:10]}"
    by_http, by_mqtt = f"{run}-h1", f"{run}-m1"
    with broker.own_broker(tmp_path) as (_, port):
        config = load_serve_config(_config(tmp_path, port, run=run, ingest={"wms": {"kind": "envelope"}}))

        async def main() -> None:
            async with _serving(config, port, run, world=False) as served:
                node, http = served.node, served.http
                status, _ = await anyio.to_thread.run_sync(
                    _post_raw, http, "/ingest/wms", _envelope(by_http), {})
                assert status == 401
                status, body = await anyio.to_thread.run_sync(
                    _post_raw, http, "/ingest/wms", _envelope(by_http), AUTH)
                assert status == 202, body
                status, body = await anyio.to_thread.run_sync(
                    _post_raw, http, "/ingest/wms", b"{not json", AUTH)
                assert status == 422 and json.loads(body)["error"] == "not_json"
                status, text = await anyio.to_thread.run_sync(_get, http, "/metrics", AUTH)
                assert status == 200
                assert "orderloom_inbound_refused_total 1.0" in text.splitlines()
                async with aiomqtt.Client("127.0.0.1", port, identifier=f"{run}-wms") as wms:
                    await wms.publish(ingest_topic("wms"), _envelope(by_mqtt), qos=1)
                await _until(lambda: node.kernel.is_running(f"order/{by_http}")
                             and node.kernel.is_running(f"order/{by_mqtt}"), "both orders")

        anyio.run(main, backend="asyncio")
    for order_id in (by_http, by_mqtt):
        order, _ = _stored_order(tmp_path / "orders.db", order_id)
        assert order.placed_at is not None
    with SqliteStore(tmp_path / "orders.db", journal_codec()) as store:
        assert [d.origin for d in store.dead_letters()] == ["POST /ingest/wms"]


def _post_raw(port: int, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=raw,
                                     headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
