"""POST /ingest/{source} on a live kernel (no broker): 202 only after the
recipient's turn, 503 when it fails or no actor runs there, refusals recorded,
dead-lettered and answered with their reason."""

from __future__ import annotations

import json
from typing import Any

import anyio
import attrs
import httpx2
import pytest
from starlette.applications import Starlette

from orderloom.runtime import (
    Actor,
    Address,
    Envelope,
    FieldRules,
    IngestAccepted,
    IngestError,
    IngestReason,
    MemoryStore,
    Message,
    RefusedPayload,
    WireCodec,
    WireType,
    handler,
)
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.loopback import LoopbackBroker, LoopbackTransport
from orderloom.runtime.webhooks import ingest_routes

HANG_GUARD = 60.0


@attrs.frozen(kw_only=True)
class Note(Message):
    """What the test gate delivers."""

    n: int


class Gate:
    """Source ``feed``: ``{"to": address, "n": int}`` with header ``x-key: k``; a
    body ``{"bad": true}`` is refused as not_json (as a parser would)."""

    sources = frozenset({"feed"})

    def self_authenticating(self, source: str) -> bool:
        return False

    def ingest(self, source: str, headers: Any, raw_body: bytes, *, origin: str,
               now: float) -> IngestAccepted | RefusedPayload:
        data = json.loads(raw_body)
        if headers.get("x-key") != "k":
            return RefusedPayload.of(IngestError(IngestReason.BAD_SIGNATURE, "no key"),
                                     source=source, origin=origin, received_at=now,
                                     payload={"n": data.get("n")})
        if data.get("bad"):
            return RefusedPayload.of(IngestError(IngestReason.NOT_JSON, "bad"), source=source,
                                     origin=origin, received_at=now, payload={})
        return IngestAccepted(source=source, envelopes=tuple(
            Envelope(f"m-{data['n']}-{i}", None, None, None, Address(data["to"]), now,
                     Note(n=data["n"])) for i in range(2)))


class Recorder(Actor):
    """Keeps every note; fails on n == 13."""

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    @handler
    async def on_note(self, msg: Note) -> None:
        if msg.n == 13:
            raise RuntimeError("injected: the turn fails")
        self.seen.append(msg.n)


def test_the_webhook_answers_after_the_turns_and_refuses_with_reasons() -> None:
    """202 comes after both turns ran; a failing turn gives 503 not_committed; no actor
    gives 503 recipient_unavailable with nothing delivered; refusals are 401/422, recorded
    in the store and on the dead topic."""
    codec = WireCodec([WireType(name="test.note", version=1, cls=Note)], rules=FieldRules())
    seen: list[int] = []

    async def main() -> None:
        store = MemoryStore()
        broker = LoopbackBroker()
        with anyio.fail_after(HANG_GUARD):
            async with LoopbackTransport(broker, codec, client_id="n", subscriptions=[]) as t, \
                    LiveKernel(transport=t) as kernel:
                kernel.spawn(lambda: Recorder(seen), "rec")
                app = Starlette(routes=ingest_routes(Gate(), kernel, store=store, transport=t,
                                                     clock=lambda: 1000.0,
                                                     commit_timeout=HANG_GUARD))
                # A turn that fails never commits, however long one waits.
                impatient = Starlette(routes=ingest_routes(Gate(), kernel, clock=lambda: 1000.0,
                                                           commit_timeout=0.5))
                async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                              base_url="http://node") as http, \
                        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=impatient),
                                           base_url="http://node") as http_impatient:
                    ok = await http.post("/ingest/feed", headers={"x-key": "k"},
                                         content=json.dumps({"to": "rec", "n": 1}))
                    assert ok.status_code == 202
                    assert seen == [1, 1]  # both turns ran before the answer
                    assert ok.json() == {"accepted": 2, "ids": ["m-1-0", "m-1-1"]}

                    failing = await http_impatient.post(
                        "/ingest/feed", headers={"x-key": "k"},
                        content=json.dumps({"to": "rec", "n": 13}))
                    assert failing.status_code == 503
                    assert failing.json()["error"] == "not_committed"

                    nobody = await http.post("/ingest/feed", headers={"x-key": "k"},
                                             content=json.dumps({"to": "ghost", "n": 2}))
                    assert nobody.status_code == 503
                    assert nobody.json()["recipients"] == ["ghost"]
                    assert not [d for d in kernel.dead_letters
                                if d.envelope.recipient == "ghost"]

                    forged = await http.post("/ingest/feed",
                                             content=json.dumps({"to": "rec", "n": 3}))
                    assert forged.status_code == 401
                    assert forged.json() == {"error": "bad_signature", "path": "",
                                             "detail": "bad_signature: no key"}
                    bad = await http.post("/ingest/feed", headers={"x-key": "k"},
                                          content=json.dumps({"bad": True}))
                    assert bad.status_code == 422 and bad.json()["error"] == "not_json"
                    assert (await http.post("/ingest/other", content=b"{}")).status_code == 404
                    huge = await http.post("/ingest/feed", content=b"{" + b" " * 70_000 + b"}")
                    assert huge.status_code == 413
        assert [d.reason for d in store.dead_letters()] == [
            IngestReason.TOO_LARGE, IngestReason.NOT_JSON, IngestReason.BAD_SIGNATURE]
        assert store.dead_letters()[2].origin == "POST /ingest/feed"
        assert [topic for topic, _ in broker.dead_letters] == [
            "orderloom/v1/dead/bad_signature", "orderloom/v1/dead/not_json",
            "orderloom/v1/dead/too_large"]
        assert seen == [1, 1]

    anyio.run(main, backend="asyncio")


