"""The wire rules of the national document axis adapter (X-Road, VNPT SDK dialect).

Signing. Every logical header `k` of a request travels as the HTTP header
`XroadVnpt-k`; `systemid` (the caller's id on the axis) and `timestamp` (Unix
time in milliseconds, decimal) are always among them. `XroadVnpt-hash-header`
carries the lowercase hex HMAC-SHA256, keyed by the UTF-8 of the system's
secret, over the canonical JSON of the logical headers:

    the object {logical name: value} of every XroadVnpt-* header except
    hash-header, names in lowercase without the prefix, keys sorted by code
    point, separators "," and ":" with no whitespace, non-ASCII escaped as
    \\uXXXX (json.dumps(..., sort_keys=True, separators=(",", ":"),
    ensure_ascii=True)), encoded as ASCII.

    {"from":"000.00.11.H29","hash-file":"9f86...","messagetype":"edoc",
     "messageid":"01JD...","servicetype":"eDoc","systemid":"000.00.00.H29",
     "timestamp":"1764000000000"}

A verifier refuses a missing or wrong hash, an unknown system, and a timestamp
more than `MAX_SKEW` (5 minutes) old or ahead: a captured request cannot be
replayed later. The body is bound through `hash-file` (SHA-256 hex), which the
signature covers.

Answers are JSON objects `{"status": "OK"|"FAIL", "ErrorCode", "ErrorDesc", ...}`;
`getEdoc` carries the package as a base64 string in `data`, which
`Base64Field` decodes to a file as the answer streams.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any, BinaryIO

from hub.errors import Unauthorized

PREFIX = "xroadvnpt-"
HASH_HEADER = "hash-header"
MAX_SKEW = 300.0
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VALUE = re.compile(r"^[\x20-\x7e]*$")


def canonical(logical: Mapping[str, str]) -> bytes:
    """The bytes the hash-header is computed over (see the module docstring)."""
    items = {name.lower(): value for name, value in logical.items()}
    return json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def signature(secret: str, logical: Mapping[str, str]) -> str:
    """Hex HMAC-SHA256 of the canonical JSON of `logical`, keyed by `secret`."""
    return hmac.new(secret.encode("utf-8"), canonical(logical), hashlib.sha256).hexdigest()


def sign_headers(
    system_id: str, secret: str, headers: Mapping[str, str], now: float | None = None
) -> dict[str, str]:
    """HTTP headers for a request: each logical header prefixed, plus systemid, timestamp, hash.

    Args:
        headers: logical headers (`from`, `messagetype`, `docid`...), names case-insensitive.
        now: Unix time in seconds (default: the clock).

    Raises:
        ValueError: a name that is not a token, or a value that is not printable ASCII.
    """
    stamp = str(int((time.time() if now is None else now) * 1000))
    logical = {k.lower(): v for k, v in headers.items()}
    logical |= {"systemid": system_id, "timestamp": stamp}
    for name, value in logical.items():
        if not _NAME.match(name) or name == HASH_HEADER:
            raise ValueError(f"{name!r} cannot be a logical header name")
        if not _VALUE.match(value):
            raise ValueError(f"header {name}: value {value!r} is not printable ASCII")
    signed = {f"XroadVnpt-{name}": value for name, value in logical.items()}
    signed[f"XroadVnpt-{HASH_HEADER}"] = signature(secret, logical)
    return signed


def logical_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The logical headers of a request (lowercase names without the prefix), hash included."""
    return {k.lower()[len(PREFIX) :]: v for k, v in headers.items() if k.lower().startswith(PREFIX)}


def verify(
    headers: Mapping[str, str], secrets_by_system: Mapping[str, str], now: float | None = None
) -> str:
    """Check a request's signature; returns the calling system's id.

    Raises:
        Unauthorized: no or unknown systemid, a missing, stale or future timestamp, a wrong hash.
    """
    logical = logical_headers(headers)
    given = logical.pop(HASH_HEADER, "")
    system = logical.get("systemid", "")
    secret = secrets_by_system.get(system)
    if not given or secret is None:
        raise Unauthorized(f"unsigned request or unknown systemid {system!r}")
    try:
        stamp = int(logical.get("timestamp", "")) / 1000
    except ValueError:
        raise Unauthorized("timestamp is not Unix time in milliseconds") from None
    age = (time.time() if now is None else now) - stamp
    if abs(age) > MAX_SKEW:
        raise Unauthorized(f"timestamp is {age:+.0f} s from now (more than {MAX_SKEW:g} s)")
    if not hmac.compare_digest(signature(secret, logical), given.lower()):
        raise Unauthorized(f"hash-header does not match the headers signed by {system}")
    return system


