"""The simulate and sweep commands: resolve inputs, run, write reports."""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orderloom.actors import (
    DocumentError,
    Policy,
    builtin_policies,
    load_builtin_policy,
    load_policy,
    make_converter,
    policy_from_dict,
)
from orderloom.simulation import (
    ReplicationResult,
    Scenario,
    ScenarioError,
    aggregate,
    load_scenario,
    mmc_metrics,
    provenance_data,
    provenance_of,
    read_provenance,
    rerun_warnings,
    resolve_scenario,
    run_replication,
    run_replications,
    software_versions,
    summarize,
    world_digest,
    write_report,
    write_sweep,
)

Echo = Callable[[str], None]
HEALTH = ("stuck_orders", "exception_rate", "bounce_rate", "manual_overrides",
          "state_mismatches", "wrong_actions")


def _policy(name: str) -> Policy:
    if name in builtin_policies():
        return load_builtin_policy(name)
    return load_policy(name)


def _scenario(name: str, horizon: str | None) -> Scenario:
    scenario = load_scenario(resolve_scenario(name))
    if horizon is not None:
        seconds = make_converter().structure(horizon, float)
        try:
            scenario = attrs.evolve(scenario, horizon=seconds,
                                    warm_up=min(scenario.warm_up, seconds / 10))
        except ValueError as exc:
            raise ScenarioError("--horizon", [str(exc)]) from exc
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
         echo: Echo) -> list[ReplicationResult]:
    """The replications of the resolved ``scenario`` (its policy, seed and count)."""
    n = scenario.replications
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(f"{scenario.name} / {scenario.policy.name}", total=n)
        return run_replications(scenario, n, policy=scenario.policy, seed=scenario.seed,
                                workers=min(workers, n), executor=executor, scheduler=scheduler,
                                progress=lambda _: bar.advance(task))


def run_and_report(
    name: str, *, policy: str | None, replications: int | None, seed: int | None,
    out: Path | None, workers: int, horizon: str | None, executor: str,
    scheduler: str | None, trace: bool, command: str, echo: Echo,
) -> list[str]:
    """Run a scenario's replications, write report.json/.md/.html; return a summary."""
    scenario = _scenario(name, horizon)
    chosen = _policy(policy) if policy else scenario.policy
    resolved = attrs.evolve(scenario, policy=chosen,
                            replications=replications or scenario.replications,
                            seed=scenario.seed if seed is None else seed)
    reproduce = (f"orderloom simulate {shlex.quote(name)} --policy {shlex.quote(policy or chosen.name)}"
                 f" --seed {resolved.seed} --replications {resolved.replications}"
                 + (f" --horizon {shlex.quote(horizon)}" if horizon else ""))
    return _run_and_report(
        resolved, out=out or Path("out") / f"{scenario.name}-{chosen.name}", workers=workers,
        executor=executor, scheduler=scheduler, trace=trace, command=command,
        reproduce=reproduce, echo=echo)


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
                            reproduce=reproduce, echo=echo)
    return [f"rerun of {source} (recorded by orderloom {recorded.orderloom})", *lines]


