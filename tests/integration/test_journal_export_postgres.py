"""``orderloom journal export`` from a PostgreSQL store (needs the test server)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from orderloom.actors import journal_codec
from orderloom.runtime.postgres import PostgresStore
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import resolve_run, run_replication
from tests import pg

pytestmark = pytest.mark.integration

ORDERLOOM = str(Path(sys.executable).parent / "orderloom")


def test_export_from_postgres_equals_export_from_sqlite(tmp_path: Path) -> None:
    """One seeded run journaled to PostgreSQL and to SQLite exports the same lines."""
    conninfo = pg.conninfo()
    user = re.search(r"user=(\S+)", conninfo)
    assert user is not None
    scenario = resolve_run("baseline", horizon="1h", replications=1, seed=2)
    with pg.scratch_schema() as schema:
        with PostgresStore(conninfo, journal_codec(), schema=schema) as store:
            run_replication(scenario, 0, store=store)
            events = store.stats()["events"]
        url = (f"postgresql://{user.group(1)}@{pg.HOST}:{pg.PORT}/{pg.DATABASE}"
               f"?schema={schema}")
        result = subprocess.run([ORDERLOOM, "journal", "export", "--store", url, "--out",
                                 str(tmp_path / "pg.jsonl")], capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr
    with SqliteStore(tmp_path / "orders.db", journal_codec()) as store:
        run_replication(scenario, 0, store=store)
    result = subprocess.run([ORDERLOOM, "journal", "export", "--store",
                             f"sqlite:///{tmp_path / 'orders.db'}", "--out",
                             str(tmp_path / "sqlite.jsonl")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "pg.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == events > 0
    assert lines == (tmp_path / "sqlite.jsonl").read_text(encoding="utf-8").splitlines()
