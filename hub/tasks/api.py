"""The task platform's API for officials and operators, under /api/v1/tasks.

Who calls (this iteration, before officials sign in themselves): a system key, with
the official named in headers; operators read.

- `X-Official: <person id>` and `X-Unit: <unit code>` say who acts; `X-Official-Name`
  (percent-encoded UTF-8) gives their name, which a report sent to the office needs
  unless the task already knows it.
- The task platform's own system (kind `task_platform`, its front end) speaks for
  any unit; another system only for units of its organisation (X-Unit equal to its
  organisation code). An operator is not an official: operators read every task
  (role `viewer`) but never act as an official (403).
- The dashboard, the flags and the units are for operators and the platform's system;
  editing units needs role `operator`.
- Order of the answers on a task: 401 (key), 403 (the key may not speak for X-Unit,
  or is an operator's), 422 (a body of the wrong shape: it says nothing of any task),
  404 (a task the official may not see, exactly as for one that does not exist), 403
  (seen but not theirs to act on), then 409/422 (the task's own rules).
- Every action taken for an official is in the audit trail (actor: the system).

Errors are hub.errors, which the app renders as problem+json.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Protocol
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic import BaseModel, Field

from hub.api.auth import Caller, authenticate
from hub.config import HubConfig
from hub.envelope import nfc
from hub.errors import Forbidden, Invalid, NotFound
from hub.store.db import Database
from hub.tasks import onward, queries, work
from hub.tasks.apply import held
from hub.tasks.connector import TaskPlatformConnector, platform_for
from hub.tasks.onward import Assignee
from hub.tasks.queries import TaskFilter
from hub.tasks.status import STATUSES, Platform
from hub.tasks.work import Actor, Unit, within

Auth = Annotated[Caller, Depends(authenticate)]
Official = Annotated[str | None, Header(alias="X-Official", max_length=200)]
UnitHeader = Annotated[str | None, Header(alias="X-Unit", max_length=100)]
OfficialName = Annotated[str | None, Header(alias="X-Official-Name", max_length=1500)]


async def acting(
    caller: Auth,
    official: Official = None,
    unit: UnitHeader = None,
    name: OfficialName = None,
) -> Actor:
    """The official acting (X-Official, X-Unit), checked against the caller's key."""
    if caller.operator is not None:
        raise Forbidden(
            f"operator {caller.operator.name} is not an official: an official acts through the "
            "task platform's key or their organisation's system key"
        )
    if not official or not unit:
        raise Invalid("send X-Official (person id) and X-Unit (unit code) to act")
    speak_for(caller, unit, write=True)
    system = caller.require_system()
    return Actor(official, unit, nfc(unquote(name)) if name else None, via=system.id)


Acting = Annotated[Actor, Depends(acting)]
Limit = Annotated[int, Query(ge=1, le=500)]
TaskId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class HubLike(Protocol):
    """What the router needs of the hub: its database and config."""

    db: Database
    config: HubConfig


class Attachment(BaseModel):
    name: str = Field(min_length=1, max_length=500)
    url: str = Field(min_length=1, max_length=2000)
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    content_type: str | None = Field(default=None, max_length=200)


class ProgressIn(BaseModel):
    percent: int = Field(ge=0, le=100)
    text: str = Field(min_length=1, max_length=20000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)


class CompleteIn(BaseModel):
    summary: str = Field(min_length=1, max_length=20000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)


class Member(BaseModel):
    person: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=500)


class AssigneeIn(BaseModel):
    unit: str | None = Field(default=None, min_length=1, max_length=100)
    person: str | None = Field(default=None, min_length=1, max_length=200)
    person_name: str | None = Field(default=None, max_length=500)
    work_group: str | None = Field(default=None, max_length=500)
    members: list[Member] = Field(default_factory=list, max_length=200)
    note: str | None = Field(default=None, max_length=20000)

    def assignee(self) -> Assignee:
        v = nfc(self.model_dump())
        members = tuple((m["person"], m["name"]) for m in v["members"])
        return Assignee(v["unit"], v["person"], v["person_name"], v["work_group"], members)


class AssignIn(AssigneeIn):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    deadline: date | None = None


class InstantIn(AssigneeIn):
    title: str = Field(min_length=1, max_length=500)
    deadline: date | None = None


