"""How deep a JSON value may nest: one limit for every JSON the API takes.

orjson stops at 1,024 levels and the standard library at the interpreter's
recursion limit, but what comes after a parse recurses too (a schema error's
`repr` of the offending value, NFC normalisation, pydantic), and about 1,000
levels already ended in a RecursionError and a 500. No message type nests
anywhere near MAX_DEPTH; a value deeper is refused (422, `too-deep`) before any
of that runs. The walk below is iterative, so it cannot recurse itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from hub.errors import FieldError, TooDeep

MAX_DEPTH = 64


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when `value` has containers nested more than `limit` levels.

    Raises:
        TooDeep: with the JSON pointer of the first container past the limit.
    """
    # Only containers are pushed; each carries its path as (parent path, key), so a
    # pointer is written only for the refusal.
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[Any, int, Any]] = [(value, 1, None)]
    while stack:
        item, depth, path = stack.pop()
        if depth > limit:
            pointer = _pointer(path)
            raise TooDeep(
                f"the JSON is nested more than {limit} levels deep (at {pointer or '/'})",
                errors=[FieldError(pointer, f"nested deeper than {limit} levels")],
            )
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        stack.extend((v, depth + 1, (path, k)) for k, v in pairs if isinstance(v, dict | list))


def check_json_depth(raw: bytes) -> None:
    """`check_depth` for a body that may be JSON; a body that is not is left to its reader.

    Raises:
        TooDeep: as `check_depth`, or past orjson's own limit of 1,024 levels.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise TooDeep(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
        return
    check_depth(value)


def _pointer(path: Any) -> str:
    keys: list[str] = []
    while path is not None:
        path, key = path
        keys.append(str(key).replace("~", "~0").replace("/", "~1"))
    return "".join("/" + k for k in reversed(keys))
