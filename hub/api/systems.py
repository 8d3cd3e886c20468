"""The registered systems as operators see them, and pausing delivery to one.

- `GET /api/v1/systems`: each system with its kind, rights and whether delivery
  to it is paused (who, when, why); operators.
- `POST /api/v1/systems/{id}/pause` (body `{"reason": ...}`) and `.../resume`:
  operator role. A paused system's deliveries wait, nothing is lost; resuming
  delivers them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from hub.api.auth import Caller, authenticate
from hub.errors import Conflict, NotFound
from hub.logs import redact_url
from hub.runtime import Hub
from hub.store.pauses import pause, paused, resume

Auth = Annotated[Caller, Depends(authenticate)]


class PauseIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


def systems_router(hub: Hub) -> APIRouter:
    router = APIRouter(prefix="/api/v1/systems", tags=["systems"])

    def receiving(system_id: str) -> str:
        system = hub.config.systems.get(system_id)
        if system is None or not system.may_receive:
            raise NotFound(f"no system {system_id!r} that receives messages")
        return system.id

    @router.get("")
    async def list_systems(caller: Auth) -> dict[str, Any]:
        """Every registered system, with its pause."""
        caller.require_operator("viewer")
        held = await hub.db.read(paused)
        return {
            "items": [
                {
                    "id": s.id,
                    "name": s.name,
                    "kind": s.kind,
                    "endpoint": redact_url(s.endpoint),
                    "may_send": list(s.may_send),
                    "may_receive": list(s.may_receive),
                    "paused": held.get(s.id),
                }
                for s in hub.config.systems.values()
            ]
        }

    @router.post("/{system_id}/pause")
    async def pause_system(system_id: str, body: PauseIn, caller: Auth) -> dict[str, Any]:
        """Stop delivering to a system (maintenance); its messages wait."""
        operator = caller.require_operator("operator")
        destination = receiving(system_id)
        if not await hub.db.run(pause, destination, f"operator:{operator.name}", body.reason):
            raise Conflict(f"{destination} is paused already")
        await hub.reload_pauses()
        return {"id": destination, "paused": True}

    @router.post("/{system_id}/resume")
    async def resume_system(system_id: str, caller: Auth) -> dict[str, Any]:
        """Deliver to a paused system again, the waiting messages first."""
        operator = caller.require_operator("operator")
        destination = receiving(system_id)
        if not await hub.db.run(resume, destination, f"operator:{operator.name}"):
            raise Conflict(f"{destination} is not paused")
        await hub.reload_pauses()
        return {"id": destination, "paused": False}

    return router
