"""Scenario warnings: a fault that can never act, a section left to its defaults."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from orderloom.simulation import (
    LinkFaults,
    builtin_scenarios,
    load_builtin_scenario,
    scenario_sections,
    scenario_warnings,
    starter_scenario,
)
from orderloom.simulation._scenario import FaultSpec

ROOT = Path(__file__).resolve().parents[2]


def _with(*faults: FaultSpec, name: str = "baseline") -> list[str]:
    scenario = load_builtin_scenario(name)
    return [str(w) for w in scenario_warnings(attrs.evolve(scenario, faults=faults))]


@pytest.mark.parametrize("name", builtin_scenarios())
def test_shipped_scenarios_have_no_warnings(name: str) -> None:
    """Every shipped scenario, read with its file's sections, is warning-free."""
    path = ROOT / "scenarios" / f"{name}.yaml"
    assert scenario_warnings(load_builtin_scenario(name),
                             sections=scenario_sections(path)) == ()


def test_the_starter_scenario_has_no_warnings(tmp_path: Path) -> None:
    """The file 'init scenario' writes is warning-free."""
    from orderloom.simulation import load_scenario

    path = tmp_path / "shop.yaml"
    path.write_text(starter_scenario("shop"), encoding="utf-8")
    assert scenario_warnings(load_scenario(path), sections=scenario_sections(path)) == ()


def test_a_fault_starting_at_or_after_the_horizon_never_fires() -> None:
    """A fault starting at the horizon is named as one that never fires."""
    assert _with(FaultSpec(kind="gateway_outage", start=86400.0)) == [
        "faults[0].start: never fires: it starts at 86400 s (24 h), at or after the "
        "horizon (86400 s (24 h))"]


def test_a_fault_ending_before_the_warm_up_acts_on_unmeasured_time() -> None:
    """A fault that is over when the warm-up ends is named."""
    assert _with(FaultSpec(kind="gateway_outage", start=0.0, end=1800.0)) == [
        "faults[0].end: ends at 1800 s (0.5 h), before the warm-up ends (3600 s (1 h)): "
        "it acts only on time that is not measured"]


def test_a_link_fault_of_zeros_and_a_slow_gateway_of_factor_one_change_nothing() -> None:
    """A link fault with every probability 0, and a 'slow' outage with factor 1, are named."""
    found = _with(FaultSpec(kind="link", sender="gateway", recipient="order/*",
                            link=LinkFaults(delay=0.5)),
                  FaultSpec(kind="gateway_outage", mode="slow", factor=1.0, start=7200.0))
    assert [w.split(":")[0] for w in found] == ["faults[0].link", "faults[1].factor"]
    assert "changes no message" in found[0]


def test_a_fault_on_what_never_receives_traffic_is_named() -> None:
    """A link glob matching no address, and an absence of a team nobody sends
    cases to, never act."""
    found = _with(FaultSpec(kind="link", sender="warehouse/W9", recipient="order/*",
                            link=LinkFaults(drop=0.1)),
                  FaultSpec(kind="team_absence", target="fraud", start=7200.0),
                  name="mmc-review-desk")
    assert [w.split(":")[0] for w in found] == [
        "faults[0].sender", "faults[0].recipient", "faults[0].kind", "faults[1].target"]
    assert "'warehouse/W9' matches no address" in found[0]
    assert "team 'fraud' never gets a case" in found[3]


def test_a_missing_optional_section_names_the_default_taken(tmp_path: Path) -> None:
    """Leaving out gateway, downstream, address or warm_up warns, naming the default."""
    text = (ROOT / "scenarios" / "baseline.yaml").read_text()
    path = tmp_path / "bare.yaml"
    lines = text.splitlines(keepends=True)
    # gateway (2 lines), then teams, then downstream and address (to the end).
    gateway = lines.index("gateway:\n")
    teams, downstream = lines.index("teams:\n"), lines.index("downstream:\n")
    kept = lines[:gateway] + lines[teams:downstream]
    path.write_text("".join(kept).replace("warm_up: 1h\n", ""), encoding="utf-8")
    from orderloom.simulation import load_scenario

    found = [str(w) for w in scenario_warnings(load_scenario(path),
                                               sections=scenario_sections(path))]
    assert [w.split(":")[0] for w in found] == ["warm_up", "gateway", "downstream", "address"]
    assert found[1] == ("gateway: not given; taking the default payment gateway "
                        "(a constant 1 s latency, no lost responses)")
