"""The local document axis's wire: who calls with which parameters, and the answers' shapes.

A caller is the Government Office's SDK, signing as it does (its parameters
are the signed headers), or a system with its Bearer key and plain headers
(hub/api/edoc.py says which operations read which). Every answer has the
axis's shape `{"status", "ErrorCode", "ErrorDesc", ...}` with every field the
SDK reads, on success and on failure.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from hub.api.auth import identify, identify_signed
from hub.config import System
from hub.connectors.edxml import SENT, STATUS
from hub.connectors.xroad import hash_file_forms, signed_request
from hub.errors import (
    FieldError,
    Forbidden,
    Invalid,
    Rejected,
    TooLarge,
    TooMany,
    Transient,
    Unauthorized,
)
from hub.runtime import Hub

KINDS = {"edoc": SENT, "status": STATUS}
B64_CHUNK = 3 * 65536  # bytes encoded at a time: a multiple of 3, so no padding mid-stream


def answer(status: int = 200, **fields: Any) -> Response:
    body = {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", **fields}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def failure(exc: Exception, **fields: Any) -> Response:
    """A refusal in the axis's shape, with the HTTP status the hub gives it elsewhere.

    `fields` are those the SDK reads on every answer of the operation (sendEdoc's
    `DocId`: the SDK throws when it is missing, even from a FAIL).
    """
    if isinstance(exc, Transient):
        status, code = 503, "UNAVAILABLE"
    else:
        assert isinstance(exc, Rejected)
        status, code = exc.status, exc.problem.upper().replace("-", "_")
    body: dict[str, Any] = {"status": "FAIL", "ErrorCode": code, "ErrorDesc": str(exc), **fields}
    errors = getattr(exc, "errors", None)
    if errors:
        body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in errors]
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooMany) else None
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


async def guarded(work: Callable[[], Awaitable[Response]], **fields: Any) -> Response:
    try:
        return await work()
    except (Rejected, Transient) as exc:
        return failure(exc, **fields)


class Params:
    """A request's logical headers: the signed ones of an SDK call, else the plain ones."""

    def __init__(self, request: Request, signed: Mapping[str, str] | None) -> None:
        self._request, self._signed = request, signed
        self.is_signed = signed is not None

    def get(self, name: str, default: str = "") -> str:
        if self._signed is not None:
            return self._signed.get(name.lower(), default)
        return self._request.headers.get(name, default)


def caller(hub: Hub, request: Request) -> tuple[System, Params]:
    """The calling system and its parameters. Raises Unauthorized, Forbidden, TooMany."""
    if signed_request(request.headers):
        system, signed = identify_signed(hub, request)
        params = Params(request, signed.logical)
    else:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        who = identify(hub, request, key.strip() if scheme.lower() == "bearer" else None)
        found = who.system if who else None
        if found is None:
            raise Unauthorized(
                "send 'Authorization: Bearer <key>' with a document system's key, "
                "or sign as the Government Office's SDK does (XroadVnpt-sign-header)"
            )
        system, params = found, Params(request, None)
    hub.limits.take(system.id)
    if not (system.can_send(SENT) or system.can_receive(SENT)):
        raise Forbidden(f"{system.id} does not exchange documents")
    return system, params


def header(params: Params, name: str, allowed: tuple[str, ...] | None = None) -> str:
    value = params.get(name).strip()
    if not value:
        pointer = f"/headers/{name}"
        raise Invalid(f"header {name!r} is required", errors=[FieldError(pointer, "missing")])
    if allowed is not None and value not in allowed:
        raise Invalid(
            f"header {name!r} must be one of {', '.join(allowed)}, not {value!r}",
            errors=[FieldError(f"/headers/{name}", "not an allowed value")],
        )
    return value


