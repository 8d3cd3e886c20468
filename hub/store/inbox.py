"""The inbox: which messages a consumer of the hub has applied, for exactly-once effects.

A consumer (the task platform, a connector keeping state) calls `claim` inside the
transaction that applies a batch, and applies only the ids it returns: a message
the broker delivers twice is claimed once, and a rollback releases the claim with
the effects it guarded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.store.models import inbox, utcnow


def claim(conn: sa.Connection, consumer: str, message_ids: Sequence[str]) -> set[str]:
    """Record `message_ids` as applied by `consumer`; returns those it had not applied yet."""
    if not message_ids:
        return set()
    now = utcnow()
    rows = [{"consumer": consumer, "message_id": m, "processed_at": now} for m in message_ids]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(inbox).on_conflict_do_nothing().returning(inbox.c.message_id)
    return {r[0] for r in conn.execute(stmt, rows)}
