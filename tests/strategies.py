"""Hypothesis strategies (and the tiny message builders they use) for orderloom tests."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from hypothesis import strategies as st

from orderloom.actors import (
    TRANSITIONS,
    Command,
    Event,
    HoldReason,
    LineItemSpec,
    LineQuantity,
    NotificationKind,
    Risk,
    RiskRecommendation,
)

C = TypeVar("C", bound=Command)
E = TypeVar("E", bound=Event)

TEAMS = ("payments-ops", "fraud", "fulfillment-ops", "customer-care")
WAREHOUSES = ("W1", "W2", "W3")

# -- builders -----------------------------------------------------------------------


def command(cls: type[C], n: int, *, order_id: str = "O1", by: str = "automation",
            **fields: Any) -> C:
    """A command numbered ``n`` (id ``c<n>``, issued at time ``n``)."""
    return cls(order_id=order_id, command_id=f"c{n}", issued_at=float(n), issued_by=by,
               **fields)


def event(cls: type[E], source: str, seq: int, *, order_id: str = "O1",
          event_id: str | None = None, at: float | None = None, **fields: Any) -> E:
    """An event from ``source`` with sequence ``seq`` (id ``<source>#<seq>`` by default)."""
    return cls(order_id=order_id, event_id=event_id or f"{source}#{seq}", source=source,
               source_seq=seq, occurred_at=float(seq) if at is None else at, **fields)


def lines(*spec: tuple[str, int, int]) -> tuple[LineItemSpec, ...]:
    """Line specs from ``(line_id, quantity, unit_price)`` triples (sku = line id)."""
    return tuple(LineItemSpec(line_id=i, sku=f"SKU-{i}", quantity=q, unit_price=p)
                 for i, q, p in spec)


def qty(**per_line: int) -> tuple[LineQuantity, ...]:
    """Line quantities from keyword arguments: ``qty(L1=2, L2=1)``."""
    return tuple(LineQuantity(line_id=k, quantity=v) for k, v in per_line.items())


# -- strategies ---------------------------------------------------------------------


def dimensions() -> st.SearchStrategy[type[enum.Enum]]:
    """Any enum that has a transition table."""
    return st.sampled_from(sorted(TRANSITIONS, key=lambda t: t.__name__))


def state_pairs(dimension: type[enum.Enum]) -> st.SearchStrategy[tuple[Any, Any]]:
    """Any (current, attempted) pair of one dimension, legal or not."""
    members = st.sampled_from(list(dimension))
    return st.tuples(members, members)


amounts = st.integers(min_value=1, max_value=50_000)
"""Positive amounts in minor units."""

line_specs: st.SearchStrategy[tuple[LineItemSpec, ...]] = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 5_000)), min_size=1, max_size=3,
).map(lambda rows: tuple(
    LineItemSpec(line_id=f"L{i}", sku=f"SKU-{i}", quantity=q, unit_price=p)
    for i, (q, p) in enumerate(rows, start=1)
))
"""The lines of a placed order: 1-3 lines, 1-4 units each, prices 0-50.00."""

teams = st.sampled_from(TEAMS)
warehouses = st.sampled_from(WAREHOUSES)
hold_reasons = st.sampled_from(list(HoldReason))
notification_kinds = st.sampled_from(list(NotificationKind))
risk_levels = st.sampled_from([r for r in Risk if r is not Risk.PENDING])
risk_recommendations = st.sampled_from(list(RiskRecommendation))
approvers = st.one_of(st.none(), st.just("person:alice"))
"""No approval, or a person's."""