class ReminderIn(BaseModel):
    remind_on: date
    note: str | None = Field(default=None, max_length=20000)


class UnitIn(BaseModel):
    name: str | None = Field(default=None, max_length=500)
    parent: str | None = Field(default=None, max_length=100)


def tasks_router(hub: HubLike, platform: Platform | None = None) -> APIRouter:
    """The task platform's routes; without `platform`, it comes from the config's
    system of kind `task_platform`.
    """
    if platform is None:
        system = next(
            (s for s in hub.config.systems.values() if s.kind == TaskPlatformConnector.kind),
            None,
        )
        if system is None:
            raise ValueError("no system of kind task_platform in the config")
        platform = platform_for(system)
    p = platform
    router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])

    @router.get("/mine")
    async def mine(
        caller: Auth,
        official: Official = None,
        unit: UnitHeader = None,
        status: str | None = None,
        source: str | None = None,
        deadline_from: date | None = None,
        deadline_to: date | None = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        """Tasks assigned to the official in X-Official, or to a work group they are in."""
        if not official or not unit:
            raise Invalid("send X-Official (person id) and X-Unit (unit code)")
        speak_for(caller, unit, write=False)
        # A system's official sees their tasks within its organisation only, as in detail().
        own = None if overseeing(caller) else unit
        where = TaskFilter(
            official, None, _status(status), source, deadline_from, deadline_to, limit, own
        )
        return {"items": await hub.db.read(queries.list_tasks, where, p.today())}

    @router.get("")
    async def list_tasks(
        caller: Auth,
        unit_header: UnitHeader = None,
        unit: str | None = None,
        status: str | None = None,
        source: str | None = None,
        deadline_from: date | None = None,
        deadline_to: date | None = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        """A unit's tasks (X-Unit unless `unit` is given; operators may list every unit)."""
        unit = unit or unit_header
        if unit is None and caller.operator is None:
            raise Invalid("send X-Unit or ?unit= to list a unit's tasks")
        if unit is not None:
            speak_for(caller, unit, write=False)
        where = TaskFilter(None, unit, _status(status), source, deadline_from, deadline_to, limit)
        return {"items": await hub.db.read(queries.list_tasks, where, p.today())}

    @router.get("/dashboard")
    async def dashboard(
        caller: Auth,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
    ) -> dict[str, Any]:
        """Counts by status per unit and per source, overdue tasks, on-time rate per unit."""
        overseer(caller, "viewer")
        today = p.today()
        start, end = start or today.replace(day=1), end or today
        if start > end:
            raise Invalid(f"the period starts ({start}) after it ends ({end})")
        return await hub.db.read(queries.dashboard, today, start, end)

    @router.get("/flagged")
    async def flagged(caller: Auth, limit: Limit = 100) -> dict[str, Any]:
        """Directives naming units the platform does not know, and events held for a gap."""
        overseer(caller, "viewer")
        return {
            "directives": await hub.db.read(queries.flagged, limit),
            "held": await hub.db.read(held, limit),
        }

    @router.get("/units")
    async def get_units(caller: Auth) -> dict[str, Any]:
        """The unit codes the platform knows."""
        return {"items": await hub.db.read(queries.units)}

    @router.put("/units/{code}")
    async def put_unit(code: str, body: UnitIn, caller: Auth) -> dict[str, Any]:
        """Make a unit known (or rename it); flags of directives naming it are cleared."""
        by = overseer(caller, "operator")
        unit = Unit(code, nfc(body.name), body.parent)
        await hub.db.run(work.save_units, [unit], by, p)
        return {"code": code, "name": unit.name, "parent": unit.parent}

    @router.post("/instant", status_code=201)
    async def instant(
        body: InstantIn,
        who: Acting,
    ) -> dict[str, Any]:
        """Assign a task without a directive, to the unit, a sub-unit or a person."""
        task = await hub.db.run(
            onward.instant,
            p,
            who,
            body.assignee(),
            title=nfc(body.title),
            note=nfc(body.note),
            deadline=body.deadline,
        )
        return {"id": task}

    @router.get("/{task_id}")
    async def detail(
        task_id: TaskId, caller: Auth, official: Official = None, unit: UnitHeader = None
    ) -> dict[str, Any]:
        """A task with its directive, work group, onward tasks, history and reports."""
        view = await hub.db.read(queries.task_detail, task_id, p.today())
        own = caller.system is not None and (
            await hub.db.read(within, view["unit"], caller.system.organ) if view else False
        )
        if view is None or not visible(caller, view, official, unit, own):
            raise NotFound(f"no task {task_id}")  # the same whether it exists or not
        return view

    @router.post("/{task_id}/progress", status_code=201)
    async def progress(
        task_id: TaskId,
        body: ProgressIn,
        who: Acting,
    ) -> dict[str, Any]:
        """Report progress; on a directive's lead task it is sent to whoever assigned it."""
        files = [a.model_dump(exclude_none=True) for a in body.attachments]
        return await hub.db.run(
            work.report_progress, p, who, task_id, body.percent, nfc(body.text), nfc(files)
        )

    @router.post("/{task_id}/complete")
    async def complete(
        task_id: TaskId,
        body: CompleteIn,
        who: Acting,
    ) -> dict[str, Any]:
        """Complete a task; the lead task completes its directive and reports it back."""
        files = [a.model_dump(exclude_none=True) for a in body.attachments]
        return await hub.db.run(work.complete, p, who, task_id, nfc(body.summary), nfc(files))

    @router.post("/{task_id}/assign", status_code=201)
    async def assign(
        task_id: TaskId,
        body: AssignIn,
        who: Acting,
    ) -> dict[str, Any]:
        """Assign part of a task onward: to a sub-unit, a person, a work group."""
        task = await hub.db.run(
            onward.assign,
            p,
            who,
            task_id,
            body.assignee(),
            title=nfc(body.title),
            note=nfc(body.note),
            deadline=body.deadline,
        )
        return {"id": task}

    @router.post("/{task_id}/reassign")
    async def reassign(
        task_id: TaskId,
        body: AssigneeIn,
        who: Acting,
    ) -> dict[str, Any]:
        """Give an onward or instant task to another unit or person (whoever assigned it)."""
        await hub.db.run(onward.reassign, p, who, task_id, body.assignee(), nfc(body.note))
        return {"id": task_id}

    @router.post("/{task_id}/reminders", status_code=201)
    async def remind_me(
        task_id: TaskId,
        body: ReminderIn,
        who: Acting,
    ) -> dict[str, Any]:
        """A reminder the official sets for themself on a task, for a day."""
        rid = await hub.db.run(
            onward.add_personal_reminder, p, who, task_id, body.remind_on, nfc(body.note)
        )
        return {"id": rid, "remind_on": body.remind_on.isoformat()}

    return router


def speak_for(caller: Caller, unit: str, *, write: bool) -> None:
    """Raise Forbidden unless the caller may act (or read) for `unit`."""
    if caller.operator is not None:
        caller.require_operator("operator" if write else "viewer")
        return
    system = caller.require_system()
    if system.kind != TaskPlatformConnector.kind and system.organ != unit:
        raise Forbidden(f"{system.id} may act only for its own organisation {system.organ}")


def overseeing(caller: Caller) -> bool:
    """Operators and the platform's own system see every unit's tasks."""
    if caller.operator is not None:
        return True
    return caller.require_system().kind == TaskPlatformConnector.kind


def overseer(caller: Caller, role: str) -> str:
    """An operator of `role`, or the platform's own system; returns who, for the record."""
    if caller.system is not None and caller.system.kind == TaskPlatformConnector.kind:
        return caller.system.id
    return f"operator:{caller.require_operator(role).name}"


def visible(
    caller: Caller, view: dict[str, Any], official: str | None, unit: str | None, own: bool
) -> bool:
    """Operators and the platform see every task; others the tasks of their unit, or of
    their person when the task's unit is within the caller's organisation (`own`)."""
    if caller.operator is not None:
        return True
    system = caller.require_system()
    if system.kind == TaskPlatformConnector.kind:
        return True
    units = {view["unit"], view["assigned_by_unit"]}
    people = {view["person"], *(m["person"] for m in view["members"])}
    return system.organ in units or (
        own and official is not None and unit == system.organ and official in people
    )


def _status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise Invalid(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    return status
