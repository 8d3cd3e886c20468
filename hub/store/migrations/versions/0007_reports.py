"""reporting: dossiers as seen and the indicator reports sent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.store.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_dossiers",
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("dossier_code", sa.String(length=100), nullable=False),
        sa.Column("agency", sa.String(length=100), nullable=False),
        sa.Column("agency_name", sa.Text(), nullable=True),
        sa.Column("procedure_code", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("received_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("appointment_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("updated_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "dossier_code", name=op.f("pk_report_dossiers")),
    )
    with op.batch_alter_table("report_dossiers") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_dossiers_agency_received_at"),
            ["agency", "received_at"],
            unique=False,
        )
    op.create_table(
        "reports_sent",
        sa.Column("report_id", sa.String(length=300), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("indicator_set", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("agency", sa.String(length=100), nullable=False),
        sa.Column("indicators", sa.Text(), nullable=False),
        sa.Column("computed_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("report_id", "version", name=op.f("pk_reports_sent")),
    )
    with op.batch_alter_table("reports_sent") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reports_sent_period_agency"), ["period", "agency"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reports_sent") as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_sent_period_agency"))
    op.drop_table("reports_sent")
    with op.batch_alter_table("report_dossiers") as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_dossiers_agency_received_at"))
    op.drop_table("report_dossiers")
