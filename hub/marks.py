"""Marks rows enqueued once the broker confirmed them, a few times a second in one go.

Marking right after each publish would cost a commit per batch at every stage;
the sweep only looks at rows unmarked for `HUB_RECOVERY_GRACE_SECONDS` (30 s),
so noting the confirmed ids and marking them together every half second is as
safe and nearly free. A crash before a flush leaves some confirmed rows
unmarked: the sweep enqueues them again, and the workers drop the repeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime

from hub.store.db import Database
from hub.store.messages import mark_enqueued
from hub.store.models import utcnow

log = logging.getLogger(__name__)


class EnqueueMarks:
    """Collects confirmed message and delivery ids; `run` writes them periodically."""

    def __init__(self, db: Database, *, every: float = 0.5) -> None:
        self._db = db
        self._every = every
        self._messages: list[str] = []
        self._deliveries: list[int] = []
        self._since: datetime | None = None  # when the oldest noted confirm came

    def messages(self, ids: Iterable[str]) -> None:
        self._since = self._since or utcnow()
        self._messages.extend(ids)

    def deliveries(self, ids: Iterable[int]) -> None:
        self._since = self._since or utcnow()
        self._deliveries.extend(ids)

    async def flush(self) -> None:
        messages, self._messages = self._messages, []
        deliveries, self._deliveries = self._deliveries, []
        since, self._since = self._since, None
        if not (messages or deliveries):
            return
        try:
            await self._db.run(
                mark_enqueued, message_ids=messages, delivery_ids=deliveries, confirmed_since=since
            )
        except Exception as exc:  # noqa: BLE001 - unmarked rows are swept; nothing is lost
            log.warning("could not mark %d rows enqueued: %s", len(messages) + len(deliveries), exc)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self._every)
            except TimeoutError:
                pass
            await self.flush()
