"""The review desk's HTTP side: a JSON API and a server-rendered page.

:func:`desk_routes` gives the routes ``orderloom serve`` mounts under
``/desk`` (behind :class:`~orderloom.runtime.ops.TokenAuth`, which names the
principal every action is journaled with); :func:`desk_app` is that mount,
wrapped, for tests and small deployments. Reads come from the running
actors (each team's :class:`~orderloom.actors.ReviewDesk` and the orders'
actors); every action is an :class:`~orderloom.actors.ActOnCase` told to the
case's desk, whose answer decides the status code: ``404`` unknown case,
``409`` decided, reassigned or withdrawn (or moved on at the order),
``422`` a bad body naming its field. The page is plain HTML forms that POST
and come back to the page; everything shown is escaped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from orderloom.actors import (
    ActOnCase,
    CaseStatus,
    Decision,
    DeskAction,
    DeskAnswer,
    DeskCase,
    DeskResult,
    HoldStatus,
    OrderState,
    ReviewDesk,
    is_bounce,
    order_address,
    team_address,
)
from orderloom.runtime import ActorNotFound, AskTimeout
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.ops import TokenAuth, Tokens, principal_of

__all__ = ["DeskError", "desk_app", "desk_routes"]

ANSWER_TIMEOUT = 10.0
"""Seconds (real time) an action waits for its desk's answer before ``503``."""

_FIELDS = {
    DeskAction.APPROVE: {"why"},
    DeskAction.OVERRIDE: {"decision", "why"},
    DeskAction.REASSIGN: {"to", "why"},
    DeskAction.NOTE: {"why"},
}


