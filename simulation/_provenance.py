"""What a report records so that its run can be repeated exactly.

A run is its resolved scenario (every field after defaults and the command
line's overrides, with the run's policy, seed, replications, horizon and
warm-up in it) and the code that ran it. ``report.json`` keeps both in its
``provenance`` block, so ``orderloom simulate --from report.json`` runs the
same contents again even when the scenario or policy file has changed since,
or was never on this machine.

The scenario is kept as plain data that the scenario loader reads back (a
YAML dump of it is a valid scenario file, its policy inline); reading it
back here also keeps each number's type, so the rerun's world digest equals
the recorded one and ``compare`` pairs the two runs.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from orderloom.actors.order._documents import (
    DocumentError,
    FieldError,
    make_converter,
    structure_document,
)

from ._result import ReplicationResult
from ._runner import replication_seed
from ._scenario import Scenario, recorded_converter, world_digest

__all__ = [
    "PROVENANCE_FORMAT",
    "Provenance",
    "ReportError",
    "provenance_data",
    "provenance_in",
    "provenance_of",
    "read_provenance",
    "read_report_document",
    "rerun_warnings",
    "software_versions",
]

PROVENANCE_FORMAT = 1


class ReportError(DocumentError):
    """A report cannot be rerun: unreadable, or its provenance is missing or
    invalid (``source`` is the file, ``problems`` name the fields)."""

    kind = "report"


def _format(_: object, a: attrs.Attribute[Any], v: int) -> None:
    if v != PROVENANCE_FORMAT:
        raise FieldError(a.name, f"{PROVENANCE_FORMAT} (the provenance format this orderloom "
                                 "reads)", v)


@attrs.frozen(kw_only=True)
class Provenance:
    """Everything one run was made of.

    Invariant (of a run's own record): ``replication_seeds[k]`` is the seed
    replication ``k`` of ``scenario.seed`` drew its world from, for the
    ``scenario.replications`` replications, and ``world`` is
    ``world_digest(scenario)``. A record from another orderloom, or edited by
    hand, may break it: :func:`rerun_warnings` says where.

    Attributes:
        format: the layout of this block (:data:`PROVENANCE_FORMAT`).
        orderloom: the package version that ran.
        python: the Python version that ran.
        scenario: the resolved scenario; its ``policy`` is the run's policy,
            its ``seed``, ``replications``, ``horizon`` and ``warm_up`` the
            run's (after ``--policy``, ``--seed``, ``-n``, ``--horizon``).
        replication_seeds: replication k's own seed, from which every random
            stream of its world is drawn.
        world: the world digest ``compare`` checks (the scenario's content
            without its policy and run settings).
    """

    format: int = attrs.field(default=PROVENANCE_FORMAT, validator=_format)
    orderloom: str
    python: str
    scenario: Scenario
    replication_seeds: tuple[int, ...]
    world: str


def software_versions() -> dict[str, str]:
    """The versions of what runs a simulation: orderloom, SimPy and Python."""
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"orderloom": version("orderloom"), "simpy": version("simpy"),
            "python": platform.python_version()}


def provenance_of(scenario: Scenario, results: Sequence[ReplicationResult]) -> Provenance:
    """The record of a run of the resolved ``scenario`` that yielded ``results``."""
    running = software_versions()
    return Provenance(
        orderloom=running["orderloom"], python=running["python"], scenario=scenario,
        replication_seeds=tuple(r.seed for r in sorted(results, key=lambda r: r.replication)),
        world=world_digest(scenario))


def provenance_data(provenance: Provenance) -> dict[str, Any]:
    """``provenance`` as JSON-ready plain data (the ``provenance`` block of report.json)."""
    data: dict[str, Any] = _plain(make_converter().unstructure(provenance))
    return data


def _plain(value: Any) -> Any:
    """JSON-ready and loader-readable: sets become sorted lists, tuples lists,
    and an infinite number the string ``"inf"`` (JSON has no infinity; the
    loader reads ``"inf"`` as one, as it does in a YAML file)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@attrs.frozen(kw_only=True)
class _Recorded:
    """The part of report.json a rerun reads (so errors name ``provenance.<path>``)."""

    provenance: Provenance


def read_report_document(path: Path) -> tuple[dict[str, Any], str]:
    """A ``report.json`` (or the one in the run folder ``path``) as a document,
    with the file's name for messages.

    Raises:
        ReportError: the file cannot be read, or is not a JSON object.
    """
    file = path / "report.json" if path.is_dir() else path
    source = str(file)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(source, [f"(file): cannot read: {exc.strerror}"]) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(source, [f"(file): not a report.json (not JSON: {exc})"]) from exc
    if not isinstance(doc, dict):
        raise ReportError(source, [f"(top level): expected a report (a JSON object), "
                                   f"got {type(doc).__name__}"])
    return doc, source


def read_provenance(path: Path) -> Provenance:
    """The provenance of a ``report.json`` (or of the run folder holding one).

    Raises:
        ReportError: the file cannot be read, is not a report, is a replay
            (``orderloom replay`` reruns those), or its provenance is missing
            or invalid; the problems name the fields.
    """
    doc, source = read_report_document(path)
    if "replay" in doc:
        # Its provenance holds the scenario, not the journal's orders: a rerun
        # would simulate the scenario's own demand and look like the replay.
        again = doc.get("reproduce")
        raise ReportError(source, [
            "replay: this report is a replay of a journal, which --from cannot rerun"
            + (f"; replay it again with: {again}" if isinstance(again, str) else "")])
    return provenance_in(doc, source)


def provenance_in(doc: Mapping[str, Any], source: str) -> Provenance:
    """The provenance block of a loaded report document (``source`` names it in errors).

    Raises:
        ReportError: the provenance is missing or invalid; the problems name the fields.
    """
    if "provenance" not in doc:
        hint = (f"; to run its scenario as the file reads now: {doc['reproduce']}"
                if isinstance(doc.get("reproduce"), str) else "")
        raise ReportError(source, [
            "provenance: required field missing (the report was written before runs "
            f"recorded their scenario contents, so it cannot be rerun exactly{hint})"])
    recorded = structure_document(recorded_converter(), {"provenance": doc["provenance"]},
                                  _Recorded, source, ReportError)
    return recorded.provenance


def rerun_warnings(provenance: Provenance, source: str) -> list[str]:
    """Why a rerun of ``provenance`` here might not repeat the run's numbers
    (empty when it will: same orderloom, seeds and world)."""
    warnings = []
    running = software_versions()["orderloom"]
    if provenance.orderloom != running:
        warnings.append(f"{source} was written by orderloom {provenance.orderloom}; this is "
                        f"orderloom {running}: the same scenario, policy and seeds run, but "
                        "the numbers may differ")
    scenario = provenance.scenario
    seeds = tuple(replication_seed(scenario.seed, k) for k in range(scenario.replications))
    if seeds != provenance.replication_seeds:
        warnings.append(f"{source}: replication seeds {list(provenance.replication_seeds)} "
                        f"were recorded, but seed {scenario.seed} with "
                        f"{scenario.replications} replications gives {list(seeds)} here: "
                        "the replications face other worlds")
    digest = world_digest(scenario)
    if digest != provenance.world:
        warnings.append(f"{source}: the recorded scenario reads as world {digest!r} here, "
                        f"not {provenance.world!r} as recorded: compare will not take the "
                        "rerun for the same world")
    return warnings
