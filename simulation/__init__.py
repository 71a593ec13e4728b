"""orderloom.simulation: the SimPy kernel and the policy simulator."""

from __future__ import annotations

from ._determinism import DeterminismReport, check_determinism
from ._faults import LinkFaults
from ._kernel import SimKernel

__all__ = [
    "DeterminismReport",
    "LinkFaults",
    "SimKernel",
    "check_determinism",
]
