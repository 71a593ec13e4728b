"""The review desk's HTTP API and page, on the same event loop as a live kernel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import pytest

from orderloom.actors import CaseAssigned, Decision, Escalate, Lifecycle, ReviewDesk
from orderloom.actors.order import _messages as m
from orderloom.cli._desk_web import desk_app
from orderloom.runtime import Address, Store
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.ops import TOKEN_COOKIE, Tokens

from ..desk import ALICE, BOB, TOKENS, live_desk, wait_until

Body = Callable[[httpx2.AsyncClient, LiveKernel, Store], Awaitable[None]]


def _run(body: Body, *, token: str | None = ALICE, desks: tuple[str, ...] = ("fraud",)) -> None:
    async def main() -> None:
        async with live_desk(desks=desks) as (kernel, store):
            app = desk_app(kernel, desks, Tokens(TOKENS),
                           reassign_to=("fraud", "customer-care", "payments-ops"))
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                          base_url="http://desk.test", headers=headers) as client:
                await body(client, kernel, store)

    anyio.run(main)


async def _case_id(client: httpx2.AsyncClient, order_id: str) -> str:
    cases = (await client.get("/desk/api/cases", params={"status": "open"})).json()["cases"]
    (case,) = [c for c in cases if c["order_id"] == order_id]
    return str(case["case_id"])


def _order(kernel: LiveKernel, order_id: str) -> Any:
    return kernel.actor(f"order/{order_id}").order  # type: ignore[attr-defined]


def _journal(store: Store, order_id: str) -> list[Any]:
    return [r.event for r in store.journal(f"order/{order_id}")]


ENDPOINTS = [("GET", "/desk/"), ("GET", "/desk/api/cases"), ("GET", "/desk/api/cases/x"),
             *[("POST", f"/desk/api/cases/x/{a}") for a in ("approve", "override", "reassign",
                                                              "note")],
             *[("POST", f"/desk/cases/x/{a}") for a in ("approve", "override", "reassign",
                                                          "note")]]


def test_every_endpoint_refuses_a_request_without_a_token() -> None:
    """401 on the page, the API and the forms without a token, or with a wrong one."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        for method, path in ENDPOINTS:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path)
        desk = kernel.actor("team/fraud")
        assert isinstance(desk, ReviewDesk)  # and nothing reached it:
        assert all(c.status.value == "open" and len(c.history) == 1
                   for c in desk.book.cases.values())

    _run(body, token=None)


def test_the_list_shows_reason_age_deadline_owner_history_proposal_and_the_order() -> None:
    """Each case carries what a person needs to decide it, the order in every dimension."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        cases = (await client.get("/desk/api/cases")).json()["cases"]
        assert sorted(c["order_id"] for c in cases) == ["f1", "f2"]
        case = next(c for c in cases if c["order_id"] == "f1")
        assert (case["reason"], case["team"], case["owner_team"], case["status"]) == (
            "high_risk_of_fraud", "fraud", "fraud", "open")
        assert (case["proposal"], case["options"]) == ("cancel", ["release", "cancel"])
        assert case["age"] >= 0 and case["deadline"] > case["opened_at"]
        assert [h["what"] for h in case["history"]] == ["received"]
        order = case["order"]
        assert (order["lifecycle"], order["risk"]) == ("on_hold", "high")
        assert {"payment", "risk_recommendation", "fulfillment_orders", "holds",
                "held_lifecycle", "amount_due"} <= set(order)
        assert order["holds"][0]["hold_id"] == case["case_id"]
        one = (await client.get(f"/desk/api/cases/{case['case_id']}")).json()
        assert one["case_id"] == case["case_id"] and one["order"]["order_id"] == "f1"
        assert (await client.get("/desk/api/cases", params={"status": "nope"})).json()[
            "field"] == "status"

    _run(body)


def test_approve_and_override_change_the_orders_and_are_journaled_with_who_and_why() -> None:
    """Approve cancels f1 as proposed; an override releases f2; the principal and reason are journaled."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        f1, f2 = await _case_id(client, "f1"), await _case_id(client, "f2")
        approved = await client.post(f"/desk/api/cases/{f1}/approve",
                                     json={"why": "card reported stolen"})
        assert approved.status_code == 200, approved.text
        assert (approved.json()["case"]["status"], approved.json()["case"]["decided_by"]) == (
            "decided", "alice")
        overridden = await client.post(f"/desk/api/cases/{f2}/override",
                                       headers={"Authorization": f"Bearer {BOB}"},
                                       json={"decision": "release", "why": "regular customer"})
        assert overridden.status_code == 200, overridden.text
        await wait_until(lambda: _order(kernel, "f1").lifecycle is Lifecycle.CANCELED, "f1 canceled")
        await wait_until(lambda: _order(kernel, "f2").lifecycle not in (
            Lifecycle.ON_HOLD, Lifecycle.CANCELED), "f2 released")
        (asked,) = [e for e in _journal(store, "f1") if isinstance(e, m.CancellationRequested)]
        assert (asked.requested_by, asked.note) == ("alice", "card reported stolen")
        (released,) = [e for e in _journal(store, "f2") if isinstance(e, m.HoldReleased)]
        assert (released.released_by, released.decision, released.note) == (
            "bob", Decision.RELEASE, "regular customer")

    _run(body)


