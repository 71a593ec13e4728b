"""Replay: last week's real orders, this scenario's world, another policy.

A journal export (``orderloom journal export``, ``docs/wire.md`` ("Journal export"))
holds every event a coordinator journaled. :func:`read_recording` takes from
it what the customers did, and nothing the coordinator or the world did:

- each ``OrderPlaced`` becomes a placement (a ``PlaceOrder`` to intake with
  the same order id, customer, currency and lines, amounts included);
- each ``CancellationRequested`` the customer asked for (approver
  ``customer``) becomes a ``CustomerCancel`` to the order.

Times are the journal's ``at`` (the event's ``occurred_at`` where a line has
none), shifted so that the first placement is at the scenario's start (0).
A :class:`ReplayStorefront` sends them at those times in place of the
scenario's generated demand; every other part of the scenario (warehouses,
stock, teams, gateway, faults, downstream systems) stays. The world's hidden
truth about a replayed order (fraud, a bad address, a declining card) is the
default, honest one: a journal does not record it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from orderloom.actors import (
    Approver,
    CancellationRequested,
    CustomerCancel,
    DocumentError,
    OrderPlaced,
    PlaceOrder,
    journal_codec,
    journal_type_version,
    wire_codec,
    wire_types,
)
from orderloom.runtime import (
    JOURNAL_LINE_KEYS,
    Actor,
    Address,
    CodecError,
    Message,
    Recorded,
    UnknownTypeName,
    handler,
)

__all__ = [
    "DEFAULT_DRAIN",
    "JournalError",
    "Recording",
    "ReplayStorefront",
    "ReplayedAction",
    "read_recording",
    "recording_from_records",
]

DEFAULT_DRAIN = 86400.0
"""Seconds a replay runs on after the journal's last customer action, so the
orders in flight can finish (``--drain``)."""

INTAKE = "intake"


class JournalError(DocumentError):
    """A journal export cannot be replayed (``source`` is the file, each
    problem names the line)."""

    kind = "journal"


@attrs.frozen(kw_only=True)
class ReplayedAction:
    """One customer action of a recording.

    Invariants: ``at`` >= 0 (seconds after the first placement); ``message``
    is a ``PlaceOrder`` (to ``intake``, ``issued_at`` = ``at``) or a
    ``CustomerCancel`` (to the order); ``line`` is its line in the export.
    """

    at: float
    to: str
    message: Message
    line: int


@attrs.frozen(kw_only=True)
class Recording:
    """The customer actions taken from a journal export, in time order.

    Invariants: ``actions`` are sorted by ``(at, line)``, the first is a
    placement at 0; ``orders`` placements and ``cancels`` cancel requests;
    ``first_at`` and ``last_at`` are the journal times (not shifted) of the
    first placement and the last action.

    Attributes:
        source: the file it was read from.
        lines: the lines (events) the export held.
        actions: the placements and cancel requests to replay.
        orders: how many orders were placed.
        cancels: how many cancellations customers asked for.
        first_at: the journal time of the first placement.
        last_at: the journal time of the last action.
        skus: every SKU ordered.
    """

    source: str
    lines: int
    actions: tuple[ReplayedAction, ...]
    orders: int
    cancels: int
    first_at: float
    last_at: float
    skus: frozenset[str]

    @property
    def span(self) -> float:
        """Seconds from the first placement to the last action."""
        return self.last_at - self.first_at

    def order_ids(self) -> list[str]:
        """The placed orders' ids, in placement order."""
        return [a.message.order_id for a in self.actions if isinstance(a.message, PlaceOrder)]

    def digest(self) -> str:
        """A digest of the actions (what a replay's world depends on)."""
        sha = hashlib.sha256()
        for action in self.actions:
            sha.update(repr((action.at, action.to, action.message)).encode())
        return sha.hexdigest()[:16]

    def describe(self, horizon: float, stocked: Iterable[str] = ()) -> dict[str, Any]:
        """The ``replay`` block of a report run from this recording
        (``stocked``: the SKUs the world's warehouses hold)."""
        return {"source": self.source, "orders": self.orders, "cancels": self.cancels,
                "events": self.lines, "first_at": self.first_at, "last_at": self.last_at,
                "span": self.span, "horizon": horizon, "actions": self.digest(),
                "unstocked_skus": sorted(self.skus - set(stocked))}


