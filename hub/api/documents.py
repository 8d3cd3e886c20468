"""Documents and the organisation directory, as operators and document systems see them.

- `GET /api/v1/documents/{document_id}`: a document's state per recipient and its
  history (hub/documents/); operators, and the systems of its sender and
  recipients. The DocumentId holds slashes (`000.00.00.G22,2015/09/30,7816/VPCP`):
  it is the rest of the path, percent-encoded or not.
- `GET /api/v1/documents?flagged=true`: transitions and references recorded but
  not applied (operators).
- `GET /api/v1/directory`: organisation code -> receiving system (anyone
  authenticated); `PUT` and `DELETE /api/v1/directory/{organ_id}` (admin).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from hub.api.auth import Caller, authenticate
from hub.directory import Agency, delete_entry, save_entry
from hub.documents import document_view, flagged
from hub.errors import FieldError, Forbidden, Invalid, NotFound
from hub.runtime import Hub

Auth = Annotated[Caller, Depends(authenticate)]
ORGAN = r"^[A-Z0-9]{2,3}(\.[A-Z0-9]{2,3}){1,2}\.[A-Z][0-9]{2}$"


class DirectoryEntry(BaseModel):
    system_id: str = Field(description="the system that receives for the organisation")
    name: str = Field(min_length=1, max_length=500, description="the organisation's name")


def documents_router(hub: Hub) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["documents"])

    @router.get("/documents/{document_id:path}")
    async def get_document(document_id: str, caller: Auth) -> dict[str, Any]:
        """A document's state per recipient, its history and its flags."""
        view = await hub.db.read(document_view, document_id)
        if view is None or not _may_see(caller, view):
            raise NotFound(f"no document {document_id!r} visible to {caller.name}")
        return view

    @router.get("/documents")
    async def list_flagged(
        caller: Auth, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> dict[str, Any]:
        """Events recorded but not applied: out of order, impossible, or unknown documents."""
        caller.require_operator("viewer")
        return {"items": await hub.db.read(flagged, limit)}

    @router.get("/directory", tags=["directory"])
    async def get_directory(caller: Auth) -> dict[str, Any]:
        """Every organisation the hub knows by name, and the system receiving for it."""
        return {
            "items": [a.as_json() for a in hub.directory.agencies()],
            "national_axis": hub.directory.axis,
            "city": hub.directory.city,
        }

    @router.put("/directory/{organ_id}", tags=["directory"])
    async def put_entry(organ_id: str, entry: DirectoryEntry, caller: Auth) -> dict[str, Any]:
        """Make `organ_id` received by a system (admin)."""
        operator = caller.require_operator("admin")
        if not _organ(organ_id):
            raise Invalid(
                f"{organ_id!r} is not an organisation code like 000.00.12.H29",
                errors=[FieldError("/organ_id", "not an organisation code")],
            )
        system = hub.config.systems.get(entry.system_id)
        if system is None or not system.may_receive:
            raise Invalid(
                f"{entry.system_id!r} is not a configured system that receives",
                errors=[FieldError("/system_id", "unknown or receives nothing")],
            )
        agency = Agency(organ_id, entry.name, system.id, "api")
        await hub.db.run(save_entry, agency, f"operator:{operator.name}")
        await hub.reload_directory()
        return agency.as_json()

    @router.delete("/directory/{organ_id}", tags=["directory"], status_code=204)
    async def delete(organ_id: str, caller: Auth) -> None:
        """Remove an entry made through the API (admin); the config's stay."""
        operator = caller.require_operator("admin")
        if not await hub.db.run(delete_entry, organ_id, f"operator:{operator.name}"):
            raise NotFound(f"no directory entry {organ_id!r} made through the API")
        await hub.reload_directory()

    return router


def _organ(code: str) -> bool:
    return re.fullmatch(ORGAN, code) is not None


def _may_see(caller: Caller, view: dict[str, Any]) -> bool:
    if caller.operator is not None:
        return True
    if caller.system is None:
        raise Forbidden("only operators and the document's systems may see it")
    organs = {view.get("sender")} | {r.get("organ_id") for r in view.get("recipients", [])}
    return caller.system.organ in organs
