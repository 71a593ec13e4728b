"""HTTP ingest: ``POST /ingest/{source}`` hands a webhook to the ingest gate and the kernel.

:func:`ingest_routes` gives the Starlette routes ``orderloom serve`` mounts.
A request's raw body and headers go to the :class:`~orderloom.runtime.IngestGate`
(the same one the MQTT ingest topics use):

- accepted: its envelopes are delivered to the live kernel with their ids
  (:meth:`LiveKernel.deliver`), and the answer is ``202`` once every one of
  them has been taken by its recipient's turn (for the coordinator: the
  order's turn committed), with the message ids. A retried webhook carries
  the same ids, so the order's inbox (and its event ids) dedupe it. If the
  turns do not complete within ``commit_timeout`` seconds the answer is
  ``503`` (``not_committed``): retrying is safe. A recipient with no actor
  running is first offered to the kernel's activator
  (:meth:`LiveKernel.activate`: a retired order restarts from its journal,
  as for a message over the broker); only if none runs or can be started
  there (a generic source's ``order/<id>`` of an order the store has never
  seen) is nothing delivered: ``503`` (``recipient_unavailable``).
- refused: ``401`` for a bad signature (``bad_signature``), ``413`` for a
  body over 64 KiB (``too_large``), else ``422``; the body is JSON
  ``{"error": reason, "path", "detail"}`` (never a value from the payload).
  The refusal is passed to ``on_refused``, recorded in the store's
  dead-letter table (in a worker thread, off the event loop) and published
  on ``orderloom/v1/dead/{reason}``.
- a source that is not configured: ``404`` (``unknown_source``), not recorded.
- stopping (``stopping()`` is true): ``503`` (``stopping``) with
  ``Retry-After``, before the body is read; a request whose body was being
  read when the stop began is not delivered either.

Authentication: every endpoint sits behind :class:`~orderloom.runtime.ops.TokenAuth`,
except the ingest path of a source whose payloads carry a signature the
gate verifies before reading anything (Shopify's HMAC): a platform that
cannot send a bearer header authenticates by that signature alone. Pass
:func:`ingest_auth_exempt` to ``TokenAuth(exempt=...)`` for that.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ._ingest import IngestAccepted, IngestGate
from ._refused import RefusedPayload
from ._store import Store
from ._transport import Delivery, Transport, TransportError, ack_after
from ._wire import MAX_ENVELOPE_BYTES
from ._wire_errors import IngestError, IngestReason
from .live import LiveKernel
from .ops import Scope

__all__ = ["INGEST_PATH", "ingest_auth_exempt", "ingest_routes"]

INGEST_PATH = "/ingest/{source}"
"""The webhook endpoint's path; ``{source}`` is a configured ingest source."""

_STATUS = {IngestReason.BAD_SIGNATURE: 401, IngestReason.TOO_LARGE: 413}
_DEAD_TOPIC_WAIT = 5.0
"""Real seconds a refusal's answer waits for its record's publish on the dead
topic: while the broker is away the transport waits for it to come back, and
the sender should have its answer anyway (the record is in the table)."""


def ingest_auth_exempt(gate: IngestGate) -> Callable[[Scope], bool]:
    """The requests :class:`~orderloom.runtime.ops.TokenAuth` lets through
    without a token: ``POST /ingest/<source>`` of a self-authenticating
    source (its signature is verified before anything else is read)."""

    def exempt(scope: Scope) -> bool:
        path = scope.get("path", "")
        if scope.get("method") != "POST" or not isinstance(path, str):
            return False
        prefix, _, source = path.rpartition("/")
        return prefix == "/ingest" and source in gate.sources and gate.self_authenticating(source)

    return exempt


