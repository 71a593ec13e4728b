"""The coordinator SIGKILLed at named points while orders flow, then restarted.

Each run owns a Mosquitto (:func:`tests.broker.own_broker`), runs ``orderloom
serve`` as a subprocess on a SQLite file in the test's folder and the whole
simulated world as one ``orderloom emulate all --wall-clock --speed 1
--ledger FILE`` subprocess (the world of tests/fixtures/crash/world.yaml: fixed
delays, no faults, stock for every order, so a run's outcome does not depend
on timing). A foreign client (plain aiomqtt) publishes N ``PlaceOrder``
envelopes to ``intake``. serve runs with ``ORDERLOOM_CRASH_AT=point:n``
(runtime/_crash.py, docs/serve.md lists the points) and must die by SIGKILL
(exit -9); it is started again, possibly crashing once more at another
point (a crash during the restore), and finally without the variable, until
every order has ended.

Then, against a clean run of the same orders (no crash):

- **0 orders lost**: every order placed has a journal and ended (CLOSED).
- **0 commands applied twice**. The emulators' ledger has one line per
  command an emulated actor handled (message id, type, order, command id).
  Receiving a command more than once is allowed (delivery is at least once:
  the broker redelivers what was not acknowledged, a restored order
  republishes its unpublished outbox), and the world applies a command id
  once (the gateway replays the outcome of a ``request_id`` it knows, a
  warehouse ignores a ``fulfillment_order_id`` it has, a team a ``case_id``).
  So *applied twice* means: for one order, a command type with an effect
  (authorize, capture, void, refund, submit or cancel a fulfillment order,
  assign a case) arrives under more distinct command ids than in the clean
  run, i.e. the coordinator decided the same effect again under a new id
  after the crash (a second authorization, a second shipment), which no
  idempotency key downstream can catch.
- **final states equal a clean run's**: per order the lifecycle, payment,
  risk and the numbers of authorizations, captures, refunds, fulfillment
  orders and holds.

Every wait polls a condition with a generous hang guard; nothing is timed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import anyio
import pytest
import yaml

from orderloom.actors import Lifecycle, OrderRecord, OrderState, evolve_record, journal_codec
from orderloom.runtime import CRASH_AT_VARIABLE, CRASH_POINTS, to_topic
from orderloom.runtime.sqlite import SqliteStore
from tests import broker

# One worker runs this module: the clean runs are cached per module.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("integration.test_crash")]

WORLD = Path(__file__).parent.parent / "fixtures" / "crash" / "world.yaml"
ORDERLOOM = str(Path(sys.executable).parent / "orderloom")
DEADLINE = 120.0  # real seconds: a hang guard for the short variant, not a timing
SLOW_DEADLINE = 1800.0  # the same for 2,000 orders
TOKEN = "crash-test-token-0123456789"
QUEUE = "max_queued_messages 1000000\n"
FINAL = frozenset({Lifecycle.CLOSED, Lifecycle.CANCELED, Lifecycle.RETURNED})
EFFECTS = frozenset({"GatewayAuthorize", "GatewayCapture", "GatewayVoid", "GatewayRefund",
                     "WarehouseSubmit", "WarehouseCancel", "CaseAssigned"})
"""Command types with an effect in the world, keyed by a command id."""

Outcome = tuple[Any, ...]


def _order_ids(count: int) -> list[str]:
    return [f"o{i:05d}" for i in range(count)]


def _envelope(order_id: str) -> bytes:
    """A ``PlaceOrder`` for ``intake`` as a foreign client writes it (docs/wire.md)."""
    now = time.time()
    return json.dumps({
        "type": "order.place", "v": 1, "id": f"place-{order_id}", "recipient": "intake",
        "correlation_id": order_id, "sent_at": now,
        "body": {"order_id": order_id, "command_id": f"cmd-{order_id}", "issued_at": now,
                 "issued_by": "storefront", "customer_id": f"c-{order_id}", "currency": "EUR",
                 "lines": [{"line_id": "L1", "sku": "A", "quantity": 1, "unit_price": 1000}]},
    }).encode()


async def _place(port: int, client_id: str, order_ids: list[str]) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id) as client:
        for order_id in order_ids:
            await client.publish(to_topic("intake"), _envelope(order_id), qos=1)


def _config(folder: Path, port: int, run: str) -> Path:
    path = folder / "serve.yaml"
    path.write_text(yaml.safe_dump({
        "broker": {"host": "127.0.0.1", "port": port, "client_id": f"{run}-serve"},
        "store": f"sqlite:///{folder / 'orders.db'}",
        "scenario": str(WORLD),
        "desk_teams": [],
        "http": {"bind": "127.0.0.1", "port": 0, "tokens": {TOKEN: "ops"}},
        "log_level": "info",
    }), encoding="utf-8")
    return path


class _Process:
    """A subprocess of ours, its output appended to a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1",
                                                 **(env or {})})

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM (by its PID) and its exit code; SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=DEADLINE)


