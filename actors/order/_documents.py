"""Loading YAML documents (policies, scenarios) into frozen attrs classes.

Strict: unknown keys, wrong types and values out of range fail with a
:class:`DocumentError` that names the file, the path of each bad field and
what was expected. Durations may be given as seconds or as ``"90s"``,
``"30m"``, ``"2h"``, ``"1d"``.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import cattrs
import yaml

from orderloom.runtime import DomainError

__all__ = [
    "DocumentError",
    "FieldError",
    "did_you_mean",
    "make_converter",
    "parse_yaml",
    "probability",
    "structure_document",
]

T = TypeVar("T")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class DocumentError(DomainError, ValueError):
    """A document (policy, scenario) is invalid.

    Attributes:
        source: the file (or other origin) of the document.
        problems: one ``"path: what was expected"`` line per problem.
    """

    kind = "document"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid {self.kind}:\n  " + "\n  ".join(problems))


class FieldError(ValueError):
    """Raised by validators so the loader can name the field that failed;
    ``hint`` (e.g. :func:`did_you_mean`'s) follows the message after a ``;``."""

    def __init__(self, field: str, expected: str, got: object, hint: str = "") -> None:
        self.field = field
        self.expected = expected
        self.got = got
        self.hint = hint
        super().__init__(f"{field}: expected {expected}, got {got!r}"
                         + (f"; {hint}" if hint else ""))


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"did you mean X?"`` naming the nearest of ``known`` to a misspelt
    ``name`` (up to three, nearest first), or ``""`` when none is near."""
    by_folded = {k.casefold(): k for k in sorted(set(known))}  # 'w2' is near 'W2'
    folded = name.casefold()
    close = difflib.get_close_matches(folded, list(by_folded), n=3)
    if not close:
        return ""
    # Only the names about as near as the nearest: 'payments-ops' is not a
    # second guess for 'fulfilment-ops' just because both end in '-ops'.
    ratios = [difflib.SequenceMatcher(None, folded, c).ratio() for c in close]
    return "did you mean " + " or ".join(
        by_folded[c] for c, r in zip(close, ratios, strict=True) if r >= ratios[0] - 0.05) + "?"


def probability(_: object, attribute: Any, value: float) -> None:
    """attrs validator: a rate or share in [0, 1] (named in the error)."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name}: expected a probability in [0, 1], got {value!r}")


def _number(value: Any, _: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
        try:
            return float(value)
        except ValueError:
            pass
    raise TypeError(f"expected a number or a duration like '90s', '30m', '2h', '1d', got {value!r}")


def make_converter() -> cattrs.Converter:
    """A strict converter: no extra keys, durations accepted for numbers."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(float, _number)
    converter.register_unstructure_hook(
        frozenset, lambda s: sorted(v.value if isinstance(v, enum.Enum) else v for v in s)
    )
    return converter


def _describe(exc: BaseException, _type: Any = None) -> str:
    if isinstance(exc, FieldError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(_type, type) and issubclass(_type, enum.Enum):
        return f"expected one of {[m.value for m in _type]}"
    if isinstance(exc, TypeError) and str(exc).startswith("expected"):
        return str(exc)
    if isinstance(exc, ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        return str(exc)
    return cattrs.v.format_exception(exc, _type)


def _tidy(line: str) -> str:
    """Turn cattrs' ``"message @ $.a.b"`` into ``"a.b: message"``, folding the
    field named by a validator into the path."""
    message, _, path = line.rpartition(" @ ")
    path = path.removeprefix("$").removeprefix(".").replace("['", ".").replace("']", "")
    field, sep, rest = message.partition(": expected ")
    if sep and " " not in field:
        path = f"{path}.{field}" if path else field
        message = "expected " + rest
    return f"{path or '(top level)'}: {message}"


def structure_document(
    converter: cattrs.Converter, data: Any, cls: type[T], source: str,
    error: type[DocumentError] = DocumentError,
) -> T:
    """Build ``cls`` from plain data; every problem is reported with its path."""
    if not isinstance(data, Mapping):
        raise error(source, [f"(top level): expected a mapping, got {type(data).__name__}"])
    try:
        return converter.structure(dict(data), cls)
    except Exception as exc:  # cattrs groups every problem; we translate them all
        lines = cattrs.transform_error(exc, path="$", format_exception=_describe)
        raise error(source, [_tidy(line) for line in lines]) from exc


def parse_yaml(text: str, source: str, error: type[DocumentError] = DocumentError) -> Any:
    """Parse YAML text; a syntax error names the document."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(source, [f"(document): not valid YAML: {exc}"]) from exc
