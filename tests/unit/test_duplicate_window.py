"""The Automation actor's duplicate window (a fold of ``OrderKeyRecorded``):
it screens exactly as a window that drops every order on leaving it, keeps
no more than a bounded number of orders that left, and costs an order far
less than the window's size."""

from __future__ import annotations

from collections.abc import Mapping

import copy
import pickle

import attrs
from hypothesis import given
from hypothesis import strategies as st

from orderloom.actors import OrderSettings, journal_codec, load_builtin_policy
from orderloom.actors.coordinator import Automation, DuplicateWindow, OrderKeyRecorded
from orderloom.actors.coordinator._automation import LatestByKey

# Enough keys that the window merges its two parts (at 32 recent keys) often.
NAMES = [f"k{i}" for i in range(60)]
KEYS = st.sampled_from(NAMES)


def automation(window: float) -> Automation:
    """An Automation actor for ``evolve`` alone (no kernel, no store)."""
    policy = load_builtin_policy("cautious")
    policy = attrs.evolve(policy, duplicates=attrs.evolve(policy.duplicates, window=window))
    actor = Automation.__new__(Automation)
    actor.settings = OrderSettings(policy=policy)
    return actor


class Reference:
    """The window as it was: the orders in time order, each dropped once more
    than ``window`` seconds older than the newest (and its key with it, if
    it was the key's latest)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.entries: list[OrderKeyRecorded] = []
        self.latest: dict[str, OrderKeyRecorded] = {}

    def add(self, event: OrderKeyRecorded) -> None:
        while self.entries and event.at - self.entries[0].at > self.window:
            old = self.entries.pop(0)
            if self.latest.get(old.key) is old:
                del self.latest[old.key]
        self.entries.append(event)
        self.latest[event.key] = event


def screened(latest: Mapping[str, OrderKeyRecorded], key: str, now: float,
             window: float) -> str | None:
    """What a screening at ``now`` finds for ``key`` (as ``Automation.on_updated``)."""
    before = latest.get(key)
    return before.order_id if before is not None and now - before.at <= window else None


@given(window=st.floats(1.0, 500.0),
       orders=st.lists(st.tuples(KEYS, st.floats(0.0, 60.0)), min_size=50, max_size=300))
def test_it_screens_as_a_window_that_drops_each_order_on_leaving(
        window: float, orders: list[tuple[str, float]]) -> None:
    actor, state, reference = automation(window), DuplicateWindow(), Reference(window)
    now = 0.0
    for n, (key, gap) in enumerate(orders):
        now += gap
        for probe in NAMES:
            assert screened(state.latest, probe, now, window) == \
                screened(reference.latest, probe, now, window)
        event = OrderKeyRecorded(order_id=f"o{n}", key=key, at=now)
        state, _ = actor.evolve(state, event), reference.add(event)
        # Every key it keeps beyond the reference's has left the window.
        for extra in set(state.latest) - set(reference.latest):
            assert now - state.latest[extra].at > window
        assert {k: state.latest[k] for k in reference.latest} == reference.latest


def test_it_holds_about_the_window_and_copies_little_per_order() -> None:
    """A steady stream, every order its own key, 1,000 in the window: the
    window never holds much more than that, and adding an order copies a
    few dozen entries, not the window."""
    actor, state = automation(1000.0), DuplicateWindow()
    largest_copy = 0
    for n in range(20_000):
        state = actor.evolve(state, OrderKeyRecorded(order_id=f"o{n}", key=f"k{n}", at=float(n)))
        latest = state.latest
        assert len(latest) <= 1000 + 1 + 2 * 33  # the window, and what a merge has not dropped yet
        assert isinstance(latest, LatestByKey)
        largest_copy = max(largest_copy, len(latest.recent))
    assert largest_copy <= 40  # about sqrt(1,000): what each order copies


def test_a_window_decoded_from_a_snapshot_goes_on_screening() -> None:
    """A snapshot holds the mapping as a plain dictionary (and, written before,
    the entries in order, which decoding ignores): folding on from it gives
    the window the uninterrupted fold has."""
    actor, codec = automation(50.0), journal_codec()
    state = DuplicateWindow()
    events = [OrderKeyRecorded(order_id=f"o{n}", key=f"k{n % 7}", at=n * 3.0) for n in range(200)]
    for event in events[:120]:
        state = actor.evolve(state, event)
    name, text = codec.encode(state)
    restored = codec.decode(name, text)
    assert isinstance(restored, DuplicateWindow) and dict(restored.latest) == dict(state.latest)
    old = codec.decode(name, '{"entries": [{"order_id": "o1", "key": "k1", "at": 1.0}], '
                             '"latest": {"k1": {"order_id": "o1", "key": "k1", "at": 1.0}}}')
    assert isinstance(old, DuplicateWindow) and dict(old.latest) == {
        "k1": OrderKeyRecorded(order_id="o1", key="k1", at=1.0)}
    for event in events[120:]:
        state, restored = actor.evolve(state, event), actor.evolve(restored, event)
    for key in [f"k{i}" for i in range(7)]:
        assert screened(restored.latest, key, 600.0, 50.0) == \
            screened(state.latest, key, 600.0, 50.0)


def test_a_past_burst_does_not_outstay_the_window_when_few_keys_follow() -> None:
    """10,000 orders of distinct keys, then a long stream repeating 20 keys
    (too few to fill ``recent``): a window's time after the burst, its orders
    are gone; the window holds the 20 keys."""
    actor, state = automation(100.0), DuplicateWindow()
    for n in range(10_000):
        state = actor.evolve(state, OrderKeyRecorded(order_id=f"b{n}", key=f"b{n}", at=0.0))
    for n in range(2_000):
        state = actor.evolve(state, OrderKeyRecorded(order_id=f"o{n}", key=f"k{n % 20}",
                                                     at=1.0 + n * 0.5))
    assert len(state.latest) <= 20 + 1


def test_the_window_copies_and_pickles_as_its_value() -> None:
    """Immutable, yet copy, deepcopy and pickle (a replication's results cross
    processes) give an equal window that goes on screening alike."""
    actor, state = automation(100.0), DuplicateWindow()
    for n in range(100):
        state = actor.evolve(state, OrderKeyRecorded(order_id=f"o{n}", key=f"k{n % 40}", at=n))
    assert isinstance(state.latest, LatestByKey)
    for twin in (copy.copy(state), copy.deepcopy(state), pickle.loads(pickle.dumps(state))):
        assert twin == state and dict(twin.latest) == dict(state.latest)
        event = OrderKeyRecorded(order_id="x", key="k3", at=150.0)
        assert dict(actor.evolve(twin, event).latest) == dict(actor.evolve(state, event).latest)
