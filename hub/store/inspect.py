"""Reads for the API and CLI, and the operator's actions on dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub import audit
from hub.store.messages import refresh_status
from hub.store.models import deliveries, hops, messages, utcnow

MESSAGE_STATUSES = ("accepted", "routed", "delivered", "partially_delivered", "unroutable", "dead")


@dataclass(frozen=True)
class MessageFilter:
    correlationid: str | None = None
    type: str | None = None
    source: str | None = None
    status: str | None = None
    destination: str | None = None  # messages with a delivery to this system
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    event_id: str | None = None  # events with this id, of every source (`message_keys`)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _has_event_id(event_id: str) -> sa.ColumnElement[bool]:
    """Rows of event `event_id` (rows stored before 0013 have no `event_id`; their `id`
    is the event's), or the row whose hub key it is."""
    return sa.or_(messages.c.id == event_id, messages.c.event_id == event_id)


def message_keys(
    engine: sa.Engine, event_id: str, source: str | None = None
) -> list[tuple[str, str]]:
    """(hub key, source) of the messages with this event id (or hub key), of `source`
    or of every source, oldest first. Ids are unique per source, not across them."""
    q = sa.select(messages.c.id, messages.c.source).where(_has_event_id(event_id))
    if source is not None:
        q = q.where(messages.c.source == source)
    with engine.connect() as conn:
        return [(r.id, r.source) for r in conn.execute(q.order_by(messages.c.seq))]


def get_message(engine: sa.Engine, message_id: str) -> dict[str, Any] | None:
    """The message whose hub key is `message_id`, with its deliveries and trace, or None."""
    with engine.connect() as conn:
        m = conn.execute(sa.select(messages).where(messages.c.id == message_id)).first()
        if m is None:
            return None
        ds = conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.message_id == message_id)
            .order_by(deliveries.c.id)
        ).all()
        hs = conn.execute(
            sa.select(hops).where(hops.c.message_id == message_id).order_by(hops.c.id)
        ).all()
    return {
        "id": m.id,
        "event_id": m.event_id or m.id,
        "type": m.type,
        "source": m.source,
        "correlationid": m.correlationid,
        "status": m.status,
        "size": m.size,
        "received_at": _iso(m.received_at),
        "updated_at": _iso(m.updated_at),
        "deliveries": [_delivery(d) for d in ds],
        "trace": [
            {"at": _iso(h.at), "stage": h.stage, "destination": h.destination, "detail": h.detail}
            for h in hs
        ],
        "envelope": orjson.loads(m.envelope),
    }


def _delivery(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "destination": d.destination,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "next_attempt_at": _iso(d.next_attempt_at),
        "delivered_at": _iso(d.delivered_at),
    }


