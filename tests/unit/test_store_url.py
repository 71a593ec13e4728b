"""open_store: each store URL form opens its store; a bad URL is refused by name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orderloom.runtime import (
    STORE_URL_FORMS,
    AttrsCodec,
    InvalidStoreUrl,
    MemoryStore,
    StoreError,
    Turn,
    open_store,
)
from orderloom.runtime.sqlite import SqliteStore

CODEC = AttrsCodec([])


def test_memory_url_opens_a_memory_store() -> None:
    """memory: (any case) opens a fresh MemoryStore."""
    for url in ("memory:", "MEMORY:"):
        with open_store(url, CODEC) as store:
            assert isinstance(store, MemoryStore) and not store.durable


def test_sqlite_url_paths_are_relative_with_three_slashes_absolute_with_four(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///a b.sqlite is a file in the working directory, %-escapes decoded;
    sqlite:////abs is an absolute path."""
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///a%20b.sqlite", CODEC) as store:
        assert isinstance(store, SqliteStore)
        store.commit("s", Turn(expected_version=0, inbox_id="m1"))
    assert (tmp_path / "a b.sqlite").is_file()
    absolute = tmp_path / "sub"
    absolute.mkdir()
    with open_store(f"sqlite:///{absolute}/x.sqlite", CODEC) as store:
        assert isinstance(store, SqliteStore) and store.location == f"{absolute}/x.sqlite"
    assert (absolute / "x.sqlite").is_file()


@pytest.mark.parametrize(("url", "reason"), [
    ("", "no scheme"),
    ("orders.sqlite", "no scheme"),
    (":memory:", "no scheme"),
    ("mysql://db/orders", "unknown scheme 'mysql'"),
    ("memory:x", "takes nothing after the colon"),
    ("sqlite://orders.sqlite", "three slashes"),
    ("sqlite:orders.sqlite", "three slashes"),
    ("sqlite:///", "no database path"),
    ("sqlite:///orders.sqlite?mode=ro", "no parameters"),
    ("postgresql://db:port/orders", "bad port"),
    ("postgresql://db/orders#x", "no #fragment"),
    ("postgresql://db/orders?schema", "bad query string"),
    ("postgresql://db/orders?schema=a&schema=b", "more than once"),
    ("postgresql://db/orders?schema=Bad-Name", "not a valid name"),
])
def test_a_bad_url_names_itself_and_the_accepted_forms(url: str, reason: str) -> None:
    """A malformed URL or unknown scheme raises InvalidStoreUrl (a ValueError) naming
    the URL, what is wrong and every accepted form, and opens nothing."""
    with pytest.raises(InvalidStoreUrl) as caught:
        open_store(url, CODEC)
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, StoreError)
    assert error.url == url and reason in error.reason
    assert repr(url) in str(error)
    assert all(form in str(error) for form in STORE_URL_FORMS)


def test_a_password_never_appears_in_the_error() -> None:
    """InvalidStoreUrl shows a URL's password as ***."""
    with pytest.raises(InvalidStoreUrl) as caught:
        open_store("postgresql://app:s3cret@db:nope/orders", CODEC)
    assert "s3cret" not in str(caught.value)
    assert caught.value.url == "postgresql://app:***@db:nope/orders"


def test_a_postgres_url_without_psycopg_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg, a postgresql:// URL raises ImportError naming the extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    monkeypatch.delitem(sys.modules, "orderloom.runtime._postgres_store", raising=False)
    with pytest.raises(ImportError, match=r"orderloom\[postgres\]"):
        open_store("postgresql://db/orders", CODEC)
