"""The simulated payment gateway under the SimPy kernel: timing, ledger, faults, replays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orderloom.actors import (
    AuthorizationExpired,
    AuthorizationStatus,
    Dist,
    Event,
    GatewayAuthorize,
    GatewayCapture,
    GatewayConfig,
    GatewayQuery,
    GatewayRefund,
    GatewayRequest,
    GatewayVoid,
    OrderTruth,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentGateway,
    PaymentRefunded,
    PaymentVoided,
    Risk,
    RiskAssessed,
    RiskRecommendation,
    Window,
)
from orderloom.runtime import Actor, Address, handler
from orderloom.simulation import SimKernel

REC = Address("rec")


class Recorder(Actor):
    """Keeps every order event it is sent, with its arrival time."""

    def __init__(self) -> None:
        self.got: list[tuple[float, Event]] = []

    @handler(Event)
    async def on_event(self, msg: Event) -> None:
        self.got.append((self.ctx.now(), msg))


def _world(
    config: GatewayConfig | None = None,
    oracle: Callable[[str], OrderTruth] | None = None,
    seed: int = 0,
) -> tuple[SimKernel, PaymentGateway, Recorder]:
    kernel = SimKernel(seed=seed)
    cfg = config or GatewayConfig(latency=Dist.fixed(2.0))
    kernel.spawn(lambda: PaymentGateway(cfg, oracle), "gateway")
    kernel.spawn(Recorder, REC)
    gateway, rec = kernel.actor("gateway"), kernel.actor(REC)
    assert isinstance(gateway, PaymentGateway) and isinstance(rec, Recorder)
    return kernel, gateway, rec


def _auth(rid: str = "r1", order: str = "o1", amount: int = 1000) -> GatewayAuthorize:
    return GatewayAuthorize(order_id=order, request_id=rid, notify=REC, amount=amount)


def _capture(rid: str, auth: str, amount: int, order: str = "o1") -> GatewayCapture:
    return GatewayCapture(order_id=order, request_id=rid, notify=REC, authorization_id=auth,
                          amount=amount)


def _query(rid: str, order: str = "o1") -> GatewayQuery:
    return GatewayQuery(order_id=order, request_id=rid, notify=REC)


def _tell(kernel: SimKernel, *timed: tuple[float, GatewayRequest]) -> None:
    for at, request in timed:
        kernel.tell("gateway", request, delay=at)


def _summary(rec: Recorder) -> list[tuple[float, str, Any]]:
    """(time, event type, the payload field that matters) for each event."""
    out: list[tuple[float, str, Any]] = []
    for t, e in rec.got:
        detail: Any = getattr(e, "reason", None) or getattr(e, "level", None) \
            or getattr(e, "amount", None) or getattr(e, "authorization_id", None)
        out.append((t, type(e).__name__, detail))
    return out


def test_authorize_answers_risk_then_authorization_after_the_latency() -> None:
    """An authorization yields RiskAssessed then PaymentAuthorized at now + latency, seq 1 and 2."""
    kernel, _, rec = _world()
    _tell(kernel, (1.0, _auth()))
    kernel.run()
    (t1, risk), (t2, auth) = rec.got
    assert (t1, t2) == (3.0, 3.0)
    assert isinstance(risk, RiskAssessed) and isinstance(auth, PaymentAuthorized)
    assert (risk.level, risk.recommendation) == (Risk.LOW, RiskRecommendation.ACCEPT)
    assert [(e.source, e.source_seq, e.event_id, e.occurred_at) for e in (risk, auth)] == [
        ("gateway", 1, "gw:o1:1", 3.0), ("gateway", 2, "gw:o1:2", 3.0)]
    assert (auth.request_id, auth.authorization_id, auth.amount) == ("r1", "auth:o1:1", 1000)


def test_requests_overlap_instead_of_queueing() -> None:
    """Two requests arriving together both finish one latency later (service time is a timer)."""
    kernel, _, rec = _world()
    _tell(kernel, (0.0, _auth("r1", "o1")), (0.0, _auth("r2", "o2")))
    kernel.run()
    assert [t for t, _ in rec.got] == [2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize(("score", "level", "advice"), [
    (0.1, Risk.LOW, RiskRecommendation.ACCEPT),
    (0.3, Risk.MEDIUM, RiskRecommendation.INVESTIGATE),
    (0.59, Risk.MEDIUM, RiskRecommendation.INVESTIGATE),
    (0.6, Risk.HIGH, RiskRecommendation.CANCEL),
])
def test_risk_level_follows_the_oracle_score(
    score: float, level: Risk, advice: RiskRecommendation
) -> None:
    """The oracle's risk score maps to low/medium/high with accept/investigate/cancel."""
    kernel, _, rec = _world(oracle=lambda _: OrderTruth(risk_score=score))
    _tell(kernel, (0.0, _auth()))
    kernel.run()
    risk = rec.got[0][1]
    assert isinstance(risk, RiskAssessed)
    assert (risk.level, risk.recommendation, risk.score) == (level, advice, score)


