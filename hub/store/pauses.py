"""Paused destinations: an operator stops delivery to a system under maintenance.

A paused destination's workers take no new job (those under way finish); its
jobs wait in its queue and its deliveries in the store, so nothing is lost, and
resuming delivers them. The row says who paused it, when and why.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hub import audit
from hub.envelope import nfc
from hub.store.models import pauses, utcnow


def paused(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Every paused destination: who paused it, when, why."""
    with engine.connect() as conn:
        return {
            r.destination: {
                "paused_at": r.paused_at.isoformat(),
                "paused_by": r.paused_by,
                "reason": r.reason,
            }
            for r in conn.execute(sa.select(pauses))
        }


def pause(engine: sa.Engine, destination: str, by: str, reason: str | None) -> bool:
    """Pause `destination`; False when it was paused already (nothing changes)."""
    with engine.begin() as conn:
        if conn.execute(
            sa.select(pauses.c.destination).where(pauses.c.destination == destination)
        ).first():
            return False
        conn.execute(
            pauses.insert().values(
                destination=destination, paused_at=utcnow(), paused_by=by, reason=nfc(reason)
            )
        )
        audit.append(conn, by, "system.pause", destination, {"reason": reason})
        return True


def resume(engine: sa.Engine, destination: str, by: str) -> bool:
    """Resume `destination`; False when it was not paused."""
    with engine.begin() as conn:
        gone = conn.execute(pauses.delete().where(pauses.c.destination == destination))
        if gone.rowcount:
            audit.append(conn, by, "system.resume", destination)
        return bool(gone.rowcount)
