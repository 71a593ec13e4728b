"""Entry point of the ``orderloom`` console script."""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from orderloom.actors import DocumentError

from orderloom.simulation import DEFAULT_MAX_REPLICATIONS, parse_precision

from ._replay import journal_group, replay_command
from ._simulate import rerun_and_report, run_and_report
from ._sweep import sweep_grid

EXAMPLE_CONFIG = importlib.resources.files("orderloom.cli") / "serve-example.yaml"
"""The example serve config (``orderloom serve --example``), shipped in the package."""
from ._warnings import run_warning_lines, warning_lines


def _fail(error: DocumentError) -> None:
    click.echo(str(error), err=True)
    sys.exit(2)


def _precision_option(text: str | None) -> float | None:
    """``--precision``'s value as a fraction (a usage error, exit 2, if it is not one)."""
    if text is None:
        return None
    try:
        return parse_precision(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--precision'") from exc


@click.group()
@click.version_option(package_name="orderloom")
def main() -> None:
    """orderloom: order-management automation runtime and policy simulator."""


@main.command()
@click.argument("scenario", required=False)
@click.option("--policy", help="Policy name (cautious, balanced, aggressive) or file; "
              "default: the scenario's.")
@click.option("--replications", "-n", type=click.IntRange(min=1),
              help="Replications (default: the scenario's).")
@click.option("--seed", type=int, help="Run seed (default: the scenario's).")
@click.option("--from", "recorded", type=click.Path(exists=True, path_type=Path),
              metavar="REPORT",
              help="Rerun the run a report.json (or its folder) records, exactly: its "
                   "scenario contents, policy, seeds and replications (no SCENARIO, "
                   "--policy, -n, --seed or --horizon with it).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Report folder (default: out/<scenario>-<policy>; with --from, the "
                   "report's folder with -rerun appended).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default=True, help="Worker processes.")
@click.option("--horizon", help="Override the horizon (seconds or 2h, 1d, ...).")
@click.option("--executor", type=click.Choice(["process", "dask"]), default="process",
              show_default=True)
@click.option("--scheduler", help="Dask scheduler address (tcp://host:8786) for --executor dask.")
@click.option("--trace", is_flag=True,
              help="Also record replication 0's full trace (trace.jsonl.gz) for 'report trace'.")
@click.option("--precision", "precision_text", metavar="PCT",
              help="Add replications until every primary metric's 95% CI half-width is "
                   "within PCT (e.g. 5%) of its mean, starting from -n (or the scenario's "
                   "replications), up to --max-replications.")
@click.option("--max-replications", "cap", type=click.IntRange(min=1), metavar="N",
              help="The most replications --precision runs (default "
                   f"{DEFAULT_MAX_REPLICATIONS}).")
def simulate(scenario: str | None, policy: str | None, replications: int | None,
             seed: int | None, recorded: Path | None, out: Path | None, workers: int,
             horizon: str | None, executor: str, scheduler: str | None, trace: bool,
             precision_text: str | None, cap: int | None) -> None:
    """Run SCENARIO (a file or a name in scenarios/) and write its reports.

    With --from REPORT, run again exactly what a report records instead.
    """
    command = "orderloom simulate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    # A rerun runs what was recorded: whatever would change the run is
    # refused, not silently ignored or silently applied.
    changes = [flag for flag, value in (
        ("SCENARIO", scenario), ("--policy", policy), ("--replications", replications),
        ("--seed", seed), ("--horizon", horizon), ("--precision", precision_text),
        ("--max-replications", cap)) if value is not None]
    if cap is not None and precision_text is None and recorded is None:
        raise click.UsageError("--max-replications caps a --precision run; give --precision "
                               "too (or -n for a fixed number of replications)")
    precision = _precision_option(precision_text)
    try:
        if recorded is not None and changes:
            raise click.UsageError(
                f"--from reruns the recorded run exactly; it takes no {', '.join(changes)} "
                "(run the scenario by name to change them)")
        if recorded is not None:
            result = rerun_and_report(
                recorded, out=out, workers=workers, executor=executor, scheduler=scheduler,
                trace=trace, command=command, echo=click.echo,
                warn=lambda line: click.echo(line, err=True))
        elif scenario is not None:
            for line in run_warning_lines(scenario, horizon):
                click.echo(line, err=True)
            result = run_and_report(
                scenario, policy=policy, replications=replications, seed=seed, out=out,
                workers=workers, horizon=horizon, executor=executor, scheduler=scheduler,
                trace=trace, command=command, echo=click.echo, precision=precision, cap=cap)
        else:
            raise click.UsageError("Missing argument 'SCENARIO' (or --from REPORT to rerun "
                                   "a recorded run).")
    except DocumentError as exc:
        _fail(exc)
        return
    for line in result:
        click.echo(line)


@main.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Check scenario or policy files without running them."""
    from orderloom.actors import load_policy
    from orderloom.simulation import load_scenario, resolve_scenario, world_for

    import random

    failed = False
    for name in files:
        try:
            path = resolve_scenario(name)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = ("is a folder, not a file" if path.is_dir() else
                          "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
                          else f"cannot be read: {exc.strerror}")
                click.echo(f"{path}: {reason}", err=True)
                sys.exit(2)
            if "fulfillment_trigger" in text and "catalog" not in text:
                policy = load_policy(path)
                click.echo(f"{path}: ok (policy {policy.name})")
                continue
            loaded = load_scenario(path)
            try:
                world_for(loaded, loaded.policy, random.Random(0))
            except ValueError as exc:
                raise DocumentError(str(path), [str(exc)]) from exc
            click.echo(f"{path}: ok (scenario {loaded.name}, policy {loaded.policy.name}, "
                       f"{len(loaded.faults)} scheduled faults)")
            for line in warning_lines(str(path), loaded):
                click.echo(line, err=True)
        except DocumentError as exc:
            click.echo(str(exc), err=True)
            failed = True
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("reports", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Also write compare.md and compare.html here.")
@click.option("--allow-different", is_flag=True,
              help="Compare reports that ran another scenario content, horizon, warm-up or "
                   "seeds than the baseline (each difference is named in the output).")
@click.option("--fail-if-worse", "gates", metavar="METRIC[,METRIC]", multiple=True,
              help="Exit 1 if any candidate is significantly worse on one of these metrics "
                   "(a policy gate for CI): Holm-adjusted for a primary metric, its own "
                   "95% verdict for an exploratory one.")
@click.option("--full", is_flag=True,
              help="After the summary of the primary metrics, print the full table "
                   "(every metric, exploratory ones with unadjusted verdicts; wide).")
@click.option("--precision", "precision_text", metavar="PCT",
              help="Rerun every report's run with more replications (the same seeds on "
                   "every side) until each paired difference's 95% CI half-width is within "
                   "PCT (e.g. 5%) of the baseline's mean, up to --max-replications; the "
                   "extended reports go next to each report's folder, suffixed -n<N>.")
@click.option("--max-replications", "cap", type=click.IntRange(min=1), metavar="N",
              help="The most replications --precision runs per report (default "
                   f"{DEFAULT_MAX_REPLICATIONS}).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default=True, help="Worker processes (for --precision's runs).")
def compare(reports: tuple[Path, ...], out: Path | None, allow_different: bool,
            gates: tuple[str, ...], full: bool, precision_text: str | None, cap: int | None,
            workers: int) -> None:
    """Compare REPORTS (report.json files or run folders); the first is the baseline.

    Prints the primary metrics (stuck orders, exception rate, bounce rate,
    manual overrides, state mismatches, wrong actions, throughput, end-to-end
    cycle time) with deltas, paired 95% CIs and verdicts Holm-adjusted over
    that family; every other metric is exploratory (--full, or compare.md).

    Exit codes: 0 compared (and every gate passed), 1 a --fail-if-worse gate
    failed, 2 bad input (unreadable reports, unknown metric, or reports that
    are not like with like without --allow-different).
    """
    import shutil
    import textwrap

    from orderloom.simulation import (
        IncomparableReports,
        Role,
        format_p,
        to_html,
        to_markdown,
        to_summary,
        to_terminal,
    )
    from orderloom.simulation import compare as build

    if len(reports) < 2:
        raise click.UsageError("compare needs at least two reports")
    if cap is not None and precision_text is None:
        raise click.UsageError("--max-replications caps a --precision run; give --precision too")
    precision = _precision_option(precision_text)
    docs: list[dict[str, Any]] = []
    labels: list[str] = []
    for path in reports:
        file = path / "report.json" if path.is_dir() else path
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise click.BadParameter(f"{file}: not a readable report.json ({exc})") from exc
        if not isinstance(doc, dict) or "metrics" not in doc:
            raise click.BadParameter(f"{file}: not an orderloom report (no 'metrics')")
        docs.append(doc)
        labels.append(f"{doc.get('scenario', '?')}/{doc.get('policy', '?')}")
    if precision is not None:
        from ._compare_precision import extend_reports

        try:  # like with like before anything runs
            build(*docs, labels=labels, allow_different=allow_different)
        except IncomparableReports as exc:
            raise click.UsageError(str(exc)) from exc
        if cap is not None and cap < len(docs[0].get("replication_seeds", [])):
            raise click.UsageError(f"--max-replications ({cap}) is below the replications "
                                   "the reports already have")
        command = "orderloom compare " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        try:
            docs, paths, outcome = extend_reports(
                reports, docs, labels, target=precision, cap=cap or DEFAULT_MAX_REPLICATIONS,
                workers=workers, command=command, echo=click.echo,
                warn=lambda line: click.echo(line, err=True))
        except DocumentError as exc:
            _fail(exc)
            return
        for line in outcome.lines():
            click.echo(line)
        if list(paths) != list(reports):
            click.echo("extended reports: " + ", ".join(str(p) for p in paths))
    try:
        comparison = build(*docs, labels=labels, allow_different=allow_different)
    except IncomparableReports as exc:
        raise click.UsageError(str(exc)) from exc
    wanted = [m.strip() for gate in gates for m in gate.split(",") if m.strip()]
    known = {row.metric: row for row in comparison.rows}
    unknown = [m for m in wanted if m not in known]
    if unknown:
        hints = {m: difflib.get_close_matches(m, list(known), n=3) for m in unknown}
        raise click.UsageError("--fail-if-worse: no such metric in these reports: " + "; ".join(
            f"{m!r}" + (f" (did you mean {', '.join(h)}?)" if h else "")
            for m, h in hints.items()))
    width = shutil.get_terminal_size().columns
    click.echo(to_summary(comparison, width), nl=False)
    if full:
        click.echo("")
        click.echo(to_terminal(comparison), nl=False)
    else:
        hint = "(--full prints every metric" + (
            ")" if out is not None else "; --out DIR also writes compare.md and compare.html)")
        click.echo("\n".join(textwrap.wrap(hint, max(width, 20))))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(to_markdown(comparison), encoding="utf-8")
        (out / "compare.html").write_text(to_html(comparison), encoding="utf-8")
        click.echo(f"wrote {out / 'compare.md'} and {out / 'compare.html'}")
    def judged(metric: str, p_adjusted: float | None) -> str:
        if known[metric].role is Role.PRIMARY:
            return f"primary, Holm-adjusted p {format_p(p_adjusted)}"
        return "exploratory, unadjusted"

    failed = [f"{metric}: {label} is significantly worse than {labels[0]} "
              f"({delta.delta:+.4g} {known[metric].unit}, 95% CI "
              f"[{delta.ci_low:.4g}, {delta.ci_high:.4g}]; "
              f"{judged(metric, delta.p_adjusted)})"
              for metric in wanted
              for label, delta in zip(labels[1:], known[metric].deltas, strict=True)
              if delta.verdict == "worse" and delta.delta is not None
              and delta.ci_low is not None and delta.ci_high is not None]
    if failed:
        click.echo("gate failed (--fail-if-worse):\n  " + "\n  ".join(failed), err=True)
        sys.exit(1)


@main.group()
def report() -> None:
    """Look into a run's records."""


@report.command("trace")
@click.argument("order_id", required=False)
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False,
                                                                  path_type=Path),
              help="A run folder written by 'simulate --trace'.")
