"""What officials do with tasks: report progress and complete them; the units known.

Every function takes the engine first (for `Database.run`), does its work in one
transaction and raises hub.errors: NotFound (no such task), Forbidden (not the
actor's task), Conflict (the task is closed), Invalid (bad target or date).

Who may act (the actor is an official of a unit, spoken for by a system's key):
a task assigned to a person is theirs and their work group's; a task assigned to
a unit is every official's of that unit; reassigning is for whoever assigned it.

Order of the checks, the same for every action on a task: a task the actor may not
see answers NotFound whatever the body says (the caller learns nothing of it); a
task they see but may not act on answers Forbidden; then the task's own rules
(Conflict when closed, Invalid for a deadline past the task's own or a reminder in
the past). Every action is written to the audit trail in its transaction, with the
system whose key spoke (`Actor.via`) as the actor and the official in its detail.

Progress and completion of a directive's `lead` task also write
`directive.progress.v1` / `directive.completed.v1` to the outbox in the same
transaction, under the directive's lock, so one directive's reports leave in the
order they were reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub import audit
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.tasks import events
from hub.tasks.apply import lock_directive
from hub.tasks.status import Platform, status_of
from hub.tasks.tables import (
    directives,
    progress_reports,
    task_history,
    task_members,
    task_units,
    tasks,
)


@dataclass(frozen=True)
class Actor:
    """An official acting on the platform, and the system whose key speaks for them."""

    person: str
    unit: str
    name: str | None = None
    operator: bool = False  # kept for the hub's own callers; the API never sets it
    via: str | None = None


@dataclass(frozen=True)
class Unit:
    code: str
    name: str | None = None
    parent: str | None = None


def report_progress(
    engine: sa.Engine,
    platform: Platform,
    actor: Actor,
    task_id: int,
    percent: int,
    text: str,
    attachments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Record a progress report; returns its report id and the event id (lead task only)."""
    with engine.begin() as conn:
        task, directive = acting(conn, platform, actor, task_id)
        to_office = directive is not None and task.role == "lead"
        actor = named(conn, task, actor, required=to_office)
        now, report_id = platform.now(), events.new_id()
        _report(conn, task.id, report_id, "progress", percent, text, attachments, actor, now)
        conn.execute(tasks.update().where(tasks.c.id == task.id).values(percent=percent))
        record(conn, now, task.id, actor, "progress", f"{percent}%: {text[:200]}")
        audited(conn, actor, "task.progress", task.id, percent=percent, report=report_id)
        event_id = None
        if to_office:
            data = {
                "directive_id": directive.directive_id,
                "report_id": report_id,
                "percent": percent,
                "text": text,
                "reported_at": events.iso(now),
                "unit": events.unit_ref(conn, task.unit),
                "reporter": _reporter(conn, actor),
                **({"attachments": [dict(a) for a in attachments]} if attachments else {}),
            }
            event_id = events.publish(conn, platform, events.PROGRESS, data, extra=_to(directive))
    return {"report_id": report_id, "event_id": event_id}


