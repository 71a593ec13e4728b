"""Message-level fault settings for a link between actors (SimPy kernel)."""

from __future__ import annotations

from typing import Any

import attrs


def _probability(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"LinkFaults.{attribute.name} must be a probability in [0, 1], got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"LinkFaults.{attribute.name} must be >= 0 seconds, got {value!r}")


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
