"""orderloom.runtime.postgres: the PostgreSQL durable store.

A module of its own (like :mod:`orderloom.runtime.sqlite`) so that importing
:mod:`orderloom.runtime` never loads :mod:`psycopg`, which is an optional
dependency: ``pip install 'orderloom[postgres]'``.

Usage::

    from orderloom.runtime import AttrsCodec
    from orderloom.runtime.postgres import PostgresStore

    with PostgresStore("postgresql://orderloom@db.internal/orders", AttrsCodec(MY_TYPES),
                       schema="shop_eu") as store:
        loaded = store.load("order/42")

or, from a URL, :func:`orderloom.runtime.open_store`.
"""

from __future__ import annotations

from ._postgres_store import DEFAULT_SCHEMA, SCHEMA_VERSION, PostgresStore

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresStore"]
