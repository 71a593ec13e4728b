"""`orderloom emulate`'s choice of actors: kinds, ids and the broker address,
checked against the scenario before anything connects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orderloom.cli._emulate import (
    KINDS,
    EmulateError,
    default_client_id,
    emulation,
    kernel_start,
    new_epoch,
    parse_broker,
)
from orderloom.cli._main import emulate as emulate_command
from orderloom.simulation import Scenario, load_builtin_scenario, load_scenario

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("unit.test_emulate")

QUICK = Path(__file__).parent.parent / "fixtures" / "emulate" / "quick.yaml"


@pytest.fixture(scope="module")
def baseline() -> Scenario:
    return load_builtin_scenario("baseline")


@pytest.mark.parametrize(("kind", "ident", "address"), [
    ("gateway", None, "gateway"),
    ("address", None, "address-service"),
    ("warehouse", "W2", "warehouse/W2"),
    ("support", "fraud", "team/fraud"),
    ("downstream", "crm", "crm"),
])
def test_a_kind_and_id_select_one_actor_of_the_world(
        baseline: Scenario, kind: str, ident: str | None, address: str) -> None:
    """Each kind with its id (none for gateway and address) runs exactly the
    actor at its address, labelled by it."""
    run = emulation(baseline, kind, ident, "e1")
    assert list(run.actors) == [address]
    assert run.label == address


def test_all_runs_every_actor_of_the_world_but_those_left_out(baseline: Scenario) -> None:
    """`all` runs the gateway, every warehouse, team and downstream system and
    the address service; `--without` leaves the named addresses out."""
    everything = emulation(baseline, "all", None, "e1")
    assert sorted(everything.actors) == sorted([
        "gateway", "warehouse/W1", "warehouse/W2", "team/payments-ops", "team/fraud",
        "team/customer-care", "team/fulfillment-ops", "finance", "crm", "support",
        "notifications", "address-service"])
    rest = emulation(baseline, "all", None, "e1", ("gateway", "warehouse/W1"))
    assert sorted(rest.actors) == sorted(set(everything.actors) - {"gateway", "warehouse/W1"})
    assert rest.label != everything.label


@pytest.mark.parametrize(("kind", "ident", "without", "message"), [
    ("warehouse", None, (), "--id: 'warehouse' needs an id, one of ['W1', 'W2']"),
    ("warehouse", "W9", (), "no warehouse 'W9' in scenario 'baseline'; expected one of "
                            "['W1', 'W2']"),
    ("support", "sales", (), "expected one of ['payments-ops', 'fraud', 'customer-care', "
                             "'fulfillment-ops']"),
    ("downstream", "erp", (), "expected one of ['finance', 'crm', 'support', 'notifications']"),
    ("gateway", "G1", (), "--id: 'gateway' takes no id"),
    ("address", "A", (), "--id: 'address' takes no id"),
    ("all", "x", (), "--id: 'all' takes no id"),
    ("teleporter", None, (), "KIND: expected one of"),
    ("gateway", None, ("finance",), "--without: only with 'all'"),
    ("all", None, ("warehouse/W9",), "--without: ['warehouse/W9'] not in scenario 'baseline'"),
])
def test_a_wrong_kind_id_or_without_is_refused_naming_the_valid_ones(
        baseline: Scenario, kind: str, ident: str | None, without: tuple[str, ...],
        message: str) -> None:
    """A missing, unknown or superfluous id, an unknown kind and a bad --without
    raise EmulateError (a usage error, exit 2) that says what is valid."""
    with pytest.raises(EmulateError, match=re.escape(message)):
        emulation(baseline, kind, ident, "e1", without)


def test_leaving_every_actor_out_is_refused() -> None:
    """`all --without` every address leaves nothing to run: a usage error."""
    scenario = load_scenario(QUICK)
    every = tuple(emulation(scenario, "all", None, "e1").actors)
    with pytest.raises(EmulateError, match="leaves no actor"):
        emulation(scenario, "all", None, "e1", every)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:1883", ("127.0.0.1", 1883)),
    ("broker.local:8883", ("broker.local", 8883)),
    ("localhost", ("localhost", 1883)),
])
def test_the_broker_is_host_and_port(text: str, expected: tuple[str, int]) -> None:
    """`--broker` is HOST:PORT, the port 1883 when left out."""
    assert parse_broker(text) == expected


@pytest.mark.parametrize("text", ["", ":1883", "host:", "host:0", "host:70000", "host:x1"])
def test_a_malformed_broker_is_a_usage_error(text: str) -> None:
    """A `--broker` without a host or with a port outside 1..65535 is refused."""
    with pytest.raises(EmulateError, match="--broker: expected HOST:PORT"):
        parse_broker(text)


def test_each_start_is_a_new_epoch_and_the_client_id_is_stable() -> None:
    """Two starts get different epochs (valid in a source name); the default
    client id depends on the address only, so a restart resumes its session."""
    first, second = new_epoch(), new_epoch()
    assert first != second
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,40}", first)
    assert default_client_id("warehouse/W1") == "orderloom-emulate-warehouse-W1"


def test_the_command_offers_exactly_the_kinds_it_knows() -> None:
    """The CLI's KIND choice and the emulator's kinds are the same list."""
    kind = next(p for p in emulate_command.params if p.name == "kind")
    assert tuple(kind.type.choices) == KINDS  # type: ignore[attr-defined]


def test_the_clock_starts_at_the_scenario_hour_or_at_the_wall_clock() -> None:
    """Kernel time starts at `--start-hour` hours of scenario time (0 by
    default) or, with `--wall-clock`, at now; both at once are refused."""
    assert kernel_start(None, False, 1.7e9) == 0.0
    assert kernel_start(9.5, False, 1.7e9) == 9.5 * 3600
    assert kernel_start(None, True, 1.7e9) == 1.7e9
    with pytest.raises(EmulateError, match="--start-hour: not with --wall-clock"):
        kernel_start(0.0, True, 1.7e9)


def test_a_ledger_line_names_the_command_by_its_own_id() -> None:
    """The ledger records a gateway request by its request_id and a message
    without a command id (an address check) with command_id None."""
    from orderloom.actors.coordinator._protocol import CheckAddress, GatewayAuthorize
    from orderloom.cli._emulate import LEDGER_KEYS, ledger_line
    from orderloom.runtime import Address, Envelope

    authorize = GatewayAuthorize(order_id="o1", request_id="pay:o1:1",
                                 notify=Address("order/o1"), amount=1000)
    line = ledger_line(Envelope("m1", None, "o1", Address("order/o1"), Address("gateway"),
                                0.0, authorize))
    assert line == {"message_id": "m1", "recipient": "gateway", "type": "GatewayAuthorize",
                    "order_id": "o1", "command_id": "pay:o1:1"}
    assert tuple(line) == LEDGER_KEYS
    check = ledger_line(Envelope("m2", None, None, None, Address("address-service"), 0.0,
                                 CheckAddress(order_id="o1")))
    assert (check["type"], check["order_id"], check["command_id"]) == ("CheckAddress", "o1", None)
