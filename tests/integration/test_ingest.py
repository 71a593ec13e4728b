"""Ingest end to end: Shopify webhooks over MQTT 5 (headers as user properties)
and over HTTP reach the coordinator's intake on a live kernel; refusals land on
the dead topic and in the store's table, redacted; duplicates and reordering
change nothing. On the shared Mosquitto (marked integration)."""

from __future__ import annotations

import functools
import datetime as dt
import json
import random
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import attrs
import httpx2
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from starlette.applications import Starlette

from orderloom.actors import (
    EnvelopeSource,
    IngestSeam,
    OrderActor,
    OrderSettings,
    OrderState,
    ShopifySource,
    journal_codec,
    load_builtin_policy,
    wire_codec,
)
from orderloom.actors.coordinator import spawn_coordinator
from orderloom.cli._serve import order_activator
from orderloom.runtime import (
    Address,
    Envelope,
    IngestAccepted,
    IngestReason,
    MemoryStore,
    Store,
    StoreFailure,
    Turn,
    ingest_topic,
)
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.mqtt import MqttTransport
from orderloom.runtime.ops import TokenAuth, Tokens
from orderloom.runtime.sqlite import SqliteStore
from orderloom.runtime.webhooks import ingest_auth_exempt, ingest_routes
from tests import broker
from tests.shopify import ORDER, PERSONAL, SECRET, SHOP
from tests.shopify import fixture as shopify_fixture, headers as shopify_headers

pytestmark = pytest.mark.integration

# Just after the capture's processed_at: every fixture used is within 7 days.
NOW = dt.datetime.fromisoformat("2024-05-02T14:03:00+02:00").timestamp()
DEADLINE = 60.0  # real seconds: a hang guard, never a timing assertion
TOKEN = "ops-token-0123456789abcdef"
FLOW = ("orders_create", "orders_paid", "orders_updated", "order_transactions_authorization",
        "order_transactions_capture")
TOPICS = {"orders_create": "orders/create", "orders_paid": "orders/paid",
          "orders_updated": "orders/updated",
          "order_transactions_authorization": "order_transactions/create",
          "order_transactions_capture": "order_transactions/create"}


def webhook(name: str, *, secret: bytes = SECRET) -> tuple[dict[str, str], bytes]:
    raw = shopify_fixture(name)
    return shopify_headers(raw, TOPICS[name], f"wh-{name}", secret=secret), raw


def shop_source(run: str) -> str:
    """The run's Shopify source name on the shared broker: tests on other workers
    publish to theirs, so no coordinator here ingests another test's webhooks."""
    return f"shopify-{run}"


def seam(shopify: str = "shopify") -> IngestSeam:
    return IngestSeam(wire_codec(), {shopify: ShopifySource(shop=SHOP, secret=SECRET),
                                     "wms": EnvelopeSource()})


@asynccontextmanager
async def coordinator(store: Store, run: str, *, activate: bool = False,
                      ) -> AsyncIterator[tuple[LiveKernel, MqttTransport]]:
    """A coordinator on a live kernel, ingesting Shopify over the shared broker
    (``activate``: with serve's activator, which restarts a retired order)."""
    host, port = broker.shared_broker()
    settings = OrderSettings(policy=load_builtin_policy("cautious"))
    async with MqttTransport(wire_codec(), client_id=f"{run}-coord",
                             subscriptions=[f"{run}/#"], hostname=host, port=port,
                             session_expiry=60, ingest=seam(shop_source(run)),
                             on_refused=store.record_dead_letter, clock=lambda: NOW) as t, \
            LiveKernel(seed=1, speed=1.0, start_time=NOW, transport=t) as kernel:
        settings = spawn_coordinator(kernel, settings, store)
        if activate:
            kernel.set_activator(order_activator(settings, store))
        yield kernel, t


async def publish(client: aiomqtt.Client, source: str, headers: dict[str, str],
                  raw: bytes) -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = list(headers.items())
    await client.publish(ingest_topic(source), raw, qos=1, properties=props)


def order_of(kernel: LiveKernel) -> OrderState | None:
    if not kernel.is_running(f"order/{ORDER}"):
        return None
    actor = kernel.actor(f"order/{ORDER}")
    assert isinstance(actor, OrderActor)
    return actor.state.order


def projection(order: OrderState | None) -> Any:
    """What the Shopify webhooks decide of an order (not what automation asked since)."""
    if order is None:
        return None
    return (order.placed_at, order.customer_id, order.currency, order.lifecycle,
            order.line_items, order.authorizations, order.captures, order.refunds,
            order.canceled_at_version is not None)


async def until(check: Any, what: str) -> None:
    with anyio.fail_after(DEADLINE):
        while not check():
            await anyio.sleep(0.02)


