"""The local document axis: the national axis's operations, served by the hub to the city.

Document-management systems built for the Government Office's axis connect to
the hub with little change: the same operations, headers and answer shape,
`{"status": "OK"|"FAIL", "ErrorCode", "ErrorDesc", "DocId" | "data"}`
(ErrorCode "0" is success), with the system's Bearer key instead of the axis's
signed headers. The answer is the transport acknowledgement; the business
status of a document travels as its own status package.

- `POST sendEdoc`: the raw edXML as the body; headers `from` (the sending
  organisation), `messagetype: edoc|status`, optional `hash-file` (SHA-256 hex
  of the body, checked). The package is spooled to disk, parsed with its
  attachments streamed into the blob store, and accepted like any message; the
  answer's DocId is the message id. Recipients nobody receives for are refused
  one by one (`refused` in the answer); when none is left, nothing is stored.
- `POST getReceivedEdocList` (header `messagetype`): what waits for the caller.
- `POST getEdoc` (header `docId`): the package, base64 in `data`, streamed.
- `POST updateStatus` (headers `docId`, `status: done|fail`): the caller took it.
- `GET getAgenciesList`: the organisation directory (hub/directory.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from hub.api.auth import identify
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
from hub.store.pull import acknowledge, fetch, waiting

log = logging.getLogger(__name__)
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
        "refused": {"type": "array", "items": {"type": "object"}},
    },
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    code: {"description": what, "content": {"application/json": {"schema": AXIS_ANSWER}}}
    for code, what in (
        (200, "OK"),
        (401, "FAIL: missing or unknown key"),
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
        ("hash-file", False, "SHA-256 hex of the body, checked"),
    ),
    "requestBody": {
        "required": True,
        "content": {"application/xml": {"schema": {"type": "string", "format": "binary"}}},
    },
}


def answer(status: int = 200, **fields: Any) -> Response:
    body = {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", **fields}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def failure(exc: Exception) -> Response:
    """A refusal in the axis's shape, with the HTTP status the hub gives it elsewhere."""
    if isinstance(exc, Transient):
        status, code = 503, "UNAVAILABLE"
    else:
        assert isinstance(exc, Rejected)
        status, code = exc.status, exc.problem.upper().replace("-", "_")
    body: dict[str, Any] = {"status": "FAIL", "ErrorCode": code, "ErrorDesc": str(exc)}
    errors = getattr(exc, "errors", None)
    if errors:
        body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in errors]
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooMany) else None
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


async def guarded(work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except (Rejected, Transient) as exc:
        return failure(exc)


def caller(hub: Hub, request: Request) -> System:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    who = identify(hub, request, key.strip() if scheme.lower() == "bearer" else None)
    system = who.system if who else None
    if system is None:
        raise Unauthorized("send 'Authorization: Bearer <key>' with a document system's key")
    hub.limits.take(system.id)
    if not (system.can_send(SENT) or system.can_receive(SENT)):
        raise Forbidden(f"{system.id} does not exchange documents")
    return system


def header(request: Request, name: str, allowed: tuple[str, ...] | None = None) -> str:
    value = request.headers.get(name, "").strip()
    if not value:
        pointer = f"/headers/{name}"
        raise Invalid(f"header {name!r} is required", errors=[FieldError(pointer, "missing")])
    if allowed is not None and value not in allowed:
        raise Invalid(
            f"header {name!r} must be one of {', '.join(allowed)}, not {value!r}",
            errors=[FieldError(f"/headers/{name}", "not an allowed value")],
        )
    return value


async def spool(request: Request, directory: Path, limit: int) -> tuple[Path, str]:
    """The body written to a temp file, and its SHA-256; refused past `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the package is {declared} bytes; the limit is {limit}")
    digest, size = hashlib.sha256(), 0
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="edoc-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the package is over the limit of {limit} bytes")
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest()


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
            system = caller(hub, request)
            kind = KINDS[header(request, "messagetype", tuple(KINDS))]
            organ = header(request, "from")
            if not system.can_send(kind):
                raise Forbidden(f"{system.id} may not send {kind}")
            if not hub.directory.sends_for(system.id, organ):
                raise Forbidden(f"{system.id} does not send for organisation {organ!r}")
            path, digest = await spool(request, hub.blobs.tmp, limit)
            staging = FileBlobStore(path.with_suffix(".blobs"))
            try:
                claimed = request.headers.get("hash-file", "").strip().lower()
                if claimed and claimed != digest:
                    raise Invalid(
                        f"hash-file {claimed} is not the SHA-256 of the body ({digest})",
                        errors=[FieldError("/headers/hash-file", "does not match the body")],
                    )
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
            trace = request.headers.get("traceparent")
            message = hub.ingest.parse_event(system, event, trace, package=True)
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

        return await guarded(work)

    @router.post(
        "/getReceivedEdocList",
        openapi_extra={"parameters": _headers(("messagetype", False, "edoc (default) | status"))},
        responses=ANSWERS,
    )
    async def received_list(request: Request) -> Response:
        """The packages waiting for the calling system."""

        async def work() -> Response:
            system = caller(hub, request)
            kind = KINDS[request.headers.get("messagetype", "edoc").strip() or "edoc"]
            rows = await hub.db.read(waiting, system.id, [kind])
            return answer(data=[_listed(row, system) for row in rows])

        return await guarded(work)

    @router.post(
        "/getEdoc",
        openapi_extra={"parameters": _headers(("docId", True, "the DocId listed"))},
        responses=ANSWERS,
    )
    async def get_edoc(request: Request) -> Response:
        """One waiting package, base64 in `data` (streamed)."""

        async def work() -> Response:
            system = caller(hub, request)
            doc_id = header(request, "docid")
            envelope = await hub.db.read(fetch, system.id, doc_id)
            if envelope is None:
                raise NotFound(f"no package {doc_id!r} for {system.id}")
            event = orjson.loads(envelope)
            package = package_from_event(event["data"])
            if isinstance(package, DocumentPackage):
                await asyncio.to_thread(_check_blobs, hub.blobs, package, doc_id)
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
            system = caller(hub, request)
            doc_id = header(request, "docid")
            verdict = header(request, "status", ("done", "fail"))
            reason = request.headers.get("description", "").strip()
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

    @router.get("/getAgenciesList", responses=ANSWERS)
    async def agencies(request: Request) -> Response:
        """The organisation directory."""

        async def work() -> Response:
            caller(hub, request)
            return answer(data=[a.as_json() for a in hub.directory.agencies()])

        return await guarded(work)

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


def _check_blobs(blobs: FileBlobStore, package: DocumentPackage, doc_id: str) -> None:
    """Refuse before the answer starts, not halfway through its stream, when an
    attachment's bytes are not in the blob store (a disk lost, a row from before
    events could only name blobs the hub decoded itself)."""
    for attachment in package.attachments:
        if not blobs.exists(attachment.blob):
            log.error("package %s: attachment %s has no blob", doc_id, attachment.content_id)
            raise Rejected(
                f"package {doc_id!r}: the bytes of attachment {attachment.content_id!r} "
                "are not in the hub's blob store; report it with updateStatus fail"
            )


def _listed(row: dict[str, Any], system: System) -> dict[str, Any]:
    data = orjson.loads(row["envelope"])["data"]
    sender = data.get("sender") or data.get("from") or {}
    return {
        "docId": row["id"],
        "from": sender.get("organ_id"),
        "to": system.organ,
        "document_id": data.get("document_id")
        or (data.get("response_for") or {}).get("document_id"),
        "status": "waiting",
        "created_time": row["created_at"].isoformat(),
        "updated_time": row["updated_at"].isoformat(),
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