@click.option("--raw", is_flag=True,
              help="Every record that mentions the order, unabridged (clock time, seconds, "
                   "all fields).")
def trace(order_id: str | None, run_dir: Path, raw: bool) -> None:
    """Show ORDER_ID's history: one line per message it handled and what the
    order decided, each wrong action with the messages that led to it, and its
    final state. Without ORDER_ID: the orders with wrong actions or stuck spells."""
    from orderloom.simulation import (
        WRONG_MARK, TraceError, find_trace, order_story, raw_lines, read_trace, trace_overview,
    )

    try:
        path = find_trace(run_dir)
        records = read_trace(path)
    except TraceError as exc:
        raise click.BadParameter(str(exc), param_hint="'--run'") from exc
    if order_id is None:
        if raw:
            raise click.UsageError("--raw needs an ORDER_ID")
        listed = trace_overview(records)
        if not listed:
            click.echo(f"no order has a wrong action or a stuck spell in {path}")
            return
        click.echo(f"orders with wrong actions or stuck spells ({len(listed)}); "
                   f"see one with: orderloom report trace ORDER_ID --run {run_dir}")
        for line in listed:
            click.echo("  " + line)
        return
    lines = raw_lines(records, order_id) if raw else order_story(records, order_id)
    if not lines:
        raise click.ClickException(f"no record of order {order_id} in {path}")
    for line in lines:
        if WRONG_MARK in line:
            line = click.style(line, fg="red", bold=True)
        click.echo(line)


