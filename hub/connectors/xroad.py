"""The wire rules of the national document axis, as the Government Office's SDK speaks them.

The reference is ../shared/reference/STANDARDS.md, "The national document axis"
(SDKVXP 2.0.1, `com.vpcp.services.VnptService`). Signing a request:

- The logical headers are `timestamp` (`ddMMyyyy'T'HHmmss+SSSS`, the last
  four digits the milliseconds, in Vietnam time: see `VN`), `systemid`,
  `Content-Type` and the operation's own (`from`, `servicetype`, `docId`...).
- Each logical header `k` travels as `XroadVnpt-k` (names keep their case);
  `Content-Type` also travels as itself.
- `XroadVnpt-sign-header` is the compact JSON object `{"XroadVnpt-k": value}`
  in the headers' order, `XroadVnpt-sign-header-key` the logical names joined
  by `;`, `XroadVnpt-hash-header` the lowercase hex HMAC-SHA256 of the UTF-8
  of the sign-header text, keyed by the UTF-8 of the system's secret.
- `User-Agent: JAVASDKAgent/1.0.0 XRoad/VPCP`, `XroadVnpt-version: 3.0.201608`.

Verifying (`verify`) hashes the sign-header text exactly as received, then
checks that every member matches the one header of that name sent beside it,
that `sign-header-key` names the same headers, that `systemid` is known and
that `timestamp` has the SDK's format and lies within `WINDOW` of now. The
operation then reads its parameters from the signed members only. What the
reference leaves open (the time zone, no nonce, the window) is written down
in docs/DOCUMENTS.md, "An SDK client against the hub".

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO, Protocol

from hub.errors import Unauthorized

PREFIX = "XroadVnpt-"
SIGN_HEADER = "XroadVnpt-sign-header"
SIGN_HEADER_KEY = "XroadVnpt-sign-header-key"
HASH_HEADER = "XroadVnpt-hash-header"
USER_AGENT = "JAVASDKAgent/1.0.0 XRoad/VPCP"
VERSION = "3.0.201608"
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
# SimpleDateFormat writes the JVM's local time; the SDK's users run in Vietnam.
VN = timezone(timedelta(hours=7))
WINDOW = 300.0  # seconds a timestamp may be off the verifier's clock, either way
_STAMP = re.compile(r"^(\d{2})(\d{2})(\d{4})T(\d{2})(\d{2})(\d{2})\+(\d{4})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_VALUE = re.compile(r"^[\x20-\x7e]*$")
_UNSIGNED = {SIGN_HEADER.lower(), SIGN_HEADER_KEY.lower(), HASH_HEADER.lower()}


class Headers(Protocol):
    """Case-insensitive request headers (starlette's and httpx's both fit)."""

    def getlist(self, key: str) -> list[str]: ...


def timestamp(at: datetime) -> str:
    """`at` as the SDK writes it: `ddMMyyyy'T'HHmmss+SSSS` in Vietnam time."""
    local = at.astimezone(VN)
    return local.strftime("%d%m%YT%H%M%S+") + f"{local.microsecond // 1000:04d}"


def parse_timestamp(text: str) -> datetime:
    """The instant an SDK timestamp names. Raises ValueError for any other spelling."""
    found = _STAMP.match(text)
    if not found:
        raise ValueError(f"timestamp {text!r} is not ddMMyyyy'T'HHmmss+SSSS")
    day, month, year, hour, minute, second, millis = (int(g) for g in found.groups())
    if millis > 999:
        raise ValueError(f"timestamp {text!r}: the last four digits are milliseconds (0-999)")
    return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=VN)


def sign_header(logical: Mapping[str, str]) -> str:
    """The sign-header text: compact JSON of `"XroadVnpt-<name>": value`, in order."""
    members = {PREFIX + name: value for name, value in logical.items()}
    return json.dumps(members, separators=(",", ":"), ensure_ascii=False)


def hash_header(secret: str, text: str) -> str:
    """Lowercase hex HMAC-SHA256 of the UTF-8 of `text`, keyed by the UTF-8 of `secret`."""
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_headers(
    system_id: str,
    secret: str,
    headers: Mapping[str, str],
    *,
    content_type: str = JSON,
    now: datetime | None = None,
) -> dict[str, str]:
    """The HTTP headers of one request, signed as the SDK signs.

    Args:
        headers: the operation's own logical headers (`from`, `docId`...), names as sent.
        content_type: `application/octet-stream` for sendEdoc, else `application/json`.
        now: the signing time (default: the clock).

    Raises:
        ValueError: a name that is not a token, or a value that is not printable ASCII.
    """
    stamp = timestamp(now or datetime.now(UTC))
    logical = {"timestamp": stamp, "systemid": system_id, "Content-Type": content_type}
    logical |= dict(headers)
    for name, value in logical.items():
        if not _NAME.match(name) or (PREFIX + name).lower() in _UNSIGNED:
            raise ValueError(f"{name!r} cannot be a logical header name")
        if not _VALUE.match(value):
            raise ValueError(f"header {name}: value {value!r} is not printable ASCII")
    text = sign_header(logical)
    signed = {"Content-Type": content_type}
    signed |= {PREFIX + name: value for name, value in logical.items()}
    signed[SIGN_HEADER_KEY] = ";".join(logical)
    signed[SIGN_HEADER] = text
    signed[HASH_HEADER] = hash_header(secret, text)
    signed["User-Agent"] = USER_AGENT
    signed[PREFIX + "version"] = VERSION
    return signed


@dataclass(frozen=True)
class Signed:
    """A verified request: who signed it, and its signed logical headers."""

    system_id: str
    logical: Mapping[str, str]  # lowercase names without the prefix -> value
    at: datetime

    def get(self, name: str, default: str = "") -> str:
        return self.logical.get(name.lower(), default)


def signed_request(headers: Headers) -> bool:
    """True when a request carries the SDK's signature headers (so must verify)."""
    return any(headers.getlist(n) for n in (SIGN_HEADER, HASH_HEADER))


