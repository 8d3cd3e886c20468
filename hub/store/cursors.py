"""Cursors: how far a poller of an external system has got, kept across restarts.

A cursor is a named text value (the poller decides what it holds, usually JSON)
with the time it was last written. `get_cursor` and `set_cursor` run in the
caller's transaction; `load` and `save` are the same for `Database.run`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.store.models import cursors, utcnow


def get_cursor(conn: sa.Connection, name: str) -> str | None:
    """The value of cursor `name`, or None if it was never set."""
    value = conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).scalar()
    return None if value is None else str(value)


def set_cursor(conn: sa.Connection, name: str, value: str) -> None:
    """Create or replace cursor `name`, in the caller's transaction."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(cursors).values(name=name, value=value, updated_at=utcnow())
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[cursors.c.name],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
    )


def load(engine: sa.Engine, name: str) -> str | None:
    """`get_cursor` in a connection of its own (for `Database.read`)."""
    with engine.connect() as conn:
        return get_cursor(conn, name)


def save(engine: sa.Engine, name: str, value: str) -> None:
    """`set_cursor` committed on its own (for `Database.run`)."""
    with engine.begin() as conn:
        set_cursor(conn, name, value)
