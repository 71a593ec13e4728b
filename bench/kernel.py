"""Kernel benchmark: the SimPy kernel against bare SimPy, in one run.

Prints one ``name=value`` line per figure:

- ``bare_simpy_msgs_per_s``: N actors, each a SimPy process with a
  ``simpy.Store`` mailbox, a loop that gets a message and calls a plain
  function; pairs of actors play ping-pong.
- ``sim_kernel_msgs_per_s``: the same traffic through the orderloom SimPy
  kernel with ``async`` handlers and ``await ctx.send``.
- ``sim_kernel_vs_bare_simpy_ratio``: the second over the first (target >= 0.5,
  stretch >= 1.0).
- ``persistent_actor_msgs_per_s``: the same traffic through the SimPy kernel
  with persistent actors (each hit records one event and commits a turn to a
  ``MemoryStore`` that keeps only what a restore needs, as the simulator's);
  ``persistent_vs_plain_actor_ratio``: its rate over the plain actors' (what
  moving an actor onto a journal costs per message).
- ``live_kernel_msgs_per_s``: the same traffic through the live anyio kernel.
- ``idle_actor_bytes``: memory per idle actor (tracemalloc, 100,000 actors).

Each throughput figure is the best of ``--repeat`` runs, to damp the noise of
a shared machine. Usage: ``python bench/kernel.py [--messages N] [--pairs P]``.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable, Generator
from typing import Any

import anyio
import attrs
import simpy

from orderloom.runtime import (
    Actor,
    Address,
    Kernel,
    MemoryStore,
    Message,
    PersistentActor,
    Store,
    handler,
)
from orderloom.runtime.live import LiveKernel
from orderloom.simulation import SimKernel


@attrs.frozen(kw_only=True)
class Ball(Message):
    hits: int


# -- (a) bare SimPy ------------------------------------------------------------------


def bare_simpy(pairs: int, hits: int) -> int:
    env = simpy.Environment()
    stores = [simpy.Store(env) for _ in range(2 * pairs)]
    handled = 0

    def on_message(me: int, msg: tuple[int, int]) -> None:
        nonlocal handled
        handled += 1
        sender, left = msg
        if left > 0:
            stores[sender].put((me, left - 1))

    def actor(me: int) -> Generator[Any, Any, None]:
        store = stores[me]
        while True:
            msg = yield store.get()
            on_message(me, msg)

    for me in range(2 * pairs):
        env.process(actor(me))
    for p in range(pairs):
        stores[2 * p + 1].put((2 * p, hits))
    env.run()
    return handled


# -- (b) the orderloom SimPy kernel -----------------------------------------------------


class Player(Actor):
    def __init__(self, peer: str) -> None:
        self.peer = Address(peer)

    @handler
    async def on_ball(self, msg: Ball) -> None:
        if msg.hits > 0:
            await self.ctx.send(self.peer, Ball(hits=msg.hits - 1))


def _spawn_pairs(kernel: Kernel, pairs: int, hits: int) -> None:
    for p in range(pairs):
        kernel.spawn(lambda p=p: Player(f"p{p}b"), f"p{p}a")  # type: ignore[misc]
        kernel.spawn(lambda p=p: Player(f"p{p}a"), f"p{p}b")  # type: ignore[misc]
    for p in range(pairs):
        kernel.tell(f"p{p}a", Ball(hits=hits))


def sim_kernel(pairs: int, hits: int) -> int:
    kernel = SimKernel(seed=1)
    _spawn_pairs(kernel, pairs, hits)
    kernel.run()
    return kernel.delivered


# -- (c) persistent actors on the SimPy kernel -------------------------------------------


class Scorer(PersistentActor[int]):
    """A player whose hit count is the fold of its journal."""

    snapshot_every = 64

    def __init__(self, peer: str, store: Store) -> None:
        super().__init__(store)
        self.peer = Address(peer)

    def initial_state(self) -> int:
        return 0

    def evolve(self, state: int, event: Ball) -> int:
        return state + 1

    @handler
    async def on_ball(self, msg: Ball) -> None:
        self.record(msg)
        if msg.hits > 0:
            await self.ctx.send(self.peer, Ball(hits=msg.hits - 1))


def persistent_actors(pairs: int, hits: int) -> int:
    kernel = SimKernel(seed=1)
    store = MemoryStore(keep_history=False, inbox_retention=3600.0)
    for p in range(pairs):
        kernel.spawn(lambda p=p: Scorer(f"p{p}b", store), f"p{p}a")  # type: ignore[misc]
        kernel.spawn(lambda p=p: Scorer(f"p{p}a", store), f"p{p}b")  # type: ignore[misc]
    for p in range(pairs):
        kernel.tell(f"p{p}a", Ball(hits=hits))
    kernel.run()
    return kernel.delivered


# -- (d) the live kernel ------------------------------------------------------------------


def live_kernel(pairs: int, hits: int) -> int:
    async def main() -> int:
        async with LiveKernel(seed=1) as kernel:
            _spawn_pairs(kernel, pairs, hits)
            if not await kernel.drain(timeout=600):
                raise RuntimeError("live kernel did not drain in 600 s")
            return kernel.delivered

    return anyio.run(main)


def best_rate(run: Callable[[int, int], int], pairs: int, hits: int, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        handled = run(pairs, hits)
        elapsed = time.perf_counter() - started
        best = max(best, handled / elapsed)
    return best


class Idle(Actor):
    @handler
    async def on_ball(self, msg: Ball) -> None:
        """Never called: the actors stay idle."""


def idle_actor_bytes(count: int) -> float:
    kernel = SimKernel(seed=1)
    names = [f"idle/{n}" for n in range(count)]  # addresses are the caller's strings
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for name in names:
        kernel.spawn(Idle, name)
    kernel.run()  # every on_start has run: the actors are idle
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="messages per run")
    parser.add_argument("--pairs", type=int, default=50, help="ping-pong actor pairs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--idle-actors", type=int, default=100_000)
    args = parser.parse_args()
    hits = max(1, args.messages // args.pairs)

    bare = best_rate(bare_simpy, args.pairs, hits, args.repeat)
    sim = best_rate(sim_kernel, args.pairs, hits, args.repeat)
    persistent = best_rate(persistent_actors, args.pairs, hits, args.repeat)
    live = best_rate(live_kernel, args.pairs, max(1, hits // 4), args.repeat)
    print(f"bare_simpy_msgs_per_s={bare:.0f}")
    print(f"sim_kernel_msgs_per_s={sim:.0f}")
    print(f"sim_kernel_vs_bare_simpy_ratio={sim / bare:.2f}")
    print(f"persistent_actor_msgs_per_s={persistent:.0f}")
    print(f"persistent_vs_plain_actor_ratio={persistent / sim:.2f}")
    print(f"live_kernel_msgs_per_s={live:.0f}")
    print(f"idle_actor_bytes={idle_actor_bytes(args.idle_actors):.0f}")


if __name__ == "__main__":
    main()
