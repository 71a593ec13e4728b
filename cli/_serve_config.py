"""The ``orderloom serve --config FILE`` document: parsed and strictly checked.

Every problem names the file and the path of the bad field, and says what was
expected (``serve.yaml: broker.port: expected an integer 1-65535, got 'abc'``).
Unknown keys are refused (a misspelt key would otherwise be silently ignored).
The scenario and policy are resolved here too, so a bad name fails at load,
not when the first order arrives.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from orderloom.actors import (
    DocumentError,
    IngestConfigError,
    OrderSettings,
    PolicyError,
    ShopifySource,
    EnvelopeSource,
    ingest_sources,
)
from orderloom.runtime import STORE_URL_FORMS
from orderloom.simulation import resolve_run, world_for

__all__ = ["BrokerConfig", "FIELDS", "HttpConfig", "LOG_LEVELS", "ServeConfig", "ServeConfigError",
           "TlsConfig", "load_serve_config", "parse_serve_config"]

LOG_LEVELS = ("debug", "info", "warning", "error")
FIELDS = (
    "broker.host", "broker.port", "broker.client_id", "broker.username", "broker.password",
    "broker.tls", "broker.tls.ca_file", "broker.tls.cert_file", "broker.tls.key_file",
    "broker.reconnect_max_delay", "broker.reconnect_give_up_after",
    "store", "scenario", "policy", "desk_teams", "http.bind", "http.port", "http.tokens",
    "log_level", "max_outbox_lag", "passivate_idle_after", "ingest",
)
"""Every field a serve config may have, by path (docs/serve.md documents each)."""


def _keys(section: str) -> tuple[str, ...]:
    """The keys a section (``""`` for the top) accepts, in :data:`FIELDS` order."""
    prefix = f"{section}." if section else ""
    keys: list[str] = []
    for path in FIELDS:
        if path.startswith(prefix):
            key = path[len(prefix):].split(".", 1)[0]
            if key not in keys:
                keys.append(key)
    return tuple(keys)
PASSIVATE_IDLE_AFTER = 300.0
"""Default of ``passivate_idle_after``: an open order's actor that has had no
turn for 5 minutes stops, its memory freed; it comes back from its journal for
its next message or timer. Far above a gateway's or a warehouse's usual
answer time, so an order in flow is not stopped between two steps."""
RECONNECT_MAX_DELAY = 30.0
"""Default of ``broker.reconnect_max_delay``: the longest wait (seconds)
between two reconnect attempts. Short enough that serve is back within
half a minute of the broker, long enough that a broker down for long is not
hammered (a wait doubles from 0.2 s up to this, jittered)."""
RECONNECT_MAX_DELAY_LIMIT = 3600.0
"""The largest ``broker.reconnect_max_delay`` accepted (seconds)."""
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TEAM = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_STORE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "memory:")


class ServeConfigError(ValueError):
    """A serve config is invalid.

    Attributes:
        source: the file.
        problems: one ``"path: what was expected, got what"`` line per problem.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


@attrs.frozen(kw_only=True)
class TlsConfig:
    """Files for TLS to the broker (PEM). Invariant: each given file exists."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@attrs.frozen(kw_only=True)
class BrokerConfig:
    """Where the MQTT broker is and how to log in."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "orderloom-serve"
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    tls: TlsConfig | None = None
    reconnect_max_delay: float = RECONNECT_MAX_DELAY
    reconnect_give_up_after: float | None = None


@attrs.frozen(kw_only=True)
class HttpConfig:
    """The operations HTTP side. Invariant: at least one token."""

    bind: str = "127.0.0.1"
    port: int = 8080
    tokens: Mapping[str, str] = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class ServeConfig:
    """A checked serve config, with its scenario's order settings resolved.

    Attributes:
        settings: the order settings of ``scenario`` run with ``policy``: the
            warehouses, downstream systems, address service and timeouts the
            coordinator expects outside (the emulators run the same scenario).
        teams: the scenario's team names (``desk_teams`` is a subset).
        passivate_idle_after: seconds without a turn after which an open
            order's actor stops until its next message or timer (None: never);
            serve sets it on ``settings``.
    """

    source: str
    broker: BrokerConfig
    store: str
    scenario: str
    policy: str | None
    desk_teams: tuple[str, ...]
    http: HttpConfig
    log_level: str
    max_outbox_lag: int
    passivate_idle_after: float | None = PASSIVATE_IDLE_AFTER
    settings: OrderSettings = attrs.field(repr=False)
    ingest: Mapping[str, ShopifySource | EnvelopeSource] = attrs.field(factory=dict, repr=False)
    teams: tuple[str, ...]


