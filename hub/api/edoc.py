"""The local document axis: the national axis's operations, served by the hub to the city.

Document-management systems built for the Government Office's axis connect to
the hub unchanged: the same operations, headers and answer shape,
`{"status": "OK"|"FAIL", "ErrorCode", "ErrorDesc", "DocId" | "data" | "count"}`
(ErrorCode "0" is success). A caller is either the Government Office's SDK,
signing as it does (`XroadVnpt-*` headers, checked by hub/api/auth.py's
`identify_signed`; its parameters are then read from the signed headers only),
or a system with its Bearer key and plain headers (`from`, `messagetype`...).
The answer is the transport acknowledgement; the business status of a
document travels as its own status package.

- `POST sendEdoc`: the raw edXML as the body (the SDK's: the file, then CRLF);
  headers `from` (the sending organisation), `messagetype: edoc|status`,
  `hash-file` (SHA-256 of the file, hex; required when signed; the SDK's
  per-byte spelling is accepted). The package is spooled to disk, parsed with
  its attachments streamed into the blob store, and accepted like any message;
  the answer's DocId is the message id (`""` on a refusal). Recipients nobody
  receives for are refused one by one (`refused` in the answer); when none is
  left, nothing is stored. The SDK's `to` header is not read: the package's
  `To` decides.
- `POST getReceivedEdocList` (header `messagetype`): what waits for the caller.
- `POST getSentEdocList`: per recipient system of what the caller sent (newest
  500 packages), the reference's fields (`senderDocId`, `toCode`, `receiveStatus`...).
- `POST getEdoc` (header `docId`): the package, base64 in `data`, streamed.
- `POST updateStatus` (headers `docId`, `status: done|fail`): the caller took it.
- `GET|POST countReceiveEdoc`, `countReceiveStatus`: how many wait (`count`).
- `GET|POST getAgenciesList`: the organisation directory (hub/directory.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from hub.api.auth import identify, identify_signed
from hub.config import System
from hub.connectors.edxml import (
    SENT,
    STATUS,
    FileBlobStore,
    build,
    event_data,
    package_from_event,
    parse,
)
from hub.connectors.edxml.model import DocumentPackage, StatusPackage
from hub.connectors.xroad import hash_file_forms, signed_request
from hub.errors import (
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    Rejected,
    TooLarge,
    TooMany,
    Transient,
    Unauthorized,
)
from hub.runtime import Hub
from hub.store.pull import acknowledge, count_waiting, fetch, sent, waiting

KINDS = {"edoc": SENT, "status": STATUS}
B64_CHUNK = 3 * 65536  # bytes encoded at a time: a multiple of 3, so no padding mid-stream


def _headers(*names: tuple[str, bool, str]) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "header", "required": r, "schema": {"type": "string"}, "description": d}
        for n, r, d in names
    ]


AXIS_ANSWER = {
    "type": "object",
    "required": ["status", "ErrorCode", "ErrorDesc"],
    "properties": {
        "status": {"enum": ["OK", "FAIL"]},
        "ErrorCode": {"type": "string", "description": '"0" on success'},
        "ErrorDesc": {"type": "string"},
        "DocId": {"type": "string"},
        "data": {},
        "count": {"type": "integer", "minimum": 0},
        "refused": {"type": "array", "items": {"type": "object"}},
    },
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    code: {"description": what, "content": {"application/json": {"schema": AXIS_ANSWER}}}
    for code, what in (
        (200, "OK"),
        (401, "FAIL: missing or unknown key, or a signature refused (the reason)"),
        (403, "FAIL: not the caller's organisation or type"),
        (404, "FAIL: no such package for the caller"),
        (413, "FAIL: over HUB_MAX_DOCUMENT_BYTES"),
        (422, "FAIL: invalid or hostile package, bad header, no recipient left"),
    )
}
SEND_DOC: dict[str, Any] = {
    "parameters": _headers(
        ("from", True, "the sending organisation's code; the package's From"),
        ("messagetype", True, "edoc | status"),
        ("hash-file", False, "SHA-256 hex of the body, checked (required when signed)"),
    ),
    "requestBody": {
        "required": True,
        "content": {"application/xml": {"schema": {"type": "string", "format": "binary"}}},
    },
}


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


def sender_organ(package: DocumentPackage | StatusPackage) -> str:
    if isinstance(package, StatusPackage):
        return package.from_.organ_id
    return package.header.from_.organ_id


def document_router(hub: Hub) -> APIRouter:
    """The `/api/v1/edoc/` operations of `hub`."""
    router = APIRouter(prefix="/api/v1/edoc", tags=["document axis"])
    limit = hub.settings.max_document_bytes

    @router.post("/sendEdoc", openapi_extra=SEND_DOC, responses=ANSWERS)
    async def send_edoc(request: Request) -> Response:
        """Send a document or status package (raw edXML body)."""

        async def work() -> Response:
            system, params = caller(hub, request)
            kind = KINDS[header(params, "messagetype", tuple(KINDS))]
            organ = header(params, "from")
            servicetype = params.get("servicetype").strip()
            if servicetype and servicetype != "eDoc":
                raise Invalid(
                    f"header 'servicetype' must be eDoc, not {servicetype!r}",
                    errors=[FieldError("/headers/servicetype", "not an allowed value")],
                )
            claimed = header(params, "hash-file") if params.is_signed else params.get("hash-file")
            if not system.can_send(kind):
                raise Forbidden(f"{system.id} may not send {kind}")
            if not hub.directory.sends_for(system.id, organ):
                raise Forbidden(f"{system.id} does not send for organisation {organ!r}")
            body = await spool(request, hub.blobs.tmp, limit)
            path = body.path
            staging = FileBlobStore(path.with_suffix(".blobs"))
            try:
                if claimed.strip():
                    body.check(claimed)
                package = await asyncio.to_thread(_parse_file, path, staging, limit)
                path.unlink()
                return await accept(system, kind, organ, package, staging)
            finally:
                path.unlink(missing_ok=True)
                shutil.rmtree(staging.directory, ignore_errors=True)

        async def accept(
            system: System,
            kind: str,
            organ: str,
            package: DocumentPackage | StatusPackage,
            staging: FileBlobStore,
        ) -> Response:
            found, data = event_data(package)
            if found != kind:
                raise Invalid(
                    f"messagetype says {kind} but the body is a {found} package",
                    errors=[FieldError("/headers/messagetype", "does not match the package")],
                )
            if sender_organ(package) != organ:
                found_from = sender_organ(package)
                raise Forbidden(f"the package is from {found_from!r}; header 'from' says {organ!r}")
            event = {
                "specversion": "1.0",
                "id": uuid.uuid4().hex,
                "source": system.id,
                "type": kind,
                "time": datetime.now(UTC).isoformat(),
                "datacontenttype": "application/json",
                "data": data,
            }
            message = hub.ingest.parse_event(system, event, request.headers.get("traceparent"))
            assert message.plan is not None
            refused = [
                {"organ_id": h.destination, "reason": h.detail}
                for h in message.plan.hops
                if h.stage == "refused"
            ]
            if not message.plan.destinations:
                reasons = "; ".join(str(r["reason"]) for r in refused) or "no route matches"
                raise Rejected(f"no recipient can receive this package: {reasons}")
            if isinstance(package, DocumentPackage):  # attachments join the store: it is kept
                await asyncio.to_thread(_adopt, staging, hub.blobs, package)
            await hub.ingest.accept(message)
            desc = "; ".join(f"{r['organ_id']}: {r['reason']}" for r in refused)
            return answer(DocId=message.id, ErrorDesc=desc, refused=refused)

        return await guarded(work, DocId="")

    @router.post(
        "/getReceivedEdocList",
        openapi_extra={"parameters": _headers(("messagetype", False, "edoc (default) | status"))},
        responses=ANSWERS,
    )
    async def received_list(request: Request) -> Response:
        """The packages waiting for the calling system."""

        async def work() -> Response:
            system, params = caller(hub, request)
            kind = KINDS[_messagetype(params)]
            rows = await hub.db.read(waiting, system.id, [kind])
            return answer(data=[_listed(row, system) for row in rows])

        return await guarded(work)

    @router.post("/getSentEdocList", responses=ANSWERS)
    async def sent_list(request: Request) -> Response:
        """Per recipient of what the caller sent: the transport status of each."""

        async def work() -> Response:
            system, _ = caller(hub, request)
            rows = await hub.db.read(sent, system.id, [SENT, STATUS])
            return answer(data=[_sent_item(row) for row in rows])

        return await guarded(work)

    async def count(request: Request, kind: str) -> Response:
        async def work() -> Response:
            system, _ = caller(hub, request)
            return answer(count=await hub.db.read(count_waiting, system.id, [kind]))

        return await guarded(work)

    async def count_edoc(request: Request) -> Response:
        """How many document packages wait for the caller (`count`)."""
        return await count(request, SENT)

    async def count_status(request: Request) -> Response:
        """How many status packages wait for the caller (`count`)."""
        return await count(request, STATUS)

    # The SDK sends these with its POST helper although they are GET operations: both serve.
    for path, handler in (("/countReceiveEdoc", count_edoc), ("/countReceiveStatus", count_status)):
        for method in ("GET", "POST"):
            router.add_api_route(
                path,
                handler,
                methods=[method],
                responses=ANSWERS,
                operation_id=f"{path[1:]}_{method.lower()}",
            )

    @router.post(
        "/getEdoc",
        openapi_extra={"parameters": _headers(("docId", True, "the DocId listed"))},
        responses=ANSWERS,
    )
    async def get_edoc(request: Request) -> Response:
        """One waiting package, base64 in `data` (streamed)."""

        async def work() -> Response:
            system, params = caller(hub, request)
            doc_id = header(params, "docid")
            envelope = await hub.db.read(fetch, system.id, doc_id)
            if envelope is None:
                raise NotFound(f"no package {doc_id!r} for {system.id}")
            event = orjson.loads(envelope)
            package = package_from_event(event["data"])
            chunks = _json_base64(build(package, hub.blobs))
            return StreamingResponse(chunks, media_type="application/json")

        return await guarded(work)

    @router.post(
        "/updateStatus",
        openapi_extra={
            "parameters": _headers(
                ("docId", True, "the DocId fetched"),
                ("status", True, "done | fail"),
                ("description", False, "why, with fail"),
            )
        },
        responses=ANSWERS,
    )
    async def update_status(request: Request) -> Response:
        """The caller took a package (`done`) or could not (`fail`)."""

        async def work() -> Response:
            system, params = caller(hub, request)
            doc_id = header(params, "docid")
            verdict = header(params, "status", ("done", "fail"))
            reason = params.get("description").strip()
            ok = verdict == "done"
            detail = (
                f"{system.id} fetched it"
                if ok
                else f"{system.id} reported fail: {reason or 'no reason given'}"
            )
            found = await hub.db.run(acknowledge, system.id, doc_id, ok=ok, detail=detail)
            if found is None:
                raise NotFound(f"no package {doc_id!r} for {system.id}")
            if found.changed:
                hub.metrics.confirmed(system.id, found.status, found.accepted_at)
            return answer(DocId=doc_id, data={"delivery": found.status})

        return await guarded(work)

    async def agencies(request: Request) -> Response:
        """The organisation directory."""

        async def work() -> Response:
            caller(hub, request)
            return answer(data=[a.as_json() for a in hub.directory.agencies()])

        return await guarded(work)

    router.add_api_route("/getAgenciesList", agencies, methods=["GET"], responses=ANSWERS)
    router.add_api_route(
        "/getAgenciesList",
        agencies,
        methods=["POST"],
        responses=ANSWERS,
        operation_id="getAgenciesList_post",
    )

    return router


def _parse_file(path: Path, blobs: FileBlobStore, limit: int) -> DocumentPackage | StatusPackage:
    with path.open("rb") as source:
        return parse(source, blobs, max_bytes=limit)


def _adopt(staging: FileBlobStore, blobs: FileBlobStore, package: DocumentPackage) -> None:
    """Move a request's attachments into the hub's blob store (a rename on one disk).

    Until then they live in the request's own staging store, removed after the
    answer: a refused package leaves nothing behind.
    """
    for attachment in package.attachments:
        target = blobs.path(attachment.blob)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging.path(attachment.blob), target)


def _messagetype(params: Params) -> str:
    """getReceivedEdocList's `messagetype`: edoc (the default) or status. Raises Invalid."""
    value = params.get("messagetype").strip() or "edoc"
    if value not in KINDS:
        raise Invalid(
            f"header 'messagetype' must be one of {', '.join(KINDS)}, not {value!r}",
            errors=[FieldError("/headers/messagetype", "not an allowed value")],
        )
    return value


def _listed(row: dict[str, Any], system: System) -> dict[str, Any]:
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


def _sent_item(row: dict[str, Any]) -> dict[str, Any]:
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


def _json_base64(chunks: Iterator[bytes]) -> Iterator[bytes]:
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