def test_oracle_can_force_a_decline() -> None:
    """payment_declines=True makes the authorization fail as declined, after the risk event."""
    kernel, gateway, rec = _world(oracle=lambda _: OrderTruth(payment_declines=True))
    _tell(kernel, (0.0, _auth()))
    kernel.run()
    assert _summary(rec) == [(2.0, "RiskAssessed", Risk.LOW), (2.0, "PaymentFailed", "declined")]
    assert gateway.authorization_status("auth:o1:1") is None


def test_decline_rate_declines_authorizations() -> None:
    """With decline_rate=1 every authorization is declined and none is issued."""
    kernel, _, rec = _world(GatewayConfig(latency=Dist.fixed(2.0), decline_rate=1.0))
    _tell(kernel, (0.0, _auth("r1")), (0.0, _auth("r2", "o2")))
    kernel.run()
    assert [d for _, name, d in _summary(rec) if name == "PaymentFailed"] == ["declined"] * 2


def test_retry_after_completion_replays_without_moving_money_twice() -> None:
    """A retried capture replays the same event id under a newer seq; the ledger counts it once."""
    kernel, gateway, rec = _world()
    _tell(kernel, (0.0, _auth()), (5.0, _capture("c1", "auth:o1:1", 600)),
          (10.0, _capture("c1", "auth:o1:1", 600)))
    kernel.run()
    first, again = (e for _, e in rec.got if isinstance(e, PaymentCaptured))
    assert first.event_id == again.event_id and first.capture_id == again.capture_id
    assert (first.source_seq, again.source_seq) == (3, 4)
    assert again.occurred_at == first.occurred_at == 7.0
    assert [t for t, e in rec.got if isinstance(e, PaymentCaptured)] == [7.0, 12.0]
    assert gateway.money_view("o1").captured == 600


def test_retry_while_processing_is_answered_once_decided() -> None:
    """A retry arriving before the first attempt completes joins it: one authorization, two answers."""
    kernel, gateway, rec = _world()
    _tell(kernel, (0.0, _auth()), (1.0, _auth()))
    kernel.run()
    auths = [(t, e.event_id, e.source_seq) for t, e in rec.got if isinstance(e, PaymentAuthorized)]
    assert auths == [(2.0, "gw:o1:2", 2), (2.0, "gw:o1:2", 4)]
    assert gateway.authorization_status("auth:o1:2") is None


def test_lost_response_then_query_reconciles_with_the_original_events() -> None:
    """A lost answer still moves money; GatewayQuery replays the original event ids later."""
    config = GatewayConfig(latency=Dist.fixed(2.0), lost_response_rate=1.0)
    kernel, gateway, rec = _world(config)
    _tell(kernel, (0.0, _auth()), (30.0, _query("r1")))
    kernel.run()
    assert gateway.authorization_status("auth:o1:1") is AuthorizationStatus.OPEN
    assert [(t, type(e).__name__, e.event_id, e.source_seq, e.occurred_at) for t, e in rec.got] \
        == [(32.0, "RiskAssessed", "gw:o1:1", 3, 2.0),
            (32.0, "PaymentAuthorized", "gw:o1:2", 4, 2.0)]


