"""What a pulling recipient reads and acknowledges: its deliveries `waiting`.

The local document axis API (hub/api/edoc.py) lists them, hands out their
envelope, and records the recipient's transport acknowledgement: `done` makes
the delivery `delivered`, `fail` dead-letters it with the recipient's reason
(an operator can replay it: it waits again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hub import audit
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


def count_waiting(engine: sa.Engine, destination: str, types: Sequence[str]) -> int:
    """How many messages of `types` wait for `destination`."""
    q = (
        sa.select(sa.func.count())
        .select_from(deliveries.join(messages, deliveries.c.message_id == messages.c.id))
        .where(
            deliveries.c.destination == destination,
            deliveries.c.status == "waiting",
            messages.c.type.in_(types),
        )
    )
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def sent(
    engine: sa.Engine, source: str, types: Sequence[str], limit: int = 500
) -> list[dict[str, Any]]:
    """The deliveries of the newest messages of `types` that `source` sent, newest first."""
    recent = (
        sa.select(messages.c.id)
        .where(messages.c.source == source, messages.c.type.in_(types))
        .order_by(messages.c.seq.desc())
        .limit(limit)
        .scalar_subquery()
    )
    q = (
        sa.select(
            messages.c.id,
            messages.c.type,
            messages.c.envelope,
            messages.c.received_at,
            deliveries.c.destination,
            deliveries.c.status,
            deliveries.c.delivered_at,
        )
        .join(deliveries, deliveries.c.message_id == messages.c.id)
        .where(messages.c.id.in_(recent))
        .order_by(messages.c.seq.desc(), deliveries.c.id)
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


@dataclass(frozen=True)
class Acknowledged:
    status: str  # the delivery's status after the call
    changed: bool  # False: a repeated call, or the delivery was not waiting
    accepted_at: datetime  # when the hub created the delivery (its message was accepted)


def acknowledge(
    engine: sa.Engine, destination: str, message_id: str, *, ok: bool, detail: str
) -> Acknowledged | None:
    """Record the recipient's done/fail; None if no such delivery exists.

    `done` for a delivery already delivered changes nothing (a repeated call).
    """
    now = utcnow()
    where = (deliveries.c.message_id == message_id, deliveries.c.destination == destination)
    with engine.begin() as conn:
        row = conn.execute(sa.select(deliveries.c.status, deliveries.c.created_at).where(*where))
        found = row.first()
        if found is None:
            return None
        if found.status != "waiting":
            return Acknowledged(found.status, False, found.created_at)
        new = "delivered" if ok else "dead"
        updated = conn.execute(
            deliveries.update()
            .where(*where, deliveries.c.status == "waiting")
            .values(
                status=new,
                updated_at=now,
                delivered_at=now if ok else None,
                last_error=None if ok else detail,
            )
        )
        if not updated.rowcount:  # another call got there first
            return Acknowledged(found.status, False, found.created_at)
        stage = "delivered" if ok else "dead_lettered"
        conn.execute(hops.insert(), _hop_rows([Hop(message_id, stage, detail, destination)], now))
        refresh_status(conn, [message_id], now)
        delivered = [[message_id, destination]] if ok else []
        audit.settled(conn, delivered, [] if ok else [[message_id, destination, detail]])
        return Acknowledged(new, True, found.created_at)
