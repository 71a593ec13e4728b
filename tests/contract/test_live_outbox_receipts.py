"""A persistent actor's outbox on the live kernel: an entry leaves it only
once its message is safe (the receiver's turn committed), and a re-sent
entry keeps its id, so the receiver's inbox applies it once.

The crash itself is tested with a killed process in
tests/integration/test_crash.py; here the same promises are checked inside
one process, by restarting the kernel on the same SQLite file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import anyio
import pytest

from orderloom.runtime import (
    Actor,
    AttrsCodec,
    ReceiptedSend,
    RestartPolicy,
    handler,
)
from orderloom.runtime.live import LiveKernel
from orderloom.runtime.sqlite import SqliteStore
from orderloom.simulation import SimKernel
from tests.fixtures.crash.two_actors import Ping, Sender
from tests.fixtures.crash.two_actors import Receiver as Recorder

pytestmark = pytest.mark.anyio

HANG_GUARD = 30.0  # real seconds: stops a hang, times nothing


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Receiver(Recorder):
    """Records each ping; raises instead while ``refuse`` says so."""

    def __init__(self, store: SqliteStore, refuse: list[bool], ids: list[str]) -> None:
        super().__init__(store)
        self.refuse = refuse
        self.ids = ids

    @handler
    async def on_ping(self, msg: Ping) -> None:
        envelope = self.ctx.envelope
        assert envelope is not None
        self.ids.append(envelope.message_id)
        if self.refuse and self.refuse[0]:
            raise RuntimeError("not now")
        self.record(msg)


class Plain(Actor):
    """A receiver that keeps nothing: its completed turn is the delivery."""

    def __init__(self, got: list[int]) -> None:
        self.got = got

    @handler
    async def on_ping(self, msg: Ping) -> None:
        self.got.append(msg.n)


def _store(path: Path) -> SqliteStore:
    return SqliteStore(path, AttrsCodec([Ping]))


async def _run(store: SqliteStore, refuse: list[bool], ids: list[str], *,
               send: bool) -> tuple[int, ...]:
    async with LiveKernel() as kernel:
        kernel.spawn(lambda: Sender(store), "sender")
        kernel.spawn(lambda: Receiver(store, refuse, ids), "receiver",
                     restart=RestartPolicy(max_restarts=5, backoff=0.0))
        if send:
            kernel.tell("sender", Ping(n=1))
        with anyio.fail_after(HANG_GUARD):
            await kernel.drain(HANG_GUARD)
        state: tuple[int, ...] = kernel.actor("receiver").state  # type: ignore[attr-defined]
    return state


async def test_an_entry_stays_in_the_outbox_until_its_receiver_committed(tmp_path: Path) -> None:
    """The receiver's turn fails: the message was handed over but is not
    safe, so the entry stays; the next start sends it again under the same
    id and the receiver's commit takes it out of the outbox."""
    store = _store(tmp_path / "two.db")
    ids: list[str] = []
    assert await _run(store, [True], ids, send=True) == ()
    pending = store.pending_outbox()
    assert [(e.stream, e.recipient) for e in pending] == [("sender", "receiver")]
    assert ids == [pending[0].entry_id]  # the entry id is the message id
    assert await _run(store, [False], ids, send=False) == (1,)
    assert ids == [pending[0].entry_id] * 2
    assert store.pending_outbox() == ()
    store.close()


async def test_a_resent_entry_the_receiver_has_is_applied_once(tmp_path: Path) -> None:
    """An entry left pending though its receiver committed it (the process
    died between the two): sent again on start, skipped by the receiver's
    inbox, and then marked published."""
    store = _store(tmp_path / "two.db")
    ids: list[str] = []
    assert await _run(store, [], ids, send=True) == (1,)
    assert store.pending_outbox() == ()
    # Put the entry back as if the receiver's commit had not taken it out.
    from orderloom.runtime import OutboxEntry, Turn
    store.commit("sender", Turn(expected_version=1, outbox=(OutboxEntry(
        entry_id=ids[0], stream="sender", recipient="receiver", message=Ping(n=1)),)))
    assert await _run(store, [], ids, send=False) == (1,)
    assert store.pending_outbox() == ()
    store.close()


