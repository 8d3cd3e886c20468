"""A message's status when two workers settle its deliveries at the same moment.

Each worker's outcome commit recomputes the message's status from its
deliveries. On PostgreSQL the two commits overlap: the test holds the first one
open after it recomputed, lets the second run until it waits, then commits the
first. The second must count with the first's outcome, so the message ends
`delivered`, not `partially_delivered` with both deliveries delivered.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from hub.store.db import Database
from hub.store.messages import (
    Hop,
    NewMessage,
    Outcome,
    RoutePlan,
    accept,
    record_outcomes,
    record_routes,
    refresh_status,
)
from hub.store.models import deliveries, messages, utcnow
from tests.support import wait_until


@pytest.mark.postgres
def test_two_deliveries_settled_at_once_leave_the_message_delivered(pg_url: str) -> None:
    db = Database(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    db.upgrade()
    try:
        accept(db.engine, [NewMessage("m1", "vn.lgsp.demo.note.v1", "a:b", None, "{}")])
        plan = RoutePlan("m1", ["x:a", "x:b"], [Hop("m1", "routed")])
        first, second = sorted(record_routes(db.engine, [plan]), key=lambda j: j.destination)
        with db.engine.connect() as held:
            held.begin()
            held.execute(
                deliveries.update()
                .where(deliveries.c.id == first.delivery_id)
                .values(status="delivered", delivered_at=utcnow())
            )
            refresh_status(held, ["m1"], utcnow())  # recomputed, not yet committed

            outcome = Outcome(second.delivery_id, "m1", "x:b", "delivered", "HTTP 200")
            other = threading.Thread(target=record_outcomes, args=(db.engine, [outcome]))
            other.start()

            def waiting() -> bool:
                q = sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                with db.engine.connect() as look:
                    return bool(look.execute(q).scalar())

            wait_until(waiting, timeout=10)  # the second commit waits for the first
            held.commit()
        other.join(timeout=10)
        assert not other.is_alive()
        with db.engine.connect() as conn:
            status = conn.execute(sa.select(messages.c.status).where(messages.c.id == "m1"))
            assert status.scalar() == "delivered"
    finally:
        db.close()
