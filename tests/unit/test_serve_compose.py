"""serve's composition: which orders start on demand."""

from __future__ import annotations

from pathlib import Path

from orderloom.actors import (
    Lifecycle,
    OrderActor,
    OrderSettings,
    StageEntered,
    journal_codec,
    load_builtin_policy,
)
from orderloom.cli._serve import order_activator
from orderloom.runtime import Address, Turn
from orderloom.runtime.sqlite import SqliteStore


def test_only_orders_the_store_knows_are_activated(tmp_path: Path) -> None:
    """The activator starts an order actor for an order with a journal, and none for
    an unknown order or an address that is not an order's."""
    settings = OrderSettings(policy=load_builtin_policy("cautious"))
    with SqliteStore(tmp_path / "s.db", journal_codec()) as store:
        store.commit("order/o1", Turn(expected_version=0, events=(
            StageEntered(stage=Lifecycle.PLACED, at=1.0),)))
        activate = order_activator(settings, store)
        factory = activate(Address("order/o1"))
        assert factory is not None
        actor = factory()
        assert isinstance(actor, OrderActor) and actor.order_id == "o1"
        assert activate(Address("order/o2")) is None
        assert activate(Address("intake")) is None
        assert activate(Address("order/")) is None