class DeskError(Exception):
    """A request the desk refuses: ``status`` (404, 409, 422, 503), the
    ``field`` at fault (422), and what was expected."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None) -> None:
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        super().__init__(detail)

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.field is not None:
            out["field"] = self.field
        return out


class _Desks:
    """What the routes share: the kernel, the desks' teams, where cases may go."""

    def __init__(self, kernel: LiveKernel, teams: Sequence[str], reassign_to: Sequence[str]) -> None:
        self.kernel = kernel
        self.teams = tuple(teams)
        self.reassign_to = tuple(reassign_to)

    # -- reading ---------------------------------------------------------------------

    def desk(self, team: str) -> ReviewDesk | None:
        try:
            actor = self.kernel.actor(team_address(team))
        except ActorNotFound:
            return None
        return actor if isinstance(actor, ReviewDesk) else None

    def cases(self) -> list[tuple[str, DeskCase]]:
        """Every case of every desk, open ones first, then by arrival."""
        found = [(team, case) for team in self.teams
                 for desk in [self.desk(team)] if desk is not None
                 for case in desk.book.cases.values()]
        return sorted(found, key=lambda tc: (tc[1].status is not CaseStatus.OPEN,
                                             tc[1].received_at, tc[1].case.case_id, tc[0]))

    def find(self, case_id: str) -> tuple[str, DeskCase]:
        """The desk holding ``case_id`` (the open copy if it moved between desks)."""
        copies = [(team, case) for team in self.teams
                  for desk in [self.desk(team)] if desk is not None
                  for case in [desk.case(case_id)] if case is not None]
        if not copies:
            raise DeskError(404, "not_found", f"no case {case_id!r} at any desk")
        return max(copies, key=lambda tc: (tc[1].status is CaseStatus.OPEN, tc[1].received_at))

    def order(self, order_id: str) -> OrderState | None:
        try:
            actor = self.kernel.actor(order_address(order_id))
        except ActorNotFound:
            return None  # retired or passivated: its journal is in the store
        state = getattr(actor, "order", None)
        return state if isinstance(state, OrderState) else None

    # -- acting ----------------------------------------------------------------------

    def moved_on(self, team: str, held: DeskCase) -> DeskError | None:
        """Why an open case can no longer be decided here, as the order sees it:
        its hold was released, or handed to another team (an escalation does
        not withdraw the case from the team it leaves)."""
        case = held.case
        order = self.order(case.order_id)
        hold = order.hold(case.case_id) if order is not None else None
        if hold is not None and hold.status is not HoldStatus.OPEN:
            return DeskError(409, "closed", f"the order's hold {case.case_id} is "
                                            f"{hold.status.value}")
        if hold is not None and hold.owner_team != team:
            return DeskError(409, "moved", f"the order's hold {case.case_id} is now with "
                                           f"{hold.owner_team}")
        return None

    def check(self, team: str, held: DeskCase, action: DeskAction,
              fields: Mapping[str, str], principal: str) -> ActOnCase:
        """The command for a person's action, or a refusal (409, 422)."""
        case = held.case
        if held.status is not CaseStatus.OPEN:
            raise DeskError(409, "closed", f"case {case.case_id} is {held.status.value}")
        stale = self.moved_on(team, held)
        if stale is not None:
            raise stale
        unknown = sorted(set(fields) - _FIELDS[action])
        if unknown:
            allowed = ", ".join(sorted(_FIELDS[action])) or "nothing"
            raise DeskError(422, "invalid", f"unexpected field; {action.value} takes {allowed}",
                            unknown[0])
        why = fields.get("why", "").strip()
        decision: Decision | None = None
        to: str | None = None
        if action is not DeskAction.APPROVE and not why:
            raise DeskError(422, "invalid", f"expected a non-empty reason for {action.value}",
                            "why")
        if action is DeskAction.OVERRIDE:
            allowed_decisions = [o for o in case.options
                                 if o is not Decision.REASSIGN and o != case.proposal]
            given = fields.get("decision", "")
            if given not in [d.value for d in allowed_decisions]:
                raise DeskError(422, "invalid", "expected one of "
                                + ", ".join(d.value for d in allowed_decisions)
                                + " (the case's options other than its proposal)", "decision")
            decision = Decision(given)
        if action is DeskAction.REASSIGN:
            to = fields.get("to", "")
            targets = [t for t in self.reassign_to if t != team]
            if to not in targets:
                raise DeskError(422, "invalid", "expected one of " + ", ".join(targets), "to")
        return ActOnCase(request_id=uuid.uuid4().hex, case_id=case.case_id, action=action,
                         by=principal, why=why, decision=decision, to=to)

    async def act(self, case_id: str, action: DeskAction, fields: Mapping[str, str],
                  principal: str) -> tuple[str, DeskCase, DeskCase, DeskAnswer]:
        """Tell the case's desk, wait for its answer; the desk's team, the
        case before and after, and the answer (or a :class:`DeskError`)."""
        team, held = self.find(case_id)
        command = self.check(team, held, action, fields, principal)
        answer = await self._ask(team, command)
        if answer.result is DeskResult.UNKNOWN_CASE:
            raise DeskError(404, "not_found", answer.detail)
        if answer.result is DeskResult.CLOSED:
            raise DeskError(409, "closed", answer.detail)
        if answer.result is DeskResult.INVALID:
            field, _, detail = answer.detail.partition(": ")
            raise DeskError(422, "invalid", detail or answer.detail, field)
        desk = self.desk(team)
        after = desk.case(case_id) if desk is not None else None
        return team, held, after or held, answer

    async def _ask(self, team: str, command: ActOnCase) -> DeskAnswer:
        """The desk's answer, given after its turn committed: a decision whose
        commit failed is never reported as made (503: try again)."""
        try:
            answer = await self.kernel.ask(team_address(team), command, timeout=ANSWER_TIMEOUT)
        except AskTimeout:
            raise DeskError(503, "unavailable", f"the {team} desk did not answer in "
                                                f"{ANSWER_TIMEOUT:g} s; reload and try again") from None
        except Exception as exc:  # noqa: BLE001 (the turn failed: nothing was decided)
            raise DeskError(503, "unavailable", f"the {team} desk could not record it "
                                                f"({type(exc).__name__}); nothing was "
                                                "decided, try again") from None
        if not isinstance(answer, DeskAnswer):
            raise DeskError(503, "unavailable", f"the {team} desk gave no answer")
        return answer


