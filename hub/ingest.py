"""Ingest: validate, authorise, route, store, publish.

A message is routed as it is parsed (the routes are data and need nothing but
the message) and stored together with its deliveries in one commit per batch;
it is answered 202 once that commit is done, the store being the record of
truth. The delivery jobs are published to the destinations' queues after the
commit; if that fails, or the process dies first, the deliveries are still
`pending` in the store and recovery enqueues them again (hub/runtime.py).
Routing here rather than in a stage of its own saves a broker hop and a
transaction per message (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from hub import documents, envelope, tracing
from hub.batching import Batcher
from hub.config import HubConfig, System
from hub.connectors.edxml import SENT, STATUS
from hub.directory import Directory
from hub.errors import Conflict, FieldError, Forbidden, Invalid, TooDeep
from hub.metrics import Metrics
from hub.nesting import MAX_DEPTH, check_depth
from hub.router import DeliveryQueues, plan
from hub.store.db import Database
from hub.store.messages import Job, NewMessage, accept
from hub.validation import Validators

log = logging.getLogger(__name__)
DOCUMENT_TYPES = (SENT, STATUS)


def track_documents(conn: sa.Connection, stored: Sequence[NewMessage]) -> None:
    """Document packages and statuses change the documents' state in the storing commit."""
    found = [(m.id, orjson.loads(m.envelope)) for m in stored if m.type in DOCUMENT_TYPES]
    if found:
        for flag in documents.apply(conn, found):
            log.warning("document event flagged: %s", flag, extra={"message_id": flag.message_id})


class Ingest:
    """Turns a system's request body into a stored, published message."""

    def __init__(
        self,
        config: HubConfig,
        db: Database,
        queues: DeliveryQueues,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.directory = Directory(config)  # replaced by the hub as the API edits it
        self.validators = Validators(config.types)
        self._db = db
        self._queues = queues
        self._metrics = metrics or Metrics()
        self._batcher: Batcher[NewMessage, str] = Batcher(self._store, max_batch=500)
        self._publishing: set[asyncio.Task[None]] = set()

    def parse(self, caller: System, raw: bytes, traceparent: str | None = None) -> NewMessage:
        """Check a body sent by `caller`. Raises Invalid (422) or Forbidden (403).

        Args:
            traceparent: the request's W3C `traceparent` header (see `parse_event`).
        """
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if "depth" in str(exc):  # orjson stops at 1,024 levels
                raise TooDeep(f"the JSON is nested more than {MAX_DEPTH} levels deep") from exc
            raise Invalid(
                f"the body is not valid JSON: {exc}", errors=[FieldError("", "not valid JSON")]
            ) from exc
        return self.parse_event(caller, event, traceparent)

    def parse_event(
        self,
        caller: System,
        event: Any,
        traceparent: str | None = None,
        *,
        package: bool = False,
    ) -> NewMessage:
        """Check an event made by `caller` (or by a connector for it); as `parse`.

        The stored event has a valid `traceparent`: its own, else `traceparent`
        (the request's header), else a new trace's (hub/tracing.py).

        Args:
            package: the event was made by the hub from an edXML package it parsed
                (sendEdoc, the national-axis poller). Document types are taken only
                so: their attachments are then blobs the hub decoded from the
                sender's own bytes, never a reference the sender wrote.
        """
        check_depth(event)  # before anything recurses into it (hub/nesting.py)
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
        if event["type"] in DOCUMENT_TYPES:
            self._check_document(caller, event, package)
        self.validators.check_data(event)
        event = tracing.stamp(envelope.nfc(event), traceparent)
        return NewMessage(
            id=event["id"],
            type=event["type"],
            source=event["source"],
            correlationid=event.get("correlationid"),
            envelope=envelope.dumps(event).decode("utf-8"),
            plan=plan(self.config, event["id"], event, self.directory),
        )

    def _check_document(self, caller: System, event: Any, package: bool) -> None:
        """The one rule for document events, on every path: packages only, and only
        from an organisation the caller sends for (`Directory.sends_for`)."""
        if not package:
            raise Forbidden(
                f"{event['type']} is taken only as an edXML package through the document "
                "axis (POST /api/v1/edoc/sendEdoc), which checks its organisation and "
                "attachments",
                errors=[FieldError("/type", "documents enter through the document axis")],
            )
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        field = "sender" if event["type"] == SENT else "from"
        organ = (data.get(field) or {}).get("organ_id") if isinstance(data, dict) else None
        if not isinstance(organ, str) or not self.directory.sends_for(caller.id, organ):
            raise Forbidden(
                f"{caller.id} does not send for organisation {organ!r}",
                errors=[FieldError(f"/data/{field}/organ_id", "not an organisation of the caller")],
            )

    async def accept(self, message: NewMessage) -> str:
        """Store a parsed message; returns "new" or "duplicate" (the same source sent
        this id with the same content before). Raises Conflict: the same id from the
        same source with other content (docs/RELIABILITY.md, "Idempotency")."""
        outcome = await self._batcher.submit(message)
        if outcome == "new":
            self._metrics.accepted(message)
        elif outcome == "changed":
            self._metrics.conflicting(message)
            raise Conflict(
                f"id {message.id!r} was already accepted from {message.source} with other "
                "content; a resend must repeat the event as first sent, a new event needs "
                "a new id",
                errors=[FieldError("/id", "already accepted with other content")],
            )
        return outcome

    async def _store(self, items: Sequence[NewMessage]) -> list[str]:
        outcome, jobs = await self._db.run(accept, items, track_documents)
        if jobs:
            task = asyncio.create_task(self._publish(jobs))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return outcome

    async def _publish(self, jobs: list[Job]) -> None:
        try:
            await self._queues.publish(jobs)
        except Exception as exc:  # noqa: BLE001 - the store keeps them; the sweep re-enqueues
            log.warning(
                "publish failed, %d delivery jobs left to recovery: %s",
                len(jobs),
                exc,
                extra={"message_ids": sorted({j.message_id for j in jobs})},
            )

    async def drain(self) -> None:
        """Wait for stores and publishes under way (graceful shutdown)."""
        await self._batcher.drain()
        while self._publishing:
            await asyncio.gather(*list(self._publishing), return_exceptions=True)
