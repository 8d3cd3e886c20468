"""The events the platform publishes, written to the outbox in the caller's transaction.

Each is a full CloudEvent from the platform's system id. Progress and completion
carry the extension attribute `recipient`: the system that assigned the directive
(the routing rule sends them there), `subject` the directive id and
`correlationid` the id of the message that assigned it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from hub import envelope
from hub.store import outbox
from hub.tasks.status import VIETNAM, Platform
from hub.tasks.tables import task_units

ASSIGNED = "vn.lgsp.directive.assigned.v1"
UPDATED = "vn.lgsp.directive.updated.v1"
REVOKED = "vn.lgsp.directive.revoked.v1"
PROGRESS = "vn.lgsp.directive.progress.v1"
COMPLETED = "vn.lgsp.directive.completed.v1"
REMINDER = "vn.lgsp.reminder.due.v1"
CONSUMED = (ASSIGNED, UPDATED, REVOKED)


def iso(at: datetime) -> str:
    """An instant as RFC 3339 in Vietnam time, to the second."""
    return at.astimezone(VIETNAM).isoformat(timespec="seconds")


def new_id() -> str:
    return uuid.uuid4().hex


def publish(
    conn: sa.Connection,
    platform: Platform,
    type_: str,
    data: Mapping[str, Any],
    *,
    id: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Add a CloudEvent of `type_` to the outbox; returns its id."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": id or new_id(),
        "source": platform.source_id,
        "type": type_,
        "time": iso(platform.now()),
        "datacontenttype": "application/json",
        "dataschema": f"hub/schemas/{type_.removeprefix('vn.lgsp.')}.json",
        **(extra or {}),
        "data": dict(data),
    }
    event = envelope.nfc(event)
    headers = {"message-id": event["id"], "type": type_}
    outbox.add(conn, platform.queue, envelope.dumps(event), headers)
    return str(event["id"])


def unit_ref(conn: sa.Connection, code: str) -> dict[str, str]:
    """A unit as the schemas write it, with its name when the platform knows it."""
    name = conn.execute(sa.select(task_units.c.name).where(task_units.c.code == code)).scalar()
    return {"code": code, "name": name} if name else {"code": code}


def person_ref(
    person: str, name: str | None, unit: Mapping[str, str] | None = None
) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": person, "name": name or person}
    if unit:
        ref["unit"] = dict(unit)
    return ref


def reminder(
    conn: sa.Connection,
    platform: Platform,
    *,
    reminder_id: str,
    rule: str,
    day: date,
    task: int,
    title: str,
    to: Sequence[Mapping[str, Any]],
    directive_id: str | None = None,
    deadline: date | None = None,
    note: str | None = None,
) -> str:
    """Publish one `reminder.due.v1`; its event id is derived from `reminder_id`."""
    data: dict[str, Any] = {
        "reminder_id": reminder_id,
        "rule": rule,
        "day": day.isoformat(),
        "task_id": str(task),
        "title": title[:500],
        "to": [dict(t) for t in to],
    }
    if directive_id is not None:
        data["directive_id"] = directive_id
    if deadline is not None:
        data["deadline"] = deadline.isoformat()
        data["days_left"] = (deadline - day).days
    if note:
        data["note"] = note
    event_id = "reminder-" + uuid.uuid5(uuid.NAMESPACE_URL, reminder_id).hex
    return publish(conn, platform, REMINDER, data, id=event_id)