def on_asyncio(test: Callable[[Path], Awaitable[None]]) -> Callable[[Path], None]:
    """Run an async test on asyncio (aiomqtt runs on asyncio only)."""

    @functools.wraps(test)
    def run(tmp_path: Path) -> None:
        anyio.run(test, tmp_path, backend="asyncio")

    return run


def sqlite(tmp_path: Path, name: str) -> SqliteStore:
    return SqliteStore(tmp_path / f"{name}.sqlite", journal_codec())


@on_asyncio
async def test_a_signed_orders_create_over_mqtt_places_the_order(tmp_path: Path) -> None:
    """orders/create with a valid HMAC in MQTT 5 user properties reaches intake, which
    starts the order's actor: the order is placed with Shopify's lines."""
    run = uuid.uuid4().hex[:8]
    host, port = broker.shared_broker()
    with sqlite(tmp_path, "s") as store:
        async with coordinator(store, run) as (kernel, _), \
                aiomqtt.Client(host, port, identifier=f"{run}-shop",
                               protocol=aiomqtt.ProtocolVersion.V5) as shop:
            await publish(shop, shop_source(run), *webhook("orders_create"))
            await until(lambda: order_of(kernel) is not None
                        and order_of(kernel).placed_at is not None, "the order is placed")
            order = order_of(kernel)
            assert order is not None and order.customer_id is not None
            assert [li.line_id for li in order.line_items] == ["13996578472024", "13996578504792"]
        assert store.dead_letters() == ()
        assert [r.version for r in store.journal(f"order/{ORDER}")][:1] == [1]


@on_asyncio
async def test_a_bad_hmac_lands_on_the_dead_topic_and_in_the_table_redacted(
        tmp_path: Path) -> None:
    """A webhook signed with another secret changes nothing, is published on
    orderloom/v1/dead/bad_signature and recorded, both without personal data."""
    run = uuid.uuid4().hex[:8]
    host, port = broker.shared_broker()
    dead: list[tuple[str, dict[str, Any]]] = []
    with sqlite(tmp_path, "s") as store:
        async with coordinator(store, run) as (kernel, transport), \
                aiomqtt.Client(host, port, identifier=f"{run}-watch",
                               protocol=aiomqtt.ProtocolVersion.V5) as watch, \
                anyio.create_task_group() as tg:
            await watch.subscribe("orderloom/v1/dead/#", qos=1)

            async def collect() -> None:
                async for message in watch.messages:
                    assert isinstance(message.payload, bytes)
                    record = json.loads(message.payload)
                    if record["origin"] == ingest_topic(shop_source(run)) and \
                            record["received_at"] == NOW:
                        dead.append((str(message.topic), record))

            tg.start_soon(collect)
            await publish(watch, shop_source(run),
                          *webhook("orders_create", secret=b"forged-secret"))
            await until(lambda: bool(dead) and bool(store.dead_letters()), "dead-lettered")
            tg.cancel_scope.cancel()
            assert order_of(kernel) is None and not kernel.is_running(f"order/{ORDER}")
            assert transport.dead_letters == 1
        [(topic, record)] = dead[:1]
        assert topic == "orderloom/v1/dead/bad_signature"
        [letter] = store.dead_letters()
        assert letter.reason is IngestReason.BAD_SIGNATURE and letter.source == shop_source(run)
        assert letter.as_dict() == record
        for text in (json.dumps(record), json.dumps(letter.as_dict())):
            for word in PERSONAL:
                assert word not in text
        assert list(store.streams()) == []  # no order, no journal


@on_asyncio
async def test_duplicates_and_reordering_give_the_state_of_one_ordered_delivery(
        tmp_path: Path) -> None:
    """Each webhook 1 to 5 times with 10% of neighbours swapped ends in the same
    order state as one delivery of each, in order."""
    host, port = broker.shared_broker()
    rng = random.Random(10)  # reorders orders/updated before orders/paid
    messy: list[str] = [name for name in FLOW for _ in range(rng.randint(1, 5))]
    for i in range(len(messy) - 1):
        if rng.random() < 0.10:
            messy[i], messy[i + 1] = messy[i + 1], messy[i]
    assert messy != sorted(messy, key=FLOW.index)  # the seed does reorder

    async def run_with(names: list[str], name: str) -> Any:
        run = uuid.uuid4().hex[:8]
        with sqlite(tmp_path, name) as store:
            async with coordinator(store, run) as (kernel, _), \
                    aiomqtt.Client(host, port, identifier=f"{run}-shop",
                                   protocol=aiomqtt.ProtocolVersion.V5) as shop:
                for webhook_name in names:
                    await publish(shop, shop_source(run), *webhook(webhook_name))
                # Every webhook's last event applied: the capture is in and the
                # newest order snapshot (orders/updated) was seen.
                await until(lambda: (o := order_of(kernel)) is not None and bool(o.captures)
                            and f"{ORDER}:placed" in o.seen_event_ids, "all applied")
                await kernel.settle(kernel.now())
                return projection(order_of(kernel))

    ordered = await run_with(list(FLOW), "ordered")
    assert await run_with(messy, "messy") == ordered
    assert ordered[5] and ordered[6]  # authorized and captured


