"""MQTT topics of the wire format: one function per kind, and one parser.

- ``orderloom/v1/to/{address}``: envelopes for the actor at ``address``
  (an address may span levels: ``orderloom/v1/to/order/42``);
- ``orderloom/v1/in/{source}``: payloads from an outside source to ingest;
- ``orderloom/v1/dead/{reason}``: refused payloads, redacted, by reason.

Only addresses, sources and reasons go in topics; every other id travels in
the payload. None may hold the MQTT wildcards ``+`` and ``#``, an empty
level or a control character.
"""

from __future__ import annotations

import enum
import re

import attrs

from ._contract import Address
from ._wire import ID_PATTERN
from ._wire_errors import WireError

__all__ = ["TOPIC_ROOT", "InvalidTopic", "Topic", "TopicKind", "dead_topic", "ingest_topic",
           "parse_topic", "to_topic"]

TOPIC_ROOT = "orderloom/v1"
"""The first two levels of every topic (the format's major version is the second)."""

_SEGMENT = re.compile(ID_PATTERN)
_MAX_ADDRESS_LEVELS = 8


class TopicKind(enum.StrEnum):
    """What a topic carries."""

    TO = "to"  # envelopes for an actor
    IN = "in"  # payloads to ingest from an outside source
    DEAD = "dead"  # refused payloads


class InvalidTopic(WireError, ValueError):
    """A topic, or a part of one, breaks the topic schema.

    Attributes:
        kind: the part that was refused (``address``, ``source``, ``reason``, ``topic``).
    """

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {detail}")


@attrs.frozen(kw_only=True)
class Topic:
    """A parsed topic. Invariant: ``name`` is valid for ``kind`` (an address for ``TO``)."""

    kind: TopicKind
    name: str


def _levels(value: str, kind: str, max_levels: int) -> str:
    if not isinstance(value, str):
        raise InvalidTopic(kind, f"expected a string, got {type(value).__name__}")
    levels = value.split("/")
    if len(levels) > max_levels:
        raise InvalidTopic(kind, f"at most {max_levels} level(s)")
    for level in levels:
        if not _SEGMENT.fullmatch(level):
            # The value is not quoted: a bad one may hold anything.
            raise InvalidTopic(kind, "each level is 1 to 64 of A-Z a-z 0-9 . _ : - "
                               "(no empty level, '+', '#' or control character)")
    return value


def to_topic(address: str) -> str:
    """The topic of envelopes for the actor at ``address`` (``order/42`` spans two levels).

    Raises:
        InvalidTopic: an empty level, a wildcard, or a character ids may not hold.
    """
    return f"{TOPIC_ROOT}/to/{_levels(address, 'address', _MAX_ADDRESS_LEVELS)}"


def ingest_topic(source: str) -> str:
    """The topic an outside ``source`` (one level, e.g. ``shopify``) publishes to.

    Raises:
        InvalidTopic: ``source`` is not a single valid level.
    """
    return f"{TOPIC_ROOT}/in/{_levels(source, 'source', 1)}"


def dead_topic(reason: str) -> str:
    """The topic of payloads refused for ``reason`` (an ``IngestReason`` or a kernel
    dead-letter reason).

    Raises:
        InvalidTopic: ``reason`` is not a single valid level.
    """
    return f"{TOPIC_ROOT}/dead/{_levels(str(reason), 'reason', 1)}"


def parse_topic(topic: str) -> Topic:
    """The kind and the address, source or reason of ``topic``.

    Raises:
        InvalidTopic: not under :data:`TOPIC_ROOT`, an unknown kind, or a bad name.
    """
    prefix = TOPIC_ROOT + "/"
    if not isinstance(topic, str) or not topic.startswith(prefix):
        raise InvalidTopic("topic", f"expected a topic under {TOPIC_ROOT}/")
    kind_text, _, rest = topic[len(prefix):].partition("/")
    try:
        kind = TopicKind(kind_text)
    except ValueError:
        raise InvalidTopic("topic", "expected to/, in/ or dead/ after "
                           f"{TOPIC_ROOT}/") from None
    if kind is TopicKind.TO:
        return Topic(kind=kind, name=Address(_levels(rest, "address", _MAX_ADDRESS_LEVELS)))
    return Topic(kind=kind, name=_levels(rest, "source" if kind is TopicKind.IN else "reason", 1))
