"""Running replications: one world per replication, in parallel processes.

Replication k of a run with seed S uses the seed ``replication_seed(S, k)``
for everything random in its world: arrivals, order contents, data faults,
swarm-drawn faults and every actor's stream. Two policies run with the same
seed therefore face the same orders, outages and staffing in replication k
(common random numbers), which is what makes paired comparisons sharp.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import multiprocessing
import queue
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from pathlib import Path

import attrs

from orderloom.actors import MetricsCollector
from orderloom.actors.world._dist import Window
from orderloom.actors.order._policy import Policy
from orderloom.runtime import Store

from ._faults import LinkFaults, LinkRule
from ._kernel import SimKernel
from ._result import ReplicationResult
from ._scenario import Scenario
from ._trace import write_trace
from ._replay import Recording, ReplayStorefront
from ._workload import CaseSource, Storefront, Truths
from ._world import WorldConfig, build_world

__all__ = ["replication_seed", "run_replication", "run_replications", "world_for"]

Progress = Callable[[ReplicationResult], None]
Clock = Callable[[int, float], None]
"""Told ``(replication, simulated time)`` as a replication's clock moves on."""

CLOCK_STEPS = 100
"""How often a replication reports its simulated clock: every horizon/100."""


def replication_seed(seed: int, replication: int) -> int:
    """The seed of replication ``replication`` of a run seeded ``seed``."""
    digest = hashlib.sha256(f"orderloom/{seed}/{replication}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@attrs.frozen(kw_only=True)
class _Faults:
    world: WorldConfig
    links: tuple[LinkRule, ...]
    windows: tuple[tuple[float, float, str], ...]


def world_for(scenario: Scenario, policy: Policy, rng: random.Random) -> _Faults:
    """The world of one replication: the scenario's systems with its fault
    schedule applied (and, in swarm mode, faults drawn from ``rng``).

    Link rules keep their window, and the scenario's rules come before
    swarm's; the kernel applies every matching rule (a scenario's rule on
    the gateway's webhooks adds to swarm's rather than shadowing it). A link
    rule's window is listed with the fault windows unless it spans the whole
    run (shading a whole chart says nothing).
    """
    gateway, warehouses = scenario.gateway, list(scenario.warehouses)
    teams, downstream = list(scenario.teams), list(scenario.downstream)
    links: list[LinkRule] = []
    windows: list[tuple[float, float, str]] = []
    horizon = scenario.horizon
    for fault in scenario.faults:
        if fault.start >= horizon:  # never fires (a warning says so); its window
            continue                # would end before it starts once capped below
        end = min(fault.end, horizon * 10)
        if fault.kind == "link":
            assert fault.link is not None  # validated on load
            links.append(LinkRule(sender=fault.sender, recipient=fault.recipient,
                                  faults=fault.link, start=fault.start, end=fault.end))
            if fault.start > 0 or fault.end < horizon:
                windows.append((fault.start, end, fault.label()))
            continue
        window = Window(start=fault.start, end=end, mode=fault.mode, factor=fault.factor)
        windows.append((fault.start, end, fault.label()))
        if fault.kind == "gateway_outage":
            gateway = attrs.evolve(gateway, outages=(*gateway.outages, window))
        elif fault.kind == "warehouse_outage":
            warehouses = [attrs.evolve(w, outages=(*w.outages, attrs.evolve(window, mode="down")))
                          if w.warehouse_id == fault.target else w for w in warehouses]
        elif fault.kind == "team_absence":
            teams = [attrs.evolve(t, absences=(*t.absences, window))
                     if t.name == fault.target else t for t in teams]
        elif fault.kind == "downstream_outage":
            downstream = [attrs.evolve(d, outages=(*d.outages, window))
                          if d.system == fault.target else d for d in downstream]
    swarm = scenario.swarm
    if swarm.enabled:
        links.append(LinkRule(sender="gateway", recipient="order/*", faults=LinkFaults(
            duplicate=rng.uniform(0, swarm.webhook_duplicate),
            drop=rng.uniform(0, swarm.webhook_drop),
            reorder=rng.uniform(0, swarm.webhook_reorder))))
        gateway = attrs.evolve(gateway, lost_response_rate=rng.uniform(0, swarm.lost_response))
        if rng.random() < swarm.gateway_outage_probability and swarm.gateway_outage_hours > 0:
            length = rng.uniform(0.25, 1.0) * swarm.gateway_outage_hours * 3600
            start = rng.uniform(scenario.warm_up, max(scenario.warm_up, horizon - length))
            mode = rng.choice(("down", "errors", "slow"))
            gateway = attrs.evolve(gateway, outages=(*gateway.outages, Window(
                start=start, end=start + length, mode=mode, factor=10.0)))
            windows.append((start, start + length, f"swarm gateway {mode}"))
        downstream = [attrs.evolve(d, failure_rate=max(d.failure_rate,
                                                       rng.uniform(0, swarm.downstream_failure)))
                      for d in downstream]
    world = WorldConfig(
        policy=policy, gateway=gateway, warehouses=tuple(warehouses), teams=tuple(teams),
        downstream=tuple(downstream), address=scenario.address,
        gateway_timeout=scenario.gateway_timeout, resequence_timeout=scenario.resequence_timeout,
    )
    return _Faults(world=world, links=tuple(links), windows=tuple(windows))


def run_replication(
    scenario: Scenario,
    replication: int,
    *,
    policy: Policy | None = None,
    seed: int | None = None,
    trace_to: str | None = None,
    observe: Callable[[SimKernel], None] | None = None,
    store: Store | None = None,
    on_clock: Callable[[float], None] | None = None,
    recording: Recording | None = None,
) -> ReplicationResult:
    """Run one replication to the scenario's horizon and measure it.

    Args:
        scenario: the scenario.
        replication: its index; with ``seed`` it fixes the world's randomness.
        policy: overrides the scenario's policy.
        seed: overrides the scenario's seed.
        trace_to: write the kernel trace and all telemetry here, compact
            (see :mod:`._trace`; gzip-compressed when the name ends in ``.gz``).
        observe: called with the kernel once the world is built, before the
            run (tests add sinks to it, and keep it to inspect the world at
            the horizon).
        store: where the persistent actors keep their journals (default: a
            :class:`~orderloom.runtime.MemoryStore` that keeps what a restore
            needs; a :class:`~orderloom.runtime.sqlite.SqliteStore` with
            :func:`~orderloom.actors.journal_codec` runs the same world on disk).
        on_clock: told the simulated time every ``horizon / CLOCK_STEPS`` (for
            progress). The run then advances in that many stretches, which
            changes nothing it computes: a stretch ends on a stop event that
            only ends ``run``, and SimPy's heap keeps every other event's order.
        recording: replay these customer actions (:func:`~._replay.read_recording`)
            instead of the scenario's generated demand; the rest of the world
            is the scenario's.
    """
    started = time.perf_counter()
    policy = policy or scenario.policy
    rep_seed = replication_seed(scenario.seed if seed is None else seed, replication)
    faults = world_for(scenario, policy, random.Random(f"{rep_seed}/faults"))
    kernel = SimKernel(seed=rep_seed, trace=trace_to is not None)
    teams = tuple(t.name for t in faults.world.teams)
    collector = MetricsCollector(
        warm_up=scenario.warm_up, horizon=scenario.horizon,
        series_step=scenario.horizon / 200.0,
        systems=tuple(d.system for d in faults.world.downstream), teams=teams,
        mismatch_grace=scenario.mismatch_grace,
        standalone_cases=scenario.demand.mode == "cases")
    kernel.add_sink(collector.on_emit)
    telemetry: list[tuple[float, str, object]] | None = [] if trace_to else None
    if telemetry is not None:
        kernel.add_sink(lambda t, a, e: telemetry.append((t, a, e)))
    truths = Truths()
    if recording is not None:
        build_world(kernel, faults.world, truths, truths.forget, store=store)
        kernel.spawn(lambda: ReplayStorefront(recording, scenario.horizon), "storefront")
    elif scenario.demand.mode == "cases":
        team = faults.world.teams[0]
        from orderloom.actors.world._team import SupportTeam

        kernel.spawn(lambda: SupportTeam(team, None), f"team/{team.name}")
        kernel.spawn(lambda: CaseSource(team.name, scenario.demand.orders_per_day,
                                        scenario.horizon), "cases")
    else:
        build_world(kernel, faults.world, truths, truths.forget, store=store)
        kernel.spawn(lambda: Storefront(scenario, truths), "storefront")
    for rule in faults.links:
        kernel.set_link_faults(rule.sender, rule.recipient, rule.faults,
                               start=rule.start, end=rule.end)
    if observe is not None:
        observe(kernel)
    with collector_tuned():
        if on_clock is None:
            kernel.run(until=scenario.horizon)
        else:
            for step in range(1, CLOCK_STEPS + 1):
                kernel.run(until=scenario.horizon * step / CLOCK_STEPS)
                on_clock(kernel.now())
    metrics, series, examples = collector.finish(kernel.now())
    metrics["dead_letters"] = float(kernel.dead_letter_total)
    for reason, count in kernel.dead_letter_counts.items():
        metrics[f"dead_letters.{reason}"] = float(count)
    metrics["handler_failures"] = float(kernel.failure_total)  # past the kept records too
    if trace_to is not None and telemetry is not None:
        write_trace(Path(trace_to), kernel.trace or (), telemetry)
    return ReplicationResult(
        replication=replication, seed=rep_seed, metrics=metrics, series=series,
        examples=examples, fault_windows=list(faults.windows),
        wall_seconds=time.perf_counter() - started, messages=kernel.delivered)


# What collector_tuned needs from the gc module; CPython has it since 3.7.
_GC_TUNING = ("freeze", "unfreeze", "get_threshold", "set_threshold")


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """Python's cyclic garbage collector, tuned for the length of a run.

    A run allocates millions of short-lived objects (messages, envelopes,
    order states) that reference counting frees. With the default
    thresholds the collector still runs every 700 net allocations, and
    every tenth and hundredth run traverses the older generations, i.e.
    every order in flight: 12% of a peak-day run went there. Here the
    young generation is collected every 50,000 allocations, and what
    existed before the run (modules, the scenario, the world) is frozen
    out of collections. Reference cycles are rare in a run (the kernel
    breaks the actor/context one when an actor stops), so little garbage
    waits for the collector meanwhile. The previous settings come back on exit.

    Garbage is collected before the freeze: frozen garbage is not freed, and
    with these thresholds a run rarely reaches a full collection, so the
    cycles a previous run left in a worker process (its world) would be
    frozen again by the next run, and the next: a worker grew by about 80 MB
    per peak-day replication. An interpreter without ``gc.freeze`` (e.g.
    PyPy) runs with its collector untouched.
    """
    if not all(hasattr(gc, name) for name in _GC_TUNING):
        yield
        return
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def run_replications(
    scenario: Scenario,
    replications: int,
    *,
    policy: Policy | None = None,
    seed: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    executor: str = "process",
    scheduler: str | None = None,
    start: int = 0,
    clock: Clock | None = None,
    recording: Recording | None = None,
) -> list[ReplicationResult]:
    """Run replications ``start..replications-1`` (0..n-1 by default), in
    ``workers`` processes (or on Dask). Replication k's world depends on the
    seed and k alone, so running 0..4 and then 5..9 gives what 0..9 does.

    ``progress`` is called with each finished replication; ``clock`` with
    ``(replication, simulated time)`` as each one's clock moves on (in
    processes, through a queue; not on Dask). Neither changes a result.
    ``recording``: replay its customer actions instead of the generated demand."""
    indices = list(range(start, replications))
    results: list[ReplicationResult] = []
    if executor == "dask":
        return _run_dask(scenario, indices, policy, seed, scheduler, progress, recording)
    if workers <= 1 or len(indices) == 1:
        for k in indices:
            result = run_replication(
                scenario, k, policy=policy, seed=seed, recording=recording,
                on_clock=None if clock is None else functools.partial(clock, k))
            results.append(result)
            if progress:
                progress(result)
        return results
    if clock is not None:
        return _run_clocked(scenario, indices, policy, seed, workers, progress, clock,
                            recording)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_replication, scenario, k, policy=policy, seed=seed,
                               recording=recording)
                   for k in indices]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            if progress:
                progress(result)
    return sorted(results, key=lambda r: r.replication)


