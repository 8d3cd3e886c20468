"""document tracking: documents, their recipients' states, their history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("document_id", sa.String(length=1000), nullable=False),
        sa.Column("sender", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("code_number", sa.Text(), nullable=True),
        sa.Column("code_notation", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_message_id", sa.String(length=128), nullable=False),
        sa.Column("last_message_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_documents")),
    )
    op.create_index(op.f("ix_documents_sender"), "documents", ["sender"], unique=False)
    op.create_table(
        "document_recipients",
        sa.Column("document_id", sa.String(length=1000), nullable=False),
        sa.Column("organ_id", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=2), nullable=True),
        sa.Column("progress", sa.String(length=2), nullable=True),
        sa.Column("pending", sa.String(length=16), nullable=True),
        sa.Column("updated_at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.document_id"],
            name=op.f("fk_document_recipients_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("document_id", "organ_id", name=op.f("pk_document_recipients")),
    )
    op.create_table(
        "document_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("document_id", sa.String(length=1000), nullable=True),
        sa.Column("organ_id", sa.String(length=100), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=True),
        sa.Column("from_organ", sa.String(length=100), nullable=True),
        sa.Column("reported_at", sa.String(length=40), nullable=True),
        sa.Column("at", hub.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("flag", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_events")),
    )
    op.create_index(
        op.f("ix_document_events_applied_id"), "document_events", ["applied", "id"], unique=False
    )
    op.create_index(
        op.f("ix_document_events_document_id_id"),
        "document_events",
        ["document_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_document_events_message_id"), "document_events", ["message_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("document_events")
    op.drop_table("document_recipients")
    op.drop_index(op.f("ix_documents_sender"), table_name="documents")
    op.drop_table("documents")
