"""What officials and operators read: task lists, a task's detail, the dashboard, the flags.

Statuses are computed in the query from the effective deadline (the task's own,
or else its directive's) and today's date, never read from a stored column.
Every function takes the engine first (for `Database.read`) and returns JSON-ready
values (dates in ISO 8601).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub.tasks.status import STATUSES, status_of, status_sql
from hub.tasks.tables import (
    directives,
    progress_reports,
    task_history,
    task_members,
    task_units,
    tasks,
)

MAX_LIST = 500


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks to list; every field left None matches all."""

    person: str | None = None  # assigned to them, or in the task's work group
    unit: str | None = None
    status: str | None = None
    source: str | None = None  # the system that assigned the directive; "instant": none
    deadline_from: date | None = None
    deadline_to: date | None = None
    limit: int = 100
    within: str | None = None  # only tasks of this unit or of its sub-units the platform knows


def _deadline() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(tasks.c.deadline, directives.c.deadline)


def _status(today: date) -> sa.ColumnElement[str]:
    return status_sql(_deadline(), tasks.c.completed_on, tasks.c.revoked_at, today)


def _joined() -> sa.FromClause:
    return tasks.outerjoin(directives, tasks.c.directive == directives.c.id)


def list_tasks(engine: sa.Engine, where: TaskFilter, today: date) -> list[dict[str, Any]]:
    """Tasks matching `where`, the closest deadline first (none last), then the newest."""
    deadline, status = _deadline().label("eff_deadline"), _status(today).label("status")
    q = sa.select(tasks, directives.c.directive_id, directives.c.source, deadline, status)
    q = q.select_from(_joined())
    if where.person is not None:
        members = sa.select(task_members.c.task).where(task_members.c.person == where.person)
        q = q.where(sa.or_(tasks.c.person == where.person, tasks.c.id.in_(members)))
    if where.unit is not None:
        q = q.where(tasks.c.unit == where.unit)
    if where.within is not None:
        subunits = sa.select(task_units.c.code).where(task_units.c.parent == where.within)
        q = q.where(sa.or_(tasks.c.unit == where.within, tasks.c.unit.in_(subunits)))
    if where.status is not None:
        q = q.where(_status(today) == where.status)
    if where.source == "instant":
        q = q.where(tasks.c.directive.is_(None))
    elif where.source is not None:
        q = q.where(directives.c.source == where.source)
    if where.deadline_from is not None:
        q = q.where(_deadline() >= where.deadline_from)
    if where.deadline_to is not None:
        q = q.where(_deadline() <= where.deadline_to)
    q = q.order_by(_deadline().is_(None), _deadline(), tasks.c.id.desc())
    q = q.limit(min(where.limit, MAX_LIST))
    with engine.connect() as conn:
        return [_task_json(r) for r in conn.execute(q)]


