"""Replication progress: plain lines with an ETA off a terminal, a bar on one."""

from __future__ import annotations

import io
from collections.abc import Iterator

from orderloom.cli._progress import ReplicationProgress, format_seconds
from orderloom.simulation import ReplicationResult


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _clock(times: list[float]) -> Iterator[float]:
    yield from times


def _result(k: int, wall: float) -> ReplicationResult:
    return ReplicationResult(replication=k, seed=k, metrics={}, wall_seconds=wall)


def test_off_a_terminal_each_finished_replication_is_one_line_with_an_eta() -> None:
    """Off a terminal, every finished replication prints 'replication k/n done in t' and
    the time left, estimated from the mean time per replication so far."""
    out = io.StringIO()
    ticks = _clock([100.0, 110.0, 120.0, 131.0])  # start, then one tick per replication
    with ReplicationProgress("baseline / balanced", 3, stream=out,
                             clock=lambda: next(ticks)) as progress:
        for k, wall in enumerate((9.96, 10.0, 11.0)):
            progress.done(_result(k, wall))
    assert out.getvalue().splitlines() == [
        "baseline / balanced: replication 1/3 done in 10.0 s (about 20.0 s left)",
        "baseline / balanced: replication 2/3 done in 10.0 s (about 10.0 s left)",
        "baseline / balanced: replication 3/3 done in 11.0 s",
    ]


def test_an_extended_run_counts_on_from_the_replications_it_had() -> None:
    """A run extending replications 5..6 numbers them 6/7 and 7/7 and estimates from
    the new ones only."""
    out = io.StringIO()
    ticks = _clock([0.0, 30.0, 60.0])
    with ReplicationProgress("x / y", 7, 5, stream=out, clock=lambda: next(ticks)) as progress:
        progress.done(_result(5, 30.0))
        progress.done(_result(6, 30.0))
    assert out.getvalue().splitlines() == [
        "x / y: replication 6/7 done in 30.0 s (about 30.0 s left)",
        "x / y: replication 7/7 done in 30.0 s",
    ]


def test_on_a_terminal_a_bar_with_an_eta_replaces_the_lines() -> None:
    """On a terminal, progress is a bar naming the run and its ETA, not log lines."""
    out = _Terminal()
    with ReplicationProgress("baseline / balanced", 2, stream=out) as progress:
        progress.done(_result(0, 1.0))
        progress.done(_result(1, 1.0))
    shown = out.getvalue()
    assert "baseline / balanced" in shown and "ETA" in shown
    assert "done in" not in shown


def test_format_seconds_reads_as_seconds_minutes_or_hours() -> None:
    """Wall-clock spans read 12.3 s, 4 min 05 s, 1 h 02 min."""
    assert [format_seconds(s) for s in (12.34, 245.0, 3720.0)] == [
        "12.3 s", "4 min 05 s", "1 h 02 min"]


def test_off_a_terminal_the_simulated_clock_logs_at_a_modest_rate() -> None:
    """Off a terminal, simulated-clock reports print a line with the share done and an
    ETA only after 10 s of wall time and another tenth of the run since the last line."""
    out = io.StringIO()
    ticks = _clock([0.0, 5.0, 12.0, 14.0, 30.0])
    with ReplicationProgress("b / p", 2, horizon=100.0, stream=out,
                             clock=lambda: next(ticks)) as progress:
        progress.clock(0, 50.0)   # 25% at 5 s: too soon
        progress.clock(1, 50.0)   # 50% at 12 s: a line
        progress.clock(0, 60.0)   # 55% at 14 s: too soon, and too little
        progress.clock(0, 100.0)  # 75% at 30 s: a line
    assert out.getvalue().splitlines() == [
        "b / p: 50% of simulated time, 0/2 replications finished, 12.0 s elapsed "
        "(about 12.0 s left)",
        "b / p: 75% of simulated time, 0/2 replications finished, 30.0 s elapsed "
        "(about 10.0 s left)",
    ]


def test_the_share_counts_running_clocks_and_finished_replications_whole() -> None:
    """The share done is finished replications plus each running one's simulated time
    over the horizon; a clock report arriving after its replication finished is ignored."""
    with ReplicationProgress("b / p", 4, horizon=10.0, stream=io.StringIO(),
                             clock=lambda: 0.0) as progress:
        progress.clock(0, 5.0)
        progress.clock(1, 2.5)
        assert progress.share() == (0.5 + 0.25) / 4
        progress.done(_result(0, 1.0))
        progress.clock(0, 7.0)
        assert progress.share() == (1 + 0.25) / 4


def test_on_a_terminal_the_bar_moves_with_the_simulated_clock() -> None:
    """On a terminal, clock reports move the bar (no log lines), which names the
    replications finished."""
    out = _Terminal()
    with ReplicationProgress("b / p", 2, horizon=10.0, stream=out) as progress:
        progress.clock(0, 5.0)
        progress.clock(1, 5.0)
        assert progress.share() == 0.5
        progress.done(_result(0, 1.0))
    shown = out.getvalue()
    assert "replications" in shown and "of simulated time" not in shown
