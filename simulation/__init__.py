"""orderloom.simulation: the SimPy kernel and the policy simulator."""

from __future__ import annotations

from ._determinism import DeterminismReport, check_determinism
from ._faults import LinkFaults
from ._kernel import SimKernel
from ._queueing import MMcMetrics, mmc_metrics
from ._stats import Summary, summarize

__all__ = [
    "DeterminismReport",
    "LinkFaults",
    "MMcMetrics",
    "SimKernel",
    "Summary",
    "check_determinism",
    "mmc_metrics",
    "summarize",
]