def test_decided_unknown_and_malformed_requests_get_409_404_and_422() -> None:
    """A closed case answers 409, an unknown one 404, a bad body 422 naming its field."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        f1, f2 = await _case_id(client, "f1"), await _case_id(client, "f2")
        bad: list[tuple[str, Any, str]] = [
            ("override", {"why": "x"}, "decision"),
            ("override", {"decision": "cancel", "why": "x"}, "decision"),
            ("override", {"decision": "release"}, "why"),
            ("reassign", {"to": "nowhere", "why": "x"}, "to"),
            ("reassign", {"to": "fraud", "why": "x"}, "to"),
            ("note", {"why": "  "}, "why"),
            ("approve", {"why": "x", "decision": "release"}, "decision"),
            ("approve", {"why": 3}, "why"),
            ("approve", ["why"], "body"),
        ]
        for action, payload, field in bad:
            response = await client.post(f"/desk/api/cases/{f1}/{action}", json=payload)
            assert (response.status_code, response.json().get("field")) == (422, field), payload
        raw = await client.post(f"/desk/api/cases/{f1}/approve", content=b"{not json")
        assert (raw.status_code, raw.json()["field"]) == (422, "body")
        assert (await client.post("/desk/api/cases/nope/approve")).status_code == 404
        assert (await client.get("/desk/api/cases/nope")).status_code == 404
        assert (await client.post(f"/desk/api/cases/{f1}/explode")).status_code == 404
        assert (await client.post(f"/desk/api/cases/{f1}/approve")).status_code == 200
        for action, payload in [("approve", {}), ("note", {"why": "late"}),
                                ("override", {"decision": "release", "why": "x"}),
                                ("reassign", {"to": "customer-care", "why": "x"})]:
            again = await client.post(f"/desk/api/cases/{f1}/{action}", json=payload)
            assert (again.status_code, again.json()["error"]) == (409, "closed"), action
        noted = await client.post(f"/desk/api/cases/{f2}/note", json={"why": "calling them"})
        assert noted.status_code == 200 and noted.json()["case"]["status"] == "open"

    _run(body)


def test_reassign_moves_the_case_and_flags_the_way_back_as_a_bounce() -> None:
    """fraud -> customer-care is a handoff; customer-care -> fraud is a bounce (A->B->A)."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        f1 = await _case_id(client, "f1")
        there = await client.post(f"/desk/api/cases/{f1}/reassign",
                                  json={"to": "customer-care", "why": "not fraud"})
        assert there.status_code == 200 and there.json()["bounce"] is False
        await wait_until(lambda: _order(kernel, "f1").hold(f1).owner_team == "customer-care",
                         "the hold at customer-care")
        await wait_until(lambda: any(
            c.case.case_id == f1 for c in kernel.actor("team/customer-care")  # type: ignore[attr-defined]
            .book.open_cases()), "the case at the customer-care desk")
        back = await client.post(f"/desk/api/cases/{f1}/reassign",
                                 json={"to": "fraud", "why": "it is fraud after all"})
        assert back.status_code == 200 and back.json()["bounce"] is True
        await wait_until(lambda: (kernel.actor("team/fraud")  # type: ignore[attr-defined]
                                  .case(f1).status.value == "open"), "the case back at fraud")
        case = (await client.get(f"/desk/api/cases/{f1}")).json()
        assert (case["team"], case["teams_before"]) == ("fraud", ["fraud", "customer-care"])

    _run(body, desks=("fraud", "customer-care"))


