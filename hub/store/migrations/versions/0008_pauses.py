"""destinations paused by an operator

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.store.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pauses",
        sa.Column("destination", sa.String(length=128), nullable=False),
        sa.Column("paused_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paused_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_pauses")),
    )


def downgrade() -> None:
    op.drop_table("pauses")
