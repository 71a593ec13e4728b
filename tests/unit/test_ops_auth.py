"""Bearer-token auth in front of every HTTP endpoint (orderloom.runtime.ops)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from orderloom.runtime.ops import SIGNED_WEBHOOK, TOKEN_COOKIE, TokenAuth, Tokens, principal_of

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"


def _client() -> TestClient:
    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(principal_of(request.scope))

    app = Starlette(routes=[Route("/who", whoami)])
    return TestClient(TokenAuth(app, Tokens({ALICE: "alice", BOB: "bob"})))


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer "}, {"Authorization": "Bearer wrong-token-0123456789"},
    {"Authorization": f"Basic {ALICE}"}, {"Authorization": f"Bearer {ALICE}x"},
])
def test_a_request_without_a_known_token_is_refused(headers: dict[str, str]) -> None:
    response = _client().get("/who", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert ALICE not in response.text and "wrong-token" not in response.text
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_token_names_the_principal_by_header_or_cookie() -> None:
    client = _client()
    assert client.get("/who", headers={"Authorization": f"Bearer {ALICE}"}).text == "alice"
    assert client.get("/who", headers={"Authorization": f"bearer {BOB}"}).text == "bob"
    client.cookies.set(TOKEN_COOKIE, BOB)
    assert client.get("/who").text == "bob"


@pytest.mark.parametrize("tokens", [{"short": "x"}, {ALICE: ""}, {ALICE: "  "}])
def test_weak_or_anonymous_tokens_are_refused_at_start(tokens: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="tokens"):
        Tokens(tokens)


def test_a_known_token_in_the_query_logs_a_browser_in_once() -> None:
    """?token= with a known token sets the cookie and redirects to the address without it."""
    client = _client()
    response = client.get(f"/who?a=1&token={ALICE}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/who?a=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={ALICE};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/who").text == "alice"


@pytest.mark.parametrize("query", ["token=wrong-token-0123456789", f"token={ALICE}&token={BOB}",
                                   "token="])
def test_an_unknown_or_ambiguous_query_token_is_refused(query: str) -> None:
    """A query token that names no principal (or two) gets 401 and no cookie."""
    response = _client().get(f"/who?{query}", follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


def test_a_query_token_does_not_log_in_a_post() -> None:
    """Only a GET (or HEAD) logs in with ?token=: a form cannot post its way in."""
    assert _client().post(f"/who?token={ALICE}", follow_redirects=False).status_code == 401


def test_an_exempt_request_passes_without_a_token_as_a_signed_webhook() -> None:
    """TokenAuth(exempt=) lets through only the requests the predicate names (a
    signed webhook's POST), with the principal signed-webhook; others still need a token."""

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(principal_of(request.scope))

    app = Starlette(routes=[Route("/ingest/shopify", whoami, methods=["GET", "POST"]),
                            Route("/who", whoami)])
    client = TestClient(TokenAuth(app, Tokens({ALICE: "alice"}), exempt=lambda scope: (
        scope["method"] == "POST" and scope["path"] == "/ingest/shopify")))
    assert client.post("/ingest/shopify").text == SIGNED_WEBHOOK
    assert client.get("/ingest/shopify").status_code == 401
    assert client.get("/who").status_code == 401
    assert client.post("/ingest/shopify",
                       headers={"Authorization": f"Bearer {ALICE}"}).text == "alice"
