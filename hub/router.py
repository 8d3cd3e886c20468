"""Router: consumes accepted messages, applies the routes, creates the deliveries.

A batch of messages is routed in one transaction; the delivery jobs are
published after the commit and the batch is acked after the publish. A crash
anywhere in between leaves either the message `accepted` (routed again) or its
deliveries `pending` (enqueued again by recovery): nothing is lost, and the
conditional status change in `record_routes` keeps a redelivered message from
being routed twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence

import orjson

from hub.broker import Incoming, Outgoing, Transport
from hub.config import HubConfig
from hub.marks import EnqueueMarks
from hub.routing.rules import route
from hub.store.db import Database
from hub.store.messages import Hop, Job, RoutePlan, record_routes

log = logging.getLogger(__name__)


def plan(config: HubConfig, message_id: str, event: dict[str, object]) -> RoutePlan:
    """The routing decision for one message, with the trace hops that explain it."""
    decision = route(config, event)
    hops = [Hop(message_id, "refused", reason, recipient) for recipient, reason in decision.refused]
    if decision.unroutable:
        why = "no route matches" if not decision.matched else "no destination can receive it"
        hops.append(
            Hop(
                message_id,
                "unroutable",
                f"{why}: type {event.get('type')} from {event.get('source')}",
            )
        )
    else:
        hops += [
            Hop(message_id, "routed", "by " + ", ".join(rules), destination)
            for destination, rules in decision.destinations.items()
        ]
    return RoutePlan(message_id, list(decision.destinations), hops)


class Router:
    """Consumes the route queue in batches and hands jobs to the delivery queues."""

    def __init__(
        self,
        config: HubConfig,
        db: Database,
        transport: Transport,
        route_queue: str,
        delivery_queue: DeliveryQueues,
        *,
        batch: int = 200,
    ) -> None:
        self._config = config
        self._db = db
        self._transport = transport
        self._queue = route_queue
        self._delivery_queue = delivery_queue
        self._batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self._transport.consume(self._queue, prefetch=self._batch * 2)
        try:
            while not stop.is_set():
                received = await consumer.get(self._batch, timeout=0.5)
                if received:
                    await self.handle(received)
                    await consumer.ack(received)
        finally:
            await consumer.close()

    async def handle(self, received: Sequence[Incoming]) -> None:
        plans = []
        for message in received:
            event = orjson.loads(message.body)
            plans.append(plan(self._config, str(event["id"]), event))
        jobs = await self._db.run(record_routes, plans)
        await self._delivery_queue.publish(jobs)


class DeliveryQueues:
    """Names the queue of each destination and publishes delivery jobs to them."""

    def __init__(self, transport: Transport, marks: EnqueueMarks, prefix: str) -> None:
        self._transport = transport
        self._marks = marks
        self._prefix = prefix

    def name(self, destination: str) -> str:
        return f"{self._prefix}.deliver.{destination}"

    async def publish(self, jobs: Sequence[Job]) -> None:
        """Publish jobs to their queues, then note them to be marked enqueued."""
        if not jobs:
            return
        by_queue: dict[str, list[Outgoing]] = defaultdict(list)
        for job in jobs:
            by_queue[self.name(job.destination)].append(
                Outgoing(
                    job.envelope.encode("utf-8"),
                    {
                        "delivery-id": str(job.delivery_id),
                        "message-id": job.message_id,
                        "destination": job.destination,
                    },
                )
            )
        await asyncio.gather(*(self._transport.publish(q, out) for q, out in by_queue.items()))
        self._marks.deliveries(j.delivery_id for j in jobs)
