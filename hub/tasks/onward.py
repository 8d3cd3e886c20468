"""Onward assignment: a lead unit's sub-units and people, work groups, instant tasks.

- `assign`: part of a task to a sub-unit the platform knows (`task_units.parent`) or to
  a person of the unit, optionally as a work group; its deadline may not pass the
  task's own.
- `instant`: a task without a directive ("giao việc nhanh"), from an official to their
  unit, a sub-unit or a person.
- `reassign`: an onward or instant task to another unit or person, by whoever assigned it.
- `add_personal_reminder`: a reminder an official sets for themself on a task they see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from hub.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from hub.tasks.status import Platform
from hub.tasks.tables import personal_reminders, task_members, task_units, tasks
from hub.tasks.work import Actor, acting, audited, load_task, may_see, record, still_open


@dataclass(frozen=True)
class Assignee:
    """Who a task goes to: a unit, and within it a person, optionally with a work group."""

    unit: str | None = None
    person: str | None = None
    person_name: str | None = None
    work_group: str | None = None
    members: tuple[tuple[str, str | None], ...] = ()


def assign(
    engine: sa.Engine,
    platform: Platform,
    actor: Actor,
    parent_id: int,
    to: Assignee,
    *,
    title: str | None = None,
    note: str | None = None,
    deadline: date | None = None,
) -> int:
    """Assign part of a task onward, to a sub-unit or a person of the unit; returns the task id."""
    with engine.begin() as conn:
        parent, directive = acting(conn, platform, actor, parent_id)
        unit = _target_unit(conn, to.unit or parent.unit, parent.unit)
        limit = parent.deadline or (directive.deadline if directive is not None else None)
        if deadline is not None and limit is not None and deadline > limit:
            raise Invalid(
                f"the deadline {deadline} is after the task's own ({limit})",
                errors=[FieldError("/deadline", f"must be {limit} or earlier")],
            )
        task = _insert(
            conn,
            platform,
            actor,
            to,
            unit,
            title or parent.title,
            note,
            deadline,
            role="assigned",
            directive=parent.directive,
            parent=parent.id,
        )
        record(
            conn,
            platform.now(),
            parent.id,
            actor,
            "assigned_onward",
            f"task {task} to {_who(unit, to)}",
        )
        audited(conn, actor, "task.assign", parent.id, onward=task, to=_who(unit, to))
        return task


def instant(
    engine: sa.Engine,
    platform: Platform,
    actor: Actor,
    to: Assignee,
    *,
    title: str,
    note: str | None = None,
    deadline: date | None = None,
) -> int:
    """Create a task without a directive ("giao việc nhanh"); returns the task id."""
    with engine.begin() as conn:
        unit = _target_unit(conn, to.unit or actor.unit, actor.unit)
        task = _insert(conn, platform, actor, to, unit, title, note, deadline)
        audited(conn, actor, "task.instant", task, to=_who(unit, to))
        return task


def reassign(
    engine: sa.Engine,
    platform: Platform,
    actor: Actor,
    task_id: int,
    to: Assignee,
    note: str | None = None,
) -> None:
    """Give an onward or instant task to another unit or person (whoever assigned it)."""
    with engine.begin() as conn:
        task = load_task(conn, task_id)
        if not may_see(conn, task, actor):
            raise NotFound(f"no task {task_id}")  # as if there were none
        if task.role not in ("assigned", "instant"):
            raise Conflict(f"task {task_id} comes with its directive and cannot be reassigned")
        if not (actor.operator or task.assigned_by_unit == actor.unit):
            raise Forbidden(f"only {task.assigned_by_unit} may reassign task {task_id}")
        still_open(task)
        unit = _target_unit(conn, to.unit or task.unit, task.assigned_by_unit or actor.unit)
        values = {
            "unit": unit,
            "person": to.person,
            "person_name": to.person_name,
            "updated_at": platform.now(),
        }
        if to.work_group is not None:
            values["work_group"] = to.work_group
        conn.execute(tasks.update().where(tasks.c.id == task_id).values(**values))
        if to.members:
            conn.execute(task_members.delete().where(task_members.c.task == task_id))
            _members(conn, task_id, to.members)
        before = _who(task.unit, Assignee(person=task.person))
        record(
            conn,
            platform.now(),
            task_id,
            actor,
            "reassigned",
            f"{before} -> {_who(unit, to)}" + (f": {note}" if note else ""),
        )
        audited(conn, actor, "task.reassign", task_id, to=_who(unit, to))


def add_personal_reminder(
    engine: sa.Engine,
    platform: Platform,
    actor: Actor,
    task_id: int,
    remind_on: date,
    note: str | None = None,
) -> int:
    """A reminder the actor sets for themself on a task they may see; returns its id."""
    with engine.begin() as conn:
        task = load_task(conn, task_id)
        if not may_see(conn, task, actor):
            raise NotFound(f"no task {task_id}")  # as if there were none
        if remind_on < platform.today():
            raise Invalid(
                "a reminder cannot be set in the past",
                errors=[FieldError("/remind_on", "in the past")],
            )
        audited(conn, actor, "task.remind", task_id, remind_on=remind_on.isoformat())
        return int(
            conn.execute(
                personal_reminders.insert()
                .values(
                    task=task_id,
                    person=actor.person,
                    person_name=actor.name,
                    remind_on=remind_on,
                    note=note,
                    created_at=platform.now(),
                )
                .returning(personal_reminders.c.id)
            ).scalar_one()
        )


def _target_unit(conn: sa.Connection, unit: str, own: str) -> str:
    """`unit` when it is `own` or one of its sub-units the platform knows; else Invalid."""
    if unit == own:
        return unit
    parent = conn.execute(sa.select(task_units.c.parent).where(task_units.c.code == unit)).first()
    if parent is None or parent.parent != own:
        raise Invalid(
            f"{unit} is not a sub-unit of {own} known to the platform",
            errors=[FieldError("/unit", f"not a known sub-unit of {own}")],
        )
    return unit


def _insert(
    conn: sa.Connection,
    platform: Platform,
    actor: Actor,
    to: Assignee,
    unit: str,
    title: str,
    note: str | None,
    deadline: date | None,
    *,
    role: str = "instant",
    directive: int | None = None,
    parent: int | None = None,
) -> int:
    now = platform.now()
    task = int(
        conn.execute(
            tasks.insert()
            .values(
                role=role,
                directive=directive,
                parent=parent,
                unit=unit,
                person=to.person,
                person_name=to.person_name,
                work_group=to.work_group,
                title=title,
                note=note,
                deadline=deadline,
                percent=0,
                assigned_by=actor.person,
                assigned_by_unit=actor.unit,
                created_at=now,
                updated_at=now,
            )
            .returning(tasks.c.id)
        ).scalar_one()
    )
    _members(conn, task, to.members)
    record(conn, now, task, actor, "assigned", _who(unit, to))
    return task


def _members(conn: sa.Connection, task: int, members: Sequence[tuple[str, str | None]]) -> None:
    rows = [{"task": task, "person": p, "person_name": n} for p, n in dict(members).items()]
    if rows:
        conn.execute(task_members.insert(), rows)


def _who(unit: str, to: Assignee) -> str:
    return f"{to.person} ({unit})" if to.person else unit