@main.command()
@click.argument("scenario")
@click.option("--param", "params", multiple=True, required=True,
              help="NAME=V1,V2,... e.g. policy=cautious,aggressive or "
                   "policy.fraud.review_above=0.5,0.7 (repeat for a grid).")
@click.option("--replications", "-n", type=click.IntRange(min=1))
@click.option("--seed", type=int)
@click.option("--workers", "-j", type=click.IntRange(min=1), default=os.cpu_count() or 1)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--horizon")
def sweep(scenario: str, params: tuple[str, ...], replications: int | None, seed: int | None,
          workers: int, out: Path | None, horizon: str | None) -> None:
    """Run SCENARIO over a grid of parameter values; one report with a chart per metric."""
    for line in run_warning_lines(scenario, horizon):
        click.echo(line, err=True)
    try:
        for line in sweep_grid(scenario, params, replications=replications, seed=seed,
                               workers=workers, out=out, horizon=horizon, echo=click.echo):
            click.echo(line)
    except DocumentError as exc:
        _fail(exc)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def _listing(entries: list[tuple[str, str]]) -> None:
    width = max((len(name) for name, _ in entries), default=0)
    for name, description in entries:
        click.echo(f"{name:<{width}}  {description}".rstrip())


@main.command("scenarios")
def scenarios_command() -> None:
    """List the scenarios shipped with orderloom (usable by name from any folder)."""
    from orderloom.simulation import builtin_scenarios, load_builtin_scenario

    try:
        _listing([(name, _first_line(load_builtin_scenario(name).description))
                  for name in builtin_scenarios()])
    except DocumentError as exc:
        _fail(exc)


