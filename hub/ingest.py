"""Ingest: validate, authorise, store, publish.

A message is answered 202 once its batch is committed to the store, the record
of truth. Publishing to the router's queue follows the commit; if it fails, or
the process dies first, the message is still `accepted` in the store and
recovery enqueues it again (hub/runtime.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson

from hub import envelope
from hub.batching import Batcher
from hub.broker import Outgoing, Transport
from hub.config import HubConfig, System
from hub.errors import Conflict, FieldError, Forbidden, Invalid
from hub.marks import EnqueueMarks
from hub.store.db import Database
from hub.store.messages import NewMessage, accept
from hub.validation import Validators

log = logging.getLogger(__name__)


class Ingest:
    """Turns a system's request body into a stored, published message."""

    def __init__(
        self,
        config: HubConfig,
        db: Database,
        transport: Transport,
        route_queue: str,
        marks: EnqueueMarks,
    ) -> None:
        self.config = config
        self.validators = Validators(config.types)
        self._db = db
        self._transport = transport
        self._route_queue = route_queue
        self._marks = marks
        self._batcher: Batcher[NewMessage, str] = Batcher(self._store, max_batch=500)
        self._publishing: set[asyncio.Task[None]] = set()

    def parse(self, caller: System, raw: bytes) -> NewMessage:
        """Check a body sent by `caller`. Raises Invalid (422) or Forbidden (403)."""
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Invalid(
                f"the body is not valid JSON: {exc}", errors=[FieldError("", "not valid JSON")]
            ) from exc
        self.validators.check_envelope(event)
        if event["source"] != caller.id:
            raise Forbidden(
                f"source {event['source']!r} is not the calling system {caller.id!r}",
                errors=[FieldError("/source", "must be the id of the calling system")],
            )
        if not caller.can_send(event["type"]):
            raise Forbidden(
                f"{caller.id} may not send {event['type']}",
                errors=[FieldError("/type", "not granted to the calling system")],
            )
        self.validators.check_data(event)
        event = envelope.nfc(event)
        return NewMessage(
            id=event["id"],
            type=event["type"],
            source=event["source"],
            correlationid=event.get("correlationid"),
            envelope=envelope.dumps(event).decode("utf-8"),
        )

    async def accept(self, message: NewMessage) -> str:
        """Store a parsed message; returns "new" or "duplicate". Raises Conflict."""
        outcome = await self._batcher.submit(message)
        if outcome == "conflict":
            raise Conflict(
                f"id {message.id!r} is already used by another source",
                errors=[FieldError("/id", "taken by another source")],
            )
        return outcome

    async def _store(self, items: Sequence[NewMessage]) -> list[str]:
        outcome = await self._db.run(accept, items)
        fresh = [m for m, o in zip(items, outcome, strict=True) if o == "new"]
        if fresh:
            self._publish(fresh)
        return outcome

    def _publish(self, fresh: list[NewMessage]) -> None:
        out = [Outgoing(m.envelope.encode("utf-8"), {"message-id": m.id}) for m in fresh]
        task = asyncio.create_task(self._send(out, [m.id for m in fresh]))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _send(self, out: list[Outgoing], ids: list[str]) -> None:
        try:
            await self._transport.publish(self._route_queue, out)
            self._marks.messages(ids)
        except Exception as exc:  # noqa: BLE001 - the store keeps them; the sweep re-enqueues
            log.warning(
                "publish to %s failed, %d messages left to recovery: %s",
                self._route_queue,
                len(out),
                exc,
            )

    async def drain(self) -> None:
        """Wait for stores and publishes under way (graceful shutdown)."""
        await self._batcher.drain()
        while self._publishing:
            await asyncio.gather(*list(self._publishing), return_exceptions=True)
