"""`POST /api/v1/native`: a system sends in its own format; its connector makes the events.

For systems that push their native messages (the Government Office's task system
pushes a directive as it publishes it): the caller's connector (`decode`) turns
the body into canonical CloudEvents, which are then checked, routed and stored
exactly like those posted to `/api/v1/messages` (same rights, same schemas, the
same id stored once: a directive pushed and also pulled is stored once).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from hub.api.auth import Caller, authenticate
from hub.nesting import check_json_depth
from hub.runtime import Hub

Auth = Annotated[Caller, Depends(authenticate)]


def native_router(hub: Hub, read_body: Any) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["messages"])

    @router.post("/native", status_code=202)
    async def send_native(request: Request, caller: Auth) -> dict[str, Any]:
        """A body in the calling system's own format; 202 with the ids once stored."""
        system = caller.require_system()
        raw = await read_body(request, hub.settings.max_body_bytes)
        check_json_depth(raw)  # before the connector's decode walks it
        events = hub.connector(system).decode(raw, sender=system)
        trace = request.headers.get("traceparent")
        messages = [hub.ingest.parse_event(system, event, trace) for event in events]
        outcomes = [await hub.ingest.accept(m) for m in messages]
        return {
            "items": [
                {"id": m.id, "type": m.type, "status": "accepted", "new": o == "new"}
                for m, o in zip(messages, outcomes, strict=True)
            ]
        }

    return router
