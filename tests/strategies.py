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


# -- wire messages ------------------------------------------------------------------

_WIRE_ID = st.from_regex(r"[A-Za-z0-9._:-]{1,24}", fullmatch=True)
_WIRE_ADDRESS = st.from_regex(r"[a-z]{1,8}(/[A-Za-z0-9._:-]{1,12})?", fullmatch=True)
_WIRE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


def wire_messages(codec: Any, cls: type) -> st.SearchStrategy[Any]:
    """Instances of ``cls``, a class registered with ``codec`` (a ``WireCodec``):
    every field drawn from its declared type and the codec's field rules, and
    only instances the class's validators accept."""
    from orderloom.runtime._wire import _collection, _optional, _unwrap, field_types

    rules = codec.rules

    def value(name: str, tp: Any, depth: int) -> st.SearchStrategy[Any]:
        inner, nullable = _optional(_unwrap(tp))
        base = plain(name, inner, depth)
        return st.one_of(st.none(), base) if nullable else base

    def plain(name: str, tp: Any, depth: int) -> st.SearchStrategy[Any]:
        coll = _collection(tp)
        if coll is not None:
            kind, item = coll
            # An order's lines may not be empty (a validator): draw at least one.
            items = st.lists(value(name, item, depth + 1), min_size=int(name == "lines"),
                             max_size=3)
            return items.map(kind)
        if name in rules.order_ids or name in rules.ids:
            return _WIRE_ID
        if name == "currency":  # validated as an ISO 4217 code: random text is never one
            return st.sampled_from(("EUR", "USD", "JPY", "GBP"))
        if name in rules.money:
            return st.integers(min_value=1, max_value=10**9)
        if name in rules.sequences:
            return st.integers(min_value=1, max_value=10**6)
        if tp is str:
            return _WIRE_ADDRESS if name in ("notify", "child") else _WIRE_TEXT
        if tp is bool:
            return st.booleans()
        if tp is int:
            return st.integers(min_value=0, max_value=10**6)
        if tp is float:
            return st.floats(min_value=0, max_value=1e9, allow_nan=False)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return st.sampled_from(list(tp))
        if codec.polymorphic(tp):
            subs = [wt.cls for wt in codec.types if issubclass(wt.cls, tp)
                    and (depth < 2 or not any(codec.polymorphic(t) for _, t in field_types(wt.cls)))]
            return st.sampled_from(subs).flatmap(lambda c: instance(c, depth + 1))
        return instance(tp, depth + 1)

    def instance(c: type, depth: int) -> st.SearchStrategy[Any]:
        fields = {a.name: value(a.name, tp, depth) for a, tp in field_types(c)}

        def build(kwargs: dict[str, Any]) -> Any:
            try:
                return c(**kwargs)
            except (ValueError, TypeError):
                return None

        return st.fixed_dictionaries(fields).map(build).filter(lambda x: x is not None)

    return instance(cls, 0)