def task_detail(engine: sa.Engine, task_id: int, today: date) -> dict[str, Any] | None:
    """A task with its directive, work group, onward tasks, history and reports."""
    deadline, status = _deadline().label("eff_deadline"), _status(today).label("status")
    q = sa.select(tasks, directives.c.directive_id, directives.c.source, deadline, status)
    with engine.connect() as conn:
        row = conn.execute(q.select_from(_joined()).where(tasks.c.id == task_id)).first()
        if row is None:
            return None
        view = _task_json(row)
        if row.directive is not None:
            d = conn.execute(sa.select(directives).where(directives.c.id == row.directive)).one()
            view["directive"] = _directive_json(d, today)
        members = sa.select(task_members.c.person, task_members.c.person_name)
        view["members"] = [
            {"person": m.person, "name": m.person_name}
            for m in conn.execute(members.where(task_members.c.task == task_id))
        ]
        children = q.select_from(_joined()).where(tasks.c.parent == task_id).order_by(tasks.c.id)
        view["onward"] = [_task_json(c) for c in conn.execute(children)]
        h = task_history.c
        view["history"] = [
            {"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "detail": r.detail}
            for r in conn.execute(
                sa.select(h.at, h.actor, h.action, h.detail).where(h.task == task_id).order_by(h.id)
            )
        ]
        view["reports"] = [
            {
                "report_id": r.report_id,
                "kind": r.kind,
                "percent": r.percent,
                "text": r.text,
                "attachments": orjson.loads(r.attachments),
                "unit": r.unit,
                "reporter": r.reporter,
                "reported_at": r.reported_at.isoformat(),
            }
            for r in conn.execute(
                sa.select(progress_reports)
                .where(progress_reports.c.task == task_id)
                .order_by(progress_reports.c.id)
            )
        ]
    return view


def dashboard(engine: sa.Engine, today: date, start: date, end: date) -> dict[str, Any]:
    """Counts by status per unit (tasks) and per source (directives), the overdue tasks,
    and the on-time completion rate per unit of the tasks completed from `start` to `end`.
    """
    status = _status(today)
    d_status = status_sql(
        directives.c.deadline, directives.c.completed_on, directives.c.revoked_at, today
    )
    with engine.connect() as conn:
        per_unit = conn.execute(
            sa.select(tasks.c.unit, status.label("s"), sa.func.count())
            .select_from(_joined())
            .group_by(tasks.c.unit, status)
        ).all()
        per_source = conn.execute(
            sa.select(directives.c.source, d_status.label("s"), sa.func.count()).group_by(
                directives.c.source, d_status
            )
        ).all()
        overdue = conn.execute(
            sa.select(tasks, directives.c.directive_id, directives.c.source)
            .add_columns(_deadline().label("eff_deadline"), status.label("status"))
            .select_from(_joined())
            .where(status == "in_progress_overdue")
            .order_by(_deadline(), tasks.c.id)
            .limit(MAX_LIST)
        ).all()
        done = conn.execute(
            sa.select(tasks.c.unit, status.label("s"), sa.func.count())
            .select_from(_joined())
            .where(tasks.c.completed_on >= start, tasks.c.completed_on <= end)
            .group_by(tasks.c.unit, status)
        ).all()
    rates: dict[str, dict[str, int]] = defaultdict(lambda: {"completed": 0, "on_time": 0})
    for unit, s, n in done:
        rates[unit]["completed"] += n
        rates[unit]["on_time"] += n if s == "completed_on_time" else 0
    return {
        "today": today.isoformat(),
        "by_unit": _counts(per_unit),
        "by_source": _counts(per_source),
        "overdue": [
            {**_task_json(r), "days_overdue": (today - r.eff_deadline).days} for r in overdue
        ],
        "on_time_rate": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "units": {
                u: {**v, "rate": round(v["on_time"] / v["completed"], 4)}
                for u, v in sorted(rates.items())
            },
        },
    }


def flagged(engine: sa.Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Directives kept but flagged (units the platform does not know), newest first."""
    c = directives.c
    q = (
        sa.select(c.source, c.directive_id, c.version, c.title, c.lead_unit, c.flagged)
        .add_columns(c.created_at)
        .where(c.flagged.is_not(None))
        .order_by(c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [{**r._asdict(), "created_at": r.created_at.isoformat()} for r in conn.execute(q)]


def units(engine: sa.Engine) -> list[dict[str, Any]]:
    c = task_units.c
    with engine.connect() as conn:
        q = sa.select(c.code, c.name, c.parent).order_by(c.code)
        return [r._asdict() for r in conn.execute(q)]


def _counts(rows: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, s, n in rows:
        out.setdefault(key, dict.fromkeys(STATUSES, 0))[s] += n
    return dict(sorted(out.items()))


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _task_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "directive_id": r.directive_id,
        "source": r.source,
        "parent": r.parent,
        "role": r.role,
        "unit": r.unit,
        "person": r.person,
        "person_name": r.person_name,
        "work_group": r.work_group,
        "title": r.title,
        "note": r.note,
        "deadline": _iso(r.eff_deadline),
        "status": r.status,
        "percent": r.percent,
        "assigned_by": r.assigned_by,
        "assigned_by_unit": r.assigned_by_unit,
        "created_at": _iso(r.created_at),
        "completed_at": _iso(r.completed_at),
        "revoked_at": _iso(r.revoked_at),
    }


def _directive_json(d: Any, today: date) -> dict[str, Any]:
    return {
        "source": d.source,
        "directive_id": d.directive_id,
        "version": d.version,
        "state": d.state,
        "status": status_of(d.deadline, d.completed_on, d.revoked_at is not None, today),
        "deadline": _iso(d.deadline),
        "lead_unit": d.lead_unit,
        "flagged": d.flagged,
        "completed_at": _iso(d.completed_at),
        "revoked_at": _iso(d.revoked_at),
        "revoke_reason": d.revoke_reason,
        "directive": orjson.loads(d.body),
    }
