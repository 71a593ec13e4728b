"""The PostgreSQL server the integration tests use, and scratch schemas on it.

The server is the one CI starts (``.ci/run``): 127.0.0.1:5432, database
``test``, trust authentication, user ``$PGUSER`` or else ``postgres`` or the
current user, whichever answers. Tests that need it skip, saying why, when
none does.
"""

from __future__ import annotations

import functools
import getpass
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
import psycopg.conninfo

HOST, PORT, DATABASE = "127.0.0.1", 5432, "test"


@functools.cache
def _probe() -> tuple[str | None, str]:
    """(a working connection string or None, what was tried)."""
    users = [os.environ["PGUSER"]] if os.environ.get("PGUSER") else ["postgres",
                                                                     getpass.getuser()]
    failures = []
    for user in users:
        conninfo = f"host={HOST} port={PORT} dbname={DATABASE} user={user} connect_timeout=3"
        try:
            with psycopg.connect(conninfo) as db:
                db.execute("SELECT 1")
            return conninfo, ""
        except psycopg.Error as exc:
            failures.append(f"user {user}: {str(exc).strip()}")
    return None, "; ".join(failures)


def conninfo() -> str:
    """The test server's connection string; skips the test if no server answers."""
    found, why = _probe()
    if found is None:
        why = f"no PostgreSQL at {HOST}:{PORT} database {DATABASE!r} ({why})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (CI=true: the PostgreSQL tests must run)")
        pytest.skip(why)
    return found


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A fresh schema name (``orderloom_test_<hex>``), dropped with its tables after."""
    name = f"orderloom_test_{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        with psycopg.connect(conninfo(), autocommit=True) as db:
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def execute(schema: str, statement: str) -> None:
    """Run ``statement`` on its own connection with ``schema`` first in the search path."""
    with psycopg.connect(conninfo(), autocommit=True) as db:
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        db.execute(statement.encode())


def url(schema: str) -> str:
    """A ``postgresql://`` URL for the test server, naming ``schema``."""
    user = psycopg.conninfo.conninfo_to_dict(conninfo())["user"]
    return f"postgresql://{user}@{HOST}:{PORT}/{DATABASE}?schema={schema}"
