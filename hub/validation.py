"""Envelope and payload validation with JSON Schema (Draft 2020-12), compiled once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.config import MessageType
from hub.errors import FieldError, Invalid
from hub.schema import Schema

ENVELOPE_SCHEMA = Path(__file__).parent / "schemas" / "envelope.json"


class Validators:
    """The envelope schema and one compiled schema per known message type."""

    def __init__(self, types: Mapping[str, MessageType]) -> None:
        self.envelope = Schema(json.loads(ENVELOPE_SCHEMA.read_text("utf-8")))
        self.types = {name: Schema(dict(t.schema)) for name, t in types.items()}

    def check_envelope(self, event: Any) -> None:
        """Raise Invalid naming every failing envelope field."""
        if not isinstance(event, dict):
            raise Invalid(
                "the body must be a CloudEvent: a JSON object",
                errors=[FieldError("", "not a JSON object")],
            )
        errors = self.envelope.errors(event, "")
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
        errors = validator.errors(event["data"], "/data")
        if errors:
            raise Invalid(
                f"invalid payload: {errors[0].pointer}: {errors[0].detail}", errors=errors
            )
