"""Supervision bookkeeping shared by both kernels: the restart budget and the
bounded failure and escalation records."""

from __future__ import annotations

from orderloom.runtime import Address, KernelRecords, RestartBudget, RestartPolicy


class _Clock(KernelRecords):
    """KernelRecords with a clock the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.time = 0.0

    def now(self) -> float:
        return self.time


def test_budget_gives_growing_backoffs_then_stops() -> None:
    """Restarts inside the window back off by the policy; one too many means stop."""
    budget = RestartBudget(RestartPolicy(max_restarts=3, window=60.0, backoff=1.0, factor=2.0))
    assert [budget.admit(t) for t in (0.0, 1.0, 2.0, 3.0)] == [1.0, 2.0, 4.0, None]
    assert budget.attempts == 3


def test_budget_window_slides() -> None:
    """Restarts older than the window no longer count against the budget."""
    budget = RestartBudget(RestartPolicy(max_restarts=1, window=10.0, backoff=1.0))
    assert budget.admit(0.0) == 1.0
    assert budget.admit(5.0) is None
    assert budget.admit(10.0) == 1.0  # the restart at 0 fell out of the window
    assert budget.attempts == 1


def test_decision_is_recorded_once_for_both_kernels() -> None:
    """Each decision leaves one Failure with its action; a requested stop wins over the budget."""
    records = _Clock()
    budget = RestartBudget(RestartPolicy(max_restarts=1))
    error = RuntimeError("crash")
    assert records._decide_restart(budget, "a", None, error, stop_requested=False) == 0.1
    assert records._decide_restart(budget, "a", None, error, stop_requested=True) is None
    assert [f.action for f in records.failures] == ["restarted", "stopped"]


def test_child_failed_goes_to_a_running_parent_or_is_escalated() -> None:
    """The ChildFailed notice is returned for a running parent, else kept as an escalation."""
    records = _Clock()
    error = RuntimeError("crash")
    notice = records._child_failed(Address("p/c"), error, parent_running=True)
    assert notice is not None and notice.child == "p/c" and records.escalations == []
    assert records._child_failed(Address("c"), error, parent_running=False) is None
    assert [e.child for e in records.escalations] == ["c"]


def test_failures_and_escalations_are_bounded() -> None:
    """Past keep_failures / keep_escalations only the counts grow (long runs stay bounded)."""
    records = _Clock()
    records.keep_failures = 2
    records.keep_escalations = 1
    for n in range(5):
        records._record_failure("a", None, ValueError(n), "recorded")
        records._child_failed(Address(f"c{n}"), ValueError(n), parent_running=False)
    assert len(records.failures) == 2 and records.failure_total == 5
    assert records.failure_counts == {"recorded": 5}
    assert len(records.escalations) == 1 and records.escalation_total == 5
