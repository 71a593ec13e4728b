"""The simulated payment gateway: authorize, capture, void, refund, reconcile.

The gateway answers :mod:`._protocol` requests with order events sent to the
request's ``notify`` address, under ``source="gateway"`` and a per-order
``source_seq`` that increases in the order the events are sent (an emulator
process numbers them under ``gateway/<epoch>`` instead, see
:func:`~..order._sources.epoch_source`). Service time
is modelled with a timer per request (never ``ctx.sleep``), so requests
overlap as they would at a real gateway.

Outcome reasons of :class:`PaymentFailed`: ``declined``,
``gateway_unavailable`` (an ``errors`` outage; nothing was recorded, so a
retry is processed later), ``unknown_request`` (reconciliation of a request
never received; the id is then closed so a late arrival cannot move money),
``unknown_authorization``, ``authorization_captured`` /
``authorization_voided`` / ``authorization_expired`` (not open),
``amount_exceeds_authorization`` and ``refund_exceeds_captured``.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any, TypeVar

import attrs

from orderloom.runtime import Actor, Address, Message, handler

from ..order._documents import probability
from ..order._sources import epoch_source
from ._dist import Dist, KeyedRandom, Window
from ..order._invariants import MoneyView
from ..order._messages import (
    AuthorizationExpired, Event, PaymentAuthorized, PaymentCaptured, PaymentFailed,
    PaymentRefunded, PaymentVoided, RiskAssessed,
)
from ..coordinator._telemetry import WrongAction, chain_of
from ..coordinator._protocol import (
    GatewayAuthorize, GatewayCapture, GatewayQuery, GatewayRefund, GatewayRequest, GatewayVoid,
    OrderRetired,
    OrderTruth,
)
from ..order._states import AuthorizationStatus, PaymentFailure, Risk, RiskRecommendation

__all__ = ["GatewayConfig", "PaymentGateway"]

# What the gateway counts per order: the ids it issues (``auth:<order>:<n>``...)
# and the requests of each kind it received (they key the requests' draws).
_COUNTED = ("auth", "cap", "ref", "GatewayAuthorize", "GatewayCapture", "GatewayVoid",
            "GatewayRefund", "GatewayQuery", "replay")

SOURCE = "gateway"
_MODES = frozenset({"down", "errors", "slow"})
E = TypeVar("E", bound=Event)


@attrs.frozen(kw_only=True)
class GatewayConfig:
    """How the simulated gateway behaves.

    Attributes:
        latency: time from receiving a request to answering it.
        decline_rate: probability that an authorization is declined.
        lost_response_rate: probability that a processed request's answer
            is lost (money moved; the coordinator sees a timeout). Replays
            and reconciliation answers are never lost.
        outages: windows by arrival time: ``down`` (no processing, no
            answer), ``errors`` (new requests answered at once with
            ``gateway_unavailable``), ``slow`` (latency times ``factor``).
            The first window containing the time applies.
        authorization_expiry: seconds after which an authorization neither
            captured nor voided expires (:class:`AuthorizationExpired`);
            None: never.
        risk_medium_from: risk scores at or above this are ``medium``.
        risk_high_from: risk scores at or above this are ``high``.
        risk_provider: the ``provider`` named in :class:`RiskAssessed`.

    Invariants: rates in [0, 1]; ``0 < risk_medium_from <= risk_high_from <= 1``;
    outage modes known; expiry None or > 0.
    """

    latency: Dist = Dist.fixed(1.0)
    decline_rate: float = attrs.field(default=0.0, validator=probability)
    lost_response_rate: float = attrs.field(default=0.0, validator=probability)
    outages: tuple[Window, ...] = ()
    authorization_expiry: float | None = None
    risk_medium_from: float = 0.3
    risk_high_from: float = 0.6
    risk_provider: str = "gateway"

    def __attrs_post_init__(self) -> None:
        for w in self.outages:
            if w.mode not in _MODES:
                raise ValueError(f"outages: mode expected one of {sorted(_MODES)}, got {w.mode!r}")
            if w.mode == "slow" and not w.factor > 0:
                raise ValueError(f"outages: a slow window needs factor > 0, got {w.factor!r}")
        if self.authorization_expiry is not None and not self.authorization_expiry > 0:
            raise ValueError(
                f"authorization_expiry: expected None or > 0, got {self.authorization_expiry!r}")
        if not 0 < self.risk_medium_from <= self.risk_high_from <= 1:
            raise ValueError(
                "risk thresholds: expected 0 < risk_medium_from <= risk_high_from <= 1, "
                f"got {self.risk_medium_from!r}, {self.risk_high_from!r}"
            )


@attrs.frozen(kw_only=True)
class _Complete(Message):
    """Timer: the gateway finished processing ``request``; ``key`` and
    ``drawn`` say where its random draws continue."""

    request: GatewayRequest
    key: str = ""
    drawn: int = 0


@attrs.frozen(kw_only=True)
class _Replay(Message):
    """Timer: send the recorded outcome of ``request_id`` to ``notify`` again."""

    request_id: str
    notify: Address


@attrs.frozen(kw_only=True)
class _Expire(Message):
    """Timer: authorization ``authorization_id`` reaches its expiry."""

    authorization_id: str


@attrs.define
class _Authorization:
    order_id: str
    amount: int
    notify: Address
    status: AuthorizationStatus = AuthorizationStatus.OPEN


class PaymentGateway(Actor):
    """A payment gateway with latency, declines, lost answers and outages.

    Idempotent by ``request_id``: a retried request (or a
    :class:`GatewayQuery` naming it) replays the recorded events with their
    original ``event_id`` and ``occurred_at`` (so the order deduplicates
    them) under a fresh ``source_seq`` (so a replay is never taken for
    stale). A retry that arrives while the original is still being processed
    gets the outcome once it is decided.

    Args:
        config: the behaviour model.
        oracle: the simulated world's truth about an order (risk score,
            forced declines); None draws a low risk score per order.
        forget: called with an order's id when the gateway forgets the
            order (on ``OrderRetired``), so the simulated world can drop its
            truth about it too: memory follows the orders in flight.
        epoch: None in the simulator; an emulator process's own epoch, so
            its events (``source="gateway/<epoch>"``) and the ids it issues
            never clash with those of an earlier run that counted from 1 too.
    """

    def __init__(
        self, config: GatewayConfig, oracle: Callable[[str], OrderTruth] | None = None,
        forget: Callable[[str], None] | None = None, epoch: str | None = None,
    ) -> None:
        self.config = config
        self.oracle = oracle
        self.forget = forget
        self.source = epoch_source(SOURCE, epoch)
        # Prefix of the event ids and of the ids issued (auth, cap, ref).
        self._mark = "" if epoch is None else f"/{epoch}"
        self._seq: dict[str, int] = {}
        self._counts: dict[str, int] = {}  # "<kind>:<order>" -> how many so far
        self._outcomes: dict[str, tuple[Event, ...]] = {}
        self._waiting: dict[str, list[Address]] = {}
        self._auths: dict[str, _Authorization] = {}
        self._captured: dict[str, int] = {}
        self._refunded: dict[str, int] = {}
        self._risk: dict[str, float] = {}
        self._keys: dict[str, list[str]] = {}  # order -> its request and authorization ids
        self._keyed = KeyedRandom(lambda: self.ctx.rng.getrandbits(64))

    def money_view(self, order_id: str) -> MoneyView:
        """What the gateway's ledger says was captured and refunded for an order."""
        return MoneyView(captured=self._captured.get(order_id, 0),
                         refunded=self._refunded.get(order_id, 0))

    def authorization_status(self, authorization_id: str) -> AuthorizationStatus | None:
        """The status of an authorization, or None if the gateway never issued it."""
        auth = self._auths.get(authorization_id)
        return None if auth is None else auth.status

    @handler(GatewayAuthorize, GatewayCapture, GatewayVoid, GatewayRefund)
    async def on_request(self, request: GatewayRequest) -> None:
        """Start processing a request, replay its outcome, or refuse it (outage)."""
        window = self._window()
        if window is not None and window.mode == "down":
            return
        rid = request.request_id
        if rid in self._outcomes or rid in self._waiting:
            self._follow(request, window)
        elif window is not None and window.mode == "errors":
            # The gateway's front end failed before recording anything.
            failed = self._event(PaymentFailed, request.order_id, request_id=rid,
                                 reason=PaymentFailure.GATEWAY_UNAVAILABLE)
            await self.ctx.send(request.notify, failed)
        else:
            self._waiting[rid] = []
            self._schedule_completion(request, window)

    @handler
    async def on_query(self, query: GatewayQuery) -> None:
        """Reconcile: replay the named request's outcome, or declare it unknown."""
        window = self._window()
        if window is not None and window.mode == "down":
            return
        if query.request_id in self._outcomes or query.request_id in self._waiting:
            self._follow(query, window)
        else:
            # Processed like a request so that the original, should it
            # arrive later, replays "unknown_request" instead of moving money.
            self._waiting[query.request_id] = []
            self._schedule_completion(query, window)

    @handler
    async def on_retired(self, msg: OrderRetired) -> None:
        """Check the coordinator's money against the ledger, then forget the
        order's ledger (bounded memory in long runs)."""
        captured = self._captured.get(msg.order_id, 0)
        refunded = self._refunded.get(msg.order_id, 0)
        known = msg.order_id in self._keys  # a repeated notice finds nothing to check
        if known and (captured, refunded) != (msg.captured, msg.refunded):
            self.ctx.emit(WrongAction(
                order_id=msg.order_id, invariant="money_conserved",
                detail=f"gateway captured {captured} refunded {refunded}; the order "
                       f"recorded captured {msg.captured} refunded {msg.refunded}",
                chain=chain_of(self.ctx.envelope)))
        for key in self._keys.pop(msg.order_id, ()):
            self._outcomes.pop(key, None)
            self._auths.pop(key, None)
        for table in (self._seq, self._captured, self._refunded, self._risk):
            table.pop(msg.order_id, None)
        for kind in _COUNTED:
            self._counts.pop(f"{kind}:{msg.order_id}", None)
        if self.forget is not None:
            self.forget(msg.order_id)

    @handler
    async def on_complete(self, msg: _Complete) -> None:
        """Decide and record a request's outcome, then answer (unless the answer is lost)."""
        request = msg.request
        rng = self._keyed.at(msg.key, msg.drawn)
        waiting = self._waiting.pop(request.request_id, [])
        events = self._process(request, rng)
        self._outcomes[request.request_id] = events
        self._keys.setdefault(request.order_id, []).append(request.request_id)
        lost = not isinstance(request, GatewayQuery) and self._chance(
            self.config.lost_response_rate, rng)
        if not lost:
            await self._send(request.notify, events, replay=False)
        for notify in waiting:
            await self._send(notify, events, replay=True)

    @handler
    async def on_replay(self, msg: _Replay) -> None:
        """Send a recorded outcome again."""
        await self._send(msg.notify, self._outcomes[msg.request_id], replay=True)

    @handler
    async def on_expire(self, msg: _Expire) -> None:
        """Expire an authorization that is still open."""
        auth = self._auths[msg.authorization_id]
        if auth.status is AuthorizationStatus.OPEN:
            auth.status = AuthorizationStatus.EXPIRED
            expired = self._event(AuthorizationExpired, auth.order_id,
                                  authorization_id=msg.authorization_id)
            await self.ctx.send(auth.notify, expired)

    def _process(self, request: GatewayRequest, rng: Random) -> tuple[Event, ...]:
        order_id, rid = request.order_id, request.request_id
        match request:
            case GatewayAuthorize():
                return self._authorize(request, rng)
            case GatewayCapture():
                auth = self._open_authorization(request.authorization_id, order_id)
                if isinstance(auth, PaymentFailure):
                    return (self._failed(request, auth),)
                if request.amount > auth.amount:
                    return (self._failed(request, PaymentFailure.AMOUNT_EXCEEDS_AUTHORIZATION),)
                auth.status = AuthorizationStatus.CAPTURED
                self._captured[order_id] = self._captured.get(order_id, 0) + request.amount
                return (self._event(PaymentCaptured, order_id, request_id=rid,
                                    authorization_id=request.authorization_id,
                                    capture_id=self._new_id("cap", order_id),
                                    amount=request.amount),)
            case GatewayVoid():
                auth = self._open_authorization(request.authorization_id, order_id)
                if isinstance(auth, PaymentFailure):
                    return (self._failed(request, auth),)
                auth.status = AuthorizationStatus.VOIDED
                return (self._event(PaymentVoided, order_id, request_id=rid,
                                    authorization_id=request.authorization_id),)
            case GatewayRefund():
                refundable = self._captured.get(order_id, 0) - self._refunded.get(order_id, 0)
                if request.amount > refundable:
                    return (self._failed(request, PaymentFailure.REFUND_EXCEEDS_CAPTURED),)
                self._refunded[order_id] = self._refunded.get(order_id, 0) + request.amount
                return (self._event(PaymentRefunded, order_id, request_id=rid,
                                    refund_id=self._new_id("ref", order_id),
                                    amount=request.amount),)
            case _:  # a GatewayQuery for a request this gateway never received
                return (self._failed(request, PaymentFailure.UNKNOWN_REQUEST),)

    def _authorize(self, request: GatewayAuthorize, rng: Random) -> tuple[Event, ...]:
        order_id = request.order_id
        truth = self.oracle(order_id) if self.oracle is not None else None
        risk = self._assess(order_id, truth)
        declined = truth is not None and truth.payment_declines
        if declined or self._chance(self.config.decline_rate, rng):
            return risk, self._failed(request, PaymentFailure.DECLINED)
        auth_id = self._new_id("auth", order_id)
        self._auths[auth_id] = _Authorization(order_id=order_id, amount=request.amount,
                                              notify=request.notify)
        self._keys.setdefault(order_id, []).append(auth_id)
        if self.config.authorization_expiry is not None:
            self.ctx.schedule(self.config.authorization_expiry, _Expire(authorization_id=auth_id))
        return risk, self._event(PaymentAuthorized, order_id, request_id=request.request_id,
                                 authorization_id=auth_id, amount=request.amount)

    def _assess(self, order_id: str, truth: OrderTruth | None) -> RiskAssessed:
        score = self._risk.get(order_id)
        if score is None:
            # One score per order, so re-authorizations agree with each other.
            score = truth.risk_score if truth is not None else \
                self._keyed.at(f"{order_id}/risk").uniform(0.0, self.config.risk_medium_from)
            self._risk[order_id] = score
        cfg = self.config
        if score < cfg.risk_medium_from:
            level, advice = Risk.LOW, RiskRecommendation.ACCEPT
        elif score < cfg.risk_high_from:
            level, advice = Risk.MEDIUM, RiskRecommendation.INVESTIGATE
        else:
            level, advice = Risk.HIGH, RiskRecommendation.CANCEL
        return self._event(RiskAssessed, order_id, level=level, recommendation=advice,
                           provider=cfg.risk_provider, score=score)

    def _open_authorization(self, authorization_id: str,
                            order_id: str) -> _Authorization | PaymentFailure:
        """The open authorization, or the reason it cannot be used."""
        auth = self._auths.get(authorization_id)
        if auth is None or auth.order_id != order_id:
            return PaymentFailure.UNKNOWN_AUTHORIZATION
        if auth.status is not AuthorizationStatus.OPEN:
            return PaymentFailure(f"authorization_{auth.status.value}")
        return auth

    def _follow(self, request: GatewayRequest, window: Window | None) -> None:
        """Answer a repeat of a known request id: replay now-ish, or when decided."""
        rid = request.request_id
        if rid in self._outcomes:
            # Keyed by the order's own count of replays: other orders' do not move it.
            n = self._count("replay", request.order_id)
            rng = self._keyed.at(f"{request.order_id}/replay/{n}")
            self.ctx.schedule(self._latency(window, rng),
                              _Replay(request_id=rid, notify=request.notify))
        else:
            self._waiting[rid].append(request.notify)

    async def _send(self, notify: Address, events: tuple[Event, ...], *, replay: bool) -> None:
        for event in events:
            if replay:
                event = attrs.evolve(event, source_seq=self._next_seq(event.order_id))
            await self.ctx.send(notify, event)

    def _failed(self, request: GatewayRequest, reason: PaymentFailure) -> PaymentFailed:
        return self._event(PaymentFailed, request.order_id, request_id=request.request_id,
                           reason=reason)

    def _event(self, cls: type[E], order_id: str, **fields: Any) -> E:
        seq = self._next_seq(order_id)
        return cls(order_id=order_id, event_id=f"gw{self._mark}:{order_id}:{seq}",
                   source=self.source,
                   source_seq=seq, occurred_at=self.ctx.now(), **fields)

    def _next_seq(self, order_id: str) -> int:
        seq = self._seq.get(order_id, 0) + 1
        self._seq[order_id] = seq
        return seq

    def _count(self, kind: str, order_id: str) -> int:
        """One more ``kind`` for ``order_id`` (kinds in ``_COUNTED``): how many now."""
        key = f"{kind}:{order_id}"
        n = self._counts[key] = self._counts.get(key, 0) + 1
        return n

    def _new_id(self, kind: str, order_id: str) -> str:
        return f"{kind}{self._mark}:{order_id}:{self._count(kind, order_id)}"

    def _window(self) -> Window | None:
        outages = self.config.outages
        if not outages:  # the usual case: no generator, no clock read
            return None
        now = self.ctx.now()
        return next((w for w in outages if w.contains(now)), None)

    def _schedule_completion(self, request: GatewayRequest, window: Window | None) -> None:
        """Process ``request`` after its latency, drawn (like its outcome) from
        its own keyed stream: the n-th request of a kind for an order."""
        kind = type(request).__name__
        key = f"{request.order_id}/{kind}/{self._count(kind, request.order_id)}"
        rng = self._keyed.at(key)
        latency = self._latency(window, rng)
        self.ctx.schedule(latency, _Complete(request=request, key=key, drawn=rng.drawn))

    def _latency(self, window: Window | None, rng: Random) -> float:
        latency = self.config.latency.sample(rng)
        return latency * window.factor if window is not None and window.mode == "slow" \
            else latency

    @staticmethod
    def _chance(rate: float, rng: Random) -> bool:
        # No draw for a zero rate: switching a fault off leaves other draws unchanged.
        return rate > 0 and rng.random() < rate
