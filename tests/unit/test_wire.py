"""The wire format: registrations, round trips, strict decoding, upgraders, topics, schema."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orderloom.actors
import orderloom.simulation
from orderloom.actors import (
    WIRE_RULES,
    LineItemSpec,
    OrderPlaced,
    PlaceOrder,
    wire_codec,
)
from orderloom.runtime import (
    MAX_ENVELOPE_BYTES,
    Address,
    Envelope,
    FieldRules,
    IngestError,
    IngestReason,
    InvalidTopic,
    Message,
    NotOnTheWire,
    TopicKind,
    Upgrader,
    WireCodec,
    WireRegistrationError,
    WireType,
    dead_topic,
    ingest_topic,
    parse_topic,
    to_topic,
)
from orderloom.runtime._wire import field_types

from ..strategies import wire_messages

ROOT = Path(__file__).resolve().parents[2]
CODEC = wire_codec()
EMAIL = "alice.smith@example.com"
NAME = "Alice Smith"

# Message classes that never cross a process and are never persisted, by
# module and name. Every other Message subclass must be registered.
NOT_ON_THE_WIRE = {
    # abstract bases: only their subclasses are ever sent
    "orderloom.actors.order._messages.Command",
    "orderloom.actors.order._messages.IrreversibleCommand",
    "orderloom.actors.order._messages.Event",
    "orderloom.actors.coordinator._protocol.GatewayRequest",
    # the kernel tells a parent actor in the same process that its child stopped
    "orderloom.runtime._contract.ChildFailed",
    # a persistent actor's idle check: a kernel timer to itself, never stored
    "orderloom.runtime._persistent._IdleCheck",
    # order actor -> automation, same process; carries the folded OrderState
    "orderloom.actors.coordinator._protocol.OrderUpdated",
    # the review desk's HTTP side -> its desk actor, same process (answered in memory)
    "orderloom.actors.coordinator._desk.ActOnCase",
    # self-messages of simulated world actors (SimPy or emulator-internal, never stored)
    "orderloom.actors.world._gateway._Complete",
    "orderloom.actors.world._gateway._Replay",
    "orderloom.actors.world._gateway._Expire",
    "orderloom.actors.world._warehouse._Step",
    "orderloom.actors.world._warehouse._Replenish",
    "orderloom.actors.world._team._ReviewDone",
    "orderloom.actors.world._team._WakeUp",
    "orderloom.actors.world._team._StaffTick",
    # the simulation's workload generator and its demo world (simulation only)
    "orderloom.simulation._workload._Arrive",
    "orderloom.simulation._workload._Later",
    "orderloom.simulation._replay._Next",  # the replay storefront's own clock
    "orderloom.simulation._demo.PlaceOrder",
    "orderloom.simulation._demo.Authorize",
    "orderloom.simulation._demo.OrderConfirmed",
    "orderloom.simulation._demo.OrderDeclined",
    "orderloom.simulation._demo._Arrive",
}


def _all_message_classes() -> set[type]:
    for package in (orderloom.actors, orderloom.simulation):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)
    found: set[type] = set()
    todo = [Message]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in found and sub.__module__.startswith("orderloom."):
                found.add(sub)
                todo.append(sub)
    return found


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _envelope(body: Message, **fields: Any) -> Envelope:
    base: dict[str, Any] = dict(message_id="m-1", causation_id=None, correlation_id="O1",
                                sender=Address("intake"), recipient=Address("order/O1"),
                                sent_at=1000.0, body=body)
    return Envelope(**{**base, **fields})


PLACED = OrderPlaced(order_id="O1", event_id="e1", source="intake", source_seq=1,
                     occurred_at=1000.0, customer_id="C1", currency="EUR",
                     lines=(LineItemSpec(line_id="L1", sku="SKU-1", quantity=2, unit_price=450),))


def _payload(body: Message = PLACED) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CODEC.encode_envelope(_envelope(body)))
    return data


def _refusal(raw: bytes, **kwargs: Any) -> IngestError:
    with pytest.raises(IngestError) as info:
        CODEC.decode_envelope(raw, **kwargs)
    text = str(info.value)
    assert EMAIL not in text and NAME not in text and "alice" not in text.lower()
    return info.value


# -- registrations ------------------------------------------------------------------


def test_every_message_that_leaves_a_process_is_registered() -> None:
    """Every Message subclass is registered with the wire codec or listed as process-internal."""
    registered = {_name(wt.cls) for wt in CODEC.types}
    everything = {_name(c) for c in _all_message_classes()}
    assert sorted(everything - registered - NOT_ON_THE_WIRE) == []
    assert sorted(NOT_ON_THE_WIRE - everything) == [], "stale exclusions"
    assert sorted(NOT_ON_THE_WIRE & registered) == []


def test_wire_names_are_not_class_names() -> None:
    """Each wire name is dotted lower-case words, unique, and not its class's name."""
    names = [wt.name for wt in CODEC.types]
    assert len(names) == len(set(names))
    assert all(wt.name.split(".")[-1] != wt.cls.__name__ for wt in CODEC.types)


