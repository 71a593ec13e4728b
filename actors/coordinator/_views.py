"""What each downstream system cares about in an order: the coordinator's projection.

:func:`project` is the one summary of a :class:`~._protocol.SyncSnapshot` per
system. Both sides of the state-mismatch metric use it: the coordinator
emits ``SystemViewChanged("coordinator:<system>", project(system, its
snapshot))`` and a system (simulated, or a live adapter) reports
``project(system, the snapshot it applied)``, so equal strings mean agreement.
It belongs to the coordinator: the simulated systems import it, never the
other way round.
"""

from __future__ import annotations

from ._protocol import SyncSnapshot

__all__ = ["project"]


def project(system: str, snapshot: SyncSnapshot) -> str:
    """What ``system`` cares about in a snapshot, as a comparable string.

    finance: captured and refunded amounts; crm: the customer-facing status;
    support: lifecycle and payment; notifications: the messages the customer
    was sent; any other system: every field but the
    order id and the version (bookkeeping, not a view).
    """
    s = snapshot
    if system == "finance":
        return f"captured={s.captured};refunded={s.refunded}"
    if system == "crm":
        return s.customer_status
    if system == "support":
        return f"{s.lifecycle};{s.payment}"
    if system == "notifications":
        return s.notified
    return (f"{s.lifecycle};{s.payment};captured={s.captured};refunded={s.refunded};"
            f"shipped={s.shipped_units};{s.customer_status}")
