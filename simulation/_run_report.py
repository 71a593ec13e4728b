"""A run's report as a typed value: what :func:`simulate` returns and
:func:`compare` takes.

``report.json`` stays the record (the CLI writes it, ``compare`` and
``simulate --from`` read it); :class:`Report` is the typed view of one such
document, holding the document itself so that :meth:`Report.to_dict` gives
back exactly what ``report.json`` holds, whatever its fields.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from orderloom.actors import did_you_mean

from ._precision import MetricPrecision, PrecisionOutcome, PrecisionStatus
from ._provenance import (
    ReportError,
    provenance_data,
    provenance_in,
    provenance_of,
    read_report_document,
    software_versions,
)
from ._report import sanitize, write_report
from ._result import ReplicationResult, aggregate, metric_info
from ._scenario import Scenario, world_digest
from ._warmup import WarmUpSuggestion

__all__ = ["MetricSummary", "Report", "run_header"]


@attrs.frozen(kw_only=True)
class MetricSummary:
    """One metric of a report: its per-replication values and their 95% CI.

    Invariant: ``ci_low <= mean <= ci_high`` where all three are finite. The
    interval is Student's t over the replications with a value, cut at 0
    below (no metric can be negative); with one value it is the value
    itself, and ``half_width`` is ``inf`` (the spread is unknown).

    Attributes:
        name: the dotted metric name (``wrong_actions``, ``cycle_time.end_to_end.p95``).
        mean: the mean over the replications with a value (nan if none is finite).
        ci_low: lower bound of the 95% CI.
        ci_high: upper bound of the 95% CI.
        n: the replications with a value (a statistic of samples has none
            where a replication had no sample: absent is not zero).
        unit: its unit (``orders``, ``s``, ``share``, ...).
        lower_is_better: its direction; None when neither is better.
        values: the value of each replication, in replication order (None: no sample).
    """

    name: str
    mean: float
    ci_low: float
    ci_high: float
    n: int
    unit: str
    lower_is_better: bool | None
    values: tuple[float | None, ...]

    @property
    def half_width(self) -> float:
        """The 95% CI half-width (``ci_high - mean``: the low side may be cut
        at 0); ``inf`` with fewer than two values."""
        return self.ci_high - self.mean if self.n > 1 else math.inf

    @property
    def description(self) -> str:
        """What the metric counts, from the metric catalogue (``docs/metrics.md``)."""
        return metric_info(self.name).description


def run_header(scenario: Scenario, results: Sequence[ReplicationResult]) -> dict[str, Any]:
    """The report header of a run of the resolved ``scenario``: what compare
    reads, and the provenance a rerun reads."""
    return {
        "scenario": scenario.name, "policy": scenario.policy.name, "seed": scenario.seed,
        "replications": scenario.replications, "horizon": scenario.horizon,
        "warm_up": scenario.warm_up, "world": world_digest(scenario),
        "versions": software_versions(),
        "provenance": provenance_data(provenance_of(scenario, results)),
    }


def _number(value: object) -> float:
    """A JSON number as a float; nan for null (a non-finite value written out) or junk."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _optional(value: object) -> float | None:
    if value == "inf":
        return math.inf
    return None if value is None else _number(value)


def _summary(name: str, entry: Mapping[str, Any]) -> MetricSummary:
    raw = entry.get("values")
    values = tuple(None if v is None else _number(v) for v in raw) \
        if isinstance(raw, list) else ()
    n = entry.get("n")
    lib = entry.get("lower_is_better")
    return MetricSummary(
        name=name, mean=_number(entry.get("mean")), ci_low=_number(entry.get("ci_low")),
        ci_high=_number(entry.get("ci_high")),
        n=n if isinstance(n, int) else sum(v is not None for v in values),
        unit=str(entry.get("unit", metric_info(name).unit)),
        lower_is_better=lib if isinstance(lib, bool) else None, values=values)


def _warm_up(data: object) -> WarmUpSuggestion | None:
    """The suggestion back from its ``as_dict`` form; None if absent or unreadable."""
    if not isinstance(data, Mapping):
        return None
    try:
        cuts = data.get("cuts", {})
        return WarmUpSuggestion(
            configured=float(data["configured"]),
            suggested=_optional(data.get("suggested")),
            series=None if data.get("series") is None else str(data["series"]),
            unsettled=tuple(str(s) for s in data.get("unsettled", ())),
            cuts=tuple((str(k), float(c["at"]), bool(c["reliable"])) for k, c in cuts.items()))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _reference(m: Mapping[str, Any]) -> float | None:
    """The magnitude a half-width was held to, from what ``as_dict`` kept of it."""
    half, relative, mean = (_optional(m.get("half_width")),
                            _optional(m.get("relative_half_width")), _optional(m.get("mean")))
    if half is None or relative is None:
        return None
    if math.isinf(relative):
        return 0.0
    if relative == 0:
        return abs(mean) if mean is not None else 0.0
    return half / relative


