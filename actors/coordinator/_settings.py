"""What every Order actor of one coordinator shares: policy, wiring, timeouts."""

from __future__ import annotations

import math

import attrs

from orderloom.runtime import Address

from ._inventory import StockBoard
from ..order._policy import Policy
from ..order._reaction import Wiring

__all__ = ["OrderSettings"]


@attrs.frozen(kw_only=True)
class OrderSettings:
    """What every Order actor of one coordinator shares.

    Attributes:
        policy: the automation policy.
        warehouses: warehouse ids in order of preference.
        downstream: downstream system addresses (also their names).
        gateway_timeout: seconds before a gateway request's outcome is unknown.
        resequence_timeout: seconds to wait for a gap in a source's sequence.
        retire_after: seconds a finished order's actor lingers for late messages.
        passivate_idle_after: seconds an open order's actor may go without a
            turn before it stops (passivates) to free its memory; a message or
            a due durable timer restores it from its journal (None: never, as
            in simulation). Only the live coordinator sets it: see
            ``orderloom serve``'s ``passivate_idle_after``.
        stock: the coordinator's stock view, which the policy's ``sourcing``
            reads (None: no view, every warehouse believed to have everything).
        wiring: what the policy engine reads of the above (derived).
    """

    policy: Policy
    warehouses: tuple[str, ...] = ("W1",)
    downstream: tuple[str, ...] = ("finance", "crm", "support", "notifications")
    gateway: Address = Address("gateway")
    automation: Address = Address("automation")
    watchdog: Address = Address("watchdog")
    address_service: Address | None = Address("address-service")
    gateway_timeout: float = 30.0
    resequence_timeout: float = 60.0
    retire_after: float = 900.0
    passivate_idle_after: float | None = attrs.field(default=None)
    stock: StockBoard | None = None
    wiring: Wiring = attrs.field(init=False, eq=False, repr=False, default=attrs.Factory(
        lambda self: Wiring(warehouses=self.warehouses,
                            checks_addresses=self.address_service is not None),
        takes_self=True))

    @passivate_idle_after.validator
    def _check_passivate(self, attribute: attrs.Attribute[float | None],
                         value: float | None) -> None:
        if value is None:
            return
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise ValueError(f"OrderSettings.passivate_idle_after: expected None or a finite "
                             f"number of seconds > 0, got {value!r}")
