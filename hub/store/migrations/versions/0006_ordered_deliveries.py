"""deliveries in order per key for destinations that need it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("order_key", sa.String(length=300), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_deliveries_destination_order_key_id"),
            ["destination", "order_key", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_destination_order_key_id"))
        batch_op.drop_column("order_key")
