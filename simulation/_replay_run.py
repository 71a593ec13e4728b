"""The Python front door of a replay: :func:`replay` a journal in a scenario's world.

What ``orderloom replay`` does, as a function returning the :class:`Report`::

    cautious = replay("last-week.jsonl", "baseline", policy="cautious", replications=5)
    aggressive = replay("last-week.jsonl", "baseline", policy="aggressive", replications=5)
    compare(cautious, aggressive)
"""

from __future__ import annotations

import shlex
from pathlib import Path

import attrs

from orderloom.actors import Policy

from ._api import ProgressDisplay, resolve_run
from ._replay import Recording, read_recording, replay_horizon
from ._result import ReplicationResult
from ._run_report import Report
from ._runner import run_replications
from ._scenario import Scenario, ScenarioError
from ._trace import stale_trace_files

__all__ = ["replay"]


def replay(
    journal: Recording | Path | str, scenario: Scenario | Path | str, *,
    policy: Policy | Path | str | None = None, replications: int | None = None,
    seed: int | None = None, horizon: float | None = None, drain: float | None = None,
    workers: int = 1, out: Path | str | None = None, progress: ProgressDisplay | None = None,
    command: str | None = None,
) -> Report:
    """Run a journal's customer actions in a scenario's world under a policy.

    The orders placed (ids, customers, lines, amounts) and the cancellations
    customers asked for come from ``journal``, shifted so the first
    placement is at 0; the scenario's generated demand is not used, every
    other part of it (warehouses, teams, gateway, faults, downstream) is.
    Every order counts (the warm-up is 0). Replication ``k`` draws the
    world's randomness from the seed as :func:`simulate` does, so two
    policies replayed with the same seed pair up in :func:`compare`.

    Args:
        journal: a journal export file (``orderloom journal export``) or a
            :class:`Recording` read from one.
        scenario: a :class:`Scenario`, a scenario file, or a scenario's name.
        policy: a :class:`Policy`, a shipped policy's name or a policy file
            (default: the scenario's).
        replications: how many (default: the scenario's).
        seed: the run seed (default: the scenario's).
        horizon: simulated seconds; must be past the journal's span
            (default: the span plus ``drain``).
        drain: seconds to run on after the last customer action (default
            one day); not with ``horizon``.
        workers: worker processes (1: run in this process).
        out: a folder to write ``report.json``, ``.md`` and ``.html`` into.
        progress: shows the replications' progress.
        command: the command line to record in the report, if any.

    Returns:
        The :class:`Report`; its ``replay`` (and ``report.json``'s
        ``replay`` block) names the journal, its orders, cancels, time span
        and the horizon.

    Raises:
        JournalError: the journal cannot be read or has nothing to replay
            (the problem names the file and line).
        ScenarioError: see :func:`resolve_run`; a scenario whose demand is
            review cases; ``horizon`` and ``drain`` together, or a horizon
            within the journal's span.
        PolicyError: no such policy, or an invalid policy file.
    """
    recording = journal if isinstance(journal, Recording) else read_recording(journal)
    base = resolve_run(scenario, policy=policy, replications=replications, seed=seed)
    if base.demand.mode != "orders":
        raise ScenarioError(base.name, [f"demand.mode: expected 'orders' to replay orders "
                                        f"into, got {base.demand.mode!r}"])
    if horizon is not None and drain is not None:
        raise ScenarioError(base.name, ["horizon: give a horizon or a drain time, not both"])
    try:
        length = replay_horizon(recording, drain, horizon)
    except ValueError as exc:
        raise ScenarioError(f"{base.name} replaying {recording.source}", [str(exc)]) from exc
    resolved = attrs.evolve(base, horizon=length, warm_up=0.0)
    n = resolved.replications

    def run() -> list[ReplicationResult]:
        if progress is None:
            return run_replications(resolved, n, policy=resolved.policy, seed=resolved.seed,
                                    workers=max(1, min(workers, n)), recording=recording)
        with progress(f"replay {resolved.name} / {resolved.policy.name}", n, 0,
                      resolved.horizon) as listener:
            return run_replications(resolved, n, policy=resolved.policy, seed=resolved.seed,
                                    workers=max(1, min(workers, n)), recording=recording,
                                    progress=listener.done, clock=listener.clock)

    results = run()
    again = _reproduce(journal, scenario, policy, resolved, horizon, drain)
    report = Report.from_results(resolved, results, command=command, reproduce=again,
                                 replay=recording.describe(
                                     resolved.horizon,
                                     {sku for w in resolved.warehouses for sku in w.stock}))
    if out is None:
        return report
    folder = Path(out)
    for stale in stale_trace_files(folder):  # a trace of another run would mislead
        stale.unlink(missing_ok=True)
    return report.write(folder)


def _reproduce(journal: Recording | Path | str, scenario: Scenario | Path | str,
               policy: Policy | Path | str | None, resolved: Scenario,
               horizon: float | None, drain: float | None) -> str | None:
    """The command that replays it again; None when an input is not a file or name."""
    if isinstance(journal, Recording) or isinstance(scenario, Scenario) \
            or isinstance(policy, Policy):
        return None
    text = (f"orderloom replay {shlex.quote(str(journal))} --scenario "
            f"{shlex.quote(str(scenario))} --policy "
            f"{shlex.quote(str(policy) if policy else resolved.policy.name)} "
            f"--seed {resolved.seed} --replications {resolved.replications}")
    if horizon is not None:
        text += f" --horizon {horizon:g}"
    if drain is not None:
        text += f" --drain {drain:g}"
    return text
