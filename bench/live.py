"""Live coordinator benchmark: MQTT throughput, lifecycles, latency and memory per order.

One run starts its own Mosquitto (a generated config on a free port:
``set_tcp_nodelay true``, no persistence, no queue limit) and stops it by its
PID at the end. Prints one ``name=value`` line per figure:

- ``raw_mqtt_msgs_per_s``: (a) bare aiomqtt, QoS 1, one publisher keeping 100
  publishes unconfirmed and one subscriber on the same broker; messages
  received per second (300-byte payloads, about a coordinator envelope).
- ``coordinator_msgs_per_s_sqlite`` / ``_postgres``: (b, c) the coordinator
  (``spawn_coordinator`` on a ``LiveKernel`` with an ``MqttTransport``, its
  journals in a fresh SQLite file or a fresh PostgreSQL schema
  ``bench_<hex>`` in database ``test``, dropped after) in this process, the
  simulated world (``world_actors``) in a subprocess with its own kernel and
  transport, so this process does the coordinator's work alone. The world
  also plays the storefront: it publishes ``--orders`` ``PlaceOrder``
  commands to ``intake`` as fast as its publish window (32 unconfirmed)
  allows. The figure is the coordinator transport's envelopes in
  (``MqttTransport.delivered``) plus out (``MqttTransport.published``) per
  second, from the storefront's start to the last order's finish.
- ``lifecycles_per_s_sqlite`` / ``_postgres``: orders finished
  (``OrderFinished``) per second over the same window.
- ``coordinator_vs_raw_mqtt_ratio``: (b) / (a), SQLite (target >= 0.25).
- ``coordinator_cpu_share_sqlite`` / ``world_cpu_share_sqlite`` (and
  ``_postgres``): CPU seconds each process used per wall second of the
  window; says which side bounds the flow on a 2-core machine.
- ``event_to_command_p50_ms`` / ``event_to_command_p99_ms``: (d) with SQLite,
  orders paced at half of (b)'s lifecycle rate; in the world process, one
  clock, from a world actor handing an event to the transport to the arrival
  of the first coordinator envelope caused by it (``causation_id``);
  target p99 <= 50 ms. ``paced_orders_per_s`` is the pace and
  ``paced_lifecycles_per_s`` what the coordinator finished: below the pace,
  it did not keep up and the latencies include a growing queue.
- ``rss_kb_per_passivated_order``: (e) in a coordinator subprocess of its own
  (SQLite), composed as ``orderloom serve`` composes it (its metrics fold
  included) with ``passivate_idle_after``
  :data:`PASSIVATE_AFTER`: resident memory per OPEN order that went idle and
  passivated. No world runs (what the orders send it, the broker drops), so
  every order waits for its payment forever. RSS seldom shrinks when Python
  frees memory, so the figure is what a second batch of ``--memory-orders``
  orders, placed and passivated after the first, adds to RSS, per order
  (a batch is placed ``MEMORY_CHUNK`` orders at a time, each chunk's turns
  done before the next). Target: <= 2 KB.
  ``rss_kb_per_passivated_order_first_batch`` is the naive figure over the
  idle coordinator's RSS (it includes the heap's high-water mark of a chunk
  in flight).
- ``rss_kb_per_active_order`` / ``rss_kb_per_retired_order``: in a second
  coordinator subprocess without passivation: per order with
  ``--retired-orders`` open orders in memory (the world is away: its session
  queues their commands), then, as above, what a second batch of as many
  orders run to their finish and retirement (``retire_after`` 1 s, the world
  present) adds to RSS after the first batch retired.
  ``rss_kb_per_retired_order_first_batch``: the naive figure.
  ``--only-memory`` runs (e) alone. A passivated order costs the
  coordinator about 7 ms of a core here (two batches of 100,000 took 22
  minutes on 1 December 2026: 0.26 KB per passivated order); the
  stores are made in the temporary folder, so ``TMPDIR=/dev/shm`` keeps
  SQLite's fsyncs (``synchronous=FULL``) off the disk for such a run (RSS
  does not depend on where the file is).

The world has no simulated waits (gateway, warehouse, carrier, address and
downstream delays all zero), the policy is ``aggressive`` with push
downstream sync (no holds, no approvals), every order has its own customer
(no duplicates), and the kernels run at speed 1 with gateway timeouts far
beyond the run: the flow is bound by CPU and I/O, never by simulated time,
and no timer fires during a measurement. Usage:
``python bench/live.py [--orders N] [--memory-orders M] [--retired-orders R]
[--only-memory] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import json
import logging
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import attrs
import psycopg
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql

from orderloom.actors import (
    AddressServiceConfig,
    CarrierConfig,
    Dist,
    DownstreamSyncPolicy,
    GatewayConfig,
    LineItemSpec,
    MetricsCollector,
    OrderFinished,
    PlaceOrder,
    TeamConfig,
    WarehouseConfig,
    load_builtin_policy,
    wire_codec,
)
from orderloom.actors.coordinator import COORDINATOR_ADDRESSES, journal_codec, spawn_coordinator
from orderloom.runtime import Delivery, Envelope, Store, open_store
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.mqtt import MqttTransport
from orderloom.simulation import WorldConfig, world_actors

HOST = "127.0.0.1"
PG_PORT, PG_DATABASE = 5432, "test"
RAW_IN_FLIGHT = 100
RAW_PAYLOAD = b"x" * 300
WINDOW = 32  # MqttTransport's window on both sides (its default)
SPEED = 1.0  # no simulated waits in this world: speed only scales timeouts
SEND_TIMEOUT = 600.0  # kernel seconds a publish may wait for its PUBACK under load
RETIRE_AFTER = 1.0
PASSIVATE_AFTER = 2.0  # kernel seconds an open order idles before it passivates (e)
DEADLINE = 1800.0  # real seconds any phase may take before the run fails
# (e) places two batches of orders, each costing the coordinator 15-25 ms of a
# core here (SQLite, every turn and publish): its phases get this long per
# order in the run on top of DEADLINE, so a 100,000-order batch can finish.
MEMORY_SECONDS_PER_ORDER = 0.05
# Orders (e) places at once: a batch of 100,000 placed in one go would have
# every order's publishes queue behind each other's for longer than a send may
# wait; orders arrive over time in production too.
MEMORY_CHUNK = 2000


def memory_deadline(orders: int) -> float:
    """Real seconds a memory subprocess (two batches of ``orders``) may take."""
    return DEADLINE + 2 * orders * MEMORY_SECONDS_PER_ORDER


TEAMS = ("payments-ops", "fraud", "customer-care", "fulfillment-ops")


# -- the broker ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def own_broker(folder: Path) -> Iterator[int]:
    """A Mosquitto of this run's own on a free port (yields the port), stopped after."""
    binary = shutil.which("mosquitto")
    if binary is None:
        raise SystemExit("bench/live.py: the mosquitto binary is not on PATH")
    port = _free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {HOST}\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "set_tcp_nodelay true\n"
        # (e) lets the world's session queue every command while it is away.
        "max_queued_messages 0\n"
        f"max_inflight_messages {RAW_IN_FLIGHT}\n"
        f"log_dest file {folder}/mosquitto.log\n",
        encoding="utf-8")
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30.0
        while True:
            try:
                socket.create_connection((HOST, port), timeout=3).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"mosquitto -c {conf} exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"mosquitto -c {conf} did not listen within 30 s")
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()  # by its PID: only the broker this run started
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- (a) raw aiomqtt -------------------------------------------------------------------


