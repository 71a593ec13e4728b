"""``orderloom serve``: the live coordinator process (the composition root).

One anyio task group runs the MQTT transport, the live kernel (kernel time =
epoch seconds, so durable timers' absolute due times survive a restart) with
the coordinator's actors on it, and the operations HTTP app (uvicorn).

A stop (SIGTERM, SIGINT, or the ``stop`` event) takes these steps: readiness
turns 503 and the HTTP ingest route answers 503 (``stopping``), the
transport stops reading the broker, the kernel drains its
in-flight turns, the outbox is waited on until every committed message is
published, the kernel stops its actors, the HTTP server stops, the store
closes.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any

import anyio
import attrs
import uvicorn
from starlette.routing import BaseRoute, Mount

from orderloom.actors import (
    IngestSeam,
    MetricsCollector,
    spawn_review_desks,
    OrderActor,
    OrderSettings,
    journal_codec,
    team_address,
    wire_codec,
)
from orderloom.actors.coordinator import COORDINATOR_ADDRESSES, spawn_coordinator
from orderloom.runtime import Store, StoreError, open_store
from orderloom.runtime.live import Activator, LiveKernel
from orderloom.runtime.mqtt import (
    LinkEvent,
    LinkLost,
    LinkRestored,
    MqttTls,
    MqttTransport,
    Reconnect,
)
from orderloom.runtime.ops import Tokens
from orderloom.runtime.webhooks import ingest_auth_exempt, ingest_routes

from ._desk_web import desk_routes
from ._serve_config import ServeConfig
from ._serve_http import InboundRefused, LiveMetrics, Readiness, build_app
from ._serve_log import log_event, telemetry_log_sink

__all__ = ["DRAIN_TIMEOUT", "Extension", "Running", "ServeError", "ServeNode", "TIMER_LOOKAHEAD",
           "TIMER_POLL_INTERVAL", "log_link", "order_activator", "restore_orders", "review_desk",
           "serve", "transport_for", "wake_due", "watch_timers"]

DRAIN_TIMEOUT = 1.5
"""Real seconds for each drain step of a stop: the drain of in-flight work,
then the kernel's shutdown (drain, stop the actors, cancel what is left)."""
HTTP_STOP_TIMEOUT = 1.5
"""Real seconds the HTTP server has to finish its open requests at a stop."""
FLUSH_TIMEOUT = 1.5
"""Real seconds a stop waits for the outbox to empty after the drain."""
START_TIMEOUT = 30.0
"""Real seconds the HTTP server has to start listening."""
TIMER_POLL_INTERVAL = 15.0
"""Real seconds between two looks at the store's due timers (:func:`watch_timers`):
an order that passivated waits in the store, not in memory, and this is how
often serve asks which of them have a timer coming up."""
TIMER_LOOKAHEAD = 60.0
"""Kernel seconds ahead that :func:`watch_timers` (and the start) brings an
order back for its next durable timer: more than :data:`TIMER_POLL_INTERVAL`
(at speed 1), so a timer's order runs before the timer is due even if one
look comes late; the restored actor arms the timer for its due time."""
_FIRST_RECONNECT_DELAY = 0.2
"""Real seconds (at most, jittered) before the first reconnect attempt: a
broker restart is usually over within a second; the wait doubles from here
up to ``broker.reconnect_max_delay``."""


class ServeError(RuntimeError):
    """``serve`` could not start (the HTTP port is taken, ...)."""


@attrs.define(kw_only=True)
class ServeNode:
    """What an :data:`Extension` gets: the running node's parts.

    Attributes:
        config: the checked config (``config.desk_teams``: the teams staffed
            by people, whose ``team/<name>`` addresses this node subscribes).
        kernel: the live kernel (spawn more actors on it).
        store: the coordinator's store.
        settings: the order settings every order actor shares.
    """

    config: ServeConfig
    kernel: LiveKernel
    store: Store
    settings: OrderSettings


Extension = Callable[[ServeNode], Sequence[BaseRoute]]
"""The seam for the review desk and the ingest webhooks: called once the
coordinator runs and before HTTP starts; it may spawn actors (a review desk
per ``config.desk_teams`` entry at ``team/<name>``) and returns routes to add
to the app (behind the same token check)."""


