"""The coordinator: the actors that run orders, live or simulated.

The order actor (the shell around the pure model: one journaled turn per
message, effects released after the commit), automation (duplicate
screening), the watchdog, the inventory view, the protocol between the
coordinator and the outside, telemetry, the shipped policy files and the
journal codec. It imports the order model, never :mod:`..world`.
"""

from __future__ import annotations

from ._automation import (
    Automation,
    DuplicateWindow,
    Intake,
    OrderKeyRecorded,
    Watchdog,
)
from ._inventory import (
    Inventory,
    StockBoard,
)
from ._journal_types import (
    journal_codec,
    journal_type_version,
    journal_types,
)
from ._spawn import (
    COORDINATOR_ADDRESSES,
    spawn_coordinator,
)
from ._wire_types import (
    WIRE_RULES,
    wire_codec,
    wire_types,
)
from ._metrics import (
    MetricsCollector,
)
from ._order_actor import (
    OrderActor,
)
from ._order_record import (
    EventHeld,
    FinishReported,
    HeldTaken,
    OrderRecord,
    StageEntered,
    SyncDue,
    SyncFlushed,
    WrongActionReported,
    evolve_record,
)
from ._policy_files import (
    builtin_policies,
    load_builtin_policy,
    load_policy,
)
from ._protocol import (
    AddressChecked,
    CaseAssigned,
    CaseDecision,
    CaseWithdrawn,
    CheckAddress,
    CustomerCancel,
    Decision,
    Escalate,
    GatewayAuthorize,
    GatewayCapture,
    GatewayQuery,
    GatewayRefund,
    GatewayRequest,
    GatewayVoid,
    OrderRetired,
    OrderTruth,
    OrderUpdated,
    PickLine,
    RequestTimedOut,
    Screened,
    StockLevel,
    StockLevels,
    StockShortage,
    StuckCheck,
    StuckReport,
    SyncOrder,
    SyncSnapshot,
    WarehouseCancel,
    WarehouseSubmit,
    order_address,
    team_address,
    warehouse_address,
)
from ._settings import (
    OrderSettings,
)
from ._telemetry import (
    ActionTaken,
    CaseClosed,
    CaseDecided,
    CaseHandedOff,
    CaseOpened,
    CommandRefused,
    EventIgnored,
    GatewayTimedOut,
    OrderFinished,
    OrderStageEntered,
    OrderStuck,
    SystemViewChanged,
    SystemViewScheduled,
    TeamLoad,
    Telemetry,
    WrongAction,
)
from ._views import (
    project,
)

__all__ = [
    "COORDINATOR_ADDRESSES",
    "ActionTaken",
    "AddressChecked",
    "Automation",
    "CaseAssigned",
    "CaseClosed",
    "CaseDecided",
    "CaseDecision",
    "CaseHandedOff",
    "CaseOpened",
    "CaseWithdrawn",
    "CheckAddress",
    "CommandRefused",
    "CustomerCancel",
    "Decision",
    "DuplicateWindow",
    "Escalate",
    "EventHeld",
    "EventIgnored",
    "FinishReported",
    "GatewayAuthorize",
    "GatewayCapture",
    "GatewayQuery",
    "GatewayRefund",
    "GatewayRequest",
    "GatewayTimedOut",
    "GatewayVoid",
    "HeldTaken",
    "Intake",
    "Inventory",
    "MetricsCollector",
    "OrderActor",
    "OrderFinished",
    "OrderKeyRecorded",
    "OrderRecord",
    "OrderRetired",
    "OrderSettings",
    "OrderStageEntered",
    "OrderStuck",
    "OrderTruth",
    "OrderUpdated",
    "PickLine",
    "RequestTimedOut",
    "Screened",
    "StageEntered",
    "StockBoard",
    "StockLevel",
    "StockLevels",
    "StockShortage",
    "StuckCheck",
    "StuckReport",
    "SyncDue",
    "SyncFlushed",
    "SyncOrder",
    "SyncSnapshot",
    "SystemViewChanged",
    "SystemViewScheduled",
    "TeamLoad",
    "Telemetry",
    "WIRE_RULES",
    "WarehouseCancel",
    "WarehouseSubmit",
    "Watchdog",
    "WrongAction",
    "WrongActionReported",
    "builtin_policies",
    "evolve_record",
    "journal_codec",
    "journal_type_version",
    "journal_types",
    "load_builtin_policy",
    "load_policy",
    "order_address",
    "project",
    "spawn_coordinator",
    "team_address",
    "warehouse_address",
    "wire_codec",
    "wire_types",
]
