"""``orderloom serve`` from the command line: exit codes and what they print."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

ORDERLOOM = str(Path(sys.executable).parent / "orderloom")
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cli-token-0123456789abc"


def _serve(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORDERLOOM, "serve", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_check_accepts_the_example(tmp_path: Path) -> None:
    """--check on cli/serve-example.yaml prints a summary and exits 0 without serving."""
    result = _serve(tmp_path, "--config", str(ROOT / "cli" / "serve-example.yaml"), "--check")
    assert result.returncode == 0, result.stderr
    assert "ok (scenario baseline, policy cautious, store sqlite, 1 desk teams)" in result.stdout
    assert not (tmp_path / "orderloom.db").exists()


def test_example_prints_the_shipped_config_which_checks(tmp_path: Path) -> None:
    """--example prints the packaged example (from any folder); written to a file,
    it passes --check; without --config or --example the command exits 2."""
    example = _serve(tmp_path, "--example")
    assert example.returncode == 0, example.stderr
    assert example.stdout == (ROOT / "cli" / "serve-example.yaml").read_text(encoding="utf-8")
    (tmp_path / "serve.yaml").write_text(example.stdout, encoding="utf-8")
    checked = _serve(tmp_path, "--config", "serve.yaml", "--check")
    assert checked.returncode == 0, checked.stderr
    missing = _serve(tmp_path)
    assert missing.returncode == 2 and "--example" in missing.stderr
    assert _serve(tmp_path, "--example", "--check").returncode == 2


def test_a_bad_config_exits_2_naming_each_problem(tmp_path: Path) -> None:
    """An invalid config exits 2 with one 'FILE: PATH: expected ...' line per problem."""
    path = tmp_path / "serve.yaml"
    path.write_text(f"broker: {{port: abc}}\nhttp: {{tokens: {{{TOKEN}: ops}}}}\n"
                    "log_level: loud\n", encoding="utf-8")
    result = _serve(tmp_path, "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}: broker.port: expected an integer 1-65535, got 'abc'",
        f"{path}: log_level: expected one of debug, info, warning, error, got 'loud'",
    ]


def test_an_unreachable_broker_exits_1_with_a_json_log_line(tmp_path: Path) -> None:
    """With no broker at the configured port, serve logs serve.failed (JSON) and exits 1."""
    path = tmp_path / "serve.yaml"
    path.write_text(f"broker: {{port: {_closed_port()}}}\nstore: 'sqlite:///o.db'\n"
                    f"http: {{port: 0, tokens: {{{TOKEN}: ops}}}}\n", encoding="utf-8")
    result = _serve(tmp_path, "--config", str(path))
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    failed = [line for line in lines if line["event"] == "serve.failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error"
    assert failed[0]["error"].startswith("TransportError: connect: 127.0.0.1:")
    assert lines[-1]["event"] == "serve.failed"
