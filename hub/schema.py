"""A JSON Schema (Draft 2020-12) compiled once: a fast check, detailed errors on failure.

Every message is checked by jsonschema-rs (compiled; about 2 us for an envelope
against 80 us for the pure-Python validator on this box); only an instance that
fails is run through `jsonschema`, whose errors (JSON pointer and message) are
what the caller is told. Neither asserts `format`, so the two agree.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

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


SCHEMAS = Path(__file__).parent / "schemas"


@cache
def _own() -> tuple[tuple[str, dict[str, Any]], ...]:
    """The hub's schema files by `$id`, so one may `$ref` another (directive.defs.json)."""
    found = []
    for file in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(file.read_text("utf-8"))
        if isinstance(schema, dict) and isinstance(schema.get("$id"), str):
            found.append((schema["$id"], schema))
    return tuple(found)


@cache
def _registries() -> tuple[Any, Registry[Any]]:
    own = _own()
    fast = jsonschema_rs.Registry(list(own))
    detail: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(schema, default_specification=DRAFT202012))
        for uri, schema in own
    )
    return fast, detail


class Schema:
    """One schema: a compiled check, and the detailed errors when it fails.

    References resolve to the hub's own schema files only; nothing is fetched.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        fast, detail = _registries()
        self._fast = jsonschema_rs.validator_for(schema, registry=fast)
        self._detail = Draft202012Validator(schema, registry=detail)

    def errors(self, instance: Any, prefix: str) -> list[FieldError]:
        if self._fast.is_valid(instance):
            return []
        found = sorted(
            self._detail.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
        )
        return [FieldError(_pointer(prefix, e), e.message[:300]) for e in found[:MAX_ERRORS]]