# -- JSON -----------------------------------------------------------------------------


def _order_json(state: OrderState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "order_id": state.order_id,
        "version": state.version,
        "lifecycle": state.lifecycle.value,
        "held_lifecycle": state.held_lifecycle.value if state.held_lifecycle else None,
        "payment": state.payment.value,
        "risk": state.risk.value,
        "risk_recommendation": state.risk_recommendation.value,
        "amount_due": state.amount_due,
        "captured": state.captured_amount,
        "refunded": state.refunded_amount,
        "currency": state.currency,
        "fulfillment_orders": [
            {"fulfillment_order_id": fo.fulfillment_order_id, "warehouse_id": fo.warehouse_id,
             "status": fo.status.value, "shipment": fo.shipment.value}
            for fo in state.fulfillment_orders],
        "holds": [
            {"hold_id": h.hold_id, "reason": h.reason.value, "owner_team": h.owner_team,
             "status": h.status.value, "proposal": h.proposal.value,
             "decision": h.decision.value if h.decision else None,
             "released_by": h.released_by, "resolution": h.resolution, "note": h.note,
             "handoffs": [{"from": x.from_team, "to": x.to_team, "by": x.by, "note": x.note,
                           "at": x.at} for x in h.handoffs]}
            for h in state.holds],
        "cancel_request": (None if state.cancel_request is None else {
            "reason": state.cancel_request.reason,
            "requested_by": state.cancel_request.requested_by}),
    }


def _case_json(desks: _Desks, team: str, held: DeskCase) -> dict[str, Any]:
    case, now = held.case, desks.kernel.now()
    return {
        "case_id": case.case_id,
        "order_id": case.order_id,
        "team": team,
        "owner_team": case.team,
        "status": held.status.value,
        "reason": case.reason,
        "proposal": case.proposal.value,
        "options": [o.value for o in case.options],
        "opened_at": case.opened_at,
        "received_at": held.received_at,
        "age": now - case.opened_at,
        "deadline": case.deadline,
        "overdue": held.status is CaseStatus.OPEN and now > case.deadline,
        "moved_on": _moved_on(desks, team, held),
        "teams_before": list(case.history),
        "escalate_to": case.escalate_to,
        "decided_by": held.decided_by,
        "decision": held.decision.value if held.decision else None,
        "note": held.note,
        "history": [{"at": e.at, "what": e.what, "by": e.by, "note": e.note,
                     "decision": e.decision.value if e.decision else None, "to": e.to}
                    for e in held.history],
        "order": _order_json(desks.order(case.order_id)),
    }


def _moved_on(desks: _Desks, team: str, held: DeskCase) -> str | None:
    if held.status is not CaseStatus.OPEN:
        return None
    stale = desks.moved_on(team, held)
    return stale.detail if stale is not None else None


def _error(exc: DeskError) -> JSONResponse:
    return JSONResponse(exc.payload(), status_code=exc.status)


async def _json_fields(request: Request) -> dict[str, str]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DeskError(422, "invalid", "expected a JSON object", "body") from None
    if not isinstance(body, dict):
        raise DeskError(422, "invalid", "expected a JSON object", "body")
    for key, value in body.items():
        if not isinstance(value, str):
            raise DeskError(422, "invalid", "expected a string", str(key))
    return body


