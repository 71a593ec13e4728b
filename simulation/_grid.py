"""A sweep's grid: ``--param`` axes over policy and scenario settings, and
the resolved scenario of every point, all checked before anything runs.

A parameter names its namespace first:

- ``policy`` takes shipped policy names or policy files;
- ``policy.<field path>`` a policy field (``policy.fraud.review_above``);
- ``scenario.<field path>`` a scenario field (``scenario.demand.orders_per_day``).

A scenario path steps into a list by index (``scenario.faults.0.end``) or by
the name of its element (``scenario.teams.fraud...``, ``scenario.warehouses.W1...``,
``scenario.downstream.crm...``, ``scenario.faults.gateway_outage...`` when
exactly one fault has that kind). Two derived knobs: a team's ``staff`` sets
every shift's staff, a fault's ``duration`` sets its ``end`` to ``start``
plus the value. Values are YAML scalars, as in a scenario file (``2``,
``0.5``, ``90m``, ``down``). Run settings (seed, replications, horizon,
warm-up) have options of their own and are not swept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import yaml

from orderloom.actors import (
    DocumentError,
    did_you_mean,
    make_converter,
    policy_from_dict,
    resolve_policy,
)
from orderloom.actors.order._documents import structure_document

from ._scenario import Scenario, ScenarioError, recorded_converter

__all__ = ["SweepAxis", "SweepPoint", "numeric_value", "parse_sweep_params", "sweep_points"]

NAMESPACES = ("policy", "scenario")
# Fields with an option of their own (or a namespace of their own).
_NOT_SWEPT = {
    "seed": "--seed", "replications": "--replications", "horizon": "--horizon",
    "warm_up": "--horizon (warm-up follows the scenario)", "name": "nothing (it names the run)",
    "description": "nothing (it describes the run)", "policy": "--param policy... instead",
}
# The field that names an element of a list section.
_ELEMENT_NAMES = ("name", "warehouse_id", "system", "sku", "kind")
_SOURCE = "--param"


@attrs.frozen(kw_only=True)
class SweepAxis:
    """One ``--param``: a knob and its values (the text given, in order).

    Invariants: ``name`` is ``policy`` or starts with ``policy.`` or
    ``scenario.``; ``values`` is non-empty.
    """

    name: str
    values: tuple[str, ...]

    @property
    def label(self) -> str:
        """The knob as point labels name it (``policy.`` dropped, as ever)."""
        return self.name.removeprefix("policy.")


@attrs.frozen(kw_only=True)
class SweepPoint:
    """One point of a grid: its label, its value per axis and its scenario
    (policy, seed and replications resolved)."""

    label: str
    coordinates: tuple[tuple[str, str], ...]
    scenario: Scenario


def _problem(message: str) -> ScenarioError:
    return ScenarioError(_SOURCE, [message])


def parse_sweep_params(params: Sequence[str]) -> list[SweepAxis]:
    """The axes of ``NAME=V1,V2,...`` parameters.

    Raises:
        ScenarioError: a malformed parameter, an unknown namespace, a knob
            given twice, or no values.
    """
    axes: list[SweepAxis] = []
    given: set[str] = set()
    for param in params:
        name, sep, values = param.partition("=")
        name = name.strip()
        if not sep or not values or not name:
            raise _problem(f"{param!r}: expected NAME=V1,V2,...")
        space = name.split(".", 1)[0]
        if name != "policy" and (space not in NAMESPACES or "." not in name
                                 or name.endswith(".")):
            raise _problem(f"{name}: expected 'policy', 'policy.<field>' or "
                           f"'scenario.<field>'" + _hint(space, NAMESPACES))
        if name in given:  # two axes of one knob: which value would a point take?
            raise _problem(f"{name}: given twice; expected each NAME once, "
                           f"with all its values (--param {name}=V1,V2,...)")
        given.add(name)
        chosen = tuple(v.strip() for v in values.split(",") if v.strip())
        if not chosen:
            raise _problem(f"{param!r}: expected at least one value")
        axes.append(SweepAxis(name=name, values=chosen))
    return axes


def _hint(name: str, known: Iterable[str]) -> str:
    hint = did_you_mean(name, known)
    return f"; {hint}" if hint else ""


def numeric_value(text: str) -> float | None:
    """``text`` as a finite number (durations in seconds), or None: whether
    an axis can be drawn on a numeric scale."""
    try:
        value = make_converter().structure(text, float)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _scalar(name: str, text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)):
        raise _problem(f"{name}={text}: expected a single value (a number, a duration "
                       "or a word), got a YAML collection")
    return value


def _same_kind(name: str, old: Any, new: Any, text: str) -> Any:
    """``new`` where ``old`` was; a value of another kind is refused here
    (the loader would quietly truncate 2.5 staff to 2)."""
    if isinstance(old, (dict, list, tuple)):
        fields = sorted(old) if isinstance(old, dict) else []
        raise _problem(f"{name}: is a section, not a value; expected one of its fields"
                       + (f" ({', '.join(fields)})" if fields else " (an index or a name)"))
    if isinstance(old, bool):
        if not isinstance(new, bool):
            raise _problem(f"{name}: expected true or false, got {text!r}")
        return new
    if isinstance(old, int):
        if isinstance(new, bool) or not isinstance(new, int):
            raise _problem(f"{name}: expected a whole number, got {text!r}")
        return new
    if isinstance(old, float):
        if isinstance(new, bool) or numeric_value(str(new)) is None:
            raise _problem(f"{name}: expected a number or a duration (90s, 2h), got {text!r}")
        return new
    if isinstance(old, str):
        return text
    return new


def _element(name: str, items: list[Any], key: str) -> Any:
    if key.isdigit():
        if int(key) >= len(items):
            raise _problem(f"{name}: index {key} is out of range; expected 0.."
                           f"{len(items) - 1}" if items else f"{name}: the list is empty")
        return items[int(key)]
    named = [(field, item) for item in items if isinstance(item, dict)
             for field in _ELEMENT_NAMES if item.get(field) == key]
    if len(named) == 1:
        return named[0][1]
    if len(named) > 1:
        raise _problem(f"{name}: {len(named)} elements are named {key!r}; expected an "
                       f"index (0..{len(items) - 1})")
    known = [str(item[f]) for item in items if isinstance(item, dict)
             for f in _ELEMENT_NAMES[:4] if f in item]
    raise _problem(f"{name}: no element {key!r}; expected an index (0..{len(items) - 1})"
                   + (f" or one of {known}" if known else "") + _hint(key, known))


def _set_scenario(data: dict[str, Any], name: str, text: str) -> None:
    keys = name.split(".")[1:]
    if keys[0] in _NOT_SWEPT:
        raise _problem(f"{name}: not swept here; use {_NOT_SWEPT[keys[0]]}")
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        here = ".".join(["scenario", *keys[:depth + 1]])
        if isinstance(node, list):
            node = _element(here, node, key)
        elif isinstance(node, dict):
            if key not in node:
                raise _problem(f"{here}: the scenario has no section {key!r}"
                               + _hint(key, node))
            node = node[key]
        else:
            raise _problem(f"{here}: is a value, not a section")
        if node is None:  # an optional section left out: fill it with nothing
            raise _problem(f"{here}: is not set in this scenario; expected a section it has")
    last, value = keys[-1], _scalar(name, text)
    if isinstance(node, list):
        raise _problem(f"{name}: expected a field of one element ({name}.<field>)")
    if not isinstance(node, dict):
        raise _problem(f"{name}: its parent is a value, not a section")
    if last == "staff" and "shifts" in node and "staff" not in node:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _problem(f"{name}: expected a whole number of people >= 0, got {text!r}")
        node["shifts"] = [{**shift, "staff": value} for shift in node["shifts"]]
        return
    if last == "duration" and "kind" in node and "start" in node and "duration" not in node:
        seconds = numeric_value(str(value))
        if seconds is None or seconds <= 0:
            raise _problem(f"{name}: expected a positive duration (90m, 2h), got {text!r}")
        node["end"] = float(node["start"]) + seconds
        return
    if last not in node:
        extra = [k for k in ("staff",) if "shifts" in node] + \
                [k for k in ("duration",) if "kind" in node and "start" in node]
        raise _problem(f"{name}: the scenario has no field {last!r}"
                       + _hint(last, [*node, *extra]))
    node[last] = _same_kind(name, node[last], value, text)


def _set_policy(data: dict[str, Any], dotted: str, value: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            sections = [k for k, v in node.items() if isinstance(v, dict)]
            raise _problem(f"{dotted}: {key!r} is not a section of the policy"
                           + _hint(key, sections))
        node = child
    if keys[-1] not in node:
        raise _problem(f"{dotted}: the policy has no field {keys[-1]!r}"
                       + _hint(keys[-1], node))
    node[keys[-1]] = value


def _point(scenario: Scenario, coordinates: tuple[tuple[str, str], ...]) -> Scenario:
    unstructure = make_converter().unstructure
    described = " ".join(f"{k}={v}" for k, v in coordinates)
    policy = scenario.policy
    for key, value in coordinates:
        if key == "policy":
            try:
                policy = resolve_policy(value)
            except DocumentError as exc:
                raise ScenarioError(_SOURCE, [f"policy={value}: {p}"
                                              for p in exc.problems]) from exc
    policy_keys = [(k, v) for k, v in coordinates if k.startswith("policy.")]
    if policy_keys:
        data = unstructure(policy)
        for key, value in policy_keys:
            _set_policy(data, key.removeprefix("policy."), value)
        try:
            policy = policy_from_dict(data, f"{_SOURCE} {described}")
        except DocumentError as exc:
            raise ScenarioError(_SOURCE, exc.problems) from exc
    scenario_keys = [(k, v) for k, v in coordinates if k.startswith("scenario.")]
    if not scenario_keys:
        return _evolve(scenario, policy=policy)
    data = unstructure(scenario)
    data["policy"] = unstructure(policy)
    for key, value in scenario_keys:
        _set_scenario(data, key, value)
    try:
        return _structure(data, f"{_SOURCE} {described}")
    except DocumentError as exc:
        raise ScenarioError(f"{_SOURCE} {described}", exc.problems) from exc


def _structure(data: Mapping[str, Any], source: str) -> Scenario:
    return structure_document(recorded_converter(), data, Scenario, source, ScenarioError)


def _evolve(scenario: Scenario, **changes: Any) -> Scenario:
    try:
        return attrs.evolve(scenario, **changes)
    except ValueError as exc:
        raise ScenarioError(_SOURCE, [str(exc)]) from exc


def sweep_points(scenario: Scenario, axes: Sequence[SweepAxis]) -> list[SweepPoint]:
    """Every point of the grid ``axes`` span over ``scenario`` (their
    product, the first axis slowest), each resolved and validated.

    Raises:
        ScenarioError: the first point that is not a valid scenario, naming
            the parameter and what was expected.
    """
    points = []
    for combination in itertools.product(*(axis.values for axis in axes)):
        coordinates = tuple((axis.name, value)
                            for axis, value in zip(axes, combination, strict=True))
        label = ",".join(f"{axis.label}={value}"
                         for axis, value in zip(axes, combination, strict=True))
        points.append(SweepPoint(label=label, coordinates=coordinates,
                                 scenario=_point(scenario, coordinates)))
    return points