def _precision(data: object) -> PrecisionOutcome | None:
    """The outcome back from its ``as_dict`` form; None if absent or unreadable."""
    if not isinstance(data, Mapping):
        return None
    try:
        metrics = tuple(
            MetricPrecision(metric=str(name), n=int(m["n"]), mean=_optional(m.get("mean")),
                            half_width=_optional(m.get("half_width")), reference=_reference(m),
                            status=PrecisionStatus(m["status"]))
            for name, m in data.get("metrics", {}).items())
        last = data.get("last_to_converge")
        return PrecisionOutcome(
            target=float(data["target"]), started=int(data["started"]),
            replications=int(data["replications"]), cap=int(data["cap"]),
            reached=bool(data["reached"]), last=None if last is None else str(last),
            metrics=metrics, rounds=tuple(int(r) for r in data.get("rounds", ())),
            against=str(data.get("against", "its mean")))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


@attrs.frozen(kw_only=True)
class Report:
    """One run of a scenario under a policy: its header, metrics and records.

    Build one with :func:`simulate`, :meth:`from_results` or :meth:`load`;
    :meth:`to_dict` is the ``report.json`` document.

    Attributes:
        scenario: the scenario's name.
        policy: the policy's name.
        seed: the run seed (None if the report does not say).
        replications: how many replications ran.
        horizon: simulated seconds per replication (None if the report does not say).
        warm_up: the seconds at the start that the metrics leave out.
        replication_seeds: replication k's own seed, per replication.
        metrics: each metric's summary, by dotted name.
        examples: for each wrong-action invariant broken, an example order
            (``"<order id> (replication k)"``).
        reproduce: the command that runs it again (None if the report has none).
        warm_up_suggestion: MSER-5's reading of the warm-up (None if not recorded).
        precision: how a precision run ended (None if the run was not one).
        run: the resolved scenario that ran (its policy, seed, replications,
            horizon), from the run itself or the report's provenance; None when
            a loaded report has no readable provenance.
        results: each replication's result, in replication order; empty for
            a loaded report (``report.json`` keeps the values, not the results).
        paths: the files written (``json``, ``md``, ``html`` and, with a
            trace, ``trace``); empty when nothing was written.
        replay: for a replay (``orderloom replay``), what it replayed: the
            journal file (``source``), its ``orders``, ``cancels`` and
            ``events``, the journal times ``first_at`` and ``last_at``, their
            ``span``, the ``horizon`` and the ``actions`` digest; None for a
            run of the scenario's own demand.
    """

    scenario: str
    policy: str
    seed: int | None
    replications: int
    horizon: float | None
    warm_up: float | None
    replication_seeds: tuple[int, ...]
    metrics: Mapping[str, MetricSummary]
    examples: Mapping[str, str] = attrs.field(factory=dict)
    reproduce: str | None = None
    warm_up_suggestion: WarmUpSuggestion | None = None
    precision: PrecisionOutcome | None = None
    run: Scenario | None = attrs.field(default=None, repr=False)
    results: tuple[ReplicationResult, ...] = attrs.field(default=(), repr=False)
    paths: Mapping[str, Path] = attrs.field(factory=dict)
    replay: Mapping[str, Any] | None = None
    _document: Mapping[str, Any] = attrs.field(alias="document", repr=False)

    @property
    def label(self) -> str:
        """``scenario/policy``: how ``compare`` names the report by default."""
        return f"{self.scenario}/{self.policy}"

    def metric(self, name: str) -> MetricSummary:
        """The summary of metric ``name``.

        Raises:
            KeyError: the report has no such metric (with the nearest names).
                A count that never occurred in any replication is absent
                from the report too, so absent here can mean 0 occurrences.
        """
        try:
            return self.metrics[name]
        except KeyError:
            hint = did_you_mean(name, self.metrics)
            raise KeyError(f"no metric {name!r} in this report"
                           + (f"; {hint}" if hint else "")) from None

    def to_dict(self) -> dict[str, Any]:
        """The ``report.json`` document (a copy: changing it changes no report)."""
        return copy.deepcopy(dict(self._document))

    def write(self, out: Path | str) -> Report:
        """Write ``report.json``, ``report.md`` and ``report.html`` into the
        folder ``out`` (created if missing); return the report with their paths."""
        paths = write_report(self._document, Path(out))
        return attrs.evolve(self, paths={**self.paths, **paths})

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], *, source: str = "report") -> Report:
        """The typed view of a ``report.json`` document (loaded, or from ``aggregate``).

        Fields the document lacks are None (or empty); a metric entry that is
        not a mapping is left out of ``metrics`` (``to_dict`` still has it).
        ``source`` names the document in a provenance error (which is not
        raised: such a report just has no ``run``).
        """
        doc = copy.deepcopy(dict(document))
        metrics = doc.get("metrics")
        seeds = doc.get("replication_seeds")
        seed_list = [int(s) for s in seeds if isinstance(s, int)] if isinstance(seeds, list) else []
        replications = doc.get("replications")
        seed = doc.get("seed")
        examples = doc.get("wrong_action_examples")
        try:
            run: Scenario | None = provenance_in(doc, source).scenario
        except ReportError:
            run = None
        horizon, warm_up = _optional(doc.get("horizon")), _optional(doc.get("warm_up"))
        reproduce = doc.get("reproduce")
        return cls(
            scenario=str(doc.get("scenario", "?")), policy=str(doc.get("policy", "?")),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            replications=(replications if isinstance(replications, int)
                          else len(seed_list)),
            horizon=horizon, warm_up=warm_up, replication_seeds=tuple(seed_list),
            metrics={str(name): _summary(str(name), entry)
                     for name, entry in metrics.items() if isinstance(entry, Mapping)}
            if isinstance(metrics, Mapping) else {},
            examples={str(k): str(v) for k, v in examples.items()}
            if isinstance(examples, Mapping) else {},
            reproduce=reproduce if isinstance(reproduce, str) else None,
            warm_up_suggestion=_warm_up(doc.get("warm_up_suggestion")),
            precision=_precision(doc.get("precision")), run=run,
            replay=dict(doc["replay"]) if isinstance(doc.get("replay"), Mapping) else None,
            document=doc)

    @classmethod
    def load(cls, path: Path | str) -> Report:
        """Read a ``report.json``, or the one in a run folder.

        Raises:
            ReportError: the file cannot be read, is not JSON, or is not a
                report (no ``metrics``).
        """
        doc, source = read_report_document(Path(path))
        if not isinstance(doc.get("metrics"), Mapping):
            raise ReportError(source, ["metrics: required field missing (not an "
                                       "orderloom report)"])
        return cls.from_dict(doc, source=source)

    @classmethod
    def from_results(
        cls, scenario: Scenario, results: Sequence[ReplicationResult], *,
        command: str | None = None, reproduce: str | None = None,
        precision: PrecisionOutcome | None = None,
        warm_up_suggestion: WarmUpSuggestion | None = None,
        replay: Mapping[str, Any] | None = None,
    ) -> Report:
        """The report of ``results``, replications of the resolved ``scenario``
        (its policy, seed and replications), as ``orderloom simulate`` writes it.

        Args:
            scenario: the scenario as it ran.
            results: its replications' results.
            command: the command line that ran it, recorded as is.
            reproduce: the command that runs it again, recorded as is.
            precision: the outcome, if it was a precision run.
            warm_up_suggestion: MSER-5's reading, if taken.
            replay: the ``replay`` block of a replay (see the attribute); its
                ``actions`` digest joins the world digest, so ``compare``
                pairs a replay only with replays of the same journal.
        """
        header: dict[str, Any] = {**run_header(scenario, results),
                                  "description": scenario.description}
        if command is not None:
            header["command"] = command
        if reproduce is not None:
            header["reproduce"] = reproduce
        if precision is not None:
            header["precision"] = precision.as_dict()
        if warm_up_suggestion is not None:
            header["warm_up_suggestion"] = warm_up_suggestion.as_dict()
        if replay is not None:
            header["replay"] = dict(replay)
            header["world"] = hashlib.sha256(
                f"{header['world']}/replay/{replay.get('actions')}".encode()).hexdigest()[:16]
        document = sanitize(aggregate(results, header=header))
        typed = cls.from_dict(document)
        return attrs.evolve(typed, run=scenario,
                            results=tuple(sorted(results, key=lambda r: r.replication)),
                            precision=precision, warm_up_suggestion=warm_up_suggestion)