async def _form_fields(request: Request) -> dict[str, str]:
    """An HTML form's fields (``application/x-www-form-urlencoded``, what a
    form without ``enctype`` posts; parsed here, needing no multipart library)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    raw = await request.body()
    if raw and kind != "application/x-www-form-urlencoded":
        raise DeskError(422, "invalid", "expected an application/x-www-form-urlencoded form",
                        "body")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (ValueError, UnicodeDecodeError):
        raise DeskError(422, "invalid", "expected a URL-encoded UTF-8 form", "body") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise DeskError(422, "invalid", "expected each field once", key)
        fields[key] = value
    return fields


def _action(name: str) -> DeskAction:
    try:
        return DeskAction(name)
    except ValueError:
        raise DeskError(404, "not_found", "expected approve, override, reassign or note",
                        "action") from None


# -- HTML -----------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem}
section.case{border:1px solid #bbb;border-radius:6px;padding:.8rem;margin:.8rem 0}
section.case.open{border-color:#c60}
dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;margin:.4rem 0}
dt{font-weight:600} dd{margin:0}
form{display:inline-block;margin:.3rem .6rem .3rem 0;padding:.3rem;background:#f4f4f4}
.error{background:#fdd;padding:.6rem;border:1px solid #c00}
.overdue{color:#c00;font-weight:600}
"""