def load_serve_config(path: str | Path) -> ServeConfig:
    """Read and check a serve config file.

    Raises:
        ServeConfigError: the file cannot be read, is not YAML, or any field
            is wrong (every problem is listed).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = ("is not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
                  else f"cannot be read: {exc.strerror}")
        raise ServeConfigError(str(path), [f"(file): {reason}"]) from exc
    return parse_serve_config(text, str(path), base=path.parent)


def parse_serve_config(text: str, source: str, *, base: Path | None = None) -> ServeConfig:
    """Check a serve config's YAML text (``source`` names it in errors).

    Relative scenario, policy and TLS file paths are taken relative to the
    working directory first, then to ``base`` (the config's folder).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ServeConfigError(source, [f"(file): not valid YAML{where}"]) from exc
    return _Checker(source, base).config(data)


class _Checker:
    """Collects every problem of one document, then raises them together."""

    def __init__(self, source: str, base: Path | None) -> None:
        self.source = source
        self.base = base
        self.problems: list[str] = []

    def bad(self, path: str, expected: str, got: object) -> None:
        self.problems.append(f"{path}: expected {expected}, got {got!r}")

    def mapping(self, path: str, value: object, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.bad(path or "(document)", "a mapping", value)
            return {}
        for key in value:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                self.problems.append(f"{where}: unknown key (expected one of {', '.join(known)})")
        return value

    def string(self, path: str, value: object, *, pattern: re.Pattern[str] | None = None,
               what: str = "a non-empty string", secret: bool = False) -> str | None:
        if not isinstance(value, str) or not value.strip() or (
                pattern is not None and not pattern.fullmatch(value)):
            if secret:  # never echoed: say only what kind of value it was
                self.problems.append(f"{path}: expected {what}, got a "
                                     f"{type(value).__name__} (not shown)")
            else:
                self.bad(path, what, value)
            return None
        return value

    def integer(self, path: str, value: object, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.bad(path, f"an integer {low}-{high}", value)
            return None
        return value

    def seconds(self, path: str, value: object, *, high: float = math.inf,
                nullable: bool = False) -> float | None:
        """A number of seconds > 0 (and <= ``high``); None if it is wrong or null."""
        if value is None and nullable:
            return None
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 < value <= high or value == math.inf):
            limit = f" and <= {high:g}" if high < math.inf else ""
            self.bad(path, f"seconds > 0{limit}" + (", or null (never)" if nullable else ""),
                     value)
            return None
        return float(value)

    def file(self, path: str, value: object) -> str | None:
        name = self.string(path, value, what="a file path")
        if name is None:
            return None
        found = self.existing(name)
        if found is None:
            self.problems.append(f"{path}: expected an existing file, got {name!r} (no such file)")
        return found

    def existing(self, name: str) -> str | None:
        for candidate in (Path(name), *((self.base / name,) if self.base else ())):
            if candidate.is_file():
                return str(candidate)
        return None

    # -- the sections ------------------------------------------------------------------

    def config(self, data: object) -> ServeConfig:
        top = self.mapping("", data, _keys(""))
        broker = self.broker(top.get("broker", {}))
        store = self.store(top.get("store", "sqlite:///orderloom.db"))
        http = self.http(top.get("http"))
        log_level = top.get("log_level", "info")
        if log_level not in LOG_LEVELS:
            self.bad("log_level", f"one of {', '.join(LOG_LEVELS)}", log_level)
        lag = self.integer("max_outbox_lag", top.get("max_outbox_lag", 1000), 1, 10**9)
        passivate = top.get("passivate_idle_after", PASSIVATE_IDLE_AFTER)
        if passivate is not None and (isinstance(passivate, bool)
                                      or not isinstance(passivate, (int, float))
                                      or not 0 < passivate < math.inf):
            self.bad("passivate_idle_after", "seconds > 0, or null (never)", passivate)
            passivate = None
        scenario = self.string("scenario", top.get("scenario", "baseline"),
                               what="a scenario name or file")
        policy = top.get("policy")
        if policy is not None:
            policy = self.string("policy", policy, what="a built-in policy name or a file")
        desk = self.desk_teams(top.get("desk_teams", []))
        settings, teams = self.world(scenario, policy, desk)
        ingest = self.ingest(top.get("ingest", {}))
        if self.problems:
            raise ServeConfigError(self.source, self.problems)
        assert broker is not None and store is not None and http is not None  # no problems
        assert settings is not None and scenario is not None and lag is not None
        return ServeConfig(source=self.source, broker=broker, store=store, scenario=scenario,
                           policy=policy, desk_teams=desk, http=http, log_level=log_level,
                           max_outbox_lag=lag, settings=settings, teams=teams, ingest=ingest,
                           passivate_idle_after=(float(passivate) if passivate is not None
                                                 else None))

    def broker(self, value: object) -> BrokerConfig | None:
        raw = self.mapping("broker", value, _keys("broker"))
        host = self.string("broker.host", raw.get("host", "127.0.0.1"), what="a host name")
        port = self.integer("broker.port", raw.get("port", 1883), 1, 65535)
        client_id = self.string(
            "broker.client_id", raw.get("client_id", "orderloom-serve"), pattern=_CLIENT_ID,
            what="1 to 64 of A-Z a-z 0-9 . _ : -")
        username = raw.get("username")
        password = raw.get("password")
        if username is not None:
            username = self.string("broker.username", username)
        if password is not None:
            password = self.string("broker.password", password, secret=True)
            if username is None and "username" not in raw:
                self.problems.append("broker.password: a password needs broker.username")
        tls = None
        if raw.get("tls") is not None:
            files = self.mapping("broker.tls", raw["tls"], _keys("broker.tls"))
            found = {key: self.file(f"broker.tls.{key}", files[key])
                     for key in ("ca_file", "cert_file", "key_file") if files.get(key) is not None}
            if ("cert_file" in files) != ("key_file" in files):
                self.problems.append("broker.tls: cert_file and key_file go together "
                                     "(a client certificate needs its key)")
            tls = TlsConfig(**found)
        max_delay = self.seconds("broker.reconnect_max_delay",
                                 raw.get("reconnect_max_delay", RECONNECT_MAX_DELAY),
                                 high=RECONNECT_MAX_DELAY_LIMIT)
        give_up = self.seconds("broker.reconnect_give_up_after",
                               raw.get("reconnect_give_up_after"), nullable=True)
        if host is None or port is None or client_id is None or max_delay is None:
            return None
        return BrokerConfig(host=host, port=port, client_id=client_id, username=username,
                            password=password, tls=tls, reconnect_max_delay=max_delay,
                            reconnect_give_up_after=give_up)

    def store(self, value: object) -> str | None:
        url = self.string("store", value, what="a store URL", secret=True)
        if url is not None and not url.lower().startswith(_STORE_SCHEMES):
            # A URL may carry a password: only its scheme is shown.
            scheme = url.split(":", 1)[0] if ":" in url else "no scheme"
            self.problems.append(f"store: expected a store URL: {'; '.join(STORE_URL_FORMS)}, "
                                 f"got one with scheme {scheme!r} (the URL is not shown)")
            return None
        return url

    def http(self, value: object) -> HttpConfig | None:
        if value is None:
            self.problems.append("http: missing (http.tokens needs at least one token)")
            return None
        raw = self.mapping("http", value, _keys("http"))
        bind = self.string("http.bind", raw.get("bind", "127.0.0.1"), what="an address to bind")
        port = self.integer("http.port", raw.get("port", 8080), 0, 65535)
        tokens = raw.get("tokens")
        checked: dict[str, str] = {}
        if not isinstance(tokens, dict) or not tokens:
            self.bad("http.tokens", "a mapping of token -> principal with at least one "
                                    "entry", tokens)
        else:
            for i, (token, principal) in enumerate(tokens.items()):
                # Name the entry by position: the token itself is a secret.
                if not isinstance(token, str) or len(token) < 16:
                    self.problems.append(f"http.tokens[{i}]: expected a token of at least 16 "
                                         "characters (a short one is guessable)")
                elif not isinstance(principal, str) or not principal.strip():
                    self.bad(f"http.tokens[{i}] (principal)", "a non-empty name", principal)
                else:
                    checked[token] = principal
        if bind is None or port is None:
            return None
        return HttpConfig(bind=bind, port=port, tokens=checked)

    def ingest(self, value: object) -> dict[str, ShopifySource | EnvelopeSource]:
        try:
            return ingest_sources(value, source="ingest")
        except IngestConfigError as exc:
            self.problems.extend(f"ingest.{problem}" if not problem.startswith("expected")
                                 else f"ingest: {problem}" for problem in exc.problems)
            return {}

    def desk_teams(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.bad("desk_teams", "a list of team names", value)
            return ()
        names: list[str] = []
        for i, name in enumerate(value):
            checked = self.string(f"desk_teams[{i}]", name, pattern=_TEAM, what="a team name")
            if checked is not None:
                if checked in names:
                    self.problems.append(f"desk_teams[{i}]: {checked!r} is listed twice")
                names.append(checked)
        return tuple(names)

    def world(self, scenario: str | None, policy: str | None,
              desk: tuple[str, ...]) -> tuple[OrderSettings | None, tuple[str, ...]]:
        if scenario is None:
            return None, ()
        if policy is not None and self.base is not None and self.existing(policy):
            policy = self.existing(policy)
        if self.base is not None and (found := self.existing(scenario)) is not None:
            scenario = found
        try:
            resolved = resolve_run(scenario, policy=policy)
            world = world_for(resolved, resolved.policy, random.Random(0)).world
        except DocumentError as exc:
            where = "policy" if isinstance(exc, PolicyError) else "scenario"
            self.problems.extend(f"{where}: {exc.source}: {line}" for line in exc.problems)
            return None, ()
        except ValueError as exc:  # a policy routing to a team the scenario lacks
            self.problems.append(f"policy: {exc}")
            return None, ()
        teams = tuple(team.name for team in world.teams)
        for i, name in enumerate(desk):
            if name not in teams:
                self.bad(f"desk_teams[{i}]", f"a team of scenario {resolved.name!r} "
                                             f"({', '.join(teams) or 'it has none'})", name)
        return world.settings(), teams
