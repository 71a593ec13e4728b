"""``report trace``: a trace read as a person would tell it.

:func:`order_story` is one order's history, one line per thing that
happened (a message handled, with what the order decided in that turn),
the wrong actions with the chain of messages that led to them, and its
final state. :func:`trace_overview` lists the orders worth a look.
Records are those of :func:`~._trace.read_trace`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["WRONG_MARK", "causal_chain", "clock", "order_story", "raw_lines", "trace_overview"]

Record = dict[str, Any]

_DAY = 86_400.0
_INDENT = " " * 10
_CHAIN_LIMIT = 50
WRONG_MARK = "!!"
# Telemetry the timeline leaves out: a view per system per turn is noise
# there; the final-state line reads the coordinator's views instead.
_QUIET = frozenset({"SystemViewChanged", "SystemViewScheduled", "TeamLoad"})


def clock(t: float) -> str:
    """Kernel seconds as a clock time; the run starts at 00:00 on day 1.

    ``clock(29643.2)`` is ``08:14:03``; past the first day the day is named:
    ``day 2 08:14:03``.
    """
    whole = int(t)
    day, rest = divmod(whole, int(_DAY))
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    hms = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return hms if day == 0 else f"day {day + 1} {hms}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _is_msg(r: Record) -> bool:
    return bool(r["k"] == "msg")


def _is_telemetry(r: Record) -> bool:
    return str(r["k"])[:1].isupper()


def causal_chain(records: Iterable[Record], message_id: str) -> list[Record]:
    """The messages that led to ``message_id``, oldest first, ending with it.

    Follows each message's causation id back through the delivered
    messages of the trace, until a message with no cause (sent from
    outside, or by a timer set in ``on_start``) or one the trace does not
    hold. A message delivered twice (a duplicate) counts once.
    """
    messages: dict[str, Record] = {}
    for r in records:
        if _is_msg(r):
            messages.setdefault(r["id"], r)
    chain: list[Record] = []
    seen: set[str] = set()
    current: str | None = message_id
    while current and current in messages and current not in seen and len(chain) < _CHAIN_LIMIT:
        seen.add(current)
        message = messages[current]
        current = message.get("c")
        if chain and _repeats(chain[-1], message):
            # A self-rearming timer (the storefront's next arrival, a
            # heartbeat): its earlier rounds are not causes worth a line each.
            chain[-1] = {**chain[-1], "rounds": chain[-1].get("rounds", 1) + 1}
            continue
        chain.append(message)
    chain.reverse()
    return chain


def _repeats(later: Record, earlier: Record) -> bool:
    """True when ``earlier`` is a previous round of the timer ``later``."""
    return (bool(later.get("tm")) and bool(earlier.get("tm")) and later.get("ty") == earlier.get("ty")
            and later.get("to") == earlier.get("to"))


def _who(address: str, order_actor: str) -> str:
    return "order" if address == order_actor else address


def _message_line(r: Record, order_actor: str) -> str:
    to = r.get("to", "")
    sender = r.get("fr", "")
    if r.get("tm"):
        return f"{clock(r['t'])}  timer of {_who(to, order_actor)}: {r['ty']}"
    head = f"{_who(sender, order_actor) if sender else '(outside)'} → {_who(to, order_actor)}"
    queued = " (waited in the mailbox)" if r.get("q") else ""
    return f"{clock(r['t'])}  {head}: {r['ty']}{queued}"


def _outcomes(telemetry: Sequence[Record]) -> list[str]:
    """What a turn's telemetry says happened, one phrase each, in order."""
    out: list[str] = []
    actions: list[str] = []
    actor = ""

    def flush() -> None:
        if actions:
            out.append(f"decided by {actor}: " + ", ".join(actions))
            actions.clear()

    for r in telemetry:
        kind = r["k"]
        if kind == "ActionTaken":
            if r.get("issued_by", "") != actor:
                flush()
                actor = r.get("issued_by", "")
            notes = [n for n, on in (("irreversible", r.get("irreversible")),
                                     ("on exception path", r.get("on_exception_path"))) if on]
            if r.get("approved_by"):
                notes.append(f"approved by {r['approved_by']}")
            actions.append(r["command_type"] + (f" ({', '.join(notes)})" if notes else ""))
            continue
        flush()
        if kind in _QUIET:
            continue
        out.append(_outcome(r))
    flush()
    return out


