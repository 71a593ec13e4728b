"""Per-order, per-case and per-team state of the metrics collector.

Plain slotted classes: the collector creates one per order in flight and
touches them on every telemetry event, so they stay as small and cheap as
Python allows. All of them are private to :mod:`._metrics`.
"""

from __future__ import annotations

from ._streaming import StepAverage

__all__ = ["Case", "Order", "Slot", "Team", "Views"]


class Order:
    """An order in flight: where it is since when, and what it has been through."""

    __slots__ = ("cases", "counted", "entered", "placed", "shipped", "stage", "stuck",
                 "stuck_now")

    def __init__(self, *, counted: bool, placed: float, stage: str) -> None:
        self.counted = counted
        self.placed = placed
        self.stage = stage
        self.entered = placed
        self.stuck_now = False
        self.shipped = False
        # (family, key) breakdowns it was already counted in; None: never stuck.
        self.stuck: set[tuple[str, str]] | None = None
        self.cases: list[str] | None = None  # its cases' ids (None: none yet)


class Case:
    """An exception case: the teams it visited and the teams holding it now."""

    __slots__ = ("arrivals", "breached", "counted", "deadline", "order_done", "teams")

    def __init__(self, *, counted: bool, deadline: float, teams: list[str]) -> None:
        self.counted = counted
        self.deadline = deadline
        self.teams = teams  # visited, in order
        self.arrivals: dict[str, float] = {}  # team holding it -> when it arrived there
        self.breached = False
        self.order_done = False


class Slot:
    """One order's coordinator and downstream views for one system."""

    __slots__ = ("coordinator", "downstream", "plan", "since")

    def __init__(self) -> None:
        self.coordinator: str | None = None
        self.downstream: str | None = None
        self.since: float | None = None  # start of the open disagreement, if any
        # The downstream view's announced changes still to come, as
        # (at, landing number, status) in landing order; None while none is.
        self.plan: list[tuple[float, int, str]] | None = None


class Views:
    """One order's views across systems (kept past the finish until all agree)."""

    __slots__ = ("bad", "counted", "finished", "hit", "slots")

    def __init__(self, *, counted: bool) -> None:
        self.counted = counted
        self.finished = False
        self.slots: dict[str, Slot] = {}
        self.bad = 0  # systems disagreeing now
        # Systems it counted as mismatched for (None: none; most orders never
        # are, and an empty set costs 216 bytes per order).
        self.hit: set[str] | None = None


class Team:
    """A team's load signals over the measurement window, and its counts."""

    __slots__ = ("busy", "counts", "on_duty_busy", "overtime", "queue", "staff")

    def __init__(self, warm_up: float) -> None:
        self.queue = StepAverage(warm_up)
        self.busy = StepAverage(warm_up)
        self.staff = StepAverage(warm_up)
        # Busy reviewers split at the staff on duty: a review that runs past
        # its reviewer's shift is overtime, not load on the next shift.
        self.on_duty_busy = StepAverage(warm_up)
        self.overtime = StepAverage(warm_up)
        self.counts: dict[str, float] = {}
