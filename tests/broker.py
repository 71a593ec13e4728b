"""The Mosquitto brokers the MQTT integration tests use.

The shared one is the broker CI starts on 127.0.0.1:1883. A test that needs
other settings starts its own with :func:`own_broker` (a generated config on a
free port) and stops it by its PID. Without a broker a test skips saying why,
except with ``CI=true`` in the environment, where it fails: CI must never
pass by skipping the transport.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HOST, PORT = "127.0.0.1", 1883
START_GUARD = 20.0  # real seconds for a test-owned broker to accept connections


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: the MQTT integration tests must run)")
    pytest.skip(why)


def _accepts(host: str, port: int) -> OSError | None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return exc
    return None


def shared_broker() -> tuple[str, int]:
    """The shared broker's (host, port); skips (fails under CI=true) if none answers."""
    error = _accepts(HOST, PORT)
    if error is not None:
        _missing(f"no MQTT broker at {HOST}:{PORT} ({error}); start one with "
                 "'mosquitto -d -c /etc/mosquitto/mosquitto.conf'")
    return HOST, PORT


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Mosquitto:
    """A Mosquitto of a test's own, on a port that stays the same across
    :meth:`stop` and :meth:`start` (a broker restart). Stopped by its PID."""

    def __init__(self, folder: Path, *, persistence: bool = False, anonymous: bool = True,
                 listener_extra: str = "") -> None:
        binary = shutil.which("mosquitto")
        if binary is None:
            _missing("the mosquitto binary is not on PATH")
        assert binary is not None
        self.binary = binary
        self.port = _free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} {HOST}\n"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {folder}/\n"
            "set_tcp_nodelay true\n"
            f"log_dest file {folder}/mosquitto.log\n"
            # As root Mosquitto drops to the mosquitto user, who cannot read the
            # test's private folder (its password file, certificates, log).
            + ("user root\n" if os.geteuid() == 0 else "")
            + listener_extra,
            encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        if self.process is not None:
            raise RuntimeError("this Mosquitto runs already")
        process = self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_GUARD
        while _accepts(HOST, self.port) is not None:
            if process.poll() is not None:
                pytest.fail(f"mosquitto -c {self.conf} exited with {process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail(f"mosquitto -c {self.conf} did not listen within {START_GUARD} s")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> None:
        """Stop it by its PID: SIGTERM (it saves its persistence file) or,
        with ``kill``, SIGKILL (it saves nothing). Returns once it is gone."""
        process, self.process = self.process, None
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def own_broker(folder: Path, *, persistence: bool = False, anonymous: bool = True,
               listener_extra: str = "") -> Iterator[tuple[str, int]]:
    """A Mosquitto of this test's own on a free port: (host, port), stopped after.

    ``anonymous=False`` refuses clients without a login; ``listener_extra`` is
    appended to the config (e.g. ``password_file``, TLS files).
    """
    with restartable_broker(folder, persistence=persistence, anonymous=anonymous,
                            listener_extra=listener_extra) as mosquitto:
        yield HOST, mosquitto.port


@contextmanager
def restartable_broker(folder: Path, *, persistence: bool = False, anonymous: bool = True,
                       listener_extra: str = "") -> Iterator[Mosquitto]:
    """A started :class:`Mosquitto` (a test may stop and start it again), stopped after."""
    mosquitto = Mosquitto(folder, persistence=persistence, anonymous=anonymous,
                          listener_extra=listener_extra)
    try:
        mosquitto.start()
        yield mosquitto
    finally:
        mosquitto.stop()
