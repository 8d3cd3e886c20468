"""API keys issued by the hub, as salted hashes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.store.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("system_id", sa.String(length=128), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("retired_at", hub.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_system_keys")),
    )
    op.create_index(op.f("ix_system_keys_system_id"), "system_keys", ["system_id"])


def downgrade() -> None:
    op.drop_table("system_keys")