async def raw_mqtt_msgs_per_s(port: int, messages: int) -> float:
    """QoS 1 messages per second through the broker with RAW_IN_FLIGHT unconfirmed."""
    topic = f"bench/raw/{uuid.uuid4().hex}"
    nodelay = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
    receive = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    receive.ReceiveMaximum = RAW_IN_FLIGHT
    done = anyio.Event()
    received = 0
    async with aiomqtt.Client(HOST, port, identifier=f"raw-sub-{uuid.uuid4().hex[:8]}",
                              protocol=aiomqtt.ProtocolVersion.V5, properties=receive,
                              socket_options=nodelay) as sub, \
            aiomqtt.Client(HOST, port, identifier=f"raw-pub-{uuid.uuid4().hex[:8]}",
                           protocol=aiomqtt.ProtocolVersion.V5,
                           max_inflight_messages=RAW_IN_FLIGHT, socket_options=nodelay) as pub:
        await sub.subscribe(topic, qos=1)

        async def read() -> None:
            nonlocal received
            async for _ in sub.messages:
                received += 1
                if received == messages:
                    done.set()
                    return

        async def publisher(count: int) -> None:
            for _ in range(count):
                await pub.publish(topic, RAW_PAYLOAD, qos=1)

        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                start = time.perf_counter()
                share, extra = divmod(messages, RAW_IN_FLIGHT)
                for k in range(RAW_IN_FLIGHT):  # each publisher keeps one unconfirmed
                    tg.start_soon(publisher, share + (1 if k < extra else 0))
                await done.wait()
                elapsed = time.perf_counter() - start
    return messages / elapsed


