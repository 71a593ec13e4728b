"""The trace file of a ``simulate --trace`` run: written compact, read back.

One JSON object per line, gzip-compressed (``trace.jsonl.gz``). The first
line is a header (``{"orderloom_trace": 2}``); each record after it has a
time ``t`` (kernel seconds, to the millisecond) and a kind ``k``:

- ``msg``: a message delivered (``id``, type ``ty``, sender ``fr`` (absent:
  from outside), recipient ``to``, causation id ``c``; ``q`` when it waited
  in a mailbox, ``tm`` when it is a timer's). One record per delivery: the
  kernel's "timer fired" record is folded into it.
- a telemetry class name (``ActionTaken``, ``WrongAction``, ...): its
  fields, with ``o`` the order id, ``a`` the emitting actor (absent when it
  is the order's own actor ``order/<o>``) and ``in`` the message whose turn
  emitted it. The kernel's ``emit`` record of the same event is folded in.
- any other kernel record (``spawn``, ``stop``, ``dead_letter``, ``timer``,
  ``failure``, ...): ``a`` actor, and ``ty``, ``id``, ``fr``, ``c``, ``d``
  (detail) when it has them.

Empty fields (``""``, None, False) are left out. A version-1 file (the
uncompressed ``trace.jsonl`` of earlier releases) is still read.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs

from orderloom.actors import Telemetry
from orderloom.runtime import TraceEvent

__all__ = [
    "TRACE_FILE", "TraceError", "find_trace", "read_trace", "stale_trace_files", "write_trace",
]

TRACE_FILE = "trace.jsonl.gz"
_OLD_TRACE_FILE = "trace.jsonl"
_VERSION = 2

Record = dict[str, Any]


class TraceError(ValueError):
    """A trace file cannot be read: missing, not a trace, or from a newer release.

    Attributes:
        path: the file (or run folder) concerned.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


def find_trace(run_dir: Path) -> Path:
    """The trace file in a run folder (``trace.jsonl.gz``, or an older ``trace.jsonl``).

    Raises:
        TraceError: the folder has neither.
    """
    for name in (TRACE_FILE, _OLD_TRACE_FILE):
        if (run_dir / name).is_file():
            return run_dir / name
    raise TraceError(run_dir, f"no {TRACE_FILE} here: run 'orderloom simulate ... --trace "
                              f"--out {run_dir}' first")


def stale_trace_files(run_dir: Path) -> tuple[Path, ...]:
    """Every trace file name a run folder may hold (a rerun removes them)."""
    return (run_dir / TRACE_FILE, run_dir / _OLD_TRACE_FILE)


def write_trace(path: Path, kernel_trace: Iterable[TraceEvent],
                telemetry: Iterable[tuple[float, str, object]]) -> None:
    """Write a kernel trace and the telemetry emitted meanwhile to ``path``.

    ``telemetry`` is every ``(time, actor, event)`` a sink received, in
    order: the kernel traced each as an ``emit`` record at the same point,
    so the i-th ``emit`` is the i-th event and takes its place in the file.
    A path ending in ``.gz`` is gzip-compressed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"orderloom_trace": _VERSION}) + "\n")
        for record in _compact(kernel_trace, iter(telemetry)):
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


def _compact(kernel_trace: Iterable[TraceEvent],
             telemetry: Iterator[tuple[float, str, object]]) -> Iterator[Record]:
    fired: set[str] = set()
    for ev in kernel_trace:
        if ev.kind == "emit":
            emitted = next(telemetry, None)
            if emitted is not None:
                yield _telemetry_record(*emitted, turn=ev.message_id)
        elif ev.kind == "timer" and ev.detail == "fired":
            fired.add(ev.message_id)
        elif ev.kind == "deliver":
            record: Record = {"t": _ms(ev.time), "k": "msg", "id": ev.message_id,
                              "ty": ev.message_type, "fr": ev.sender, "to": ev.actor,
                              "c": ev.causation_id, "q": ev.detail == "queued",
                              "tm": ev.message_id in fired}
            fired.discard(ev.message_id)
            yield _lean(record)
        else:
            yield _lean({"t": _ms(ev.time), "k": ev.kind, "a": ev.actor, "ty": ev.message_type,
                         "id": ev.message_id, "fr": ev.sender, "c": ev.causation_id,
                         "d": ev.detail})
    for emitted in telemetry:  # none unless a sink saw events the trace did not
        yield _telemetry_record(*emitted, turn="")


def _telemetry_record(t: float, actor: str, event: object, *, turn: str) -> Record:
    if isinstance(event, Telemetry):
        body = attrs.asdict(event)
    else:
        body = {"order_id": "", "repr": repr(event)}
    order = body.pop("order_id", "")
    record: Record = {"t": _ms(t), "k": type(event).__name__, "o": order,
                      "a": "" if actor == f"order/{order}" else actor, "in": turn}
    for key, value in body.items():
        record[key] = _plain(value)
    return _lean(record)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float):
        return _ms(value) if math.isfinite(value) else None
    return value


def _ms(t: float) -> float:
    return round(t, 3)


def _lean(record: Record) -> Record:
    # By identity for False: a 0 or 0.0 (a time, a count) is kept.
    return {k: v for k, v in record.items() if not (v is None or v is False or v == "")}


def read_trace(path: Path) -> list[Record]:
    """The records of a trace file, in the form :func:`write_trace` describes.

    Raises:
        TraceError: not a trace file, or one from a newer release.
    """
    try:
        with _open(path) as lines:
            first = lines.readline()
            if not first:
                return []
            head = json.loads(first)
            if "orderloom_trace" not in head:
                old = (_from_v1(r) for r in (head, *(json.loads(line) for line in lines)))
                return [r for r in old if r is not None]
            if head["orderloom_trace"] != _VERSION:
                raise TraceError(path, f"trace format {head['orderloom_trace']} is not "
                                       f"{_VERSION}: read it with the release that wrote it")
            return [json.loads(line) for line in lines]
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError,
            TypeError, AttributeError) as exc:
        raise TraceError(path, f"not a trace file ({exc})") from exc


def _open(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _from_v1(old: Record) -> Record | None:
    """A record of the first, uncompressed format, in today's form (None for
    its ``emit`` records, which repeat the telemetry records)."""
    kind = old.pop("type")
    t = old.pop("t")
    if kind == "kernel":
        if old["kind"] == "emit":
            return None
        if old["kind"] == "deliver":
            return _lean({"t": t, "k": "msg", "id": old["message_id"], "ty": old["message"],
                          "to": old["actor"], "q": old["detail"] == "queued"})
        return _lean({"t": t, "k": old["kind"], "a": old["actor"], "ty": old["message"],
                      "id": old["message_id"], "d": old["detail"]})
    order = old.pop("order_id", "")
    actor = old.pop("actor", "")
    return _lean({"t": t, "k": kind, "o": order,
                  "a": "" if actor == f"order/{order}" else actor, **old})