def read_recording(path: Path | str) -> Recording:
    """The customer actions of a journal export file.

    Raises:
        JournalError: the file cannot be read, a line is not a journal line
            (not JSON, a missing or mistyped key, an unknown event type or
            version, an event that does not fit its type), an order is placed
            twice, a cancel names an order never placed, or nothing is placed.
    """
    source = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return _recording(_records(handle, source), source)
    except OSError as exc:
        raise JournalError(source, [f"(file): cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise JournalError(source, [f"(file): not UTF-8 text: {exc.reason}"]) from exc


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _records(lines: Iterable[str], source: str) -> Iterator[tuple[int, Recorded]]:
    """Each non-blank line decoded, with its number (``JournalError`` at the
    first bad one)."""
    codec = journal_codec()
    classes = codec.type_names
    wire = wire_codec()
    wire_names: dict[type, str] = {w.cls: w.name for w in wire_types()}
    upgraders = wire.upgraders
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue

        def bad(problem: str, number: int = number) -> JournalError:
            return JournalError(source, [f"line {number}: {problem}"])

        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise bad(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise bad(f"expected a JSON object with keys {list(JOURNAL_LINE_KEYS)}, "
                      f"got {type(data).__name__}")
        missing = [k for k in JOURNAL_LINE_KEYS if k not in data]
        extra = sorted(set(data) - set(JOURNAL_LINE_KEYS))
        if missing or extra:
            raise bad(f"expected the keys {list(JOURNAL_LINE_KEYS)}"
                      + (f"; missing {missing}" if missing else "")
                      + (f"; unknown {extra}" if extra else ""))
        address, version, name = data["address"], data["version"], data["type"]
        type_v, at, event = data["type_version"], data["at"], data["event"]
        if not isinstance(address, str) or not address:
            raise bad(f"address: expected an actor address, got {address!r}")
        for key, value in (("version", version), ("type_version", type_v)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(f"{key}: expected an integer >= 1, got {value!r}")
        if not isinstance(name, str):
            raise bad(f"type: expected an event type name, got {name!r}")
        if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
            raise bad(f"at: expected a time in seconds or null, got {at!r}")
        if not isinstance(event, dict):
            raise bad(f"event: expected a JSON object, got {type(event).__name__}")
        cls = classes.get(name)
        if cls is None:
            raise bad(f"type: unknown event type {name!r} (not one this orderloom journals)")
        known = journal_type_version(cls)
        # An export written by an older orderloom: its body is lifted to
        # today's version by the wire registry's upgraders, one step at a time.
        step, wire_name = type_v, wire_names.get(cls, name)
        while step < known and (wire_name, step) in upgraders:
            try:
                event = upgraders[(wire_name, step)].upgrade(event)
            except (KeyError, TypeError, ValueError) as exc:
                raise bad(f"event: a {name} v{step} body could not be upgraded: {exc}") from exc
            step += 1
        if step != known:
            raise bad(f"type_version: {name} version {type_v} is not one this orderloom "
                      f"reads (version {known}, or an older one it can upgrade)")
        try:
            decoded = codec.decode(name, json.dumps(event))
        except UnknownTypeName as exc:
            raise bad(f"type: unknown event type {name!r} (not one this orderloom "
                      "journals)") from exc
        except CodecError as exc:
            raise bad(f"event: does not fit type {name!r}: {exc}") from exc
        yield number, Recorded(stream=address, version=version, event=decoded,
                               recorded_at=None if at is None else float(at))


def recording_from_records(records: Iterable[Recorded], source: str) -> Recording:
    """The customer actions among journaled events (in any order; a problem
    names the event's place in ``records`` from 1 as its line).

    Raises:
        JournalError: an order placed twice, a cancel of an order never
            placed, no placement at all.
    """
    return _recording(enumerate(records, start=1), source)


def _recording(lines: Iterable[tuple[int, Recorded]], source: str) -> Recording:
    placed: dict[str, tuple[float, int]] = {}
    raw: list[tuple[float, int, str, Message]] = []
    cancels: list[tuple[float, int, CancellationRequested]] = []
    skus: set[str] = set()
    count = 0
    for number, record in lines:
        count += 1
        event = record.event
        if isinstance(event, OrderPlaced):
            at = _time(record, event.occurred_at)
            if event.order_id in placed:
                raise JournalError(source, [
                    f"line {number}: order {event.order_id!r} is placed again (first placed "
                    f"on line {placed[event.order_id][1]})"])
            placed[event.order_id] = (at, number)
            skus.update(line.sku for line in event.lines)
            raw.append((at, number, INTAKE, PlaceOrder(
                order_id=event.order_id, command_id=f"place-{event.order_id}", issued_at=0.0,
                issued_by="replay", customer_id=event.customer_id, currency=event.currency,
                lines=event.lines)))
        elif isinstance(event, CancellationRequested) and event.approver is Approver.CUSTOMER:
            cancels.append((_time(record, event.occurred_at), number, event))
    if not placed:
        raise JournalError(source, [f"(file): no OrderPlaced event in its {count} lines: "
                                    "nothing to replay (export the coordinator's store)"])
    for at, number, cancel in cancels:
        if cancel.order_id not in placed:
            raise JournalError(source, [f"line {number}: a cancel request for order "
                                        f"{cancel.order_id!r}, which no line places"])
        # A clock that stepped back must not send the cancel before its order.
        raw.append((max(at, placed[cancel.order_id][0]), number,
                    f"order/{cancel.order_id}",
                    CustomerCancel(order_id=cancel.order_id, reason=cancel.reason)))
    raw.sort(key=lambda r: (r[0], r[1]))
    first = raw[0][0]
    actions = tuple(
        ReplayedAction(at=at - first, to=to, line=number,
                       message=attrs.evolve(msg, issued_at=at - first)
                       if isinstance(msg, PlaceOrder) else msg)
        for at, number, to, msg in raw)
    return Recording(source=source, lines=count, actions=actions, orders=len(placed),
                     cancels=len(cancels), first_at=first, last_at=raw[-1][0],
                     skus=frozenset(skus))


def _time(record: Recorded, occurred_at: float) -> float:
    at = record.recorded_at
    return at if at is not None and math.isfinite(at) else occurred_at


@attrs.frozen(kw_only=True)
class _Next(Message):
    index: int


class ReplayStorefront(Actor):
    """Sends a recording's customer actions at their times, in their order."""

    def __init__(self, recording: Recording, horizon: float) -> None:
        self.actions = [a for a in recording.actions if a.at < horizon]
        self.sent = 0

    async def on_start(self) -> None:
        if self.actions:
            self.ctx.schedule(self.actions[0].at - self.ctx.now(), _Next(index=0))

    @handler
    async def on_next(self, msg: _Next) -> None:
        # Every action due now goes out in line order before the clock moves on.
        actions, i, now = self.actions, msg.index, self.ctx.now()
        while i < len(actions) and actions[i].at <= now:
            action = actions[i]
            await self.ctx.send(Address(action.to), action.message,
                                correlation_id=getattr(action.message, "order_id", None))
            self.sent += 1
            i += 1
        if i < len(actions):
            self.ctx.schedule(actions[i].at - now, _Next(index=i))


def replay_horizon(recording: Recording, drain: float | None,
                   horizon: float | None) -> float:
    """The horizon of a replay: the journal's span plus ``drain`` (default
    :data:`DEFAULT_DRAIN`), or ``horizon`` if given.

    Raises:
        ValueError: ``drain`` <= 0, or ``horizon`` not past the span.
    """
    if horizon is not None:
        if not horizon > recording.span:
            raise ValueError(f"horizon: expected more than the journal's span "
                             f"({recording.span:g} s from the first placement to the last "
                             f"action), got {horizon:g}")
        return horizon
    drain = DEFAULT_DRAIN if drain is None else drain
    if not (math.isfinite(drain) and drain > 0):
        raise ValueError(f"drain: expected a positive number of seconds, got {drain!r}")
    return recording.span + drain


def describe_replay(block: Mapping[str, Any]) -> str:
    """One line saying what a report's ``replay`` block replayed."""
    span = block.get("span")
    hours = f"{span / 3600:.3g} h" if isinstance(span, (int, float)) else "?"
    return (f"journal {block.get('source')}: {block.get('orders')} orders and "
            f"{block.get('cancels')} customer cancels over {hours}")