# The queue a worker process reports its replications' clocks to (set by
# the pool's initializer, in the worker).
_CLOCKS: multiprocessing.Queue[tuple[int, float]] | None = None


def _report_to(channel: multiprocessing.Queue[tuple[int, float]]) -> None:
    global _CLOCKS
    _CLOCKS = channel


def _tell(replication: int, now: float) -> None:
    if _CLOCKS is not None:
        _CLOCKS.put((replication, now))


def _run_telling(scenario: Scenario, replication: int, policy: Policy | None,
                 seed: int | None, recording: Recording | None) -> ReplicationResult:
    return run_replication(scenario, replication, policy=policy, seed=seed,
                           recording=recording, on_clock=functools.partial(_tell, replication))


def _run_clocked(scenario: Scenario, indices: Sequence[int], policy: Policy | None,
                 seed: int | None, workers: int, progress: Progress | None,
                 clock: Clock, recording: Recording | None) -> list[ReplicationResult]:
    """As the process pool of :func:`run_replications`, the workers telling
    their clocks through a queue the calling thread drains while it waits."""
    channel: multiprocessing.Queue[tuple[int, float]] = multiprocessing.Queue()

    def drain() -> None:
        while True:
            try:
                replication, now = channel.get_nowait()
            except queue.Empty:
                return
            clock(replication, now)

    results: list[ReplicationResult] = []
    try:
        with ProcessPoolExecutor(max_workers=workers, initializer=_report_to,
                                 initargs=(channel,)) as pool:
            pending: set[Future[ReplicationResult]] = {
                pool.submit(_run_telling, scenario, k, policy, seed, recording)
                for k in indices}
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    result = future.result()
                    results.append(result)
                    if progress:
                        progress(result)
        drain()  # the workers have exited: what they told is all in the pipe
    finally:
        channel.close()
        channel.join_thread()
    return sorted(results, key=lambda r: r.replication)


def _run_dask(scenario: Scenario, indices: Sequence[int], policy: Policy | None,
              seed: int | None, scheduler: str | None, progress: Progress | None,
              recording: Recording | None) -> list[ReplicationResult]:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError as exc:  # an optional dependency: say how to get it
        raise RuntimeError("--executor dask needs Dask distributed: "
                           "pip install 'orderloom[dask]'") from exc
    results: list[ReplicationResult] = []
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        futures = [client.submit(run_replication, scenario, k, policy=policy, seed=seed,
                                 recording=recording, pure=False) for k in indices]
        for future in dask_completed(futures):  # type: ignore[no-untyped-call]
            result = future.result()
            results.append(result)
            if progress:
                progress(result)
    return sorted(results, key=lambda r: r.replication)