class Base64Field:
    """Reads a JSON object as it streams, decoding one top-level base64 string to `out`.

    Only the other members are kept (up to `max_other` bytes); the string is
    decoded in 4-character groups as it arrives, so memory stays flat however
    large it is. JSON escapes inside it (`\\/`, `\\n`, `\\uXXXX`) are honoured.

        field = Base64Field(out)
        async for chunk in response.aiter_bytes():
            field.feed(chunk)
        answer = field.close()     # the other members; answer["data"] is the decoded size
    """

    def __init__(self, out: BinaryIO, key: str = "data", max_other: int = 1 << 20) -> None:
        self._out, self._key, self._max = out, key.encode(), max_other
        self._head, self._tail = bytearray(), bytearray()
        self._state = "head"
        self._scan = _HeadScanner()
        self._escape = b""
        self._carry = b""
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the answer. Raises ValueError on corrupt base64 or JSON."""
        if self._state == "head":
            self._head += chunk
            at = self._scan.find_string_value(self._head, self._key)
            if at is None:
                self._bound(self._head)
                return
            chunk, self._head = bytes(self._head[at + 1 :]), self._head[:at]
            self._state = "field"
        if self._state == "field":
            chunk = self._field(chunk)
        if self._state == "tail":
            self._tail += chunk
            self._bound(self._tail)

    def close(self) -> dict[str, Any]:
        """The JSON object with the field replaced by its decoded size in bytes."""
        if self._state == "field":
            raise ValueError(f"the answer ended inside {self._key.decode()!r}")
        if self._carry.strip(b"="):
            raise ValueError("base64 ends in an incomplete group")
        if self._state == "head":
            value = json.loads(bytes(self._head))
        else:
            value = json.loads(bytes(self._head) + str(self.size).encode() + bytes(self._tail))
        if not isinstance(value, dict):
            raise ValueError("the answer is not a JSON object")
        return value

    def _bound(self, kept: bytearray) -> None:
        if len(kept) > self._max:
            raise ValueError(f"more than {self._max} bytes of JSON beside the base64 field")

    def _field(self, chunk: bytes) -> bytes:
        """Decode the string's bytes in `chunk`; returns what follows its closing quote."""
        while chunk:
            if self._escape:
                chunk = self._escaped(chunk)
                continue
            quote, backslash = chunk.find(b'"'), chunk.find(b"\\")
            stops = [i for i in (quote, backslash) if i >= 0]
            end = min(stops) if stops else len(chunk)
            self._decode(chunk[:end])
            if end == len(chunk):
                return b""
            if end == quote:
                self._state = "tail"
                return chunk[end + 1 :]
            self._escape, chunk = b"\\", chunk[end + 1 :]
        return b""

    def _escaped(self, chunk: bytes) -> bytes:
        """Complete a JSON escape begun in an earlier chunk (or this one)."""
        need = 6 if (self._escape + chunk[:1])[1:2] == b"u" else 2
        take = need - len(self._escape)
        self._escape += chunk[:take]
        if len(self._escape) == need:
            text = json.loads(b'"' + self._escape + b'"')
            self._escape = b""
            self._decode(text.encode("ascii", "replace"))
        return chunk[take:]

    def _decode(self, text: bytes) -> None:
        data = self._carry + text.translate(None, b" \t\r\n")
        whole = len(data) // 4 * 4
        try:
            decoded = binascii.a2b_base64(data[:whole], strict_mode=True)
        except binascii.Error as exc:
            raise ValueError(f"corrupt base64 in {self._key.decode()!r}: {exc}") from None
        if decoded:
            self._out.write(decoded)
            self.size += len(decoded)
        self._carry = data[whole:]


class _HeadScanner:
    """Finds where a top-level string member's value starts, byte by byte (heads are small)."""

    def __init__(self) -> None:
        self.pos = 0
        self.depth = 0
        self.in_string = self.escape = False
        self.string_start = 0
        self.expect_key = False
        self.key: bytes | None = None
        self.awaiting_value = False

    def find_string_value(self, buf: bytearray, key: bytes) -> int | None:
        """Index of the opening quote of `key`'s string value in `buf`, if seen yet."""
        for i in range(self.pos, len(buf)):
            c = buf[i]
            if self.in_string:
                if self.escape:
                    self.escape = False
                elif c == 0x5C:  # backslash
                    self.escape = True
                elif c == 0x22:  # closing quote
                    self.in_string = False
                    if self.expect_key and self.depth == 1:
                        self.key, self.expect_key = bytes(buf[self.string_start + 1 : i]), False
                continue
            if c == 0x22:
                if self.depth == 1 and self.awaiting_value:
                    self.awaiting_value = False
                    if self.key == key:
                        self.pos = i + 1
                        return i
                self.in_string, self.string_start = True, i
            elif c in b"{[":
                self.depth += 1
                self.expect_key = c == 0x7B and self.depth == 1
                self.awaiting_value = False
            elif c in b"}]":
                self.depth -= 1
            elif self.depth == 1 and c == 0x3A:  # colon
                self.awaiting_value = True
            elif self.depth == 1 and c == 0x2C:  # comma
                self.expect_key, self.awaiting_value = True, False
            elif c not in b" \t\r\n":
                self.awaiting_value = False
        self.pos = len(buf)
        return None