def review_desk(node: ServeNode) -> list[BaseRoute]:
    """The default :data:`Extension`: a :class:`~orderloom.actors.ReviewDesk` at
    ``team/<name>`` for each of ``config.desk_teams`` (journaling in the
    coordinator's store) and the desk's page and API under ``/desk``. A case
    may be reassigned to any team of the scenario (a desk or an outside one)."""
    teams = node.config.desk_teams
    if not teams:
        return []
    spawn_review_desks(node.kernel, teams, node.store)
    return [Mount("/desk", routes=desk_routes(node.kernel, teams,
                                              reassign_to=node.config.teams))]


@attrs.frozen(kw_only=True)
class Running:
    """Handed to ``on_ready`` once everything listens.

    Attributes:
        http_port: the port the HTTP app listens on (the real one when the
            config asked for port 0).
        node: the running node.
    """

    http_port: int
    node: ServeNode


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: serve owns the stop sequence."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def ingest_gate(config: ServeConfig) -> IngestSeam | None:
    """The ingest gate of ``config.ingest``'s sources (None without any)."""
    return IngestSeam(wire_codec(), config.ingest) if config.ingest else None


def transport_for(config: ServeConfig, gate: IngestSeam | None = None,
                  store: Store | None = None) -> MqttTransport:
    """The MQTT transport ``config`` asks for: the coordinator's addresses, the
    desk teams' ``team/<name>`` addresses and, with a ``gate``, the ingest
    topics of its sources (refused payloads recorded in ``store``)."""
    broker = config.broker
    tls = None if broker.tls is None else MqttTls(
        ca_file=broker.tls.ca_file, cert_file=broker.tls.cert_file,
        key_file=broker.tls.key_file)
    subscriptions = [*COORDINATOR_ADDRESSES, *(team_address(t) for t in config.desk_teams)]
    reconnect = Reconnect(first_delay=min(_FIRST_RECONNECT_DELAY, broker.reconnect_max_delay),
                          max_delay=broker.reconnect_max_delay,
                          give_up_after=broker.reconnect_give_up_after)
    return MqttTransport(wire_codec(), client_id=broker.client_id, subscriptions=subscriptions,
                         hostname=broker.host, port=broker.port, username=broker.username,
                         password=broker.password, tls=tls, ingest=gate,
                         on_refused=store.record_dead_letter if store is not None else None,
                         reconnect=reconnect, on_link=log_link)


def log_link(event: LinkEvent) -> None:
    """Log the broker connection's breaks and returns (``serve.broker_lost``,
    ``serve.broker_reconnected``). The error is the client library's message:
    it names the connection's fate, never a payload."""
    match event:
        case LinkLost(error=error):
            log_event("serve.broker_lost", logging.WARNING, error=error)
        case LinkRestored(attempts=attempts, outage=outage):
            log_event("serve.broker_reconnected", attempts=attempts,
                      outage_seconds=round(outage, 3))


def restore_orders(kernel: LiveKernel, settings: OrderSettings, store: Store,
                   horizon: float = float("inf")) -> int:
    """Spawn the order actors that have work pending in ``store``: a durable
    timer due by ``horizon`` (kernel time; later ones are :func:`watch_timers`'
    business) or an unpublished outbox entry. Each restores from its journal,
    re-arms its timers and publishes its outbox. Returns how many."""
    streams = {t.stream for t in store.due_timers(horizon)}
    streams |= {e.stream for e in store.pending_outbox(10_000)}
    count = 0
    for stream in sorted(streams):
        kind, _, order_id = stream.partition("/")
        if kind != "order" or not order_id or kernel.is_running(stream):
            continue
        kernel.spawn(lambda order_id=order_id: OrderActor(order_id, settings, store),  # type: ignore[misc]
                     stream)
        count += 1
    return count


