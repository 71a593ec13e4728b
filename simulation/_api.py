"""The Python front door: :func:`simulate` a scenario, :func:`compare` runs.

What ``orderloom simulate`` and ``orderloom compare`` do, as functions that
return typed values (:class:`Report`, :class:`Comparison`) instead of
printing; the CLI is a client of these, and so is a notebook::

    a = simulate("fraud-wave", policy="balanced", horizon="2h", replications=5)
    b = simulate("fraud-wave", policy="aggressive", horizon="2h", replications=5)
    compare(a, b).primary
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeAlias, overload

import attrs

from orderloom.actors import Policy, make_converter, resolve_policy

from ._compare import Comparison, compare_documents
from ._precision import (
    DEFAULT_MAX_REPLICATIONS,
    PrecisionOutcome,
    mean_precision,
    parse_precision,
    run_to_precision,
    values_of,
)
from ._result import ReplicationResult
from ._run_report import Report
from ._runner import run_replication, run_replications
from ._scenario import Scenario, ScenarioError, load_scenario, resolve_scenario
from ._trace import TRACE_FILE, stale_trace_files
from ._warmup import suggest_warm_up

__all__ = ["ProgressDisplay", "ProgressListener", "ReportLike", "compare", "resolve_run", "simulate"]

class ProgressListener(Protocol):
    """Told how a run's replications move on (what a :data:`ProgressDisplay` gives)."""

    def done(self, result: ReplicationResult) -> None:
        """Replication ``result.replication`` finished."""

    def clock(self, replication: int, now: float) -> None:
        """Replication ``replication``'s simulated clock reads ``now`` (seconds);
        told every 1% of the horizon (not under Dask: there, only :meth:`done`)."""


#: Shows a run's progress. Called with ``(label, total, start, horizon)``
#: before replications ``start..total-1`` run (a precision run adds batches;
#: ``horizon`` is each one's simulated length in seconds), it gives a context
#: manager whose value is a :class:`ProgressListener`.
ProgressDisplay: TypeAlias = Callable[
    [str, int, int, float], AbstractContextManager[ProgressListener]]

#: What :func:`compare` takes: a :class:`Report`, a ``report.json`` document,
#: or the path of a ``report.json`` or of the run folder holding one.
ReportLike: TypeAlias = Report | Mapping[str, Any] | Path | str

Runner = Callable[[Scenario, int], list[ReplicationResult]]


def _evolve(scenario: Scenario, source: str, **changes: Any) -> Scenario:
    """``scenario`` with ``changes``; a change that breaks an invariant (a policy
    routing to a team the scenario lacks) is a scenario error naming it."""
    try:
        return attrs.evolve(scenario, **changes)
    except ValueError as exc:
        raise ScenarioError(source, [str(exc)]) from exc


def resolve_run(
    scenario: Scenario | Path | str, *, policy: Policy | Path | str | None = None,
    replications: int | None = None, seed: int | None = None,
    horizon: float | str | None = None,
) -> Scenario:
    """The scenario a run would run: loaded, with the given changes applied.

    Args:
        scenario: a :class:`Scenario`, a scenario file, or a scenario's name
            (in ``./scenarios`` or shipped with orderloom).
        policy: a :class:`Policy`, a shipped policy's name or a policy file
            (default: the scenario's).
        replications: how many (default: the scenario's).
        seed: the run seed (default: the scenario's).
        horizon: simulated seconds, or a duration such as ``"2h"``; the
            warm-up is then cut to at most a tenth of it.

    Raises:
        ScenarioError: no such scenario (with the nearest names), an invalid
            file, a malformed horizon, or a policy the scenario cannot run.
        PolicyError: no such policy, or an invalid policy file.
    """
    if isinstance(scenario, Scenario):
        base, source = scenario, scenario.name
    else:
        source = str(scenario)
        base = load_scenario(resolve_scenario(source))
    if horizon is not None:
        try:
            seconds = make_converter().structure(horizon, float)
            base = attrs.evolve(base, horizon=seconds, warm_up=min(base.warm_up, seconds / 10))
        except (TypeError, ValueError) as exc:
            raise ScenarioError("horizon", [f"{horizon!r}: {exc}"]) from exc
    chosen = (policy if isinstance(policy, Policy)
              else resolve_policy(str(policy)) if policy else base.policy)
    return _evolve(base, f"{source} with policy {chosen.name!r}", policy=chosen,
                   replications=replications or base.replications,
                   seed=base.seed if seed is None else seed)