def test_query_of_a_never_received_request_closes_it() -> None:
    """Reconciling an unknown request answers unknown_request, and a late original replays that."""
    kernel, gateway, rec = _world()
    _tell(kernel, (0.0, _query("r9")), (10.0, _auth("r9")))
    kernel.run()
    assert _summary(rec) == [(2.0, "PaymentFailed", "unknown_request"),
                             (12.0, "PaymentFailed", "unknown_request")]
    assert rec.got[0][1].event_id == rec.got[1][1].event_id
    assert gateway.authorization_status("auth:o1:1") is None


def test_down_window_drops_requests_silently() -> None:
    """In a down window requests get no processing and no answer; after it they work again."""
    config = GatewayConfig(latency=Dist.fixed(2.0), outages=(Window(start=10, end=20),))
    kernel, _, rec = _world(config)
    _tell(kernel, (12.0, _auth("r1")), (15.0, _query("r1")), (20.0, _auth("r2")))
    kernel.run()
    assert _summary(rec) == [(22.0, "RiskAssessed", Risk.LOW), (22.0, "PaymentAuthorized", 1000)]


def test_errors_window_fails_new_requests_at_once_without_recording_them() -> None:
    """An errors window answers gateway_unavailable immediately; the same id is processed later."""
    config = GatewayConfig(latency=Dist.fixed(2.0),
                           outages=(Window(start=10, end=20, mode="errors"),))
    kernel, _, rec = _world(config)
    _tell(kernel, (12.0, _auth("r1")), (25.0, _auth("r1")))
    kernel.run()
    assert _summary(rec) == [(12.0, "PaymentFailed", "gateway_unavailable"),
                             (27.0, "RiskAssessed", Risk.LOW), (27.0, "PaymentAuthorized", 1000)]


def test_errors_window_still_replays_recorded_outcomes() -> None:
    """A retry of an already processed request in an errors window replays its truth, not a failure."""
    config = GatewayConfig(latency=Dist.fixed(2.0),
                           outages=(Window(start=10, end=20, mode="errors"),))
    kernel, _, rec = _world(config)
    _tell(kernel, (0.0, _auth("r1")), (12.0, _auth("r1")))
    kernel.run()
    assert [name for _, name, _ in _summary(rec)] == ["RiskAssessed", "PaymentAuthorized"] * 2


def test_slow_window_multiplies_the_latency() -> None:
    """A slow window with factor 5 turns a 2 s latency into 10 s for requests arriving in it."""
    config = GatewayConfig(latency=Dist.fixed(2.0),
                           outages=(Window(start=10, end=20, mode="slow", factor=5.0),))
    kernel, _, rec = _world(config)
    _tell(kernel, (0.0, _auth("r1")), (10.0, _auth("r2", "o2")), (20.0, _auth("r3", "o3")))
    kernel.run()
    assert sorted({t for t, _ in rec.got}) == [2.0, 20.0, 22.0]


def test_ledger_refuses_impossible_requests() -> None:
    """Over-capture, second capture, void after capture, foreign and unknown authorizations fail."""
    kernel, gateway, rec = _world()
    _tell(kernel, (0.0, _auth("a1")), (0.0, _auth("a2", "o2")),
          (5.0, _capture("c1", "auth:o1:1", 1001)), (10.0, _capture("c2", "auth:o1:1", 1000)),
          (15.0, _capture("c3", "auth:o1:1", 10)),
          (15.0, GatewayVoid(order_id="o1", request_id="v1", notify=REC,
                             authorization_id="auth:o1:1")),
          (15.0, _capture("c4", "auth:o2:1", 10)), (15.0, _capture("c5", "nope", 10)))
    kernel.run()
    fails = {e.request_id: e.reason for _, e in rec.got if isinstance(e, PaymentFailed)}
    assert fails == {"c1": "amount_exceeds_authorization", "c3": "authorization_captured",
                     "v1": "authorization_captured", "c4": "unknown_authorization",
                     "c5": "unknown_authorization"}
    assert gateway.money_view("o1").captured == 1000


