"""Router: the routing decision for a message, and the queues delivery jobs go to.

Ingest calls `plan` for each message it accepts and stores the deliveries in the
same commit (hub/ingest.py); recovery calls it for rows stored without a plan.
`DeliveryQueues` publishes the jobs, one durable queue per destination.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence

from hub.broker import Outgoing, Transport
from hub.config import HubConfig
from hub.directory import Directory
from hub.marks import EnqueueMarks
from hub.routing.rules import resolve, route
from hub.store.messages import Hop, Job, RoutePlan
from hub.tracing import of_envelope

log = logging.getLogger(__name__)
ACCEPTED_AT = "accepted-at"  # job header: when its message was accepted (epoch seconds)


def plan(
    config: HubConfig,
    message_id: str,
    event: dict[str, object],
    directory: Directory | None = None,
) -> RoutePlan:
    """The routing decision for one message, with the trace hops that explain it."""
    decision = route(config, event, directory)
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
    keys = {}
    for destination in decision.destinations:
        pointer = config.systems[destination].options.get("ordered_by")
        if isinstance(pointer, str):
            found = resolve(event.get("data"), pointer)
            if found and found[0] is not None:
                keys[destination] = str(found[0])[:300]
    routes = {d: tuple(rules) for d, rules in decision.destinations.items()}
    return RoutePlan(message_id, list(decision.destinations), hops, keys, routes)


def job_headers(job: Job) -> dict[str, str]:
    """A delivery job's broker headers: its ids, when its message was accepted (epoch
    seconds, for the latency metric) and its trace (hub/tracing.py)."""
    headers = {
        "delivery-id": str(job.delivery_id),
        "message-id": job.message_id,
        "destination": job.destination,
    }
    if job.accepted_at is not None:
        headers[ACCEPTED_AT] = f"{job.accepted_at.timestamp():.6f}"
    if traceparent := of_envelope(job.envelope):
        headers["traceparent"] = traceparent
    return headers


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
                Outgoing(job.envelope.encode("utf-8"), job_headers(job))
            )
        await asyncio.gather(*(self._transport.publish(q, out) for q, out in by_queue.items()))
        self._marks.deliveries(j.delivery_id for j in jobs)
