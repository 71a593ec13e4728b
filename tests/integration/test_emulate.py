"""``orderloom emulate`` on the real Mosquitto: the world as subprocesses.

The coordinator runs in this process (a LiveKernel on an MqttTransport
subscribed to its addresses); the simulated world runs as ``orderloom
emulate`` subprocesses, killed by their PIDs afterwards. The actors use
their real addresses (``gateway``, ``intake``, ``order/<id>``), which are
not namespaced per test, so each test starts a Mosquitto of its own
(:func:`tests.broker.own_broker`): tests running side by side, and the
sessions they leave, cannot cross. Client ids are unique per run too.
Assertions are about outcomes (the order closed, no event refused); every
wait is a poll with a generous deadline.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from orderloom.actors import EventIgnored, Lifecycle, OrderState, wire_codec
from orderloom.actors.coordinator import COORDINATOR_ADDRESSES, spawn_coordinator
from orderloom.runtime import MemoryStore
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.mqtt import MqttTransport
from orderloom.simulation import load_scenario, world_for
from tests import broker
from tests.sim.world import OrderSpec, place

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "emulate"
QUICK = FIXTURES / "quick.yaml"
GATEWAY_ERRORS = FIXTURES / "gateway-errors.yaml"
SPEED = 20.0  # kernel seconds per real second, coordinator and emulators alike
DEADLINE = 90.0  # real seconds: hang guard for every wait
ORDERLOOM = str(Path(sys.executable).parent / "orderloom")  # the venv's console script


class Emulator:
    """An ``orderloom emulate`` subprocess; its output is collected as it comes."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [ORDERLOOM, "emulate", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    async def ready(self) -> None:
        """Wait for the 'emulating ...' line (subscribed: requests reach it)."""
        with anyio.fail_after(DEADLINE):
            while not any(line.startswith("emulating ") for line in self.lines):
                if self.process.poll() is not None:
                    pytest.fail(f"emulate {self.args} exited {self.process.returncode}:\n"
                                f"{self.output()}")
                await anyio.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal it (by its PID) and wait for its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=DEADLINE)
        self._reader.join(timeout=DEADLINE)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


@contextmanager
def emulators() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with ``start(*args)``; every one still running is
    killed by its PID on the way out."""
    started: list[Emulator] = []

    def start(*args: str) -> Emulator:
        emulator = Emulator(*args)
        started.append(emulator)
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            if emulator.process.poll() is None:
                emulator.stop(signal.SIGKILL)


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until true; fail naming ``what`` after DEADLINE."""
    with anyio.move_on_after(DEADLINE):
        while not check():
            await anyio.sleep(0.05)
        return
    pytest.fail(f"not within {DEADLINE} s: {what}")


def order_of(kernel: LiveKernel, order_id: str) -> OrderState | None:
    address = f"order/{order_id}"
    if not kernel.is_running(address):
        return None
    state: OrderState = kernel.actor(address).order  # type: ignore[attr-defined]
    return state


async def with_coordinator(run: str, host: str, port: int,
                           body: Callable[[LiveKernel], Awaitable[None]]) -> None:
    """Run ``body`` with the coordinator of QUICK's world up on the broker."""
    scenario = load_scenario(QUICK)
    cfg = world_for(scenario, scenario.policy, random.Random(1)).world
    async with MqttTransport(wire_codec(), client_id=f"{run}-coordinator",
                             subscriptions=list(COORDINATOR_ADDRESSES),
                             hostname=host, port=port, session_expiry=120) as transport, \
            LiveKernel(seed=1, speed=SPEED, transport=transport) as kernel:
        spawn_coordinator(kernel, cfg.settings(), MemoryStore())
        await body(kernel)


