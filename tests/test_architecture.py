"""The dependency direction and the public surface are the architecture."""

from __future__ import annotations

import ast
import json
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
    adapters = {"runtime/_sqlite_store.py", "runtime/_postgres_store.py"}
    bad = []
    for folder in ("runtime", "actors", "simulation", "cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            for line, module in _imports(path):
                if module.split(".")[0] in {"sqlite3", "psycopg", "asyncpg"} and name not in adapters:
                    bad.append(f"{name}:{line} imports {module}")
    assert bad == []


# Inside orderloom.actors (DESIGN.md): ``order`` imports nothing of the other
# two; ``coordinator`` imports ``order``; ``world`` imports ``order`` and the
# coordinator's seams (its protocol, telemetry and the downstream views),
# never the coordinator's actors. The live coordinator runs without ``world``.
# ``ingest`` (platform adapters at the edge) imports only ``order``, and no
# other part imports it: transports call it through the public names.
SUBPACKAGES = ("order", "coordinator", "world", "ingest")
WORLD_MAY_USE = frozenset({"coordinator._protocol", "coordinator._telemetry",
                           "coordinator._views"})
# The pure model does no I/O and reads no clock, randomness or environment.
FORBIDDEN_IN_ORDER = ("pathlib", "importlib", "os", "random", "uuid", "io", "datetime")


def _actors_imports(path: Path) -> list[tuple[int, str]]:
    """(line, "<subpackage>.<module>") for each import of an actors subpackage,
    relative or absolute."""
    here = path.parent.name
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0 and (node.module or "").startswith("orderloom.actors."):
            target = node.module.removeprefix("orderloom.actors.")  # type: ignore[union-attr]
        elif node.level == 1:
            target = f"{here}.{node.module}" if node.module else here
        elif node.level == 2:
            target = node.module or ""
        else:
            continue
        parts = target.split(".")
        if parts[0] not in SUBPACKAGES:
            continue
        if len(parts) == 1:  # from ..order import _messages
            found += [(node.lineno, f"{parts[0]}.{a.name}") for a in node.names]
        else:
            found.append((node.lineno, ".".join(parts[:2])))
    return found


def test_actors_subpackages_point_one_way() -> None:
    """order imports neither coordinator nor world; coordinator never imports
    world; world uses only the coordinator's protocol, telemetry and views;
    ingest uses only order, and nothing in actors uses ingest."""
    bad = []
    for sub in SUBPACKAGES:
        for path in sorted((ROOT / "actors" / sub).glob("*.py")):
            for line, target in _actors_imports(path):
                other = target.split(".")[0]
                if other == sub:
                    continue
                allowed = (sub in ("coordinator", "ingest") and other == "order") or (
                    sub == "world" and (other == "order" or target in WORLD_MAY_USE))
                if not allowed:
                    bad.append(f"actors/{sub}/{path.name}:{line} imports {target}")
    assert bad == []


def test_the_order_model_is_pure() -> None:
    """actors/order imports no file, clock, randomness or environment module."""
    assert _violations("actors/order", FORBIDDEN_IN_ORDER) == []


def _notebook_imports(path: Path) -> list[tuple[int, str]]:
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(code, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _private(module: str) -> bool:
    return module.startswith("orderloom.") and any(
        part.startswith("_") for part in module.split(".")[1:])


def test_the_cli_and_notebooks_use_public_names_only() -> None:
    """The `orderloom` command and the notebooks are clients of the packages'
    public API: they import no private module (``orderloom.<package>._x``,
    ``orderloom.actors.<part>._x``) and no subpackage's internals."""
    bad = [f"cli/{path.name}:{line} imports {module}"
           for path in sorted((ROOT / "cli").glob("*.py"))
           for line, module in _imports(path) if _private(module)]
    bad += [f"notebooks/{path.name}:{line} imports {module}"
            for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
            for line, module in _notebook_imports(path) if _private(module)]
    assert bad == []
