"""The HTTP side of ``orderloom serve``: health, readiness and Prometheus metrics.

Every endpoint sits behind :class:`~orderloom.runtime.ops.TokenAuth`. More
routes (the review desk's, the ingest webhooks') are added through
:func:`build_app`'s ``routes``.

The metrics come from the same fold as the simulator's
(:class:`~orderloom.actors.MetricsCollector`, fed by the kernel's telemetry
sink), under the same names with ``orderloom_`` in front and every character
outside ``[a-zA-Z0-9_]`` turned into ``_`` (``cycle_time.p50`` ->
``orderloom_cycle_time_p50``); the fold's counts are Prometheus counters
(``orderloom_orders_placed_total``, ``orderloom_wrong_actions_total{invariant}``,
...), the rest gauges. Beside them: open cases and orders in flight, dead
letters by reason, refused inbound payloads, supervision failures, the
outbox lag and the decision latency (a transport message's arrival to its
turn's commit). A fold that compares no downstream system's view (serve's:
those views live in the downstream systems' own processes) has no
``state_mismatches`` to show: they are left out, not shown as 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from orderloom.actors import INVARIANTS_BY_NAME, MetricsCollector
from orderloom.runtime import Envelope, RefusedPayload, Store, StoreError
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.ops import Scope, TokenAuth, Tokens

__all__ = ["COUNTED", "InboundRefused", "LiveMetrics", "Readiness", "build_app",
           "prometheus_name"]

COUNTED = ("orders.placed", "throughput", "orders_closed", "exceptions", "handoffs",
           "manual_overrides", "reviewer_errors", "commands_refused",
           "unreviewed_irreversible", "gateway_timeouts", "sla_breaches")
"""The fold's metrics that only grow: exposed as Prometheus counters."""

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def prometheus_name(metric: str) -> str:
    """The Prometheus name of a fold metric: ``orderloom_`` + the name, made safe."""
    return "orderloom_" + _UNSAFE.sub("_", metric)


class Readiness:
    """What ``/readyz`` checks: the broker connection, the store, the outbox lag.

    Args:
        connected: whether the broker connection is up.
        store: the coordinator's store (it must answer).
        max_outbox_lag: ready only while fewer messages than this are
            committed but not yet published.
    """

    def __init__(self, connected: Callable[[], bool], store: Store, max_outbox_lag: int) -> None:
        self.connected = connected
        self.store = store
        self.max_outbox_lag = max_outbox_lag
        self.stopping = False

    def outbox_lag(self) -> int:
        """Messages committed but not yet published (counted up to the limit + 1).

        Raises:
            StoreError: the store does not answer.
        """
        return len(self.store.pending_outbox(self.max_outbox_lag + 1))

    def check(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, body)``; a body that is not ready names each problem."""
        problems: dict[str, str] = {}
        lag: int | None = None
        if self.stopping:
            problems["process"] = "shutting down"
        if not self.connected():
            problems["broker"] = "not connected"
        try:
            lag = self.outbox_lag()
        except StoreError as exc:
            problems["store"] = f"does not answer: {type(exc).__name__}"
        if lag is not None and lag >= self.max_outbox_lag:
            problems["outbox"] = (f"{lag} messages committed but not published "
                                  f"(ready below {self.max_outbox_lag})")
        body: dict[str, Any] = {"ready": not problems, "outbox_lag": lag}
        if problems:
            body["not_ready"] = problems
        return not problems, body


class InboundRefused:
    """How many inbound payloads were refused, whichever way they came in: the
    MQTT transport's own count (ingest topics and ``to/`` topics) plus the
    refusals the HTTP ingest route reports to :meth:`on_refused`. Calling it
    gives the sum (``orderloom_inbound_refused_total``).

    Args:
        transport: the transport's count (``MqttTransport.dead_letters``).
    """

    def __init__(self, transport: Callable[[], int]) -> None:
        self.transport = transport
        self.http = 0

    def on_refused(self, letter: RefusedPayload) -> None:
        """The HTTP ingest route's hook (``ingest_routes(on_refused=...)``)."""
        self.http += 1

    def __call__(self) -> int:
        return self.transport() + self.http


