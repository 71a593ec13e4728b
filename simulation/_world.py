"""The simulated world: the coordinator's actors and the systems around it.

:func:`build_world` spawns, on a kernel, everything an order meets: intake,
automation, watchdog, the payment gateway, warehouses, support teams, the
address service and the downstream systems. Simulated external actors see
the world's truth about orders through an oracle; the coordinator never does.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from orderloom.actors.world._address import AddressService, AddressServiceConfig
from orderloom.actors.coordinator._spawn import spawn_coordinator
from orderloom.actors.world._downstream import DownstreamConfig, DownstreamSystem
from orderloom.actors.coordinator._settings import OrderSettings
from orderloom.actors.world._gateway import GatewayConfig, PaymentGateway
from orderloom.actors.order._policy import Policy
from orderloom.actors.coordinator._protocol import OrderTruth
from orderloom.actors.world._team import TeamConfig, SupportTeam
from orderloom.actors.world._warehouse import Warehouse, WarehouseConfig
from orderloom.runtime import Actor, Address, Kernel, MemoryStore, Store

INBOX_RETENTION = 900.0
"""Seconds an inbound message id stays in a simulated journal's inbox, and a
retired order's journal in the simulated store: a copy delivered later than
that (far beyond any link fault's reorder or delay window in the shipped
scenarios) would be taken as new. The durable stores forget neither."""

__all__ = ["Oracle", "WorldConfig", "build_world", "world_actors"]

Oracle = Callable[[str], OrderTruth]


@attrs.frozen(kw_only=True)
class WorldConfig:
    """Everything that surrounds the coordinator, and its policy.

    Invariant: every team a policy route (or escalation) names exists.
    """

    policy: Policy
    gateway: GatewayConfig = GatewayConfig()
    warehouses: tuple[WarehouseConfig, ...] = (WarehouseConfig(warehouse_id="W1"),)
    teams: tuple[TeamConfig, ...] = ()
    downstream: tuple[DownstreamConfig, ...] = (
        DownstreamConfig(system="finance"), DownstreamConfig(system="crm"),
        DownstreamConfig(system="support"), DownstreamConfig(system="notifications"),
    )
    address: AddressServiceConfig | None = AddressServiceConfig()
    gateway_timeout: float = 30.0
    resequence_timeout: float = 60.0
    retire_after: float = 900.0

    def __attrs_post_init__(self) -> None:
        names = {t.name for t in self.teams}
        needed = set()
        for route in self.policy.routing.values():
            needed.add(route.team)
            if route.escalate_to:
                needed.add(route.escalate_to)
        for team in self.teams:
            needed.update(team.reassign_to)
        missing = sorted(needed - names)
        if missing:
            raise ValueError(
                f"teams: policy {self.policy.name!r} routes cases to {missing}, "
                f"but only {sorted(names)} are staffed")
        if not self.warehouses:
            raise ValueError("warehouses: expected at least one warehouse")

    def settings(self) -> OrderSettings:
        """The settings every Order actor of this world shares."""
        return OrderSettings(
            policy=self.policy,
            warehouses=tuple(w.warehouse_id for w in self.warehouses),
            downstream=tuple(d.system for d in self.downstream),
            address_service=Address("address-service") if self.address is not None else None,
            gateway_timeout=self.gateway_timeout,
            resequence_timeout=self.resequence_timeout,
            retire_after=self.retire_after,
        )


def world_actors(
    config: WorldConfig, oracle: Oracle | None = None,
    forget: Callable[[str], None] | None = None, epoch: str | None = None,
) -> dict[str, Callable[[], Actor]]:
    """The simulated outside of ``config``, by address: a factory per actor
    (the gateway, each warehouse, team and downstream system, the address
    service). ``build_world`` spawns them all; an emulator spawns one.

    ``epoch``: None in the simulator; an emulator process passes its own, new
    on every start, so the events the gateway and the warehouses number per
    order go out under a source of their own (``gateway/<epoch>``, see
    :func:`orderloom.actors.epoch_source`) and are not refused as duplicates
    or stale after a restart that counts from 1 again."""
    actors: dict[str, Callable[[], Actor]] = {
        "gateway": lambda: PaymentGateway(config.gateway, oracle, forget, epoch)}
    for wh in config.warehouses:
        actors[f"warehouse/{wh.warehouse_id}"] = \
            lambda wh=wh: Warehouse(wh, epoch)  # type: ignore[misc]
    for team in config.teams:
        actors[f"team/{team.name}"] = lambda team=team: SupportTeam(team, oracle)  # type: ignore[misc]
    for ds in config.downstream:
        actors[ds.system] = lambda ds=ds: DownstreamSystem(ds)  # type: ignore[misc]
    if config.address is not None:
        address = config.address
        actors["address-service"] = lambda: AddressService(address, oracle)
    return actors


def build_world(
    kernel: Kernel, config: WorldConfig, oracle: Oracle | None = None,
    forget: Callable[[str], None] | None = None, store: Store | None = None,
) -> None:
    """Spawn the coordinator and its surroundings on ``kernel``, either kernel
    (``forget``: called with an order's id once the world may drop its truth
    about it; ``store``: where the persistent actors keep their journals, by
    default a :class:`MemoryStore` that keeps what a restore needs)."""
    journals = store if store is not None else MemoryStore(
        keep_history=False, inbox_retention=INBOX_RETENTION,
        passivated_retention=INBOX_RETENTION)
    spawn_coordinator(kernel, config.settings(), journals)
    for address, factory in world_actors(config, oracle, forget).items():
        kernel.spawn(factory, address)