def order_activator(settings: OrderSettings, store: Store) -> Activator:
    """Start an order's actor when a message comes for it over the broker and it
    is not running (retired, or not restored at start): it restores from its
    journal. An order the store has never seen is left to intake (a message
    for it is an ``unknown_address`` dead letter)."""

    def activate(address: str) -> Callable[[], OrderActor] | None:
        kind, _, order_id = address.partition("/")
        if kind != "order" or not order_id or store.load(address).version == 0:
            return None
        return lambda: OrderActor(order_id, settings, store)

    return activate


def wake_due(kernel: LiveKernel, store: Store, horizon: float) -> int:
    """Start, through the kernel's activator, the actors not running whose
    durable timers are due by ``horizon`` (kernel time): passivated ones wait
    in the store, and their timers fire only in a running actor. Returns how
    many started."""
    woken = 0
    for stream in sorted({t.stream for t in store.due_timers(horizon)}):
        if not kernel.is_running(stream) and kernel.activate(stream):
            woken += 1
    return woken


async def watch_timers(kernel: LiveKernel, store: Store, *,
                       interval: float = TIMER_POLL_INTERVAL,
                       lookahead: float = TIMER_LOOKAHEAD) -> None:
    """Every ``interval`` real seconds, :func:`wake_due` the actors with a
    timer due within ``lookahead`` kernel seconds, until cancelled. A store
    error is logged and the next look tries again.

    Raises:
        ValueError: ``interval`` or ``lookahead`` is not > 0.
    """
    if not interval > 0:
        raise ValueError(f"watch_timers: interval must be > 0 real seconds, got {interval!r}")
    if not lookahead > 0:
        raise ValueError(f"watch_timers: lookahead must be > 0 kernel seconds, "
                         f"got {lookahead!r}")
    while True:
        await anyio.sleep(interval)
        try:
            woken = wake_due(kernel, store, kernel.now() + lookahead)
        except StoreError as exc:
            log_event("serve.timer_watch_failed", logging.WARNING, error=type(exc).__name__,
                      detail=str(exc))
            continue
        if woken:
            log_event("serve.orders_woken", logging.DEBUG, orders=woken)


async def serve(config: ServeConfig, *, stop: anyio.Event | None = None,
                on_ready: Callable[[Running], None] | None = None,
                extensions: Sequence[Extension] = (review_desk,),
                handle_signals: bool = False) -> None:
    """Run the live coordinator until ``stop`` is set (or SIGTERM/SIGINT with
    ``handle_signals``), then stop gracefully. ``extensions`` add actors and
    routes (default: the review desk of ``config.desk_teams``).

    Raises:
        ServeError: the HTTP server could not start.
        StoreError: the store cannot be opened.
        TransportError: the broker cannot be reached at start, or a lost
            connection did not come back within ``broker.reconnect_give_up_after``.
    """
    stop = stop or anyio.Event()
    store = open_store(config.store, journal_codec())
    log_event("serve.store_opened", store=config.store.split(":", 1)[0])
    gate = ingest_gate(config)
    try:
        async with transport_for(config, gate, store) as transport, LiveKernel(
                transport=transport, speed=1.0, start_time=time.time()) as kernel:
            log_event("serve.broker_connected", host=config.broker.host, port=config.broker.port,
                      client_id=config.broker.client_id)
            await _run(config, store, transport, kernel, gate, stop, on_ready, extensions,
                       handle_signals)
    finally:
        store.close()
        log_event("serve.stopped")


