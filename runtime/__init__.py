"""orderloom.runtime: the actor kernel contract, the store seam and the live (anyio) kernel.

The contract (:class:`Actor`, :class:`Context`, :class:`Message`,
:class:`Envelope`, the error tree) is all :mod:`orderloom.actors` may import.
The driver side (:class:`Kernel`) is what runs a world; the store seam
(:class:`Store`, :class:`MemoryStore`, :class:`Turn`, ...) is where persistent
actors keep their journals (``orderloom.runtime.sqlite`` has the SQLite store,
``orderloom.runtime.postgres`` the PostgreSQL one, :func:`open_store` opens
either from a URL; ``orderloom.runtime.live`` is the live kernel). The transport seam
(:class:`Transport`, :class:`Delivery`) connects live kernels;
``orderloom.runtime.mqtt`` has the MQTT transport. The wire format
(:class:`WireCodec`, :class:`IngestError`, the topic functions) turns
envelopes into the JSON that crosses processes (docs/wire.md).
"""

from __future__ import annotations

from ._contract import (
    Actor,
    ActorFactory,
    Address,
    ChildFailed,
    Context,
    DeadLetter,
    Envelope,
    Failure,
    Handler,
    Message,
    RestartPolicy,
    TimerId,
    TraceEvent,
    handler,
)
from ._driver import Kernel
from ._records import EmitSink, KernelRecords
from ._persistent import PersistentActor, ReceiptedSend, TimerDue, TurnSuspended
from ._codec import AttrsCodec, Codec
from ._crash import CRASH_AT_VARIABLE, CRASH_POINTS, CrashPointError, armed_crash_point
from ._memory_store import MemoryStore
from ._journal_export import JOURNAL_LINE_KEYS, export_journal, journal_line
from ._store_url import STORE_URL_FORMS, InvalidStoreUrl, open_store
from ._store import (
    STATS_TABLES,
    CodecError,
    ConcurrencyConflict,
    CorruptRecord,
    DuplicateDelivery,
    DurableTimer,
    InvalidTurn,
    Loaded,
    OutboxEntry,
    Recorded,
    SchemaMismatch,
    Snapshot,
    Store,
    StoreClosed,
    StoreError,
    StoreFailure,
    Turn,
    UnknownTypeName,
    UnregisteredType,
)
from ._supervision import RestartBudget
from ._reply import KernelReply, RemoteError, ReplyFailure, ReplyFailureKind
from ._refused import RefusedPayload, delivery_key
from ._ingest import IngestAccepted, IngestGate
from ._transport import Delivery, Transport, TransportError, ack_after
from ._topics import (
    TOPIC_ROOT,
    InvalidTopic,
    Topic,
    TopicKind,
    dead_topic,
    ingest_topic,
    parse_topic,
    to_topic,
)
from ._wire import (
    ID_PATTERN,
    MAX_ENVELOPE_BYTES,
    FieldRules,
    Upgrader,
    WireCodec,
    WireType,
    parse_json,
)
from ._wire_errors import (
    IngestError,
    IngestReason,
    NotOnTheWire,
    WireError,
    WireRegistrationError,
)
from ._errors import (
    ActorNotFound,
    AskTimeout,
    DomainError,
    DuplicateAddress,
    ForeignAwaitable,
    InfrastructureError,
    InvalidHandler,
    KernelError,
    NotAMessage,
    OrderloomError,
    UnhandledMessage,
)

__all__ = [
    "Actor",
    "ActorFactory",
    "ActorNotFound",
    "Address",
    "AskTimeout",
    "AttrsCodec",
    "CRASH_AT_VARIABLE",
    "CRASH_POINTS",
    "ChildFailed",
    "Codec",
    "CodecError",
    "ConcurrencyConflict",
    "Context",
    "CorruptRecord",
    "CrashPointError",
    "DeadLetter",
    "Delivery",
    "DomainError",
    "DuplicateAddress",
    "DuplicateDelivery",
    "DurableTimer",
    "EmitSink",
    "Envelope",
    "Failure",
    "FieldRules",
    "ForeignAwaitable",
    "Handler",
    "ID_PATTERN",
    "InfrastructureError",
    "IngestAccepted",
    "IngestError",
    "IngestGate",
    "IngestReason",
    "InvalidHandler",
    "InvalidStoreUrl",
    "InvalidTopic",
    "InvalidTurn",
    "JOURNAL_LINE_KEYS",
    "Kernel",
    "KernelError",
    "KernelRecords",
    "KernelReply",
    "Loaded",
    "MAX_ENVELOPE_BYTES",
    "MemoryStore",
    "Message",
    "NotAMessage",
    "NotOnTheWire",
    "OrderloomError",
    "OutboxEntry",
    "PersistentActor",
    "ReceiptedSend",
    "Recorded",
    "RefusedPayload",
    "RemoteError",
    "ReplyFailure",
    "ReplyFailureKind",
    "RestartBudget",
    "RestartPolicy",
    "STATS_TABLES",
    "STORE_URL_FORMS",
    "SchemaMismatch",
    "Snapshot",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreFailure",
    "TOPIC_ROOT",
    "TimerDue",
    "TimerId",
    "Topic",
    "TopicKind",
    "TraceEvent",
    "Transport",
    "TransportError",
    "Turn",
    "TurnSuspended",
    "UnhandledMessage",
    "UnknownTypeName",
    "UnregisteredType",
    "Upgrader",
    "WireCodec",
    "WireError",
    "WireRegistrationError",
    "WireType",
    "ack_after",
    "armed_crash_point",
    "dead_topic",
    "delivery_key",
    "export_journal",
    "handler",
    "ingest_topic",
    "journal_line",
    "open_store",
    "parse_json",
    "parse_topic",
    "to_topic",
]