def test_void_then_capture_fails() -> None:
    """A voided authorization cannot be captured."""
    kernel, gateway, rec = _world()
    _tell(kernel, (0.0, _auth()),
          (5.0, GatewayVoid(order_id="o1", request_id="v1", notify=REC,
                            authorization_id="auth:o1:1")),
          (10.0, _capture("c1", "auth:o1:1", 10)))
    kernel.run()
    assert _summary(rec)[2:] == [(7.0, "PaymentVoided", "auth:o1:1"),
                                 (12.0, "PaymentFailed", "authorization_voided")]
    assert isinstance(rec.got[2][1], PaymentVoided)
    assert gateway.authorization_status("auth:o1:1") is AuthorizationStatus.VOIDED


def test_refunds_never_exceed_what_was_captured() -> None:
    """Partial refunds add up to the captured amount; one more cent is refused."""
    kernel, gateway, rec = _world()

    def refund(rid: str, amount: int) -> GatewayRefund:
        return GatewayRefund(order_id="o1", request_id=rid, notify=REC, amount=amount)

    _tell(kernel, (0.0, _auth()), (5.0, _capture("c1", "auth:o1:1", 800)),
          (10.0, refund("f1", 300)), (15.0, refund("f2", 500)), (20.0, refund("f3", 1)))
    kernel.run()
    assert _summary(rec)[3:] == [(12.0, "PaymentRefunded", 300), (17.0, "PaymentRefunded", 500),
                                 (22.0, "PaymentFailed", "refund_exceeds_captured")]
    refunds = [e.refund_id for _, e in rec.got if isinstance(e, PaymentRefunded)]
    assert refunds == ["ref:o1:1", "ref:o1:2"]
    assert (gateway.money_view("o1").captured, gateway.money_view("o1").refunded) == (800, 800)


def test_open_authorizations_expire_and_cannot_be_captured() -> None:
    """An authorization left open past authorization_expiry expires; a captured one does not."""
    config = GatewayConfig(latency=Dist.fixed(2.0), authorization_expiry=100.0)
    kernel, _, rec = _world(config)
    _tell(kernel, (0.0, _auth("r1")), (0.0, _auth("r2", "o2")),
          (50.0, _capture("c2", "auth:o2:1", 10, "o2")), (150.0, _capture("c1", "auth:o1:1", 10)))
    kernel.run()
    o1 = [(t, type(e).__name__) for t, e in rec.got if e.order_id == "o1"]
    assert o1 == [(2.0, "RiskAssessed"), (2.0, "PaymentAuthorized"),
                  (102.0, "AuthorizationExpired"), (152.0, "PaymentFailed")]
    o2 = [type(e).__name__ for _, e in rec.got if e.order_id == "o2"]
    assert o2 == ["RiskAssessed", "PaymentAuthorized", "PaymentCaptured"]
    assert any(isinstance(e, AuthorizationExpired) for _, e in rec.got)
    assert _summary(rec)[-1][2] == "authorization_expired"


def test_source_seq_increases_per_order_in_arrival_order() -> None:
    """Each order's events carry seqs 1, 2, 3... in the order they arrive, independently per order."""
    config = GatewayConfig(latency=Dist.exponential(3.0), decline_rate=0.3)
    kernel, _, rec = _world(config, seed=7)
    for i in range(30):
        order = f"o{i % 3}"
        _tell(kernel, (float(i), _auth(f"r{i}", order)), (float(i) + 1, _query(f"r{i}", order)))
    kernel.run()
    for order in ("o0", "o1", "o2"):
        seqs = [e.source_seq for _, e in rec.got if e.order_id == order]
        assert seqs == list(range(1, len(seqs) + 1))
    assert len({e.event_id for _, e in rec.got}) == 60  # replays reuse the original ids


