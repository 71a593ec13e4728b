"""The address-validation service: is the shipping address deliverable, can it be fixed?

Simulated: the answer comes from the world's truth (an oracle) after a
latency. Without an oracle every address is valid.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from orderloom.runtime import Actor, handler

from ..order._documents import probability
from ._dist import Dist, KeyedRandom
from ..coordinator._protocol import AddressChecked, CheckAddress, OrderTruth

__all__ = ["AddressService", "AddressServiceConfig"]


@attrs.frozen(kw_only=True)
class AddressServiceConfig:
    """Latency of an answer, and how often a fixable address is corrected.

    Invariant: ``correct_success_rate`` in [0, 1].
    """

    latency: Dist = Dist.fixed(0.0)
    correct_success_rate: float = attrs.field(default=1.0, validator=probability)


class AddressService(Actor):
    """Answers :class:`CheckAddress` with :class:`AddressChecked` to the sender.

    ``ok`` is the truth's ``address_ok``; a bad address is ``corrected`` when
    the request asks for it, the truth says it is fixable, and a draw
    succeeds with ``correct_success_rate``. ``ok`` stays False on a
    correction: it reports the address as given. The latency and that draw
    come from a stream keyed by the order and the request's ``attempt``.

    Args:
        config: the service.
        oracle: the simulated truth of an order (None: every address is ok).

    Attributes:
        unanswered: requests with no sender to answer (told from outside).
    """

    def __init__(
        self, config: AddressServiceConfig, oracle: Callable[[str], OrderTruth] | None = None
    ) -> None:
        self.config = config
        self.oracle = oracle
        self.unanswered = 0
        self._keyed = KeyedRandom(lambda: self.ctx.rng.getrandbits(64))

    @handler
    async def on_check(self, msg: CheckAddress) -> None:
        """Validate (and maybe correct) the address; answer after the latency."""
        envelope = self.ctx.envelope
        sender = envelope.sender if envelope is not None else None
        # Common random numbers: the draws are keyed by the order and the
        # attempt, so what other orders asked before does not move them. The
        # correction draw always happens, so the latency of a check does not
        # depend on whether a fix was asked for.
        rng = self._keyed.at(f"{msg.order_id}/{msg.attempt}")
        latency = self.config.latency.sample(rng)
        fixed = rng.random() < self.config.correct_success_rate
        truth = self.oracle(msg.order_id) if self.oracle is not None else OrderTruth()
        corrected = not truth.address_ok and msg.correct and truth.address_fixable and fixed
        if sender is None:
            self.unanswered += 1
            return
        # A delayed send, not a sleep: the service answers others meanwhile.
        await self.ctx.send(
            sender,
            AddressChecked(order_id=msg.order_id, ok=truth.address_ok, corrected=corrected),
            delay=latency, correlation_id=msg.order_id,
        )
