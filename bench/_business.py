"""The benches' one way to grow a scenario: the same business at a larger size.

``grown(scenario, per_day)`` scales the demand to ``per_day`` orders a day
and the world with it (customers, pickers, stock and its replenishment,
staff on every shift), so a bigger run is the same business, not an
overloaded one. Used by ``simulate.py`` (in its child processes) and
``restore.py``.
"""

from __future__ import annotations

import attrs

from orderloom.simulation import Scenario


def grown(s: Scenario, per_day: float) -> Scenario:
    """``s`` with ``per_day`` orders a day and its world scaled alike (never shrunk)."""
    k = max(1.0, per_day / s.demand.orders_per_day)

    def scale(levels: dict[str, int]) -> dict[str, int]:
        return {sku: int(n * k) for sku, n in levels.items()}

    return attrs.evolve(
        s, demand=attrs.evolve(s.demand, orders_per_day=per_day,
                               customers=int(s.demand.customers * k)),
        warehouses=tuple(attrs.evolve(w, pickers=int(w.pickers * k), stock=scale(w.stock),
                                      replenish_to=scale(w.replenish_to))
                         for w in s.warehouses),
        teams=tuple(attrs.evolve(t, shifts=tuple(attrs.evolve(sh, staff=int(sh.staff * k))
                                                 for sh in t.shifts)) for t in s.teams))
