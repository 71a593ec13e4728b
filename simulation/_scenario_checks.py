"""Warnings about a valid scenario that probably does not say what its
author meant: a fault that can never act, or an optional section left out
so that defaults are taken silently. Not errors: the scenario runs."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection
from pathlib import Path

import attrs

from orderloom.actors.order._documents import parse_yaml

from ._scenario import FaultSpec, Scenario, ScenarioError

__all__ = ["ScenarioWarning", "scenario_sections", "scenario_warnings"]

# Optional top-level sections of a scenario that orders flow through, and
# the default taken when one is left out.
_DEFAULTS = {
    "warm_up": "warm_up 0: the empty start of the run is measured too",
    "gateway": "the default payment gateway (a constant 1 s latency, no lost responses)",
    "downstream": "four systems finance, crm, support and notifications, each applying "
                  "updates at once (lag 0) and never losing one",
    "address": "the default address service (instant answers, every correction succeeds)",
}
_CORE = ("intake", "automation", "inventory", "watchdog", "gateway", "storefront", "-")


@attrs.frozen(kw_only=True)
class ScenarioWarning:
    """One warning: the scenario field it is about (``faults[0].start``) and
    what is suspicious about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def scenario_sections(path: str | Path) -> frozenset[str]:
    """The top-level keys a scenario file gives (for the missing-section
    warnings of :func:`scenario_warnings`)."""
    path = Path(path)
    data = parse_yaml(path.read_text(encoding="utf-8"), str(path), ScenarioError)
    return frozenset(data) if isinstance(data, dict) else frozenset()


def _seconds(value: float) -> str:
    return f"{value:g} s ({value / 3600:.3g} h)"


def _addresses(scenario: Scenario) -> list[str]:
    """An example of every kind of address in the scenario's world."""
    if scenario.demand.mode == "cases":
        return ["cases", *(f"team/{t.name}" for t in scenario.teams[:1])]
    return [*_CORE, "order/o1", "address-service",
            *(f"warehouse/{w.warehouse_id}" for w in scenario.warehouses),
            *(f"team/{t.name}" for t in scenario.teams),
            *(d.system for d in scenario.downstream)]


def _teams_with_work(scenario: Scenario) -> set[str]:
    if scenario.demand.mode == "cases":
        return {t.name for t in scenario.teams[:1]}
    busy = {name for route in scenario.policy.routing.values()
            for name in (route.team, route.escalate_to) if name}
    return busy | {other for t in scenario.teams for other in t.reassign_to}


def _fault_warnings(i: int, fault: FaultSpec, scenario: Scenario,
                    addresses: list[str], busy: set[str]) -> list[ScenarioWarning]:
    field = f"faults[{i}]"
    found: list[ScenarioWarning] = []
    if fault.start >= scenario.horizon:
        return [ScenarioWarning(field=f"{field}.start", message=(
            f"never fires: it starts at {_seconds(fault.start)}, at or after the horizon "
            f"({_seconds(scenario.horizon)})"))]
    if fault.end <= scenario.warm_up:
        found.append(ScenarioWarning(field=f"{field}.end", message=(
            f"ends at {_seconds(fault.end)}, before the warm-up ends "
            f"({_seconds(scenario.warm_up)}): it acts only on time that is not measured")))
    if fault.kind == "gateway_outage" and fault.mode == "slow" and fault.factor <= 1.0:
        found.append(ScenarioWarning(field=f"{field}.factor", message=(
            f"a slow gateway with factor {fault.factor:g} slows nothing; expected a factor "
            "above 1")))
    if fault.kind == "link" and fault.link is not None:
        link = fault.link
        if not (link.drop or link.duplicate or link.reorder
                or (link.delay and link.delay_max)):
            found.append(ScenarioWarning(field=f"{field}.link", message=(
                "changes no message: drop, duplicate and reorder are 0 and no delay is "
                "drawn (delay or delay_max is 0)")))
        for end in ("sender", "recipient"):
            pattern = getattr(fault, end)
            if not any(fnmatch.fnmatchcase(a, pattern) for a in addresses):
                found.append(ScenarioWarning(field=f"{field}.{end}", message=(
                    f"{pattern!r} matches no address in this world (e.g. "
                    f"{', '.join(sorted(set(addresses))[:8])}): the fault never acts")))
    if fault.kind == "team_absence" and fault.target not in busy:
        found.append(ScenarioWarning(field=f"{field}.target", message=(
            f"team {fault.target!r} never gets a case (policy {scenario.policy.name!r} routes "
            "none to it and no team reassigns to it): its absence changes nothing")))
    if scenario.demand.mode == "cases" and fault.kind in (
            "gateway_outage", "warehouse_outage", "downstream_outage", "link"):
        found.append(ScenarioWarning(field=f"{field}.kind", message=(
            f"a {fault.kind} in a cases-only scenario (demand.mode: cases) has nothing "
            "to act on")))
    return found


def scenario_warnings(scenario: Scenario, *, sections: Collection[str] | None = None
                      ) -> tuple[ScenarioWarning, ...]:
    """What in a valid ``scenario`` is probably a mistake: a fault that starts
    at or after the horizon, ends before the warm-up does, changes nothing
    (a link fault of all zeros, a slow gateway with factor 1) or names what
    never receives traffic; and, given the file's top-level ``sections``, an
    optional section left out so that defaults are taken (not for a
    cases-only scenario, where orders never flow)."""
    found: list[ScenarioWarning] = []
    if sections is not None:
        wanted = ("warm_up",) if scenario.demand.mode == "cases" else tuple(_DEFAULTS)
        found += [ScenarioWarning(field=name, message=f"not given; taking {_DEFAULTS[name]}")
                  for name in wanted if name not in sections]
    addresses, busy = _addresses(scenario), _teams_with_work(scenario)
    for i, fault in enumerate(scenario.faults):
        found += _fault_warnings(i, fault, scenario, addresses, busy)
    return tuple(found)
