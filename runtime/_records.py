"""What every kernel records: dead letters, failures, escalations, the trace.

Both kernels derive from :class:`KernelRecords`, so a dead letter or a
failure looks the same whether it happened live or under simulation.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from ._contract import Address, ChildFailed, DeadLetter, Envelope, Failure, TraceEvent
from ._supervision import RestartBudget

__all__ = ["EmitSink", "KernelRecords"]

EmitSink = Callable[[float, Address, object], None]
"""Receives ``(time, actor address, event)`` for every ``ctx.emit``."""


class KernelRecords:
    """Dead letters, failures, escalations and the optional trace of a kernel.

    Args:
        trace: record structured :class:`TraceEvent` s (off by default:
            with it off, recording costs one ``is None`` test).
    """

    def __init__(self, *, trace: bool = False) -> None:
        self.trace: list[TraceEvent] | None = [] if trace else None
        self.dead_letters: list[DeadLetter] = []
        # Counts by reason are kept for every dead letter; the letters
        # themselves up to ``keep_dead_letters`` (long runs stay bounded).
        self.dead_letter_counts: dict[str, int] = {}
        self.keep_dead_letters = 10_000
        # Failures and escalations are bounded the same way: counts for all,
        # the records themselves up to ``keep_failures`` / ``keep_escalations``.
        self.failures: list[Failure] = []
        self.failure_counts: dict[str, int] = {}
        self.keep_failures = 10_000
        self.escalations: list[ChildFailed] = []
        self.escalation_total = 0
        self.keep_escalations = 10_000
        self._sinks: list[EmitSink] = []

    def now(self) -> float:
        """Kernel time; each kernel provides its clock."""
        raise NotImplementedError

    def add_sink(self, sink: EmitSink) -> None:
        """Receive every ``ctx.emit`` as ``sink(time, address, event)``."""
        self._sinks.append(sink)

    def trace_lines(self) -> list[str]:
        """The trace as stable text lines (empty when tracing is off)."""
        return [event.as_line() for event in self.trace or ()]

    @property
    def dead_letter_total(self) -> int:
        """Every dead letter so far, including those past the kept ones."""
        return sum(self.dead_letter_counts.values())

    @property
    def failure_total(self) -> int:
        """Every failure so far (by any action), including those past the kept ones."""
        return sum(self.failure_counts.values())

    def _dead(self, envelope: Envelope, reason: str, error: BaseException | None = None) -> None:
        self.dead_letter_counts[reason] = self.dead_letter_counts.get(reason, 0) + 1
        if len(self.dead_letters) >= self.keep_dead_letters:
            if self.trace is not None:
                self._record("dead_letter", envelope.recipient, envelope, reason)
            return
        self.dead_letters.append(DeadLetter(
            time=self.now(), envelope=envelope, reason=reason,
            error=repr(error) if error is not None else None,
        ))
        if self.trace is not None:
            self._record("dead_letter", envelope.recipient, envelope, reason)

    def _record_failure(
        self, address: str, envelope: Envelope | None, error: BaseException, action: str,
        hook: str = "",
    ) -> None:
        self.failure_counts[action] = self.failure_counts.get(action, 0) + 1
        if len(self.failures) >= self.keep_failures:
            if self.trace is not None:
                self._record("failure", address, envelope, f"{action}: {error!r}")
            return
        self.failures.append(Failure(
            time=self.now(),
            actor=address,
            message_type=type(envelope.body).__qualname__ if envelope is not None else hook,
            message_id=envelope.message_id if envelope is not None else "",
            error=repr(error),
            traceback="".join(traceback.format_exception(error)),
            action=action,
        ))
        if self.trace is not None:
            self._record("failure", address, envelope, f"{action}: {error!r}")

    def _decide_restart(
        self, budget: RestartBudget, address: str, envelope: Envelope | None,
        error: BaseException, *, stop_requested: bool,
    ) -> float | None:
        """Supervision's decision on a failed handler or hook, for both kernels.

        Recorded as a :class:`Failure` with the action ``restarted`` or
        ``stopped``. Returns the backoff (kernel seconds) before the restart,
        or None when the actor stops instead: its restart budget is spent,
        or a stop was asked for.
        """
        delay = None if stop_requested else budget.admit(self.now())
        self._record_failure(address, envelope, error,
                             "stopped" if delay is None else "restarted")
        return delay

    def _child_failed(
        self, address: Address, error: BaseException, *, parent_running: bool
    ) -> ChildFailed | None:
        """The :class:`ChildFailed` notice of an actor stopped by a failure:
        returned for the kernel to send when its parent is running, else kept
        in :attr:`escalations` (bounded by ``keep_escalations``)."""
        notice = ChildFailed(child=address, error=repr(error))
        if parent_running:
            return notice
        self.escalation_total += 1
        if len(self.escalations) < self.keep_escalations:
            self.escalations.append(notice)
        return None

    def _emit(self, address: Address, event: object, envelope: Envelope | None = None) -> None:
        """Hand ``event`` to the sinks; trace it with ``envelope``, the message
        whose turn emitted it (so a trace ties telemetry to its message)."""
        now = self.now()
        for sink in self._sinks:
            try:
                sink(now, address, event)
            except Exception as exc:  # a metrics sink's bug is not the actor's failure
                self._record_failure(address, None, exc, "recorded", hook="sink")
        if self.trace is not None:
            self._record("emit", address, envelope, type(event).__qualname__)

    def _record(
        self, kind: str, actor: str, envelope: Envelope | None = None, detail: str = ""
    ) -> None:
        trace = self.trace
        if trace is None:
            return
        trace.append(TraceEvent(
            time=float(self.now()), kind=kind, actor=actor,
            message_type=type(envelope.body).__qualname__ if envelope is not None else "",
            message_id=envelope.message_id if envelope is not None else "",
            detail=detail,
            sender=(envelope.sender or "") if envelope is not None else "",
            causation_id=(envelope.causation_id or "") if envelope is not None else "",
        ))
