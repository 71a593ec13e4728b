"""The simulate command: resolve inputs, run, write reports (sweep: ``_sweep``)."""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import click

from orderloom.actors import (
    DocumentError,
    make_converter,
    resolve_policy,
)
from orderloom.simulation import (
    TRACE_FILE,
    PrecisionOutcome,
    ReplicationResult,
    Scenario,
    ScenarioError,
    WarmUpSuggestion,
    aggregate,
    load_scenario,
    mean_precision,
    mmc_metrics,
    provenance_data,
    provenance_of,
    read_provenance,
    rerun_warnings,
    resolve_scenario,
    run_replication,
    run_replications,
    run_to_precision,
    software_versions,
    stale_trace_files,
    suggest_warm_up,
    summarize,
    values_of,
    world_digest,
    write_report,
)

from ._progress import ReplicationProgress

Echo = Callable[[str], None]
HEALTH = ("stuck_orders", "exception_rate", "bounce_rate", "manual_overrides",
          "state_mismatches", "wrong_actions")


def _evolve(scenario: Scenario, source: str, **changes: Any) -> Scenario:
    """``scenario`` with ``changes`` (another policy, seed, ...); a change that
    breaks an invariant (a policy routing to a team the scenario lacks) is a
    scenario error naming the field, not a traceback."""
    try:
        return attrs.evolve(scenario, **changes)
    except ValueError as exc:
        raise ScenarioError(source, [str(exc)]) from exc


def _scenario(name: str, horizon: str | None) -> Scenario:
    scenario = load_scenario(resolve_scenario(name))
    if horizon is not None:
        try:
            seconds = make_converter().structure(horizon, float)
            scenario = attrs.evolve(scenario, horizon=seconds,
                                    warm_up=min(scenario.warm_up, seconds / 10))
        except (TypeError, ValueError) as exc:
            raise ScenarioError("--horizon", [f"{horizon!r}: {exc}"]) from exc
    return scenario


def _run_header(scenario: Scenario, results: Sequence[ReplicationResult]) -> dict[str, Any]:
    """The report header of a run of the resolved ``scenario``: what compare
    reads, and the provenance a rerun reads."""
    return {
        "scenario": scenario.name, "policy": scenario.policy.name, "seed": scenario.seed,
        "replications": scenario.replications, "horizon": scenario.horizon,
        "warm_up": scenario.warm_up, "world": world_digest(scenario),
        "versions": software_versions(),
        "provenance": provenance_data(provenance_of(scenario, results)),
    }


def _run(scenario: Scenario, workers: int, executor: str, scheduler: str | None,
         echo: Echo, start: int = 0, label: str | None = None) -> list[ReplicationResult]:
    """Replications ``start..n-1`` of the resolved ``scenario`` (its policy,
    seed and count ``n``), showing their progress on stderr."""
    n = scenario.replications
    with ReplicationProgress(label or f"{scenario.name} / {scenario.policy.name}", n,
                             start, horizon=scenario.horizon) as progress:
        return run_replications(scenario, n, policy=scenario.policy, seed=scenario.seed,
                                workers=max(1, min(workers, n - start)), executor=executor,
                                scheduler=scheduler, progress=progress.done, start=start,
                                clock=progress.clock)


def run_precisely(scenario: Scenario, results: list[ReplicationResult], *, target: float,
                  cap: int, run: Callable[[Scenario, int], list[ReplicationResult]]
                  ) -> tuple[Scenario, list[ReplicationResult], PrecisionOutcome]:
    """Add replications to ``results`` (replications ``0..n-1`` of ``scenario``)
    until every primary metric is within ``target`` of its mean, or ``cap``;
    return the scenario with its final count, all results and the outcome.
    ``run(scenario, start)`` runs replications ``start..scenario.replications-1``."""
    table = values_of(results)
    current = [scenario]

    def extend(a: int, b: int) -> None:
        current[0] = attrs.evolve(scenario, replications=b)
        results.extend(run(current[0], a))
        table.clear()
        table.update(values_of(results))

    outcome = run_to_precision(
        target=target, start=scenario.replications, cap=cap,
        assess=lambda n: mean_precision(table, n, target), extend=extend)
    return current[0], results, outcome


