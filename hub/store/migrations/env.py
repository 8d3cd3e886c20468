"""Alembic environment: the connection is handed in by hub.store.db (no alembic.ini)."""

from __future__ import annotations

from alembic import context

import hub.documents.tables  # its tables join the metadata (as do the next)
import hub.reports.tables
import hub.tasks.tables  # noqa: F401 - its tables join the metadata
from hub.store.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
