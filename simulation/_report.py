"""Writing a run's ``report.json``, ``report.md`` and ``report.html``.

The input is the document :func:`orderloom.simulation._result.aggregate`
builds. It is sanitised once (non-finite numbers become ``null``, tuples
become lists) and all three files are rendered from the sanitised copy, so
they say exactly what a later reader of ``report.json`` will see.

``report.md`` is the diffable one: it holds no timing field, its sections and
rows come in a fixed order (:mod:`._sections`), and its numbers are printed
by one formatter, so two runs of one seed give byte-identical Markdown.
"""

from __future__ import annotations

import html
import json
import math
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._replay import describe_replay
from ._result import metric_info
from ._series import timeline_of
from ._sections import (
    HEALTH_METRICS,
    family_of,
    format_ci,
    format_number,
    metric_estimate,
    ordered_sections,
)
from ._timechart import lifecycle_order, standard_charts

if TYPE_CHECKING:
    from ._charts import Bar

__all__ = ["render_html", "render_markdown", "sanitize", "write_report"]

_HEADER_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("scenario", ("scenario",)),
    ("policy", ("policy",)),
    ("seed", ("seed",)),
    ("replications", ("replications",)),
    ("horizon", ("horizon",)),
    ("warm-up", ("warm_up", "warmup", "warm-up")),
)
_PERCENTILES = ("p50", "p95", "p99")


def sanitize(value: Any) -> Any:
    """A JSON-ready copy: non-finite floats become None, tuples lists, keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    return value


def write_report(report: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir``.

    Args:
        report: the document from ``aggregate`` (or a loaded ``report.json``).
        out_dir: the directory to write into; created if missing.

    Returns:
        The written paths under the keys ``"json"``, ``"md"`` and ``"html"``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = sanitize(report)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md",
             "html": out_dir / "report.html"}
    paths["json"].write_text(
        json.dumps(clean, sort_keys=True, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(clean), encoding="utf-8")
    paths["html"].write_text(render_html(clean), encoding="utf-8")
    return paths


# -- shared reading ----------------------------------------------------------------


def _header(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for label, keys in _HEADER_FIELDS:
        value = next((report[k] for k in keys if k in report), None)
        if value is None and label == "replications":
            seeds = report.get("replication_seeds")
            value = len(seeds) if isinstance(seeds, list) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            text = format_number(value)
        else:
            text = "—" if value is None else str(value)
        rows.append((label, text))
    replay = report.get("replay")
    if isinstance(replay, Mapping):  # a replay says so, and of what
        rows.append(("replay of", describe_replay(replay)))
    return rows


def _metrics(report: Mapping[str, Any]) -> Mapping[str, Any]:
    metrics = report.get("metrics")
    return metrics if isinstance(metrics, Mapping) else {}


def _metric_row(name: str, entry: object) -> tuple[str, str, str, str]:
    mean, low, high = metric_estimate(entry)
    unit = entry.get("unit") if isinstance(entry, Mapping) else None
    return (name, format_number(mean), format_ci(low, high),
            str(unit) if unit is not None else metric_info(name).unit)


def _sections(report: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Rows per section; a health or wrong-action family absent from the run says so."""
    metrics = _metrics(report)
    missing = [f for f in (*HEALTH_METRICS, "wrong_actions")
               if not any(family_of(m, (f,)) for m in metrics)]
    return [(title, [_metric_row(n, metrics[n]) if n in metrics
                     else (n, "not recorded", "—", metric_info(n).unit) for n in names])
            for title, names in ordered_sections([*metrics, *missing])]


def _reproduce(report: Mapping[str, Any]) -> str | None:
    command = report.get("reproduce")
    if isinstance(command, str) and command:
        return command
    if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        return shlex.join(command)
    return None