def _serve(config: Path, log: Path, crash_at: str | None) -> _Process:
    env = {CRASH_AT_VARIABLE: crash_at} if crash_at else {}
    started = _Process([ORDERLOOM, "serve", "--config", str(config)], log, env)
    if crash_at is None:
        environment = os.environ.get(CRASH_AT_VARIABLE)
        assert not environment, f"{CRASH_AT_VARIABLE} is set in the test's environment"
    return started


def _poll(check: Callable[[], bool], what: str, deadline: float, *,
          alive: tuple[_Process, ...] = ()) -> None:
    end = time.monotonic() + deadline
    while not check():
        for process in alive:
            if process.process.poll() is not None:
                pytest.fail(f"{what}: {process.process.args!r} exited "
                            f"{process.process.returncode}:\n{process.text()[-4000:]}")
        if time.monotonic() > end:
            pytest.fail(f"not within {deadline} s: {what}")
        # Folding 2,000 journals is work of its own: poll the slow variant less often.
        time.sleep(0.2 if deadline <= DEADLINE else 2.0)


def _ready(serve: _Process, after: int) -> bool:
    lines = serve.text().splitlines()[after:]
    return any('"serve.ready"' in line for line in lines)


def _orders(db: Path, order_ids: list[str]) -> dict[str, OrderState | None]:
    """Each order's state folded from its journal (None: no journal)."""
    found: dict[str, OrderState | None] = {}
    with SqliteStore(db, journal_codec()) as store:
        for order_id in order_ids:
            events = store.journal(f"order/{order_id}")
            if not events:
                found[order_id] = None
                continue
            record = OrderRecord(order=OrderState(order_id=order_id))
            for recorded in events:
                record = evolve_record(record, recorded.event)
            found[order_id] = record.order
    return found


def _all_ended(db: Path, order_ids: list[str]) -> bool:
    if not db.exists():
        return False
    try:
        states = _orders(db, order_ids)
    except Exception:  # noqa: BLE001 - the file is being created by serve
        return False
    return all(s is not None and s.lifecycle in FINAL for s in states.values())


def outcome(state: OrderState | None) -> Outcome | None:
    """What a clean and a crashed run must agree on for one order."""
    if state is None:
        return None
    return (state.lifecycle, state.payment, state.risk, len(state.authorizations),
            len(state.captures), len(state.refunds), len(state.fulfillment_orders),
            len(state.holds))


