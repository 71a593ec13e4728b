"""``no_irreversible_while_held``: only a person's approval lets an
irreversible action through while an exception hold is open."""

from __future__ import annotations

from typing import Any

import pytest

from orderloom.actors import (
    Approver,
    ApproveShipment,
    CancelOrder,
    CapturePayment,
    HoldReason,
    OpenHold,
    OrderState,
    PlaceOrder,
    ReleaseHold,
    SubmitFulfillment,
    check_decision,
    handle,
)
from tests.strategies import command, lines


def _placed(held: bool) -> OrderState:
    state, _ = handle(OrderState(order_id="O1"), command(
        PlaceOrder, 1, customer_id="C1", currency="EUR", lines=lines(("L1", 1, 1000))))
    if held:
        state, _ = handle(state, command(OpenHold, 2, hold_id="H1",
                                         reason=HoldReason.HIGH_RISK_OF_FRAUD,
                                         owner_team="fraud", deadline=100.0))
    return state


IRREVERSIBLE: list[tuple[type[Any], dict[str, Any]]] = [
    (CapturePayment, {"authorization_id": "A1", "amount": 1000}),
    (CancelOrder, {"reason": "asked"}),
    (SubmitFulfillment, {"fulfillment_order_id": "F1"}),
]


@pytest.mark.parametrize(("cls", "fields"), IRREVERSIBLE)
@pytest.mark.parametrize("approver", [Approver.AUTOMATION, Approver.CUSTOMER, None])
def test_unreviewed_irreversible_while_held_is_a_violation(
        cls: type[Any], fields: dict[str, Any], approver: Approver | None) -> None:
    """Automation's waiver, a customer's request or no approval at all: a violation."""
    name = None if approver is None else f"{approver.value}:x"
    cmd = command(cls, 9, approved_by=name, approver=approver, **fields)
    (violation,) = check_decision(_placed(held=True), cmd)
    assert violation.name == "no_irreversible_while_held"
    assert "H1 (high_risk_of_fraud)" in violation.detail and cmd.command_id in violation.detail


@pytest.mark.parametrize(("cls", "fields"), IRREVERSIBLE)
def test_a_persons_approval_or_no_hold_is_fine(cls: type[Any], fields: dict[str, Any]) -> None:
    """A person's approval while held, and any approval with no hold open, pass."""
    by_person = command(cls, 9, approved_by="fraud#1", approver=Approver.PERSON, **fields)
    assert check_decision(_placed(held=True), by_person) == ()
    by_automation = command(cls, 9, approved_by="automation:x", approver=Approver.AUTOMATION,
                            **fields)
    assert check_decision(_placed(held=False), by_automation) == ()


def test_reversible_commands_and_shipment_approvals() -> None:
    """A release is no irreversible action; automation's shipment approval while held is."""
    held = _placed(held=True)
    assert check_decision(held, command(ReleaseHold, 9, hold_id="H1", resolution="ok")) == ()
    auto = command(ApproveShipment, 9, approved_by="automation:x", reason="policy",
                   approver=Approver.AUTOMATION)
    assert [v.name for v in check_decision(held, auto)] == ["no_irreversible_while_held"]


def test_approver_and_name_go_together() -> None:
    """An approver without a name, or a name without its kind, is refused when
    the command is built: an approval of unknown kind never passes for a person's."""
    with pytest.raises(ValueError, match="both be set or both None"):
        command(CancelOrder, 9, reason="x", approver=Approver.AUTOMATION)
    with pytest.raises(ValueError, match="both be set or both None"):
        command(CancelOrder, 9, reason="x", approved_by="automation:balanced")
    with pytest.raises(TypeError):
        command(ApproveShipment, 9, approved_by="automation:x", reason="policy")