def run_and_report(
    name: str, *, policy: str | None, replications: int | None, seed: int | None,
    out: Path | None, workers: int, horizon: str | None, executor: str,
    scheduler: str | None, trace: bool, command: str, echo: Echo,
    precision: float | None = None, cap: int | None = None,
) -> list[str]:
    """Run a scenario's replications, write report.json/.md/.html; return a summary."""
    scenario = _scenario(name, horizon)
    chosen = resolve_policy(policy) if policy else scenario.policy
    resolved = _evolve(scenario, f"{name} with policy {chosen.name!r}", policy=chosen,
                       replications=replications or scenario.replications,
                       seed=scenario.seed if seed is None else seed)
    if precision is not None and cap is not None and cap < resolved.replications:
        raise click.UsageError(
            f"--max-replications: expected at least the {resolved.replications} replications "
            f"the run starts with (-n or the scenario's replications), got {cap}")

    def reproduce(n: int) -> str:
        # A precision run that stopped at n equals a plain run of n replications.
        return (f"orderloom simulate {shlex.quote(name)} --policy {shlex.quote(policy or chosen.name)}"
                f" --seed {resolved.seed} --replications {n}"
                + (f" --horizon {shlex.quote(horizon)}" if horizon else ""))

    return _run_and_report(
        resolved, out=out or Path("out") / f"{scenario.name}-{chosen.name}", workers=workers,
        executor=executor, scheduler=scheduler, trace=trace, command=command,
        reproduce=reproduce, echo=echo, precision=precision, cap=cap)


def rerun_and_report(
    report: Path, *, out: Path | None, workers: int, executor: str, scheduler: str | None,
    trace: bool, command: str, echo: Echo, warn: Echo,
) -> list[str]:
    """Run again the run a report.json (or its folder) records, exactly: its
    resolved scenario, policy, seed and replications, whatever the scenario
    file says now. The reports go to ``out`` (default: the report's folder
    with ``-rerun`` appended, so the record is not overwritten)."""
    recorded = read_provenance(report)
    source = report / "report.json" if report.is_dir() else report
    for warning in rerun_warnings(recorded, str(source)):
        warn(f"warning: {warning}")
    if out is None:
        folder = source.parent
        if folder.name in ("", ".."):  # "report.json", "../report.json": name the folder
            folder = folder.resolve()
        out = folder.with_name(folder.name + "-rerun")
    reproduce = (f"orderloom simulate --from {shlex.quote(str(out / 'report.json'))}"
                 f" --out {shlex.quote(str(out))}")
    lines = _run_and_report(recorded.scenario, out=out, workers=workers, executor=executor,
                            scheduler=scheduler, trace=trace, command=command,
                            reproduce=lambda _: reproduce, echo=echo)
    return [f"rerun of {source} (recorded by orderloom {recorded.orderloom})", *lines]


def _run_and_report(
    scenario: Scenario, *, out: Path, workers: int, executor: str, scheduler: str | None,
    trace: bool, command: str, reproduce: Callable[[int], str], echo: Echo,
    precision: float | None = None, cap: int | None = None,
) -> list[str]:
    """Run the resolved ``scenario`` (its policy, seed and replications), write
    its reports into ``out``; return the summary lines. With ``precision``,
    add replications (up to ``cap``) until the primary metrics are that precise."""
    results = _run(scenario, workers, executor, scheduler, echo)
    outcome: PrecisionOutcome | None = None
    if precision is not None:
        from orderloom.simulation import DEFAULT_MAX_REPLICATIONS

        scenario, results, outcome = run_precisely(
            scenario, results, target=precision, cap=cap or DEFAULT_MAX_REPLICATIONS,
            run=lambda s, start: _run(s, workers, executor, scheduler, echo, start))
    chosen, n, run_seed = scenario.policy, scenario.replications, scenario.seed
    warm_up = suggest_warm_up(results, scenario.warm_up)
    # A rerun into the same folder must not leave the last run's trace behind
    # (``report trace`` would show another policy's decisions).
    for stale in stale_trace_files(out):
        stale.unlink(missing_ok=True)
    if trace:
        run_replication(scenario, 0, policy=chosen, seed=run_seed,
                        trace_to=str(out / TRACE_FILE))
    extra: dict[str, Any] = {}
    if outcome is not None:
        extra["precision"] = outcome.as_dict()
    extra["warm_up_suggestion"] = warm_up.as_dict()
    report = aggregate(results, header={
        **_run_header(scenario, results), "description": scenario.description,
        "command": command, "reproduce": reproduce(n) + " --trace", **extra,
    })
    paths = write_report(report, out)
    lines = [f"{scenario.name} / {chosen.name}: {n} replications, seed {run_seed}"]
    if outcome is not None:
        lines += outcome.lines()

    metrics = report["metrics"]
    if scenario.demand.mode == "cases":  # a review desk on its own: no orders to speak of
        lines += _desk_lines(scenario, metrics) + _warm_up_lines(warm_up, scenario)
        lines.append("reports: " + ", ".join(str(p) for p in paths.values()))
        return lines
    for key in ("orders.placed", "throughput", *HEALTH, "cycle_time.end_to_end.p95"):
        entry = metrics.get(key)
        if entry is not None:
            ci = (f"95% CI [{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]" if n > 1
                  else "95% CI n/a (1 replication)")
            lines.append(f"  {key:<28} {entry['mean']:>12.4g} {entry.get('unit', ''):<12} {ci}")
    lines += _warm_up_lines(warm_up, scenario)
    wrong = metrics.get("wrong_actions", {}).get("mean", 0.0)
    if wrong:
        lines.append(f"  wrong actions happened; reproduce with: {reproduce(n)} --trace")
        for invariant, example in sorted(report["wrong_action_examples"].items()):
            order = example.split(" ")[0]
            lines.append(f"    {invariant}: e.g. order {example}; then: orderloom report trace "
                         f"{order} --run {out}")
    lines.append("reports: " + ", ".join(str(p) for p in paths.values()))
    return lines


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3g} h"


