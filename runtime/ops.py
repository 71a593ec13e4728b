"""The operations HTTP side of a live node: bearer-token auth for every endpoint.

Every HTTP endpoint of ``orderloom serve`` (health, readiness, metrics, the
ingest webhooks, the review desk) sits behind :class:`TokenAuth`. A token
names a principal (a person or a system): the review desk journals that
name as who decided.

A request carries its token as ``Authorization: Bearer <token>``, or (for
the review page in a browser) as the ``orderloom_token`` cookie. Tokens are
compared in constant time; a request without a known token gets ``401`` and
a JSON body naming what was expected, never the token it sent.

A browser logs in once by opening any page with ``?token=<token>``: a known
token is answered with a redirect to the same address without it, setting
the cookie (``HttpOnly``, ``SameSite=Strict``, so other sites' forms cannot
post with it), and the token leaves the address bar.
"""

from __future__ import annotations

import hmac
import json
import re
from urllib.parse import parse_qsl, urlencode
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["SIGNED_WEBHOOK", "TOKEN_COOKIE", "TokenAuth", "Tokens", "principal_of"]

SIGNED_WEBHOOK = "signed-webhook"
"""The principal of a request let through by ``TokenAuth(exempt=...)``."""

TOKEN_COOKIE = "orderloom_token"
"""The cookie the review page's browser sends its token in."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Tokens:
    """Known tokens and the principal each one names.

    Args:
        by_token: token -> principal (a non-empty name). Tokens must be at
            least 16 characters: a short one is guessable.

    Raises:
        ValueError: an empty or short token, or an empty principal.
    """

    __slots__ = ("_by_token",)

    def __init__(self, by_token: Mapping[str, str]) -> None:
        for token, principal in by_token.items():
            if not isinstance(token, str) or len(token) < 16:
                raise ValueError("tokens: every token must be a string of at least 16 characters")
            if not isinstance(principal, str) or not principal.strip():
                raise ValueError("tokens: every token must name a non-empty principal")
        self._by_token = dict(by_token)

    def principal(self, presented: str | None) -> str | None:
        """The principal ``presented`` names, or None (compared in constant time
        against every known token, so the answer's timing tells nothing)."""
        if not presented:
            return None
        found = None
        given = presented.encode("utf-8", "surrogateescape")
        for token, principal in self._by_token.items():
            if hmac.compare_digest(given, token.encode("utf-8")):
                found = principal
        return found

    def __len__(self) -> int:
        return len(self._by_token)


def _presented(scope: Scope) -> str | None:
    bearer = cookie = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1")
            scheme, _, credential = text.partition(" ")
            if scheme.lower() == "bearer":
                bearer = credential.strip()
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == TOKEN_COOKIE:
                    cookie = val.strip()
    return bearer or cookie


class TokenAuth:
    """ASGI middleware: only requests with a known token reach ``app``.

    The principal is put in the scope's state (``request.state.principal``
    under Starlette; see :func:`principal_of`). Lifespan and other non-HTTP
    scopes pass through.

    ``exempt`` names requests that authenticate themselves instead (a
    Shopify webhook by its HMAC, verified before anything is read; see
    ``orderloom.runtime.webhooks.ingest_auth_exempt``): they pass without a
    token and their principal is ``"signed-webhook"``.
    """

    def __init__(self, app: ASGIApp, tokens: Tokens, *,
                 exempt: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.tokens = tokens
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        principal = self.tokens.principal(_presented(scope))
        if principal is None and scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            if await self._login(scope, send):
                return
        if principal is None and self.exempt is not None and self.exempt(scope):
            principal = SIGNED_WEBHOOK
        if principal is None:
            body = json.dumps({
                "error": "unauthorized",
                "detail": "expected 'Authorization: Bearer <token>' or the "
                          f"{TOKEN_COOKIE} cookie with a token from the server's config",
            }).encode()
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="orderloom"'),
                (b"content-length", str(len(body)).encode()),
            ]})
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


    async def _login(self, scope: Scope, send: Send) -> bool:
        """``?token=`` with a known token: set the cookie and redirect to the
        address without it. False when there is no such parameter or the
        token is unknown (the request is then refused as any other)."""
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                          keep_blank_values=True)
        given = [value for key, value in query if key == "token"]
        if len(given) != 1 or self.tokens.principal(given[0]) is None:
            return False
        token = given[0]
        if not _COOKIE_SAFE.fullmatch(token):
            return False  # cannot travel as a cookie: use the Authorization header
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        path = scope.get("root_path", "") + scope.get("path", "/")
        location = path + ("?" + rest if rest else "")
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode("latin-1", "replace")),
            (b"set-cookie", f"{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
             .encode("latin-1")),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]})
        await send({"type": "http.response.body", "body": b""})
        return True


_COOKIE_SAFE = re.compile(r"[!#-+\--:<-\[\]-~]+")
"""RFC 6265 cookie-octets: what a cookie value may hold unquoted."""


def principal_of(scope: Scope) -> str:
    """Who made the request (set by :class:`TokenAuth`).

    Raises:
        LookupError: the request did not pass through :class:`TokenAuth`.
    """
    try:
        return str(scope["state"]["principal"])
    except KeyError:
        raise LookupError("the request has no principal: is TokenAuth in front of the app?") from None
