"""What each stage writes and reads, in as few transactions as a batch allows.

Every function takes the engine first (see `Database.run`) and works on a batch:
ingest, routing and delivery each commit once per batch, which is what lets one
database carry thousands of messages a second (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub import audit
from hub.envelope import content_digest
from hub.store.models import deliveries, hops, messages, utcnow

# Delivery statuses that end a delivery; the rest are still to do.
FINAL = ("delivered", "dead", "discarded")


@dataclass(frozen=True)
class Hop:
    message_id: str
    stage: str
    detail: str | None = None
    destination: str | None = None


@dataclass(frozen=True)
class RoutePlan:
    """The router's decision for one message: destinations, or none (unroutable)."""

    message_id: str
    destinations: Sequence[str]
    hops: Sequence[Hop]
    order_keys: Mapping[str, str] = field(default_factory=dict)  # destination -> key
    routes: Mapping[str, Sequence[str]] = field(default_factory=dict)  # destination -> rules


@dataclass(frozen=True)
class NewMessage:
    id: str
    type: str
    source: str
    correlationid: str | None
    envelope: str
    plan: RoutePlan | None = None  # stored `accepted` without one, routed later


@dataclass(frozen=True)
class Job:
    """A delivery to hand to a destination's queue."""

    delivery_id: int
    message_id: str
    destination: str
    envelope: str
    accepted_at: datetime | None = None  # when the message was stored


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to."""

    delivery_id: int
    message_id: str
    destination: str
    status: str  # delivered | waiting (for the recipient to pull) | retrying | dead
    detail: str
    next_attempt_at: datetime | None = None


def _insert(engine_or_conn: sa.Engine | sa.Connection, table: sa.Table) -> Any:
    dialect = engine_or_conn.dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _hop_rows(items: Iterable[Hop], at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "message_id": h.message_id,
            "at": at,
            "stage": h.stage,
            "detail": h.detail,
            "destination": h.destination,
        }
        for h in items
    ]


OnStored = Callable[[sa.Connection, Sequence[NewMessage]], object]
KEY_ID_PART = 87  # 87 + "@" + 40 hex digits: the 128 characters of messages.id


def derived_key(source: str, event_id: str) -> str:
    """The hub's key of event `event_id` from `source` when another source holds the id.

    `@` never occurs in an event id (hub/schemas/envelope.json), so no sender can
    take this key with an id of its own; the hash keeps keys of sources apart.
    """
    digest = hashlib.sha256(f"{source}\n{event_id}".encode()).hexdigest()[:40]
    return f"{event_id[:KEY_ID_PART]}@{digest}"


def stored_key(conn: sa.Connection, source: str, event_id: str) -> str:
    """The hub's key of event `event_id` from `source`, as `accept` chose it: the id,
    unless another source held it first. Consumers inside the hub claim this key in
    their inbox, so another system's event with the same id is not taken for a repeat."""
    q = sa.select(messages.c.source).where(messages.c.id == event_id)
    owner = conn.execute(q).scalar()
    return event_id if owner in (None, source) else derived_key(source, event_id)


