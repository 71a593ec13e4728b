"""The docs/ folder stays true: every field, knob, metric and CLI option it
names exists, everything that exists is named, and every example loads."""

from __future__ import annotations

import enum
import random
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import click
import pytest
import yaml

from orderloom.actors import (
    INVARIANTS_BY_NAME,
    TERMINAL_STAGES,
    Dist,
    HoldReason,
    Lifecycle,
    OutcomeKind,
    PaymentOperation,
    Policy,
    Window,
    builtin_policies,
    load_builtin_policy,
    make_converter,
    parse_policy,
)
from orderloom.cli import main as cli_main
from orderloom.simulation import (
    Scenario,
    ScenarioError,
    aggregate,
    load_scenario,
    run_replication,
    world_for,
)

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("unit.test_docs")

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DOC_FILES = ("scenarios.md", "policies.md", "metrics.md", "cli.md", "architecture.md",
             "python-api.md", "wire.md", "ingest-shopify.md", "review-desk.md",
             "serve.md")
# Pages whose README link the lead adds when integrating (helper branches do not
# edit README.md); remove an entry once README.md links it.
README_LINK_PENDING: frozenset[str] = frozenset()

# Types documented once in a section of their own, not at every field that uses them.
SHARED = {Dist: "Dist.", Window: "Window."}
# Placeholders naming the keys of a policy's per-reason and per-stage tables.
KEY_PLACEHOLDERS: dict[type, str] = {HoldReason: "<reason>", Lifecycle: "<stage>"}
NO_IRREVERSIBLE_WHILE_HELD = "no_irreversible_while_held"


# -- reading the docs ------------------------------------------------------------------

def _text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _tables(text: str) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Every Markdown table of ``text``: its header cells and its rows' cells."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if (lines[i].lstrip().startswith("|") and i + 1 < len(lines)
                and re.fullmatch(r"\s*\|[\s|:-]+\|\s*", lines[i + 1])):
            header = _cells(lines[i])
            rows: list[list[str]] = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            yield header, rows
        else:
            i += 1


def _rows(text: str, first: str) -> dict[str, list[str]]:
    """The rows of every table whose header starts with ``first``, by the
    (first) backticked name in their first cell."""
    out: dict[str, list[str]] = {}
    for header, rows in _tables(text):
        if header[0] != first:
            continue
        for cells in rows:
            match = re.match(r"`([^`]+)`", cells[0])
            assert match, f"{first} table row without a `name`: {cells}"
            assert match.group(1) not in out, f"{match.group(1)} is documented twice"
            out[match.group(1)] = cells
    return out


def _ticks(cell: str) -> list[str]:
    """The backticked tokens of a table cell."""
    return re.findall(r"`([^`]*)`", cell)


def _leading_yaml(cell: str) -> tuple[bool, Any]:
    """Whether ``cell`` starts with a backticked YAML value, and that value."""
    match = re.match(r"`([^`]*)`", cell)
    if not match:
        return False, None
    return True, yaml.safe_load(match.group(1))


