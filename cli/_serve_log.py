"""Structured logs of ``orderloom serve``: one JSON object per line on stderr.

Each line has ``ts`` (epoch seconds), ``level``, ``logger`` and ``event`` (a
dotted name such as ``order.stage``), plus the event's fields. No customer
data is ever logged: order telemetry carries ids, stages, reasons and teams,
never names, addresses or emails; a field holding money is in minor units.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from orderloom.actors import CaseOpened, OrderFinished, OrderStageEntered, WrongAction

__all__ = ["JsonFormatter", "configure_logging", "log_event", "telemetry_log_sink"]

LOGGER = "orderloom.serve"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line (fields from ``extra={"fields": {...}}``)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"ts": round(record.created, 3),
                                "level": record.levelname.lower(),
                                "logger": record.name, "event": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type and message only: a traceback's locals could quote a payload.
            line["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record (ours, uvicorn's) to ``stream`` (stderr) as JSON lines.

    Returns the handler installed on the root logger (remove it to undo).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old.formatter, JsonFormatter):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log ``event`` with ``fields`` (ids, counts, names of things; no customer data)."""
    logging.getLogger(LOGGER).log(level, event, extra={"fields": fields})


def telemetry_log_sink(time: float, address: str, event: object) -> None:
    """A kernel sink logging the order telemetry worth a line: stage changes,
    finishes, cases opened and (as errors) wrong actions."""
    if isinstance(event, OrderStageEntered):
        log_event("order.stage", order_id=event.order_id, stage=event.stage,
                  previous=event.previous)
    elif isinstance(event, OrderFinished):
        log_event("order.finished", order_id=event.order_id, final_state=event.final_state)
    elif isinstance(event, CaseOpened):
        log_event("case.opened", order_id=event.order_id, case_id=event.case_id,
                  reason=event.reason, team=event.team)
    elif isinstance(event, WrongAction):
        # The invariant's name, not its detail text (which may quote values).
        log_event("order.wrong_action", logging.ERROR, order_id=event.order_id,
                  invariant=event.invariant)