def test_the_page_logs_in_by_query_token_and_escapes_what_people_wrote() -> None:
    """?token= sets the cookie; the page lists the cases; a note's HTML is shown as text."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        login = await client.get(f"/desk/?token={ALICE}")
        assert login.status_code == 303 and login.headers["location"] == "/desk/"
        assert client.cookies.get(TOKEN_COOKIE) == ALICE
        f1 = await _case_id(client, "f1")
        form = await client.post(f"/desk/cases/{f1}/note",
                                 data={"why": "<script>alert(1)</script>"})
        assert form.status_code == 303 and form.headers["location"] == f"/desk/#case-{f1}"
        page = await client.get("/desk/")
        assert page.status_code == 200 and 'id="principal">alice<' in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>" not in page.text
        assert page.text.count('data-status="open"') == 2
        refused = await client.post(f"/desk/cases/{f1}/override", data={"decision": "cancel",
                                                                       "why": "x"})
        assert refused.status_code == 422 and 'class="error"' in refused.text

    _run(body, token=None)


def test_a_case_escalated_away_at_the_order_is_withdrawn_from_the_desk() -> None:
    """The watchdog hands the hold to another team: the case leaves this desk
    (withdrawn, in the closed list) and a late decision is refused (409)."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        f1 = await _case_id(client, "f1")
        kernel.tell("order/f1", Escalate(order_id="f1", stage="on_hold", reason="stuck",
                                         hold_id=f1))
        await wait_until(lambda: _order(kernel, "f1").hold(f1).owner_team == "payments-ops",
                         "the hold escalated to payments-ops")
        desk = kernel.actor("team/fraud")
        assert isinstance(desk, ReviewDesk)
        await wait_until(lambda: desk.case(f1).status.value == "withdrawn",  # type: ignore[union-attr]
                         "the case withdrawn from the fraud desk")
        case = (await client.get(f"/desk/api/cases/{f1}")).json()
        assert case["status"] == "withdrawn"
        refused = await client.post(f"/desk/api/cases/{f1}/approve", json={})
        assert (refused.status_code, refused.json()["error"]) == (409, "closed")
        assert _order(kernel, "f1").hold(f1) in _order(kernel, "f1").open_holds

    _run(body)


def test_a_case_id_with_a_slash_is_reachable() -> None:
    """Hold ids may hold "/" (the wire allows it): the API and the forms route them."""
    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        case_id = "order/x1:7"
        kernel.tell("team/fraud", CaseAssigned(
            order_id="x1", case_id=case_id, reason="other", team="fraud", proposal="release",
            options=("release", "cancel"), opened_at=0.0, deadline=1e9, notify=Address("watchdog")))
        desk = kernel.actor("team/fraud")
        assert isinstance(desk, ReviewDesk)
        await wait_until(lambda: desk.case(case_id) is not None, "the case at the desk")
        quoted = quote(case_id, safe="")
        got = await client.get(f"/desk/api/cases/{quoted}")
        assert (got.status_code, got.json()["case_id"], got.json()["order"]) == (200, case_id, None)
        assert f'action="/desk/cases/{quoted}/note"' in (await client.get("/desk/")).text
        form = await client.post(f"/desk/cases/{quoted}/note", data={"why": "looking"})
        assert form.status_code == 303 and form.headers["location"] == f"/desk/#case-{quoted}"
        done = await client.post(f"/desk/api/cases/{quoted}/override",
                                 json={"decision": "cancel", "why": "test order"})
        assert (done.status_code, done.json()["case"]["status"]) == (200, "decided")

    _run(body)


@pytest.mark.parametrize("teams", [()])
def test_desk_routes_need_a_team(teams: tuple[str, ...]) -> None:
    """A desk page with no team is a configuration mistake, refused at once."""
    from orderloom.cli._desk_web import desk_routes
    with pytest.raises(ValueError, match="teams"):
        desk_routes(LiveKernel(), teams)


def test_a_decision_whose_commit_fails_is_not_reported_as_made() -> None:
    """The desk's journal refuses the decision (a store failure): the person gets
    503 and the case stays open, instead of 200 for a decision that was never
    recorded nor sent to the order."""
    from orderloom.actors import DeskCaseDecided
    from orderloom.runtime import StoreError

    async def body(client: httpx2.AsyncClient, kernel: LiveKernel, store: Store) -> None:
        real_commit = store.commit

        def failing(stream: str, turn: Any) -> Any:
            if stream.startswith("team/") and any(isinstance(e, DeskCaseDecided)
                                                  for e in turn.events):
                raise StoreError("injected: the commit failed")
            return real_commit(stream, turn)

        store.commit = failing  # type: ignore[method-assign]
        case_id = await _case_id(client, "f1")
        answer = await client.post(f"/desk/api/cases/{quote(case_id, safe='')}/approve",
                                   json={"why": "looks fine"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "unavailable"
        assert not [r for r in store.journal("team/fraud") if isinstance(r.event, DeskCaseDecided)]
        store.commit = real_commit  # type: ignore[method-assign]
        after = await client.get(f"/desk/api/cases/{quote(case_id, safe='')}")
        assert after.json()["status"] == "open"
        assert _order(kernel, "f1").lifecycle is Lifecycle.ON_HOLD

    _run(body)
