"""orderloom.simulation: the SimPy kernel and the policy simulator."""

from __future__ import annotations

from ._api import ProgressDisplay, ProgressListener, ReportLike, compare, resolve_run, simulate
from ._compare import Comparison, ComparisonRow, Delta, Estimate, IncomparableReports, Role
from ._compare_render import to_html, to_markdown, to_terminal
from ._compare_summary import format_p, to_summary
from ._demo import run_demo
from ._determinism import DeterminismReport, check_determinism
from ._faults import LinkFaults
from ._grid import SweepAxis, SweepPoint, parse_sweep_params, sweep_points
from ._kernel import SimKernel
from ._precision import (
    DEFAULT_MAX_REPLICATIONS,
    MetricPrecision,
    PrecisionOutcome,
    PrecisionStatus,
    difference_precision,
    mean_precision,
    parse_precision,
    run_to_precision,
    values_of,
)
from ._provenance import (
    Provenance,
    ReportError,
    provenance_data,
    provenance_of,
    read_provenance,
    rerun_warnings,
    software_versions,
)
from ._queueing import MMcMetrics, mmc_metrics
from ._replay import (
    DEFAULT_DRAIN,
    JournalError,
    Recording,
    ReplayedAction,
    ReplayStorefront,
    describe_replay,
    read_recording,
    recording_from_records,
)
from ._replay_run import replay
from ._report import write_report
from ._result import ReplicationResult, aggregate
from ._run_report import MetricSummary, Report, run_header
from ._runner import run_replication, run_replications, world_for
from ._scenario import (
    Scenario,
    ScenarioError,
    builtin_scenarios,
    load_builtin_scenario,
    load_scenario,
    resolve_scenario,
    world_digest,
)
from ._scenario_checks import ScenarioWarning, scenario_sections, scenario_warnings
from ._starter import starter_scenario
from ._stats import Summary, summarize, welch_difference
from ._sweep import write_sweep
from ._trace import TRACE_FILE, TraceError, find_trace, read_trace, stale_trace_files, write_trace
from ._trace_report import (
    WRONG_MARK,
    causal_chain,
    clock,
    order_story,
    raw_lines,
    trace_overview,
)
from ._warmup import MserCut, WarmUpSuggestion, mser, suggest_warm_up
from ._world import WorldConfig, build_world, world_actors

__all__ = [
    "Comparison",
    "ComparisonRow",
    "DEFAULT_DRAIN",
    "DEFAULT_MAX_REPLICATIONS",
    "Delta",
    "DeterminismReport",
    "Estimate",
    "IncomparableReports",
    "JournalError",
    "LinkFaults",
    "MMcMetrics",
    "MetricPrecision",
    "MetricSummary",
    "MserCut",
    "PrecisionOutcome",
    "PrecisionStatus",
    "ProgressDisplay",
    "ProgressListener",
    "Provenance",
    "Recording",
    "ReplayStorefront",
    "ReplayedAction",
    "ReplicationResult",
    "Report",
    "ReportError",
    "ReportLike",
    "Role",
    "Scenario",
    "ScenarioError",
    "ScenarioWarning",
    "SimKernel",
    "Summary",
    "SweepAxis",
    "SweepPoint",
    "TRACE_FILE",
    "TraceError",
    "WRONG_MARK",
    "WarmUpSuggestion",
    "WorldConfig",
    "aggregate",
    "build_world",
    "builtin_scenarios",
    "causal_chain",
    "check_determinism",
    "clock",
    "compare",
    "describe_replay",
    "difference_precision",
    "find_trace",
    "format_p",
    "load_builtin_scenario",
    "load_scenario",
    "mean_precision",
    "mmc_metrics",
    "mser",
    "order_story",
    "parse_precision",
    "parse_sweep_params",
    "provenance_data",
    "provenance_of",
    "raw_lines",
    "read_provenance",
    "read_recording",
    "read_trace",
    "recording_from_records",
    "replay",
    "rerun_warnings",
    "resolve_run",
    "resolve_scenario",
    "run_demo",
    "run_header",
    "run_replication",
    "run_replications",
    "run_to_precision",
    "scenario_sections",
    "scenario_warnings",
    "simulate",
    "software_versions",
    "stale_trace_files",
    "starter_scenario",
    "suggest_warm_up",
    "summarize",
    "sweep_points",
    "to_html",
    "to_markdown",
    "to_summary",
    "to_terminal",
    "trace_overview",
    "values_of",
    "welch_difference",
    "world_actors",
    "world_digest",
    "world_for",
    "write_report",
    "write_sweep",
    "write_trace",
]
