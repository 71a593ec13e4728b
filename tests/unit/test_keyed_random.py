"""KeyedRandom: draws addressed by a key, reproducible from the seed alone."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from orderloom.actors import KeyedRandom


def _spec(seed: int, key: str, n: int) -> float:
    """The n-th draw of ``key``: the top 53 bits of BLAKE2b-64(``<key>#<n>``)
    keyed with the seed, as a fraction of 2**53."""
    digest = hashlib.blake2b(f"{key}#{n}".encode(), digest_size=8,
                             key=(seed % 2**256).to_bytes(32, "big")).digest()
    return (int.from_bytes(digest, "big") >> 11) / 2**53


@given(seed=st.integers(0, 2**64), key=st.text(max_size=20), count=st.integers(1, 5))
def test_draws_are_the_keyed_hash_of_key_and_count(seed: int, key: str, count: int) -> None:
    rng = KeyedRandom(seed).at(key)
    assert [rng.random() for _ in range(count)] == [
        _spec(seed, key, n) for n in range(1, count + 1)]


def test_a_key_sequence_continues_after_its_drawn_count_whatever_came_between() -> None:
    rng = KeyedRandom(7)
    first = [rng.at("o1/x").random() for _ in range(1)] + [rng.random(), rng.random()]
    rng.at("o2/y").random()  # another key in between
    assert rng.at("o1/x", drawn=1).random() == first[1]
    assert rng.at("o1/x", drawn=2).random() == first[2]
    assert 0.0 <= min(first) and max(first) < 1.0


def test_the_seed_is_taken_lazily_once() -> None:
    calls: list[int] = []

    def seed() -> int:
        calls.append(1)
        return 42

    rng = KeyedRandom(seed)
    assert calls == []
    a = rng.at("k").random()
    b = rng.at("k").random()
    assert calls == [1] and a == b == _spec(42, "k", 1)
