"""Tables of document tracking, on the store's metadata (migration 0003 creates them).

- `documents`: one row per edXML DocumentId the hub saw sent, with its latest action
  and state (active, revoked, updated, replaced).
- `document_recipients`: one row per (document, recipient organ) with the
  recipient's state (see hub/documents/states.py); `progress` is the last of
  sent/01..06 reached, `pending` a request awaiting an answer (take_back after a
  13, update, revoke).
- `document_events`: the history, every package and status that concerned a
  document, applied or not; a row not applied carries its reason in `flag`.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.store.models import BigId, UTCDateTime, metadata

# DocumentIds are free text; longer ones are recorded without a document (see tracking).
DOCUMENT_ID_LENGTH = 1000
ORGAN_ID_LENGTH = 100

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("document_id", sa.String(DOCUMENT_ID_LENGTH), primary_key=True),
    sa.Column("sender", sa.String(ORGAN_ID_LENGTH), nullable=False, index=True),
    sa.Column("subject", sa.Text, nullable=True),
    sa.Column("code_number", sa.Text, nullable=True),
    sa.Column("code_notation", sa.Text, nullable=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("first_message_id", sa.String(128), nullable=False),
    sa.Column("last_message_id", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False, default=False),
)

document_recipients = sa.Table(
    "document_recipients",
    metadata,
    sa.Column(
        "document_id",
        sa.String(DOCUMENT_ID_LENGTH),
        sa.ForeignKey("documents.document_id"),
        primary_key=True,
    ),
    sa.Column("organ_id", sa.String(ORGAN_ID_LENGTH), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("code", sa.String(2), nullable=True),
    sa.Column("progress", sa.String(2), nullable=True),
    sa.Column("pending", sa.String(16), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False, default=False),
)

document_events = sa.Table(
    "document_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("document_id", sa.String(DOCUMENT_ID_LENGTH), nullable=True),
    sa.Column("organ_id", sa.String(ORGAN_ID_LENGTH), nullable=True),
    sa.Column("message_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("code", sa.String(8), nullable=True),
    sa.Column("from_organ", sa.String(ORGAN_ID_LENGTH), nullable=True),
    sa.Column("reported_at", sa.String(40), nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("flag", sa.Text, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index(None, "document_id", "id"),
    sa.Index(None, "applied", "id"),
)