def _outcome(r: Record) -> str:
    kind = r["k"]
    g = r.get
    if kind == "OrderStageEntered":
        return f"stage {g('previous') or '(new)'} → {g('stage')}"
    if kind == "CaseOpened":
        return (f"case {g('case_id')} opened for {g('team')}: {g('reason')}, automation "
                f"proposes {g('proposal')}, due {clock(g('deadline', 0.0))}")
    if kind == "CaseDecided":
        verdict = " (overrides automation)" if g("override") else ""
        wrong = " (a reviewer error)" if g("erroneous") else ""
        return (f"case {g('case_id')} decided by {g('reviewer')} ({g('team')}): "
                f"{g('decision')}, automation proposed {g('proposal')}{verdict}{wrong}")
    if kind == "CaseClosed":
        return f"case {g('case_id')} closed ({g('team')}): {g('outcome')}"
    if kind == "CaseHandedOff":
        return f"case {g('case_id')} handed off {g('from_team')} → {g('to_team')}: {g('reason')}"
    if kind == "WrongAction":
        return f"{WRONG_MARK} WRONG ACTION {g('invariant')}: {g('detail')}"
    if kind == "OrderStuck":
        return (f"stuck in {g('stage')} ({g('reason')}) for {_duration(g('age', 0.0))}, "
                f"deadline {_duration(g('deadline', 0.0))}")
    if kind == "OrderFinished":
        return f"finished: {g('final_state')}"
    if kind == "CommandRefused":
        return f"refused {g('command_type')} from {g('issued_by')}: {g('reason')}"
    if kind == "EventIgnored":
        return f"ignored {g('event_type')} from {g('source')}: {g('outcome')} {g('reason', '')}".rstrip()
    if kind == "GatewayTimedOut":
        return f"gateway {g('operation')} {g('request_id')} timed out: outcome unknown"
    fields = ", ".join(f"{k}={v}" for k, v in sorted(r.items()) if k not in ("t", "k", "o", "a", "in"))
    return f"{kind} {fields}".rstrip()


_KERNEL_PHRASES = {
    "stop": "stopped", "restart": "restarted", "crash": "crashed", "down": "taken down",
    "up": "brought back up", "failure": "a handler failed", "dead_letter": "a dead letter",
    "drop": "a message lost to a link fault", "duplicate": "a message duplicated by a link fault",
    "timer": "a timer",
}


def _kernel_phrase(r: Record, order_actor: str) -> str:
    """A kernel record (not a delivery) in words: who, what, the message, why."""
    who = _who(r.get("a", ""), order_actor)
    what = _KERNEL_PHRASES.get(r["k"], r["k"])
    message = f": {r['ty']} [{r['id']}]" if r.get("ty") else ""
    detail = f" ({r['d']})" if r.get("d") else ""
    return f"{who} {what}{message}{detail}"


def _mentions(r: Record, order_id: str, order_actor: str) -> bool:
    if _is_msg(r):
        return order_actor in (r.get("to"), r.get("fr"))
    if _is_telemetry(r):
        return r.get("o") == order_id
    return r.get("a") == order_actor


def raw_lines(records: Sequence[Record], order_id: str) -> list[str]:
    """Every record that mentions the order, unabridged: its clock time, its
    kind and each field as ``key=value`` (``t`` is also given in seconds)."""
    order_actor = f"order/{order_id}"
    lines: list[str] = []
    for r in records:
        if _mentions(r, order_id, order_actor):
            fields = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("t", "k"))
            lines.append(f"{clock(r['t'])}  {r['t']:>10.3f} s  {r['k']:<20} {fields}".rstrip())
    return lines


