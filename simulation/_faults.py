"""Message-level fault settings for a link between actors (SimPy kernel).

How rules compose: every rule whose sender and recipient patterns match a
message, and whose window holds the time the message is due, acts on it, in
the order the rules were set (the scenario's ``faults`` first, then swarm's).
The message is lost if any of them drops it (independent draws: drop
probabilities combine as ``1 - (1 - p1)(1 - p2)``); each may duplicate it
(so two rules with ``duplicate: 0.1`` can deliver up to three copies); and
their extra delays, ``delay`` and ``reorder`` jitter alike, add up.
"""

from __future__ import annotations

import math
from typing import Any

import attrs


def _probability(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"LinkFaults.{attribute.name} must be a probability in [0, 1], got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must be >= 0 seconds, "
                         f"got {value!r}")


@attrs.frozen(kw_only=True)
class LinkFaults:
    """Seeded faults applied to every message on a link.

    Invariants: probabilities lie in [0, 1]; durations are >= 0 and
    ``delay_min <= delay_max``.

    Attributes:
        drop: probability a message is lost (it is recorded as a dead letter
            with reason ``dropped_by_fault``, never silently).
        duplicate: probability a message is delivered twice (same message id,
            so receivers can dedupe).
        delay: probability a message gets an extra delay drawn uniformly from
            ``[delay_min, delay_max]``.
        reorder: a jitter window in seconds: each message gets an extra
            uniform ``[0, reorder]`` delay, so neighbours can overtake.
    """

    drop: float = attrs.field(default=0.0, validator=_probability)
    duplicate: float = attrs.field(default=0.0, validator=_probability)
    delay: float = attrs.field(default=0.0, validator=_probability)
    delay_min: float = attrs.field(default=0.0, validator=_non_negative)
    delay_max: float = attrs.field(default=0.0, validator=_non_negative)
    reorder: float = attrs.field(default=0.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.delay_min > self.delay_max:
            raise ValueError(
                f"LinkFaults.delay_min ({self.delay_min}) must be <= delay_max ({self.delay_max})"
            )


@attrs.frozen(kw_only=True)
class LinkRule:
    """Link faults in force on the links whose ends match two glob patterns,
    for the messages due in ``[start, end)`` (seconds of simulated time).

    Invariant: ``0 <= start < end`` (``end`` may be infinite: to the run's end).

    Attributes:
        sender: glob of the sending actor's address (``"gateway"``, ``"warehouse/*"``;
            ``"-"`` is a message from outside the world).
        recipient: glob of the receiving actor's address (``"order/*"``).
        faults: what happens to a message on the link.
        start: when the rule starts acting.
        end: when it stops.
    """

    sender: str
    recipient: str
    faults: LinkFaults
    start: float = attrs.field(default=0.0, validator=_non_negative)
    end: float = math.inf

    def __attrs_post_init__(self) -> None:
        if not self.end > self.start:
            raise ValueError(f"LinkRule.end ({self.end}) must be after start ({self.start})")
