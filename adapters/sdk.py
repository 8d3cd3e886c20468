"""The Government Office's SDK (SDKVXP 2.0.1) on the wire, for the simulators.

Written from ../shared/reference/STANDARDS.md ("The national document axis"),
not from the hub's connector, so that a simulator checks the hub the way the
real axis would: `verify` is the national-axis simulator's check of every
call, `sign` is how the e-office simulator signs as an SDK client. The
timestamp is read and written in Vietnam time (docs/DOCUMENTS.md says why).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

VN = timezone(timedelta(hours=7))
PREFIX = "XroadVnpt-"
SIGN_HEADER = "XroadVnpt-sign-header"
SIGN_HEADER_KEY = "XroadVnpt-sign-header-key"
HASH_HEADER = "XroadVnpt-hash-header"
STAMP = re.compile(r"^(\d{2})(\d{2})(\d{4})T(\d{2})(\d{2})(\d{2})\+(\d{4})$")


class Refused(Exception):
    """A request that does not verify; the message says why."""


def sign(
    system_id: str,
    secret: str,
    headers: Mapping[str, str],
    content_type: str,
    now: datetime,
) -> dict[str, str]:
    """The HTTP headers an SDK client sends for one call (`headers`: the operation's)."""
    local = now.astimezone(VN)
    stamp = local.strftime("%d%m%YT%H%M%S+") + f"{local.microsecond // 1000:04d}"
    logical = {"timestamp": stamp, "systemid": system_id, "Content-Type": content_type}
    logical.update(headers)
    text = json.dumps({PREFIX + k: v for k, v in logical.items()}, separators=(",", ":"))
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()
    sent = {"Content-Type": content_type} | {PREFIX + k: v for k, v in logical.items()}
    return sent | {
        SIGN_HEADER_KEY: ";".join(logical),
        SIGN_HEADER: text,
        HASH_HEADER: digest,
        "User-Agent": "JAVASDKAgent/1.0.0 XRoad/VPCP",
        PREFIX + "version": "3.0.201608",
    }


def hash_file(data: bytes) -> str:
    """`hash-file` as the SDK writes it: each SHA-256 byte's hex, without a leading zero."""
    return "".join(f"{b:x}" for b in hashlib.sha256(data).digest())


def hash_file_matches(claimed: str, digest: bytes) -> bool:
    """`hash-file` as full hex or as the SDK writes it (each byte's hex, no leading zero)."""
    claimed = claimed.strip().lower()
    return claimed in (digest.hex(), "".join(f"{b:x}" for b in digest))


def verify(
    headers: Any, secrets: Mapping[str, str], now: datetime, window: float
) -> tuple[str, dict[str, str]]:
    """Check a call as the axis checks the SDK's; returns (systemid, logical headers).

    `headers` is case-insensitive with `getlist` (starlette's); logical names
    come back lowercase without the prefix.

    Raises:
        Refused: the reason.
    """
    texts, hashes = headers.getlist(SIGN_HEADER), headers.getlist(HASH_HEADER)
    if len(texts) != 1 or len(hashes) != 1:
        raise Refused("unsigned: one XroadVnpt-sign-header and one XroadVnpt-hash-header")
    raw = texts[0].encode("latin-1")  # the header's bytes as sent
    try:
        members = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise Refused("XroadVnpt-sign-header is not UTF-8 JSON") from None
    if not isinstance(members, dict) or any(
        not (isinstance(v, str) and k.lower().startswith(PREFIX.lower()))
        for k, v in members.items()
    ):
        raise Refused("XroadVnpt-sign-header must map XroadVnpt-<name> to strings")
    logical = {k[len(PREFIX) :].lower(): v for k, v in members.items()}
    system = logical.get("systemid", "")
    secret = secrets.get(system)
    if secret is None:
        raise Refused(f"unknown systemid {system!r}")
    expected = hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, hashes[0].strip().lower()):
        raise Refused("XroadVnpt-hash-header does not match XroadVnpt-sign-header")
    for name, value in members.items():
        sent = [v.encode("latin-1").decode("utf-8", "replace") for v in headers.getlist(name)]
        if sent != [value]:
            raise Refused(f"{name} differs from the value signed")
    names = headers.getlist(SIGN_HEADER_KEY)
    if names and sorted(n.lower() for n in names[0].split(";") if n) != sorted(logical):
        raise Refused("XroadVnpt-sign-header-key does not list the headers signed")
    found = STAMP.match(logical.get("timestamp", ""))
    if not found or int(found.group(7)) > 999:
        raise Refused("timestamp is not ddMMyyyy'T'HHmmss+SSSS")
    d, mo, y, h, mi, sec, ms = (int(g) for g in found.groups())
    try:
        at = datetime(y, mo, d, h, mi, sec, ms * 1000, tzinfo=VN)
    except ValueError:
        raise Refused("timestamp is not a date") from None
    if abs((at - now).total_seconds()) > window:
        raise Refused(f"timestamp outside {window:g} s of the axis's clock")
    return system, logical
