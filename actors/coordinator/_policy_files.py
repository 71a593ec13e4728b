"""The policy files: shipped policies by name, and policies read from disk.

The policy model and its parsing are pure (:mod:`..order._policy`); reading
a file is the coordinator's business.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..order._policy import Policy, PolicyError, parse_policy

__all__ = ["builtin_policies", "load_builtin_policy", "load_policy"]

_PACKAGE = __name__.rpartition(".")[0]  # the policies folder sits beside this module


def load_policy(path: str | Path) -> Policy:
    """Load a policy file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [f"(file): cannot read: {exc.strerror}"]) from exc
    return parse_policy(text, str(path))


def builtin_policies() -> list[str]:
    """Names of the policies shipped with orderloom."""
    folder = resources.files(_PACKAGE).joinpath("policies")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def load_builtin_policy(name: str) -> Policy:
    """Load a shipped policy by name (``cautious``, ``balanced``, ``aggressive``)."""
    names = builtin_policies()
    if name not in names:
        raise PolicyError(f"policy {name!r}", [f"(name): expected one of {names}"])
    resource = resources.files(_PACKAGE).joinpath("policies", f"{name}.yaml")
    return parse_policy(resource.read_text(encoding="utf-8"), f"builtin:{name}.yaml")
