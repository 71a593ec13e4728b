"""A misspelt name a user gives (policy, team, fault target) is blamed on the
field it sits in and answered with the nearest valid name."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderloom.actors import PolicyError, did_you_mean, resolve_policy
from orderloom.simulation import ScenarioError, builtin_scenarios, load_scenario, resolve_scenario

BASELINE = Path(__file__).resolve().parents[2] / "scenarios" / "baseline.yaml"


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return caught.value.problems


def test_did_you_mean_names_the_nearest_and_nothing_when_none_is_near() -> None:
    """did_you_mean offers the nearest names only, and is empty for a name far from all."""
    teams = ["customer-care", "fraud", "fulfillment-ops", "payments-ops"]
    assert did_you_mean("fulfilment-ops", teams) == "did you mean fulfillment-ops?"
    assert did_you_mean("xyzzy", teams) == ""


def test_an_unknown_policy_name_suggests_the_nearest_shipped_one() -> None:
    """resolve_policy refuses a name that is neither shipped nor a file, naming the nearest."""
    with pytest.raises(PolicyError) as caught:
        resolve_policy("balancd")
    assert caught.value.problems == [
        "(name): expected one of ['aggressive', 'balanced', 'cautious'] or a policy file, "
        "got 'balancd'; did you mean balanced?"]


def test_a_scenarios_unknown_policy_name_suggests_the_nearest(tmp_path: Path) -> None:
    """A scenario's policy field naming no shipped policy or file suggests the nearest."""
    text = BASELINE.read_text().replace("policy: balanced", "policy: cautios")
    assert any(p.startswith("policy: ") and p.endswith("did you mean cautious?")
               for p in _problems(tmp_path, text))


def test_a_misspelt_team_is_blamed_on_the_scenarios_team_not_the_policy(tmp_path: Path) -> None:
    """A team name the shipped policy routes to, misspelt in the scenario, names teams[i].name."""
    text = BASELINE.read_text().replace("name: fraud\n", "name: frud\n")
    assert _problems(tmp_path, text) == [
        "teams[1].name: expected 'fraud' (policy 'balanced' routes high_risk_of_fraud cases "
        "to 'fraud'), got 'frud'; did you mean fraud?"]


def test_a_misspelt_reassign_to_names_its_field_and_the_nearest_team(tmp_path: Path) -> None:
    """A reassign_to naming no team of the scenario is blamed on that team's reassign_to."""
    text = BASELINE.read_text().replace("reassign_to: [fulfillment-ops]",
                                        "reassign_to: [fulfilment-ops]")
    assert _problems(tmp_path, text) == [
        "teams[2].reassign_to: expected names of this scenario's teams ['customer-care', "
        "'fraud', 'fulfillment-ops', 'payments-ops'], got 'fulfilment-ops'; "
        "did you mean fulfillment-ops?"]


@pytest.mark.parametrize(("fault", "message"), [
    ("{kind: team_absence, target: fruad}", "faults[0].target: expected one of "
     "['customer-care', 'fraud', 'fulfillment-ops', 'payments-ops'], got 'fruad'; "
     "did you mean fraud?"),
    ("{kind: warehouse_outage, target: w2}", "faults[0].target: expected one of "
     "['W1', 'W2'], got 'w2'; did you mean W2?"),
    ("{kind: downstream_outage, target: finanse}", "faults[0].target: expected one of "
     "['crm', 'finance', 'notifications', 'support'], got 'finanse'; did you mean finance?"),
])
def test_a_misspelt_fault_target_suggests_the_nearest(
        tmp_path: Path, fault: str, message: str) -> None:
    """A fault target naming no team, warehouse or downstream system suggests the nearest."""
    text = BASELINE.read_text() + f"faults:\n  - {fault}\n"
    assert _problems(tmp_path, text) == [message]


def test_an_unknown_scenario_name_suggests_the_nearest_shipped_one(tmp_path: Path) -> None:
    """resolve_scenario, from a folder with no scenarios, suggests the nearest shipped name."""
    assert "baseline" in builtin_scenarios()
    with pytest.raises(ScenarioError) as caught:
        resolve_scenario("basline", search=tmp_path)
    assert caught.value.problems[0].endswith("; did you mean baseline?")


def test_a_custom_policys_team_near_a_scenario_team_asks_which_is_misspelt(
        tmp_path: Path) -> None:
    """With an inline policy routing to 'frud', the scenario's 'fraud' may be right: the
    error names the team field and asks whether the policy is misspelt instead."""
    text = BASELINE.read_text().replace(
        "policy: balanced", "policy:\n  name: mine\n  fulfillment_trigger: payment_authorized\n"
        "  routing:\n    high_risk_of_fraud: {team: frud, deadline: 4h}")
    assert _problems(tmp_path, text) == [
        "teams[1].name: expected 'frud' (policy 'mine' routes high_risk_of_fraud cases to "
        "'frud'), got 'fraud'; or is the policy's 'frud' misspelt?"]
