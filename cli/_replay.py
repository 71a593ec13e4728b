"""Record and replay: ``orderloom journal export`` and ``orderloom replay``."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote

import click

from orderloom.actors import DocumentError, make_converter
from orderloom.actors import journal_codec, journal_type_version
from orderloom.runtime import CodecError, InvalidStoreUrl, StoreError, export_journal, open_store
from orderloom.simulation import (
    DEFAULT_DRAIN,
    describe_replay,
    replay,
    resolve_run,
)

from ._progress import show_progress
from ._simulate import summary_lines


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


@click.group("journal")
def journal_group() -> None:
    """Read the journals a coordinator's store holds."""


@contextmanager
def _output(out: Path) -> Iterator[TextIO]:
    if str(out) == "-":
        yield sys.stdout
        return
    with out.open("w", encoding="utf-8") as handle:
        yield handle


@journal_group.command("export")
@click.option("--store", "url", required=True, metavar="URL",
              help="The store to read: sqlite:///PATH or postgresql://... (as serve takes).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True,
                                                      path_type=Path),
              metavar="FILE", help="The JSON-lines file to write ('-': stdout).")
def export(url: str, out: Path) -> None:
    """Write every journal in a store as JSON lines, one line per event."""
    if url.startswith("sqlite:///"):
        # Opening an SQLite store creates a missing file: an export must not.
        path = Path(unquote(url.removeprefix("sqlite:///")))
        if not path.is_file():
            _fail(f"{url}: no such store ({path} is not a file)")
            return
    try:
        store = open_store(url, journal_codec())
    except (InvalidStoreUrl, ImportError) as exc:
        _fail(str(exc))
        return
    except StoreError as exc:
        _fail(f"{url}: cannot open the store: {exc}")
        return
    try:
        with store, _output(out) as handle:
            count = export_journal(store, journal_codec(), handle,
                                   type_version=journal_type_version)
    except OSError as exc:
        _fail(f"{out}: cannot be written: {exc.strerror or exc}")
        return
    except (StoreError, CodecError) as exc:
        _fail(f"{url}: cannot export: {exc}")
        return
    click.echo(f"wrote {count} events to {out}", err=str(out) == "-")


def _seconds(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(make_converter().structure(value, float))
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(f"{value!r}: {exc}", param_hint=f"'{option}'") from exc
    if not seconds > 0:
        raise click.BadParameter(f"expected a positive duration, got {value!r}",
                                 param_hint=f"'{option}'")
    return seconds


@click.command("replay")
@click.argument("journal", metavar="JOURNAL",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scenario", required=True,
              help="The world to replay into (a file or a scenario name).")
@click.option("--policy", help="Policy name or file; default: the scenario's.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Report folder (default: out/replay-<scenario>-<policy>).")
@click.option("--replications", "-n", type=click.IntRange(min=1),
              help="Replications (default: the scenario's).")
@click.option("--seed", type=int, help="Run seed (default: the scenario's).")
@click.option("--horizon", help="Simulated length (seconds or 2h, 1d, ...), past the "
                                "journal's span; default: the span plus --drain.")
@click.option("--drain", help="Time to run on after the last customer action "
                              f"(default {DEFAULT_DRAIN / 3600:g}h).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default=True, help="Worker processes.")
def replay_command(journal: Path, scenario: str, policy: str | None, out: Path | None,
                   replications: int | None, seed: int | None, horizon: str | None,
                   drain: str | None, workers: int) -> None:
    """Replay the orders and customer actions of a JOURNAL export in a scenario's world."""
    command = "orderloom replay " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    length, tail = _seconds(horizon, "--horizon"), _seconds(drain, "--drain")
    if length is not None and tail is not None:
        raise click.UsageError("give --horizon or --drain, not both")
    try:
        folder = out
        if folder is None:
            resolved = resolve_run(scenario, policy=policy)
            folder = Path("out") / f"replay-{resolved.name}-{resolved.policy.name}"
        report = replay(journal, scenario, policy=policy, replications=replications,
                        seed=seed, horizon=length, drain=tail, workers=workers, out=folder,
                        progress=show_progress, command=command)
    except DocumentError as exc:
        _fail(str(exc))
        return
    if report.replay is not None:
        click.echo(f"replay of {describe_replay(report.replay)}, horizon "
                   f"{report.replay['horizon'] / 3600:.3g} h")
        unstocked = report.replay.get("unstocked_skus")
        if unstocked:
            click.echo(f"warning: {journal}: {len(unstocked)} SKUs ordered in the journal "
                       f"are stocked by no warehouse of {scenario!r}: "
                       f"{', '.join(unstocked[:10])}" + (", ..." if len(unstocked) > 10 else ""),
                       err=True)
    for line in summary_lines(report):
        click.echo(line)