def complete(
    engine: sa.Engine,
    platform: Platform,
    actor: Actor,
    task_id: int,
    summary: str,
    attachments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Complete a task; the lead task completes its directive (and closes the directive's tasks)."""
    with engine.begin() as conn:
        task, directive = acting(conn, platform, actor, task_id)
        to_office = directive is not None and task.role == "lead"
        actor = named(conn, task, actor, required=to_office)
        now, today, report_id = platform.now(), platform.today(), events.new_id()
        _report(conn, task.id, report_id, "completion", 100, summary, attachments, actor, now)
        done = {"completed_at": now, "completed_on": today, "percent": 100, "updated_at": now}
        conn.execute(tasks.update().where(tasks.c.id == task.id).values(**done))
        record(conn, now, task.id, actor, "completed", summary[:200])
        audited(conn, actor, "task.complete", task.id, report=report_id)
        event_id = None
        if to_office:
            others = conn.execute(
                sa.select(tasks.c.id).where(
                    tasks.c.directive == directive.id,
                    tasks.c.completed_at.is_(None),
                    tasks.c.revoked_at.is_(None),
                )
            ).scalars()
            for other in list(others):
                conn.execute(tasks.update().where(tasks.c.id == other).values(**done))
                record(conn, now, other, actor, "closed_with_directive", None)
            conn.execute(
                directives.update()
                .where(directives.c.id == directive.id)
                .values(state="completed", completed_at=now, completed_on=today, updated_at=now)
            )
            on_time = status_of(directive.deadline, today, False, today) == "completed_on_time"
            data = {
                "directive_id": directive.directive_id,
                "completed_at": events.iso(now),
                "summary": summary,
                "unit": events.unit_ref(conn, task.unit),
                "reporter": _reporter(conn, actor),
                "on_time": on_time,
                **({"attachments": [dict(a) for a in attachments]} if attachments else {}),
            }
            event_id = events.publish(conn, platform, events.COMPLETED, data, extra=_to(directive))
    return {"report_id": report_id, "event_id": event_id}


def save_units(engine: sa.Engine, units: Sequence[Unit], by: str, platform: Platform) -> int:
    """Add or rename known units, then clear the flags of directives whose units are now known."""
    if not units:
        return 0
    with engine.begin() as conn:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        rows = [
            {
                "code": u.code,
                "name": u.name,
                "parent": u.parent,
                "updated_at": platform.now(),
                "updated_by": by,
            }
            for u in units
        ]
        stmt = insert(task_units)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["code"],
                set_={c: stmt.excluded[c] for c in ("name", "parent", "updated_at", "updated_by")},
            ),
            rows,
        )
        known = set(conn.execute(sa.select(task_units.c.code)).scalars())
        flagged = conn.execute(
            sa.select(directives.c.id, directives.c.body).where(directives.c.flagged.is_not(None))
        ).all()
        for row in flagged:
            body = orjson.loads(row.body)
            codes = [
                body["lead_unit"]["code"],
                *(u["code"] for u in body.get("coordinating_units", [])),
            ]
            unknown = [c for c in dict.fromkeys(codes) if c not in known]
            reason = f"units not known to the platform: {', '.join(unknown)}" if unknown else None
            conn.execute(
                directives.update().where(directives.c.id == row.id).values(flagged=reason)
            )
    return len(units)


def may_see(conn: sa.Connection, task: sa.Row[Any], actor: Actor) -> bool:
    """Operators, the task's unit and person, its work group, and whoever assigned it
    (a person only through their own organisation's system)."""
    if actor.operator or actor.unit in (task.unit, task.assigned_by_unit):
        return True
    if not _within(conn, task.unit, actor.unit):
        return False  # a person named in another organisation's task
    if actor.person == task.person:
        return True
    q = sa.select(task_members.c.person).where(
        task_members.c.task == task.id, task_members.c.person == actor.person
    )
    return conn.execute(q).first() is not None


def _may_act(conn: sa.Connection, task: sa.Row[Any], actor: Actor) -> bool:
    if actor.operator:
        return True
    if not _within(conn, task.unit, actor.unit):
        return False  # another organisation's task, whoever X-Official names
    if task.person is None:
        return bool(task.unit == actor.unit)
    q = sa.select(task_members.c.person).where(
        task_members.c.task == task.id, task_members.c.person == actor.person
    )
    return bool(actor.person == task.person) or conn.execute(q).first() is not None


def _within(conn: sa.Connection, unit: str, own: str) -> bool:
    """`unit` is `own` or one of its sub-units the platform knows."""
    if unit == own:
        return True
    parent = conn.execute(sa.select(task_units.c.parent).where(task_units.c.code == unit))
    return bool(parent.scalar() == own)


def within(engine: sa.Engine, unit: str, own: str) -> bool:
    with engine.connect() as conn:
        return _within(conn, unit, own)


