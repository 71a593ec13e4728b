"""`orderloom emulate`'s exit codes and messages, as a user sees them."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ORDERLOOM = str(Path(sys.executable).parent / "orderloom")
QUICK = str(Path(__file__).parent.parent / "fixtures" / "emulate" / "quick.yaml")
GUARD = 120.0  # real seconds: hang guard


def emulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORDERLOOM, "emulate", *args], capture_output=True, text=True,
                          timeout=GUARD, check=False)


@pytest.mark.parametrize(("args", "message"), [
    (("warehouse", "--scenario", QUICK), "--id: 'warehouse' needs an id, one of ['W1']"),
    (("support", "--id", "sales", "--scenario", QUICK),
     "no support 'sales' in scenario 'emulate-quick'"),
    (("gateway", "--id", "G1", "--scenario", QUICK), "'gateway' takes no id"),
    (("teleporter", "--scenario", QUICK), "'teleporter' is not one of"),
    (("gateway", "--scenario", "no-such-scenario"), "no-such-scenario: invalid scenario"),
    (("gateway", "--scenario", QUICK, "--broker", "host:99999"), "--broker: expected HOST:PORT"),
])
def test_bad_input_exits_2_saying_what_was_expected(args: tuple[str, ...], message: str) -> None:
    """An unknown kind, scenario or id, a missing id and a malformed broker
    exit 2 with a message that names what is valid, before connecting."""
    done = emulate(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_an_unreachable_broker_exits_1_with_a_clear_message() -> None:
    """With no broker at --broker the emulator says so in one line and exits 1."""
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = emulate("gateway", "--scenario", QUICK, "--broker", f"127.0.0.1:{port}")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"orderloom emulate: broker 127.0.0.1:{port}: connect:")
    assert "Traceback" not in done.stderr
