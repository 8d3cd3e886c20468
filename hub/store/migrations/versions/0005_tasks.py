"""task platform: units, directives and their events, tasks, history, progress, reminders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.store.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directive_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("directive_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directive_events")),
    )
    with op.batch_alter_table("directive_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directive_events_source_directive_id_state_version"),
            ["source", "directive_id", "state", "version"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_directive_events_state_id"), ["state", "id"], unique=False
        )

    op.create_table(
        "directives",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("directive_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("lead_unit", sa.String(length=100), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("first_message_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("revoked_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("flagged", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directives")),
        sa.UniqueConstraint(
            "source", "directive_id", name=op.f("uq_directives_source_directive_id")
        ),
    )
    with op.batch_alter_table("directives", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_directives_lead_unit"), ["lead_unit"], unique=False)

    op.create_table(
        "reminders_sent",
        sa.Column("reminder_id", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("task", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reminder_id", name=op.f("pk_reminders_sent")),
    )
    with op.batch_alter_table("reminders_sent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reminders_sent_task_day"), ["task", "day"], unique=False
        )

    op.create_table(
        "task_units",
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("parent", sa.String(length=100), nullable=True),
        sa.Column("updated_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_task_units")),
    )
    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("directive", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("parent", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=True),
        sa.Column("person_name", sa.Text(), nullable=True),
        sa.Column("work_group", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.Column("assigned_by_unit", sa.String(length=100), nullable=True),
        sa.Column("created_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("revoked_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["directive"], ["directives.id"], name=op.f("fk_tasks_directive_directives")
        ),
        sa.ForeignKeyConstraint(["parent"], ["tasks.id"], name=op.f("fk_tasks_parent_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_directive"), ["directive"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_parent"), ["parent"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_person"), ["person"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_unit"), ["unit"], unique=False)

    op.create_table(
        "personal_reminders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("person_name", sa.Text(), nullable=True),
        sa.Column("remind_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task"], ["tasks.id"], name=op.f("fk_personal_reminders_task_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_reminders")),
    )
    with op.batch_alter_table("personal_reminders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_personal_reminders_remind_on"), ["remind_on"], unique=False
        )

    op.create_table(
        "progress_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("task", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("reporter", sa.String(length=200), nullable=False),
        sa.Column("reported_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task"], ["tasks.id"], name=op.f("fk_progress_reports_task_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_reports")),
        sa.UniqueConstraint("report_id", name=op.f("uq_progress_reports_report_id")),
    )
    with op.batch_alter_table("progress_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_progress_reports_task_id"), ["task", "id"], unique=False
        )

    op.create_table(
        "task_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["task"], ["tasks.id"], name=op.f("fk_task_history_task_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_history")),
    )
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_history_task_id"), ["task", "id"], unique=False)

    op.create_table(
        "task_members",
        sa.Column("task", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("person_name", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["task"], ["tasks.id"], name=op.f("fk_task_members_task_tasks")),
        sa.PrimaryKeyConstraint("task", "person", name=op.f("pk_task_members")),
    )
    with op.batch_alter_table("task_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_members_person"), ["person"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_members_person"))

    op.drop_table("task_members")
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_history_task_id"))

    op.drop_table("task_history")
    with op.batch_alter_table("progress_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_progress_reports_task_id"))

    op.drop_table("progress_reports")
    with op.batch_alter_table("personal_reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_personal_reminders_remind_on"))

    op.drop_table("personal_reminders")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_unit"))
        batch_op.drop_index(batch_op.f("ix_tasks_person"))
        batch_op.drop_index(batch_op.f("ix_tasks_parent"))
        batch_op.drop_index(batch_op.f("ix_tasks_directive"))

    op.drop_table("tasks")
    op.drop_table("task_units")
    with op.batch_alter_table("reminders_sent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reminders_sent_task_day"))

    op.drop_table("reminders_sent")
    with op.batch_alter_table("directives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directives_lead_unit"))

    op.drop_table("directives")
    with op.batch_alter_table("directive_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directive_events_state_id"))
        batch_op.drop_index(batch_op.f("ix_directive_events_source_directive_id_state_version"))

    op.drop_table("directive_events")
