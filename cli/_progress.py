"""Progress of a run's replications, as the place it is shown can show it.

Progress moves with the simulated clock: each replication reports its
simulated time as it runs (every hundredth of the horizon), so a run of a
few long replications moves too, and the ETA is the wall time so far scaled
by the share of simulated time still to go, over all replications.

On a terminal: a live bar on stderr (share of simulated time done,
replications finished, elapsed, ETA) that vanishes when the run ends.
Anywhere else (CI logs, notebooks, pipes): one plain line on stderr per
finished replication, and between them a line on the simulated clock at a
modest rate (at most one per 10 s, and only after another tenth of the run),
since a redrawn bar there is either invisible or leaves control codes and
blank lines behind. stdout keeps only the run's results either way.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from orderloom.simulation import ReplicationResult

__all__ = ["ReplicationProgress", "format_seconds", "show_progress"]

LOG_EVERY_SECONDS = 10.0
"""Off a terminal, the least wall time between two simulated-clock lines."""
LOG_EVERY_SHARE = 0.1
"""Off a terminal, the least share of the run between two simulated-clock lines."""
_BAR_UNITS = 1000


def format_seconds(seconds: float) -> str:
    """A wall-clock span for a log line: ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = math.ceil(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class ReplicationProgress:
    """Reports replications ``start+1..total`` of one run as they move on and finish.

    Args:
        label: what runs (``baseline / balanced``), at the head of each line.
        total: the run's replication count; ``start`` are done already (a
            ``--precision`` run extending its replications).
        horizon: each replication's simulated length (seconds), for
            :meth:`clock`; without it progress moves per finished replication.
        stream: where progress goes (default stderr); a bar only if it is a
            terminal.
        clock: wall-clock seconds, for the ETA (``time.monotonic``).
    """

    def __init__(self, label: str, total: int, start: int = 0, *,
                 horizon: float | None = None, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._label, self._total, self._done = label, total, start
        self._started_with = start
        self._horizon = horizon
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._began = 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._running: dict[int, float] = {}  # simulated time of unfinished replications
        self._finished: set[int] = set()
        self._logged_at = 0.0  # wall time of the last simulated-clock line
        self._logged_share = 0.0

    def __enter__(self) -> ReplicationProgress:
        self._began = self._logged_at = self._clock()
        if self._stream.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[finished]}"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(file=self._stream), transient=True)
            self._bar.__enter__()
            which = (f" (replications {self._started_with + 1}-{self._total})"
                     if self._started_with else "")
            self._task = self._bar.add_task(self._label + which, total=_BAR_UNITS,
                                            finished=self._finished_text())
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, tb)

    def share(self) -> float:
        """The share of the run's simulated time done, over its replications."""
        count = self._total - self._started_with
        if count <= 0:
            return 1.0
        finished = self._done - self._started_with
        if not self._horizon:
            return finished / count
        moving = sum(min(t, self._horizon) for t in self._running.values()) / self._horizon
        return min(1.0, (finished + moving) / count)

    def _finished_text(self) -> str:
        return f"{self._done}/{self._total} replications"

    def _eta(self, now: float, share: float) -> float | None:
        if share <= 0.0 or share >= 1.0:
            return None
        return (now - self._began) * (1.0 - share) / share

    def _redraw(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=round(self.share() * _BAR_UNITS),
                             finished=self._finished_text())

    def clock(self, replication: int, now: float) -> None:
        """Replication ``replication``'s simulated clock reads ``now``."""
        if replication in self._finished:
            return  # a late report of a replication already counted whole
        self._running[replication] = now
        if self._bar is not None:
            self._redraw()
            return
        share = self.share()
        wall = self._clock()
        if (wall - self._logged_at < LOG_EVERY_SECONDS
                or share - self._logged_share < LOG_EVERY_SHARE):
            return
        self._logged_at, self._logged_share = wall, share
        eta = self._eta(wall, share)
        print(f"{self._label}: {share:.0%} of simulated time, {self._finished_text()} "
              f"finished, {format_seconds(wall - self._began)} elapsed"
              + (f" (about {format_seconds(eta)} left)" if eta is not None else ""),
              file=self._stream, flush=True)

    def done(self, result: ReplicationResult) -> None:
        """One more replication finished (``result``)."""
        self._done += 1
        self._finished.add(result.replication)
        self._running.pop(result.replication, None)
        if self._bar is not None:
            self._redraw()
            return
        line = (f"{self._label}: replication {self._done}/{self._total} done in "
                f"{format_seconds(result.wall_seconds)}")
        if self._total - self._done:
            wall = self._clock()
            eta = self._eta(wall, self.share())
            if eta is not None:
                line += f" (about {format_seconds(eta)} left)"
        print(line, file=self._stream, flush=True)


@contextlib.contextmanager
def show_progress(label: str, total: int, start: int = 0, horizon: float | None = None
                  ) -> Iterator[ReplicationProgress]:
    """A :class:`ReplicationProgress` on stderr, as ``simulate(progress=...)`` takes it."""
    with ReplicationProgress(label, total, start, horizon=horizon) as progress:
        yield progress