def _t(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _seconds(value: float) -> str:
    minutes = abs(value) / 60.0
    text = f"{minutes / 60.0:.1f} h" if minutes >= 120 else f"{minutes:.0f} min"
    return text if value >= 0 else f"-{text}"


def _order_html(state: OrderState | None) -> str:
    if state is None:
        return "<p>The order's actor is not loaded (retired or passivated).</p>"
    rows = [("lifecycle", state.lifecycle.value), ("payment", state.payment.value),
            ("risk", f"{state.risk.value} ({state.risk_recommendation.value})"),
            ("amount due", f"{state.amount_due} {state.currency or ''}"),
            ("captured / refunded", f"{state.captured_amount} / {state.refunded_amount}")]
    if state.held_lifecycle is not None:
        rows.append(("held from", state.held_lifecycle.value))
    for fo in state.fulfillment_orders:
        rows.append((f"fulfillment {fo.fulfillment_order_id}",
                     f"{fo.warehouse_id}: {fo.status.value}, shipment {fo.shipment.value}"))
    for h in state.holds:
        text = f"{h.reason.value} with {h.owner_team}: {h.status.value}"
        if h.decision is not None or h.released_by:
            text += f"; {h.decision.value if h.decision else 'released'} by {h.released_by}"
        if h.note:
            text += f": {h.note}"
        rows.append((f"hold {h.hold_id}", text))
    if state.cancel_request is not None:
        rows.append(("cancel requested", f"by {state.cancel_request.requested_by}: "
                                         f"{state.cancel_request.reason}"))
    body = "".join(f"<dt>{_t(k)}</dt><dd data-field=\"{_t(k)}\">{_t(v)}</dd>" for k, v in rows)
    return f"<dl class=\"order\" data-order=\"{_t(state.order_id)}\">{body}</dl>"


def _forms(desks: _Desks, base: str, team: str, held: DeskCase) -> str:
    case = held.case
    url = f"{base}/cases/{_t(quote(case.case_id, safe=''))}"
    others = [o for o in case.options if o is not Decision.REASSIGN and o != case.proposal]
    targets = [t for t in desks.reassign_to if t != team]
    why = "<input name=\"why\" placeholder=\"why\" required>"
    out = [f"<form method=\"post\" action=\"{url}/approve\" class=\"approve\">"
           "<input name=\"why\" placeholder=\"why (optional)\">"
           f"<button type=\"submit\">Approve: {_t(case.proposal.value)}</button></form>"]
    if others:
        choices = "".join(f"<option value=\"{_t(o.value)}\">{_t(o.value)}</option>"
                          for o in others)
        out.append(f"<form method=\"post\" action=\"{url}/override\" class=\"override\">"
                   f"<select name=\"decision\">{choices}</select>{why}"
                   "<button type=\"submit\">Override</button></form>")
    if targets:
        choices = "".join(
            f"<option value=\"{_t(t)}\">{_t(t)}"
            f"{' (back: a bounce)' if is_bounce(case.history, t) else ''}</option>"
            for t in targets)
        out.append(f"<form method=\"post\" action=\"{url}/reassign\" class=\"reassign\">"
                   f"<select name=\"to\">{choices}</select>{why}"
                   "<button type=\"submit\">Reassign</button></form>")
    out.append(f"<form method=\"post\" action=\"{url}/note\" class=\"note\">{why}"
               "<button type=\"submit\">Add note</button></form>")
    return "".join(out)


def _case_html(desks: _Desks, base: str, team: str, held: DeskCase) -> str:
    case, now = held.case, desks.kernel.now()
    overdue = held.status is CaseStatus.OPEN and now > case.deadline
    due = _seconds(case.deadline - now)
    rows = [
        ("order", case.order_id), ("reason", case.reason), ("desk", team),
        ("owner team", case.team), ("status", held.status.value),
        ("proposal", case.proposal.value),
        ("options", ", ".join(o.value for o in case.options)),
        ("age", _seconds(now - case.opened_at)),
        ("teams before", " → ".join(case.history) or "none"),
    ]
    if held.decided_by:
        decided = f"{held.decision.value if held.decision else ''} by {held.decided_by}"
        rows.append(("decided", f"{decided}: {held.note}" if held.note else decided))
    dl = "".join(f"<dt>{_t(k)}</dt><dd data-field=\"{_t(k)}\">{_t(v)}</dd>" for k, v in rows)
    dl += (f"<dt>deadline</dt><dd class=\"{'overdue' if overdue else ''}\">"
           f"{'overdue by ' + _seconds(now - case.deadline) if overdue else 'in ' + due}</dd>")
    history = "".join(
        f"<li>{_t(_seconds(now - e.at))} ago: {_t(e.what)}"
        f"{' ' + _t(e.decision.value) if e.decision and e.what != 'approve' else ''}"
        f"{' to ' + _t(e.to) if e.to else ''}{' by ' + _t(e.by) if e.by else ''}"
        f"{': ' + _t(e.note) if e.note else ''}</li>" for e in held.history)
    moved = _moved_on(desks, team, held)
    forms = (f"<p class=\"error moved\">{_t(moved)}: nothing to decide here.</p>"
             if moved is not None
             else _forms(desks, base, team, held) if held.status is CaseStatus.OPEN else "")
    return (f"<section class=\"case {_t(held.status.value)}\" "
            f"id=\"case-{_t(quote(case.case_id, safe=''))}\" "
            f"data-case=\"{_t(case.case_id)}\" data-order=\"{_t(case.order_id)}\" "
            f"data-status=\"{_t(held.status.value)}\">"
            f"<h3>{_t(case.reason)}: order {_t(case.order_id)}</h3><dl>{dl}</dl>"
            f"<h4>History</h4><ol>{history}</ol>"
            f"<h4>Order</h4>{_order_html(desks.order(case.order_id))}{forms}</section>")


def _page(desks: _Desks, base: str, principal: str, error: DeskError | None = None) -> str:
    cases = desks.cases()
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>orderloom review desk</title><style>{_STYLE}</style></head><body>"
             f"<h1>Review desk</h1><p>Signed in as <b id=\"principal\">{_t(principal)}</b>."
             " Every action is journaled on the order with your name and reason.</p>"]
    if error is not None:
        parts.append(f"<p class=\"error\" id=\"error\">{_t(error.status)}: {_t(error.detail)}"
                     f"{' (field ' + _t(error.field) + ')' if error.field else ''}</p>")
    for team in desks.teams:
        mine = [c for t, c in cases if t == team]
        open_ = [c for c in mine if c.status is CaseStatus.OPEN]
        closed = [c for c in mine if c.status is not CaseStatus.OPEN]
        parts.append(f"<h2 id=\"team-{_t(team)}\">{_t(team)}: {len(open_)} open</h2>")
        if desks.desk(team) is None:
            parts.append("<p>No review desk runs for this team.</p>")
        parts += [_case_html(desks, base, team, c) for c in open_]
        if closed:
            parts.append(f"<details><summary>{len(closed)} closed</summary>")
            parts += [_case_html(desks, base, team, c) for c in closed]
            parts.append("</details>")
    parts.append("</body></html>")
    return "".join(parts)


