"""Duration distributions as data (for scenario files), sampled from ``ctx.rng``
or from a :class:`KeyedRandom` stream."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from random import Random
from typing import Any

import attrs

__all__ = ["Dist", "KeyedRandom", "Window"]


class KeyedRandom(Random):
    """Random draws addressed by a key instead of by their order.

    ``at(key)`` positions the stream at the start of ``key``'s own sequence;
    the draws that follow depend only on the seed, the key and how many
    were drawn under that key since, never on what was drawn under other
    keys before. A simulated service keys its draws by what it serves
    (``"<order>/authorize/1"``), so under common random numbers an order
    meets the same latencies, declines and pick times whatever another
    policy made other orders ask for meanwhile.

    It is a :class:`random.Random` whose :meth:`random` is a keyed hash
    (BLAKE2b, 53 bits); every other method (``expovariate``, ``choice``,
    ``lognormvariate``...) is built on it. One instance per actor: a
    :class:`random.Random` carries its own 2.5 KB state, a key is a string.

    Args:
        seed: the stream's seed, or a function giving it, called at the first
            ``at`` (an actor passes ``lambda: self.ctx.rng.getrandbits(64)``:
            its context exists only once it runs, and that draw is then the
            only one from ``ctx.rng``).
    """

    def __init__(self, seed: int | Callable[[], int]) -> None:
        super().__init__(0)
        self._seed = seed
        self._hasher: Any = None  # BLAKE2b keyed with the seed, set at the first ``at``
        self._key = b""
        self.drawn = 0

    def at(self, key: str, drawn: int = 0) -> KeyedRandom:
        """Continue ``key``'s sequence after its first ``drawn`` draws."""
        if self._hasher is None:
            seed = self._seed if isinstance(self._seed, int) else self._seed()
            self._hasher = hashlib.blake2b(digest_size=8, key=(seed % 2**256).to_bytes(32, "big"))
        self._key = key.encode() + b"#"
        self.drawn = drawn
        return self

    def random(self) -> float:
        """The next draw of the current key, uniform in [0, 1): the keyed hash of
        ``<key>#<n>``. Copying the keyed hasher spares hashing the key block on
        every draw (the same digest as ``blake2b(data, key=...)``)."""
        self.drawn = n = self.drawn + 1
        h = self._hasher.copy()
        h.update(b"%s%d" % (self._key, n))
        return (int.from_bytes(h.digest(), "big") >> 11) * 2.0**-53

_KINDS = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "lognormal": ("mean", "sigma"),
    "gamma": ("mean", "shape"),
}


def _kind(_: object, a: attrs.Attribute[Any], v: str) -> None:
    if v not in _KINDS:
        raise ValueError(f"{a.name}: expected one of {sorted(_KINDS)}, got {v!r}")


@attrs.frozen(kw_only=True)
class Dist:
    """A non-negative random duration (seconds).

    ``kind`` names the family; the parameters it needs are:
    fixed(value), exponential(mean), uniform(low, high),
    triangular(low, mode, high), lognormal(mean, sigma: of the log),
    gamma(mean, shape). Invariants: parameters finite and >= 0; the ones a
    kind needs are set; ``low <= mode <= high``.
    """

    kind: str = attrs.field(validator=_kind)
    value: float = 0.0
    mean: float = 0.0
    low: float = 0.0
    high: float = 0.0
    mode: float = 0.0
    sigma: float = 0.0
    shape: float = 0.0

    def __attrs_post_init__(self) -> None:
        for name in ("value", "mean", "low", "high", "mode", "sigma", "shape"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
        if self.kind in ("exponential", "lognormal", "gamma") and self.mean <= 0:
            raise ValueError(f"mean: expected > 0 for a {self.kind} distribution, got {self.mean!r}")
        if self.kind == "gamma" and self.shape <= 0:
            raise ValueError(f"shape: expected > 0 for a gamma distribution, got {self.shape!r}")
        if self.kind in ("uniform", "triangular") and self.low > self.high:
            raise ValueError(f"low: expected <= high ({self.high}), got {self.low!r}")
        if self.kind == "triangular" and not self.low <= self.mode <= self.high:
            raise ValueError(f"mode: expected within [low, high], got {self.mode!r}")

    @staticmethod
    def fixed(value: float) -> Dist:
        """Always ``value``."""
        return Dist(kind="fixed", value=value)

    @staticmethod
    def exponential(mean: float) -> Dist:
        """Exponential with the given mean."""
        return Dist(kind="exponential", mean=mean)

    def sample(self, rng: Random) -> float:
        """Draw one duration."""
        kind = self.kind
        if kind == "fixed":
            return self.value
        if kind == "exponential":
            return rng.expovariate(1.0 / self.mean)
        if kind == "uniform":
            return rng.uniform(self.low, self.high)
        if kind == "triangular":
            return rng.triangular(self.low, self.high, self.mode)
        if kind == "lognormal":
            # ``mean`` is the distribution's mean: mu = ln(mean) - sigma^2 / 2.
            return rng.lognormvariate(math.log(self.mean) - self.sigma ** 2 / 2, self.sigma)
        return rng.gammavariate(self.shape, self.mean / self.shape)

    def expected(self) -> float:
        """The distribution's mean."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "uniform":
            return (self.low + self.high) / 2
        if self.kind == "triangular":
            return (self.low + self.mode + self.high) / 3
        return self.mean


@attrs.frozen(kw_only=True)
class Window:
    """A time window ``[start, end)`` in seconds, with a mode for what happens.

    Invariant: ``0 <= start < end``.
    """

    start: float
    end: float
    mode: str = "down"
    factor: float = 1.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"start: expected 0 <= start < end ({self.end}), got {self.start!r}")

    def contains(self, t: float) -> bool:
        """Whether ``t`` falls in the window."""
        return self.start <= t < self.end
