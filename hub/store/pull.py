"""What a pulling recipient reads and acknowledges: its deliveries `waiting`.

The local document axis API (hub/api/edoc.py) lists them, hands out their
envelope, and records the recipient's transport acknowledgement: `done` makes
the delivery `delivered`, `fail` dead-letters it with the recipient's reason
(an operator can replay it: it waits again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from hub.store.messages import Hop, _hop_rows, refresh_status
from hub.store.models import deliveries, hops, messages, utcnow


def waiting(
    engine: sa.Engine, destination: str, types: Sequence[str], limit: int = 500
) -> list[dict[str, Any]]:
    """The messages of `types` waiting for `destination`, oldest first."""
    q = (
        sa.select(
            messages.c.id,
            messages.c.type,
            messages.c.source,
            messages.c.envelope,
            deliveries.c.created_at,
            deliveries.c.updated_at,
        )
        .join(deliveries, deliveries.c.message_id == messages.c.id)
        .where(
            deliveries.c.destination == destination,
            deliveries.c.status == "waiting",
            messages.c.type.in_(types),
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def fetch(engine: sa.Engine, destination: str, message_id: str) -> str | None:
    """The envelope of a message held for (or already taken by) `destination`."""
    q = (
        sa.select(messages.c.envelope)
        .join(deliveries, deliveries.c.message_id == messages.c.id)
        .where(
            messages.c.id == message_id,
            deliveries.c.destination == destination,
            deliveries.c.status.in_(("waiting", "delivered")),
        )
    )
    with engine.connect() as conn:
        return conn.execute(q).scalar()


def acknowledge(
    engine: sa.Engine, destination: str, message_id: str, *, ok: bool, detail: str
) -> str | None:
    """Record the recipient's done/fail. Returns the delivery's status, None if none exists.

    `done` for a delivery already delivered changes nothing (a repeated call).
    """
    now = utcnow()
    where = (deliveries.c.message_id == message_id, deliveries.c.destination == destination)
    with engine.begin() as conn:
        status = conn.execute(sa.select(deliveries.c.status).where(*where)).scalar()
        if status != "waiting":
            return status
        new = "delivered" if ok else "dead"
        conn.execute(
            deliveries.update()
            .where(*where, deliveries.c.status == "waiting")
            .values(
                status=new,
                updated_at=now,
                delivered_at=now if ok else None,
                last_error=None if ok else detail,
            )
        )
        stage = "delivered" if ok else "dead_lettered"
        conn.execute(hops.insert(), _hop_rows([Hop(message_id, stage, detail, destination)], now))
        refresh_status(conn, [message_id], now)
        return new