@main.command("policies")
def policies_command() -> None:
    """List the policies shipped with orderloom (usable by name with --policy)."""
    from orderloom.actors import builtin_policies, load_builtin_policy

    try:
        _listing([(name, _first_line(load_builtin_policy(name).description))
                  for name in builtin_policies()])
    except DocumentError as exc:
        _fail(exc)


@main.group()
def init() -> None:
    """Write starter files to edit."""


@init.command("scenario")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Where to write it (default: NAME.yaml in the current folder); an "
                   "existing file is never overwritten.")
def init_scenario(name: str, out: Path | None) -> None:
    """Write a commented starter scenario called NAME that validates and runs as it is."""
    from orderloom.simulation import starter_scenario

    try:
        text = starter_scenario(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("NAME: "),
                                 param_hint="'NAME'") from exc
    path = out or Path(f"{name}.yaml")
    if path.exists():
        click.echo(f"{path}: already exists; not overwritten (remove it, or give "
                   "--out another file)", err=True)
        sys.exit(2)
    if not path.parent.is_dir():
        click.echo(f"{path}: its folder {path.parent} does not exist", err=True)
        sys.exit(2)
    try:
        with path.open("x", encoding="utf-8") as file:  # "x": never overwrite, even in a race
            file.write(text)
    except OSError as exc:
        click.echo(f"{path}: cannot be written: {exc.strerror}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path}; check it with: orderloom validate {shlex.quote(str(path))}; "
               f"run it with: orderloom simulate {shlex.quote(str(path))}")


