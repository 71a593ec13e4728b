"""A persistent actor against a model, under Hypothesis: deposits, reminders,
cancellations, failing turns and crashes in any order.

After every step the actor's state is the fold of its journal, equals the
model's, and exactly the reminders due so far have fired, once each, in due
order.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from orderloom.runtime import MemoryStore
from orderloom.simulation import SimKernel
from tests.contract.test_persistent_actor import (
    Deposit,
    Explode,
    Forget,
    Ledger,
    LedgerActor,
    Remind,
    _observer,
    _spawn,
)

STEP = 3.0  # kernel seconds run after each rule: longer than any restart backoff here
BUDGET = 60.0  # the ledger's restart window (RestartPolicy default): at most 3 failures in it


class PersistentLedgerMachine(RuleBasedStateMachine):
    """Drives a LedgerActor on the SimPy kernel and a plain model side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore(keep_history=False)
        self.kernel = SimKernel(seed=1)
        self.log: list[Any] = []
        self.kernel.spawn(lambda: _observer([]), "observer")
        _spawn(self.kernel, self.store, self.log, [])
        self.balance = 0
        self.pending: dict[str, float] = {}  # label -> due time
        self.last: str | None = None  # the reminder Forget would cancel (this instance's)
        self.fired: list[str] = []
        self.n = 0
        self.failures: list[float] = []
        self._advance()

    def _advance(self, dt: float = STEP) -> None:
        until = self.kernel.now() + dt
        self.kernel.run(until)
        for label, due in sorted(self.pending.items(), key=lambda kv: kv[1]):
            if due < until:  # run(until) stops before events at exactly ``until``
                self.fired.append(label)
                del self.pending[label]

    @rule(amount=st.integers(1, 100))
    def deposit(self, amount: int) -> None:
        self.kernel.tell("ledger", Deposit(amount=amount))
        self.balance += amount
        self._advance()

    @rule(after=st.floats(1.5, 30.0))
    def remind(self, after: float) -> None:
        self.n += 1
        label = f"r{self.n}"
        # Due times are distinct in practice (continuous draws): fired order is due order.
        self.pending[label] = self.kernel.now() + after
        self.kernel.tell("ledger", Remind(after=after, label=label))
        self.last = label
        self._advance()

    @rule()
    def forget(self) -> None:
        if self.last is None:
            return
        self.kernel.tell("ledger", Forget())
        due = self.pending.get(self.last)
        if due is not None and due > self.kernel.now():
            self.pending.pop(self.last)
        # else: due exactly now (``remind(after=STEP)``): its timer was set
        # before Forget was told, so it fires first, in the next advance.
        self.last = None
        self._advance()

    @rule()
    def explode(self) -> None:
        now = self.kernel.now()
        self.failures = [t for t in self.failures if now - t < BUDGET]
        if len(self.failures) >= 3:
            return  # one more would exhaust the restart budget and stop the actor
        self.failures.append(now)
        self.kernel.tell("ledger", Explode())
        self.last = None  # the successor no longer holds the handle Forget would use
        self._advance()

    @rule()
    def crash(self) -> None:
        assert self.kernel.crash("ledger")
        self.last = None
        self._advance()

    @rule(dt=st.floats(0.5, 40.0))
    def wait(self, dt: float) -> None:
        self._advance(dt)

    @invariant()
    def state_is_the_fold_of_the_journal(self) -> None:
        actor = self.kernel.actor("ledger")
        assert isinstance(actor, LedgerActor)
        folded = Ledger()
        loaded = self.store.load("ledger")
        if loaded.snapshot is not None:
            folded = loaded.snapshot.state  # type: ignore[assignment]
        for recorded in loaded.events:
            folded = actor.evolve(folded, recorded.event)
        assert actor.state == folded
        assert actor.state.balance == self.balance

    @invariant()
    def due_reminders_fired_once_in_order(self) -> None:
        assert [entry[1] for entry in self.log if entry[0] == "reminded"] == self.fired
        assert self.kernel.actor("ledger").state.reminded == tuple(self.fired)  # type: ignore[attr-defined]


PersistentLedgerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30,
                                                     deadline=None)
TestPersistentLedger = PersistentLedgerMachine.TestCase


def test_a_reminder_due_as_forget_arrives_fires_first() -> None:
    """Hypothesis found it: a reminder set STEP seconds ahead falls due exactly
    when the next rule's Forget is told; the timer, set first, fires first."""
    machine = PersistentLedgerMachine()
    machine.remind(STEP)
    machine.forget()
    machine.wait(5.0)
    machine.state_is_the_fold_of_the_journal()
    machine.due_reminders_fired_once_in_order()
    assert machine.fired == ["r1"]