def _warm_up_lines(suggestion: WarmUpSuggestion, scenario: Scenario) -> list[str]:
    """MSER-5's reading, printed only when it has something to say."""
    lines = []
    if suggestion.too_short and suggestion.suggested is not None:
        lines.append(
            f"  warm-up looks too short: MSER-5 on the mean {suggestion.series} series cuts at "
            f"{_hours(suggestion.suggested)}, the scenario's warm-up is "
            f"{_hours(suggestion.configured)}; consider warm_up: "
            f"{math.ceil(suggestion.suggested / 360) / 10:g}h")
        if scenario.demand.profile or scenario.demand.peaks:
            lines.append("    (MSER assumes the run settles into a steady state; under a "
                         "daily demand profile or peaks, read it as a hint)")
    if suggestion.unsettled:
        lines.append(f"  MSER-5 found no settled stretch in {', '.join(suggestion.unsettled)} "
                     "(the run is too short for it, or that load never settles)")
    return lines


def _desk_lines(scenario: Scenario, metrics: dict[str, Any]) -> list[str]:
    """A cases-only scenario's desk: utilisation, wait and queue, each beside
    its Erlang C value when the desk is an M/M/c queue (Poisson cases,
    exponential reviews, one constant shift)."""
    team = scenario.teams[0]
    name, review = team.name, team.review.expected()
    lam = scenario.demand.orders_per_day / 86400.0
    shifts = team.shifts
    theory = None
    if (team.review.kind == "exponential" and len(shifts) == 1 and not team.absences
            and (shifts[0].start_hour, shifts[0].end_hour) == (0, 24)
            and len(shifts[0].days) == 7 and lam < shifts[0].staff / review):
        theory = mmc_metrics(lam, 1.0 / review, shifts[0].staff)
    head = (f"  desk {name!r}: λ = {lam * 3600:.4g} cases/h, mean review {review:.4g} s")
    lines = [head + (f", c = {theory.servers}, ρ = {theory.utilisation:.4g}" if theory else
                     " (not an M/M/c queue: no Erlang C values)")]
    waits = [v - review for v in metrics.get(f"time_in_team.{name}", {}).get("values", [])]
    rows = [
        ("utilisation", "share", metrics.get(f"utilisation.{name}", {}).get("values", []),
         theory.utilisation if theory else None),
        ("mean wait", "s", waits, theory.mean_wait if theory else None),
        ("mean queue length", "cases", metrics.get(f"queue_length.{name}", {}).get("values", []),
         theory.mean_queue_length if theory else None),
    ]
    for label, unit, values, expected in rows:
        if not values:
            lines.append(f"  {label:<20} n/a (no case was decided)")
            continue
        s = summarize(values)
        ci = (f"95% CI [{max(s.ci_low, 0.0):.4g}, {s.ci_high:.4g}]" if len(values) > 1
              else "95% CI n/a (1 replication)")
        lines.append(f"  {label:<20} {s.mean:>10.4g} {unit:<6} {ci}"
                     + (f"   Erlang C {expected:.4g}" if expected is not None else ""))
    return lines
