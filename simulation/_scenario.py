"""Scenario files: the world, its demand and faults, the policy, the run settings.

A scenario is a YAML document loaded into frozen attrs classes. The world's
parts reuse the actors' own configuration classes (``GatewayConfig``,
``WarehouseConfig``, ``TeamConfig``, ...), so a scenario says exactly what
the simulated systems do. Loading is strict; every problem is reported with
the file, the field path and what was expected.
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import cattrs

from orderloom.actors.world._address import AddressServiceConfig
from orderloom.actors.order._documents import (
    DocumentError,
    FieldError,
    did_you_mean,
    make_converter,
    parse_yaml,
    structure_document,
)
from orderloom.actors.world._downstream import DownstreamConfig
from orderloom.actors.world._gateway import GatewayConfig
from orderloom.actors import builtin_policies, load_builtin_policy, load_policy, unknown_policy
from orderloom.actors.order._policy import Policy, PolicyError, policy_from_dict
from orderloom.actors.world._team import TeamConfig
from orderloom.actors.world._warehouse import WarehouseConfig

from ._faults import LinkFaults

__all__ = [
    "CatalogItem",
    "DataFaults",
    "Demand",
    "FaultSpec",
    "Peak",
    "Scenario",
    "ScenarioError",
    "Swarm",
    "builtin_scenarios",
    "check_teams",
    "load_builtin_scenario",
    "load_scenario",
    "parse_scenario",
    "recorded_converter",
    "resolve_scenario",
    "world_digest",
]

FAULT_KINDS = ("gateway_outage", "warehouse_outage", "team_absence", "downstream_outage", "link")


class ScenarioError(DocumentError):
    """A scenario document is invalid (``source``, ``problems``)."""

    kind = "scenario"


def _share(_: object, a: attrs.Attribute[Any], v: float) -> None:
    if not 0.0 <= v <= 1.0:
        raise FieldError(a.name, "a share in [0, 1]", v)


def _positive(_: object, a: attrs.Attribute[Any], v: float) -> None:
    if not (math.isfinite(v) and v > 0):
        raise FieldError(a.name, "a positive number", v)


def _non_negative(_: object, a: attrs.Attribute[Any], v: float) -> None:
    if not (math.isfinite(v) and v >= 0):
        raise FieldError(a.name, "a number >= 0", v)


@attrs.frozen(kw_only=True)
class CatalogItem:
    """A product: price in minor units (> 0) and relative popularity (> 0)."""

    sku: str
    price: int = attrs.field(validator=_positive)
    weight: float = attrs.field(default=1.0, validator=_positive)


@attrs.frozen(kw_only=True)
class Peak:
    """Demand multiplied by ``factor`` between ``start`` and ``end`` (seconds)."""

    start: float = attrs.field(validator=_non_negative)
    end: float = attrs.field(validator=_positive)
    factor: float = attrs.field(validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise FieldError("end", f"a time after start ({self.start})", self.end)


@attrs.frozen(kw_only=True)
class DataFaults:
    """Shares of orders that carry a data fault.

    Attributes:
        duplicate_orders: the customer places the same order again minutes later.
        bad_addresses: the address fails validation ...
        unfixable_addresses: ... and, of those, this share cannot be corrected.
        fraud: the order is fraudulent (high risk score).
        declines: the payment is declined.
        cancellations: the customer asks to cancel mid-fulfillment.
    """

    duplicate_orders: float = attrs.field(default=0.0, validator=_share)
    bad_addresses: float = attrs.field(default=0.0, validator=_share)
    unfixable_addresses: float = attrs.field(default=0.3, validator=_share)
    fraud: float = attrs.field(default=0.0, validator=_share)
    declines: float = attrs.field(default=0.0, validator=_share)
    cancellations: float = attrs.field(default=0.0, validator=_share)


@attrs.frozen(kw_only=True)
class Demand:
    """Arrivals and order contents.

    ``mode: orders`` generates orders (a non-homogeneous Poisson process
    with an hourly ``profile`` of 24 relative weights and ``peaks``);
    ``mode: cases`` sends review cases straight to the first team as a
    Poisson stream (the M/M/c validation desk).
    """

    orders_per_day: float = attrs.field(validator=_positive)
    mode: str = "orders"
    profile: tuple[float, ...] = ()
    peaks: tuple[Peak, ...] = ()
    lines_per_order: float = attrs.field(default=1.5, validator=_positive)
    max_lines: int = 5
    quantity: float = attrs.field(default=1.2, validator=_positive)
    max_quantity: int = 4
    customers: int = 10_000
    faults: DataFaults = DataFaults()

    def __attrs_post_init__(self) -> None:
        if self.mode not in ("orders", "cases"):
            raise FieldError("mode", "'orders' or 'cases'", self.mode)
        if self.profile and (len(self.profile) != 24 or any(w < 0 for w in self.profile)
                             or not any(self.profile)):
            raise FieldError("profile", "24 hourly weights >= 0, not all zero", list(self.profile))
        if self.lines_per_order < 1 or self.quantity < 1:
            raise FieldError("lines_per_order", "means >= 1", self.lines_per_order)
        if self.max_lines < 1 or self.max_quantity < 1 or self.customers < 1:
            raise FieldError("max_lines", "max_lines, max_quantity and customers >= 1",
                             self.max_lines)

    def rate(self, t: float) -> float:
        """Orders per second at time ``t``."""
        base = self.orders_per_day / 86400.0
        if self.profile:
            hour = int(t // 3600) % 24
            base *= self.profile[hour] * 24 / sum(self.profile)
        for peak in self.peaks:
            if peak.start <= t < peak.end:
                base *= peak.factor
        return base

    def max_rate(self) -> float:
        """An upper bound of :meth:`rate` (for thinning)."""
        base = self.orders_per_day / 86400.0
        if self.profile:
            base *= max(self.profile) * 24 / sum(self.profile)
        factor = 1.0
        for peak in self.peaks:
            factor = max(factor, factor * peak.factor)
        return base * factor


@attrs.frozen(kw_only=True)
class FaultSpec:
    """One scheduled fault.

    ``kind`` is one of ``gateway_outage`` (``mode`` down / errors / slow with
    ``factor``), ``warehouse_outage`` / ``team_absence`` /
    ``downstream_outage`` (``target`` names it), or ``link`` (``sender`` and
    ``recipient`` globs with ``link`` faults, on the messages due between
    ``start`` and ``end``; by default all run long). Every fault is in force
    from ``start`` (seconds, default 0) to ``end`` (default: the run's end).
    Two link rules matching one message both act on it (see
    :mod:`orderloom.simulation._faults`: drops combine as independent
    draws, duplicates each, delays add).
    """

    kind: str
    start: float = attrs.field(default=0.0, validator=_non_negative)
    end: float = attrs.field(default=math.inf)
    target: str = ""
    mode: str = "down"
    factor: float = 1.0
    sender: str = "*"
    recipient: str = "*"
    link: LinkFaults | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FieldError("kind", f"one of {list(FAULT_KINDS)}", self.kind)
        if not self.end > self.start:
            raise FieldError("end", f"a time after start ({self.start})", self.end)
        if self.kind in ("warehouse_outage", "team_absence", "downstream_outage") \
                and not self.target:
            raise FieldError("target", f"the name of what a {self.kind} affects", self.target)
        if self.kind == "link" and self.link is None:
            raise FieldError("link", "the link faults (drop, duplicate, delay, reorder)", None)
        if self.kind == "gateway_outage" and self.mode not in ("down", "errors", "slow"):
            raise FieldError("mode", "down, errors or slow", self.mode)

    def label(self) -> str:
        """A short human label (for report charts)."""
        if self.kind == "link":
            return f"link {self.sender}->{self.recipient}"
        return f"{self.kind} {self.target or self.mode}".strip()


@attrs.frozen(kw_only=True)
class Swarm:
    """Draw fault rates per replication from its seed (find combinations
    nobody wrote down). Each bound is the maximum a draw may reach."""

    enabled: bool = False
    webhook_duplicate: float = attrs.field(default=0.1, validator=_share)
    webhook_reorder: float = attrs.field(default=30.0, validator=_non_negative)
    webhook_drop: float = attrs.field(default=0.0, validator=_share)
    lost_response: float = attrs.field(default=0.05, validator=_share)
    gateway_outage_probability: float = attrs.field(default=0.5, validator=_share)
    gateway_outage_hours: float = attrs.field(default=3.0, validator=_non_negative)
    downstream_failure: float = attrs.field(default=0.1, validator=_share)


@attrs.frozen(kw_only=True)
class Scenario:
    """A whole simulation set-up. Invariants: ``0 <= warm_up < horizon``;
    fault targets exist; catalog non-empty; replications >= 1."""

    name: str
    policy: Policy
    catalog: tuple[CatalogItem, ...]
    demand: Demand
    warehouses: tuple[WarehouseConfig, ...]
    teams: tuple[TeamConfig, ...]
    description: str = ""
    seed: int = 1
    horizon: float = attrs.field(default=86400.0, validator=_positive)
    warm_up: float = attrs.field(default=0.0, validator=_non_negative)
    replications: int = 5
    gateway: GatewayConfig = GatewayConfig()
    downstream: tuple[DownstreamConfig, ...] = (
        DownstreamConfig(system="finance"), DownstreamConfig(system="crm"),
        DownstreamConfig(system="support"), DownstreamConfig(system="notifications"),
    )
    address: AddressServiceConfig = AddressServiceConfig()
    faults: tuple[FaultSpec, ...] = ()
    swarm: Swarm = Swarm()
    gateway_timeout: float = attrs.field(default=30.0, validator=_positive)
    resequence_timeout: float = attrs.field(default=60.0, validator=_positive)
    mismatch_grace: float = attrs.field(default=300.0, validator=_non_negative)
    """A downstream view must disagree longer than this for its order to count
    as mismatched (every sync has some lag); durations always count in full."""

    def __attrs_post_init__(self) -> None:
        if self.warm_up >= self.horizon:
            raise FieldError("warm_up", f"less than horizon ({self.horizon})", self.warm_up)
        if self.replications < 1:
            raise FieldError("replications", "at least 1", self.replications)
        if not self.catalog and self.demand.mode == "orders":
            raise FieldError("catalog", "at least one product", [])
        names = {
            "warehouse_outage": {w.warehouse_id for w in self.warehouses},
            "team_absence": {t.name for t in self.teams},
            "downstream_outage": {d.system for d in self.downstream},
        }
        for i, fault in enumerate(self.faults):
            known = names.get(fault.kind)
            if known is not None and fault.target not in known:
                raise FieldError(f"faults[{i}].target", f"one of {sorted(known)}", fault.target,
                                 did_you_mean(fault.target, known))
        check_teams(self.teams, self.policy)


def check_teams(teams: tuple[TeamConfig, ...], policy: Policy) -> None:
    """Every team named in ``teams``' ``reassign_to`` and in ``policy``'s
    routing is one of ``teams``.

    A misspelt name is the scenario's to fix (the shipped policies name their
    teams), so the error names the scenario's field: the ``reassign_to`` that
    names no team, or the team whose name is nearest to one the policy routes
    cases to (asking whether the policy is misspelt instead when it is not a
    shipped one).

    Raises:
        FieldError: at the scenario field to correct, with the nearest name.
    """
    names = [t.name for t in teams]
    for i, team in enumerate(teams):
        for other in team.reassign_to:
            if other not in names:
                raise FieldError(f"teams[{i}].reassign_to", f"names of this scenario's teams "
                                 f"{sorted(names)}", other, did_you_mean(other, names))
    routed: dict[str, str] = {}
    for reason, route in policy.routing.items():
        for team_name in (route.team, route.escalate_to):
            if team_name:
                routed.setdefault(team_name, reason.value)
    for wanted, reason_name in sorted(routed.items()):
        if wanted in names:
            continue
        why = f"policy {policy.name!r} routes {reason_name} cases to {wanted!r}"
        # The team a misspelling would have given: near the routed name, and
        # not itself a name the policy routes to.
        near = difflib.get_close_matches(wanted, [n for n in names if n not in routed], n=1)
        if near:
            index = names.index(near[0])
            shipped = (policy.name in builtin_policies()
                       and policy == load_builtin_policy(policy.name))
            raise FieldError(f"teams[{index}].name", f"{wanted!r} ({why})", near[0],
                             f"did you mean {wanted}?" if shipped else
                             f"or is the policy's {wanted!r} misspelt?")
        raise FieldError("teams", f"a team named {wanted!r} ({why})", sorted(names))


def _converter(base: Path | None) -> Any:
    converter = make_converter()

    def structure_policy(value: Any, _: Any) -> Policy:
        if isinstance(value, str):
            if value in builtin_policies():
                return load_builtin_policy(value)
            path = Path(value) if base is None else base / value
            if path.suffix in (".yaml", ".yml") and path.exists():
                return load_policy(path)
            raise ValueError(unknown_policy(value).removeprefix("(name): "))
        if isinstance(value, dict):
            return policy_from_dict(value, "inline policy")
        raise TypeError(f"expected a policy name, file or mapping, got {value!r}")

    converter.register_structure_hook(Policy, structure_policy)
    return converter


def recorded_converter() -> cattrs.Converter:
    """The scenario loader's converter for a scenario recorded as plain data
    (a report's provenance): it reads whatever a scenario file may say, and
    keeps a whole number a whole number where the file reader would make it
    a float.

    Defaults written in code as ints (``Shift(0, 24, 1)``) stay ints in a
    loaded scenario; equal either way, but the world digest tells ``0`` from
    ``0.0``, and a rerun must have the digest of the run it repeats.
    """
    converter: cattrs.Converter = _converter(None)
    number = converter.get_structure_hook(float)

    def exact_number(value: Any, type_: Any) -> float:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return float(number(value, type_))

    converter.register_structure_hook(float, exact_number)
    return converter


def world_digest(scenario: Scenario) -> str:
    """A digest of everything in ``scenario`` but its policy and run settings
    (seed, horizon, warm-up, replications): two reports whose digests differ
    ran different worlds, so their difference is not the policy's alone."""
    content = attrs.asdict(scenario, filter=lambda a, _v: a.name not in _RUN_SETTINGS)
    text = json.dumps(content, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_RUN_SETTINGS = frozenset({"policy", "seed", "horizon", "warm_up", "replications"})


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    return str(value)


def parse_scenario(text: str, source: str, base: Path | None = None) -> Scenario:
    """Parse a YAML scenario; relative policy files resolve against ``base``."""
    data = parse_yaml(text, source, ScenarioError)
    try:
        return structure_document(_converter(base), data, Scenario, source, ScenarioError)
    except PolicyError as exc:  # an inline or referenced policy is itself invalid
        raise ScenarioError(source, [f"policy: {p}" for p in exc.problems]) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [f"(file): cannot read: {exc.strerror}"]) from exc
    return parse_scenario(text, str(path), path.parent)


def resolve_scenario(name_or_path: str, search: Path = Path("scenarios")) -> Path:
    """A scenario file from a path, a name in ``search`` (``./scenarios``),
    or a name in the library shipped with the package (from any folder)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for candidate in (search / f"{name_or_path}.yaml", search / name_or_path):
        if candidate.is_file():
            return candidate
    library = resources.files("orderloom.scenarios")
    for name in (f"{name_or_path}.yaml", name_or_path):
        shipped = library.joinpath(name)
        if shipped.is_file():
            return Path(str(shipped))
    known = sorted(set(builtin_scenarios())
                   | ({p.stem for p in search.glob("*.yaml")} if search.is_dir() else set()))
    hint = did_you_mean(name_or_path, known)
    raise ScenarioError(name_or_path, [f"(file): no such file, and not a scenario name "
                                       f"(known: {known})" + (f"; {hint}" if hint else "")])


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with orderloom (the ``orderloom.scenarios`` data)."""
    library = resources.files("orderloom.scenarios")
    return sorted(p.name.removesuffix(".yaml") for p in library.iterdir()
                  if p.name.endswith(".yaml"))


def load_builtin_scenario(name: str) -> Scenario:
    """Load a shipped scenario by name (``baseline``, ``fraud-wave``, ...)."""
    names = builtin_scenarios()
    if name not in names:
        hint = did_you_mean(name, names)
        raise ScenarioError(f"scenario {name!r}", [f"(name): expected one of {names}, got "
                                                   f"{name!r}" + (f"; {hint}" if hint else "")])
    return load_scenario(Path(str(resources.files("orderloom.scenarios").joinpath(
        f"{name}.yaml"))))