def list_messages(
    engine: sa.Engine, f: MessageFilter, *, limit: int, before: int | None, source_only: str | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, `limit` at a time; returns the page and the cursor of the next one."""
    q = sa.select(
        messages.c.seq,
        messages.c.id,
        messages.c.type,
        messages.c.source,
        messages.c.correlationid,
        messages.c.status,
        messages.c.received_at,
    )
    for column, value in (
        (messages.c.correlationid, f.correlationid),
        (messages.c.type, f.type),
        (messages.c.source, f.source),
        (messages.c.status, f.status),
        (messages.c.source, source_only),
    ):
        if value is not None:
            q = q.where(column == value)
    if f.event_id is not None:
        q = q.where(_has_event_id(f.event_id))
    if f.destination is not None:
        q = q.where(
            sa.exists().where(
                deliveries.c.message_id == messages.c.id,
                deliveries.c.destination == f.destination,
            )
        )
    if f.since is not None:
        q = q.where(messages.c.received_at >= f.since)
    if f.until is not None:
        q = q.where(messages.c.received_at < f.until)
    if before is not None:
        q = q.where(messages.c.seq < before)
    q = q.order_by(messages.c.seq.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    page = rows[:limit]
    items = [
        {
            "id": r.id,
            "type": r.type,
            "source": r.source,
            "correlationid": r.correlationid,
            "status": r.status,
            "received_at": _iso(r.received_at),
        }
        for r in page
    ]
    return items, (page[-1].seq if len(rows) > limit else None)


def list_dead_letters(
    engine: sa.Engine,
    *,
    destination: str | None,
    limit: int,
    before: int | None,
    type: str | None = None,
    source: str | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Dead deliveries, newest first, with the message they belong to."""
    q = _dead(sa.select(deliveries, messages.c.type, messages.c.source), destination, type, source)
    if before is not None:
        q = q.where(deliveries.c.id < before)
    q = q.order_by(deliveries.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    page = rows[:limit]
    items = [
        {
            "id": r.id,
            "message_id": r.message_id,
            "destination": r.destination,
            "type": r.type,
            "source": r.source,
            "attempts": r.attempts,
            "reason": r.last_error,
            "dead_at": _iso(r.updated_at),
        }
        for r in page
    ]
    return items, (page[-1].id if len(rows) > limit else None)


def _dead(q: sa.Select[Any], destination: str | None, type: str | None, source: str | None) -> Any:
    """`q` narrowed to dead deliveries matching a filter (each field given must match)."""
    q = q.join(messages, messages.c.id == deliveries.c.message_id).where(
        deliveries.c.status == "dead"
    )
    if destination:
        q = q.where(deliveries.c.destination == destination)
    if type:
        q = q.where(messages.c.type == type)
    if source:
        q = q.where(messages.c.source == source)
    return q


def dead_letter_ids(
    engine: sa.Engine,
    *,
    destination: str | None,
    type: str | None,
    source: str | None,
    limit: int,
) -> list[int]:
    """The dead deliveries a filter matches, oldest first."""
    q = _dead(sa.select(deliveries.c.id), destination, type, source)
    with engine.connect() as conn:
        return list(conn.execute(q.order_by(deliveries.c.id).limit(limit)).scalars())


def replay_matching(
    engine: sa.Engine,
    *,
    destination: str | None,
    type: str | None,
    source: str | None,
    by: str,
    limit: int,
) -> tuple[int, int]:
    """Replay the dead letters a filter matches, oldest first, at most `limit`; each in
    its own transaction with its audit entry, then one entry for the whole action.
    Returns (matched, replayed): a delivery replayed by someone else meanwhile is skipped."""
    ids = dead_letter_ids(engine, destination=destination, type=type, source=source, limit=limit)
    done = sum(replay(engine, delivery_id, by=by) for delivery_id in ids)
    given = {"destination": destination, "type": type, "source": source}
    audit.record(
        engine,
        by,
        "dead_letter.replay_matching",
        None,
        {"filter": {k: v for k, v in given.items() if v}, "replayed": done},
    )
    return len(ids), done


def get_dead_letter(engine: sa.Engine, delivery_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        d = conn.execute(
            sa.select(deliveries).where(
                deliveries.c.id == delivery_id, deliveries.c.status == "dead"
            )
        ).first()
        if d is None:
            return None
        history = conn.execute(
            sa.select(hops)
            .where(hops.c.message_id == d.message_id, hops.c.destination == d.destination)
            .order_by(hops.c.id)
        ).all()
    return {
        **_delivery(d),
        "message_id": d.message_id,
        "reason": d.last_error,
        "history": [{"at": _iso(h.at), "stage": h.stage, "detail": h.detail} for h in history],
    }


def replay(engine: sa.Engine, delivery_id: int, *, by: str) -> bool:
    """Put a dead delivery back to be tried now, with a fresh set of tries."""
    return _act(
        engine,
        delivery_id,
        by=by,
        stage="replayed",
        values={"status": "retrying", "attempts": 0, "next_attempt_at": utcnow()},
    )


def discard(engine: sa.Engine, delivery_id: int, *, by: str) -> bool:
    """Give up a dead delivery for good; it stays in the store, marked discarded."""
    return _act(
        engine,
        delivery_id,
        by=by,
        stage="discarded",
        values={"status": "discarded", "next_attempt_at": None},
    )


def _act(
    engine: sa.Engine, delivery_id: int, *, by: str, stage: str, values: dict[str, Any]
) -> bool:
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id, deliveries.c.status == "dead")
            .values(updated_at=now, **values)
            .returning(deliveries.c.message_id, deliveries.c.destination)
        ).first()
        if row is None:
            return False
        conn.execute(
            hops.insert().values(
                message_id=row.message_id,
                at=now,
                stage=stage,
                destination=row.destination,
                detail=f"by {by}",
            )
        )
        refresh_status(conn, [row.message_id], now)
        action = {"replayed": "dead_letter.replay", "discarded": "dead_letter.discard"}[stage]
        audit.append(
            conn,
            by,
            action,
            f"delivery:{delivery_id}",
            {"message_id": row.message_id, "destination": row.destination},
        )
    return True


OPEN_STATUSES = ("pending", "retrying", "waiting", "dead")


def open_deliveries(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Deliveries not yet final (and dead letters), counted by (destination, status)."""
    q = (
        sa.select(deliveries.c.destination, deliveries.c.status, sa.func.count())
        .where(deliveries.c.status.in_(OPEN_STATUSES))
        .group_by(deliveries.c.destination, deliveries.c.status)
    )
    with engine.connect() as conn:
        return {(d, s): n for d, s, n in conn.execute(q)}