# -- routes ---------------------------------------------------------------------------


def desk_routes(kernel: LiveKernel, teams: Sequence[str], *,
                reassign_to: Sequence[str] | None = None) -> list[BaseRoute]:
    """The review desk's routes, to mount under ``/desk`` behind :class:`TokenAuth`.

    Args:
        kernel: the kernel running the desks (``team/<name>``) and the orders.
        teams: the teams whose desks the page and the API show.
        reassign_to: the teams a case may be reassigned to (default: ``teams``).

    Routes: ``GET /`` (the page), ``POST /cases/{case_id}/{action}`` (its
    forms; back to the page), ``GET /api/cases``, ``GET /api/cases/{case_id}``,
    ``POST /api/cases/{case_id}/{action}`` with ``action`` one of approve,
    override, reassign, note and a JSON body of ``decision``, ``to``, ``why``.
    """
    if not teams:
        raise ValueError("teams: expected at least one team with a review desk")
    desks = _Desks(kernel, teams, reassign_to if reassign_to is not None else teams)

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(_page(desks, base(request), principal_of(request.scope)))

    async def form_action(request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            action = _action(request.path_params["action"])
            fields = await _form_fields(request)
            _, _, held, _ = await desks.act(request.path_params["case_id"], action, fields,
                                            principal)
        except DeskError as exc:
            return HTMLResponse(_page(desks, base(request), principal, exc),
                                status_code=exc.status)
        return RedirectResponse(f"{base(request)}/#case-{quote(held.case.case_id, safe='')}",
                                status_code=303)

    async def list_cases(request: Request) -> JSONResponse:
        status = request.query_params.get("status")
        team = request.query_params.get("team")
        if status is not None and status not in [s.value for s in CaseStatus]:
            return _error(DeskError(422, "invalid", "expected one of "
                                    + ", ".join(s.value for s in CaseStatus), "status"))
        if team is not None and team not in desks.teams:
            return _error(DeskError(422, "invalid", "expected one of "
                                    + ", ".join(desks.teams), "team"))
        return JSONResponse({"cases": [
            _case_json(desks, t, c) for t, c in desks.cases()
            if (status is None or c.status.value == status) and (team is None or t == team)]})

    async def get_case(request: Request) -> JSONResponse:
        try:
            team, held = desks.find(request.path_params["case_id"])
        except DeskError as exc:
            return _error(exc)
        return JSONResponse(_case_json(desks, team, held))

    async def api_action(request: Request) -> JSONResponse:
        try:
            action = _action(request.path_params["action"])
            fields = await _json_fields(request)
            team, before, after, answer = await desks.act(
                request.path_params["case_id"], action, fields, principal_of(request.scope))
        except DeskError as exc:
            return _error(exc)
        out: dict[str, Any] = {"result": answer.detail, "case": _case_json(desks, team, after)}
        if action is DeskAction.REASSIGN:
            out["bounce"] = is_bounce(before.case.history, fields["to"])
        return JSONResponse(out)

    return [
        Route("/", page, methods=["GET"], name="desk_page"),
        # Case ids are the orders' hold ids: any id the wire allows, "/" too.
        Route("/cases/{case_id:path}/{action}", form_action, methods=["POST"]),
        Route("/api/cases", list_cases, methods=["GET"]),
        Route("/api/cases/{case_id:path}/{action}", api_action, methods=["POST"]),
        Route("/api/cases/{case_id:path}", get_case, methods=["GET"]),
    ]


def desk_app(kernel: LiveKernel, teams: Sequence[str], tokens: Tokens, *,
             reassign_to: Sequence[str] | None = None) -> ASGIApp:
    """:func:`desk_routes` mounted at ``/desk``, every route behind :class:`TokenAuth`."""
    app = Starlette(routes=[Mount("/desk", routes=desk_routes(
        kernel, teams, reassign_to=reassign_to))])
    return TokenAuth(app, tokens)
