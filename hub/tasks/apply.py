"""Directive events applied to the platform's tables: exactly once, in version order.

`apply` claims the message id in the inbox inside the caller's transaction (a
repeat is a no-op) and records the event in `directive_events`. Events of one
directive apply in `version` order: the next version applies at once (then any
held ones that follow it), a later one is held until the gap is filled, an
older or equal one is recorded as a duplicate. An `assigned` for a directive
not seen yet creates it at its version; anything else for it is held.

- assigned: the directive, a `lead` task for its lead unit and a `coordinating`
  task per coordinating unit. Units the platform does not know are kept and the
  directive is flagged (`flagged` in hub/tasks/queries.py).
- updated: the directive replaced; tasks follow a new lead unit, new coordinating
  units get tasks, dropped ones are revoked. Statuses follow from the dates.
- revoked: the directive and its open tasks closed; each assignee is sent a
  `revoked` reminder through the outbox.

On PostgreSQL an advisory lock per directive makes concurrent deliveries of one
directive take turns, so a held event is never left behind by a racing apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub.errors import Rejected
from hub.store import inbox
from hub.tasks import reminders
from hub.tasks.events import ASSIGNED, CONSUMED, REVOKED, UPDATED
from hub.tasks.status import Platform, final_deadline
from hub.tasks.tables import directive_events, directives, task_history, task_units, tasks


@dataclass(frozen=True)
class Outcome:
    """What one message came to: applied, held, duplicate, or repeat (claimed before)."""

    message_id: str
    result: str
    directive_id: str | None = None
    versions: tuple[int, ...] = ()  # versions applied by this call, held ones included
    flag: str | None = None


def apply(
    conn: sa.Connection, message_id: str, event: Mapping[str, Any], platform: Platform
) -> Outcome:
    """Apply one directive event in the caller's transaction. Raises Rejected on other types."""
    type_ = event.get("type")
    if type_ not in CONSUMED:
        raise Rejected(f"the task platform does not take {type_!r}")
    try:
        data, source = event["data"], str(event["source"])
        key = data["directive"] if type_ == UPDATED else data
        directive_id, version = str(key["directive_id"]), int(key["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected(f"{type_} without a directive id and version: {exc!r}") from exc
    if not inbox.claim(conn, platform.consumer, [message_id]):
        return Outcome(message_id, "repeat", directive_id)
    lock_directive(conn, source, directive_id)
    now = platform.now()
    row = _directive(conn, source, directive_id)
    event_row = conn.execute(
        directive_events.insert()
        .values(
            source=source,
            directive_id=directive_id,
            version=version,
            type=type_,
            message_id=message_id,
            event=orjson.dumps(dict(event)).decode(),
            state="held",
            received_at=now,
        )
        .returning(directive_events.c.id)
    ).scalar_one()
    if row is not None and version <= row.version:
        _mark(conn, event_row, "duplicate", None)
        return Outcome(message_id, "duplicate", directive_id)
    if (row is None and type_ != ASSIGNED) or (row is not None and version > row.version + 1):
        return Outcome(message_id, "held", directive_id)
    _apply_one(conn, source, message_id, type_, data, platform)
    _mark(conn, event_row, "applied", now)
    applied = (version, *_drain(conn, source, directive_id, platform))
    flag = conn.execute(
        sa.select(directives.c.flagged).where(
            directives.c.source == source, directives.c.directive_id == directive_id
        )
    ).scalar()
    return Outcome(message_id, "applied", directive_id, applied, flag)


def held(engine: sa.Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Events waiting for an earlier version, oldest first (for operators)."""
    c = directive_events.c
    q = (
        sa.select(c.source, c.directive_id, c.version, c.type, c.message_id, c.received_at)
        .where(c.state == "held")
        .order_by(c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [{**r._asdict(), "received_at": r.received_at.isoformat()} for r in conn.execute(q)]


def lock_directive(conn: sa.Connection, source: str, directive_id: str) -> None:
    """Make transactions touching one directive take turns (PostgreSQL; SQLite has one writer)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite has one writer at a time
    digest = hashlib.sha256(f"tasks\0{source}\0{directive_id}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _directive(conn: sa.Connection, source: str, directive_id: str) -> sa.Row[Any] | None:
    q = sa.select(directives).where(
        directives.c.source == source, directives.c.directive_id == directive_id
    )
    return conn.execute(q).first()


def _mark(conn: sa.Connection, event_row: int, state: str, at: datetime | None) -> None:
    conn.execute(
        directive_events.update()
        .where(directive_events.c.id == event_row)
        .values(state=state, applied_at=at)
    )


def _drain(conn: sa.Connection, source: str, directive_id: str, platform: Platform) -> list[int]:
    """Apply held events whose turn has come; drop held ones overtaken. Returns versions."""
    c, done = directive_events.c, list[int]()
    while True:
        row = _directive(conn, source, directive_id)
        assert row is not None
        nxt = conn.execute(
            sa.select(c.id, c.version, c.type, c.message_id, c.event)
            .where(
                c.source == source,
                c.directive_id == directive_id,
                c.state == "held",
                c.version <= row.version + 1,
            )
            .order_by(c.version, c.id)
            .limit(1)
        ).first()
        if nxt is None:
            return done
        if nxt.version <= row.version:
            _mark(conn, nxt.id, "duplicate", None)
            continue
        event = orjson.loads(nxt.event)
        _apply_one(conn, source, nxt.message_id, nxt.type, event["data"], platform)
        _mark(conn, nxt.id, "applied", platform.now())
        done.append(nxt.version)


def _apply_one(
    conn: sa.Connection,
    source: str,
    message_id: str,
    type_: str,
    data: Mapping[str, Any],
    platform: Platform,
) -> None:
    row = _directive(conn, source, data.get("directive_id") or data["directive"]["directive_id"])
    if type_ == REVOKED:
        assert row is not None
        _revoke(conn, row, data, platform)
    elif row is None:
        _create(conn, source, message_id, data, platform)
    else:
        directive = data["directive"] if type_ == UPDATED else data
        _replace(conn, row, directive, platform)


def _columns(directive: Mapping[str, Any], flag: str | None) -> dict[str, Any]:
    return {
        "version": int(directive["version"]),
        "title": directive["title"],
        "body": orjson.dumps(dict(directive)).decode(),
        "deadline": final_deadline(directive["deadline"]),
        "lead_unit": directive["lead_unit"]["code"],
        "priority": directive["priority"],
        "flagged": flag,
    }


def _create(
    conn: sa.Connection,
    source: str,
    message_id: str,
    directive: Mapping[str, Any],
    platform: Platform,
) -> None:
    now = platform.now()
    pk = conn.execute(
        directives.insert()
        .values(
            source=source,
            directive_id=directive["directive_id"],
            state="open",
            first_message_id=message_id,
            created_at=now,
            updated_at=now,
            **_columns(directive, _flag(conn, directive)),
        )
        .returning(directives.c.id)
    ).scalar_one()
    _new_task(conn, pk, "lead", directive["lead_unit"]["code"], directive, source, now)
    for unit in _coordinating(directive):
        _new_task(conn, pk, "coordinating", unit, directive, source, now)


def _replace(
    conn: sa.Connection, row: sa.Row[Any], directive: Mapping[str, Any], platform: Platform
) -> None:
    now, before = platform.now(), orjson.loads(row.body)
    values = _columns(directive, _flag(conn, directive))
    conn.execute(
        directives.update().where(directives.c.id == row.id).values(updated_at=now, **values)
    )
    own = conn.execute(
        sa.select(tasks.c.id, tasks.c.role, tasks.c.unit).where(
            tasks.c.directive == row.id,
            tasks.c.role.in_(("lead", "coordinating")),
            tasks.c.revoked_at.is_(None),
        )
    ).all()
    lead = directive["lead_unit"]["code"]
    for task in own:
        if task.role == "lead" and task.unit != lead:
            conn.execute(
                tasks.update().where(tasks.c.id == task.id).values(unit=lead, updated_at=now)
            )
            _history(conn, task.id, row.source, "lead_unit_changed", f"{task.unit} -> {lead}", now)
        if row.deadline != values["deadline"]:
            moved = f"{row.deadline} -> {values['deadline']}"
            _history(conn, task.id, row.source, "deadline_moved", moved, now)
    old, new = set(_coordinating(before)), set(_coordinating(directive))
    for task in own:
        if task.role == "coordinating" and task.unit in old - new:
            conn.execute(
                tasks.update().where(tasks.c.id == task.id).values(revoked_at=now, updated_at=now)
            )
            _history(conn, task.id, row.source, "revoked", "no longer a coordinating unit", now)
    for unit in _coordinating(directive):
        if unit not in old:
            _new_task(conn, row.id, "coordinating", unit, directive, row.source, now)


def _revoke(
    conn: sa.Connection, row: sa.Row[Any], data: Mapping[str, Any], platform: Platform
) -> None:
    now = platform.now()
    conn.execute(
        directives.update()
        .where(directives.c.id == row.id)
        .values(
            version=int(data["version"]),
            state="revoked",
            revoked_at=datetime.fromisoformat(data["revoked_at"]),
            revoke_reason=data.get("reason"),
            updated_at=now,
        )
    )
    open_tasks = conn.execute(
        sa.select(tasks).where(
            tasks.c.directive == row.id,
            tasks.c.revoked_at.is_(None),
            tasks.c.completed_at.is_(None),
        )
    ).all()
    if not open_tasks:
        return
    ids = [t.id for t in open_tasks]
    conn.execute(tasks.update().where(tasks.c.id.in_(ids)).values(revoked_at=now, updated_at=now))
    for task in open_tasks:
        _history(conn, task.id, row.source, "revoked", data.get("reason"), now)
    day = platform.today(now)
    reminders.send(
        conn,
        platform,
        "revoked",
        day,
        [(t, row.directive_id, None) for t in open_tasks],
        note=data.get("reason") or f"Nhiệm vụ {row.directive_id} đã bị thu hồi.",
    )


def _coordinating(directive: Mapping[str, Any]) -> list[str]:
    lead = directive["lead_unit"]["code"]
    codes = [u["code"] for u in directive.get("coordinating_units", [])]
    return [c for i, c in enumerate(codes) if c != lead and c not in codes[:i]]


def _flag(conn: sa.Connection, directive: Mapping[str, Any]) -> str | None:
    """Why the directive is flagged: the units it names that the platform does not know."""
    codes = [directive["lead_unit"]["code"], *_coordinating(directive)]
    known = set(
        conn.execute(sa.select(task_units.c.code).where(task_units.c.code.in_(codes))).scalars()
    )
    unknown = [c for c in codes if c not in known]
    return f"units not known to the platform: {', '.join(unknown)}" if unknown else None


def _new_task(
    conn: sa.Connection,
    directive_pk: int,
    role: str,
    unit: str,
    directive: Mapping[str, Any],
    source: str,
    now: datetime,
) -> None:
    task = conn.execute(
        tasks.insert()
        .values(
            directive=directive_pk,
            role=role,
            unit=unit,
            title=directive["title"],
            percent=0,
            assigned_by=source,
            created_at=now,
            updated_at=now,
        )
        .returning(tasks.c.id)
    ).scalar_one()
    _history(conn, task, source, "assigned", f"{role}: {unit}", now)


def _history(
    conn: sa.Connection, task: int, actor: str, action: str, detail: str | None, at: datetime
) -> None:
    conn.execute(
        task_history.insert().values(task=task, at=at, actor=actor, action=action, detail=detail)
    )