@main.command()
@click.option("--seed", type=int, default=1, show_default=True, help="Run seed.")
@click.option("--orders", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Orders the customers place.")
@click.option("--no-outage", is_flag=True, help="Run without the gateway outage window.")
@click.option("--no-check", is_flag=True, help="Skip the determinism self-check.")
def demo(seed: int, orders: int, no_outage: bool, no_check: bool) -> None:
    """Run the small kernel demo (a checkout model) and print what happened."""
    from orderloom.simulation import run_demo

    result = run_demo(seed=seed, orders=orders, outage=None if no_outage else (600.0, 900.0),
                      check=not no_check)
    for line in result.lines():
        click.echo(line)


@main.command("wire-schema")
def wire_schema_command() -> None:
    """Print the JSON Schema of the wire envelope (what docs/wire-schema.json holds)."""
    from orderloom.actors import wire_codec

    click.echo(json.dumps(wire_codec().json_schema(), indent=2, ensure_ascii=False))


main.add_command(journal_group)
main.add_command(replay_command)


@main.command()
@click.argument("kind", metavar="KIND", type=click.Choice(
    ["address", "all", "downstream", "gateway", "support", "warehouse"]))
@click.option("--id", "ident", metavar="ID",
              help="Which warehouse (warehouse_id), support team (name) or downstream system "
                   "(system) of the scenario; not for gateway, address or all.")
@click.option("--without", multiple=True, metavar="ADDRESS",
              help="With 'all': leave this actor (gateway, warehouse/W1, team/fraud, finance, "
                   "address-service, ...) to another process; repeatable.")
@click.option("--scenario", "scenario_name", required=True, metavar="SCENARIO",
              help="The scenario whose world (and fault schedule) the actor comes from.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Kernel seconds per real second.")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, metavar="HOST:PORT",
              help="The MQTT broker.")
@click.option("--client-id", metavar="ID",
              help="MQTT client id (default orderloom-emulate-<address>, stable so that a "
                   "restart resumes the broker session and the requests queued meanwhile).")
@click.option("--start-hour", type=click.FloatRange(min=0, max=168, max_open=True),
              help="Scenario time at start, in hours from day 0's midnight (team shifts and "
                   "fault windows count from it); default 0.")
@click.option("--wall-clock", is_flag=True,
              help="Keep Unix time as orderloom serve does (team shifts follow the UTC hour; "
                   "the scenario's fault windows, in scenario time, never apply).")
@click.option("--ledger", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              metavar="FILE",
              help="Append one JSON line per command an emulated actor handled (message id, "
                   "recipient, type, order id, command id) to FILE.")
def emulate(kind: str, ident: str | None, without: tuple[str, ...], scenario_name: str,
            speed: float, broker: str, client_id: str | None, start_hour: float | None,
            wall_clock: bool, ledger: Path | None) -> None:
    """Run one of SCENARIO's simulated world actors (KIND, with --id) on the MQTT
    broker until SIGTERM or SIGINT (exit 0)."""
    from ._emulate import emulate_command

    try:
        emulate_command(kind, ident, scenario_name, speed, broker, client_id, start_hour,
                        without, wall_clock, ledger)
    except DocumentError as exc:
        _fail(exc)


@main.command()
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The serve config (YAML; see docs/serve.md; --example prints one).")
@click.option("--check", is_flag=True,
              help="Check the config (and its scenario and policy) and exit without serving.")
@click.option("--example", is_flag=True,
              help="Print an example config (every field, commented) and exit.")
def serve(config_path: Path | None, check: bool, example: bool) -> None:
    """Run the live coordinator: MQTT in and out, durable orders, HTTP health,
    readiness and Prometheus metrics, JSON logs on stderr.

    Stops gracefully on SIGTERM or SIGINT (exit 0). Exit codes: 0 stopped,
    1 a failure while running (broker, store, HTTP port), 2 a bad config.
    """
    import anyio

    from orderloom.runtime import CrashPointError, OrderloomError, armed_crash_point

    from ._serve import ServeError
    from ._serve import serve as run_serve
    from ._serve_config import ServeConfigError, load_serve_config
    from ._serve_log import configure_logging, log_event

    if example:
        if config_path is not None or check:
            raise click.UsageError("--example takes no --config or --check")
        click.echo(EXAMPLE_CONFIG.read_text(encoding="utf-8"), nl=False)
        return
    if config_path is None:
        raise click.UsageError("Missing option '--config' (or --example to print an example config).")
    try:
        armed_crash_point()  # a test setting: refused now if malformed (docs/serve.md)
    except CrashPointError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    try:
        config = load_serve_config(config_path)
    except ServeConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if check:
        click.echo(f"{config_path}: ok (scenario {config.scenario}, policy "
                   f"{config.settings.policy.name}, store {config.store.split(':', 1)[0]}, "
                   f"{len(config.desk_teams)} desk teams)")
        return
    configure_logging(config.log_level)
    try:
        anyio.run(functools.partial(run_serve, config, handle_signals=True),
                  backend="asyncio")
    except Exception as exc:  # noqa: BLE001 (the task groups wrap errors in groups)
        leaf: BaseException = exc
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if not isinstance(leaf, (OrderloomError, ServeError, OSError)):
            raise
        log_event("serve.failed", logging.ERROR, error=f"{type(leaf).__name__}: {leaf}")
        sys.exit(1)
