"""console: route per delivery, failure and delivery indexes, audit trail, sessions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.store.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FAILED = sa.text("stage IN ('attempt_failed', 'dead_lettered')")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("route", sa.String(length=300), nullable=True))
    op.create_index(
        "ix_deliveries_destination_delivered_at", "deliveries", ["destination", "delivered_at"]
    )
    op.create_index(
        "ix_hops_failures",
        "hops",
        ["destination", "at"],
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    op.create_table(
        "audit",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_at"), "audit", ["at"])
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_expires_at"), "console_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("audit")
    op.drop_index("ix_hops_failures", table_name="hops")
    op.drop_index("ix_deliveries_destination_delivered_at", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("route")
