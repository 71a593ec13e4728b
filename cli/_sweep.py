"""The sweep command: a grid of policy and scenario settings, every point
checked before the first runs, one report per point and one sweep page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orderloom.simulation import (
    aggregate,
    parse_sweep_params,
    run_header,
    sweep_points,
    write_report,
    write_sweep,
)

from ._simulate import Echo, _evolve, _run, _scenario


def sweep_grid(
    name: str, params: Sequence[str], *, replications: int | None, seed: int | None,
    workers: int, out: Path | None, horizon: str | None, echo: Echo,
) -> list[str]:
    """Run every point of a parameter grid and write one sweep report. Every
    point is checked before the first one runs."""
    scenario = _scenario(name, horizon)
    n = replications or scenario.replications
    run_seed = scenario.seed if seed is None else seed
    scenario = _evolve(scenario, name, seed=run_seed, replications=n)
    out = out or Path("out") / f"sweep-{scenario.name}"
    axes = parse_sweep_params(params)
    grid = sweep_points(scenario, axes)
    results: list[tuple[Any, dict[str, Any]]] = []
    for number, point in enumerate(grid, start=1):
        resolved = point.scenario
        runs = _run(resolved, workers, "process", None, echo,
                    label=f"{scenario.name} / {point.label} (point {number}/{len(grid)})")
        report = aggregate(runs, header={**run_header(resolved, runs), "point": point.label})
        write_report(report, out / point.label.replace("/", "_"))
        results.append((point, report))
        echo(f"  {point.label}: done")
    paths = write_sweep(results, out, axes)
    return [f"sweep of {scenario.name}: {len(results)} points x {n} replications, "
            f"seed {run_seed}",
            "reports: " + ", ".join(str(p) for p in paths)]
