"""The simulated outside: payment gateway, warehouses and carriers, teams,
address service, downstream systems, and the distributions that drive them.

It speaks the coordinator's protocol (and emits its telemetry); the live
coordinator runs without it.
"""

from __future__ import annotations

from ._address import (
    AddressService,
    AddressServiceConfig,
)
from ._dist import (
    Dist,
    KeyedRandom,
    Window,
)
from ._downstream import (
    DownstreamConfig,
    DownstreamSystem,
    project,
)
from ._gateway import (
    GatewayConfig,
    PaymentGateway,
)
from ._team import (
    Shift,
    SupportTeam,
    TeamConfig,
    right_decision,
)
from ._warehouse import (
    CarrierConfig,
    Warehouse,
    WarehouseConfig,
)

__all__ = [
    "AddressService",
    "AddressServiceConfig",
    "CarrierConfig",
    "Dist",
    "DownstreamConfig",
    "DownstreamSystem",
    "GatewayConfig",
    "KeyedRandom",
    "PaymentGateway",
    "Shift",
    "SupportTeam",
    "TeamConfig",
    "Warehouse",
    "WarehouseConfig",
    "Window",
    "project",
    "right_decision",
]
