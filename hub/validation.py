"""Envelope and payload validation with JSON Schema (Draft 2020-12), compiled once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from hub.config import MessageType
from hub.errors import FieldError, Invalid

ENVELOPE_SCHEMA = Path(__file__).parent / "schemas" / "envelope.json"
MAX_ERRORS = 20


def _pointer(prefix: str, error: ValidationError) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        missing = [k for k in required if k not in error.instance]
        if missing:
            parts.append(str(missing[0]))
    return prefix + "".join("/" + p for p in parts)


def field_errors(validator: Draft202012Validator, instance: Any, prefix: str) -> list[FieldError]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    return [FieldError(_pointer(prefix, e), e.message[:300]) for e in errors[:MAX_ERRORS]]


class Validators:
    """The envelope validator and one compiled validator per known message type."""

    def __init__(self, types: Mapping[str, MessageType]) -> None:
        self.envelope = Draft202012Validator(json.loads(ENVELOPE_SCHEMA.read_text("utf-8")))
        self.types = {name: Draft202012Validator(dict(t.schema)) for name, t in types.items()}

    def check_envelope(self, event: Any) -> None:
        """Raise Invalid naming every failing envelope field."""
        if not isinstance(event, dict):
            raise Invalid(
                "the body must be a CloudEvent: a JSON object",
                errors=[FieldError("", "not a JSON object")],
            )
        errors = field_errors(self.envelope, event, "")
        if not errors and "time" in event:
            try:
                datetime.fromisoformat(event["time"])
            except ValueError:
                errors = [FieldError("/time", "not an RFC 3339 date-time")]
        if errors:
            raise Invalid(
                f"invalid envelope: {errors[0].pointer or '/'}: {errors[0].detail}", errors=errors
            )

    def check_data(self, event: dict[str, Any]) -> None:
        """Raise Invalid when the type is unknown or the payload fails its schema."""
        validator = self.types.get(event["type"])
        if validator is None:
            raise Invalid(
                f"unknown message type {event['type']!r}",
                errors=[FieldError("/type", "no schema is registered for this type")],
            )
        errors = field_errors(validator, event["data"], "/data")
        if errors:
            raise Invalid(
                f"invalid payload: {errors[0].pointer}: {errors[0].detail}", errors=errors
            )
