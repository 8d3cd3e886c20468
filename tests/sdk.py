"""The Government Office's SDK (SDKVXP 2.0.1) on the wire, for tests: requests built and
checked by the rules of ../shared/reference/STANDARDS.md ("The national document axis").

Written from that reference only, never from the hub's signing code (which it
checks): `request` builds what `KnobstickServiceImp` sends, `check` verifies a
request as an axis that checks the SDK's way would. The timestamp is the JVM's
local time, Vietnam (+07:00), as docs/DOCUMENTS.md assumes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

VN = timezone(timedelta(hours=7))
USER_AGENT = "JAVASDKAgent/1.0.0 XRoad/VPCP"
VERSION = "3.0.201608"


def stamp(at: datetime | None = None) -> str:
    """`ddMMyyyy'T'HHmmss+SSSS`: the last four digits are the milliseconds."""
    local = (at or datetime.now(UTC)).astimezone(VN)
    return (
        f"{local.day:02d}{local.month:02d}{local.year:04d}T"
        f"{local.hour:02d}{local.minute:02d}{local.second:02d}+{local.microsecond // 1000:04d}"
    )


def hash_file(data: bytes) -> str:
    """The SDK's `hash-file`: each byte of the SHA-256 as `Integer.toHexString`, so a byte
    under 0x10 is one digit (the SDK does not pad)."""
    return "".join(format(b, "x") for b in hashlib.sha256(data).digest())


def body(file: bytes) -> bytes:
    """The SDK's sendEdoc body: the file, then CRLF (its multipart writer adds no boundary)."""
    return file + b"\r\n"


def request(
    system_id: str,
    secret: str,
    operation_headers: Mapping[str, str],
    *,
    content_type: str = "application/json",
    at: datetime | None = None,
    timestamp: str | None = None,
    order: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """The headers of one SDK request, in the order it sends them.

    The logical map holds `timestamp`, `systemid`, `Content-Type` and the
    operation's headers; `order` rearranges its members (the SDK's HashMap order
    is not insertion order), `timestamp` replaces the formatted time.
    """
    logical: dict[str, str] = {
        "timestamp": timestamp if timestamp is not None else stamp(at),
        "systemid": system_id,
        "Content-Type": content_type,
    }
    logical.update(operation_headers)
    if order is not None:
        logical = {name: logical[name] for name in order}
    sign_header = json.dumps(
        {"XroadVnpt-" + name: value for name, value in logical.items()},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hmac.new(secret.encode("utf-8"), sign_header.encode("utf-8"), hashlib.sha256)
    sent: list[tuple[str, str]] = [("Content-Type", content_type)]
    sent += [("XroadVnpt-" + name, value) for name, value in logical.items()]
    sent += [
        ("XroadVnpt-sign-header-key", ";".join(logical)),
        ("XroadVnpt-sign-header", sign_header),
        ("XroadVnpt-hash-header", digest.hexdigest()),
        ("User-Agent", USER_AGENT),
        ("XroadVnpt-version", VERSION),
    ]
    return sent


def replace(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """`headers` with every header called `name` (any case) set to `value`."""
    return [(n, value if n.lower() == name.lower() else v) for n, v in headers]


_STAMP = re.compile(r"^(\d\d)(\d\d)(\d{4})T(\d\d)(\d\d)(\d\d)\+(\d{4})$")


def check(
    headers: Any, secrets: Mapping[str, str], now: datetime, window: float = 300.0
) -> dict[str, str]:
    """Verify a request as the SDK signs; returns the logical headers (names as signed).

    `headers` is httpx.Headers (case-insensitive, `get_list`).

    Raises:
        AssertionError: what is wrong.
    """
    (text,) = headers.get_list("XroadVnpt-sign-header")
    (given,) = headers.get_list("XroadVnpt-hash-header")
    members = json.loads(text)
    assert isinstance(members, dict) and members, text
    logical = {}
    for name, value in members.items():
        assert name.startswith("XroadVnpt-"), name
        assert headers.get_list(name) == [value], (name, headers.get_list(name), value)
        logical[name[len("XroadVnpt-") :]] = value
    secret = secrets[logical["systemid"]]
    expected = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, given), "hash-header is not the HMAC of sign-header"
    assert headers["XroadVnpt-sign-header-key"].split(";") == list(logical)
    assert headers["Content-Type"] == logical["Content-Type"]
    assert headers["User-Agent"] == USER_AGENT and headers["XroadVnpt-version"] == VERSION
    found = _STAMP.match(logical["timestamp"])
    assert found, logical["timestamp"]
    d, mo, y, h, mi, s, ms = (int(g) for g in found.groups())
    at = datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=VN)
    assert abs((at - now).total_seconds()) <= window, (at, now)
    return logical
