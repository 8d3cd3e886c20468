"""messages: the event's own id beside the hub's key, so ids are unique per source

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

Expand-only (a nullable column and its index): safe while the previous version
serves. Rows it stores leave `event_id` NULL; their `id` is the event's id, and
every lookup by event id reads `id = :x OR event_id = :x`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("event_id", sa.String(128), nullable=True))
    op.create_index("ix_messages_event_id", "messages", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_event_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("event_id")
