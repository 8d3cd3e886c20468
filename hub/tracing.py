"""W3C Trace Context for messages: `traceparent` parsed, started, continued.

A message's trace is fixed at ingest and stored in its envelope as the
CloudEvents distributed-tracing extension attribute `traceparent`: the event's
own, when valid (the producer's context, which the extension says travels
unchanged); else the ingest request's `traceparent` header, when valid; else a
new trace. Each delivery attempt is a span of that trace (`child`), and outbound
calls carry the attempt's span as their `traceparent` header (`outgoing`), so a
destination sees the sender's trace id with the hub's attempt as parent.

The hub exports no spans; the ids tie the sender's, the hub's (JSON logs carry
`trace_id`) and the destination's records together.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

HEADER = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
ZERO_TRACE, ZERO_SPAN = "0" * 32, "0" * 16
SAMPLED = "01"
# The envelope is stored with `traceparent` as its first member (see `stamp`), so
# a job's trace is read from the stored text without parsing it.
ENVELOPE_PREFIX = '{"traceparent":"'
LENGTH = 55

_current: ContextVar[TraceParent | None] = ContextVar("hub_span", default=None)


@dataclass(frozen=True)
class TraceParent:
    """One span's context: its trace, its own id and the trace flags."""

    trace_id: str
    span_id: str
    flags: str = SAMPLED

    def __str__(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse(value: object) -> TraceParent | None:
    """A `traceparent` value as W3C Trace Context level 1 reads it; None when invalid.

    Version `ff`, all-zero ids, upper-case hex and a version-00 value with
    anything after it are invalid; a later version may append `-...` fields,
    which are ignored (the value is re-emitted as version 00).
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    found = HEADER.match(value)
    if found is None:
        return None
    version, trace_id, span_id, flags = found.groups()
    if version == "ff" or trace_id == ZERO_TRACE or span_id == ZERO_SPAN:
        return None
    if len(value) > LENGTH and (version == "00" or value[LENGTH] != "-"):
        return None
    return TraceParent(trace_id, span_id, flags)


def new() -> TraceParent:
    """A new trace, its first span sampled."""
    return TraceParent(secrets.token_hex(16), secrets.token_hex(8))


def child(parent: TraceParent) -> TraceParent:
    """A new span of `parent`'s trace (its parent is `parent`)."""
    return TraceParent(parent.trace_id, secrets.token_hex(8), parent.flags)


def stamp(event: Mapping[str, Any], header: str | None = None) -> dict[str, Any]:
    """`event` with a valid `traceparent` as its first member: its own, `header`'s, or new."""
    found = parse(event.get("traceparent")) or parse(header) or new()
    rest = {k: v for k, v in event.items() if k != "traceparent"}
    return {"traceparent": str(found), **rest}


def of_envelope(envelope: str) -> str | None:
    """The `traceparent` of an envelope stored by `stamp`, without parsing the JSON."""
    if envelope.startswith(ENVELOPE_PREFIX):
        value = envelope[len(ENVELOPE_PREFIX) : len(ENVELOPE_PREFIX) + LENGTH]
        return value if parse(value) else None
    return None


def enter(traceparent: object) -> TraceParent | None:
    """Start a span of `traceparent`'s trace as the current one (a delivery attempt).

    Set in the task of the attempt, it ends with that task.
    """
    parent = parse(traceparent)
    span = child(parent) if parent else None
    _current.set(span)
    return span


def current() -> TraceParent | None:
    return _current.get()


def outgoing(event: Mapping[str, Any]) -> str | None:
    """The `traceparent` header of a call made for `event`: the current attempt's span
    when it belongs to the event's trace, else a new span of the event's trace."""
    parent = parse(event.get("traceparent"))
    if parent is None:
        return None
    span = _current.get()
    if span is None or span.trace_id != parent.trace_id:
        span = child(parent)
    return str(span)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current attempt's `traceparent` to outbound headers that have none."""
    span = _current.get()
    if span is not None and not any(k.lower() == "traceparent" for k in headers):
        headers["traceparent"] = str(span)
