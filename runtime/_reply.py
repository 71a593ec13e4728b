"""The answer to an ``ask`` that crossed a transport, as a message of its own.

Within one kernel an ask's answer (or the handler's exception) is handed to
the waiting asker directly. Across a transport the kernel that ran the
handler publishes a :class:`KernelReply` to the asker's address (the
request's ``reply_to``); the asker's kernel completes the pending ask with
it and delivers it to no actor. An exception cannot travel as itself: it
becomes a :class:`ReplyFailure` (a closed kind, the exception's class name
and a text that quotes no payload value), raised on the asker's side as
:class:`RemoteError` (or :class:`ActorNotFound` when no actor was there).

The wire name is ``kernel.reply`` (v1); a codec used by a live kernel with a
transport registers it (the order domain's table does).
"""

from __future__ import annotations

import enum

import attrs

from ._contract import Message
from ._errors import ActorNotFound, KernelError, OrderloomError, UnhandledMessage
from ._wire_errors import NotOnTheWire

__all__ = ["KernelReply", "RemoteError", "ReplyFailure", "ReplyFailureKind",
           "error_for", "failure_of"]

_MAX_TEXT = 512


class ReplyFailureKind(enum.StrEnum):
    """Why a remote request has no answer (closed)."""

    HANDLER_FAILED = "handler_failed"  # the handler raised
    UNHANDLED = "unhandled"  # the actor has no handler for the request's type
    ACTOR_NOT_FOUND = "actor_not_found"  # no actor at the address, or it stopped
    NOT_ON_THE_WIRE = "not_on_the_wire"  # the answer is not a registered message


def _bounded(_: object, a: attrs.Attribute[str], v: str) -> None:
    if len(v) > _MAX_TEXT:
        raise ValueError(f"{a.name} holds at most {_MAX_TEXT} characters")


@attrs.frozen(kw_only=True)
class ReplyFailure:
    """A handler's failure as it travels back to the asker.

    Invariants: ``error_type`` is a class name (no payload value);
    ``text`` quotes no payload value (see :func:`failure_of`) and holds at
    most 512 characters.
    """

    kind: ReplyFailureKind
    error_type: str = attrs.field(validator=_bounded)
    text: str = attrs.field(validator=_bounded)


def _one_outcome(instance: KernelReply, _: object, error: ReplyFailure | None) -> None:
    if error is not None and instance.value is not None:
        raise ValueError("a reply carries a value or an error, not both")


@attrs.frozen(kw_only=True)
class KernelReply(Message):
    """The answer to the request whose envelope id is ``request_id``.

    Invariants: at most one of ``value`` (a registered message; None when
    the handler returned None) and ``error`` is set. Sent to the request's
    ``reply_to`` with the request as its cause.
    """

    request_id: str
    value: Message | None = None
    error: ReplyFailure | None = attrs.field(default=None, validator=_one_outcome)


class RemoteError(KernelError, RuntimeError):
    """A request asked across a transport failed where it was handled.

    Attributes:
        recipient: the address that was asked.
        request_id: the request's message id.
        kind: why (:class:`ReplyFailureKind`).
        error_type: the class name of the exception raised there.
        text: its text, as far as it may travel (see :func:`failure_of`).
    """

    def __init__(self, recipient: str, request_id: str, failure: ReplyFailure) -> None:
        self.recipient = recipient
        self.request_id = request_id
        self.kind = failure.kind
        self.error_type = failure.error_type
        self.text = failure.text
        super().__init__(f"ask {request_id} to {recipient}: {failure.kind.value}: "
                         f"{failure.error_type}: {failure.text}")


def failure_of(error: BaseException) -> ReplyFailure:
    """``error`` as it may travel: its class name, and its text only if it is
    one of ours (whose messages name ids, addresses and states, never payload
    values); any other exception's text may quote a customer's data, so only
    its length goes."""
    if isinstance(error, ActorNotFound):
        kind = ReplyFailureKind.ACTOR_NOT_FOUND
    elif isinstance(error, UnhandledMessage):
        kind = ReplyFailureKind.UNHANDLED
    elif isinstance(error, NotOnTheWire):
        kind = ReplyFailureKind.NOT_ON_THE_WIRE
    else:
        kind = ReplyFailureKind.HANDLER_FAILED
    text = str(error)
    if not isinstance(error, OrderloomError):
        text = f"<redacted: {len(text)} chars>"
    elif len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT - 3] + "..."
    return ReplyFailure(kind=kind, error_type=type(error).__qualname__[:_MAX_TEXT], text=text)


def error_for(recipient: str, request_id: str, failure: ReplyFailure) -> BaseException:
    """The exception the asker raises for ``failure`` (the same class as a
    local ask gives where one exists)."""
    if failure.kind is ReplyFailureKind.ACTOR_NOT_FOUND:
        return ActorNotFound(recipient)
    return RemoteError(recipient, request_id, failure)