def _runner(workers: int, executor: str, scheduler: str | None,
            progress: ProgressDisplay | None) -> Runner:
    """``run(scenario, start)``: replications ``start..n-1`` of the resolved scenario."""
    def run(scenario: Scenario, start: int) -> list[ReplicationResult]:
        n = scenario.replications

        def go(listener: ProgressListener | None) -> list[ReplicationResult]:
            return run_replications(
                scenario, n, policy=scenario.policy, seed=scenario.seed,
                workers=max(1, min(workers, n - start)), executor=executor,
                scheduler=scheduler, start=start,
                progress=None if listener is None else listener.done,
                clock=None if listener is None else listener.clock)

        if progress is None:
            return go(None)
        with progress(f"{scenario.name} / {scenario.policy.name}", n, start,
                      scenario.horizon) as listener:
            return go(listener)

    return run


def _run_precisely(scenario: Scenario, results: list[ReplicationResult], *, target: float,
                   cap: int, run: Runner
                   ) -> tuple[Scenario, list[ReplicationResult], PrecisionOutcome]:
    """Add replications to ``results`` (replications ``0..n-1`` of ``scenario``)
    until every primary metric is within ``target`` of its mean, or ``cap``;
    return the scenario with its final count, all results and the outcome."""
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


def _reproduce(scenario: Scenario | Path | str, policy: Policy | Path | str | None,
               horizon: float | str | None, resolved: Scenario, out: Path | None) -> str | None:
    """The command that runs it again: by name when the run was named, else
    from the report it writes; None when it is neither named nor written."""
    if not isinstance(scenario, Scenario) and not isinstance(policy, Policy):
        # A precision run that stopped at n equals a plain run of n replications.
        text = (f"orderloom simulate {shlex.quote(str(scenario))} "
                f"--policy {shlex.quote(str(policy) if policy else resolved.policy.name)}"
                f" --seed {resolved.seed} --replications {resolved.replications}")
        if horizon is not None and horizon != "":
            given = horizon if isinstance(horizon, str) else format(horizon, "g")
            text += f" --horizon {shlex.quote(given)}"
        return text
    if out is not None:
        return (f"orderloom simulate --from {shlex.quote(str(out / 'report.json'))}"
                f" --out {shlex.quote(str(out))}")
    return None


