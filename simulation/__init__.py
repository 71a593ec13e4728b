"""orderloom.simulation: the SimPy kernel and the policy simulator."""

from __future__ import annotations

from ._determinism import DeterminismReport, check_determinism
from ._faults import LinkFaults
from ._kernel import SimKernel
from ._provenance import (
    Provenance,
    ReportError,
    provenance_data,
    provenance_of,
    read_provenance,
    rerun_warnings,
    software_versions,
)
from ._queueing import MMcMetrics, mmc_metrics
from ._stats import Summary, summarize

__all__ = [
    "DeterminismReport",
    "LinkFaults",
    "MMcMetrics",
    "Provenance",
    "ReportError",
    "SimKernel",
    "Summary",
    "check_determinism",
    "mmc_metrics",
    "provenance_data",
    "provenance_of",
    "read_provenance",
    "rerun_warnings",
    "software_versions",
    "summarize",
]