# -- the world --------------------------------------------------------------------------


def world_config() -> WorldConfig:
    """A world without simulated waits and a policy without holds or approvals."""
    zero = Dist.fixed(0.0)
    policy = attrs.evolve(load_builtin_policy("aggressive"),
                          downstream_sync=DownstreamSyncPolicy())  # push: every change
    return WorldConfig(
        policy=policy,
        gateway=GatewayConfig(latency=zero),
        warehouses=(WarehouseConfig(
            warehouse_id="W1", stock={"SKU-1": 10**9, "SKU-2": 10**9},
            carriers=(CarrierConfig(name="post", transit=zero),)),),
        teams=tuple(TeamConfig(name=name, review=zero) for name in TEAMS),
        address=AddressServiceConfig(latency=zero),
        gateway_timeout=3600.0, resequence_timeout=3600.0, retire_after=RETIRE_AFTER)


def place(prefix: str, n: int) -> PlaceOrder:
    """Order ``n``: two lines, a customer of its own (no duplicate detection hits)."""
    order_id = f"{prefix}-{n}"
    return PlaceOrder(order_id=order_id, command_id=f"place-{order_id}", issued_at=0.0,
                      issued_by="storefront", customer_id=f"c-{order_id}", currency="EUR",
                      lines=(LineItemSpec(line_id="l1", sku="SKU-1", quantity=2, unit_price=500),
                             LineItemSpec(line_id="l2", sku="SKU-2", quantity=1,
                                          unit_price=1000)))


class TimedTransport:
    """A transport wrapper in the world process that times event -> command.

    An envelope a world actor publishes (it has a sender; the storefront's
    don't) is stamped when handed over; the first inbound envelope whose
    ``causation_id`` names it closes the sample.
    """

    def __init__(self, inner: MqttTransport) -> None:
        self.inner = inner
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []

    async def publish(self, envelope: Envelope) -> None:
        if envelope.sender is not None:
            self.sent[envelope.message_id] = time.perf_counter()
        await self.inner.publish(envelope)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        async for delivery in self.inner.deliveries():
            cause = delivery.envelope.causation_id
            stamped = self.sent.pop(cause, None) if cause is not None else None
            if stamped is not None:
                self.latencies.append(time.perf_counter() - stamped)
            yield delivery


async def _line(stdin: Any) -> str:
    return str(await stdin.readline()).strip()


