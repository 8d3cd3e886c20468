"""Enqueue marks: what the sweep trusts to be in the broker."""

from __future__ import annotations

from datetime import timedelta

from hub.store.db import Database
from hub.store.messages import (
    Hop,
    NewMessage,
    RoutePlan,
    accept,
    accepted_since,
    mark_enqueued,
    pending_since,
    record_routes,
    touch,
)
from hub.store.models import deliveries, utcnow


def db_for(url: str) -> Database:
    db = Database(url.replace("postgresql://", "postgresql+psycopg://"))
    db.upgrade()
    return db


def routed_delivery(db: Database) -> int:
    accept(db.engine, [NewMessage("m1", "vn.lgsp.demo.note.v1", "a:b", None, "{}")])
    jobs = record_routes(db.engine, [RoutePlan("m1", ["x:y"], [Hop("m1", "routed")])])
    return jobs[0].delivery_id


def test_a_confirm_older_than_a_retry_claim_does_not_mark_the_new_job(database_url: str) -> None:
    db = db_for(database_url)
    try:
        delivery = routed_delivery(db)
        confirmed = utcnow()
        with db.engine.begin() as conn:  # the delivery failed and was claimed again later
            conn.execute(deliveries.update().values(updated_at=confirmed + timedelta(seconds=1)))
        mark_enqueued(db.engine, delivery_ids=[delivery], confirmed_since=confirmed)
        later = utcnow() + timedelta(seconds=5)
        assert [j.delivery_id for j in pending_since(db.engine, 0, 10, unqueued_before=later)] == [
            delivery
        ]
        mark_enqueued(db.engine, delivery_ids=[delivery], confirmed_since=later)
        assert pending_since(db.engine, 0, 10, unqueued_before=later) == []
    finally:
        db.close()


def test_the_safety_net_takes_a_stuck_row_once_per_period(database_url: str) -> None:
    db = db_for(database_url)
    try:
        accept(db.engine, [NewMessage("m2", "vn.lgsp.demo.note.v1", "a:b", None, "{}")])
        mark_enqueued(db.engine, message_ids=["m2"])
        soon = utcnow() + timedelta(seconds=5)
        assert accepted_since(db.engine, 0, 10, unqueued_before=soon) == []  # marked: trusted
        stuck = accepted_since(db.engine, 0, 10, unqueued_before=soon, stuck_before=soon)
        assert [m[1] for m in stuck] == ["m2"]
        touch(db.engine, message_ids=["m2"])  # enqueued again: not taken again for a period
        assert (
            accepted_since(
                db.engine,
                0,
                10,
                unqueued_before=soon,
                stuck_before=utcnow() - timedelta(seconds=60),
            )
            == []
        )
    finally:
        db.close()
