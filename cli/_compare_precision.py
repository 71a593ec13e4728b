"""``compare --precision``: run more replications of every report's run until
the paired differences are precise, and write the extended reports."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from orderloom.simulation import (
    PrecisionOutcome,
    ReplicationResult,
    Report,
    ReportError,
    difference_precision,
    read_provenance,
    rerun_warnings,
    run_to_precision,
    values_of,
)

from ._simulate import _run

Echo = Callable[[str], None]


def extend_reports(
    paths: Sequence[Path], docs: Sequence[dict[str, Any]], labels: Sequence[str], *,
    target: float, cap: int, workers: int, command: str, echo: Echo, warn: Echo,
) -> tuple[list[dict[str, Any]], list[Path], PrecisionOutcome]:
    """Add replications to every report's run (the same seeds on every side:
    common random numbers) until each candidate's paired difference from the
    baseline, on every primary metric, has a 95% CI half-width within
    ``target`` of the baseline's mean, or ``cap``.

    The planning starts from the reports' own values; once more are needed,
    every side is rerun from its provenance (replications 0..n-1, so the
    extended report holds whole results and equals a plain run of n), and
    written next to the report's folder with ``-n<N>`` appended. Returns the
    documents and paths to compare (the given ones if nothing was added).

    Raises:
        ReportError: a report has no usable provenance, or the reports do not
            pair replication by replication (another seed or count).
    """
    files = [p / "report.json" if p.is_dir() else p for p in paths]
    recorded = [read_provenance(f) for f in files]
    base = recorded[0].scenario
    for file, prov in zip(files[1:], recorded[1:], strict=True):
        theirs = prov.scenario
        if (theirs.seed, theirs.replications) != (base.seed, base.replications):
            raise ReportError(str(file), [
                f"provenance.scenario: --precision pairs replication k of every report "
                f"(common random numbers), so every report needs the baseline's seed "
                f"({base.seed}) and replications ({base.replications}); this one has seed "
                f"{theirs.seed} and {theirs.replications} replications"])
    for file, prov in zip(files, recorded, strict=True):
        for warning in rerun_warnings(prov, str(file)):
            warn(f"warning: {warning}")
    tables: list[dict[str, list[float | None]]] = [
        {name: list(entry.get("values", [])) for name, entry in doc["metrics"].items()}
        for doc in docs]
    results: list[list[ReplicationResult]] = [[] for _ in docs]

    def extend(a: int, b: int) -> None:
        for i, prov in enumerate(recorded):
            scenario = attrs.evolve(prov.scenario, replications=b)
            # The first extension reruns the recorded replications too, so the
            # extended report is built from whole results (series, examples).
            results[i].extend(_run(scenario, workers, "process", None, echo,
                                   start=len(results[i])))
            tables[i] = values_of(results[i])

    def assess(n: int) -> list[Any]:
        return [m for i in range(1, len(docs))
                for m in difference_precision(tables[0], tables[i], n, target, labels[i])]

    outcome = run_to_precision(target=target, start=base.replications, cap=cap, assess=assess,
                               extend=extend, against="the baseline's mean")
    if outcome.replications == base.replications:
        return list(docs), list(paths), outcome
    n = outcome.replications
    out_docs, out_paths = [], []
    for file, prov, res in zip(files, recorded, results, strict=True):
        scenario = attrs.evolve(prov.scenario, replications=n)
        folder = file.parent.resolve()
        out = folder.with_name(f"{folder.name}-n{n}")
        report = Report.from_results(
            scenario, res, command=command, precision=outcome,
            reproduce=(f"orderloom simulate --from {shlex.quote(str(out / 'report.json'))}"
                       f" --out {shlex.quote(str(out))}")).write(out)
        out_docs.append(report.to_dict())
        out_paths.append(out)
    return out_docs, out_paths, outcome
