"""Bounded-memory accumulators for the metrics collector.

:class:`QuantileSketch` keeps every value up to ``capacity`` (exact
quantiles), then a uniform reservoir sample of that size (Vitter's
Algorithm R); the replacement draws come from the sketch's own
``random.Random(seed)``, so the same stream gives the same quantiles.
:class:`StepAverage` integrates a piecewise-constant signal (a queue
length) over a window that opens at the warm-up.
"""

from __future__ import annotations

import random
from array import array

__all__ = ["QuantileSketch", "StepAverage"]

DEFAULT_CAPACITY = 100_000


class QuantileSketch:
    """Count, mean, maximum (exact) and quantiles (exact up to ``capacity`` values).

    Args:
        capacity: values kept; past it, each new value replaces a random kept
            one with probability ``capacity / count`` (a uniform sample).
        seed: seed of the replacement draws (deterministic quantiles).
    """

    __slots__ = ("_capacity", "_count", "_max", "_rng", "_seed", "_total", "_values")

    def __init__(self, capacity: int = DEFAULT_CAPACITY, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected >= 1, got {capacity!r}")
        self._capacity = capacity
        self._seed = seed
        self._values = array("d")
        self._rng: random.Random | None = None  # created only once the reservoir is full
        self._count = 0
        self._total = 0.0
        self._max = float("-inf")

    @property
    def count(self) -> int:
        """Values added (not values kept)."""
        return self._count

    @property
    def exact(self) -> bool:
        """True while every value added is kept (the quantiles are exact)."""
        return self._count <= self._capacity

    def add(self, value: float) -> None:
        """Take one value in."""
        n = self._count
        self._count = n + 1
        self._total += value
        if value > self._max:
            self._max = value
        if n < self._capacity:
            self._values.append(value)
            return
        if self._rng is None:
            self._rng = random.Random(self._seed)
        j = self._rng.randrange(n + 1)
        if j < self._capacity:
            self._values[j] = value

    def mean(self) -> float:
        """The exact mean (0.0 with no value)."""
        return self._total / self._count if self._count else 0.0

    def maximum(self) -> float:
        """The exact maximum (0.0 with no value)."""
        return self._max if self._count else 0.0

    def quantiles(self, ps: tuple[float, ...]) -> tuple[float, ...]:
        """The ``p``-quantiles, linearly interpolated between order statistics.

        The ``p``-quantile of sorted ``x[0..n-1]`` is ``x[h]`` at ``h = p (n - 1)``
        (interpolated between neighbours), the "inclusive" method of
        :func:`statistics.quantiles`; 0.0 for each with no value.
        """
        if not self._values:
            return tuple(0.0 for _ in ps)
        xs = sorted(self._values)
        last = len(xs) - 1
        out: list[float] = []
        for p in ps:
            h = min(max(p, 0.0), 1.0) * last
            lo = int(h)
            hi = min(lo + 1, last)
            out.append(xs[lo] + (h - lo) * (xs[hi] - xs[lo]))
        return tuple(out)


class StepAverage:
    """The time-average and maximum of a step function over ``[start, now]``.

    The value before the first :meth:`set` is 0. A value set before
    ``start`` is the one in force when the window opens.
    """

    __slots__ = ("_area", "_last", "_max", "_start", "value")

    def __init__(self, start: float) -> None:
        self._start = start
        self.value = 0.0
        self._last = start
        self._area = 0.0
        self._max = 0.0

    def set(self, time: float, value: float) -> None:
        """The signal becomes ``value`` at ``time`` (times never decrease)."""
        begin = max(self._last, self._start)
        if time > begin:
            self._area += self.value * (time - begin)
            if self.value > self._max:
                self._max = self.value
        if time > self._last:
            self._last = time
        if time >= self._start and value > self._max:
            self._max = value
        self.value = value

    def area(self, now: float) -> float:
        """The integral over ``[start, now]`` (nothing is changed)."""
        begin = max(self._last, self._start)
        return self._area + (self.value * (now - begin) if now > begin else 0.0)

    def average(self, now: float) -> float:
        """The time-average over ``[start, now]`` (0.0 for an empty window)."""
        span = now - self._start
        return self.area(now) / span if span > 0 else 0.0

    def maximum(self, now: float) -> float:
        """The largest value in force during ``[start, now]``."""
        begin = max(self._last, self._start)
        return max(self._max, self.value) if now > begin else self._max