def _yaml_blocks(name: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", _text(name), flags=re.S)


# -- walking the loader's classes ------------------------------------------------------

def _unwrap(tp: Any) -> tuple[Any, str]:
    """``X | None`` -> X; ``tuple[X, ...]`` -> (X, "[]"); anything else as is."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else (tp, "")
    if origin is tuple:
        return typing.get_args(tp)[0], "[]"
    return tp, ""


def _fields(cls: type, prefix: str = "") -> Iterator[tuple[str, attrs.Attribute[Any], Any]]:
    """Every field the loader accepts under ``cls``: dotted path, attribute, type.

    Lists add ``[]`` to the path, a table keyed by an enum adds its
    placeholder (``routing.<reason>.team``); the shared types (``Dist``,
    ``Window``) and an embedded policy are leaves, documented on their own.
    """
    hints = typing.get_type_hints(cls)
    for a in attrs.fields(cls):
        tp = hints[a.name]
        path = prefix + a.name
        yield path, a, tp
        inner, suffix = _unwrap(tp)
        if typing.get_origin(inner) is dict:
            key, value = typing.get_args(inner)
            if key in KEY_PLACEHOLDERS:
                keyed = f"{path}.{KEY_PLACEHOLDERS[key]}"
                yield keyed, a, value
                if attrs.has(value):
                    yield from _fields(value, keyed + ".")
            continue
        if attrs.has(inner) and inner not in SHARED and inner is not Policy:
            yield from _fields(inner, path + suffix + ".")


def _scenario_fields() -> dict[str, tuple[attrs.Attribute[Any], Any]]:
    found = {path: (a, tp) for path, a, tp in _fields(Scenario)}
    for cls, prefix in SHARED.items():
        found.update({path: (a, tp) for path, a, tp in _fields(cls, prefix)})
    return found


def _policy_fields() -> dict[str, tuple[attrs.Attribute[Any], Any]]:
    return {path: (a, tp) for path, a, tp in _fields(Policy)}


def _default(a: attrs.Attribute[Any]) -> Any:
    default: Any = a.default
    factory = getattr(default, "factory", None)  # an attrs.Factory
    return factory() if callable(factory) else default


def _check_defaults(rows: dict[str, list[str]], fields: dict[str, tuple[attrs.Attribute[Any], Any]],
                    column: int) -> list[str]:
    """Rows whose default cell is ``required`` or a backticked YAML value that
    differs from the loader's default (other cells are prose, not checked)."""
    converter = make_converter()
    wrong = []
    for path, cells in rows.items():
        attribute, tp = fields[path]
        if "<" in path.rsplit(".", 1)[-1]:
            continue  # a table's key: its default is the table documented below it
        cell = cells[column]
        if cell == "required":
            if attribute.default is not attrs.NOTHING:
                wrong.append(f"{path}: documented as required, has a default")
            continue
        given, value = _leading_yaml(cell)
        if not given:
            continue
        if attribute.default is attrs.NOTHING:
            wrong.append(f"{path}: documented default {cell}, but the field is required")
            continue
        if converter.structure(value, tp) != _default(attribute):
            wrong.append(f"{path}: documented default {cell}, loader's {_default(attribute)!r}")
    return wrong


# -- the scenario reference ------------------------------------------------------------

def test_every_scenario_field_is_documented() -> None:
    """docs/scenarios.md lists exactly the fields the scenario loader accepts."""
    documented = set(_rows(_text("scenarios.md"), "field"))
    accepted = set(_scenario_fields())
    assert sorted(accepted - documented) == [], "fields missing from docs/scenarios.md"
    assert sorted(documented - accepted) == [], "docs/scenarios.md names fields that do not exist"


def test_scenario_defaults_are_the_loaders() -> None:
    """Every default docs/scenarios.md writes as YAML (or as required) is the loader's."""
    rows = _rows(_text("scenarios.md"), "field")
    assert _check_defaults(rows, _scenario_fields(), column=2) == []


def _scenario_examples() -> list[str]:
    return _yaml_blocks("scenarios.md")


def _load_scenario_text(text: str, tmp_path: Path) -> Scenario:
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    world_for(scenario, scenario.policy, random.Random(0))  # as `orderloom validate` checks it
    return scenario


def test_minimal_scenario_is_complete(tmp_path: Path) -> None:
    """The first example of docs/scenarios.md is a whole scenario that loads as it stands."""
    scenario = _load_scenario_text(_scenario_examples()[0], tmp_path)
    assert scenario.name == "minimal"


@pytest.mark.parametrize("index", range(1, len(_scenario_examples())))
def test_scenario_example_validates(index: int, tmp_path: Path) -> None:
    """Each fragment of docs/scenarios.md, put into the minimal scenario, loads and validates."""
    base = yaml.safe_load(_scenario_examples()[0])
    fragment = yaml.safe_load(_scenario_examples()[index])
    assert isinstance(fragment, dict) and fragment
    _load_scenario_text(yaml.safe_dump({**base, **fragment}), tmp_path)


def test_every_fault_kind_has_an_example(tmp_path: Path) -> None:
    """docs/scenarios.md names the fault kinds the loader accepts and shows an example of each."""
    kinds = _rows(_text("scenarios.md"), "field")["faults[].kind"]
    documented = set(_ticks(kinds[3]))
    base = yaml.safe_load(_scenario_examples()[0])
    with pytest.raises(ScenarioError) as refused:  # the loader's own list, from its message
        _load_scenario_text(yaml.safe_dump({**base, "faults": [{"kind": "meteor"}]}), tmp_path)
    accepted = re.search(r"kind: expected one of (\[[^\]]*\])", str(refused.value))
    assert accepted is not None, str(refused.value)
    assert documented == set(yaml.safe_load(accepted.group(1)))
    shown = {fault["kind"] for block in _scenario_examples()
             for fault in (yaml.safe_load(block) or {}).get("faults", [])}
    assert shown == documented


def test_shipped_scenarios_are_listed() -> None:
    """The shipped-scenarios table of docs/scenarios.md names exactly the files in scenarios/."""
    listed = set(_rows(_text("scenarios.md"), "scenario"))
    assert listed == {p.stem for p in (ROOT / "scenarios").glob("*.yaml")}


# -- the policy reference --------------------------------------------------------------

def test_every_policy_knob_is_documented() -> None:
    """docs/policies.md lists exactly the knobs the policy loader accepts."""
    documented = set(_rows(_text("policies.md"), "field"))
    accepted = set(_policy_fields())
    assert sorted(accepted - documented) == [], "knobs missing from docs/policies.md"
    assert sorted(documented - accepted) == [], "docs/policies.md names knobs that do not exist"


def _choices(tp: Any) -> set[str] | None:
    """The values a field of type ``tp`` takes, if it is an enum, a set of
    enum members or a boolean."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {m.value for m in tp}
    if typing.get_origin(tp) is frozenset:
        (member,) = typing.get_args(tp)
        return {m.value for m in member}
    if tp is bool:
        return {"true", "false"}
    return None


def test_policy_values_are_the_loaders() -> None:
    """For every enum or boolean knob, the *values* column lists exactly what the loader accepts."""
    fields = _policy_fields()
    wrong = []
    for path, cells in _rows(_text("policies.md"), "field").items():
        choices = _choices(fields[path][1])
        if choices is not None and set(_ticks(cells[1])) != choices:
            wrong.append(f"{path}: documented {sorted(_ticks(cells[1]))}, "
                         f"accepted {sorted(choices)}")
    assert wrong == []


def test_policy_defaults_are_the_loaders() -> None:
    """Every default docs/policies.md writes as YAML (or as required) is the loader's."""
    rows = _rows(_text("policies.md"), "field")
    assert _check_defaults(rows, _policy_fields(), column=2) == []


def test_default_routes_and_deadlines_are_the_loaders() -> None:
    """The tables of default routes and stuck deadlines match a policy that sets neither."""
    converter = make_converter()
    defaults = Policy(name="defaults")
    routes = _rows(_text("policies.md"), "reason")
    assert set(routes) == {r.value for r in HoldReason}
    for reason, cells in routes.items():
        route = defaults.routing[HoldReason(reason)]
        escalate = _ticks(cells[3])
        assert (_ticks(cells[1]), converter.structure(_ticks(cells[2])[0], float),
                escalate[0] if escalate else None) == ([route.team], route.deadline,
                                                       route.escalate_to), reason
    deadlines = {stage: converter.structure(_ticks(cells[1])[0], float)
                 for stage, cells in _rows(_text("policies.md"), "stage").items()}
    assert deadlines == {s.value: d for s, d in defaults.stuck_deadlines.items()}


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys; tuples as lists, sets as sorted lists of values."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    if isinstance(data, frozenset | set):
        data = sorted(v.value if isinstance(v, enum.Enum) else v for v in data)
    return {prefix.rstrip("."): list(data) if isinstance(data, tuple) else data}


def test_shipped_policy_table_matches_the_files() -> None:
    """Every cell of the shipped-policies table is the shipped file's value."""
    converter = make_converter()
    rows = _rows(_text("policies.md"), "knob")
    header = next(h for h, _ in _tables(_text("policies.md")) if h[0] == "knob")
    assert sorted(header[1:]) == builtin_policies()
    defaults = Policy(name="defaults")
    for column, name in enumerate(header[1:], start=1):
        policy = load_builtin_policy(name)
        assert (policy.routing, policy.stuck_deadlines) == (defaults.routing,
                                                            defaults.stuck_deadlines), name
        flat = _flat(converter.unstructure(policy))
        knobs = {k for k in flat if k not in ("name", "description")
                 and not k.startswith(("routing.", "stuck_deadlines."))}
        assert set(rows) == knobs
        for knob in knobs:
            documented = yaml.safe_load(_ticks(rows[knob][column])[0])
            actual = flat[knob]
            if isinstance(actual, float | int) and not isinstance(actual, bool):
                documented = converter.structure(documented, float)
            assert documented == actual, f"{name}: {knob}"


@pytest.mark.parametrize("index", range(len(_yaml_blocks("policies.md"))))
def test_policy_example_loads(index: int) -> None:
    """Each YAML example of docs/policies.md is a policy document the loader accepts."""
    policy = parse_policy(_yaml_blocks("policies.md")[index], f"docs/policies.md example {index}")
    assert policy.name


# -- the metric definitions ------------------------------------------------------------

# A short, small run built to emit every metric family: stuck orders, shortages,
# bounces between two teams, overrides, late cases, lost and duplicated messages.
# Every family appears by the third simulated hour under the policies of
# ``_impatient``; the horizon leaves an hour to spare, so a model change that
# delays one a little does not make the docs look wrong.
METRICS_SCENARIO = """
name: every-metric
horizon: 4h
warm_up: 30m
replications: 1
policy: cautious
catalog:
  - {sku: TSHIRT, price: 2500, weight: 3}
  - {sku: MUG, price: 1400, weight: 2}
  - {sku: RARE, price: 9900, weight: 1}
demand:
  orders_per_day: 1200
  faults: {duplicate_orders: 0.05, bad_addresses: 0.1, unfixable_addresses: 0.5,
           fraud: 0.05, declines: 0.05, cancellations: 0.05}
warehouses:
  - warehouse_id: W1
    stock: {TSHIRT: 400, MUG: 300, RARE: 3}
    pickers: 4
    pick: {kind: exponential, mean: 300}
    carriers: [{name: post, transit: {kind: exponential, mean: 3600}}]
  - warehouse_id: W2
    stock: {TSHIRT: 100, MUG: 100}
    pick: {kind: exponential, mean: 300}
    carriers: [{name: post, transit: {kind: exponential, mean: 3600}}]
gateway:
  latency: {kind: exponential, mean: 2}
  lost_response_rate: 0.03
teams:
  - {name: payments-ops, review: {kind: exponential, mean: 900}, override_rate: 0.2,
     error_rate: 0.1}
  - {name: fraud, review: {kind: exponential, mean: 1800}, override_rate: 0.2, error_rate: 0.1}
  - {name: customer-care, review: {kind: exponential, mean: 600}, override_rate: 0.2,
     reassign_rate: 0.4, reassign_to: [fulfillment-ops], error_rate: 0.1}
  - {name: fulfillment-ops, review: {kind: exponential, mean: 600}, override_rate: 0.2,
     reassign_rate: 0.4, reassign_to: [customer-care], error_rate: 0.1}
downstream:
  - {system: finance, lag: {kind: exponential, mean: 600}, failure_rate: 0.05}
  - {system: crm, lag: {kind: exponential, mean: 600}}
faults:
  - {kind: gateway_outage, start: 1h, end: 2.5h, mode: down}
  - kind: link
    sender: warehouse/*
    recipient: order/*
    link: {drop: 0.02, duplicate: 0.1, reorder: 60}
"""


def _impatient(policy: Policy) -> Policy:
    """``policy`` with an hour's stuck deadline on hold, so a short run sees stuck holds."""
    return attrs.evolve(policy, stuck_deadlines={**policy.stuck_deadlines,
                                                 Lifecycle.ON_HOLD: 3600.0})


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Metric names, series names and report units of a short run under two policies."""
    path = tmp_path_factory.mktemp("metrics") / "every-metric.yaml"
    path.write_text(METRICS_SCENARIO, encoding="utf-8")
    scenario = load_scenario(path)
    results = [run_replication(scenario, 0, policy=_impatient(load_builtin_policy(name)))
               for name in ("cautious", "aggressive")]
    metrics = {n for r in results for n in r.metrics}
    series = {n for r in results for n in r.series}
    units = {n: entry["unit"] for r in results
             for n, entry in aggregate([r], header={})["metrics"].items()}
    return {"metrics": metrics, "series": series, "units": units}


def _closed_placeholders() -> dict[str, set[str]]:
    """Placeholders whose values the code fixes, with those values."""
    return {
        "<stage>": {s.value for s in Lifecycle},
        "<final_state>": {s.value for s in TERMINAL_STAGES},
        "<reason>": {r.value for r in HoldReason},
        "<stuck_reason>": {r.value for r in HoldReason} | {"no_progress"},
        "<invariant>": set(INVARIANTS_BY_NAME) | {NO_IRREVERSIBLE_WHILE_HELD},
        "<outcome>": {o.value for o in OutcomeKind if o is not OutcomeKind.APPLIED},
        "<operation>": {o.value for o in PaymentOperation},
    }


def _pattern(name: str) -> re.Pattern[str]:
    """A documented metric name (with placeholders and ``{a,b}`` suffixes) as a regex."""
    closed = _closed_placeholders()
    out = ""
    for part in re.split(r"(<[a-z_]+>|\{[a-z0-9,]+\})", name):
        if part in closed:
            out += "(?:" + "|".join(map(re.escape, sorted(closed[part]))) + ")"
        elif part.startswith("<"):
            out += r"[^.]+"
        elif part.startswith("{"):
            out += "(?:" + "|".join(map(re.escape, part[1:-1].split(","))) + ")"
        else:
            out += re.escape(part)
    return re.compile(out)


def test_metric_placeholders_are_defined() -> None:
    """Every placeholder a metric name uses is defined; the fixed ones list the code's values."""
    text = _text("metrics.md")
    defined = _rows(text, "placeholder")
    used = {p for name in [*_rows(text, "metric"), *_rows(text, "series")]
            for p in re.findall(r"<[a-z_]+>|\{[a-z0-9,]+\}", name)}
    assert used == set(defined)
    for placeholder, values in _closed_placeholders().items():
        assert set(_ticks(defined[placeholder][1])) == values, placeholder


def _unmatched(names: set[str], documented: list[str]) -> tuple[list[str], list[str]]:
    patterns = {doc: _pattern(doc) for doc in documented}
    undocumented = sorted(n for n in names if not any(p.fullmatch(n) for p in patterns.values()))
    unseen = sorted(doc for doc, p in patterns.items() if not any(p.fullmatch(n) for n in names))
    return undocumented, unseen


def test_every_emitted_metric_is_documented(emitted: dict[str, Any]) -> None:
    """The collector emits no metric docs/metrics.md lacks, and every documented one appears."""
    documented = list(_rows(_text("metrics.md"), "metric"))
    undocumented, unseen = _unmatched(emitted["metrics"], documented)
    assert undocumented == [], "emitted but not in docs/metrics.md"
    assert unseen == [], "in docs/metrics.md but never emitted"


def test_documented_units_are_the_reports(emitted: dict[str, Any]) -> None:
    """Each metric's documented unit is the unit report.json gives it."""
    rows = _rows(_text("metrics.md"), "metric")
    wrong = [f"{name}: documented {cells[1]!r}, report says {emitted['units'][n]!r}"
             for name, cells in rows.items() for n in emitted["metrics"]
             if _pattern(name).fullmatch(n) and emitted["units"][n] != cells[1]]
    assert wrong == []


def test_every_series_is_documented(emitted: dict[str, Any]) -> None:
    """The time series of a run are exactly the ones docs/metrics.md describes."""
    undocumented, unseen = _unmatched(emitted["series"], list(_rows(_text("metrics.md"), "series")))
    assert (undocumented, unseen) == ([], [])


# -- the CLI reference -----------------------------------------------------------------

def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, f"{path} {name}")