def accept(
    engine: sa.Engine, items: Sequence[NewMessage], on_stored: OnStored | None = None
) -> tuple[list[str], list[Job]]:
    """Store new messages with their deliveries (from each one's plan) in one commit.

    An event is its (source, id), as CloudEvents says: ids are unique per source.
    A message is stored under its id when no other source holds it, else under
    `derived_key(source, id)`; either way `event_id` keeps the id it came with.

    `on_stored` runs in the same transaction with the messages newly stored (each
    message once, ever, with `id` its key): what must change with them, e.g. a
    document's state.

    Returns, per item, "new" | "duplicate" | "changed", and the delivery jobs of
    the new ones. "duplicate": that source's id is already stored with the same
    content (`envelope.content_digest`: an idempotent resend); "changed": with
    other content (refused: the sender must not believe it was taken). A message
    without a plan waits `accepted` for recovery to route it (`record_routes`).
    """
    now = utcnow()
    first: dict[tuple[str, str], NewMessage] = {}
    for item in items:
        first.setdefault((item.source, item.id), item)
    jobs: list[Job] = []
    with engine.begin() as conn:
        keys, held = _insert_messages(conn, list(first.values()), now)
        fresh = [replace_key(first[e], k) for e, k in keys.items()]
        if fresh:
            routed = [m.plan for m in fresh if m.plan is not None]
            jobs = _create_deliveries(conn, routed, {m.id: m.envelope for m in fresh}, now)
            trace = [Hop(m.id, "accepted") for m in fresh] + [h for p in routed for h in p.hops]
            conn.execute(hops.insert(), _hop_rows(trace, now))
            if on_stored is not None:
                on_stored(conn, fresh)
            audit.accepted(conn, [(m.id, m.source, m.type, m.envelope) for m in fresh])
            # audit last: the chain's lock is held until the commit
    result: list[str] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        event = (item.source, item.id)
        if event in keys and event not in seen:
            result.append("new")
        else:
            stored = held.get(event) or first[event].envelope
            same = content_digest(stored) == content_digest(item.envelope)
            result.append("duplicate" if same else "changed")
        seen.add(event)
    return result, jobs


def replace_key(message: NewMessage, key: str) -> NewMessage:
    """`message` stored under `key`: its plan and trace name the key."""
    if key == message.id:
        return message
    plan = message.plan
    if plan is not None:
        plan = replace(
            plan,
            message_id=key,
            hops=[replace(h, message_id=key) for h in plan.hops],
        )
    return replace(message, id=key, plan=plan)


