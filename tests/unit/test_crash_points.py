"""``ORDERLOOM_CRASH_AT``: parsed strictly, and a real SIGKILL on the n-th pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from orderloom.runtime import CRASH_AT_VARIABLE, CRASH_POINTS, CrashPointError
from orderloom.runtime._crash import parse_crash_at

_PASSES = """
import sys
from orderloom.runtime._crash import crash_point
for i in range(1, 6):
    crash_point("turn.after_commit")
    crash_point("ack.before")
    print(i, flush=True)
"""


def _run(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT_VARIABLE}
    if value is not None:
        env[CRASH_AT_VARIABLE] = value
    return subprocess.run([sys.executable, "-c", _PASSES], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_point_with_a_pass_number_parses() -> None:
    """``point`` means the first pass, ``point:n`` the n-th."""
    assert parse_crash_at("outbox.mid") == ("outbox.mid", 1)
    assert parse_crash_at("outbox.mid:25") == ("outbox.mid", 25)


@pytest.mark.parametrize(("value", "why"), [
    ("outbox.middle", "unknown point 'outbox.middle'"),
    ("outbox.mid:0", "the pass number '0' is not an integer >= 1"),
    ("outbox.mid:x", "the pass number 'x' is not an integer >= 1"),
    ("outbox.mid:", "the pass number '' is not an integer >= 1"),
])
def test_a_malformed_value_is_refused_naming_the_variable_and_the_points(
        value: str, why: str) -> None:
    """A bad value names the variable, what is wrong and every known point."""
    with pytest.raises(CrashPointError) as caught:
        parse_crash_at(value)
    message = str(caught.value)
    assert message.startswith(f"{CRASH_AT_VARIABLE}={value!r}: {why}; expected POINT or POINT:N")
    assert all(point in message for point in CRASH_POINTS)


def test_the_process_dies_by_sigkill_on_the_nth_pass_of_its_point_only() -> None:
    """With ``ack.before:3`` the process passes twice, then dies by SIGKILL at
    once (no output after it); another point's passes do not count."""
    result = _run("ack.before:3")
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.split() == ["1", "2"]


def test_unset_or_malformed_nothing_happens() -> None:
    """Unset, or set to a value that does not parse, no point kills the process."""
    for value in (None, "", "no.such.point"):
        result = _run(value)
        assert (result.returncode, result.stdout.split()) == (0, ["1", "2", "3", "4", "5"])