async def test_a_plain_receivers_completed_turn_marks_the_entry(tmp_path: Path) -> None:
    """A receiver that is not persistent: its completed turn is the receipt."""
    store = _store(tmp_path / "plain.db")
    got: list[int] = []
    async with LiveKernel() as kernel:
        kernel.spawn(lambda: Sender(store), "sender")
        kernel.spawn(lambda: Plain(got), "receiver")
        kernel.tell("sender", Ping(n=7))
        with anyio.fail_after(HANG_GUARD):
            await kernel.drain(HANG_GUARD)
    assert got == [7] and store.pending_outbox() == ()
    store.close()


def test_only_the_live_kernel_gives_receipts() -> None:
    """The SimPy kernel's context has no receipts (its stores do not outlive
    the process), the live kernel's has."""
    sim = SimKernel(seed=1)
    sim.spawn(lambda: Plain([]), "p")
    assert not isinstance(sim.actor("p").ctx, ReceiptedSend)

    async def live() -> bool:
        async with LiveKernel() as kernel:
            kernel.spawn(lambda: Plain([]), "p")
            return isinstance(kernel.actor("p").ctx, ReceiptedSend)

    assert anyio.run(live)


class Napper(Recorder):
    """Records pings; ``n == 0`` passivates it (stops itself) after the turn."""

    @handler
    async def on_ping(self, msg: Ping) -> None:
        self.record(msg)
        if msg.n == 0:
            self.ctx.stop()


async def test_a_passivated_actor_comes_back_for_what_was_queued_or_sent_to_it(
        tmp_path: Path) -> None:
    """Pings queued behind the one that passivates the actor, and pings sent
    to it later by another actor of the node, start it again from the store
    through the activator (no transport): none is lost."""
    store = SqliteStore(tmp_path / "nap.db", AttrsCodec([Ping]))
    starts: list[str] = []

    def activate(address: str) -> Any:
        if address != "receiver":
            return None
        starts.append(address)
        return lambda: Napper(store)

    async with LiveKernel() as kernel:
        kernel.set_activator(activate)
        kernel.spawn(lambda: Napper(store), "receiver")
        for n in (0, 1, 2):  # 1 and 2 wait in the mailbox while 0 passivates it
            kernel.tell("receiver", Ping(n=n))
        with anyio.fail_after(HANG_GUARD):
            await kernel.drain(HANG_GUARD)
        kernel.spawn(lambda: Sender(store), "sender")
        kernel.tell("receiver", Ping(n=0))  # passivates it again
        with anyio.fail_after(HANG_GUARD):
            await kernel.drain(HANG_GUARD)
        assert not kernel.is_running("receiver")
        kernel.tell("sender", Ping(n=3))  # the sender's send restarts it
        with anyio.fail_after(HANG_GUARD):
            await kernel.drain(HANG_GUARD)
        assert kernel.dead_letter_total == 0
    assert [getattr(e.event, "n") for e in store.journal("receiver")] == [0, 1, 2, 0, 3]
    assert starts and store.pending_outbox() == ()
    store.close()


class Forwarder(Actor):
    """Forwards every ping to ``receiver`` (as intake forwards a placement)."""

    @handler
    async def on_ping(self, msg: Ping) -> None:
        assert isinstance(self.ctx, ReceiptedSend)
        await self.ctx.forward("receiver", msg)  # type: ignore[arg-type]


async def test_a_forwarded_message_is_acknowledged_once_its_recipient_committed(
        tmp_path: Path) -> None:
    """A message from outside that an actor forwards is acknowledged when the
    recipient's turn for the forwarded one completes, not when the
    forwarder's does: a failed recipient turn leaves it unacknowledged."""
    from orderloom.runtime import Address, Delivery, Envelope

    store = _store(tmp_path / "fwd.db")
    acked: list[int] = []
    refuse = [True]
    async with LiveKernel() as kernel:
        kernel.spawn(Forwarder, "intake")
        kernel.spawn(lambda: Receiver(store, refuse, []), "receiver",
                     restart=RestartPolicy(max_restarts=5, backoff=0.0))
        for n in (1, 2):
            if n == 2:
                refuse[0] = False
            envelope = Envelope(f"in-{n}", None, None, Address("shop"), Address("intake"), 0.0,
                                Ping(n=n), None)
            await kernel.deliver(Delivery(envelope, functools.partial(acked.append, n)))
            with anyio.fail_after(HANG_GUARD):
                await kernel.drain(HANG_GUARD)
        state = kernel.actor("receiver").state  # type: ignore[attr-defined]
    assert (state, acked) == ((2,), [2])
    store.close()
