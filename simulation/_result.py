"""What one replication yields, and what a report aggregates.

The metrics collector turns a run's telemetry into a
:class:`ReplicationResult`; :func:`aggregate` combines replications into the
``report.json`` document that reports and ``compare`` read. Metric names are
part of the public interface (dotted, e.g. ``exception_rate.by_reason.duplicate_order``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._series import aggregate_series
from ._stats import summarize

__all__ = ["MetricInfo", "ReplicationResult", "aggregate", "is_sampled", "metric_info"]

REPORT_FORMAT = 1


@attrs.frozen(kw_only=True)
class MetricInfo:
    """How to read one metric: its unit and which direction is better."""

    unit: str
    lower_is_better: bool | None  # None: neither (e.g. throughput counts are context)
    description: str


# Families of metrics by prefix; the longest matching prefix wins.
_FAMILIES: dict[str, MetricInfo] = {
    "orders.placed": MetricInfo(unit="orders", lower_is_better=None,
                                description="orders placed after warm-up"),
    "throughput": MetricInfo(unit="orders", lower_is_better=False,
                             description="orders fully shipped (placed after warm-up)"),
    "orders_closed": MetricInfo(unit="orders", lower_is_better=None,
                                description="orders closed (delivered and paid) in the run"),
    "exceptions": MetricInfo(unit="cases", lower_is_better=True,
                             description="exception cases opened"),
    "handoffs": MetricInfo(unit="handoffs", lower_is_better=True,
                           description="moves of a case between teams"),
    "throughput_cases": MetricInfo(unit="cases", lower_is_better=None,
                                   description="cases a team decided"),
    "time_in_team": MetricInfo(unit="s", lower_is_better=True,
                               description="mean time from a case reaching a team to its decision"),
    "busy": MetricInfo(unit="reviewers", lower_is_better=None,
                       description="time-average reviewers busy"),
    "actions": MetricInfo(unit="commands", lower_is_better=None,
                          description="commands the orders accepted, by type"),
    "unreviewed_irreversible": MetricInfo(
        unit="actions", lower_is_better=True,
        description="irreversible actions on an exception path with no person's decision"),
    "gateway_timeouts": MetricInfo(unit="requests", lower_is_better=True,
                                   description="gateway requests whose outcome became unknown"),
    "handler_failures": MetricInfo(unit="failures", lower_is_better=True,
                                   description="actor handlers that raised"),
    "throughput.per_hour": MetricInfo(unit="orders/h", lower_is_better=False,
                                      description="completed orders per simulated hour"),
    "stuck_orders": MetricInfo(unit="orders", lower_is_better=True,
                               description="orders that missed a stage deadline"),
    "stuck_orders.rate": MetricInfo(unit="share", lower_is_better=True,
                                    description="stuck orders per placed order"),
    "stuck_orders.age": MetricInfo(unit="s", lower_is_better=True,
                                   description="each stuck spell's time in its stage, once: "
                                               "when the order moved on, or at the end"),
    "exception_rate": MetricInfo(unit="cases/order", lower_is_better=True,
                                 description="exception cases opened per placed order"),
    "bounce_rate": MetricInfo(unit="bounces/case", lower_is_better=True,
                              description="A→B→A handoffs per exception case"),
    "manual_overrides": MetricInfo(unit="decisions", lower_is_better=True,
                                   description="human decisions departing from the proposal"),
    "manual_overrides.rate": MetricInfo(unit="share", lower_is_better=True,
                                        description="overrides per human decision on a proposal "
                                                    "(reassignments excluded)"),
    "state_mismatches": MetricInfo(unit="orders", lower_is_better=True,
                                   description="orders whose downstream view disagreed"),
    "state_mismatches.rate": MetricInfo(unit="share", lower_is_better=True,
                                        description="mismatched orders per placed order"),
    "state_mismatches.total_duration": MetricInfo(unit="s", lower_is_better=True,
                                                  description="summed time of disagreement"),
    "state_mismatches.max_duration": MetricInfo(unit="s", lower_is_better=True,
                                                description="longest disagreement"),
    "wrong_actions": MetricInfo(unit="actions", lower_is_better=True,
                                description="invariant violations (cascading mistakes)"),
    "cycle_time": MetricInfo(unit="s", lower_is_better=True,
                             description="time in each stage; end_to_end: placed to shipped"),
    "sla_breaches": MetricInfo(unit="cases", lower_is_better=True,
                               description="cases decided after their deadline or still open past it"),
    "queue_length": MetricInfo(unit="cases", lower_is_better=True,
                               description="time-average cases waiting per team"),
    "utilisation": MetricInfo(unit="share", lower_is_better=None,
                              description="reviewers busy within their shift over reviewers "
                                          "on duty (at most 1)"),
    "overtime": MetricInfo(unit="reviewer-h", lower_is_better=True,
                           description="review work running past the reviewers' shifts"),
    "wait_time": MetricInfo(unit="s", lower_is_better=True,
                            description="mean time a case waited for a reviewer"),
    "orders_by_final_state": MetricInfo(unit="orders", lower_is_better=None,
                                        description="orders by terminal state"),
    "reviewer_errors": MetricInfo(unit="decisions", lower_is_better=True,
                                  description="simulated reviewer decisions contradicting the truth"),
    "events_ignored": MetricInfo(unit="events", lower_is_better=None,
                                 description="duplicate / stale / rejected events kept out"),
    "commands_refused": MetricInfo(unit="commands", lower_is_better=None,
                                   description="commands an order refused"),
    "dead_letters": MetricInfo(unit="messages", lower_is_better=True,
                               description="messages no actor handled"),
}


# Statistics of samples (quantiles, means of durations) and ratios of a
# whole that can be empty (a bounce rate with no case, a utilisation with no
# one on duty): a replication with no sample, or nothing to divide by, has
# no value, which is not a value of 0. Everything else is a count, or a
# breakdown share where a missing key means 0 occurrences.
_SAMPLED = ("cycle_time", "stuck_orders.age", "time_in_team", "utilisation")
_RATIOS = frozenset({"stuck_orders.rate", "exception_rate", "bounce_rate",
                     "manual_overrides.rate", "state_mismatches.rate"})


def is_sampled(name: str) -> bool:
    """Whether ``name`` summarises samples or is a ratio of a whole that can be
    empty, so that absent means "no value", not 0."""
    return name in _RATIOS or any(name == f or name.startswith(f + ".") for f in _SAMPLED)


def metric_info(name: str) -> MetricInfo:
    """The unit and direction of a metric, by its longest matching family."""
    best = ""
    for prefix in _FAMILIES:
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if best:
        return _FAMILIES[best]
    return MetricInfo(unit="", lower_is_better=None, description="")


@attrs.frozen(kw_only=True)
class ReplicationResult:
    """The outcome of one replication.

    Attributes:
        replication: its index (0-based); with the run seed it names the
            world's random streams, so replication k of two policies faces
            the same orders, faults and staffing.
        seed: the replication's own seed.
        metrics: scalar metrics by dotted name.
        series: time series by name, each a list of ``(time, value)``
            (e.g. ``stuck_orders``, ``queue_length.<team>``).
        examples: for each wrong-action invariant, an example order id.
        fault_windows: ``(start, end, label)`` of the faults in force.
        wall_seconds: how long the replication took (a timing field).
        messages: messages the kernel delivered.
    """

    replication: int
    seed: int
    metrics: dict[str, float]
    series: dict[str, list[tuple[float, float]]] = attrs.Factory(dict)
    examples: dict[str, str] = attrs.Factory(dict)
    fault_windows: list[tuple[float, float, str]] = attrs.Factory(list)
    wall_seconds: float = 0.0
    messages: int = 0


def aggregate(
    results: Sequence[ReplicationResult], *, header: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``report.json`` document for a set of replications.

    Every metric gets its per-replication values, mean and 95% confidence
    interval, and ``n``, the replications it is estimated from. A count
    missing from a replication counts as 0 (a reason that never occurred
    occurred 0 times). A statistic of samples (``cycle_time.*``,
    ``stuck_orders.age.*``, ``time_in_team.*``) missing from a replication had
    no sample there: its value is ``null`` and the estimate uses the
    replications that have one (absent is not zero). Series are combined point
    by point into their mean (``series``) and the 95% interval of that mean
    (``series_band``) by :func:`._series.aggregate_series`; ``fault_windows``
    holds every replication's windows, each once. Every metric is a count, rate, share or
    duration, so it cannot be negative: the Student's t interval is cut at
    0 (cutting an interval to the values the mean can take never makes it
    miss the true mean more often), and a rare count reads ``[0, 0.76]``, not
    ``[-0.36, 0.76]``.
    """
    ordered = sorted(results, key=lambda r: r.replication)
    names = sorted({name for r in ordered for name in r.metrics})
    metrics: dict[str, Any] = {}
    for name in names:
        raw: list[float | None]
        if is_sampled(name):
            raw = [None if (v := r.metrics.get(name)) is None else float(v) for r in ordered]
        else:
            raw = [float(r.metrics.get(name, 0.0)) for r in ordered]
        values = [v for v in raw if v is not None]
        s = summarize(values)
        info = metric_info(name)
        metrics[name] = {
            "values": raw,
            "n": len(values),
            "mean": s.mean,
            "ci_low": max(s.ci_low, 0.0) if len(values) > 1 else s.mean,
            "ci_high": s.ci_high if len(values) > 1 else s.mean,
            "unit": info.unit,
            "lower_is_better": info.lower_is_better,
        }
    examples: dict[str, str] = {}
    for r in ordered:
        for invariant, order_id in r.examples.items():
            examples.setdefault(invariant, f"{order_id} (replication {r.replication})")
    means, bands = aggregate_series([r.series for r in ordered])
    windows: list[tuple[float, float, str]] = []
    for r in ordered:  # a swarm draws its faults per replication
        windows += [w for w in r.fault_windows if w not in windows]
    return {
        "format": REPORT_FORMAT,
        **header,
        "replication_seeds": [r.seed for r in ordered],
        "metrics": metrics,
        "series": means,
        "series_band": bands,
        "series_replications": len(ordered),
        "fault_windows": windows,
        "wrong_action_examples": examples,
        "timing": {
            "wall_seconds": [r.wall_seconds for r in ordered],
            "messages": [r.messages for r in ordered],
        },
    }