def _insert_messages(
    conn: sa.Connection, items: Sequence[NewMessage], now: datetime
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    """Insert each (source, id) once: under its id, else (held by another source) under
    its derived key. Returns the keys of those inserted, and the stored envelope of
    those already there."""

    def row(m: NewMessage, key: str) -> dict[str, Any]:
        plan = m.plan
        status = "accepted" if plan is None else "routed" if plan.destinations else "unroutable"
        return {
            "id": key,
            "event_id": m.id,
            "type": m.type,
            "source": m.source,
            "correlationid": m.correlationid,
            "status": status,
            "size": len(m.envelope),
            "envelope": m.envelope,
            "received_at": now,
            "updated_at": now,
        }

    inserted: dict[tuple[str, str], str] = {}
    held: dict[tuple[str, str], str] = {}
    todo = {(m.source, m.id): m.id for m in items}
    for attempt in ("id", "derived"):
        if not todo:
            break
        stmt = _insert(conn, messages).on_conflict_do_nothing(index_elements=["id"])
        rows = [row(m, todo[(m.source, m.id)]) for m in items if (m.source, m.id) in todo]
        returned = stmt.returning(messages.c.id, messages.c.source, messages.c.event_id)
        for r in conn.execute(returned, rows):
            inserted[(r.source, r.event_id)] = r.id
        left = {e: k for e, k in todo.items() if e not in inserted}
        todo = {}
        if not left:
            break
        q = sa.select(messages.c.id, messages.c.source, messages.c.envelope).where(
            messages.c.id.in_(list(left.values()))
        )
        owners = {r.id: (r.source, r.envelope) for r in conn.execute(q)}
        for (source, event_id), key in left.items():
            owner, envelope = owners.get(key, (None, ""))
            if owner == source:
                held[(source, event_id)] = envelope
            elif owner is not None and attempt == "id":
                todo[(source, event_id)] = derived_key(source, event_id)
            else:  # rows are never deleted; a hash collision of derived keys
                raise RuntimeError(f"no key free for event {event_id!r} of {source!r}")
    return inserted, held


def _create_deliveries(
    conn: sa.Connection, plans: Sequence[RoutePlan], envelopes: dict[str, str], now: datetime
) -> list[Job]:
    rows = [
        {
            "message_id": p.message_id,
            "destination": d,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "order_key": p.order_keys.get(d),
            "route": ",".join(p.routes.get(d, ()))[:300] or None,
        }
        for p in plans
        for d in p.destinations
    ]
    if not rows:
        return []
    stmt = _insert(conn, deliveries).on_conflict_do_nothing()
    returned = conn.execute(
        stmt.returning(deliveries.c.id, deliveries.c.message_id, deliveries.c.destination), rows
    )
    return [Job(r.id, r.message_id, r.destination, envelopes[r.message_id], now) for r in returned]


def record_routes(engine: sa.Engine, plans: Sequence[RoutePlan]) -> list[Job]:
    """Create the deliveries of messages still `accepted`; skip those already routed.

    Ingest routes as it stores; this routes what was stored without a plan (rows
    left `accepted` by an earlier version). Rows are locked and their status
    changed conditionally, so two workers recovering at once create nothing twice.
    """
    now = utcnow()
    ids = [p.message_id for p in plans]
    with engine.begin() as conn:
        q = sa.select(messages.c.id, messages.c.envelope).where(
            messages.c.id.in_(ids), messages.c.status == "accepted"
        )
        if conn.dialect.name == "postgresql":
            # Wait for, never skip, a row another transaction holds (a mark_enqueued,
            # a second router with a duplicate): skipping would drop the message.
            q = q.with_for_update()
        envelopes = {r.id: r.envelope for r in conn.execute(q)}
        todo = [p for p in plans if p.message_id in envelopes]
        if not todo:
            return []
        jobs = _create_deliveries(conn, todo, envelopes, now)
        conn.execute(hops.insert(), _hop_rows((h for p in todo for h in p.hops), now))
        by_status: dict[str, list[str]] = defaultdict(list)
        for p in todo:
            by_status["routed" if p.destinations else "unroutable"].append(p.message_id)
        for status, group in by_status.items():
            conn.execute(
                messages.update()
                .where(messages.c.id.in_(group))
                .values(status=status, updated_at=now)
            )
    return jobs


def delivery_states(engine: sa.Engine, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """Current (status, attempts) of deliveries, to skip what is already done."""
    with engine.connect() as conn:
        q = sa.select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts).where(
            deliveries.c.id.in_(ids)
        )
        return {r.id: (r.status, r.attempts) for r in conn.execute(q)}


def record_outcomes(engine: sa.Engine, outcomes: Sequence[Outcome]) -> None:
    """Write attempt results, their trace hops and the messages' new status in one commit."""
    now = utcnow()
    rows = [
        {
            "did": o.delivery_id,
            "st": o.status,
            "nxt": o.next_attempt_at,
            "now": now,
            "err": None if o.status == "delivered" else o.detail,
            "dat": now if o.status == "delivered" else None,
        }
        for o in sorted(outcomes, key=lambda o: o.delivery_id)  # one lock order: no deadlock
    ]
    update = (
        deliveries.update()
        .where(
            deliveries.c.id == sa.bindparam("did"),
            *(deliveries.c.status != final for final in FINAL),
        )
        .values(
            status=sa.bindparam("st"),
            attempts=deliveries.c.attempts + 1,
            next_attempt_at=sa.bindparam("nxt"),
            last_error=sa.bindparam("err"),
            updated_at=sa.bindparam("now"),
            delivered_at=sa.bindparam("dat"),
        )
    )
    with engine.begin() as conn:
        conn.execute(update, rows)
        stage = {
            "delivered": "delivered",
            "waiting": "awaiting_pull",
            "retrying": "attempt_failed",
            "dead": "dead_lettered",
        }
        conn.execute(
            hops.insert(),
            _hop_rows(
                (Hop(o.message_id, stage[o.status], o.detail, o.destination) for o in outcomes), now
            ),
        )
        refresh_status(conn, {o.message_id for o in outcomes}, now)
        audit.settled(
            conn,
            [[o.message_id, o.destination] for o in outcomes if o.status == "delivered"],
            [[o.message_id, o.destination, o.detail or ""] for o in outcomes if o.status == "dead"],
        )


def refresh_status(conn: sa.Connection, ids: Iterable[str], now: datetime) -> None:
    """Recompute each message's status from its deliveries.

    On PostgreSQL the messages' rows are locked first (in id order): two workers
    settling deliveries of one message at once then count in turn, the second
    seeing the first's committed outcome, instead of both counting before either
    commits and the later write leaving a stale status.
    """
    ids = sorted(set(ids))
    if conn.dialect.name == "postgresql":
        lock = sa.select(messages.c.id).where(messages.c.id.in_(ids)).order_by(messages.c.id)
        conn.execute(lock.with_for_update())
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    q = (
        sa.select(deliveries.c.message_id, deliveries.c.status, sa.func.count())
        .where(deliveries.c.message_id.in_(ids))
        .group_by(deliveries.c.message_id, deliveries.c.status)
    )
    for message_id, status, n in conn.execute(q):
        counts[message_id][status] = n
    by_status: dict[str, list[str]] = defaultdict(list)
    for message_id, c in counts.items():
        by_status[message_status(c)].append(message_id)
    for status, group in by_status.items():
        conn.execute(
            messages.update().where(messages.c.id.in_(group)).values(status=status, updated_at=now)
        )


def message_status(counts: dict[str, int]) -> str:
    """A message's status from the count of its deliveries in each status."""
    total = sum(counts.values())
    delivered = counts.get("delivered", 0)
    dead = counts.get("dead", 0) + counts.get("discarded", 0)
    if delivered == total:
        return "delivered"
    if delivered:
        return "partially_delivered"
    if dead == total:
        return "dead"
    return "routed"


def claim_due(engine: sa.Engine, limit: int = 500) -> list[Job]:
    """Take deliveries whose retry time has come, marking them pending; each is taken once."""
    now = utcnow()
    with engine.begin() as conn:
        due = (
            sa.select(deliveries.c.id)
            .where(deliveries.c.status == "retrying", deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claimed = conn.execute(
            deliveries.update()
            .where(deliveries.c.id.in_(due.scalar_subquery()), deliveries.c.status == "retrying")
            .values(status="pending", updated_at=now, enqueued_at=None)
            .returning(deliveries.c.id, deliveries.c.message_id, deliveries.c.destination)
        ).all()
        return _jobs(conn, claimed)


def _jobs(conn: sa.Connection, rows: Sequence[Any]) -> list[Job]:
    if not rows:
        return []
    ids = list({r.message_id for r in rows})
    q = sa.select(messages.c.id, messages.c.envelope, messages.c.received_at).where(
        messages.c.id.in_(ids)
    )
    found = {r.id: (r.envelope, r.received_at) for r in conn.execute(q)}
    return [Job(r.id, r.message_id, r.destination, *found[r.message_id]) for r in rows]


def accepted_since(
    engine: sa.Engine,
    after_seq: int,
    limit: int,
    *,
    unqueued_before: datetime | None = None,
    stuck_before: datetime | None = None,
) -> list[tuple[int, str, str]]:
    """Messages still waiting for the router: (seq, id, envelope), oldest first.

    With `unqueued_before`, only those never confirmed in the broker and accepted
    before that time (the ones a crash left behind), and with `stuck_before` also
    those waiting since before that time, confirmed or not (a safety net).
    """
    q = sa.select(messages.c.seq, messages.c.id, messages.c.envelope).where(
        messages.c.status == "accepted", messages.c.seq > after_seq
    )
    if unqueued_before is not None:
        lost = sa.and_(messages.c.enqueued_at.is_(None), messages.c.received_at < unqueued_before)
        if stuck_before is not None:
            lost = sa.or_(lost, messages.c.updated_at < stuck_before)
        q = q.where(lost)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(messages.c.seq).limit(limit))
        return [(r.seq, r.id, r.envelope) for r in rows]


def pending_since(
    engine: sa.Engine,
    after_id: int,
    limit: int,
    *,
    unqueued_before: datetime | None = None,
    stuck_before: datetime | None = None,
) -> list[Job]:
    """Deliveries waiting for their first or next try now, oldest first (see accepted_since)."""
    q = sa.select(deliveries.c.id, deliveries.c.message_id, deliveries.c.destination).where(
        deliveries.c.status == "pending", deliveries.c.id > after_id
    )
    if unqueued_before is not None:
        lost = sa.and_(
            deliveries.c.enqueued_at.is_(None), deliveries.c.updated_at < unqueued_before
        )
        if stuck_before is not None:
            lost = sa.or_(lost, deliveries.c.updated_at < stuck_before)
        q = q.where(lost)
    with engine.connect() as conn:
        return _jobs(conn, conn.execute(q.order_by(deliveries.c.id).limit(limit)).all())


def mark_enqueued(
    engine: sa.Engine,
    *,
    message_ids: Sequence[str] = (),
    delivery_ids: Sequence[int] = (),
    confirmed_since: datetime | None = None,
) -> None:
    """Note that the broker confirmed these messages or delivery jobs.

    Only rows still waiting (`accepted`, `pending`) and not changed after
    `confirmed_since` (the time of the oldest confirm noted) are marked: a delivery
    claimed again for a retry after its first job was confirmed keeps no mark, so the
    sweep still covers its new job. Rows another transaction holds are skipped, never
    waited for, so this never deadlocks with the router or the outcome writer.
    """
    now = utcnow()
    since = confirmed_since or now
    with engine.begin() as conn:
        for table, key, ids, waiting in (
            (messages, messages.c.id, message_ids, messages.c.status == "accepted"),
            (
                deliveries,
                deliveries.c.id,
                delivery_ids,
                sa.and_(deliveries.c.status == "pending", deliveries.c.updated_at <= since),
            ),
        ):
            if not ids:
                continue
            free = sa.select(key).where(key.in_(ids), waiting)
            if conn.dialect.name == "postgresql":
                free = free.with_for_update(skip_locked=True)
            conn.execute(
                table.update().where(key.in_(free.scalar_subquery())).values(enqueued_at=now)
            )


def touch(
    engine: sa.Engine, *, message_ids: Sequence[str] = (), delivery_ids: Sequence[int] = ()
) -> None:
    """Set `updated_at` of rows being enqueued again, so the safety net takes each
    stuck row once per period, not at every sweep."""
    now = utcnow()
    with engine.begin() as conn:
        if message_ids:
            conn.execute(
                messages.update().where(messages.c.id.in_(message_ids)).values(updated_at=now)
            )
        if delivery_ids:
            conn.execute(
                deliveries.update().where(deliveries.c.id.in_(delivery_ids)).values(updated_at=now)
            )


def blocked(engine: sa.Engine, ids: Sequence[int]) -> set[int]:
    """Of these deliveries, those with an earlier one of the same order key to the same
    destination not yet final (delivered, dead, discarded): they must wait their turn."""
    if not ids:
        return set()
    d, earlier = deliveries.alias("d"), deliveries.alias("earlier")
    ahead = sa.exists().where(
        earlier.c.destination == d.c.destination,
        earlier.c.order_key == d.c.order_key,
        earlier.c.id < d.c.id,
        earlier.c.status.not_in(FINAL),
    )
    q = sa.select(d.c.id).where(d.c.id.in_(ids), d.c.order_key.is_not(None), ahead)
    with engine.connect() as conn:
        return {r.id for r in conn.execute(q)}


def defer(engine: sa.Engine, delivery_ids: Sequence[int], seconds: float) -> None:
    """Put deliveries back to wait their turn: due again in `seconds`, no try counted."""
    if not delivery_ids:
        return
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id.in_(delivery_ids), deliveries.c.status == "pending")
            .values(
                status="retrying",
                next_attempt_at=now + timedelta(seconds=seconds),
                updated_at=now,
                enqueued_at=None,
            )
        )
