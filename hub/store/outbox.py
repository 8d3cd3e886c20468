"""The transactional outbox: a state change and the message it must publish commit together.

`add` writes the message in the caller's transaction; `OutboxRelay` publishes what
is committed and marks it published. A crash between the publish and the mark
publishes a row again (at least once); consumers drop repeats with their inbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping

import orjson
import sqlalchemy as sa

from hub.broker import Outgoing, Transport
from hub.store.db import Database
from hub.store.models import outbox, utcnow

log = logging.getLogger(__name__)


def add(conn: sa.Connection, queue: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Queue a message for publishing, in the caller's transaction."""
    conn.execute(
        outbox.insert().values(
            queue=queue,
            body=body,
            headers=orjson.dumps(dict(headers)).decode(),
            created_at=utcnow(),
        )
    )


def unpublished(engine: sa.Engine, limit: int) -> list[tuple[int, str, bytes, str]]:
    with engine.connect() as conn:
        q = (
            sa.select(outbox.c.id, outbox.c.queue, outbox.c.body, outbox.c.headers)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [(r.id, r.queue, r.body, r.headers) for r in conn.execute(q)]


def mark_published(engine: sa.Engine, ids: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(published_at=utcnow()))


class OutboxRelay:
    """Publishes committed outbox rows in order of their commit, a batch at a time."""

    def __init__(
        self, db: Database, transport: Transport, *, poll: float = 0.5, batch: int = 500
    ) -> None:
        self._db = db
        self._transport = transport
        self._poll = poll
        self._batch = batch

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows it published."""
        rows = await self._db.run(unpublished, self._batch)
        by_queue: dict[str, list[Outgoing]] = defaultdict(list)
        for _, queue, body, headers in rows:
            by_queue[queue].append(Outgoing(bytes(body), orjson.loads(headers)))
        for queue, messages in by_queue.items():
            await self._transport.publish(queue, messages)
        if rows:
            await self._db.run(mark_published, [r[0] for r in rows])
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if await self.relay_once() == self._batch:
                continue
            try:
                await asyncio.wait_for(stop.wait(), self._poll)
            except TimeoutError:
                pass
