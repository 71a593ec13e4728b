"""The serve config: strictly checked, every problem named by its path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orderloom.actors import OrderSettings, load_builtin_policy

from orderloom.cli._serve_config import (
    FIELDS,
    ServeConfigError,
    load_serve_config,
    parse_serve_config,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "a-token-of-sixteen-or-more"
GOOD = f"http: {{tokens: {{{TOKEN}: ops}}}}\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(ServeConfigError) as caught:
        parse_serve_config(text, "serve.yaml")
    assert all(line.startswith("serve.yaml: ") for line in str(caught.value).splitlines())
    return caught.value.problems


def test_the_shipped_example_loads() -> None:
    """cli/serve-example.yaml (serve --example) is a valid config (the docs show a working file)."""
    config = load_serve_config(ROOT / "cli" / "serve-example.yaml")
    assert config.broker.port == 1883
    assert config.store == "sqlite:///orderloom.db"
    assert config.desk_teams == ("customer-care",)
    assert config.settings.policy.name == "cautious"
    assert "W1" in config.settings.warehouses
    assert sorted(config.ingest) == ["wms"]


def test_defaults_fill_everything_but_the_tokens() -> None:
    """Only http.tokens is required; the rest has documented defaults."""
    config = parse_serve_config(GOOD, "serve.yaml")
    assert (config.broker.host, config.broker.port, config.broker.client_id) == (
        "127.0.0.1", 1883, "orderloom-serve")
    assert (config.http.bind, config.http.port) == ("127.0.0.1", 8080)
    assert config.http.tokens == {TOKEN: "ops"}
    assert config.store == "sqlite:///orderloom.db"
    assert config.scenario == "baseline" and config.policy is None
    assert config.log_level == "info" and config.desk_teams == ()
    assert config.broker.tls is None and config.broker.username is None
    assert config.passivate_idle_after == 300.0
    assert config.settings.passivate_idle_after is None  # serve sets it on the settings


@pytest.mark.parametrize(("text", "expected"), [
    ("passivate_idle_after: null\n", None),
    ("passivate_idle_after: 90\n", 90.0),
    ("passivate_idle_after: 0.5\n", 0.5),
])
def test_passivation_can_be_tuned_or_turned_off(text: str, expected: float | None) -> None:
    """``passivate_idle_after`` takes seconds > 0, or null for never."""
    assert parse_serve_config(GOOD + text, "serve.yaml").passivate_idle_after == expected


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "60"])
def test_order_settings_refuse_a_bad_idle_time(value: object) -> None:
    """OrderSettings names ``passivate_idle_after`` and what it expects."""
    with pytest.raises(ValueError, match="passivate_idle_after: expected None or a finite"):
        OrderSettings(policy=load_builtin_policy("cautious"),
                      passivate_idle_after=value)  # type: ignore[arg-type]


def test_reconnection_defaults_to_keep_trying_and_can_be_tuned() -> None:
    """By default serve reconnects forever with waits capped at 30 s; both are settable."""
    default = parse_serve_config(GOOD, "serve.yaml").broker
    assert (default.reconnect_max_delay, default.reconnect_give_up_after) == (30.0, None)
    tuned = parse_serve_config(
        GOOD + "broker: {reconnect_max_delay: 2, reconnect_give_up_after: 120}\n",
        "serve.yaml").broker
    assert (tuned.reconnect_max_delay, tuned.reconnect_give_up_after) == (2.0, 120.0)


def test_the_port_error_reads_as_documented() -> None:
    """A non-integer port names the file, the path, what was expected and what came."""
    with pytest.raises(ServeConfigError) as caught:
        parse_serve_config(GOOD + "broker: {port: abc}\n", "serve.yaml")
    assert str(caught.value) == "serve.yaml: broker.port: expected an integer 1-65535, got 'abc'"


@pytest.mark.parametrize(("text", "path"), [
    ("broker: {port: 0}\n", "broker.port: expected an integer 1-65535"),
    ("broker: {port: 70000}\n", "broker.port: expected an integer 1-65535"),
    ("broker: {port: true}\n", "broker.port: expected an integer 1-65535"),
    ("broker: {host: ''}\n", "broker.host: expected a host name"),
    ("broker: {client_id: 'a/b'}\n", "broker.client_id: expected 1 to 64 of"),
    ("broker: {client_id: 'a+#'}\n", "broker.client_id: expected 1 to 64 of"),
    ("broker: {colour: red}\n", "broker.colour: unknown key"),
    ("broker: [1, 2]\n", "broker: expected a mapping"),
    ("broker: {password: secret}\n", "broker.password: a password needs broker.username"),
    ("broker: {username: 7}\n", "broker.username: expected a non-empty string"),
    ("broker: {tls: {ca_file: /no/such/ca.pem}}\n", "broker.tls.ca_file: expected an existing file"),
    ("broker: {tls: {crt: x}}\n", "broker.tls.crt: unknown key"),
    ("store: mysql://db\n", "store: expected a store URL"),
    ("store: 5\n", "store: expected a store URL"),
    ("scenario: no-such-scenario\n", "scenario: no-such-scenario: (file): no such file"),
    ("policy: reckless\n", "policy: policy 'reckless': (name): expected one of"),
    ("desk_teams: fraud\n", "desk_teams: expected a list of team names"),
    ("desk_teams: [nobody]\n", "desk_teams[0]: expected a team of scenario 'baseline'"),
    ("desk_teams: [fraud, fraud]\n", "desk_teams[1]: 'fraud' is listed twice"),
    ("desk_teams: ['team/x']\n", "desk_teams[0]: expected a team name"),
    ("log_level: loud\n", "log_level: expected one of debug, info, warning, error"),
    ("max_outbox_lag: 0\n", "max_outbox_lag: expected an integer 1-1000000000"),
    ("max_outbox_lag: '5'\n", "max_outbox_lag: expected an integer 1-1000000000"),
    ("passivate_idle_after: 0\n", "passivate_idle_after: expected seconds > 0, or null"),
    ("passivate_idle_after: -5\n", "passivate_idle_after: expected seconds > 0, or null"),
    ("passivate_idle_after: .inf\n", "passivate_idle_after: expected seconds > 0, or null"),
    ("passivate_idle_after: soon\n", "passivate_idle_after: expected seconds > 0, or null"),
    ("passivate_idle_after: true\n", "passivate_idle_after: expected seconds > 0, or null"),
    ("broker: {reconnect_max_delay: 0}\n", "broker.reconnect_max_delay: expected seconds > 0 and <= 3600"),
    ("broker: {reconnect_max_delay: 7200}\n", "broker.reconnect_max_delay: expected seconds > 0 and <= 3600"),
    ("broker: {reconnect_max_delay: null}\n", "broker.reconnect_max_delay: expected seconds > 0"),
    ("broker: {reconnect_max_delay: '30'}\n", "broker.reconnect_max_delay: expected seconds > 0"),
    ("broker: {reconnect_give_up_after: 0}\n",
     "broker.reconnect_give_up_after: expected seconds > 0, or null (never)"),
    ("broker: {reconnect_give_up_after: .inf}\n",
     "broker.reconnect_give_up_after: expected seconds > 0, or null (never)"),
    ("broker: {reconnect_give_up_after: true}\n",
     "broker.reconnect_give_up_after: expected seconds > 0, or null (never)"),
    ("http: {port: -1, tokens: {" + TOKEN + ": ops}}\n", "http.port: expected an integer 0-65535"),
    ("verbose: true\n", "verbose: unknown key"),
    ("ingest: [1]\n", "ingest: expected a mapping of source name -> source"),
    ("ingest: {wms: {kind: nope}}\n", "ingest.wms.kind: expected one of shopify, envelope"),
    ("ingest: {wms: {kind: envelope, topic: x}}\n", "ingest.wms.topic: not a field"),
    ("ingest: {shop: {kind: shopify, shop: ACME, secret: s3cr3t-long}}\n",
     "ingest.shop.shop: expected a lower-case shop handle"),
    ("ingest: {shop: {kind: shopify, shop: acme, secret: short}}\n",
     "ingest.shop.secret: expected the app's webhook signing secret"),
])
def test_a_bad_field_is_refused_with_its_path(text: str, path: str) -> None:
    """Each bad value or unknown key is refused, and the problem starts with its path."""
    if "http:" not in text:
        text = GOOD + text
    problems = _problems(text)
    assert any(problem.startswith(path) for problem in problems), problems


@pytest.mark.parametrize(("http", "expected"), [
    (None, "http: missing"),
    ("{bind: 127.0.0.1}", "http.tokens: expected a mapping of token -> principal"),
    ("{tokens: {}}", "http.tokens: expected a mapping of token -> principal"),
    ("{tokens: {tiny-secret: ops}}", "http.tokens[0]: expected a token of at least 16 characters"),
    ("{tokens: {" + TOKEN + ": ''}}", "http.tokens[0] (principal): expected a non-empty name"),
    ("{tokens: {" + TOKEN + ": ops}, tls: on}", "http.tls: unknown key"),
])
def test_tokens_are_required_and_checked(http: str | None, expected: str) -> None:
    """At least one token of 16+ characters naming a principal; a bad token is named by
    its position, never quoted (it is a secret)."""
    text = "" if http is None else f"http: {http}\n"
    problems = _problems(text or "log_level: info\n")
    assert any(problem.startswith(expected) for problem in problems), problems
    assert not any("tiny-secret" in problem for problem in problems)


def test_every_problem_is_listed_at_once() -> None:
    """A config with several mistakes lists them all, not just the first."""
    problems = _problems(GOOD + "broker: {port: abc, host: ''}\nlog_level: loud\nstore: x\n")
    assert [p.split(":", 1)[0] for p in problems] == [
        "broker.host", "broker.port", "store", "log_level"]


@pytest.mark.parametrize("text", ["[1, 2]\n", "just text\n", "a: [\n"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    """Not YAML, or YAML that is not a mapping, is refused as a whole."""
    problems = _problems(text)
    assert problems[0].startswith(("(document): expected a mapping", "(file): not valid YAML"))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """A config path that does not exist is an error naming the file."""
    with pytest.raises(ServeConfigError) as caught:
        load_serve_config(tmp_path / "nope.yaml")
    assert str(caught.value).startswith(f"{tmp_path / 'nope.yaml'}: (file): cannot be read")


def test_relative_files_resolve_next_to_the_config(tmp_path: Path) -> None:
    """A policy or TLS file named relative to the config's folder is found there."""
    (tmp_path / "ca.pem").write_text("not checked here\n", encoding="utf-8")
    policy = (ROOT / "actors" / "coordinator" / "policies" / "aggressive.yaml").read_text(
        encoding="utf-8")
    (tmp_path / "mine.yaml").write_text(policy, encoding="utf-8")
    path = tmp_path / "serve.yaml"
    path.write_text(GOOD + "policy: mine.yaml\nbroker: {tls: {ca_file: ca.pem}}\n",
                    encoding="utf-8")
    config = load_serve_config(path)
    assert config.broker.tls is not None
    assert config.broker.tls.ca_file == str(tmp_path / "ca.pem")
    assert config.settings.policy.name == "aggressive"


@pytest.mark.parametrize("text", [
    "store: mysql://admin:pa55word-xyz@db/orders\n",
    "broker: {username: u, password: 12345678}\n",
])
def test_a_refused_secret_is_never_echoed(text: str) -> None:
    """A store URL of an unknown scheme (it may hold a password) or a password of
    the wrong type is refused without its value in the message."""
    problems = _problems(GOOD + text)
    assert problems and not any(s in p for p in problems for s in ("pa55word", "12345678"))


def test_the_password_stays_out_of_the_repr() -> None:
    """A config printed for debugging shows neither the broker password nor the tokens."""
    config = parse_serve_config(
        GOOD + "broker: {username: u, password: hunter2-secret}\n"
        "ingest: {shop: {kind: shopify, shop: acme, secret: webhook-secret-9}}\n", "serve.yaml")
    assert "hunter2-secret" not in repr(config)
    assert "webhook-secret-9" not in repr(config)
    assert TOKEN not in repr(config)


def test_every_field_is_documented() -> None:
    """docs/serve.md's field table lists exactly the fields the loader accepts."""
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    table = text.split("| field | default | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `([a-z_.]+)` \|", table, flags=re.M)
    assert documented == list(FIELDS)