def _ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def effect_ids(ledger: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Per (order, command type with an effect): how many distinct command ids."""
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for line in ledger:
        if line["type"] in EFFECTS and line["order_id"] is not None:
            ids[(line["order_id"], line["type"])].add(line["command_id"])
    return {key: len(found) for key, found in ids.items()}


class Run:
    """What one run left: each order's outcome, the ledger, how serve ended each start."""

    def __init__(self, outcomes: dict[str, Outcome | None], ledger: list[dict[str, Any]],
                 exits: list[int]) -> None:
        self.outcomes = outcomes
        self.ledger = ledger
        self.exits = exits


@contextmanager
def _world(folder: Path, port: int, run: str) -> Iterator[tuple[_Process, Path]]:
    ledger = folder / "ledger.jsonl"
    world = _Process([ORDERLOOM, "emulate", "all", "--scenario", str(WORLD), "--wall-clock",
                      "--speed", "1", "--broker", f"127.0.0.1:{port}", "--client-id",
                      f"{run}-world", "--ledger", str(ledger)], folder / "emulate.log")
    try:
        _poll(lambda: "emulating " in world.text(), "the emulators are ready", DEADLINE,
              alive=(world,))
        yield world, ledger
    finally:
        world.stop()


def run_orders(folder: Path, count: int, crashes: list[str], deadline: float) -> Run:
    """Place ``count`` orders with serve crashing at each of ``crashes`` in
    turn (each start must die by SIGKILL), then run it clean until every
    order ended."""
    folder.mkdir(parents=True, exist_ok=True)
    run = f"c{uuid.uuid4().hex[:8]}"
    order_ids = _order_ids(count)
    db = folder / "orders.db"
    log = folder / "serve.log"
    log.touch()
    exits: list[int] = []
    # Mosquitto drops silently past max_queued_messages (1000 by default): with
    # 2,000 orders published at once, and everything for serve queued while it
    # is down, a loss there would be the broker's, not the coordinator's.
    with broker.own_broker(folder, listener_extra=QUEUE) as (_, port), \
            _world(folder, port, run) as (world, ledger):
        config = _config(folder, port, run)
        placed = False
        for crash_at in [*crashes, None]:
            after = len(log.read_text(encoding="utf-8").splitlines())
            serve = _serve(config, log, crash_at)
            try:
                _poll(lambda: _ready(serve, after) or serve.process.poll() is not None,
                      "serve is ready", deadline, alive=(world,))
                if not placed and serve.process.poll() is None:
                    anyio.run(_place, port, f"{run}-shop", order_ids, backend="asyncio")
                    placed = True
                if crash_at is not None:
                    _poll(lambda: serve.process.poll() is not None or _all_ended(db, order_ids),
                          f"serve dies at {crash_at}", deadline, alive=(world,))
                    if serve.process.poll() is None:
                        pytest.fail(f"serve never passed {crash_at}: every order ended first")
                    exits.append(serve.process.returncode)
                    assert serve.process.returncode == -signal.SIGKILL, serve.text()[-4000:]
                    continue
                _poll(lambda: _all_ended(db, order_ids), "every order ended", deadline,
                      alive=(world, serve))
            finally:
                if serve.process.poll() is None:
                    exits.append(serve.stop())
        assert placed, "serve died before it was ready in every start"
    outcomes = {order_id: outcome(state) for order_id, state in _orders(db, order_ids).items()}
    return Run(outcomes, _ledger(ledger), exits)


_CLEAN: dict[int, Run] = {}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, float], Run]:
    """A clean run's result per order count (run once per module and count)."""

    def get(count: int, deadline: float) -> Run:
        if count not in _CLEAN:
            _CLEAN[count] = run_orders(tmp_path_factory.mktemp(f"clean-{count}"), count, [],
                                       deadline)
        return _CLEAN[count]

    return get


def check_against_clean(crashed: Run, reference: Run) -> None:
    """0 lost, 0 applied twice, the same final states (see the module docstring)."""
    lost = sorted(o for o, s in crashed.outcomes.items() if s is None or s[0] not in FINAL)
    assert lost == []
    assert reference.exits[-1] == 0 and crashed.exits[-1] == 0
    expected, got = effect_ids(reference.ledger), effect_ids(crashed.ledger)
    twice = {key: (got[key], expected.get(key, 0)) for key in got
             if got[key] > expected.get(key, 0)}
    assert twice == {}, "commands applied twice: (order, type): (distinct ids, clean run's)"
    differ = {o: (s, reference.outcomes[o]) for o, s in crashed.outcomes.items()
              if s != reference.outcomes[o]}
    assert differ == {}
    assert got == expected  # nothing missing either


SHORT_ORDERS = 20
SHORT = [
    pytest.param(["turn.after_commit:25"], id="turn.after_commit"),
    pytest.param(["outbox.mid:5"], id="outbox.mid"),
    pytest.param(["ack.before:30"], id="ack.before"),
    # Killed before a turn's first send, its outbox is certainly unpublished, so
    # the restart passes restore.outbox (after ack.before it may all have gone
    # out already: whether it had depended on timing, and failed under load).
    pytest.param(["outbox.before_publish:10", "restore.outbox"],
                 id="outbox.before_publish+restore.outbox"),
]


# The short variant, in the default run (the 2,000-order one below is marked).
@pytest.mark.parametrize("crashes", SHORT)
def test_a_crash_loses_no_order_and_applies_no_command_twice(
        tmp_path: Path, crashes: list[str], clean: Callable[[int, float], Run]) -> None:
    """serve SIGKILLed at a named point with 20 orders in flow, then restarted:
    every order ends as in a clean run, and no command is applied twice."""
    crashed = run_orders(tmp_path, SHORT_ORDERS, crashes, DEADLINE)
    check_against_clean(crashed, clean(SHORT_ORDERS, DEADLINE))