def ingest_routes(gate: IngestGate, kernel: LiveKernel, *, store: Store | None = None,
                  transport: Transport | None = None, clock: Callable[[], float] = time.time,
                  commit_timeout: float = 10.0, stopping: Callable[[], bool] | None = None,
                  on_refused: Callable[[RefusedPayload], None] | None = None,
                  ) -> list[BaseRoute]:
    """The ``POST /ingest/{source}`` route (see the module docstring).

    Args:
        gate: checks and translates payloads (``orderloom.actors.IngestSeam``).
        kernel: the live kernel running the recipients (intake, the orders),
            with the activator that restarts a retired one (if any).
        store: where refused payloads are recorded (``record_dead_letter``,
            called in a worker thread: the store must allow that, as every
            store of this package does).
        transport: where refused payloads are published (the dead topic).
        clock: seconds since the epoch (the gate's ``now``).
        commit_timeout: real seconds to wait for the recipients' turns.
        stopping: True once the process is stopping: from then on every
            request is answered ``503`` (``stopping``) and nothing is read
            or delivered (None: never).
        on_refused: called with each refused payload's record before it is
            recorded and published (serve counts them for its metrics).
    """
    is_stopping = stopping or _never

    async def ingest(request: Request) -> JSONResponse:
        source = request.path_params["source"]
        origin = f"POST /ingest/{source}"
        if source not in gate.sources:
            return JSONResponse({"error": "unknown_source", "path": "source",
                                 "detail": "not a configured ingest source"}, status_code=404)
        if is_stopping():
            return _stopping()
        raw, size = await _body(request)
        if raw is None:
            error = IngestError(IngestReason.TOO_LARGE, f"more than {MAX_ENVELOPE_BYTES} bytes")
            outcome: IngestAccepted | RefusedPayload = RefusedPayload.of(error, source=source, origin=origin,
                                                received_at=clock(),
                                                payload={"unparsed_bytes": size})
        else:
            outcome = gate.ingest(source, dict(request.headers), raw, origin=origin, now=clock())
        if isinstance(outcome, RefusedPayload):
            if on_refused is not None:
                on_refused(outcome)
            await _refused(outcome, store, transport)
            return JSONResponse({"error": outcome.reason.value, "path": outcome.path,
                                 "detail": outcome.detail},
                                status_code=_STATUS.get(outcome.reason, 422))
        if is_stopping():  # it began while the body was read: nothing is delivered
            return _stopping()
        envelopes = outcome.envelopes
        # A retired order is started again (restored from its journal) here, as
        # a message over the broker would start it.
        recipients = dict.fromkeys(e.recipient for e in envelopes)  # once each, in order
        missing = sorted(r for r in recipients if not kernel.activate(r))
        if missing:
            # Delivered, it would be an unknown_address dead letter and lost to
            # the caller: say so instead, so the platform retries later.
            return JSONResponse({"error": "recipient_unavailable", "recipients": missing,
                                 "detail": "no actor runs or can be started at the address; "
                                           "retry later"},
                                status_code=503, headers={"Retry-After": "30"})
        done = anyio.Event()
        ack = ack_after(len(envelopes), done.set)
        with anyio.move_on_after(commit_timeout):
            for envelope in envelopes:
                await kernel.deliver(Delivery(envelope, ack))
            await done.wait()
        ids = [e.message_id for e in envelopes]
        if not done.is_set():
            return JSONResponse({"error": "not_committed", "ids": ids,
                                 "detail": "the messages were not taken in time; retrying "
                                           "is safe (they are deduplicated)"},
                                status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"accepted": len(ids), "ids": ids}, status_code=202)

    return [Route(INGEST_PATH, ingest, methods=["POST"], name="ingest")]


def _never() -> bool:
    return False


def _stopping() -> JSONResponse:
    return JSONResponse({"error": "stopping", "detail": "the coordinator is shutting down; "
                                                        "nothing was delivered, retry later"},
                        status_code=503, headers={"Retry-After": "30"})


async def _body(request: Request) -> tuple[bytes | None, int]:
    """The body and its size, or None and the bytes read once it passes the
    limit (nothing more is read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_ENVELOPE_BYTES:
            return None, size
        chunks.append(chunk)
    return b"".join(chunks), size


async def _refused(letter: RefusedPayload, store: Store | None,
                   transport: Transport | None) -> None:
    if store is not None:
        # A worker thread: the write (an fsync for SQLite, a round trip for
        # PostgreSQL) must not stall the event loop the kernel runs on. The
        # stores take a lock around their connection; waiting here is not
        # cancelled, so the store is not closed under the write.
        await anyio.to_thread.run_sync(store.record_dead_letter, letter)
    if transport is not None:
        try:
            with anyio.move_on_after(_DEAD_TOPIC_WAIT):
                await transport.publish_dead_letter(letter)
        except TransportError:
            pass  # recorded in the table; the broker being away must not fail the answer