def order_story(records: Sequence[Record], order_id: str) -> list[str]:
    """One order's history: a line per message it handled (and what came of
    it), its wrong actions with their causal chains, its final state.

    Returns an empty list when the trace never mentions the order.
    """
    order_actor = f"order/{order_id}"
    mine = [r for r in records if _mentions(r, order_id, order_actor)]
    if not mine:
        return []
    turns: dict[str, list[Record]] = {}  # message id -> telemetry of its turn
    sent: dict[str, list[Record]] = {}  # message id -> messages the order sent in it
    handled: set[str] = set()
    for r in mine:
        if _is_msg(r) and r.get("to") == order_actor:
            handled.add(r["id"])
    elsewhere: dict[str, list[Record]] = {}  # another actor's turn -> its telemetry of the order
    for r in mine:
        if _is_telemetry(r) and r.get("in") in handled and not r.get("a"):
            turns.setdefault(r["in"], []).append(r)
        elif _is_telemetry(r) and r.get("a") and r.get("in"):
            elsewhere.setdefault(r["in"], []).append(r)
        elif _is_msg(r) and r.get("fr") == order_actor and r.get("c") in handled:
            sent.setdefault(r["c"], []).append(r)
    # What another actor said of the order in the turn that sent it a message
    # at that same instant (a team decided the case, then told the order) is
    # told with that message, not on lines of its own.
    told: dict[str, list[Record]] = {}
    attached: set[int] = set()
    for r in mine:
        if _is_msg(r) and r.get("to") == order_actor and r.get("c") in elsewhere:
            same = [e for e in elsewhere[r["c"]] if e["t"] == r["t"] and id(e) not in attached]
            told[r["id"]] = same
            attached.update(id(e) for e in same)
    lines: list[str] = []
    shown: set[str] = set()
    for r in mine:
        if _is_msg(r) and r.get("to") == order_actor:
            if r["id"] in shown:
                lines.append(f"{_message_line(r, order_actor)} (a duplicate: handled above)")
                continue
            shown.add(r["id"])
            details = _outcomes([*told.get(r["id"], ()), *turns.get(r["id"], ())])
            out = [m for m in sent.get(r["id"], ()) if not m.get("tm")]
            if out:
                details.append("sent " + ", ".join(f"{m['ty']} → {m['to']}" for m in out))
            if r.get("tm") and not details:
                continue  # a timer that found nothing to do (but perhaps set the next one)
            timers = [m["ty"] for m in sent.get(r["id"], ()) if m.get("tm")]
            if timers:
                details.append("set timers: " + ", ".join(
                    f"{ty} ×{timers.count(ty)}" if timers.count(ty) > 1 else ty
                    for ty in dict.fromkeys(timers)))
            lines.append(_message_line(r, order_actor))
            lines += [_INDENT + d for d in details]
        elif _is_msg(r):
            if r.get("c") not in handled:  # sent outside a turn the trace shows
                lines.append(_message_line(r, order_actor))
        elif _is_telemetry(r):
            if (not (r.get("in") in handled and not r.get("a")) and r["k"] not in _QUIET
                    and id(r) not in attached):
                who = r.get("a") or "order"
                lines.append(f"{clock(r['t'])}  {who}: {_outcome(r)}")
        elif r["k"] != "spawn":
            lines.append(f"{clock(r['t'])}  {_kernel_phrase(r, order_actor)}")
    lines += _wrong_chains(records, mine)
    lines.append(_final_state(mine, records[-1]["t"] if records else 0.0))
    return lines