class Spooled:
    """A body on disk: its SHA-256, and that of the body without a final CRLF."""

    def __init__(self, path: Path, digest: bytes, trimmed: bytes | None) -> None:
        self.path, self.digest, self.trimmed = path, digest, trimmed

    def check(self, claimed: str) -> None:
        """Compare `hash-file` with the body; the SDK sends the file, then CRLF, and
        spells each byte's hex without its leading zero (hub/connectors/xroad.py).

        Raises:
            Invalid: it is neither the body's nor the file's hash, in either spelling.
        """
        claimed = claimed.strip().lower()
        if claimed in hash_file_forms(self.digest):
            return
        if self.trimmed is not None and claimed in hash_file_forms(self.trimmed):
            os.truncate(self.path, self.path.stat().st_size - 2)
            return
        raise Invalid(
            f"hash-file {claimed} is not the SHA-256 of the body ({self.digest.hex()})",
            errors=[FieldError("/headers/hash-file", "does not match the body")],
        )


async def spool(request: Request, directory: Path, limit: int) -> Spooled:
    """The body written to a temp file, with its hashes; refused past `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the package is {declared} bytes; the limit is {limit}")
    digest, trimmed, held, size = hashlib.sha256(), hashlib.sha256(), b"", 0
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="edoc-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:  # the SDK's CRLF counts: the body is what is limited
                    raise TooLarge(f"the package is over the limit of {limit} bytes")
                digest.update(chunk)
                held += chunk
                trimmed.update(held[:-2])
                held = held[-2:]
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path, digest.digest(), trimmed.digest() if held == b"\r\n" else None)


def messagetype(params: Params) -> str:
    """getReceivedEdocList's `messagetype`: edoc (the default) or status. Raises Invalid."""
    value = params.get("messagetype").strip() or "edoc"
    if value not in KINDS:
        raise Invalid(
            f"header 'messagetype' must be one of {', '.join(KINDS)}, not {value!r}",
            errors=[FieldError("/headers/messagetype", "not an allowed value")],
        )
    return value


def listed(row: dict[str, Any], system: System) -> dict[str, Any]:
    """A getReceivedEdocList item: every field the SDK reads, as strings, plus document_id."""
    data = orjson.loads(row["envelope"])["data"]
    sender = data.get("sender") or data.get("from") or {}
    return {
        "docId": row["id"],
        "serviceType": "eDoc",
        "messageType": "status" if row["type"] == STATUS else "edoc",
        "created_time": row["created_at"].isoformat(),
        "updated_time": row["updated_at"].isoformat(),
        "from": sender.get("organ_id") or "",
        "to": system.organ,
        "status": "waiting",
        "status_desc": "waiting to be fetched",
        "document_id": data.get("document_id")
        or (data.get("response_for") or {}).get("document_id"),
    }


RECEIVED = {"delivered": "done", "dead": "fail"}  # delivery status -> receiveStatus


def sent_item(row: dict[str, Any]) -> dict[str, Any]:
    """A getSentEdocList item: one recipient system of a package the caller sent."""
    data = orjson.loads(row["envelope"])["data"]
    sender = data.get("sender") or data.get("from") or {}
    metadata = data.get("metadata") or {}
    code = metadata.get("code") or {}
    received = RECEIVED.get(row["status"], "pending")
    delivered = row["delivered_at"]
    return {
        "senderDocId": row["id"],
        "receiverDocId": row["id"],
        "fromCode": sender.get("organ_id") or "",
        "toCode": row["destination"].partition(":")[0],
        "sendStatus": "done",
        "sendStatusDesc": "accepted by the hub",
        "receiveStatus": received,
        "receiveStatusDesc": f"delivery {row['status']} at {row['destination']}",
        "sentTime": row["received_at"].isoformat(),
        "receivedTime": delivered.isoformat() if delivered else "",
        "title": metadata.get("subject") or "",
        "notation": "/".join(p for p in (code.get("number"), code.get("notation")) if p),
        "serviceType": "eDoc",
        "messageType": "status" if row["type"] == STATUS else "edoc",
    }


def json_base64(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`{"status":"OK",...,"data":"<base64 of chunks>"}`, encoded as the chunks come."""
    yield b'{"status":"OK","ErrorCode":"0","ErrorDesc":"","data":"'
    rest = b""
    for chunk in chunks:
        rest += chunk
        if len(rest) >= B64_CHUNK:
            cut = len(rest) - len(rest) % 3
            yield base64.b64encode(rest[:cut])
            rest = rest[cut:]
    if rest:
        yield base64.b64encode(rest)
    yield b'"}'