def _examples(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    examples = report.get("wrong_action_examples")
    if not isinstance(examples, Mapping):
        return []
    return sorted((str(k), str(v)) for k, v in examples.items())


# -- Markdown ----------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Mapping[str, Any]) -> str:
    """The diffable summary: header, then metric tables in the fixed section order."""
    scenario = report.get("scenario", "—")
    lines = [f"# Simulation report: {_md_cell(str(scenario))}", "", "| field | value |",
             "|---|---|"]
    lines += [f"| {label} | {_md_cell(text)} |" for label, text in _header(report)]
    for title, rows in _sections(report):
        lines += ["", f"## {title}", "", "| metric | mean | 95% CI | unit |",
                  "|---|---:|---|---|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        if title == "Wrong actions":
            lines += _md_wrong_actions(report)
    return "\n".join(lines) + "\n"


def _md_wrong_actions(report: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    examples = _examples(report)
    if examples:
        lines += ["", "Example orders:", ""]
        lines += [f"- `{inv}`: {_md_cell(order)}" for inv, order in examples]
    command = _reproduce(report)
    if command is not None:
        lines += ["", "Reproduce:", "", "```sh", command, "```"]
    return lines


# -- HTML --------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { color: #444; font-size: 0.9em; }
p.note { color: #777; font-style: italic; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _bars(report: Mapping[str, Any], prefix: str) -> list[Bar]:
    bars: list[Bar] = []
    for name, entry in sorted(_metrics(report).items()):
        if name.startswith(prefix + "."):
            mean, low, high = metric_estimate(entry)
            if mean is not None:
                bars.append((name[len(prefix) + 1:], mean, low, high))
    return bars


def _replications(report: Mapping[str, Any]) -> str:
    seeds = report.get("replication_seeds")
    n = len(seeds) if isinstance(seeds, list) else None
    return f"{n} replications" if n is not None and n != 1 else "one replication"


def _cycle_time_chart(report: Mapping[str, Any]) -> str | None:
    from ._charts import percentile_chart
    found: dict[str, list[Bar]] = {p: [] for p in _PERCENTILES}
    stages: set[str] = set()
    for name, entry in _metrics(report).items():
        stage, _, pct = name.removeprefix("cycle_time.").rpartition(".")
        mean, low, high = metric_estimate(entry)
        if name.startswith("cycle_time.") and stage and pct in found and mean is not None:
            found[pct].append((stage, mean, low, high))
            stages.add(stage)
    if not stages:
        return None
    order = lifecycle_order(sorted(stages))
    rank = {s: i for i, s in enumerate(order)}
    by_pct = {p: sorted(bars, key=lambda b: rank[b[0]]) for p, bars in found.items() if bars}
    return percentile_chart("Time in each stage, percentiles", order, by_pct)


#: ``(title, data URI or None, why it is missing, caption)`` of one chart.
Chart = tuple[str, str | None, str, str]


def _charts(report: Mapping[str, Any]) -> list[Chart]:
    """Every chart of the page, in page order."""
    # Imported here so that importing this module (or a package re-exporting
    # write_report) does not load matplotlib until a page is actually drawn.
    from ._charts import bar_chart, render_time_chart

    charts: list[Chart] = []
    timeline = timeline_of(report, str(report.get("policy", "")))
    for title, chart, why in standard_charts([timeline]):
        charts.append((title, None if chart is None else render_time_chart(chart),
                       f"{why} in this report", "" if chart is None else chart.caption))
    runs = _replications(report)
    charts.append(("Time in each stage, percentiles", _cycle_time_chart(report),
                   "no metrics 'cycle_time.<stage>.p50/p95/p99' in this report",
                   f"Per stage in lifecycle order (end_to_end: placed to shipped), the mean "
                   f"over {runs} of each replication's p50, p95 and p99 time in the stage, "
                   f"orders placed after the warm-up; whiskers: 95% CI of the mean. "
                   f"Linear axis from 0; each bar is labelled with its value."))
    for title, prefix, xlabel in (
        ("Exceptions by reason", "exception_rate.by_reason", "cases per placed order"),
        ("Manual overrides by team", "manual_overrides.by_team", "decisions"),
        ("Manual overrides by reason", "manual_overrides.by_reason", "decisions"),
        ("Bounces by team pair", "bounce_rate.by_pair", "bounces per case"),
    ):
        bars = _bars(report, prefix)
        charts.append((title, bar_chart(f"{title} (mean, 95% CI)", xlabel, bars)
                       if bars else None, f"no metrics '{prefix}.*' in this report",
                       f"Mean over {runs} ({xlabel}), largest first; whiskers: 95% CI of "
                       f"the mean. Orders placed after the warm-up."))
    return charts


def render_html(report: Mapping[str, Any]) -> str:
    """A self-contained page: inline CSS, charts as base64 PNG, the metric tables."""
    scenario = str(report.get("scenario", "—"))
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>orderloom report: {_e(scenario)}</title>", f"<style>{_CSS}</style>",
           "</head>", "<body>", f"<h1>Simulation report: {_e(scenario)}</h1>", "<table>"]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _header(report)]
    out += ["</table>", "<h2>Charts</h2>"]
    for title, uri, note, caption in _charts(report):
        if uri is None:
            out.append(f'<p class="note">{_e(title)}: chart skipped, {_e(note)}.</p>')
        else:
            out.append(f'<figure><img src="{uri}" alt="{_e(title)}">'
                       f"<figcaption>{_e(caption)}</figcaption></figure>")
    for title, rows in _sections(report):
        out += [f"<h2>{_e(title)}</h2>", "<table>",
                "<tr><th>metric</th><th>mean</th><th>95% CI</th><th>unit</th></tr>"]
        out += [f"<tr><td>{_e(n)}</td><td class=\"num\">{_e(m)}</td>"
                f"<td class=\"num\">{_e(ci)}</td><td>{_e(u)}</td></tr>" for n, m, ci, u in rows]
        out.append("</table>")
        if title == "Wrong actions":
            out += _html_wrong_actions(report)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_wrong_actions(report: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    examples: Sequence[tuple[str, str]] = _examples(report)
    if examples:
        out += ["<p>Example orders:</p>", "<ul>"]
        out += [f"<li><code>{_e(inv)}</code>: {_e(order)}</li>" for inv, order in examples]
        out.append("</ul>")
    command = _reproduce(report)
    if command is not None:
        out += ["<p>Reproduce:</p>", f"<pre>{_e(command)}</pre>"]
    return out
