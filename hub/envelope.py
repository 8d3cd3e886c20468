"""The CloudEvents 1.0 envelope every message travels in."""

from __future__ import annotations

import unicodedata
from typing import Any

import orjson

# Attributes the hub reads; the rest of the envelope travels untouched.
REQUIRED = ("specversion", "id", "source", "type")


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