def test_an_order_closes_with_the_world_emulated_as_subprocesses(tmp_path: Path) -> None:
    """The gateway, the warehouse, a downstream system and the rest of the world
    (`all --without` those), each an `orderloom emulate` process on the broker,
    take an order placed on the in-process coordinator to CLOSED; SIGTERM or
    SIGINT stops each with exit 0."""
    run = f"emu-{uuid.uuid4().hex[:8]}"
    with broker.own_broker(tmp_path) as (host, port), emulators() as start:
        common = ["--scenario", str(QUICK), "--speed", str(SPEED), "--broker", f"{host}:{port}"]
        parts = [start("gateway", *common, "--client-id", f"{run}-gw"),
                 start("warehouse", "--id", "W1", *common, "--client-id", f"{run}-wh"),
                 start("downstream", "--id", "finance", *common, "--client-id", f"{run}-fin"),
                 # The rest of the world (teams, other systems, address service).
                 start("all", "--without", "gateway", "--without", "warehouse/W1",
                       "--without", "finance", *common, "--client-id", f"{run}-rest")]

        async def body(kernel: LiveKernel) -> None:
            for part in parts:
                await part.ready()
            kernel.tell("intake", place(OrderSpec(order_id=f"{run}-1")))
            await until(lambda: (s := order_of(kernel, f"{run}-1")) is not None
                        and s.lifecycle is Lifecycle.CLOSED, "the order closed")

        anyio.run(with_coordinator, run, host, port, body, backend="asyncio")
        # SIGTERM for most, SIGINT (Ctrl-C) for one: both stop it cleanly.
        codes = [part.stop(signal.SIGINT if i == 1 else signal.SIGTERM)
                 for i, part in enumerate(parts)]
        assert codes == [0] * len(parts), "\n\n".join(p.output() for p in parts)


def test_a_restarted_gateway_emulator_starts_a_new_epoch_and_the_order_closes(
        tmp_path: Path) -> None:
    """A gateway emulator answers 'gateway_unavailable' and is stopped mid-flow;
    its restart counts the order's events from 1 again under a new epoch, so
    none is refused (duplicate or stale), and the order closes."""
    run = f"emu-{uuid.uuid4().hex[:8]}"
    order_id = f"{run}-1"
    ignored: list[EventIgnored] = []

    with broker.own_broker(tmp_path) as (host, port), emulators() as start:
        common = ["--speed", str(SPEED), "--broker", f"{host}:{port}"]
        # Same client id for both gateway runs: the restart resumes the
        # session, with the retries queued while it was down.
        first = start("gateway", "--scenario", str(GATEWAY_ERRORS), *common,
                      "--client-id", f"{run}-gw")
        world = start("all", "--without", "gateway", "--scenario", str(QUICK), *common,
                      "--client-id", f"{run}-world")

        async def body(kernel: LiveKernel) -> None:
            def sink(_: float, __: str, event: object) -> None:
                if isinstance(event, EventIgnored):
                    ignored.append(event)
            kernel.add_sink(sink)
            await first.ready()
            await world.ready()
            kernel.tell("intake", place(OrderSpec(order_id=order_id)))

            def failed_once() -> bool:
                state = order_of(kernel, order_id)
                return state is not None and any(r.failure is not None
                                                 for r in state.payment_requests)
            await until(failed_once, "the first gateway's failure was applied")
            assert first.stop() == 0, first.output()
            second = start("gateway", "--scenario", str(QUICK), *common,
                           "--client-id", f"{run}-gw")
            await second.ready()
            await until(lambda: (s := order_of(kernel, order_id)) is not None
                        and s.lifecycle is Lifecycle.CLOSED, "the order closed")
            state = order_of(kernel, order_id)
            assert state is not None
            epochs = sorted(name for name, _ in state.source_seqs if name.startswith("gateway/"))
            assert len(epochs) == 2, state.source_seqs
            assert second.stop() == 0, second.output()

        anyio.run(with_coordinator, run, host, port, body, backend="asyncio")
        assert world.stop() == 0, world.output()
    assert [(e.event_type, e.source, e.outcome) for e in ignored
            if e.order_id == order_id] == []


def test_an_emulator_whose_broker_goes_away_exits_1_saying_so(tmp_path: Path) -> None:
    """When its broker stops, an emulator says which broker it lost, in one
    line without a traceback, and exits 1 (a supervisor restarts it)."""
    with emulators() as start:
        with broker.own_broker(tmp_path) as (host, port):
            emulator = start("gateway", "--scenario", str(QUICK), "--broker", f"{host}:{port}",
                             "--client-id", f"emu-{uuid.uuid4().hex[:8]}-gw")
            anyio.run(emulator.ready, backend="asyncio")
        try:
            code = emulator.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {DEADLINE} s after its broker stopped")
        emulator.stop()
        assert code == 1, emulator.output()
        assert emulator.lines[-1].startswith(f"orderloom emulate: broker {host}:{port}: ")
        assert "Traceback" not in emulator.output()
