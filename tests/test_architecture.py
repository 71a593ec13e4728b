"""The dependency direction and the public surface are the architecture."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package may import from the others (the arrows of DESIGN.md).
FORBIDDEN_IN_ACTORS = (
    "simpy", "aiomqtt", "paho", "anyio", "asyncio", "trio", "sqlite3", "psycopg",
    "asyncpg", "matplotlib", "orderloom.simulation", "orderloom.runtime.live",
    "orderloom.cli", "time", "socket",
)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in _imports(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if module.startswith("orderloom.runtime._"):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports private {module}")
    return bad


def test_actors_import_only_the_kernel_contract() -> None:
    """orderloom.actors imports no kernel, transport, clock or database module."""
    assert _violations("actors", FORBIDDEN_IN_ACTORS) == []


def test_kernel_contract_imports_no_kernel() -> None:
    """The runtime contract modules (all but live.py) import neither anyio nor simpy."""
    bad = []
    for path in sorted((ROOT / "runtime").glob("_*.py")):
        for line, module in _imports(path):
            if module.split(".")[0] in {"anyio", "simpy", "aiomqtt", "asyncio"}:
                bad.append(f"{path.name}:{line} imports {module}")
    assert bad == []


def test_simulation_and_runtime_never_import_each_other() -> None:
    """simulation does not import the live kernel, and runtime never imports simulation."""
    assert _violations("simulation", ("orderloom.runtime.live", "anyio", "aiomqtt")) == []
    assert _violations("runtime", ("orderloom.simulation", "simpy")) == []


def test_importing_actors_loads_no_kernel() -> None:
    """At run time, importing orderloom.actors pulls in no kernel or I/O library."""
    code = (
        "import sys, orderloom.actors\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'simpy','anyio','aiomqtt','sqlite3','psycopg','matplotlib'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("package", ["orderloom.runtime", "orderloom.actors",
                                     "orderloom.simulation"])
def test_public_surface_is_declared(package: str) -> None:
    """Each package exports a fixed __all__ whose names all exist and are unique."""
    module = __import__(package, fromlist=["__all__"])
    names = module.__all__
    assert len(names) == len(set(names))
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []
    assert list(names) == sorted(names), "keep __all__ sorted"


def test_only_persistence_adapters_import_database_drivers() -> None:
    """sqlite3 (and any other database driver) is imported only by a store adapter module."""
    adapters = {"runtime/_sqlite_store.py"}
    bad = []
    for folder in ("runtime", "actors", "simulation", "cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            for line, module in _imports(path):
                if module.split(".")[0] in {"sqlite3", "psycopg", "asyncpg"} and name not in adapters:
                    bad.append(f"{name}:{line} imports {module}")
    assert bad == []


# The simulated world inside orderloom.actors: what the coordinator talks to
# over messages (gateway, warehouses, teams, address service, downstream
# systems) and the distributions that drive them. The live coordinator runs
# without them, so no coordinator or order-model module may import them.
WORLD_MODULES = frozenset({"_gateway", "_warehouse", "_team", "_address", "_downstream",
                           "_dist"})


def test_the_coordinator_never_imports_the_simulated_world() -> None:
    """No module of orderloom.actors outside the simulated world (the order
    model, the order actor, automation, the engine, telemetry) imports one of
    the world's modules; only the package's public index re-exports them."""
    bad = []
    for path in sorted((ROOT / "actors").glob("_*.py")):
        if path.stem in WORLD_MODULES or path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                module = (node.module or "").split(".")[0]
                names = [module] if module else [a.name for a in node.names]
                bad += [f"actors/{path.name}:{node.lineno} imports .{name}"
                        for name in names if name in WORLD_MODULES]
    assert bad == []
    assert WORLD_MODULES <= {p.stem for p in (ROOT / "actors").glob("_*.py")}


def test_the_cli_uses_public_names_only() -> None:
    """The `orderloom` command is a client of the packages' public API: it
    imports no private module (``orderloom.<package>._x``)."""
    bad = [f"cli/{path.name}:{line} imports {module}"
           for path in sorted((ROOT / "cli").glob("*.py"))
           for line, module in _imports(path)
           if module.startswith("orderloom.") and any(
               part.startswith("_") for part in module.split(".")[1:])]
    assert bad == []
