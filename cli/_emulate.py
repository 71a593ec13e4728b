"""``orderloom emulate``: one of the simulated world's actors (or all of them)
as a process of its own on the MQTT broker.

The actors are the simulator's (``world_actors`` of the scenario's world, its
fault schedule applied), run on a :class:`LiveKernel` whose transport is an
:class:`MqttTransport` subscribed to their addresses. There is no oracle: an
emulator does not know the simulated truth of an order (see docs/cli.md).

Each start is a new **epoch** (``epoch_source``): the gateway's and the
warehouses' events go out under ``gateway/<epoch>`` / ``warehouse/<id>/<epoch>``,
so a restarted emulator, which counts each order's events from 1 again, is
neither taken for a duplicate nor for stale by the orders.
"""

from __future__ import annotations

import json
import random
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import anyio
import attrs
import click

from orderloom.actors import team_address, warehouse_address, wire_codec
from orderloom.runtime import Actor, Envelope, TransportError
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.mqtt import MqttTransport
from orderloom.simulation import Scenario, load_scenario, resolve_scenario, world_actors, world_for

KINDS = ("address", "all", "downstream", "gateway", "support", "warehouse")
"""What ``orderloom emulate`` runs: one actor of a kind, or ``all`` of them."""

DEFAULT_BROKER = "127.0.0.1:1883"
STOP_GRACE = 5.0
"""Real seconds a stopping emulator waits for the work already due to finish."""

_SINGLE = {"gateway": "gateway", "address": "address-service"}


class EmulateError(click.UsageError):
    """A kind, id or broker the scenario or the syntax does not allow (exit 2)."""


@attrs.frozen(kw_only=True)
class Emulation:
    """What one ``orderloom emulate`` process runs: its actors by address."""

    label: str
    actors: dict[str, Callable[[], Actor]]


def new_epoch() -> str:
    """A fresh epoch name: the start time (UTC) and a random tag, readable in
    a journal and unique even for two starts in the same second."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(3)}"


def parse_broker(text: str) -> tuple[str, int]:
    """``host:port`` (or ``host``, port 1883) as (host, port).

    Raises:
        EmulateError: not ``host[:port]`` with a port in 1..65535.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, "1883"
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise EmulateError(f"--broker: expected HOST:PORT (port 1..65535), got {text!r}")
    return host, int(port_text)


def _ids(scenario: Scenario, kind: str) -> list[str]:
    if kind == "warehouse":
        return [w.warehouse_id for w in scenario.warehouses]
    if kind == "support":
        return [t.name for t in scenario.teams]
    return [d.system for d in scenario.downstream]


def emulation(scenario: Scenario, kind: str, ident: str | None, epoch: str,
              without: tuple[str, ...] = ()) -> Emulation:
    """The actors ``orderloom emulate KIND --id IDENT`` runs for ``scenario``
    (``without``: for ``all``, the addresses left to other processes).

    Raises:
        EmulateError: an unknown kind; an id given where none is taken; a
            missing or unknown id (the message lists the scenario's ids); a
            ``without`` with another kind than ``all``, or naming no actor of
            the world (the message lists them), or leaving nothing to run.
    """
    if kind not in KINDS:
        raise EmulateError(f"KIND: expected one of {list(KINDS)}, got {kind!r}")
    if without and kind != "all":
        raise EmulateError(f"--without: only with 'all', not with '{kind}'")
    rng = random.Random(scenario.seed)
    actors = world_actors(world_for(scenario, scenario.policy, rng).world, epoch=epoch)
    if kind == "all" or kind in _SINGLE:
        if ident is not None:
            raise EmulateError(f"--id: '{kind}' takes no id (got {ident!r})")
        if kind == "all":
            unknown = [a for a in without if a not in actors]
            if unknown:
                raise EmulateError(f"--without: {unknown} not in scenario {scenario.name!r}; "
                                   f"expected addresses among {sorted(actors)}")
            kept = {a: f for a, f in actors.items() if a not in without}
            if not kept:
                raise EmulateError("--without: leaves no actor to emulate")
            label = "all" if not without else "all-but-" + "-".join(sorted(without))
            return Emulation(label=label, actors=kept)
        address = _SINGLE[kind]
        return Emulation(label=address, actors={address: actors[address]})
    valid = _ids(scenario, kind)
    where = f"scenario {scenario.name!r}"
    if ident is None:
        raise EmulateError(f"--id: '{kind}' needs an id, one of {valid} ({where})")
    if ident not in valid:
        raise EmulateError(f"--id: no {kind} {ident!r} in {where}; expected one of {valid}")
    address = str(warehouse_address(ident) if kind == "warehouse"
                  else team_address(ident) if kind == "support" else ident)
    return Emulation(label=address, actors={address: actors[address]})


def kernel_start(start_hour: float | None, wall_clock: bool, now: float) -> float:
    """The emulator's kernel time at start: scenario time (``start_hour``
    hours after day 0's midnight, default 0) or, with ``wall_clock``, ``now``
    (seconds since the Unix epoch, the clock ``orderloom serve`` keeps).

    Raises:
        EmulateError: both a start hour and the wall clock.
    """
    if wall_clock:
        if start_hour is not None:
            raise EmulateError("--start-hour: not with --wall-clock (the wall clock sets the hour)")
        return now
    return (start_hour or 0.0) * 3600.0


