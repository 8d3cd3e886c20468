"""The FastAPI application of a hub process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from hub import __version__, audit, console
from hub.api import problems
from hub.api.auth import Caller, authenticate
from hub.api.documents import documents_router
from hub.api.edoc import document_router
from hub.api.limits import BodyLimits
from hub.api.native import native_router
from hub.api.systems import systems_router
from hub.console import REPLAY_LIMIT
from hub.console.masking import masked, masked_errors, masked_strings
from hub.errors import Conflict, FieldError, NotFound, TooLarge, Transient
from hub.runtime import Hub, Role
from hub.store import inspect
from hub.store.inspect import MESSAGE_STATUSES, MessageFilter
from hub.tasks.api import tasks_router
from hub.validation import ENVELOPE_SCHEMA

Auth = Annotated[Caller, Depends(authenticate)]
ENVELOPE = json.loads(ENVELOPE_SCHEMA.read_text("utf-8"))
ENVELOPE.pop("$schema", None)
SEND_MESSAGE_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/cloudevents+json": {"schema": ENVELOPE},
            "application/json": {"schema": ENVELOPE},
        },
    },
}
PROBLEM = {
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Stored; routed and delivered from here on",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {"id": {"type": "string"}, "status": {"const": "accepted"}},
                }
            }
        },
    },
    401: {"description": "Missing or unknown key", **PROBLEM},
    403: {"description": "Not the caller's source, or type not granted", **PROBLEM},
    409: {"description": "The id was accepted before with other content", **PROBLEM},
    413: {"description": "Body over the size limit", **PROBLEM},
    422: {"description": "Invalid envelope or payload", **PROBLEM},
}
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "detail"],
                "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class DeadLetterFilter(BaseModel):
    """Which dead letters to replay; every field given must match."""

    model_config = ConfigDict(extra="forbid")
    destination: str | None = Field(default=None, max_length=128)
    type: str | None = Field(default=None, max_length=128)
    source: str | None = Field(default=None, max_length=128)


MAX_ID = 2**63 - 1  # the largest row id a store holds (a larger cursor is refused, 422)
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_app(hub: Hub, role: Role = "all") -> FastAPI:
    """The API of `hub`; its lifespan starts and stops the hub's tasks for `role`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start(role)
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(title="LGSP Hub", version=__version__, lifespan=lifespan)
    app.state.hub = hub
    problems.install(app)
    app.add_middleware(BodyLimits, hub=hub)
    app.include_router(document_router(hub))
    app.include_router(documents_router(hub))
    app.include_router(native_router(hub, read_body))
    app.include_router(systems_router(hub))
    if hub.platform is not None:
        app.include_router(tasks_router(hub, hub.platform))
    console.install(app, hub)

    @app.post(
        "/api/v1/messages",
        status_code=202,
        tags=["messages"],
        openapi_extra=SEND_MESSAGE_DOC,
        responses=PROBLEM_RESPONSES,
    )
    async def send_message(request: Request, caller: Auth) -> Response:
        """Accept a CloudEvent from a registered system; 202 once it is stored."""
        system = caller.require_system()
        raw = await read_body(request, hub.settings.max_body_bytes)
        message = hub.ingest.parse(system, raw, request.headers.get("traceparent"))
        await hub.ingest.accept(message)
        return Response(
            orjson.dumps({"id": message.id, "status": "accepted"}),
            status_code=202,
            media_type="application/json",
            headers={"Location": f"/api/v1/messages/{message.id}"},
        )

    @app.get("/api/v1/messages/{message_id}", tags=["messages"])
    async def get_message(
        message_id: str,
        caller: Auth,
        source: Annotated[
            str | None,
            Query(max_length=128, description="the sending system, when several used the id"),
        ] = None,
    ) -> dict[str, Any]:
        """A message's status, its deliveries and its trace.

        `message_id` is the event's id, or the hub's key of a message (`id` in
        answers; it differs from the event's id when another source held that id
        first). Ids are unique per source: a system reads its own event; an
        operator reads the event of any source, and when several sources used the
        id gets 409 naming them, to ask again with `source`.
        """
        own = caller.system.id if caller.system else source
        keys = await hub.db.read(inspect.message_keys, message_id, own)
        if len(keys) > 1:
            sources = ", ".join(s for _, s in keys)
            raise Conflict(
                f"id {message_id!r} was used by {len(keys)} sources ({sources}): "
                "ask again with ?source=",
                errors=[FieldError("/source", "needed: several sources used the id")],
            )
        found = await hub.db.read(inspect.get_message, keys[0][0]) if keys else None
        if found is None:
            raise NotFound(f"no message {message_id!r} visible to {caller.name}")
        if caller.operator and not caller.operator.may("operator"):
            # A viewer: personal data hidden, in the payload and in the errors'
            # free text (a destination's answer may quote the payload).
            found = masked_errors({**found, "envelope": masked(found["envelope"])})
        return found

    @app.get("/api/v1/messages", tags=["messages"])
    async def list_messages(
        caller: Auth,
        correlationid: str | None = None,
        type: str | None = None,
        source: str | None = None,
        status: Annotated[
            str | None, Query(pattern="^(" + "|".join(MESSAGE_STATUSES) + ")$")
        ] = None,
        destination: str | None = None,
        since: Annotated[datetime | None, Query(description="received at or after")] = None,
        until: Annotated[datetime | None, Query(description="received before")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> dict[str, Any]:
        """Messages newest first; a system sees the ones it sent, an operator all.

        `destination`: messages with a delivery to that system; `since`/`until`:
        a window on the time received (ISO 8601; without an offset, UTC).
        """
        own = caller.system.id if caller.system else None
        items, next_cursor = await hub.db.read(
            inspect.list_messages,
            MessageFilter(
                correlationid, type, source, status, destination, _utc(since), _utc(until)
            ),
            limit=limit,
            before=cursor,
            source_only=own,
        )
        return {"items": items, "next_cursor": next_cursor}

    @app.get("/api/v1/dead-letters", tags=["dead letters"])
    async def list_dead_letters(
        caller: Auth,
        destination: str | None = None,
        type: str | None = None,
        source: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> dict[str, Any]:
        operator = caller.require_operator("viewer")
        items, next_cursor = await hub.db.read(
            inspect.list_dead_letters,
            destination=destination,
            type=type,
            source=source,
            limit=limit,
            before=cursor,
        )
        if not operator.may("operator"):
            items = masked_errors(items)
        return {"items": items, "next_cursor": next_cursor}

    @app.post("/api/v1/dead-letters/replay", tags=["dead letters"])
    async def replay_matching(body: DeadLetterFilter, caller: Auth) -> dict[str, Any]:
        """Replay every dead letter the filter matches (at most 10,000 per call), oldest
        first; each replay is audited, and the call itself with its filter and count."""
        operator = caller.require_operator("operator")
        matched, done = await hub.db.run(
            inspect.replay_matching,
            destination=body.destination,
            type=body.type,
            source=body.source,
            by=f"operator:{operator.name}",
            limit=REPLAY_LIMIT,
        )
        return {"matched": matched, "replayed": done, "more": matched == REPLAY_LIMIT}

    @app.get("/api/v1/audit", tags=["audit"])
    async def audit_trail(
        caller: Auth,
        actor: str | None = None,
        action: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> dict[str, Any]:
        """The audit trail, newest first (operators)."""
        operator = caller.require_operator("viewer")
        items, next_cursor = await hub.db.read(
            audit.entries, actor=actor, action=action, limit=limit, before=cursor
        )
        if not operator.may("operator"):  # dead letters' reasons quote destinations
            items = [{**e, "detail": masked_strings(e["detail"])} for e in items]
        return {"items": items, "next_cursor": next_cursor}

    @app.get("/api/v1/dead-letters/{delivery_id}", tags=["dead letters"])
    async def get_dead_letter(delivery_id: RowId, caller: Auth) -> dict[str, Any]:
        operator = caller.require_operator("viewer")
        found = await hub.db.read(inspect.get_dead_letter, delivery_id)
        if found is None:
            raise NotFound(f"no dead letter {delivery_id}")
        return found if operator.may("operator") else masked_errors(found)

    @app.post("/api/v1/dead-letters/{delivery_id}/replay", tags=["dead letters"])
    async def replay(delivery_id: RowId, caller: Auth) -> dict[str, Any]:
        """Try a dead delivery again now, with a fresh set of tries."""
        operator = caller.require_operator("operator")
        if not await hub.db.run(inspect.replay, delivery_id, by=f"operator:{operator.name}"):
            raise NotFound(f"no dead letter {delivery_id}")
        return {"id": delivery_id, "status": "retrying"}

    @app.delete("/api/v1/dead-letters/{delivery_id}", tags=["dead letters"])
    async def discard(delivery_id: RowId, caller: Auth) -> dict[str, Any]:
        """Give a dead delivery up for good (kept in the store as discarded)."""
        operator = caller.require_operator("operator")
        if not await hub.db.run(inspect.discard, delivery_id, by=f"operator:{operator.name}"):
            raise NotFound(f"no dead letter {delivery_id}")
        return {"id": delivery_id, "status": "discarded"}

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """The hub's metrics in Prometheus text format (docs/OPERATIONS.md).

        No key needed, like /healthz: Prometheus scrapes it, and it shows counts by
        system, type and route, never a message's content. Keep it off public networks.
        """
        body = await asyncio.to_thread(hub.metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", tags=["health"])
    async def readyz() -> dict[str, str]:
        try:
            await asyncio.to_thread(hub.db.check)
        except Exception as exc:
            raise Transient(f"database unreachable: {type(exc).__name__}") from exc
        await hub.transport.check()
        return {"status": "ready"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