def _wrong_chains(records: Sequence[Record], mine: Sequence[Record]) -> list[str]:
    lines: list[str] = []
    decided: dict[str, list[str]] = {}  # message id -> irreversible commands of its turn
    for r in mine:
        if r["k"] == "ActionTaken" and r.get("irreversible") and r.get("in"):
            decided.setdefault(r["in"], []).append(f"{r['command_type']} by {r.get('issued_by')}")
    for w in (r for r in mine if r["k"] == "WrongAction"):
        lines.append("")
        lines.append(f"{WRONG_MARK} wrong action at {clock(w['t'])}: {w.get('invariant')} — "
                     f"{w.get('detail')}")
        ids = w.get("chain") or ([w["in"]] if w.get("in") else [])
        chain = causal_chain(records, ids[-1]) if ids else []
        if not chain:
            lines.append(f"{_INDENT}no causal chain recorded (message ids: "
                         f"{', '.join(ids) or 'none'})")
            continue
        lines.append(f"{_INDENT}the messages that led to it, oldest first:")
        for m in chain:
            sender = m.get("fr") or "(outside)"
            what = "timer " if m.get("tm") else ""
            rounds = (f" (the last of {m['rounds']} rounds of this timer)"
                      if m.get("rounds") else "")
            lines.append(f"{_INDENT}{clock(m['t'])}  {sender} → {m.get('to')}: {what}{m['ty']} "
                         f"[{m['id']}]{rounds}")
            if m["id"] in decided:
                lines.append(f"{_INDENT}          the order decided: {', '.join(decided[m['id']])}")
    if lines:
        lines.append("")
    return lines


def _final_state(mine: Sequence[Record], end: float) -> str:
    stage = ""
    finished = ""
    views: dict[str, str] = {}
    last = 0.0
    for r in mine:
        kind = r["k"]
        if kind == "OrderStageEntered":
            stage, last = r.get("stage", ""), r["t"]
        elif kind == "OrderFinished":
            finished, last = r.get("final_state", ""), r["t"]
        elif kind == "SystemViewChanged" and str(r.get("system", "")).startswith("coordinator:"):
            views[r["system"].split(":", 1)[1]] = r.get("status", "")
            last = r["t"]
    parts: list[str] = []
    support = views.get("support", "")
    if ";" in support:
        lifecycle, payment = support.split(";", 1)
        parts.append(f"lifecycle {lifecycle}, payment {payment or 'none'}")
    elif stage:
        parts.append(f"stage {stage}")
    money = dict(kv.split("=", 1) for kv in views.get("finance", "").split(";") if "=" in kv)
    if money:
        parts.append(", ".join(f"{k} {v} cents" for k, v in money.items()))
    if views.get("crm"):
        parts.append(f"the customer sees {views['crm']}")
    if finished:
        parts.append(f"finished as {finished}")
    if not parts:
        return f"final state: unknown (no stage or view recorded by {clock(end)})"
    return f"final state (last change {clock(last)}, trace ends {clock(end)}): " + "; ".join(parts)


def trace_overview(records: Sequence[Record]) -> list[str]:
    """The orders with wrong actions or stuck spells: one line each (order,
    what, when), wrong actions first, each group in order of first sight."""
    found: dict[str, list[Record]] = {}
    for r in records:
        if r["k"] in ("WrongAction", "OrderStuck") and r.get("o"):
            found.setdefault(r["o"], []).append(r)
    wrong = [o for o, rs in found.items() if any(r["k"] == "WrongAction" for r in rs)]
    stuck = [o for o in found if o not in wrong]
    lines: list[str] = []
    for order in wrong + stuck:
        rs = found[order]
        what: dict[str, float] = {}  # phrase -> the longest stuck age seen (0: a wrong action)
        for r in rs:
            if r["k"] == "WrongAction":
                what.setdefault(f"wrong action {r.get('invariant')}", 0.0)
            else:
                phrase = f"stuck in {r.get('stage')} ({r.get('reason')})"
                what[phrase] = max(what.get(phrase, 0.0), float(r.get("age", 0.0)))
        said = "; ".join(f"{p} for {_duration(age)}" if age else p for p, age in what.items())
        lines.append(f"{order:<10} {said}  first at {clock(rs[0]['t'])}")
    return lines