SLOW_ORDERS = 2000
_RANDOM = random.Random(11)
# The random crashes: any point passed while orders flow (restore.outbox is
# only passed while restoring after an earlier crash), at a pass among 2,000.
_ON_THE_WAY = tuple(p for p in CRASH_POINTS if p != "restore.outbox")
# In CI's slow step (pytest -m slow): one crash on each side of a commit, one
# in the middle of a turn's sends, one at the broker's acknowledgement and the
# first random one; all of them (pytest -m crash_runs, about an hour on 2 cores) before a release.
_IN_CI = frozenset({"turn.before_commit", "turn.after_commit", "outbox.mid", "ack.before"})
SLOW = [pytest.param([f"{point}:{n}"], id=point,
                     marks=[pytest.mark.slow] if point in _IN_CI else [])
        for point, n in (
    ("ack.after", 500), ("ack.before", 500), ("actor.after_restore", 300),
    ("outbox.after_publish", 800), ("outbox.before_publish", 800), ("outbox.mid", 400),
    ("publish.after_confirm", 1500), ("store.after_append", 1500),
    ("timer.after_fire", 200), ("transport.received", 1500), ("turn.after_commit", 1500),
    ("turn.before_commit", 1500))] + [
    pytest.param(["outbox.after_publish:300", "restore.outbox:2"], id="restore.outbox")] + [
    pytest.param([f"{point}:{n}"], id=f"random-{i}:{point}:{n}",
                 marks=[pytest.mark.slow] if i == 0 else [])
    for i, (point, n) in enumerate((_RANDOM.choice(_ON_THE_WAY), _RANDOM.randint(1, 2000))
                                   for _ in range(3))]


@pytest.mark.crash_runs
@pytest.mark.parametrize("crashes", SLOW)
def test_a_crash_among_2000_orders_loses_none_and_applies_none_twice(
        tmp_path: Path, crashes: list[str], clean: Callable[[int, float], Run]) -> None:
    """serve SIGKILLed at each named point (and at 3 random ones) with 2,000
    orders in flow, then restarted: every order ends as in a clean run, and no
    command is applied twice."""
    crashed = run_orders(tmp_path, SLOW_ORDERS, crashes, SLOW_DEADLINE)
    check_against_clean(crashed, clean(SLOW_ORDERS, SLOW_DEADLINE))


def test_every_point_is_documented_in_serve_md() -> None:
    """docs/serve.md names every crash point."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "serve.md").read_text(encoding="utf-8")
    assert [p for p in CRASH_POINTS if f"`{p}`" not in text] == []


TWO_ACTORS = Path(__file__).parent.parent / "fixtures" / "crash" / "two_actors.py"


def _two_actors(db: Path, mode: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT_VARIABLE}
    if crash_at is not None:
        env[CRASH_AT_VARIABLE] = crash_at
    return subprocess.run([sys.executable, str(TWO_ACTORS), str(db), mode], env=env,
                          capture_output=True, text=True, timeout=DEADLINE, check=False)


def test_a_message_committed_but_not_released_reaches_its_local_receiver_after_a_restart(
        tmp_path: Path) -> None:
    """Killed after the sender's commit (turn.after_commit:1), before its send
    was released: the restart re-sends the outbox and the receiver records the
    ping once."""
    db = tmp_path / "two.db"
    assert _two_actors(db, "send", "turn.after_commit:1").returncode == -signal.SIGKILL
    restarted = _two_actors(db, "restart")
    assert (restarted.returncode, restarted.stdout.split()) == (0, ["[1]"]), restarted.stderr


def test_a_message_the_receiver_committed_is_not_applied_again_after_a_restart(
        tmp_path: Path) -> None:
    """Killed right after the receiver's commit (turn.after_commit:2): the
    restart finds nothing left to send, or sends it again under the same id
    and the receiver's inbox skips it; the ping is recorded once."""
    db = tmp_path / "two.db"
    assert _two_actors(db, "send", "turn.after_commit:2").returncode == -signal.SIGKILL
    restarted = _two_actors(db, "restart")
    assert (restarted.returncode, restarted.stdout.split()) == (0, ["[1]"]), restarted.stderr


def test_a_message_in_a_local_receivers_mailbox_survives_a_crash_before_its_commit(
        tmp_path: Path) -> None:
    """Killed before the receiver's commit (turn.before_commit:2; the first
    commit is the sender's, which released the ping to the receiver's mailbox
    and marked it published): after the restart the receiver must still get
    the ping, once."""
    db = tmp_path / "two.db"
    assert _two_actors(db, "send", "turn.before_commit:2").returncode == -signal.SIGKILL
    restarted = _two_actors(db, "restart")
    assert (restarted.returncode, restarted.stdout.split()) == (0, ["[1]"]), restarted.stderr
