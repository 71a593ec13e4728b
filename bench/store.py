"""Store benchmark: commit throughput and restore cost of MemoryStore and SqliteStore.

Prints one ``name=value`` line per figure:

- ``memory_store_commits_per_s`` / ``sqlite_store_commits_per_s``: a typical
  order turn — 2 events, 1 inbox id, 1 outbox entry, 1 durable timer re-armed
  — committed round-robin over ``--orders`` orders. SqliteStore writes a file
  in ``--dir`` (WAL, ``synchronous=FULL``: one fsync per commit, so the
  figure depends on the disk).
- ``<store>_restore_ms_per_order_<n>_events``: milliseconds for one
  ``load()`` of an order whose journal holds ``n`` events (10, 50, 200), no
  snapshot; ``..._snapshot``: the same journal with a snapshot 6 events behind
  the head (so ``load()`` decodes one state and 6 events). Decoding included;
  folding the events into a state is the domain's cost, not measured here.

Events, outbox messages and the snapshot state are the real domain classes
(``PaymentAuthorized``, ``AuthorizePayment``, ``StuckCheck``, an
``OrderState`` with two lines), so the codec cost is representative. Usage:
``python bench/store.py [--turns N] [--orders K] [--restore-orders R]``.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

import orderloom.actors as domain
from orderloom.actors import (
    AuthorizePayment,
    LineItemSpec,
    OrderState,
    PaymentAuthorized,
    PlaceOrder,
    StuckCheck,
    handle,
)
from orderloom.runtime import (
    AttrsCodec,
    DurableTimer,
    MemoryStore,
    OutboxEntry,
    Snapshot,
    Store,
    Turn,
)
from orderloom.runtime.sqlite import SqliteStore

RESTORE_SIZES = (10, 50, 200)
SNAPSHOT_LAG = 6


def codec() -> AttrsCodec:
    types = [getattr(domain, name) for name in domain.__all__
             if isinstance(getattr(domain, name), type) and attrs.has(getattr(domain, name))]
    return AttrsCodec(types)


def order_state(order_id: str) -> OrderState:
    """An order placed with two lines: a representative snapshot state."""
    place = PlaceOrder(order_id=order_id, command_id="c1", issued_at=0.0, issued_by="shop",
                       customer_id="C1", currency="EUR",
                       lines=(LineItemSpec(line_id="L1", sku="SKU-1", quantity=2, unit_price=500),
                              LineItemSpec(line_id="L2", sku="SKU-2", quantity=1,
                                           unit_price=1000)))
    state, _ = handle(OrderState(order_id=order_id), place)
    return state


def event(order_id: str, n: int) -> PaymentAuthorized:
    return PaymentAuthorized(order_id=order_id, event_id=f"gateway#{n}", source="gateway",
                             source_seq=n, occurred_at=float(n), request_id=f"c{n}",
                             authorization_id=f"A{n}", amount=2000)


def typical_turns(orders: int, turns: int) -> list[tuple[str, Turn]]:
    """``turns`` typical turns, round-robin over ``orders`` streams, versions in order."""
    versions = [0] * orders
    out = []
    for t in range(turns):
        k = t % orders
        stream, order_id, v = f"order/{k}", f"O{k}", versions[k]
        command = AuthorizePayment(order_id=order_id, command_id=f"c{t}", issued_at=float(t),
                                   issued_by="automation", amount=2000)
        out.append((stream, Turn(
            expected_version=v, events=(event(order_id, v + 1), event(order_id, v + 2)),
            inbox_id=f"m{t}",
            outbox=(OutboxEntry(entry_id=f"e{t}", stream=stream, recipient="gateway",
                                message=command, causation_id=f"m{t}",
                                correlation_id=order_id),),
            timers_set=(DurableTimer(timer_id="stuck", stream=stream, due_at=float(t + 3600),
                                     message=StuckCheck(order_id=order_id, stage="placed",
                                                        version=v + 2,
                                                        entered_at=float(t))),),
            recorded_at=float(t))))
        versions[k] = v + 2
    return out


def commits_per_s(store: Store, turns: Sequence[tuple[str, Turn]]) -> float:
    gc.collect()
    start = time.perf_counter()
    for stream, turn in turns:
        store.commit(stream, turn)
    return len(turns) / (time.perf_counter() - start)


def fill_journals(store: Store, orders: int, size: int, snapshot: bool) -> list[str]:
    """``orders`` streams of ``size`` events each (in turns of 2), optionally snapshotted."""
    streams = []
    for k in range(orders):
        stream, order_id = f"restore-{size}-{snapshot}/{k}", f"R{k}"
        state = order_state(order_id)
        for v in range(0, size, 2):
            at = v + 2
            snap = (Snapshot(version=at, state=state)
                    if snapshot and at == size - SNAPSHOT_LAG else None)
            store.commit(stream, Turn(expected_version=v,
                                      events=(event(order_id, v + 1), event(order_id, v + 2)),
                                      snapshot=snap))
        streams.append(stream)
    return streams


def restore_ms(store: Store, streams: Sequence[str]) -> float:
    gc.collect()
    start = time.perf_counter()
    for stream in streams:
        store.load(stream)
    return (time.perf_counter() - start) * 1000 / len(streams)


def best(repeat: int, run: Callable[[], float], higher: bool) -> float:
    results = [run() for _ in range(repeat)]
    return max(results) if higher else min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20_000, help="turns per commit run")
    parser.add_argument("--sqlite-turns", type=int, default=2_000,
                        help="turns per SqliteStore commit run (one fsync each)")
    parser.add_argument("--orders", type=int, default=200, help="streams the turns go to")
    parser.add_argument("--restore-orders", type=int, default=100,
                        help="orders loaded per restore figure")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--dir", default=None, help="directory for the SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        runs = iter(range(1_000_000))

        def sqlite() -> SqliteStore:
            return SqliteStore(Path(tmp) / f"bench-{next(runs)}.sqlite", codec())

        def memory_commits() -> float:
            with MemoryStore() as store:
                return commits_per_s(store, typical_turns(args.orders, args.turns))

        def sqlite_commits() -> float:
            with sqlite() as store:
                return commits_per_s(store, typical_turns(args.orders, args.sqlite_turns))

        print(f"memory_store_commits_per_s={best(args.repeat, memory_commits, True):.0f}")
        print(f"sqlite_store_commits_per_s={best(args.repeat, sqlite_commits, True):.0f}")

        for name, opener in (("memory", MemoryStore), ("sqlite", sqlite)):
            with opener() as store:
                for size in RESTORE_SIZES:
                    for snapshot in (False, True):
                        streams = fill_journals(store, args.restore_orders, size, snapshot)
                        ms = best(args.repeat, lambda: restore_ms(store, streams), False)
                        suffix = "_snapshot" if snapshot else ""
                        print(f"{name}_restore_ms_per_order_{size}_events{suffix}={ms:.4f}")


if __name__ == "__main__":
    main()
