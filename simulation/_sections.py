"""The reading order of report metrics, and how their numbers are printed.

Shared by ``report.md`` / ``report.html`` and ``compare`` so every view lists
the five health metrics first and in the same order, and prints the same
number the same way (a report's Markdown must be byte-identical across two
runs of one seed, so formatting is fixed here rather than left to locale or
``repr``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "HEALTH_METRICS",
    "OTHER_SECTION",
    "PRIMARY_METRICS",
    "SECTIONS",
    "family_of",
    "format_ci",
    "format_number",
    "metric_estimate",
    "ordered_sections",
]

#: The health metrics of the mission, in the order every view lists them.
HEALTH_METRICS: tuple[str, ...] = (
    "stuck_orders",
    "exception_rate",
    "bounce_rate",
    "manual_overrides",
    "state_mismatches",
)

#: The primary metrics: one per concern a policy decision rests on (stuck
#: orders, exception rate, bounce rate, manual overrides, state mismatches,
#: wrong actions, throughput, end-to-end cycle time), in that order.
#: ``compare`` controls the family-wise error over them (Holm); every other
#: metric is exploratory. Counts rather than their ``.rate`` twins, since a
#: comparison only pairs runs of one world, horizon and warm-up;
#: ``throughput`` rather than ``throughput.per_hour`` (the same number over
#: the same horizon); the median end-to-end cycle time, since its tails
#: (``.p95``, ``.p99``) are noisier over a few replications.
PRIMARY_METRICS: tuple[str, ...] = (
    *HEALTH_METRICS,
    "wrong_actions",
    "throughput",
    "cycle_time.end_to_end.p50",
)

#: Section title and the metric families (dotted-name prefixes) it holds, in order.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Health metrics", HEALTH_METRICS),
    ("Wrong actions", ("wrong_actions",)),
    ("Throughput", ("throughput",)),
    ("Cycle time", ("cycle_time",)),
    ("SLA breaches", ("sla_breaches",)),
    ("Teams", ("queue_length", "utilisation")),
    ("Orders by final state", ("orders_by_final_state",)),
)
OTHER_SECTION = "Other metrics"

_TEAM_FAMILIES = ("queue_length", "utilisation")


def family_of(name: str, families: Iterable[str]) -> str | None:
    """The family (prefix at a dot boundary) of ``name`` among ``families``, if any."""
    for family in families:
        if name == family or name.startswith(family + "."):
            return family
    return None


def _sort_key(name: str, families: tuple[str, ...]) -> tuple[Any, ...]:
    family = family_of(name, families) or ""
    rank = families.index(family) if family else len(families)
    if family in _TEAM_FAMILIES:
        # Group per team: queue_length.<team> next to utilisation.<team>.
        rest = name[len(family) + 1:]
        team, _, tail = rest.partition(".")
        return (team, rank, tail)
    return ("", rank, name)


def ordered_sections(names: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Group metric names into the report's sections, each in its fixed order.

    Health metrics come first, family by family (``stuck_orders`` before
    ``exception_rate``, ...), each family's root before its breakdowns;
    per-team metrics are grouped by team; anything unclaimed goes to
    :data:`OTHER_SECTION`, sorted by name. Empty sections are left out.
    """
    remaining = set(names)
    out: list[tuple[str, list[str]]] = []
    for title, families in SECTIONS:
        members = [n for n in remaining if family_of(n, families) is not None]
        if members:
            out.append((title, sorted(members, key=lambda n: _sort_key(n, families))))
            remaining.difference_update(members)
    if remaining:
        out.append((OTHER_SECTION, sorted(remaining)))
    return out


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def format_number(value: object) -> str:
    """A number as reports print it: integers plainly, else six significant digits.

    ``None`` (a non-finite value after sanitising) and NaN print as ``—``;
    infinities as ``inf`` / ``-inf`` (a single replication's interval).
    """
    x = _as_float(value)
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0.0:
        return "0"  # also folds -0.0, which would otherwise print as "-0"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"


def format_ci(low: object, high: object) -> str:
    """A confidence interval as ``[low, high]``, or ``—`` if either end is unknown."""
    lo, hi = _as_float(low), _as_float(high)
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return "—"
    return f"[{format_number(lo)}, {format_number(hi)}]"


def metric_estimate(entry: object) -> tuple[float | None, float | None, float | None]:
    """``(mean, ci_low, ci_high)`` of one ``report["metrics"]`` entry; None where unusable."""
    if not isinstance(entry, Mapping):
        return (None, None, None)
    out: list[float | None] = []
    for key in ("mean", "ci_low", "ci_high"):
        x = _as_float(entry.get(key))
        out.append(x if x is not None and not math.isnan(x) else None)
    return (out[0], out[1], out[2])