def default_client_id(label: str) -> str:
    """A stable MQTT client id per emulated address, so that a restarted
    emulator resumes its broker session (and the requests queued for it)."""
    return "orderloom-emulate-" + label.replace("/", "-")


async def run_emulation(
    run: Emulation, *, host: str, port: int, client_id: str, speed: float,
    start_time: float, seed: int | None, ready: Callable[[str], None],
    ledger: Path | None = None,
) -> None:
    """Run ``run``'s actors on the broker until SIGTERM or SIGINT, then let
    what is due finish (up to :data:`STOP_GRACE` real seconds) and return.

    With a ``ledger``, every command an actor handled is appended to it
    (:func:`ledger_sink`).

    Raises:
        TransportError: the broker cannot be reached, or the connection broke.
    """
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals, \
            ledger_sink(ledger) as record:
        # reconnect=None: a lost broker ends the emulator (exit 1, its
        # supervisor restarts it), as docs/cli.md promises; serve reconnects.
        async with MqttTransport(wire_codec(), client_id=client_id, subscriptions=list(run.actors),
                                 hostname=host, port=port, reconnect=None) as transport, \
                LiveKernel(seed=seed, speed=speed, start_time=start_time,
                           transport=transport) as kernel:
            if record is not None:
                kernel.add_turn_sink(record)
            for address, factory in run.actors.items():
                kernel.spawn(factory, address)
            ready(f"emulating {', '.join(run.actors)} on {host}:{port} as {client_id}")
            async for _ in signals:
                break
            await kernel.settle(STOP_GRACE)


LEDGER_KEYS = ("message_id", "recipient", "type", "order_id", "command_id")
"""The keys of a ledger line (``--ledger``), in this order."""

_COMMAND_IDS = ("request_id", "fulfillment_order_id", "case_id", "command_id")


def ledger_line(envelope: Envelope) -> dict[str, str | None]:
    """What the ledger records of a command an emulated actor handled: the
    envelope's id and recipient, the message type, the order and the
    command's own id (the gateway's ``request_id``, a warehouse's
    ``fulfillment_order_id``, a team's ``case_id``; None for messages that
    carry none, such as a downstream ``SyncOrder`` snapshot)."""
    body = envelope.body
    order_id = getattr(body, "order_id", None)
    snapshot = getattr(body, "snapshot", None)
    if order_id is None and snapshot is not None:
        order_id = getattr(snapshot, "order_id", None)
    command_id = next((getattr(body, name) for name in _COMMAND_IDS
                       if isinstance(getattr(body, name, None), str)), None)
    return {"message_id": envelope.message_id, "recipient": str(envelope.recipient),
            "type": type(body).__name__, "order_id": order_id, "command_id": command_id}


@contextmanager
def ledger_sink(path: Path | None) -> Iterator[Callable[[Envelope, float], None] | None]:
    """A turn sink appending one JSON line (:func:`ledger_line`) per handled
    command to ``path``, each written through to the OS at once (a killed
    emulator loses no line it had written); None without a path."""
    if path is None:
        yield None
        return
    handle: IO[str]
    with path.open("a", encoding="utf-8", buffering=1) as handle:

        def record(envelope: Envelope, _latency: float) -> None:
            handle.write(json.dumps(ledger_line(envelope), separators=(",", ":")) + "\n")

        yield record


def _transport_error(exc: BaseException) -> TransportError | None:
    """The TransportError in ``exc`` (possibly inside exception groups)."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _transport_error(inner)
            if found is not None:
                return found
    return None


def emulate_command(kind: str, ident: str | None, scenario_name: str, speed: float,
                    broker: str, client_id: str | None, start_hour: float | None,
                    without: tuple[str, ...] = (), wall_clock: bool = False,
                    ledger: Path | None = None) -> None:
    """The body of ``orderloom emulate`` (usage errors raise, exit 2; an
    unreachable or lost broker exits 1)."""
    host, port = parse_broker(broker)
    start_time = kernel_start(start_hour, wall_clock, time.time())
    scenario = load_scenario(resolve_scenario(scenario_name))
    epoch = new_epoch()
    run = emulation(scenario, kind, ident, epoch, without)
    client = client_id if client_id is not None else default_client_id(run.label)

    def ready(line: str) -> None:
        click.echo(f"{line} (scenario {scenario.name!r}, epoch {epoch}, speed {speed:g})")
        sys.stdout.flush()

    try:
        anyio.run(lambda: run_emulation(
            run, host=host, port=port, client_id=client, speed=speed,
            start_time=start_time, seed=scenario.seed, ready=ready, ledger=ledger),
            backend="asyncio")
    except BaseException as exc:  # noqa: BLE001 - only a transport failure is translated
        error = _transport_error(exc)
        if error is None:
            raise
        click.echo(f"orderloom emulate: broker {host}:{port}: {error}", err=True)
        sys.exit(1)
