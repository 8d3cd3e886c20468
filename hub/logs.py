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
from urllib.parse import parse_qsl, urlsplit, urlunsplit

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
        if record.exc_text:  # set (and scrubbed) by SecretFilter
            line["exception"] = record.exc_text
        elif record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode("utf-8")


def configure(level: str, format: Literal["text", "json"] = "text") -> None:
    """Send the process's logs to stderr at `level`, as text or JSON lines, with every
    known secret (`keep_secret`) replaced by `***`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler])


# Secrets ----------------------------------------------------------------------------------

_secrets: set[str] = set()
MIN_SECRET = 6  # shorter values would blank out ordinary words


def keep_secret(*values: str | None) -> None:
    """Register values that must never be written out (keys, passwords in URLs)."""
    _secrets.update(v for v in values if v and len(v) >= MIN_SECRET)


def scrub(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class SecretFilter(logging.Filter):
    """Scrubs a record's message (arguments merged) and its exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            clean = scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = scrub(record.exc_text)
        return True


# Names (of query parameters, of config options) whose values are credentials.
SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "signature")


def secret_name(name: str) -> bool:
    """True when a query parameter or config option so named holds a credential."""
    lowered = name.lower()
    return lowered == "sig" or any(word in lowered for word in SECRET_WORDS)


def redact_url(url: str | None) -> str | None:
    """`url` fit to show or log: the password of its user part and the values of
    query parameters that look like credentials replaced by `***`."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(
        f"{name}=***" if secret_name(name) else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
