"""The answer to a remote ask as a message: kinds, redaction, invariants, the wire."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from orderloom.actors import AddressChecked, wire_codec
from orderloom.runtime import (
    ActorNotFound,
    Address,
    Envelope,
    KernelReply,
    NotOnTheWire,
    RemoteError,
    ReplyFailure,
    ReplyFailureKind,
    UnhandledMessage,
)
from orderloom.runtime._reply import error_for, failure_of

CODEC = wire_codec()
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "wire-schema.json")
                    .read_text(encoding="utf-8"))


@pytest.mark.parametrize(("error", "kind"), [
    (ValueError("x"), ReplyFailureKind.HANDLER_FAILED),
    (UnhandledMessage("svc", "Ping", "m-1"), ReplyFailureKind.UNHANDLED),
    (ActorNotFound("svc"), ReplyFailureKind.ACTOR_NOT_FOUND),
    (NotOnTheWire("Pong", "is not a registered wire type"), ReplyFailureKind.NOT_ON_THE_WIRE),
])
def test_a_failure_travels_with_its_kind_and_class_name(error: Exception,
                                                        kind: ReplyFailureKind) -> None:
    """Each exception maps to its closed kind and keeps its class name."""
    failure = failure_of(error)
    assert (failure.kind, failure.error_type) == (kind, type(error).__qualname__)


def test_a_foreign_exception_text_is_redacted_and_ours_is_kept() -> None:
    """A foreign exception's text (it may quote a customer) travels only as its
    length; an orderloom error's text, which names ids and addresses, is kept."""
    foreign = failure_of(ValueError("cannot reach alice@example.com"))
    ours = failure_of(ActorNotFound("warehouse/W1"))
    assert foreign.text == f"<redacted: {len('cannot reach alice@example.com')} chars>"
    assert ours.text == str(ActorNotFound("warehouse/W1"))


def test_a_long_text_of_ours_is_cut_to_the_limit() -> None:
    """Our own error's text is cut to 512 characters, so a reply stays small."""
    failure = failure_of(ActorNotFound("a" * 600))
    assert len(failure.text) == 512 and failure.text.endswith("...")


def test_the_asker_raises_actor_not_found_or_remote_error() -> None:
    """actor_not_found becomes ActorNotFound (as a local ask gives); every other
    kind a RemoteError carrying the kind, class name and text."""
    missing = error_for("svc", "m-1", ReplyFailure(
        kind=ReplyFailureKind.ACTOR_NOT_FOUND, error_type="ActorNotFound", text="t"))
    failed = error_for("svc", "m-1", ReplyFailure(
        kind=ReplyFailureKind.HANDLER_FAILED, error_type="ValueError", text="t"))
    assert isinstance(missing, ActorNotFound) and missing.address == "svc"
    assert isinstance(failed, RemoteError)
    assert (failed.recipient, failed.request_id, failed.kind, failed.error_type, failed.text) == (
        "svc", "m-1", ReplyFailureKind.HANDLER_FAILED, "ValueError", "t")


def test_a_reply_carries_a_value_or_an_error_not_both() -> None:
    """Setting both outcomes is refused by the message's invariant."""
    with pytest.raises(ValueError, match="not both"):
        KernelReply(request_id="m-1", value=AddressChecked(order_id="O-1", ok=True),
                    error=ReplyFailure(kind=ReplyFailureKind.HANDLER_FAILED,
                                       error_type="ValueError", text="t"))


@pytest.mark.parametrize("body", [
    KernelReply(request_id="run-7"),
    KernelReply(request_id="run-7", value=AddressChecked(order_id="O-1", ok=True)),
    KernelReply(request_id="run-7", error=ReplyFailure(
        kind=ReplyFailureKind.UNHANDLED, error_type="UnhandledMessage", text="t")),
], ids=["none", "value", "error"])
def test_a_reply_round_trips_on_the_wire_and_matches_the_published_schema(
    body: KernelReply,
) -> None:
    """A kernel.reply (no value, a nested typed value, an error) decodes to an
    equal envelope and validates against docs/wire-schema.json."""
    envelope = Envelope("run-8", "run-7", "O-1", Address("address-service"),
                        Address("order/O-1"), 10.0, body)
    raw = CODEC.encode_envelope(envelope)
    assert CODEC.decode_envelope(raw) == envelope
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(raw))
    assert json.loads(raw)["type"] == "kernel.reply"