def _params(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Argument):
            names.add((param.name or "").upper())
        else:
            names.update(o for o in (*param.opts, *param.secondary_opts) if o != "--help")
    return names


def _documented_commands() -> dict[str, set[str]]:
    """Per ``## `orderloom ...``` section of docs/cli.md, the names in its option table."""
    sections = re.split(r"^## `(orderloom[^`]*)`\n", _text("cli.md"), flags=re.M)
    out: dict[str, set[str]] = {}
    for title, body in zip(sections[1::2], sections[2::2], strict=True):
        body = body.split("\n## ", 1)[0]
        out[title] = {t for cells in _rows(body, "option").values() for t in _ticks(cells[0])}
    return out


def test_every_cli_command_and_option_is_documented() -> None:
    """docs/cli.md has a section per command, listing exactly its arguments and options."""
    actual = {path: _params(command) for path, command in _commands(cli_main, "orderloom")}
    assert _documented_commands() == actual


def test_cli_exit_codes_are_documented() -> None:
    """docs/cli.md explains exit codes 0, 1 and 2."""
    assert set(_rows(_text("cli.md"), "code")) == {"0", "1", "2"}


# -- the Python API -------------------------------------------------------------------

def test_python_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The first example of docs/python-api.md runs as written and writes no file."""
    block = re.findall(r"```python\n(.*?)```", _text("python-api.md"), flags=re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/python-api.md", "exec"), {})  # noqa: S102 - our own doc
    assert "wrong_actions" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_python_api_names_are_public() -> None:
    """Every name docs/python-api.md imports is in orderloom.simulation's __all__."""
    import orderloom.simulation as simulation

    imported = re.findall(r"from orderloom\.simulation import ([\w, ]+)", _text("python-api.md"))
    names = {n.strip() for line in imported for n in line.split(",")}
    assert names and names <= set(simulation.__all__)


# -- architecture and the README -------------------------------------------------------

def test_architecture_has_a_diagram_and_existing_modules() -> None:
    """docs/architecture.md draws a mermaid diagram, and every module it places exists."""
    text = _text("architecture.md")
    assert "```mermaid" in text
    table = next(rows for header, rows in _tables(text) if header[0] == "role")
    missing = []
    for cells in table:
        folder = ""
        for token in _ticks(cells[1]):
            if not token.endswith((".py", ".yaml")):
                continue  # an import name, not a file
            if (ROOT / token.split("/")[0]).is_dir():  # from the top: sets the folder
                folder, _, token = token.rpartition("/")
            if not list(ROOT.glob(f"{folder}/{token}")):  # else: within the folder
                missing.append(f"{folder}/{token}")
    assert missing == []


def test_readme_links_every_doc() -> None:
    """README.md's reference section links each page of docs/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {f for f in DOC_FILES if f"(docs/{f})" in readme}
    assert linked | README_LINK_PENDING == set(DOC_FILES)
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(DOC_FILES)