def test_same_seed_gives_the_same_answers() -> None:
    """Two runs with one seed produce identical event lists (randomness only from ctx.rng)."""

    def run() -> list[tuple[float, Event]]:
        config = GatewayConfig(latency=Dist.exponential(2.0), decline_rate=0.4,
                               lost_response_rate=0.3)
        kernel, _, rec = _world(config, seed=3)
        _tell(kernel, *((float(i), _auth(f"r{i}", f"o{i}")) for i in range(20)))
        kernel.run()
        return rec.got

    assert run() == run()


def test_config_rejects_nonsense() -> None:
    """Rates outside [0, 1], unknown outage modes and inverted risk thresholds are refused."""
    with pytest.raises(ValueError, match="decline_rate"):
        GatewayConfig(decline_rate=1.5)
    with pytest.raises(ValueError, match="mode"):
        GatewayConfig(outages=(Window(start=0, end=1, mode="flaky"),))
    with pytest.raises(ValueError, match="risk thresholds"):
        GatewayConfig(risk_medium_from=0.7, risk_high_from=0.5)


def test_retirement_checks_money_then_forgets_the_order() -> None:
    """On OrderRetired the gateway flags a money mismatch with the order's totals
    (money_conserved, its chain naming the notice) and then drops the order's ledger."""
    from orderloom.actors import OrderRetired
    from orderloom.actors import WrongAction

    kernel, gateway, rec = _world()
    emitted: list[object] = []
    kernel.add_sink(lambda t, a, e: emitted.append(e))
    _tell(kernel, (0.0, _auth()), (5.0, _capture("c1", "auth:o1:1", 1000)))
    kernel.run()
    kernel.tell("gateway", OrderRetired(order_id="o1", captured=1000))
    kernel.tell("gateway", OrderRetired(order_id="o1", captured=400), delay=1.0)
    kernel.run()
    wrong = [e for e in emitted if isinstance(e, WrongAction)]
    assert wrong == []  # first notice matched; the ledger is gone before the second
    _tell(kernel, (0.0, _auth(rid="r2", order="o2")),
          (5.0, _capture("c2", "auth:o2:1", 1000, order="o2")))
    kernel.run()
    notice = kernel.tell("gateway", OrderRetired(order_id="o2", captured=400))
    kernel.run()
    (mismatch,) = [e for e in emitted if isinstance(e, WrongAction)]
    assert mismatch.invariant == "money_conserved" and mismatch.order_id == "o2"
    assert mismatch.chain == (notice,)  # the retirement notice that revealed it
    assert gateway.money_view("o2").captured == 0


def test_an_orders_latency_and_outcome_do_not_depend_on_other_orders() -> None:
    """Common random numbers: an order's n-th request of a kind draws its latency,
    decline and lost answer from its own keyed stream, and its n-th replay its
    latency, so other orders' traffic (another policy's extra queries and
    retries) changes nothing for it."""
    cfg = GatewayConfig(latency=Dist.exponential(3.0), decline_rate=0.3,
                        lost_response_rate=0.2)

    def seen(others: int) -> list[tuple[float, str]]:
        kernel, _, rec = _world(cfg, seed=11)
        for i in range(others):
            kernel.tell("gateway", _auth(f"x{i}", order=f"other{i}"))
            kernel.tell("gateway", _query(f"q{i}", order=f"other{i}"))
            kernel.tell("gateway", _auth(f"x{i}", order=f"other{i}"), delay=50.0)  # a replay
        for n in range(5):
            kernel.tell("gateway", _auth(f"r{n}", order=f"o{n}"), delay=1.0)
            kernel.tell("gateway", _auth(f"r{n}", order=f"o{n}"), delay=60.0)
        kernel.run(until=1_000)
        return [(round(t, 9), f"{e.order_id}:{type(e).__name__}") for t, e in rec.got
                if not e.order_id.startswith("other")]

    alone = seen(0)
    assert len({name for _, name in alone}) > 3  # several orders, several outcomes
    assert seen(4) == alone
    assert seen(9) == alone
