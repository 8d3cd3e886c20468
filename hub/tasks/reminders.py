"""Reminders: once per rule, task and day, published through the outbox.

`remind` is the daily pass (run it every few minutes: a second pass on the same
day publishes nothing new). Rules, on today's date in Vietnam:

- `due_in_days`: an open task is due in exactly N days (`Platform.due_in_days`);
- `due_today`: due today (for a recurring directive: its next report day);
- `overdue`: every day while an open task is past its deadline;
- `personal`: a reminder an official set for themself on a task, on its day
  (or up to a week late when the pass did not run that day).

A row in `reminders_sent` keyed by the reminder id (`rule:task:day`) is inserted
with the event in one transaction: a rerun, a restart or two schedulers at once
publish each reminder once. `revoked` reminders are sent by apply (hub/tasks/apply.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.tasks import events
from hub.tasks.status import Platform, final_deadline, next_due
from hub.tasks.tables import directives, personal_reminders, reminders_sent, task_members, tasks

LATE_PERSONAL = timedelta(days=7)
# (task row, directive id or None, the deadline the reminder is about)
Item = tuple[sa.Row[Any], str | None, date | None]


def remind(engine: sa.Engine, platform: Platform, now: datetime | None = None) -> int:
    """Publish the reminders due today that were not published yet; returns how many."""
    today = platform.today(now)
    sent = 0
    with engine.begin() as conn:
        by_rule: dict[str, list[Item]] = defaultdict(list)
        for rule, item in _rules(conn, platform, today):
            by_rule[rule].append(item)
        for rule, items in by_rule.items():
            sent += send(conn, platform, rule, today, items)
        sent += _personal(conn, platform, today)
    return sent


def send(
    conn: sa.Connection,
    platform: Platform,
    rule: str,
    day: date,
    items: Sequence[Item],
    note: str | None = None,
) -> int:
    """Publish `rule` reminders for `items` on `day`, skipping those sent before."""
    if not items:
        return 0
    ids = {f"{rule}:{t.id}:{day.isoformat()}": (t, d, dl) for t, d, dl in items}
    fresh = _claim(conn, platform, [(rid, rule, t.id, day) for rid, (t, _, _) in ids.items()])
    members = _members(conn, [ids[r][0].id for r in fresh])
    for rid in sorted(fresh, key=lambda r: ids[r][0].id):
        task, directive_id, deadline = ids[rid]
        events.reminder(
            conn,
            platform,
            reminder_id=rid,
            rule=rule,
            day=day,
            task=task.id,
            title=task.title,
            to=recipients(conn, task, members.get(task.id, [])),
            directive_id=directive_id,
            deadline=deadline,
            note=note,
        )
    return len(fresh)


def recipients(
    conn: sa.Connection, task: sa.Row[Any], members: Iterable[tuple[str, str | None]] = ()
) -> list[dict[str, Any]]:
    """Who hears about a task: its person (or else its unit) and its work group."""
    unit = events.unit_ref(conn, task.unit)
    to = [events.person_ref(task.person, task.person_name, unit)] if task.person else [unit]
    to += [events.person_ref(p, n, unit) for p, n in members if p != task.person]
    return to


def _rules(conn: sa.Connection, platform: Platform, today: date) -> Iterable[tuple[str, Item]]:
    q = (
        sa.select(tasks, directives.c.directive_id.label("d_id"), directives.c.body.label("d_body"))
        .select_from(tasks.outerjoin(directives, tasks.c.directive == directives.c.id))
        .where(
            tasks.c.completed_at.is_(None),
            tasks.c.revoked_at.is_(None),
            sa.or_(tasks.c.directive.is_(None), directives.c.state == "open"),
        )
        .order_by(tasks.c.id)
    )
    for row in conn.execute(q):
        deadline_json = orjson.loads(row.d_body)["deadline"] if row.d_body else None
        if row.deadline is not None:
            end: date | None = row.deadline
            due = row.deadline if row.deadline >= today else None
        elif deadline_json is not None:
            end = final_deadline(deadline_json)
            due = next_due(deadline_json, today)
        else:
            continue
        if end is not None and today > end:
            yield "overdue", (row, row.d_id, end)
        elif due == today:
            yield "due_today", (row, row.d_id, due)
        elif due is not None and (due - today).days == platform.due_in_days:
            yield "due_in_days", (row, row.d_id, due)


def _personal(conn: sa.Connection, platform: Platform, today: date) -> int:
    p, t = personal_reminders.c, tasks.c
    q = (
        sa.select(
            p.id,
            p.task,
            p.person,
            p.person_name,
            p.remind_on,
            p.note,
            t.title,
            t.unit,
            t.deadline,
            directives.c.directive_id,
        )
        .select_from(
            personal_reminders.join(tasks, p.task == t.id).outerjoin(
                directives, t.directive == directives.c.id
            )
        )
        .where(
            p.remind_on <= today,
            p.remind_on >= today - LATE_PERSONAL,
            t.completed_at.is_(None),
            t.revoked_at.is_(None),
        )
        .order_by(p.remind_on, p.id)
    )
    rows = {f"personal:{r.task}:{r.remind_on}:{r.id}": r for r in conn.execute(q)}
    fresh = _claim(
        conn, platform, [(rid, "personal", r.task, r.remind_on) for rid, r in rows.items()]
    )
    for rid in sorted(fresh, key=lambda k: rows[k].id):
        r = rows[rid]
        unit = events.unit_ref(conn, r.unit)
        events.reminder(
            conn,
            platform,
            reminder_id=rid,
            rule="personal",
            day=r.remind_on,
            task=r.task,
            title=r.title,
            to=[events.person_ref(r.person, r.person_name, unit)],
            directive_id=r.directive_id,
            deadline=r.deadline,
            note=r.note,
        )
    return len(fresh)


def _claim(
    conn: sa.Connection, platform: Platform, rows: Sequence[tuple[str, str, int, date]]
) -> set[str]:
    """Insert reminder rows; returns the ids not sent before."""
    if not rows:
        return set()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(reminders_sent).on_conflict_do_nothing().returning(reminders_sent.c.reminder_id)
    now = platform.now()
    values = [
        {"reminder_id": rid, "rule": rule, "task": task, "day": day, "sent_at": now}
        for rid, rule, task, day in rows
    ]
    return {r[0] for r in conn.execute(stmt, values)}


def _members(
    conn: sa.Connection, task_ids: Sequence[int]
) -> dict[int, list[tuple[str, str | None]]]:
    found: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    if task_ids:
        q = (
            sa.select(task_members.c.task, task_members.c.person, task_members.c.person_name)
            .where(task_members.c.task.in_(task_ids))
            .order_by(task_members.c.task, task_members.c.person)
        )
        for r in conn.execute(q):
            found[r.task].append((r.person, r.person_name))
    return found
