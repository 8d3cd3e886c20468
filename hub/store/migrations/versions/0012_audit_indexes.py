"""audit: indexes for sign-in throttling and for people's entries among the hub's

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25

Expand-only (new indexes): safe while the previous version serves.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_actor_at", "audit", ["actor", "at"])
    people = sa.text("actor <> 'hub'")
    op.create_index(
        "ix_audit_people", "audit", ["seq"], postgresql_where=people, sqlite_where=people
    )


def downgrade() -> None:
    op.drop_index("ix_audit_people", table_name="audit")
    op.drop_index("ix_audit_actor_at", table_name="audit")