def simulate(
    scenario: Scenario | Path | str, *, policy: Policy | Path | str | None = None,
    replications: int | None = None, seed: int | None = None,
    horizon: float | str | None = None, workers: int = 1, executor: str = "process",
    scheduler: str | None = None, precision: float | str | None = None,
    max_replications: int | None = None, trace: bool = False, out: Path | str | None = None,
    progress: ProgressDisplay | None = None, command: str | None = None,
) -> Report:
    """Run a scenario's replications under a policy and report on them.

    Replication ``k`` of a seed faces the same world (orders, faults,
    staffing) whatever the policy, so two runs with the same seed and
    replications pair up in :func:`compare` (common random numbers).

    Args:
        scenario: a :class:`Scenario`, a scenario file, or a scenario's name.
        policy: a :class:`Policy`, a shipped policy's name or a policy file
            (default: the scenario's).
        replications: how many (default: the scenario's); with ``precision``,
            how many to start from.
        seed: the run seed (default: the scenario's).
        horizon: simulated seconds or a duration (``"2h"``); default: the scenario's.
        workers: worker processes (1: run in this process).
        executor: ``"process"`` or ``"dask"`` (with ``scheduler``, a Dask address).
        scheduler: the Dask scheduler for ``executor="dask"``.
        precision: add replications until every primary metric's 95% CI
            half-width is within this fraction of its mean (``0.05`` or ``"5%"``).
        max_replications: the most a precision run runs (default 50).
        trace: also record replication 0's full trace into ``out``.
        out: a folder to write ``report.json``, ``.md`` and ``.html`` into;
            None writes nothing.
        progress: shows the replications' progress (see :data:`ProgressDisplay`).
        command: the command line to record in the report, if any.

    Returns:
        The :class:`Report`; ``Report.to_dict()`` is the ``report.json``
        ``orderloom simulate`` writes for the same run.

    Raises:
        ScenarioError: see :func:`resolve_run`.
        PolicyError: no such policy, or an invalid policy file.
        ValueError: ``precision`` is not a fraction in (0, 1);
            ``max_replications`` without ``precision`` or below the starting
            replications; ``trace`` without ``out``.
    """
    resolved = resolve_run(scenario, policy=policy, replications=replications, seed=seed,
                           horizon=horizon)
    target = parse_precision(precision) if isinstance(precision, str) else precision
    if target is not None and not 0.0 < target < 1.0:
        raise ValueError(f"precision: expected a fraction above 0 and below 1, got {target}")
    if target is None and max_replications is not None:
        raise ValueError("max_replications caps a precision run; give precision too")
    cap = max_replications or DEFAULT_MAX_REPLICATIONS
    if target is not None and cap < resolved.replications:
        raise ValueError(f"max_replications: expected at least the {resolved.replications} "
                         f"replications the run starts with, got {cap}")
    if trace and out is None:
        raise ValueError("trace: needs out, the folder the trace is written to")
    folder = None if out is None else Path(out)
    run = _runner(workers, executor, scheduler, progress)
    results = run(resolved, 0)
    outcome: PrecisionOutcome | None = None
    if target is not None:
        resolved, results, outcome = _run_precisely(resolved, results, target=target,
                                                    cap=cap, run=run)
    again = _reproduce(scenario, policy, horizon, resolved, folder)
    report = Report.from_results(
        resolved, results, command=command,
        reproduce=None if again is None else again + " --trace", precision=outcome,
        warm_up_suggestion=suggest_warm_up(results, resolved.warm_up))
    if folder is None:
        return report
    # A rerun into the same folder must not leave the last run's trace behind
    # (``report trace`` would show another policy's decisions).
    for stale in stale_trace_files(folder):
        stale.unlink(missing_ok=True)
    if trace:
        run_replication(resolved, 0, policy=resolved.policy, seed=resolved.seed,
                        trace_to=str(folder / TRACE_FILE))
    written = report.write(folder)
    if trace:
        written = attrs.evolve(written, paths={**written.paths, "trace": folder / TRACE_FILE})
    return written


def _as_report(report: ReportLike) -> Report:
    if isinstance(report, Report):
        return report
    if isinstance(report, Mapping):
        return Report.from_dict(report)
    return Report.load(report)


@overload
def compare(baseline: ReportLike, /, *candidates: ReportLike,
            labels: Sequence[str] | None = None, allow_different: bool = False) -> Comparison:
    ...


@overload
def compare(reports: Sequence[ReportLike], labels: Sequence[str], /, *,
            allow_different: bool = False) -> Comparison:
    ...


def compare(baseline: ReportLike | Sequence[ReportLike], /, *candidates: Any,
            labels: Sequence[str] | None = None, allow_different: bool = False) -> Comparison:
    """Compare each candidate run with the baseline, metric by metric.

    Deltas are candidate minus baseline, with paired 95% CIs when both ran
    the same replication seeds (else Welch's). The primary metrics' verdicts
    are Holm-adjusted over that family; every other metric's is its own 95%
    one (exploratory). A count a report lacks counts as zeros; a statistic
    of samples it lacks has no value (absent is not zero).

    ``compare([doc_a, doc_b], ["a", "b"])``, a list of reports and a list of
    labels, is the form of earlier versions and still works.

    Args:
        baseline: a :class:`Report`, a ``report.json`` document, or the path
            of a ``report.json`` or run folder.
        candidates: the runs to judge against it, the same way.
        labels: a name per report, baseline first (default: ``scenario/policy``).
        allow_different: compare runs of another world, horizon, warm-up or
            seeds too (each difference becomes a warning).

    Raises:
        IncomparableReports: a candidate differs from the baseline in more
            than its policy and ``allow_different`` is False.
        ReportError: a path is not a readable report.
        ValueError: no report, or labels and reports differ in number.
    """
    given: Sequence[ReportLike]
    if isinstance(baseline, (list, tuple)):  # the earlier form: (reports, labels)
        given = baseline
        if candidates:
            labels = candidates[0]
    else:
        given = [baseline, *candidates]  # type: ignore[list-item]
    reports = [_as_report(r) for r in given]
    names = list(labels) if labels is not None else [r.label for r in reports]
    # The documents, not copies: compare only reads them.
    return compare_documents([r._document for r in reports], names,
                             allow_different=allow_different)
