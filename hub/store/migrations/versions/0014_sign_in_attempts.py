"""console: sign-in attempts claimed before the password is checked

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

Expand-only (a new table): safe while the previous version serves, which keeps
counting failures from the audit trail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.store.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts")),
    )
    op.create_index("ix_sign_in_attempts_name_at", "sign_in_attempts", ["name", "at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_attempts_name_at", table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
