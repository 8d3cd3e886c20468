"""Tables of the task platform, on the store's metadata (migration 0005 creates them).

- `task_units`: the unit codes the platform knows (seeded through the API or config);
  a directive naming another unit is kept and flagged.
- `directives`: one row per (source system, directive id) at its latest applied
  version, with the directive JSON. `state` is the lifecycle only (open, completed,
  revoked); the status a user sees is derived from the dates (hub/tasks/status.py).
- `directive_events`: every directive event received, `held` until its version's
  turn, then `applied`; an older or equal version is a `duplicate`.
- `tasks`: a directive's assignment to a unit or a person (lead, coordinating,
  onward `assigned`), or an `instant` task without a directive. `deadline` null means
  the directive's deadline.
- `task_members`: the people of a task's work group.
- `task_history`: who did what to a task and when.
- `progress_reports`: progress and completion reports, in the order reported.
- `personal_reminders`: a reminder an official set for themself on a task.
- `reminders_sent`: one row per reminder published, its id being rule, task and day.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.store.models import BigId, UTCDateTime, metadata

UNIT = 100
PERSON = 200
SOURCE = 128
DIRECTIVE_ID = 200

task_units = sa.Table(
    "task_units",
    metadata,
    sa.Column("code", sa.String(UNIT), primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("parent", sa.String(UNIT), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(PERSON), nullable=False),
)

directives = sa.Table(
    "directives",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(SOURCE), nullable=False),
    sa.Column("directive_id", sa.String(DIRECTIVE_ID), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("deadline", sa.Date, nullable=True),
    sa.Column("lead_unit", sa.String(UNIT), nullable=False, index=True),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("first_message_id", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("completed_on", sa.Date, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("revoke_reason", sa.Text, nullable=True),
    sa.Column("flagged", sa.Text, nullable=True),
    sa.UniqueConstraint("source", "directive_id"),
)

directive_events = sa.Table(
    "directive_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(SOURCE), nullable=False),
    sa.Column("directive_id", sa.String(DIRECTIVE_ID), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("message_id", sa.String(128), nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=True),
    sa.Index(None, "source", "directive_id", "state", "version"),
    sa.Index(None, "state", "id"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("directive", BigId, sa.ForeignKey("directives.id"), nullable=True, index=True),
    sa.Column("parent", BigId, sa.ForeignKey("tasks.id"), nullable=True, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("unit", sa.String(UNIT), nullable=False, index=True),
    sa.Column("person", sa.String(PERSON), nullable=True, index=True),
    sa.Column("person_name", sa.Text, nullable=True),
    sa.Column("work_group", sa.Text, nullable=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("deadline", sa.Date, nullable=True),
    sa.Column("percent", sa.Integer, nullable=False, default=0),
    sa.Column("assigned_by", sa.String(PERSON), nullable=False),
    sa.Column("assigned_by_unit", sa.String(UNIT), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("completed_on", sa.Date, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

task_members = sa.Table(
    "task_members",
    metadata,
    sa.Column("task", BigId, sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("person", sa.String(PERSON), primary_key=True),
    sa.Column("person_name", sa.Text, nullable=True),
    sa.Index(None, "person"),
)

task_history = sa.Table(
    "task_history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("task", BigId, sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(PERSON), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index(None, "task", "id"),
)

progress_reports = sa.Table(
    "progress_reports",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("report_id", sa.String(64), nullable=False, unique=True),
    sa.Column("task", BigId, sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("percent", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("attachments", sa.Text, nullable=False),
    sa.Column("unit", sa.String(UNIT), nullable=False),
    sa.Column("reporter", sa.String(PERSON), nullable=False),
    sa.Column("reported_at", UTCDateTime, nullable=False),
    sa.Index(None, "task", "id"),
)

personal_reminders = sa.Table(
    "personal_reminders",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("task", BigId, sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("person", sa.String(PERSON), nullable=False),
    sa.Column("person_name", sa.Text, nullable=True),
    sa.Column("remind_on", sa.Date, nullable=False, index=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

reminders_sent = sa.Table(
    "reminders_sent",
    metadata,
    sa.Column("reminder_id", sa.String(300), primary_key=True),
    sa.Column("rule", sa.String(16), nullable=False),
    sa.Column("task", BigId, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.Index(None, "task", "day"),
)

TABLES = (
    task_units,
    directives,
    directive_events,
    tasks,
    task_members,
    task_history,
    progress_reports,
    personal_reminders,
    reminders_sent,
)
