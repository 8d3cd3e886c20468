"""From the platform's outbox to ingest: what the platform publishes becomes hub messages.

`OutboxRelay` (hub/store/outbox.py) publishes the committed outbox rows to the
platform's queue in id order. `IngestFeed` consumes that queue one message at a
time, in order, and hands each event to `accept` (the hub's ingest, as a message
from the platform's system) before acking it: a crash in between gives the event
again, and ingest drops the repeat by its id. A `Rejected` event (its type not
granted, say) is logged and moved to the queue's dead letters; anything else puts
the rest of the batch back for another try.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from hub.broker import Transport
from hub.errors import Rejected

log = logging.getLogger(__name__)
Accept = Callable[[dict[str, Any]], Awaitable[str]]


class IngestFeed:
    """Hands the platform's published events to ingest, in the order they were published."""

    def __init__(self, transport: Transport, queue: str, accept: Accept, *, batch: int = 100):
        self._transport = transport
        self._queue = queue
        self._accept = accept
        self._batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self._transport.consume(self._queue, prefetch=self._batch)
        try:
            while not stop.is_set():
                messages = await consumer.get(self._batch, timeout=0.5)
                for i, message in enumerate(messages):
                    try:
                        await self._accept(orjson.loads(message.body))
                    except Rejected as exc:
                        log.error("task platform event refused by ingest: %s", exc.detail)
                        await consumer.nack([message], requeue=False)
                        continue
                    except Exception:
                        log.exception("ingest failed; the task platform's events wait")
                        await consumer.nack(messages[i:], requeue=True)
                        break
                    await consumer.ack([message])
        finally:
            await consumer.close()