def test_field_rules_match_the_declared_types() -> None:
    """Every registered field named as money or a sequence is an int; as an order id, a str."""
    wrong = []
    for wt in CODEC.types:
        for a, tp in field_types(wt.cls):
            if a.name in WIRE_RULES.money | WIRE_RULES.sequences and tp is not int:
                wrong.append(f"{wt.name}.{a.name}: {tp!r}")
            if a.name in WIRE_RULES.order_ids and tp not in (str, str | None):
                wrong.append(f"{wt.name}.{a.name}: {tp!r}")
    assert wrong == []


@attrs.frozen(kw_only=True)
class Ping(Message):
    """A test message. Invariant: none."""

    order_id: str
    count: int = 0


@attrs.frozen(kw_only=True)
class PingV2(Message):
    """Version 2 of Ping: ``count`` renamed ``hits``."""

    order_id: str
    hits: int = 0


@attrs.frozen(kw_only=True)
class NotAMessage:
    """Not a Message subclass: refused."""


@attrs.frozen(kw_only=True)
class Untyped(Message):
    """A field the wire cannot carry."""

    data: dict[str, int]


RULES = FieldRules(order_ids=frozenset({"order_id"}))


@pytest.mark.parametrize(("types", "upgraders"), [
    ([WireType(name="test.ping", version=1, cls=Ping),
      WireType(name="test.ping", version=1, cls=PingV2)], []),
    ([WireType(name="test.ping", version=1, cls=Ping),
      WireType(name="test.pong", version=1, cls=Ping)], []),
    ([WireType(name="Ping", version=1, cls=Ping)], []),
    ([WireType(name="test.ping", version=0, cls=Ping)], []),
    ([WireType(name="test.plain", version=1, cls=NotAMessage)], []),  # type: ignore[arg-type]
    ([WireType(name="test.untyped", version=1, cls=Untyped)], []),
    ([WireType(name="test.ping", version=2, cls=Ping)],
     [Upgrader(name="test.pong", from_version=1, upgrade=dict)]),
    ([WireType(name="test.ping", version=2, cls=Ping)],
     [Upgrader(name="test.ping", from_version=2, upgrade=dict)]),
    ([WireType(name="test.ping", version=2, cls=Ping)],
     [Upgrader(name="test.ping", from_version=1, upgrade=dict),
      Upgrader(name="test.ping", from_version=1, upgrade=dict)]),
], ids=["duplicate-name", "duplicate-class", "class-name", "version-0", "not-a-message",
        "unsupported-field", "upgrader-unknown-type", "upgrader-not-older", "upgrader-twice"])
def test_bad_registrations_are_refused(types: list[WireType], upgraders: list[Upgrader]) -> None:
    """Duplicate names, classes or upgraders, bad names or versions, mutable or uncarriable
    classes are refused when the codec is built."""
    with pytest.raises(WireRegistrationError):
        WireCodec(types, rules=RULES, upgraders=upgraders)


# -- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("wt", CODEC.types, ids=lambda wt: wt.name)
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_every_registered_type_round_trips(wt: WireType, data: st.DataObject) -> None:
    """Encoding then decoding an envelope of any registered type gives an equal envelope."""
    message = data.draw(wire_messages(CODEC, wt.cls))
    envelope = _envelope(message, causation_id=data.draw(st.none() | st.just("c:1")))
    raw = CODEC.encode_envelope(envelope)
    assert json.loads(raw)["type"] == wt.name
    assert CODEC.decode_envelope(raw) == envelope