class LiveMetrics(Collector):
    """The Prometheus view of a live coordinator, in a registry of its own.

    Args:
        kernel: the live kernel (dead letters, failures, clock).
        fold: the metrics fold the kernel's telemetry sink feeds.
        readiness: for the outbox lag.
        refused: how many inbound payloads were refused, over MQTT or HTTP
            (an :class:`InboundRefused`).
    """

    def __init__(self, kernel: LiveKernel, fold: MetricsCollector, readiness: Readiness,
                 refused: Callable[[], int]) -> None:
        self.kernel = kernel
        self.fold = fold
        self.readiness = readiness
        self.refused = refused
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            "orderloom_decision_latency_seconds",
            "From a message's arrival off the broker to its turn's commit, by actor kind.",
            ["actor"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(self)

    def on_turn(self, envelope: Envelope, latency: float) -> None:
        """The kernel's turn sink: one decision latency sample."""
        self.latency.labels(envelope.recipient.split("/", 1)[0]).observe(latency)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        metrics, _, _ = self.fold.finish(self.kernel.now())
        wrong = CounterMetricFamily(
            "orderloom_wrong_actions", "Actions that broke an order invariant (must stay 0).",
            labels=["invariant"])
        for invariant in sorted(set(INVARIANTS_BY_NAME) | {
                name.split(".", 1)[1] for name in metrics if name.startswith("wrong_actions.")}):
            wrong.add_metric([invariant], metrics.get(f"wrong_actions.{invariant}", 0.0))
        yield wrong
        for name, value in metrics.items():
            if name == "wrong_actions" or name.startswith("wrong_actions."):
                continue
            if not self.fold.systems and name.startswith("state_mismatches"):
                continue  # not measured: no downstream system's view reaches the fold
            family: Metric
            if name in COUNTED:
                family = CounterMetricFamily(prometheus_name(name), f"Fold metric {name}.")
                family.add_metric([], value)
            else:
                family = GaugeMetricFamily(prometheus_name(name), f"Fold metric {name}.")
                family.add_metric([], value)
            yield family
        tracked = self.fold.tracked()
        yield GaugeMetricFamily("orderloom_open_cases", "Cases a team (or desk) still holds.",
                                value=tracked["cases"])
        yield GaugeMetricFamily("orderloom_orders_in_flight", "Orders placed, not yet finished.",
                                value=tracked["orders"])
        dead = CounterMetricFamily("orderloom_dead_letters", "Dead letters of the kernel.",
                                   labels=["reason"])
        for reason, count in sorted(self.kernel.dead_letter_counts.items()):
            dead.add_metric([reason], count)
        yield dead
        yield CounterMetricFamily(
            "orderloom_inbound_refused",
            "Inbound payloads refused (over MQTT or HTTP) to the dead-letter topic and table.",
            value=self.refused())
        failures = CounterMetricFamily("orderloom_actor_failures",
                                       "Handler failures, by supervision's action.",
                                       labels=["action"])
        for action, count in sorted(self.kernel.failure_counts.items()):
            failures.add_metric([action], count)
        yield failures
        try:
            lag = float(self.readiness.outbox_lag())
        except StoreError:
            lag = float("nan")
        yield GaugeMetricFamily("orderloom_outbox_lag",
                                "Messages committed but not yet published.", value=lag)


def build_app(tokens: Tokens, readiness: Readiness, metrics: LiveMetrics,
              routes: Sequence[BaseRoute] = (),
              exempt: Callable[[Scope], bool] | None = None) -> TokenAuth:
    """The operations app, every route behind the token check.

    Args:
        routes: more routes (the review desk's, the ingest webhooks').
        exempt: the requests that authenticate otherwise (a Shopify
            webhook's HMAC: ``orderloom.runtime.webhooks.ingest_auth_exempt``).
    """

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, body = readiness.check()
        return JSONResponse(body, status_code=200 if ready else 503)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(routes=[
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", prometheus),
        *routes])
    return TokenAuth(app, tokens, exempt=exempt)
