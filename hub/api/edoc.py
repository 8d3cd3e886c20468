"""The local document axis: the national axis's operations, served by the hub to the city.

Document-management systems built for the Government Office's axis connect to
the hub unchanged: the same operations, headers and answer shape,
`{"status": "OK"|"FAIL", "ErrorCode", "ErrorDesc", "DocId" | "data" | "count"}`
(ErrorCode "0" is success). A caller is either the Government Office's SDK,
signing as it does (`XroadVnpt-*` headers, checked by hub/api/auth.py's
`identify_signed`; its parameters are then read from the signed headers only),
or a system with its Bearer key and plain headers (`from`, `messagetype`...):
hub/api/edoc_wire.py reads both and shapes the answers.
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
import logging
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from hub.api.edoc_wire import (
    KINDS,
    answer,
    caller,
    guarded,
    header,
    json_base64,
    listed,
    messagetype,
    sent_item,
    spool,
)
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
)
from hub.runtime import Hub
from hub.store.pull import acknowledge, count_waiting, fetch, sent, waiting

log = logging.getLogger(__name__)


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
            kind = KINDS[messagetype(params)]
            rows = await hub.db.read(waiting, system.id, [kind])
            return answer(data=[listed(row, system) for row in rows])

        return await guarded(work)

    @router.post("/getSentEdocList", responses=ANSWERS)
    async def sent_list(request: Request) -> Response:
        """Per recipient of what the caller sent: the transport status of each."""

        async def work() -> Response:
            system, _ = caller(hub, request)
            rows = await hub.db.read(sent, system.id, [SENT, STATUS])
            return answer(data=[sent_item(row) for row in rows])

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
            if isinstance(package, DocumentPackage):
                await asyncio.to_thread(_check_blobs, hub.blobs, package, doc_id)
            chunks = json_base64(build(package, hub.blobs))
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