async def _run(config: ServeConfig, store: Store, transport: MqttTransport, kernel: LiveKernel,
               gate: IngestSeam | None, stop: anyio.Event, on_ready: Callable[[Running], None] | None,
               extensions: Sequence[Extension], handle_signals: bool) -> None:
    now = kernel.now()
    fold = MetricsCollector.for_live_process(now, config.teams)  # no state_mismatches
    kernel.add_sink(fold.on_emit)
    kernel.add_sink(telemetry_log_sink)
    readiness = Readiness(lambda: transport.connected, store, config.max_outbox_lag)
    refused = InboundRefused(lambda: transport.dead_letters)
    metrics = LiveMetrics(kernel, fold, readiness, refused)
    kernel.add_turn_sink(metrics.on_turn)
    settings = spawn_coordinator(kernel, attrs.evolve(
        config.settings, passivate_idle_after=config.passivate_idle_after), store, live=True)
    kernel.set_activator(order_activator(settings, store))
    restored = restore_orders(kernel, settings, store, horizon=now + TIMER_LOOKAHEAD)
    node = ServeNode(config=config, kernel=kernel, store=store, settings=settings)
    routes = [route for extension in extensions for route in extension(node)]
    if gate is not None:
        routes += ingest_routes(gate, kernel, store=store, transport=transport,
                                stopping=lambda: readiness.stopping,
                                on_refused=refused.on_refused)
    for team in config.desk_teams:
        if not kernel.is_running(team_address(team)):
            log_event("serve.desk_team_unstaffed", logging.WARNING, team=team,
                      detail="no actor serves this desk team: its cases become dead letters")
    app = build_app(Tokens(config.http.tokens), readiness, metrics, routes,
                    exempt=ingest_auth_exempt(gate) if gate is not None else None)
    server = _Server(uvicorn.Config(app, host=config.http.bind, port=config.http.port,
                                    log_config=None, access_log=False, lifespan="off"))
    async with anyio.create_task_group() as tg:
        failed: list[BaseException] = []
        http_done = anyio.Event()
        tg.start_soon(_http, server, failed, http_done)
        watch = anyio.CancelScope()
        tg.start_soon(_in_scope, watch, watch_timers(kernel, store))
        if handle_signals:  # from here on a signal stops gracefully (once HTTP is up)
            tg.start_soon(_signals, stop)
        with anyio.fail_after(START_TIMEOUT):
            while not server.started:
                if failed:
                    raise ServeError(f"http: cannot listen on {config.http.bind}:"
                                     f"{config.http.port}") from failed[0]
                await anyio.sleep(0.01)
        port = _bound_port(server, config.http.port)
        log_event("serve.ready", http=f"{config.http.bind}:{port}", restored_orders=restored,
                  policy=settings.policy.name, scenario=config.scenario)
        if on_ready is not None:
            on_ready(Running(http_port=port, node=node))
        await stop.wait()
        watch.cancel()  # a stopping kernel starts no more actors
        await _stop(kernel, transport, readiness, server, http_done)
        tg.cancel_scope.cancel()


async def _in_scope(scope: anyio.CancelScope, work: Coroutine[Any, Any, None]) -> None:
    with scope:
        await work


async def _http(server: _Server, failed: list[BaseException], done: anyio.Event) -> None:
    try:
        await server.serve()
    except SystemExit as exc:  # uvicorn exits the process when it cannot bind
        failed.append(exc)
    finally:
        done.set()


def _bound_port(server: _Server, asked: int) -> int:
    for listener in getattr(server, "servers", ()):
        for sock in listener.sockets:
            port: int = sock.getsockname()[1]
            return port
    return asked


async def _signals(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async for signum in received:
            log_event("serve.signal", signal=signal.Signals(signum).name)
            stop.set()
            return


async def _stop(kernel: LiveKernel, transport: MqttTransport, readiness: Readiness,
                server: _Server, http_done: anyio.Event) -> None:
    started = time.monotonic()
    readiness.stopping = True
    transport.stop_reading()
    # In-flight turns finish and their effects are published while the kernel
    # still runs; only then are the actors stopped.
    await kernel.drain(DRAIN_TIMEOUT)
    lag: Any = None
    with anyio.move_on_after(FLUSH_TIMEOUT):
        while True:
            try:
                lag = readiness.outbox_lag()
            except StoreError as exc:
                lag = f"unknown: {type(exc).__name__}"
                break
            if lag == 0:
                break
            await anyio.sleep(0.05)
    await kernel.shutdown(drain_timeout=DRAIN_TIMEOUT)
    if lag != 0:
        # Committed, so not lost: the next start restores their orders, which
        # publish them (restore_orders).
        log_event("serve.outbox_not_flushed", logging.WARNING, outbox_lag=lag)
    server.should_exit = True
    with anyio.move_on_after(HTTP_STOP_TIMEOUT):
        await http_done.wait()
    log_event("serve.drained", seconds=round(time.monotonic() - started, 3),
              dead_letters=kernel.dead_letter_total)