@pytest.mark.parametrize("backend", ["trio"])
def test_the_webhook_runs_on_trio_too(backend: str) -> None:
    """The route needs only anyio: a delivered webhook is answered 202 on trio."""
    seen: list[int] = []

    async def main() -> None:
        with anyio.fail_after(HANG_GUARD):
            async with LiveKernel() as kernel:
                kernel.spawn(lambda: Recorder(seen), "rec")
                app = Starlette(routes=ingest_routes(Gate(), kernel, clock=lambda: 1.0))
                async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                              base_url="http://node") as http:
                    ok = await http.post("/ingest/feed", headers={"x-key": "k"},
                                         content=json.dumps({"to": "rec", "n": 4}))
                    assert ok.status_code == 202 and seen == [4, 4]

    anyio.run(main, backend=backend)


def test_the_webhook_starts_a_stopped_recipient_through_the_activator() -> None:
    """A recipient with no actor that the kernel's activator can start (a retired
    order) is started and gets the envelopes: 202 after its turns. One the activator
    declines is 503 recipient_unavailable, with nothing started or delivered."""
    seen: list[int] = []
    asked: list[str] = []

    def activate(address: Address) -> Any:
        asked.append(address)
        return (lambda: Recorder(seen)) if address == "rec/2" else None

    async def main() -> None:
        with anyio.fail_after(HANG_GUARD):
            async with LiveKernel() as kernel:
                kernel.set_activator(activate)
                app = Starlette(routes=ingest_routes(Gate(), kernel, clock=lambda: 1.0,
                                                     commit_timeout=HANG_GUARD))
                async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                              base_url="http://node") as http:
                    ok = await http.post("/ingest/feed", headers={"x-key": "k"},
                                         content=json.dumps({"to": "rec/2", "n": 5}))
                    assert ok.status_code == 202, ok.text
                    assert seen == [5, 5] and kernel.is_running("rec/2")
                    nobody = await http.post("/ingest/feed", headers={"x-key": "k"},
                                             content=json.dumps({"to": "ghost", "n": 6}))
                    assert nobody.status_code == 503
                    assert nobody.json()["recipients"] == ["ghost"]
                    assert not kernel.is_running("ghost") and kernel.dead_letter_total == 0

    anyio.run(main, backend="asyncio")
    assert asked == ["rec/2", "ghost"]  # once each: then rec/2 runs
    assert seen == [5, 5]
