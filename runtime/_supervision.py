"""Supervision bookkeeping, written once for both kernels.

A kernel decides *when* things happen (a SimPy event, an anyio sleep); what
supervision decides and records is the same under both, and lives here:
counting restarts inside the policy's sliding window, the backoff before the
next restart and stopping once the budget is spent (:class:`RestartBudget`);
the :class:`Failure` record of each decision and the :class:`ChildFailed`
escalation are written by :class:`KernelRecords` (``_decide_restart``,
``_child_failed``), which both kernels derive from.
"""

from __future__ import annotations

from ._contract import RestartPolicy

__all__ = ["RestartBudget"]


class RestartBudget:
    """One actor's restarts inside its :class:`RestartPolicy`'s sliding window.

    Pure bookkeeping: no clock of its own (the kernel passes ``now``), no I/O.
    A kernel creates one on an actor's first failure, so actors that never
    fail pay nothing for it.
    """

    __slots__ = ("policy", "_times")

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._times: list[float] = []

    @property
    def attempts(self) -> int:
        """Restarts inside the window as of the last admitted one (1-based)."""
        return len(self._times)

    def admit(self, now: float) -> float | None:
        """A failure at ``now``: the backoff before restarting, or None when
        more than ``max_restarts`` restarts would fall inside the window."""
        policy = self.policy
        recent = [t for t in self._times if now - t < policy.window]
        if len(recent) >= policy.max_restarts:
            return None
        recent.append(now)
        self._times = recent
        return policy.delay(len(recent))
