"""The wire format's errors: bad input at the edge, and bad registrations.

An :class:`IngestError` says why a payload was refused with a closed
:class:`IngestReason` (the dead-letter topic's last segment) and a message
naming the field path and what was expected. It never quotes the payload's
values: they may be a customer's name, address or email.
"""

from __future__ import annotations

import enum

from ._errors import InfrastructureError

__all__ = ["IngestError", "IngestReason", "NotOnTheWire", "WireError", "WireRegistrationError"]


class IngestReason(enum.StrEnum):
    """Why a payload was refused (closed: the dead-letter topics are these)."""

    TOO_LARGE = "too_large"  # more bytes than the limit (64 KiB)
    BAD_UTF8 = "bad_utf8"  # not UTF-8 text
    NOT_JSON = "not_json"  # not JSON text (truncated, trailing garbage, ...)
    TOO_DEEP = "too_deep"  # objects and arrays nested deeper than the limit
    DUPLICATE_KEY = "duplicate_key"  # an object names a key twice
    NON_FINITE_NUMBER = "non_finite_number"  # NaN, Infinity or a number too large for a float
    NOT_AN_OBJECT = "not_an_object"  # the envelope is not a JSON object
    UNKNOWN_TYPE = "unknown_type"  # no registered message type has this name
    UNKNOWN_VERSION = "unknown_version"  # a known type at a version with no upgrade path
    UNKNOWN_FIELD = "unknown_field"  # a field the envelope or message does not have
    MISSING_FIELD = "missing_field"  # a required field is absent
    BAD_FIELD = "bad_field"  # wrong JSON type, or the message's invariants refuse the value
    BAD_ID = "bad_id"  # an id with characters or a length the format forbids
    BAD_ADDRESS = "bad_address"  # an actor address that is not segments of id characters
    BAD_MONEY = "bad_money"  # money that is not an integer of minor units >= 0
    BAD_SEQUENCE = "bad_sequence"  # a sequence number that is not an integer >= 1
    BAD_TIMESTAMP = "bad_timestamp"  # a time that is negative or too far from now
    BAD_SIGNATURE = "bad_signature"  # a webhook signature missing, malformed or wrong
    UNSUPPORTED_TOPIC = "unsupported_topic"  # a platform topic the adapter does not map
    UNKNOWN_CURRENCY = "unknown_currency"  # a currency not in the minor-units table


class WireError(InfrastructureError):
    """The wire format refused or failed an operation."""


class IngestError(WireError, ValueError):
    """A payload was refused; nothing was decoded and nothing changed.

    Attributes:
        reason: the closed reason code.
        path: where in the payload (``body.lines[0].unit_price``; ``""`` for
            the payload as a whole).
        type_name: the message type's wire name, when it was read.
    """

    def __init__(self, reason: IngestReason, detail: str, *, path: str = "",
                 type_name: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.type_name = type_name
        self.detail = detail
        where = " ".join(p for p in (type_name or "", path) if p)
        super().__init__(f"{reason.value}: {where + ': ' if where else ''}{detail}")

    def at(self, prefix: str) -> IngestError:
        """The same error, its path below ``prefix``."""
        path = prefix + ("." + self.path if self.path and not self.path.startswith("[")
                         else self.path)
        return IngestError(self.reason, self.detail, path=path, type_name=self.type_name)


class WireRegistrationError(WireError, ValueError):
    """A wire registry was given a bad or clashing registration.

    Attributes:
        subject: the wire name or class the registration is about.
    """

    def __init__(self, subject: str, detail: str) -> None:
        self.subject = subject
        super().__init__(f"{subject}: {detail}")


class NotOnTheWire(WireError, TypeError):
    """An envelope cannot be encoded: its message type is not registered, or
    its ids, addresses or body break the format peers would check.

    Attributes:
        message_type: the message's class name.
    """

    def __init__(self, message_type: str, detail: str) -> None:
        self.message_type = message_type
        super().__init__(f"{message_type}: {detail}")