def test_encoding_is_deterministic_for_sets() -> None:
    """A frozenset field encodes sorted, so equal messages give equal bytes."""
    from orderloom.actors import SyncDue

    a = CODEC.encode_envelope(_envelope(SyncDue(systems=frozenset({"finance", "crm", "support"}))))
    assert json.loads(a)["body"] == {"systems": ["crm", "finance", "support"]}


def test_encoding_refuses_what_a_peer_would_refuse() -> None:
    """An unregistered message or an id a peer would refuse is not encoded."""
    with pytest.raises(NotOnTheWire):
        CODEC.encode_envelope(_envelope(Ping(order_id="O1")))
    with pytest.raises(NotOnTheWire):
        CODEC.encode_envelope(_envelope(PLACED, message_id="a/b"))
    with pytest.raises(NotOnTheWire):
        CODEC.encode_envelope(_envelope(attrs.evolve(PLACED, order_id="O 1")))


# -- bad input ------------------------------------------------------------------------


def _mutated(change: Any) -> bytes:
    data = _payload()
    change(data)
    return json.dumps(data).encode()


def _set(path: str, value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for step in parents:
            target = target[int(step)] if step.isdigit() else target[step]
        target[int(last) if last.isdigit() else last] = value
    return change


def _drop(path: str) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for step in parents:
            target = target[int(step)] if step.isdigit() else target[step]
        del target[last]
    return change


GOOD = json.dumps(_payload()).encode()

BAD_INPUTS: list[tuple[str, bytes, IngestReason]] = [
    ("non-json", b"hello " + EMAIL.encode(), IngestReason.NOT_JSON),
    ("truncated", GOOD[: len(GOOD) // 2], IngestReason.NOT_JSON),
    ("trailing-garbage", GOOD + b"x", IngestReason.NOT_JSON),
    ("too-large", b'{"pad":"' + b"x" * MAX_ENVELOPE_BYTES + b'"}', IngestReason.TOO_LARGE),
    ("bad-utf8", GOOD.replace(b'"C1"', b'"\xff\xfe"'), IngestReason.BAD_UTF8),
    ("too-deep", b"[" * 5000 + b"]" * 5000, IngestReason.TOO_DEEP),
    ("nan", GOOD.replace(b'"sent_at": 1000.0', b'"sent_at": NaN'), IngestReason.NON_FINITE_NUMBER),
    ("infinity", GOOD.replace(b'"sent_at": 1000.0', b'"sent_at": -Infinity'),
     IngestReason.NON_FINITE_NUMBER),
    ("huge-float", GOOD.replace(b'"sent_at": 1000.0', b'"sent_at": 1e999'),
     IngestReason.NON_FINITE_NUMBER),
    ("duplicate-key", GOOD.replace(b'"id": "m-1"', f'"id": "m-1", "id": "{EMAIL}"'.encode()),
     IngestReason.DUPLICATE_KEY),
    ("not-an-object", json.dumps([EMAIL]).encode(), IngestReason.NOT_AN_OBJECT),
    ("unknown-type", _mutated(_set("type", EMAIL)), IngestReason.UNKNOWN_TYPE),
    ("unknown-type-wellformed", _mutated(_set("type", "alice.smith")), IngestReason.UNKNOWN_TYPE),
    ("unknown-version", _mutated(_set("v", 2)), IngestReason.UNKNOWN_VERSION),
    ("version-as-text", _mutated(_set("v", "1")), IngestReason.BAD_FIELD),
    ("unknown-envelope-field", _mutated(lambda d: d.__setitem__(EMAIL, NAME)), IngestReason.UNKNOWN_FIELD),
    ("unknown-body-field", _mutated(_set("body.shipping_name", NAME)),
     IngestReason.UNKNOWN_FIELD),
    ("missing-id", _mutated(_drop("id")), IngestReason.MISSING_FIELD),
    ("missing-order-id", _mutated(_drop("body.order_id")), IngestReason.MISSING_FIELD),
    ("missing-line-field", _mutated(_drop("body.lines.0.sku")), IngestReason.MISSING_FIELD),
    ("wrong-type-text-for-int", _mutated(_set("body.lines.0.quantity", "2")),
     IngestReason.BAD_FIELD),
    ("wrong-type-float-for-int", _mutated(_set("body.lines.0.quantity", 2.0)),
     IngestReason.BAD_FIELD),
    ("wrong-type-number-for-text", _mutated(_set("body.customer_id", 7)), IngestReason.BAD_ID),
    ("wrong-type-text-for-list", _mutated(_set("body.lines", EMAIL)), IngestReason.BAD_FIELD),
    ("wrong-type-bool-for-text", _mutated(_set("body.currency", True)), IngestReason.BAD_FIELD),
    ("invariant", _mutated(_set("body.currency", EMAIL)), IngestReason.BAD_FIELD),
    ("unsafe-int", _mutated(_set("body.lines.0.quantity", 2**60)), IngestReason.BAD_FIELD),
    ("float-money", _mutated(_set("body.lines.0.unit_price", 4.5)), IngestReason.BAD_MONEY),
    ("negative-money", _mutated(_set("body.lines.0.unit_price", -1)), IngestReason.BAD_MONEY),
    ("bool-money", _mutated(_set("body.lines.0.unit_price", True)), IngestReason.BAD_MONEY),
    ("text-money", _mutated(_set("body.lines.0.unit_price", "4.50")), IngestReason.BAD_MONEY),
    ("sequence-zero", _mutated(_set("body.source_seq", 0)), IngestReason.BAD_SEQUENCE),
    ("sequence-negative", _mutated(_set("body.source_seq", -3)), IngestReason.BAD_SEQUENCE),
    ("negative-time", _mutated(_set("body.occurred_at", -5.0)), IngestReason.BAD_TIMESTAMP),
    ("order-id-slash", _mutated(_set("body.order_id", "O1/x")), IngestReason.BAD_ID),
    ("order-id-plus", _mutated(_set("body.order_id", "O+1")), IngestReason.BAD_ID),
    ("order-id-hash", _mutated(_set("body.order_id", "O#1")), IngestReason.BAD_ID),
    ("order-id-newline", _mutated(_set("body.order_id", "O1\n")), IngestReason.BAD_ID),
    ("order-id-email", _mutated(_set("body.order_id", EMAIL)), IngestReason.BAD_ID),
    ("order-id-too-long", _mutated(_set("body.order_id", "O" * 65)), IngestReason.BAD_ID),
    ("message-id-slash", _mutated(_set("id", "m/1")), IngestReason.BAD_ID),
    ("correlation-id-hash", _mutated(_set("correlation_id", "#")), IngestReason.BAD_ID),
    ("event-id-newline", _mutated(_set("body.event_id", "e\n1")), IngestReason.BAD_ID),
    ("event-id-wildcard", _mutated(_set("body.event_id", "e+1")), IngestReason.BAD_ID),
    ("recipient-empty-level", _mutated(_set("recipient", "order//O1")), IngestReason.BAD_ADDRESS),
    ("recipient-wildcard", _mutated(_set("recipient", "order/+")), IngestReason.BAD_ADDRESS),
    ("sender-newline", _mutated(_set("sender", "intake\n")), IngestReason.BAD_ADDRESS),
]


@pytest.mark.parametrize(("raw", "reason"), [(raw, reason) for _, raw, reason in BAD_INPUTS],
                         ids=[name for name, _, _ in BAD_INPUTS])
def test_bad_input_is_refused_with_its_reason(raw: bytes, reason: IngestReason) -> None:
    """Each kind of bad input is an IngestError with its reason, quoting nothing personal."""
    assert _refusal(raw).reason is reason


def test_errors_name_the_field_path() -> None:
    """A refusal names the type, the path to the bad field and what was expected."""
    error = _refusal(_mutated(_set("body.lines.0.unit_price", 4.5)))
    assert error.path == "body.lines[0].unit_price"
    assert error.type_name == "order.placed v1"
    assert "minor units" in str(error)


def test_far_off_timestamps_are_refused_against_now() -> None:
    """With the receiver's clock, a sent_at or occurred_at too far from it is refused."""
    assert CODEC.decode_envelope(GOOD, now=1000.0).sent_at == 1000.0
    future = _mutated(_set("sent_at", 1000.0 + 3600))
    assert _refusal(future, now=1000.0).reason is IngestReason.BAD_TIMESTAMP
    old = _mutated(_set("body.occurred_at", 1.0))
    assert _refusal(old, now=1000.0 + 30 * 86400).reason is IngestReason.BAD_TIMESTAMP
    assert CODEC.decode_envelope(old).body.occurred_at == 1.0  # stored: no window


def test_nested_typed_values_are_checked() -> None:
    """A journaled event inside a note is decoded strictly too, with its path."""
    from orderloom.actors import EventHeld

    data = _payload(EventHeld(event=PLACED))
    data["body"]["event"]["type"] = "order.place"
    error = _refusal(json.dumps(data).encode())
    assert (error.reason, error.path) == (IngestReason.BAD_FIELD, "body.event.type")
    data["body"]["event"]["type"] = "order.placed"
    data["body"]["event"]["body"]["lines"][0]["unit_price"] = -4
    error = _refusal(json.dumps(data).encode())
    assert (error.reason, error.path) == (IngestReason.BAD_MONEY,
                                          "body.event.body.lines[0].unit_price")


def test_redacted_keeps_ids_and_drops_personal_text() -> None:
    """redacted() keeps structure, numbers, the type, ids and addresses, and hides other text."""
    data = _payload()
    data["body"]["note"] = f"{NAME} <{EMAIL}>"
    data[EMAIL] = 1
    out = CODEC.redacted(json.dumps(data).encode())
    text = json.dumps(out)
    assert EMAIL not in text and NAME not in text
    assert isinstance(out, dict)
    assert (out["type"], out["id"], out["recipient"]) == ("order.placed", "m-1", "order/O1")
    assert out["body"]["order_id"] == "O1" and out["body"]["lines"][0]["unit_price"] == 450
    assert out["body"]["currency"] == "<redacted: 3 chars>"
    assert CODEC.redacted(b"\xff" + EMAIL.encode()) == {"unparsed_bytes": len(EMAIL) + 1}


# -- versions -------------------------------------------------------------------------


def _ping_payload(version: int, body: dict[str, Any]) -> bytes:
    return json.dumps({"type": "test.ping", "v": version, "id": "m1", "recipient": "ping",
                       "sent_at": 0, "body": body}).encode()


def test_a_version_bump_refuses_the_old_version_without_an_upgrader() -> None:
    """After test.ping moves to v2, a v1 payload is unknown_version."""
    codec = WireCodec([WireType(name="test.ping", version=2, cls=PingV2)], rules=RULES)
    with pytest.raises(IngestError) as info:
        codec.decode_envelope(_ping_payload(1, {"order_id": "O1", "count": 3}))
    assert info.value.reason is IngestReason.UNKNOWN_VERSION
    assert codec.decode_envelope(_ping_payload(2, {"order_id": "O1", "hits": 3})).body == \
        PingV2(order_id="O1", hits=3)


def test_an_upgrader_lifts_the_old_version() -> None:
    """With an upgrader from v1, a v1 payload decodes as the current version's message."""
    def rename(body: dict[str, Any]) -> dict[str, Any]:
        out = dict(body)
        out["hits"] = out.pop("count")
        return out

    codec = WireCodec([WireType(name="test.ping", version=2, cls=PingV2)], rules=RULES,
                      upgraders=[Upgrader(name="test.ping", from_version=1, upgrade=rename)])
    envelope = codec.decode_envelope(_ping_payload(1, {"order_id": "O1", "count": 3}))
    assert envelope.body == PingV2(order_id="O1", hits=3)
    assert json.loads(codec.encode_envelope(envelope))["v"] == 2
    with pytest.raises(IngestError) as info:  # the upgrader fails: refused, no echo
        codec.decode_envelope(_ping_payload(1, {"order_id": "O1", "hits": EMAIL}))
    assert info.value.reason is IngestReason.BAD_FIELD and EMAIL not in str(info.value)
    with pytest.raises(IngestError) as info:  # upgraded, then checked like any v2 body
        codec.decode_envelope(_ping_payload(1, {"order_id": "O/1", "count": 3}))
    assert info.value.reason is IngestReason.BAD_ID


# -- topics ---------------------------------------------------------------------------


def test_topics_are_built_and_parsed() -> None:
    """Each topic kind round-trips through parse_topic; an address may span levels."""
    assert to_topic("order/O-1") == "orderloom/v1/to/order/O-1"
    assert parse_topic("orderloom/v1/to/order/O-1").name == "order/O-1"
    assert ingest_topic("shopify") == "orderloom/v1/in/shopify"
    assert parse_topic("orderloom/v1/in/shopify").kind is TopicKind.IN
    assert dead_topic(IngestReason.BAD_MONEY) == "orderloom/v1/dead/bad_money"
    assert parse_topic("orderloom/v1/dead/bad_money").name == "bad_money"


@pytest.mark.parametrize("bad", ["", "order//O1", "/order", "order/", "order/+", "#", "order/#",
                                 "order/O 1", "order/O1\n", "a/b/c/d/e/f/g/h/i"])
def test_topics_refuse_wildcards_and_empty_levels(bad: str) -> None:
    """An address with an empty level, a wildcard, a space or a newline makes no topic."""
    with pytest.raises(InvalidTopic):
        to_topic(bad)
    with pytest.raises(InvalidTopic):
        parse_topic(f"orderloom/v1/to/{bad}")


@pytest.mark.parametrize("bad", ["warehouse/W1", "", "+", "shop#1"])
def test_sources_and_reasons_are_one_level(bad: str) -> None:
    """An ingest source or a dead-letter reason is a single valid topic level."""
    with pytest.raises(InvalidTopic):
        ingest_topic(bad)
    with pytest.raises(InvalidTopic):
        dead_topic(bad)


def test_parse_topic_refuses_foreign_topics() -> None:
    """Topics outside orderloom/v1/, or of an unknown kind, are refused."""
    for topic in ("orderloom/v2/to/x", "other/v1/to/x", "orderloom/v1/out/x"):
        with pytest.raises(InvalidTopic):
            parse_topic(topic)


# -- the JSON Schema ------------------------------------------------------------------

SCHEMA_FILE = ROOT / "docs" / "wire-schema.json"


def test_checked_in_schema_is_the_registrys() -> None:
    """docs/wire-schema.json is what the registry generates (regenerate: orderloom wire-schema)."""
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == CODEC.json_schema()


VALIDATOR = jsonschema.Draft202012Validator(CODEC.json_schema())


@pytest.mark.parametrize("wt", CODEC.types, ids=lambda wt: wt.name)
@settings(max_examples=1, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_encoded_envelopes_match_the_schema(wt: WireType, data: st.DataObject) -> None:
    """Every registered type's encoded envelope is valid under the published schema."""
    message = data.draw(wire_messages(CODEC, wt.cls))
    VALIDATOR.validate(json.loads(CODEC.encode_envelope(_envelope(message))))


@pytest.mark.parametrize(("name", "raw"), [(n, r) for n, r, reason in BAD_INPUTS
                                           if reason in {IngestReason.UNKNOWN_TYPE,
                                                         IngestReason.UNKNOWN_FIELD,
                                                         IngestReason.MISSING_FIELD,
                                                         IngestReason.BAD_MONEY,
                                                         IngestReason.BAD_ID}])
def test_the_schema_refuses_what_the_decoder_refuses(name: str, raw: bytes) -> None:
    """Payloads refused for type, field, money or id reasons are invalid under the schema too."""
    assert not VALIDATOR.is_valid(json.loads(raw))


def test_a_command_schema_branch_names_its_fields() -> None:
    """The order.place branch requires the command's fields and allows no others."""
    body = CODEC.json_schema()["$defs"]["order.place@1"]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {a.name for a in attrs.fields(PlaceOrder)}


# -- docs/wire.md ---------------------------------------------------------------------

def _doc_rows(first: str) -> dict[str, list[str]]:
    text = (ROOT / "docs" / "wire.md").read_text(encoding="utf-8")
    rows: dict[str, list[str]] = {}
    in_table = False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            in_table = True
        elif in_table and line.startswith("|") and not cells[0].startswith("---"):
            rows[cells[0].strip("`")] = cells[1:]
        elif not line.startswith("|"):
            in_table = False
    return rows


def test_wire_doc_lists_every_type_with_its_version_and_fields() -> None:
    """docs/wire.md's type table is the registry: name, version, class and fields."""
    rows = _doc_rows("type")
    expected = {wt.name: [str(wt.version), f"`{wt.cls.__qualname__}`",
                          ", ".join(f"`{a.name}{'' if a.default is attrs.NOTHING else '?'}`"
                                    for a, _ in field_types(wt.cls)) or "—"]
                for wt in CODEC.types}
    assert rows == expected


def test_wire_doc_lists_every_refusal_reason() -> None:
    """docs/wire.md explains exactly the IngestReason codes."""
    assert set(_doc_rows("reason")) == {r.value for r in IngestReason}
