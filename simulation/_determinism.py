"""Determinism self-check: run one seed twice and find the first divergence."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._kernel import SimKernel

__all__ = ["DeterminismReport", "check_determinism"]


@attrs.frozen(kw_only=True)
class DeterminismReport:
    """The outcome of running one seed twice with tracing on.

    Attributes:
        seed: the seed run.
        identical: True when both traces are byte-identical.
        events: number of trace events of the first run.
        first_divergence: index of the first differing trace line, or None.
        first: that line in the first run ("" if the run ended earlier).
        second: that line in the second run.
    """

    seed: int
    identical: bool
    events: int
    first_divergence: int | None = None
    first: str = ""
    second: str = ""

    def describe(self) -> str:
        """One human sentence about the check."""
        if self.identical:
            return f"seed {self.seed}: {self.events} trace events, identical across runs"
        return (
            f"seed {self.seed}: runs diverge at trace event {self.first_divergence}:\n"
            f"  run 1: {self.first or '<end of trace>'}\n  run 2: {self.second or '<end of trace>'}"
        )


def check_determinism(
    build: Callable[[SimKernel], None],
    *,
    seed: int,
    until: float | None = None,
    shuffle: bool = False,
) -> DeterminismReport:
    """Build and run a model twice from ``seed`` and compare the traces.

    Args:
        build: sets up actors and initial messages on a fresh kernel.
        seed: the run seed.
        until: virtual time to run to (None: until nothing is scheduled).
        shuffle: run with seeded shuffling of same-time deliveries.
    """
    traces = []
    for _ in range(2):
        kernel = SimKernel(seed=seed, shuffle=shuffle, trace=True)
        build(kernel)
        kernel.run(until)
        traces.append(kernel.trace_lines())
    first, second = traces
    for index, (a, b) in enumerate(zip(first, second)):
        if a != b:
            return DeterminismReport(seed=seed, identical=False, events=len(first),
                                     first_divergence=index, first=a, second=b)
    if len(first) != len(second):
        index = min(len(first), len(second))
        return DeterminismReport(
            seed=seed, identical=False, events=len(first), first_divergence=index,
            first=first[index] if index < len(first) else "",
            second=second[index] if index < len(second) else "",
        )
    return DeterminismReport(seed=seed, identical=True, events=len(first))