@on_asyncio
async def test_an_http_webhook_is_accepted_once_committed_and_a_forged_one_is_401(
        tmp_path: Path) -> None:
    """POST /ingest/shopify needs no bearer token (HMAC only): a valid one answers 202
    after the order committed, a retry 202 with the same ids and no change, a forged
    one 401 and a dead letter; the generic source still needs the token."""
    run = uuid.uuid4().hex[:8]
    with sqlite(tmp_path, "s") as store:
        async with coordinator(store, run) as (kernel, transport):
            gate = seam()
            app = TokenAuth(Starlette(routes=ingest_routes(
                gate, kernel, store=store, transport=transport, clock=lambda: NOW)),
                Tokens({TOKEN: "ops"}), exempt=ingest_auth_exempt(gate))
            async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                          base_url="http://coordinator") as http:
                headers, raw = webhook("orders_create")
                first = await http.post("/ingest/shopify", content=raw, headers=headers)
                assert first.status_code == 202, first.text
                order = order_of(kernel)
                assert order is not None and order.placed_at is not None  # committed first
                version = len(store.journal(f"order/{ORDER}"))
                again = await http.post("/ingest/shopify", content=raw, headers=headers)
                assert again.status_code == 202 and again.json()["ids"] == first.json()["ids"]
                assert len(store.journal(f"order/{ORDER}")) == version

                forged_headers, _ = webhook("orders_create", secret=b"forged-secret")
                for _ in range(2):  # Shopify retries a webhook answered with an error
                    forged = await http.post("/ingest/shopify", content=raw,
                                             headers=forged_headers)
                    assert forged.status_code == 401
                    assert forged.json()["error"] == "bad_signature"
                # One row for the two deliveries of the same bytes.
                assert [d.reason for d in store.dead_letters()] == [IngestReason.BAD_SIGNATURE]
                assert store.dead_letters()[0].origin == "POST /ingest/shopify"

                for _ in range(2):  # not read whole, so no key: a row each
                    big = await http.post("/ingest/shopify", content=b"x" * (70 * 1024),
                                          headers=headers)
                    assert big.status_code == 413 and big.json()["error"] == "too_large"
                assert [d.reason for d in store.dead_letters()] == [
                    IngestReason.TOO_LARGE, IngestReason.TOO_LARGE, IngestReason.BAD_SIGNATURE]
                wms = await http.post("/ingest/wms", content=b"{}")
                assert wms.status_code == 401  # no token: TokenAuth
                wms = await http.post("/ingest/wms", content=b"{not json",
                                      headers={"Authorization": f"Bearer {TOKEN}"})
                assert wms.status_code == 422 and wms.json()["error"] == "not_json"
                nowhere = await http.post("/ingest/etsy", content=b"{}",
                                          headers={"Authorization": f"Bearer {TOKEN}"})
                assert nowhere.status_code == 404
                assert (await http.get("/ingest/shopify")).status_code == 401


def _to_order(envelope: Envelope, order_id: str, message_id: str) -> bytes:
    """``envelope`` as a generic source sends it straight to ``order/<order_id>``."""
    return wire_codec().encode_envelope(Envelope(
        message_id, None, envelope.correlation_id, None, Address(f"order/{order_id}"),
        envelope.sent_at, envelope.body, None))


