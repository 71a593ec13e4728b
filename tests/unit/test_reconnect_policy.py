"""The MQTT transport's reconnect backoff: capped, doubling, jittered from an injected rng."""

from __future__ import annotations

import random

import pytest

from orderloom.runtime.mqtt import Reconnect, reconnect_delay


def test_the_wait_doubles_up_to_the_cap_within_its_jitter_band() -> None:
    """Attempt n waits between half and all of min(max_delay, first_delay * 2**(n-1))."""
    policy = Reconnect(first_delay=0.5, max_delay=4.0)
    rng = random.Random(3)
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delay = reconnect_delay(attempt, policy, rng)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)


def test_the_jitter_comes_from_the_given_rng_only() -> None:
    """Two rngs with one seed give the same waits; another seed gives other waits."""
    policy = Reconnect()
    same = [[reconnect_delay(n, policy, rng) for n in range(1, 8)]
            for rng in (random.Random(11), random.Random(11))]
    other = [reconnect_delay(n, policy, random.Random(12)) for n in range(1, 8)]
    assert same[0] == same[1] and same[0] != other


def test_a_long_outage_stays_at_the_cap() -> None:
    """A huge attempt count neither overflows nor exceeds max_delay."""
    policy = Reconnect(first_delay=0.2, max_delay=30.0)
    assert 15.0 <= reconnect_delay(10_000, policy, random.Random(0)) <= 30.0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"first_delay": 0.0}, "0 < first_delay <= max_delay"),
    ({"first_delay": 5.0, "max_delay": 1.0}, "0 < first_delay <= max_delay"),
    ({"give_up_after": 0}, "give_up_after must be > 0 seconds or None"),
    ({"give_up_after": -3.0}, "give_up_after must be > 0 seconds or None"),
])
def test_a_bad_policy_is_refused_naming_the_field(kwargs: dict[str, float], match: str) -> None:
    """Reconnect refuses a first delay out of (0, max_delay] and a give-up time <= 0."""
    with pytest.raises(ValueError, match=match):
        Reconnect(**kwargs)


def test_attempts_count_from_one() -> None:
    """Attempt 0 is a caller's bug, refused."""
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        reconnect_delay(0, Reconnect(), random.Random(0))