def verify(
    headers: Headers,
    secret_for: Callable[[str], str | None],
    *,
    now: datetime | None = None,
    window: float = WINDOW,
) -> Signed:
    """Check a request signed as the SDK signs; returns who signed it and what.

    Raises:
        Unauthorized: the reason, for a missing or malformed sign-header, an
            unknown systemid, a wrong hash, a member that differs from its
            header, or a timestamp in another format or outside the window.
    """
    text, given = _one(headers, SIGN_HEADER), _one(headers, HASH_HEADER)
    if text is None or given is None:
        raise Unauthorized(f"send {SIGN_HEADER} and {HASH_HEADER} (one each), as the SDK does")
    try:
        text = text.encode("latin-1").decode("utf-8")  # the bytes as sent, read as UTF-8
        members = json.loads(text)
    except (UnicodeError, ValueError):
        raise Unauthorized(f"{SIGN_HEADER} is not UTF-8 JSON") from None
    if not isinstance(members, dict) or not all(
        isinstance(k, str) and k.lower().startswith(PREFIX.lower()) and isinstance(v, str)
        for k, v in members.items()
    ):
        raise Unauthorized(f'{SIGN_HEADER} must be an object of "{PREFIX}<name>": "<value>"')
    logical = {k[len(PREFIX) :].lower(): v for k, v in members.items()}
    system_id = logical.get("systemid", "")
    secret = secret_for(system_id) if system_id else None
    if secret is None:
        raise Unauthorized(f"unknown systemid {system_id!r} (or none signed)")
    if not hmac.compare_digest(hash_header(secret, text).encode(), given.strip().lower().encode()):
        raise Unauthorized(f"{HASH_HEADER} is not the HMAC-SHA256 of {SIGN_HEADER} by {system_id}")
    for name, value in members.items():
        sent = [v.encode("latin-1").decode("utf-8", "replace") for v in headers.getlist(name)]
        if sent != [value]:
            raise Unauthorized(f"signed {name} {value!r} differs from the header sent: {sent!r}")
    keys = _one(headers, SIGN_HEADER_KEY)
    if keys is not None and sorted(k.lower() for k in keys.split(";") if k) != sorted(logical):
        raise Unauthorized(f"{SIGN_HEADER_KEY} does not name the headers signed")
    at = _within(logical.get("timestamp", ""), now or datetime.now(UTC), window)
    return Signed(system_id, logical, at)


def _one(headers: Headers, name: str) -> str | None:
    values = headers.getlist(name)
    return values[0] if len(values) == 1 else None


def _within(stamp: str, now: datetime, window: float) -> datetime:
    try:
        at = parse_timestamp(stamp)
    except ValueError as exc:
        raise Unauthorized(str(exc)) from None
    off = (at - now).total_seconds()
    if abs(off) > window:
        raise Unauthorized(f"timestamp {stamp} is {off:+.0f} s from now (over {window:g} s)")
    return at


def hash_file_forms(digest: bytes) -> tuple[str, str]:
    """The ways a `hash-file` may spell a SHA-256: full hex, and the SDK's
    (`Integer.toHexString` of each byte, so a byte under 0x10 loses its zero)."""
    return digest.hex(), "".join(f"{b:x}" for b in digest)


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