async def world_role(args: argparse.Namespace) -> None:
    """The world (and storefront) subprocess, driven by lines on stdin:
    prints ``ready``, waits for ``go``, places its orders, waits for ``stop``
    and prints its figures as one JSON line."""
    config = world_config()
    world = world_actors(config)
    stdin = anyio.wrap_file(sys.stdin)

    def transport() -> MqttTransport:
        return MqttTransport(wire_codec(), client_id=args.client_id, subscriptions=list(world),
                             port=args.port, window=WINDOW,
                             session_expiry=600 if args.mode == "gated" else 0)

    if args.mode == "gated":
        async with transport():
            pass  # the session and its subscriptions stay: the broker queues for us
        print("ready", flush=True)
        if await _line(stdin) != "go":
            raise SystemExit("world: expected 'go'")
    inner = transport()
    timed = TimedTransport(inner)
    async with inner, LiveKernel(seed=2, speed=SPEED, send_timeout=SEND_TIMEOUT,
                                 transport=timed) as kernel:
        for address, factory in world.items():
            kernel.spawn(factory, address)
        if args.mode != "gated":
            print("ready", flush=True)
            if await _line(stdin) != "go":
                raise SystemExit("world: expected 'go'")
        cpu0 = time.process_time()
        async with anyio.create_task_group() as tg:
            if args.mode == "place":
                numbers = iter(range(args.orders))

                async def storefront() -> None:
                    for n in numbers:
                        await kernel.send("intake", place(args.prefix, n))

                for _ in range(WINDOW):
                    tg.start_soon(storefront)
            elif args.mode == "pace":
                async def paced() -> None:
                    start = time.perf_counter()
                    for n in range(args.orders):
                        await anyio.sleep(max(0.0, start + n / args.rate - time.perf_counter()))
                        kernel.tell("intake", place(args.prefix, n))

                tg.start_soon(paced)
            if await _line(stdin) != "stop":
                raise SystemExit("world: expected 'stop'")
            tg.cancel_scope.cancel()
        cpu = time.process_time() - cpu0
    print(json.dumps({"cpu_s": cpu, "latencies_s": timed.latencies}), flush=True)


