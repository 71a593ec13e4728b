"""The policy files: shipped policies by name, and policies read from disk.

The policy model and its parsing are pure (:mod:`..order._policy`); reading
a file is the coordinator's business.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..order._documents import did_you_mean
from ..order._policy import Policy, PolicyError, parse_policy

__all__ = ["builtin_policies", "load_builtin_policy", "load_policy", "resolve_policy",
           "unknown_policy"]

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
        raise PolicyError(f"policy {name!r}", [unknown_policy(name)])
    resource = resources.files(_PACKAGE).joinpath("policies", f"{name}.yaml")
    return parse_policy(resource.read_text(encoding="utf-8"), f"builtin:{name}.yaml")


def unknown_policy(name: str) -> str:
    """The problem line for a policy named ``name`` that is neither shipped nor
    a file: what was expected, and the nearest shipped name if one is near."""
    names = builtin_policies()
    hint = did_you_mean(name, names)
    return (f"(name): expected one of {names} or a policy file, got {name!r}"
            + (f"; {hint}" if hint else ""))


def resolve_policy(name_or_path: str, base: Path | None = None) -> Policy:
    """A shipped policy by name, or a policy file (relative to ``base`` if given).

    Raises:
        PolicyError: neither a shipped name nor an existing file (with the
            nearest shipped name), or the file is invalid.
    """
    if name_or_path in builtin_policies():
        return load_builtin_policy(name_or_path)
    path = Path(name_or_path) if base is None else base / name_or_path
    if not path.is_file():
        raise PolicyError(f"policy {name_or_path!r}", [unknown_policy(name_or_path)])
    return load_policy(path)
