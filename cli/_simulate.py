"""The simulate command: resolve inputs, run, write reports (sweep: ``_sweep``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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
    MetricSummary,
    Report,
    ReplicationResult,
    Scenario,
    ScenarioError,
    WarmUpSuggestion,
    aggregate,
    load_scenario,
    mmc_metrics,
    read_provenance,
    rerun_warnings,
    resolve_run,
    resolve_scenario,
    run_replications,
    simulate,
    summarize,
    write_report,
)

from ._progress import ReplicationProgress, show_progress

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


def run_and_report(
    name: str, *, policy: str | None, replications: int | None, seed: int | None,
    out: Path | None, workers: int, horizon: str | None, executor: str,
    scheduler: str | None, trace: bool, command: str, echo: Echo,
    precision: float | None = None, cap: int | None = None,
) -> list[str]:
    """Run a scenario's replications, write report.json/.md/.html; return a summary."""
    # Resolved here first for what the command line decides: the default
    # folder, and errors that name its options.
    resolved = resolve_run(_scenario(name, horizon), policy=policy,
                           replications=replications, seed=seed)
    if precision is not None and cap is not None and cap < resolved.replications:
        raise click.UsageError(
            f"--max-replications: expected at least the {resolved.replications} replications "
            f"the run starts with (-n or the scenario's replications), got {cap}")
    report = simulate(
        name, policy=policy, replications=replications, seed=seed, horizon=horizon,
        workers=workers, executor=executor, scheduler=scheduler, precision=precision,
        max_replications=cap if precision is not None else None, trace=trace,
        out=out or Path("out") / f"{resolved.name}-{resolved.policy.name}",
        progress=show_progress, command=command)
    return summary_lines(report)


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
    # A Scenario (not a name) written to a folder: the report's reproduce
    # command is ``simulate --from`` that folder's report.
    rerun = simulate(recorded.scenario, workers=workers, executor=executor,
                     scheduler=scheduler, trace=trace, out=out, progress=show_progress,
                     command=command)
    return [f"rerun of {source} (recorded by orderloom {recorded.orderloom})",
            *summary_lines(rerun)]


def summary_lines(report: Report) -> list[str]:
    """What the terminal says about a run: its primary numbers, the warm-up
    reading (if taken: a replay takes none), wrong actions to look into, and
    the files written."""
    scenario, warm_up = report.run, report.warm_up_suggestion
    if scenario is None or "json" not in report.paths:
        raise ValueError("summary_lines: expected a report simulate() or replay() wrote")
    n, out = report.replications, report.paths["json"].parent
    files = "reports: " + ", ".join(str(report.paths[k]) for k in ("json", "md", "html"))
    lines = [f"{report.scenario} / {report.policy}: {n} replications, seed {report.seed}"]
    if report.precision is not None:
        lines += report.precision.lines()
    metrics = report.metrics
    if scenario.demand.mode == "cases":  # a review desk on its own: no orders to speak of
        lines += _desk_lines(scenario, metrics)
        lines += [] if warm_up is None else _warm_up_lines(warm_up, scenario)
        lines.append(files)
        return lines
    for key in ("orders.placed", "throughput", *HEALTH, "cycle_time.end_to_end.p95"):
        entry = metrics.get(key)
        if entry is not None:
            ci = (f"95% CI [{entry.ci_low:.4g}, {entry.ci_high:.4g}]" if n > 1
                  else "95% CI n/a (1 replication)")
            lines.append(f"  {key:<28} {entry.mean:>12.4g} {entry.unit:<12} {ci}")
    lines += [] if warm_up is None else _warm_up_lines(warm_up, scenario)
    wrong = metrics.get("wrong_actions")
    if wrong is not None and wrong.mean:
        lines.append(f"  wrong actions happened; reproduce with: {report.reproduce}")
        for invariant, example in sorted(report.examples.items()):
            order = example.split(" ")[0]
            lines.append(f"    {invariant}: e.g. order {example}; then: orderloom report trace "
                         f"{order} --run {out}")
    lines.append(files)
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


def _desk_lines(scenario: Scenario, metrics: Mapping[str, MetricSummary]) -> list[str]:
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

    def column(metric: str) -> list[float]:
        entry = metrics.get(metric)
        return [v for v in entry.values if v is not None] if entry is not None else []

    waits = [v - review for v in column(f"time_in_team.{name}")]
    rows = [
        ("utilisation", "share", column(f"utilisation.{name}"),
         theory.utilisation if theory else None),
        ("mean wait", "s", waits, theory.mean_wait if theory else None),
        ("mean queue length", "cases", column(f"queue_length.{name}"),
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