class World:
    """The world subprocess, seen from the coordinator's process."""

    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdout is not None and process.stdin is not None
        self._out = BufferedByteReceiveStream(process.stdout)

    async def expect(self, word: str) -> None:
        line = (await self._out.receive_until(b"\n", 1 << 30)).decode().strip()
        if line != word:
            raise SystemExit(f"world subprocess said {line!r}, expected {word!r}")

    async def say(self, word: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(f"{word}\n".encode())

    async def stop(self) -> dict[str, Any]:
        await self.say("stop")
        line = await self._out.receive_until(b"\n", 1 << 30)
        if await self.process.wait() != 0:
            raise SystemExit(f"world subprocess exited with {self.process.returncode}")
        stats: dict[str, Any] = json.loads(line)
        return stats


async def open_world(port: int, mode: str, *, orders: int = 0, rate: float = 0.0,
                     prefix: str = "o") -> World:
    process = await anyio.open_process(
        [sys.executable, str(Path(__file__).resolve()), "--role", "world", "--port", str(port),
         "--mode", mode, "--orders", str(orders), "--rate", str(rate), "--prefix", prefix,
         "--client-id", f"bench-world-{uuid.uuid4().hex[:8]}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
    return World(process)


# -- (b, c, d) the coordinator ---------------------------------------------------------


@attrs.frozen
class Flow:
    """What one coordinator run measured."""

    msgs_per_s: float
    lifecycles_per_s: float
    coordinator_cpu_share: float
    world_cpu_share: float
    latencies_s: tuple[float, ...]


def coordinator_transport(port: int) -> MqttTransport:
    return MqttTransport(wire_codec(), client_id=f"bench-coord-{uuid.uuid4().hex[:8]}",
                         subscriptions=list(COORDINATOR_ADDRESSES), port=port, window=WINDOW,
                         session_expiry=0)


async def coordinator_flow(port: int, store: Store, orders: int, rate: float | None) -> Flow:
    """Run ``orders`` through the coordinator on ``store`` with the world in a
    subprocess: placed as fast as the window allows, or paced at ``rate`` per s."""
    finished = 0
    all_done = anyio.Event()

    def count(_t: float, _address: str, event: object) -> None:
        nonlocal finished
        if isinstance(event, OrderFinished):
            finished += 1
            if finished == orders:
                all_done.set()

    config = world_config()
    transport = coordinator_transport(port)
    async with transport, LiveKernel(seed=1, speed=SPEED, send_timeout=SEND_TIMEOUT,
                                     transport=transport) as kernel:
        kernel.add_sink(count)
        spawn_coordinator(kernel, config.settings(), store, live=True)
        world = await open_world(port, "place" if rate is None else "pace", orders=orders,
                                 rate=rate or 0.0, prefix=f"o{uuid.uuid4().hex[:6]}")
        with anyio.fail_after(DEADLINE):
            await world.expect("ready")
            before = transport.published + transport.delivered
            cpu0, start = time.process_time(), time.perf_counter()
            await world.say("go")
            await all_done.wait()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu0
            messages = transport.published + transport.delivered - before
            stats = await world.stop()
    return Flow(msgs_per_s=messages / elapsed, lifecycles_per_s=orders / elapsed,
                coordinator_cpu_share=cpu / elapsed, world_cpu_share=stats["cpu_s"] / elapsed,
                latencies_s=tuple(stats["latencies_s"]))


def postgres_user() -> str:
    """PGUSER, else the first of ``postgres`` and the current user that connects."""
    users = [os.environ["PGUSER"]] if os.environ.get("PGUSER") else ["postgres",
                                                                     getpass.getuser()]
    errors = []
    for user in users:
        try:
            with psycopg.connect(host=HOST, port=PG_PORT, dbname=PG_DATABASE, user=user,
                                 connect_timeout=5) as db:
                db.execute("SELECT 1")
            return user
        except psycopg.Error as exc:
            errors.append(f"user {user}: {str(exc).strip()}")
    raise SystemExit(f"bench/live.py: no PostgreSQL at {HOST}:{PG_PORT} database "
                     f"{PG_DATABASE!r} ({'; '.join(errors)})")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A store URL on a fresh schema ``bench_<hex>``, dropped with its tables after."""
    user = postgres_user()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"postgresql://{user}@{HOST}:{PG_PORT}/{PG_DATABASE}?schema={schema}"
    finally:
        with psycopg.connect(host=HOST, port=PG_PORT, dbname=PG_DATABASE, user=user,
                             autocommit=True) as db:
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))


def flow(port: int, url: str, orders: int, rate: float | None = None) -> Flow:
    with open_store(url, journal_codec()) as store:
        result: Flow = anyio.run(coordinator_flow, port, store, orders, rate,
                                 backend="asyncio")  # aiomqtt runs on asyncio only
    return result


# -- (e) memory per order ---------------------------------------------------------------


def rss_kb() -> float:
    """This process's resident set now (not the peak), in KB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 1024


async def memory_role(args: argparse.Namespace) -> None:
    """(e), in a coordinator process of its own: RSS per passivated open order."""
    deadline = memory_deadline(args.orders)
    config = world_config()
    settings = attrs.evolve(config.settings(), passivate_idle_after=PASSIVATE_AFTER)
    batches = [[f"{prefix}-{n}" for n in range(args.orders)] for prefix in ("p", "q")]

    async def passivated(ids: list[str]) -> float:
        """Place ``ids`` (:data:`MEMORY_CHUNK` at a time, each chunk's turns done
        before the next is placed), wait until every one passivated; RSS then."""
        for start in range(0, len(ids), MEMORY_CHUNK):
            for order_id in ids[start:start + MEMORY_CHUNK]:
                prefix, n = order_id.split("-")
                await kernel.send("intake", place(prefix, int(n)))
            if not await kernel.drain(deadline):
                raise SystemExit("memory: the coordinator did not go quiet")
        while any(kernel.is_running(f"order/{i}") for i in ids):
            await anyio.sleep(0.5)
        if not await kernel.drain(deadline):
            raise SystemExit("memory: the coordinator did not go quiet")
        gc.collect()
        return rss_kb()

    with tempfile.TemporaryDirectory() as tmp, \
            open_store(f"sqlite:///{tmp}/memory.sqlite", journal_codec()) as store:
        transport = coordinator_transport(args.port)
        async with transport, LiveKernel(seed=1, speed=SPEED, send_timeout=SEND_TIMEOUT,
                                         start_time=time.time(),
                                         transport=transport) as kernel:
            now = kernel.now()
            # As serve composes it: the metrics fold hears every order's
            # telemetry (serve's log sink keeps nothing).
            fold = MetricsCollector.for_live_process(now, TEAMS)
            kernel.add_sink(fold.on_emit)
            spawn_coordinator(kernel, settings, store)
            with anyio.fail_after(deadline):
                await kernel.drain(deadline)
                gc.collect()
                baseline = rss_kb()
                first = await passivated(batches[0])
                second = await passivated(batches[1])
    print(f"rss_kb_per_passivated_order={(second - first) / args.orders:.2f}")
    print(f"rss_kb_per_passivated_order_first_batch={(first - baseline) / args.orders:.2f}")


async def retired_role(args: argparse.Namespace) -> None:
    """(e), in a coordinator process of its own: RSS per active and per retired order."""
    deadline = memory_deadline(args.orders)
    config = world_config()
    batches = [[f"{prefix}-{n}" for n in range(args.orders)] for prefix in ("m", "n")]

    async def place_all(ids: list[str]) -> None:
        for order_id in ids:
            prefix, n = order_id.split("-")
            await kernel.send("intake", place(prefix, int(n)))

    async def all_retired(ids: list[str]) -> None:
        await anyio.sleep(RETIRE_AFTER)
        while any(kernel.is_running(f"order/{i}") for i in ids):
            await anyio.sleep(0.5)
        await kernel.drain(deadline)

    with tempfile.TemporaryDirectory() as tmp, \
            open_store(f"sqlite:///{tmp}/memory.sqlite", journal_codec()) as store:
        transport = coordinator_transport(args.port)
        async with transport, LiveKernel(seed=1, speed=SPEED, send_timeout=SEND_TIMEOUT,
                                         transport=transport) as kernel:
            spawn_coordinator(kernel, config.settings(), store, live=True)
            world = await open_world(args.port, "gated")
            with anyio.fail_after(deadline):
                await world.expect("ready")  # its session exists; it is away
                await kernel.drain(deadline)
                gc.collect()
                baseline = rss_kb()
                await place_all(batches[0])
                while not all(kernel.is_running(f"order/{i}") for i in batches[0]):
                    await anyio.sleep(0.2)
                if not await kernel.drain(deadline):
                    raise SystemExit("memory: the coordinator did not go quiet")
                gc.collect()
                active = rss_kb()
                await world.say("go")
                await all_retired(batches[0])
                gc.collect()
                first = rss_kb()
                # The second batch flows with the world present: freed memory
                # of the first is reused, so what RSS still gains is what
                # retired orders keep (plus fragmentation).
                await place_all(batches[1])
                await all_retired(batches[1])
                gc.collect()
                second = rss_kb()
                await world.stop()
    print(f"rss_kb_per_active_order={(active - baseline) / args.orders:.2f}")
    print(f"rss_kb_per_retired_order={(second - first) / args.orders:.2f}")
    print(f"rss_kb_per_retired_order_first_batch={(first - baseline) / args.orders:.2f}")


# -- the run -----------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: int) -> float:
    if len(samples) < 2:
        raise SystemExit(f"latency: {len(samples)} samples, need at least 2")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=3000,
                        help="orders per throughput run (b, c); half of them paced for (d)")
    parser.add_argument("--memory-orders", type=int, default=20_000,
                        help="open orders passivated, per batch, for (e)")
    parser.add_argument("--retired-orders", type=int, default=20_000,
                        help="orders held open, then retired, per batch, for (e)")
    parser.add_argument("--only-memory", action="store_true",
                        help="run (e) alone")
    parser.add_argument("--raw-messages", type=int, default=50_000,
                        help="messages through the broker for (a)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 100 orders, 300 for each memory figure, "
                             "3000 raw messages")
    # Internal: the subprocesses this script starts.
    parser.add_argument("--role", choices=("main", "world", "memory", "retired"), default="main",
                        help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("place", "pace", "gated"), default="place",
                        help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="o", help=argparse.SUPPRESS)
    parser.add_argument("--client-id", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # aiomqtt warns on every publish made while more than 10 wait for their
    # PUBACK: by design here (100, or the window of 32), and a log line per
    # message would be measured along with it.
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # (MqttTransport already bounds its pending publishes)
    if args.role == "world":
        anyio.run(world_role, args, backend="asyncio")
        return
    if args.role in ("memory", "retired"):
        anyio.run(memory_role if args.role == "memory" else retired_role, args,
                  backend="asyncio")
        return
    if args.quick:
        args.orders, args.memory_orders, args.retired_orders, args.raw_messages = (
            100, 300, 300, 3000)
    for name in ("orders", "memory_orders", "retired_orders", "raw_messages"):
        if getattr(args, name) < 2:
            parser.error(f"--{name.replace('_', '-')}: expected at least 2, "
                         f"got {getattr(args, name)}")

    with tempfile.TemporaryDirectory() as tmp, own_broker(Path(tmp)) as port:
        if not args.only_memory:
            throughput(port, Path(tmp), args)
        for role, orders in (("memory", args.memory_orders), ("retired", args.retired_orders)):
            memory = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--role", role, "--port",
                 str(port), "--orders", str(orders)],
                stdout=subprocess.PIPE, text=True, check=True,
                timeout=memory_deadline(orders) + 60.0)
            print(memory.stdout, end="", flush=True)


def throughput(port: int, tmp: Path, args: argparse.Namespace) -> None:
    """(a) to (d), on the broker at ``port``, stores under ``tmp``."""
    raw = anyio.run(raw_mqtt_msgs_per_s, port, args.raw_messages, backend="asyncio")
    print(f"raw_mqtt_msgs_per_s={raw:.0f}", flush=True)

    sqlite = flow(port, f"sqlite:///{tmp}/coordinator.sqlite", args.orders)
    print(f"coordinator_msgs_per_s_sqlite={sqlite.msgs_per_s:.0f}")
    print(f"coordinator_vs_raw_mqtt_ratio={sqlite.msgs_per_s / raw:.3f}")
    print(f"lifecycles_per_s_sqlite={sqlite.lifecycles_per_s:.1f}")
    print(f"coordinator_cpu_share_sqlite={sqlite.coordinator_cpu_share:.2f}")
    print(f"world_cpu_share_sqlite={sqlite.world_cpu_share:.2f}", flush=True)

    with postgres_schema() as url:
        pg = flow(port, url, args.orders)
    print(f"coordinator_msgs_per_s_postgres={pg.msgs_per_s:.0f}")
    print(f"lifecycles_per_s_postgres={pg.lifecycles_per_s:.1f}")
    print(f"coordinator_cpu_share_postgres={pg.coordinator_cpu_share:.2f}")
    print(f"world_cpu_share_postgres={pg.world_cpu_share:.2f}", flush=True)

    paced = flow(port, f"sqlite:///{tmp}/paced.sqlite", max(2, args.orders // 2),
                 rate=sqlite.lifecycles_per_s / 2)
    latencies_ms = [s * 1000 for s in paced.latencies_s]
    # If the coordinator did not keep up with the pace, the latencies
    # measure a queue: these two say whether it did.
    print(f"paced_orders_per_s={sqlite.lifecycles_per_s / 2:.1f}")
    print(f"paced_lifecycles_per_s={paced.lifecycles_per_s:.1f}")
    print(f"event_to_command_p50_ms={percentile(latencies_ms, 50):.2f}")
    print(f"event_to_command_p99_ms={percentile(latencies_ms, 99):.2f}", flush=True)


if __name__ == "__main__":
    main()
