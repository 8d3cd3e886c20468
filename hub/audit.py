"""The audit trail: who did what and when, appended only, each entry chained to the last.

An entry is written in the same transaction as the action it records (a replay
and its entry commit together or not at all). Each entry stores the SHA-256 of
its own content and of the entry before it, so `verify` finds the first entry
edited, removed or moved. Writers take a lock first (PostgreSQL: an advisory
transaction lock; SQLite has one writer at a time), so the chain never forks.

Actions recorded: by operators, console sign-in and sign-out, dead-letter
replay and discard (one entry per delivery, plus one for a replay by filter),
pause and resume, directory edits, key rotation; by the hub itself (actor
`hub`), every acceptance (`message.accept`: each message's id, source, type and
the SHA-256 of its envelope as stored), delivery and dead letter
(`delivery.settle`), one entry per group commit so that the chain costs one lock
per batch, not per message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub.envelope import nfc
from hub.store.models import audit, utcnow

GENESIS = "0" * 64
LOCK_KEY = 0x4C475350_41554454  # "LGSPAUDT": the advisory lock of the chain's writers
SEARCH = 1000  # places either side where verify looks for where a moved entry came from


def _digest(
    seq: int, at: datetime, actor: str, action: str, target: str | None, detail: str, prev: str
) -> str:
    body = orjson.dumps([seq, at.isoformat(), actor, action, target, detail, prev])
    return hashlib.sha256(body).hexdigest()


def append(
    conn: sa.Connection,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Add an entry inside the caller's transaction; returns its sequence number."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
    last = conn.execute(
        sa.select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    # Microseconds dropped: what the hash covers must read back the same from any store.
    at = utcnow().replace(microsecond=0)
    text = orjson.dumps(_nfc(dict(detail or {})), option=orjson.OPT_SORT_KEYS).decode()
    actor, target = nfc(actor) or actor, nfc(target)
    conn.execute(
        audit.insert().values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            target=target,
            detail=text,
            prev_hash=prev,
            hash=_digest(seq, at, actor, action, target, text, prev),
        )
    )
    return seq


HUB = "hub"  # the actor of what the hub does by itself


def accepted(conn: sa.Connection, stored: Sequence[tuple[str, str, str, str]]) -> None:
    """One entry for messages stored in this transaction: (id, source, type, envelope)."""
    if not stored:
        return
    listed = [[i, src, t, hashlib.sha256(env.encode()).hexdigest()] for i, src, t, env in stored]
    target = stored[0][0] if len(stored) == 1 else None
    append(conn, HUB, "message.accept", target, {"messages": listed})


def settled(conn: sa.Connection, delivered: Sequence[list[str]], dead: Sequence[list[str]]) -> None:
    """One entry for deliveries settled in this transaction: delivered as
    [message id, destination], dead-lettered as [message id, destination, reason]."""
    if not delivered and not dead:
        return
    detail: dict[str, Any] = {}
    if delivered:
        detail["delivered"] = list(delivered)
    if dead:
        detail["dead"] = list(dead)
    append(conn, HUB, "delivery.settle", None, detail)


def record(
    engine: sa.Engine,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """`append` in a transaction of its own, for actions that change nothing else."""
    with engine.begin() as conn:
        return append(conn, actor, action, target, detail)


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, dict):
        return {k: _nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    return value


def entries(
    engine: sa.Engine,
    *,
    actor: str | None = None,
    action: str | None = None,
    exclude_actor: str | None = None,
    limit: int = 100,
    before: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, `limit` at a time; the page and the cursor of the next one."""
    q = sa.select(audit)
    if actor:
        q = q.where(audit.c.actor == actor)
    if exclude_actor:
        q = q.where(audit.c.actor != exclude_actor)
    if action:
        q = q.where(audit.c.action == action)
    if before is not None:
        q = q.where(audit.c.seq < before)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(audit.c.seq.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    items = [
        {
            "seq": r.seq,
            "at": r.at.isoformat(),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "detail": orjson.loads(r.detail),
        }
        for r in page
    ]
    return items, (page[-1].seq if len(rows) > limit else None)


@dataclass(frozen=True)
class Break:
    """Where the chain stops holding: the entry (by its place) and what is wrong there.

    altered: the entry's content no longer gives its hash; missing: the entry at
    this place is gone (the next one names another predecessor); reordered: an
    intact entry that was written at place `moved_from` sits here.
    """

    seq: int
    problem: str  # altered | missing | reordered
    moved_from: int | None = None


@dataclass(frozen=True)
class Verified:
    count: int  # entries that hold, from the first
    head: str  # the hash of the last one that holds (write it down: see docs/SECURITY.md)
    broken: Break | None


def verify(engine: sa.Engine) -> Verified:
    """Check the whole chain in order; stops at the first break."""
    prev, expected, count = GENESIS, 1, 0
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=1000).execute(
            sa.select(audit).order_by(audit.c.seq)
        )
        for r in rows:
            own = _digest(r.seq, r.at, r.actor, r.action, r.target, r.detail, r.prev_hash)
            if r.seq != expected and own == r.hash:
                return Verified(count, prev, Break(expected, "missing"))
            if own != r.hash:
                return Verified(count, prev, _explain(r, expected))
            if r.prev_hash != prev:
                # Intact, at its own place, but after another entry than the one it
                # was written after: the entry before it was replaced.
                return Verified(count, prev, Break(expected - 1, "altered"))
            prev, expected, count = r.hash, r.seq + 1, count + 1
    return Verified(count, prev, None)


def _explain(r: Any, place: int) -> Break:
    """An entry whose hash fails: edited, or an intact entry moved from another place
    (looked for within `SEARCH` places either side)?"""
    for origin in range(max(1, place - SEARCH), place + SEARCH + 1):
        if origin != r.seq and r.hash == _digest(
            origin, r.at, r.actor, r.action, r.target, r.detail, r.prev_hash
        ):
            return Break(place, "reordered", moved_from=origin)
    return Break(place, "altered")


def export(
    engine: sa.Engine, since: datetime | None, until: datetime | None
) -> Iterator[dict[str, Any]]:
    """Entries in a time window, oldest first, with their hashes."""
    q = sa.select(audit).order_by(audit.c.seq)
    if since is not None:
        q = q.where(audit.c.at >= since)
    if until is not None:
        q = q.where(audit.c.at < until)
    with engine.connect() as conn:
        for r in conn.execution_options(yield_per=1000).execute(q):
            yield {
                "seq": r.seq,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
            }
