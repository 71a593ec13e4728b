"""orderloom.runtime.sqlite: the embedded durable store.

A module of its own (like :mod:`orderloom.runtime.live`) so that importing
:mod:`orderloom.runtime` — which :mod:`orderloom.actors` does for the kernel
contract — never loads :mod:`sqlite3`.

Usage::

    from orderloom.runtime import AttrsCodec
    from orderloom.runtime.sqlite import SqliteStore

    with SqliteStore("orders.sqlite", AttrsCodec(MY_TYPES)) as store:
        loaded = store.load("order/42")
"""

from __future__ import annotations

from ._sqlite_store import SCHEMA_VERSION, SqliteStore

__all__ = ["SCHEMA_VERSION", "SqliteStore"]
