"""Progress of a run's replications, as the place it is shown can show it.

On a terminal: a live bar on stderr (replications done, elapsed, ETA) that
vanishes when the run ends. Anywhere else (CI logs, notebooks, pipes): one
plain line on stderr per finished replication, since a redrawn bar there is
either invisible or leaves control codes and blank lines behind. stdout
keeps only the run's results either way.
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
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from orderloom.simulation import ReplicationResult

__all__ = ["ReplicationProgress", "format_seconds", "show_progress"]


def format_seconds(seconds: float) -> str:
    """A wall-clock span for a log line: ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = math.ceil(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class ReplicationProgress:
    """Reports replications ``start+1..total`` of one run as they finish.

    Args:
        label: what runs (``baseline / balanced``), at the head of each line.
        total: the run's replication count; ``start`` are done already (a
            ``--precision`` run extending its replications).
        stream: where progress goes (default stderr); a bar only if it is a
            terminal.
        clock: wall-clock seconds, for the ETA (``time.monotonic``).
    """

    def __init__(self, label: str, total: int, start: int = 0, *,
                 stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._label, self._total, self._done = label, total, start
        self._started_with = start
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._began = 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ReplicationProgress:
        self._began = self._clock()
        if self._stream.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(file=self._stream), transient=True)
            self._bar.__enter__()
            which = (f" (replications {self._started_with + 1}-{self._total})"
                     if self._started_with else "")
            self._task = self._bar.add_task(self._label + which,
                                            total=self._total - self._started_with)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, tb)

    def done(self, result: ReplicationResult) -> None:
        """One more replication finished (``result``)."""
        self._done += 1
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)
            return
        line = (f"{self._label}: replication {self._done}/{self._total} done in "
                f"{format_seconds(result.wall_seconds)}")
        left = self._total - self._done
        if left:
            finished = self._done - self._started_with
            eta = (self._clock() - self._began) / finished * left
            line += f" (about {format_seconds(eta)} left)"
        print(line, file=self._stream, flush=True)


@contextlib.contextmanager
def show_progress(label: str, total: int, start: int = 0
                  ) -> Iterator[Callable[[ReplicationResult], None]]:
    """A :class:`ReplicationProgress` on stderr, as ``simulate(progress=...)`` takes it."""
    with ReplicationProgress(label, total, start) as progress:
        yield progress.done
