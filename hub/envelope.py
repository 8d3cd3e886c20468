"""The CloudEvents 1.0 envelope every message travels in."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any

import orjson

# Attributes the hub reads; the rest of the envelope travels untouched.
REQUIRED = ("specversion", "id", "source", "type")
# Not part of an event's content when a repeat of its id is judged: the trace
# context the hub stamps (a resend without `traceparent` gets a new one) and the
# time, which senders (and the national-axis poller) set when they build the event.
NOT_CONTENT = frozenset({"traceparent", "tracestate", "time"})


def nfc(value: Any) -> Any:
    """Return `value` with every string normalised to Unicode NFC (Vietnamese text is stored so)."""
    if isinstance(value, str):
        return (
            value
            if unicodedata.is_normalized("NFC", value)
            else unicodedata.normalize("NFC", value)
        )
    if isinstance(value, dict):
        return {nfc(k): nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nfc(v) for v in value]
    return value


def dumps(event: dict[str, Any]) -> bytes:
    """Serialise an envelope the one way the hub stores and sends it."""
    return orjson.dumps(event)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def content_digest(event: dict[str, Any] | str) -> str:
    """SHA-256 of what makes an event's content: every attribute (as the hub stores it,
    NFC) but those in NOT_CONTENT, keys sorted. Same id and same digest: a repeat."""
    if isinstance(event, str):
        event = orjson.loads(event)
    assert isinstance(event, dict)
    content = {k: v for k, v in event.items() if k not in NOT_CONTENT}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
