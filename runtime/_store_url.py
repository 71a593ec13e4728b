"""Opening a store from a URL: what ``orderloom serve --store URL`` takes.

The drivers are imported only for the URL that needs them, so importing
:mod:`orderloom.runtime` loads neither :mod:`sqlite3` nor :mod:`psycopg`.
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ._codec import Codec
from ._memory_store import MemoryStore
from ._store import Store, StoreError

__all__ = ["STORE_URL_FORMS", "InvalidStoreUrl", "open_store"]

STORE_URL_FORMS = (
    "sqlite:///PATH (a relative path; sqlite:////PATH for an absolute one)",
    "postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE[?schema=NAME]",
    "memory:",
)
"""The store URLs :func:`open_store` accepts, as its errors list them."""

_POSTGRES_SCHEMES = ("postgresql", "postgres")


class InvalidStoreUrl(StoreError, ValueError):
    """A store URL is malformed or names no known kind of store.

    Attributes:
        url: the URL, with any password replaced by ``***``.
        reason: what is wrong with it.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = _redacted(url)
        self.reason = reason
        super().__init__(f"store URL {self.url!r}: {reason}; accepted forms: "
                         + ", ".join(STORE_URL_FORMS))


def open_store(url: str, codec: Codec) -> Store:
    """Open the store ``url`` names.

    - ``sqlite:///PATH``: a :class:`~orderloom.runtime.sqlite.SqliteStore` on
      the file PATH, relative to the working directory (``sqlite:////PATH``
      for an absolute path; ``%``-escapes are decoded), created if missing.
    - ``postgresql://...`` (or ``postgres://``): a
      :class:`~orderloom.runtime.postgres.PostgresStore`; the URL is libpq's,
      plus an optional ``schema=NAME`` parameter (default ``orderloom``)
      naming the PostgreSQL schema that holds the tables. Needs
      ``pip install 'orderloom[postgres]'``.
    - ``memory:``: a :class:`~orderloom.runtime.MemoryStore` (not durable;
      for trials). The codec is not used.

    Raises:
        InvalidStoreUrl: the URL is malformed or its scheme is unknown.
        ImportError: a ``postgresql://`` URL without psycopg installed.
        StoreFailure: the database cannot be opened.
        SchemaMismatch: the database holds another version of the layout.
    """
    scheme, colon, rest = url.partition(":")
    if not colon or not scheme:
        raise InvalidStoreUrl(url, "no scheme")
    scheme = scheme.lower()
    if scheme == "memory":
        if rest:
            raise InvalidStoreUrl(url, "memory: takes nothing after the colon")
        return MemoryStore()
    if scheme == "sqlite":
        return _sqlite(url, rest, codec)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres(url, codec)
    raise InvalidStoreUrl(url, f"unknown scheme {scheme!r}")


def _sqlite(url: str, rest: str, codec: Codec) -> Store:
    if not rest.startswith("///"):
        raise InvalidStoreUrl(url, "an SQLite URL has no host: write sqlite:///PATH "
                                   "(three slashes)")
    raw = rest[3:]
    if "?" in raw or "#" in raw:
        raise InvalidStoreUrl(url, "an SQLite URL takes no parameters (escape ? and # in a "
                                   "path as %3F and %23)")
    path = unquote(raw)
    if not path:
        raise InvalidStoreUrl(url, "no database path after sqlite:///")
    from ._sqlite_store import SqliteStore
    return SqliteStore(path, codec)


def _postgres(url: str, codec: Codec) -> Store:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (parsing it is the check)
    except ValueError as exc:
        raise InvalidStoreUrl(url, f"bad port: {exc}") from exc
    if parts.fragment:
        raise InvalidStoreUrl(url, "a PostgreSQL URL takes no #fragment")
    try:
        params = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise InvalidStoreUrl(url, f"bad query string: {exc}") from exc
    schemas = [value for key, value in params if key == "schema"]
    if len(schemas) > 1:
        raise InvalidStoreUrl(url, "schema= is given more than once")
    conninfo = urlunsplit(SplitResult(parts.scheme, parts.netloc, parts.path,
                                      urlencode([(k, v) for k, v in params if k != "schema"]),
                                      ""))
    try:
        from ._postgres_store import DEFAULT_SCHEMA, PostgresStore, valid_schema_name
    except ImportError as exc:
        raise ImportError("a postgresql:// store needs psycopg: "
                          "pip install 'orderloom[postgres]'") from exc
    schema = schemas[0] if schemas else DEFAULT_SCHEMA
    if not valid_schema_name(schema):
        raise InvalidStoreUrl(url, f"schema {schema!r} is not a valid name (lower-case "
                                   "letters, digits and _, at most 63 characters)")
    return PostgresStore(conninfo, codec, schema=schema)


def _redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