@on_asyncio
async def test_an_http_webhook_for_a_retired_order_restarts_it_from_its_journal(
        tmp_path: Path) -> None:
    """An envelope POSTed to /ingest/wms for an order whose actor stopped (retired)
    is not refused as unavailable: the kernel's activator restores the order from its
    journal, the event is applied and the answer is 202. An order the store never
    saw is still 503 recipient_unavailable, and no actor is started for it."""
    run = uuid.uuid4().hex[:8]
    with sqlite(tmp_path, "s") as store:
        async with coordinator(store, run, activate=True) as (kernel, transport):
            gate = seam()
            app = TokenAuth(Starlette(routes=ingest_routes(
                gate, kernel, store=store, transport=transport, clock=lambda: NOW)),
                Tokens({TOKEN: "ops"}), exempt=ingest_auth_exempt(gate))
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                          base_url="http://coordinator") as http:
                placed = await http.post("/ingest/shopify", content=webhook("orders_create")[1],
                                         headers=webhook("orders_create")[0])
                assert placed.status_code == 202, placed.text
                kernel.stop(f"order/{ORDER}")
                await until(lambda: not kernel.is_running(f"order/{ORDER}"), "order retired")
                # The authorization as the shop's relay (a generic source) reports it.
                translated = gate.ingest("shopify", *webhook("order_transactions_authorization"),
                                         origin="test", now=NOW)
                assert isinstance(translated, IngestAccepted)
                [event] = translated.envelopes
                answer = await http.post("/ingest/wms", headers=auth,
                                         content=_to_order(event, ORDER, f"{run}-auth"))
                assert answer.status_code == 202, answer.text
                assert answer.json()["ids"] == [f"{run}-auth"]
                order = order_of(kernel)  # committed before the answer
                assert order is not None and order.placed_at is not None
                assert order.authorizations

                stranger = "shopify:acme-outdoor:1"
                fact: Any = event.body  # an order event: it has an order_id
                other = event._replace(body=attrs.evolve(fact, order_id=stranger))
                unknown = await http.post("/ingest/wms", headers=auth,
                                          content=_to_order(other, stranger, f"{run}-x"))
                assert unknown.status_code == 503, unknown.text
                assert unknown.json()["error"] == "recipient_unavailable"
                assert unknown.json()["recipients"] == [f"order/{stranger}"]
                assert "Retry-After" in unknown.headers
                assert not kernel.is_running(f"order/{stranger}")
        assert list(store.journal(f"order/{stranger}")) == []


class FailsFirstOrderCommit(MemoryStore):
    """A MemoryStore whose first commit to an order's stream fails before writing."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = anyio.Event()

    def commit(self, stream: str, turn: Turn) -> None:
        if stream.startswith("order/") and not self.failed.is_set():
            self.failed.set()
            raise StoreFailure(":memory:", "commit", "injected before writing")
        super().commit(stream, turn)


@on_asyncio
async def test_a_webhook_whose_order_did_not_commit_is_redelivered_and_applied_once(
        tmp_path: Path) -> None:
    """The order's commit fails: the MQTT message is not acknowledged (intake waits for
    the order's turn), so the coordinator's next session gets it again and places the
    order once."""
    run = uuid.uuid4().hex[:8]
    host, port = broker.shared_broker()
    store = FailsFirstOrderCommit()
    async with coordinator(store, run) as (kernel, _), \
            aiomqtt.Client(host, port, identifier=f"{run}-shop",
                           protocol=aiomqtt.ProtocolVersion.V5) as shop:
        await publish(shop, shop_source(run), *webhook("orders_create"))
        await store.failed.wait()
        await until(lambda: any(d.reason == "handler_failed" and
                                d.envelope.recipient == "intake" for d in kernel.dead_letters),
                    "intake's turn failed with the order's")
    assert list(store.streams()) == []
    async with coordinator(store, run) as (kernel, _):
        await until(lambda: (o := order_of(kernel)) is not None and o.placed_at is not None,
                    "the redelivered webhook placed the order")
        await kernel.settle(kernel.now())
    placed = [r for r in store.journal(f"order/{ORDER}") if type(r.event).__name__ == "OrderPlaced"]
    assert len(placed) == 1


@on_asyncio
async def test_mosquitto_pub_with_user_properties_places_the_order(tmp_path: Path) -> None:
    """A foreign client (mosquitto_pub -V 5, the headers as -D publish user-property,
    the body from a file), as docs/ingest-shopify.md shows, places the order."""
    if shutil.which("mosquitto_pub") is None:
        pytest.fail("mosquitto_pub is not installed (Debian: mosquitto-clients)")
    run = uuid.uuid4().hex[:8]
    host, port = broker.shared_broker()
    headers, raw = webhook("orders_create")
    body = tmp_path / "body.json"
    body.write_bytes(raw)
    command = ["mosquitto_pub", "-h", host, "-p", str(port), "-V", "5", "-q", "1",
               "-t", ingest_topic(shop_source(run)), "-f", str(body)]
    for name, value in headers.items():
        command += ["-D", "publish", "user-property", name, value]
    with sqlite(tmp_path, "s") as store:
        async with coordinator(store, run) as (kernel, _):
            done = await anyio.to_thread.run_sync(lambda: subprocess.run(
                command, capture_output=True, text=True, timeout=DEADLINE))
            assert done.returncode == 0, done.stderr
            await until(lambda: (o := order_of(kernel)) is not None and o.placed_at is not None,
                        "the order is placed")
        assert store.dead_letters() == ()
