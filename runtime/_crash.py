"""Named crash points: ``ORDERLOOM_CRASH_AT=point[:n]`` kills the process there.

The crash test (tests/integration/test_crash.py) starts ``orderloom serve``
with this variable and restarts it after it died: on the n-th pass (default
the first) through the named point the process sends itself SIGKILL, so
nothing after it runs: no ``finally``, no flush, no broker DISCONNECT, no
store rollback but the one SQLite's journal does on the next open. Every
point is listed in :data:`CRASH_POINTS` and documented in docs/serve.md (where
it is, and what a crash there tests).

The variable is read once, when this module is imported. Unset, a point costs
one call and one comparison with None. A malformed value arms nothing (no
other command is disturbed by it); ``orderloom serve`` calls
:func:`armed_crash_point` at start and refuses it (exit 2).
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_AT_VARIABLE", "CRASH_POINTS", "CrashPointError", "armed_crash_point",
           "crash_point", "parse_crash_at"]

CRASH_AT_VARIABLE = "ORDERLOOM_CRASH_AT"

CRASH_POINTS = (
    "ack.after",
    "ack.before",
    "actor.after_restore",
    "outbox.after_publish",
    "outbox.before_publish",
    "outbox.mid",
    "publish.after_confirm",
    "restore.outbox",
    "store.after_append",
    "timer.after_fire",
    "transport.received",
    "turn.after_commit",
    "turn.before_commit",
)
"""Every named point, sorted (docs/serve.md says where each is)."""


class CrashPointError(ValueError):
    """``ORDERLOOM_CRASH_AT`` is not ``point[:n]`` with a known point and n >= 1.

    Attributes:
        value: the variable's value.
    """

    def __init__(self, value: str, why: str) -> None:
        self.value = value
        super().__init__(f"{CRASH_AT_VARIABLE}={value!r}: {why}; expected POINT or POINT:N "
                         f"(N >= 1) with POINT one of {list(CRASH_POINTS)}")


def parse_crash_at(value: str) -> tuple[str, int]:
    """``point[:n]`` as (point, n).

    Raises:
        CrashPointError: an unknown point, or n not an integer >= 1.
    """
    name, sep, count = value.strip().partition(":")
    if name not in CRASH_POINTS:
        raise CrashPointError(value, f"unknown point {name!r}")
    if not sep:
        return name, 1
    if not count.isdigit() or int(count) < 1:
        raise CrashPointError(value, f"the pass number {count!r} is not an integer >= 1")
    return name, int(count)


def _armed() -> tuple[tuple[str, int] | None, CrashPointError | None]:
    value = os.environ.get(CRASH_AT_VARIABLE, "")
    if not value.strip():
        return None, None
    try:
        return parse_crash_at(value), None
    except CrashPointError as exc:
        return None, exc


_target, _error = _armed()
_passes = 0


def armed_crash_point() -> tuple[str, int] | None:
    """The (point, n) this process dies at, read from ``ORDERLOOM_CRASH_AT``
    at import (None: unset).

    Raises:
        CrashPointError: the variable is set but malformed.
    """
    if _error is not None:
        raise _error
    return _target


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``name`` is the armed point and this
    is its n-th pass; otherwise do nothing."""
    if _target is None:
        return
    _pass(name)


def _pass(name: str) -> None:
    global _passes
    assert _target is not None
    point, at = _target
    if name != point:
        return
    _passes += 1
    if _passes >= at:
        os.kill(os.getpid(), signal.SIGKILL)