def load_task(conn: sa.Connection, task_id: int) -> sa.Row[Any]:
    task = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).first()
    if task is None:
        raise NotFound(f"no task {task_id}")
    return task


def acting(
    conn: sa.Connection, platform: Platform, actor: Actor, task_id: int
) -> tuple[sa.Row[Any], sa.Row[Any] | None]:
    """The task and its directive (locked), checked open and the actor's to act on."""
    task = load_task(conn, task_id)
    directive = None
    if task.directive is not None:
        key = conn.execute(
            sa.select(directives.c.source, directives.c.directive_id).where(
                directives.c.id == task.directive
            )
        ).one()
        lock_directive(conn, key.source, key.directive_id)
        directive = conn.execute(
            sa.select(directives).where(directives.c.id == task.directive)
        ).one()
        task = load_task(conn, task_id)  # as it stands once the lock is ours
    if not may_see(conn, task, actor):
        raise NotFound(f"no task {task_id}")  # as if there were none
    if not _may_act(conn, task, actor):
        raise Forbidden(f"task {task_id} is not {actor.person}'s ({actor.unit}) to act on")
    still_open(task)
    return task, directive


def still_open(task: sa.Row[Any]) -> None:
    if task.revoked_at is not None:
        raise Conflict(f"task {task.id} was revoked")
    if task.completed_at is not None:
        raise Conflict(f"task {task.id} is completed")


def _report(
    conn: sa.Connection,
    task: int,
    report_id: str,
    kind: str,
    percent: int,
    text: str,
    attachments: Sequence[Mapping[str, Any]],
    actor: Actor,
    now: datetime,
) -> None:
    conn.execute(
        progress_reports.insert().values(
            report_id=report_id,
            task=task,
            kind=kind,
            percent=percent,
            text=text,
            attachments=orjson.dumps([dict(a) for a in attachments]).decode(),
            unit=actor.unit,
            reporter=actor.person,
            reported_at=now,
        )
    )


def record(
    conn: sa.Connection, at: datetime, task: int, actor: Actor, action: str, detail: str | None
) -> None:
    conn.execute(
        task_history.insert().values(
            task=task, at=at, actor=actor.person, action=action, detail=detail
        )
    )


def audited(conn: sa.Connection, actor: Actor, action: str, task: int, **detail: Any) -> None:
    """The audit entry of an action taken for an official (in the action's transaction)."""
    if actor.via is None:
        return  # the hub's own work (tests, tools), not a caller speaking for someone
    who = {"official": actor.person, "unit": actor.unit, "name": actor.name}
    audit.append(conn, actor.via, action, f"task:{task}", {**who, **detail})


def named(conn: sa.Connection, task: sa.Row[Any], actor: Actor, *, required: bool) -> Actor:
    """The actor with their name: as sent, else as the task knows them (its person or a
    member of its work group). A report that leaves for the office needs one: the
    office reads the reporter's name, never a person id."""
    if actor.name:
        return actor
    name = task.person_name if task.person == actor.person else None
    if name is None:
        name = conn.execute(
            sa.select(task_members.c.person_name).where(
                task_members.c.task == task.id, task_members.c.person == actor.person
            )
        ).scalar()
    if name:
        return Actor(actor.person, actor.unit, name, actor.operator, actor.via)
    if required:
        raise Invalid(
            f"the report on task {task.id} goes to whoever assigned its directive, who reads "
            f"the reporter's name: send X-Official-Name (percent-encoded UTF-8) for "
            f"{actor.person}",
        )
    return actor


def _reporter(conn: sa.Connection, actor: Actor) -> dict[str, Any]:
    return events.person_ref(actor.person, actor.name, events.unit_ref(conn, actor.unit))


def _to(directive: sa.Row[Any]) -> dict[str, str]:
    """Envelope attributes that send a report back to whoever assigned the directive."""
    return {
        "recipient": directive.source,
        "subject": directive.directive_id,
        "correlationid": directive.first_message_id,
    }
