"""Log output: plain text, or one JSON object per line (`HUB_LOG_FORMAT=json`).

A JSON line has `time` (UTC, ISO 8601), `level`, `logger`, `message`, and the
ids of the message being handled when there is one: `message_id`,
`correlation_id`, `trace_id`, `span_id`, `destination` (or `message_ids` for a
batch), from the record's `extra=` or from the context `bind` sets for a
delivery attempt. An exception adds `exception` (the traceback as text).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import orjson

FIELDS = ("message_id", "message_ids", "correlation_id", "trace_id", "span_id", "destination")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "hub_log_context", default=MappingProxyType({})
)


def bind(**fields: Any) -> None:
    """Add ids to every line logged from here on in the current task (and tasks it starts).

    For work done in a task of its own, such as a delivery attempt: the ids end
    with the task.
    """
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def clear() -> None:
    """Drop the ids bound in the current task (it works for several messages)."""
    _context.set(MappingProxyType({}))


def context() -> Mapping[str, Any]:
    return _context.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the ids of the message being handled."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get()
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = bound.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode("utf-8")


def configure(level: str, format: Literal["text", "json"] = "text") -> None:
    """Send the process's logs to stderr at `level`, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