def _run_and_report(
    scenario: Scenario, *, out: Path, workers: int, executor: str, scheduler: str | None,
    trace: bool, command: str, reproduce: str, echo: Echo,
) -> list[str]:
    """Run the resolved ``scenario`` (its policy, seed and replications), write
    its reports into ``out``; return the summary lines."""
    chosen, n, run_seed = scenario.policy, scenario.replications, scenario.seed
    results = _run(scenario, workers, executor, scheduler, echo)
    # A rerun into the same folder must not leave the last run's trace behind
    # (``report trace`` would show another policy's decisions).
    (out / "trace.jsonl").unlink(missing_ok=True)
    if trace:
        run_replication(scenario, 0, policy=chosen, seed=run_seed,
                        trace_to=str(out / "trace.jsonl"))
    report = aggregate(results, header={
        **_run_header(scenario, results), "description": scenario.description,
        "command": command, "reproduce": reproduce + " --trace",
    })
    paths = write_report(report, out)
    lines = [f"{scenario.name} / {chosen.name}: {n} replications, seed {run_seed}"]
    metrics = report["metrics"]
    if scenario.demand.mode == "cases":  # a review desk on its own: no orders to speak of
        lines += _desk_lines(scenario, metrics)
        lines.append("reports: " + ", ".join(str(p) for p in paths.values()))
        return lines
    for key in ("orders.placed", "throughput", *HEALTH, "cycle_time.end_to_end.p95"):
        entry = metrics.get(key)
        if entry is not None:
            ci = (f"95% CI [{entry['ci_low']:.4g}, {entry['ci_high']:.4g}]" if n > 1
                  else "95% CI n/a (1 replication)")
            lines.append(f"  {key:<28} {entry['mean']:>12.4g} {entry.get('unit', ''):<12} {ci}")
    wrong = metrics.get("wrong_actions", {}).get("mean", 0.0)
    if wrong:
        lines.append(f"  wrong actions happened; reproduce with: {reproduce} --trace")
        for invariant, example in sorted(report["wrong_action_examples"].items()):
            order = example.split(" ")[0]
            lines.append(f"    {invariant}: e.g. order {example}; then: orderloom report trace "
                         f"{order} --run {out}")
    lines.append("reports: " + ", ".join(str(p) for p in paths.values()))
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


def _set(data: dict[str, Any], dotted: str, value: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            raise ScenarioError("--param", [f"{dotted}: {key!r} is not a section of the policy"])
        node = child
    if keys[-1] not in node:
        raise ScenarioError("--param", [f"{dotted}: the policy has no field {keys[-1]!r}"])
    node[keys[-1]] = value


def _points(params: Sequence[str]) -> list[list[tuple[str, str]]]:
    axes: list[list[tuple[str, str]]] = []
    for param in params:
        name, sep, values = param.partition("=")
        if not sep or not values or not name:
            raise ScenarioError("--param", [f"{param!r}: expected NAME=V1,V2,..."])
        if name != "policy" and not name.startswith("policy."):
            raise ScenarioError("--param", [f"{name}: expected 'policy' or 'policy.<field>'"])
        axes.append([(name, v.strip()) for v in values.split(",") if v.strip()])
    return [list(p) for p in itertools.product(*axes)]


def sweep_grid(
    name: str, params: Sequence[str], *, replications: int | None, seed: int | None,
    workers: int, out: Path | None, horizon: str | None, echo: Echo,
) -> list[str]:
    """Run every point of a parameter grid and write one sweep report."""
    scenario = _scenario(name, horizon)
    n = replications or scenario.replications
    run_seed = scenario.seed if seed is None else seed
    out = out or Path("out") / f"sweep-{scenario.name}"
    reports: list[tuple[str, dict[str, Any]]] = []
    converter = make_converter()
    for point in _points(params):
        base = scenario.policy
        for key, value in point:
            if key == "policy":
                base = _policy(value)
        data = converter.unstructure(base)
        for key, value in point:
            if key != "policy":
                _set(data, key.removeprefix("policy."), value)
        try:
            policy = policy_from_dict(data, "--param " + " ".join(f"{k}={v}" for k, v in point))
        except DocumentError as exc:
            raise ScenarioError("--param", exc.problems) from exc
        label = ",".join(f"{k.removeprefix('policy.')}={v}" for k, v in point)
        resolved = attrs.evolve(scenario, policy=policy, seed=run_seed, replications=n)
        results = _run(resolved, workers, "process", None, echo)
        report = aggregate(results, header={**_run_header(resolved, results), "point": label})
        write_report(report, out / label.replace("/", "_"))
        reports.append((label, report))
        echo(f"  {label}: done")
    paths = write_sweep(reports, out)
    return [f"sweep of {scenario.name}: {len(reports)} points x {n} replications",
            "reports: " + ", ".join(str(p) for p in paths)]
