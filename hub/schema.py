"""A JSON Schema (Draft 2020-12) compiled once: a fast check, detailed errors on failure.

Every message is checked by jsonschema-rs (compiled; about 2 us for an envelope
against 80 us for the pure-Python validator on this box); only an instance that
fails is run through `jsonschema`, whose errors (JSON pointer and message) are
what the caller is told. Neither asserts `format`, so the two agree.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from hub.errors import FieldError

MAX_ERRORS = 20


def _pointer(prefix: str, error: ValidationError) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        missing = [k for k in required if k not in error.instance]
        if missing:
            parts.append(str(missing[0]))
    return prefix + "".join("/" + p for p in parts)


class Schema:
    """One schema: a compiled check, and the detailed errors when it fails."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._fast = jsonschema_rs.validator_for(schema)
        self._detail = Draft202012Validator(schema)

    def errors(self, instance: Any, prefix: str) -> list[FieldError]:
        if self._fast.is_valid(instance):
            return []
        found = sorted(
            self._detail.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
        )
        return [FieldError(_pointer(prefix, e), e.message[:300]) for e in found[:MAX_ERRORS]]
