"""Prometheus metrics of one hub, in a registry of its own (several hubs share a test process).

Counted in the process that does the work: ingest counts after the commit,
delivery after the outcome is written. Labels are bounded by the config
(destinations, types, sources and route names are configured, not sent), so a
message costs a few dictionary look-ups. The open deliveries per destination are
read from the store when scraped, so every process reports the same numbers
(aggregate them with `max`, not `sum`). docs/OPERATIONS.md lists the metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub import logs, tracing
from hub.broker import Incoming
from hub.connectors.base import Receipt
from hub.errors import Rejected, Transient
from hub.router import ACCEPTED_AT
from hub.store.db import Database
from hub.store.inspect import OPEN_STATUSES, open_deliveries
from hub.store.messages import NewMessage, Outcome

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600)
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The hub's counters and histograms.

    Args:
        db: the store whose open deliveries are counted at each scrape (none: not counted).
        destinations: systems whose series start at zero rather than on first use.
    """

    def __init__(self, db: Database | None = None, destinations: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted_total = Counter(
            "hub_messages_accepted", "Messages stored (new ids)", ["type", "source"], registry=r
        )
        self.conflicts_total = Counter(
            "hub_messages_conflicting",
            "Events refused: their id was accepted from the same source with other content",
            ["type", "source"],
            registry=r,
        )
        self.routed_total = Counter(
            "hub_messages_routed",
            "Deliveries created, by the route that chose the destination",
            ["route", "destination"],
            registry=r,
        )
        self.delivered_total = Counter(
            "hub_deliveries_delivered", "Deliveries a destination took", ["destination"], registry=r
        )
        self.retried_total = Counter(
            "hub_deliveries_retried",
            "Tries that failed and were scheduled again",
            ["destination"],
            registry=r,
        )
        self.dead_total = Counter(
            "hub_deliveries_dead_lettered", "Deliveries dead-lettered", ["destination"], registry=r
        )
        self.errors_total = Counter(
            "hub_connector_errors",
            "Failed delivery calls, by kind (transient: retried; rejected: permanent)",
            ["destination", "kind"],
            registry=r,
        )
        self.latency = Histogram(
            "hub_delivery_latency_seconds",
            "From the message's acceptance to its delivery",
            ["destination"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.call_duration = Histogram(
            "hub_delivery_call_seconds",
            "Duration of a connector's delivery call (one item or one batch)",
            ["destination"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        for destination in destinations:
            for family in (self.delivered_total, self.retried_total, self.dead_total):
                family.labels(destination)
        if db is not None:
            r.register(OpenDeliveries(db, destinations))

    def accepted(self, message: NewMessage) -> None:
        """A new message is stored, with the deliveries its plan made."""
        self.accepted_total.labels(message.type, message.source).inc()
        if message.plan is not None:
            for destination, routes in message.plan.routes.items():
                for route in routes:
                    self.routed_total.labels(route, destination).inc()

    def conflicting(self, message: NewMessage) -> None:
        """An event refused: its source sent that id before with other content."""
        self.conflicts_total.labels(message.type, message.source).inc()

    def attempt(self, destination: str, jobs: Sequence[Incoming], events: Sequence[Any]) -> Attempt:
        """A delivery attempt starts: its span, its log ids, its clock (see `Attempt`)."""
        return Attempt(self, destination, jobs, events)

    def outcome(self, outcome: Outcome, headers: Mapping[str, Any]) -> None:
        """A delivery's outcome is written; `headers` are its job's."""
        destination = outcome.destination
        if outcome.status == "delivered":
            self.delivered_total.labels(destination).inc()
            accepted_at = headers.get(ACCEPTED_AT)
            if accepted_at:
                self.latency.labels(destination).observe(max(0.0, time.time() - float(accepted_at)))
        elif outcome.status == "retrying":
            self.retried_total.labels(destination).inc()
        elif outcome.status == "dead":
            self.dead_total.labels(destination).inc()

    def confirmed(self, destination: str, status: str, accepted_at: datetime) -> None:
        """A pulling recipient confirmed (`delivered`) or refused (`dead`) a delivery."""
        if status == "delivered":
            self.delivered_total.labels(destination).inc()
            waited = (datetime.now(UTC) - accepted_at).total_seconds()
            self.latency.labels(destination).observe(max(0.0, waited))
        elif status == "dead":
            self.dead_total.labels(destination).inc()

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format (reads the store: call from a thread)."""
        return generate_latest(self.registry)


class Attempt:
    """One delivery call: starts a span of the message's trace and binds the message's
    ids to the task's log lines (the attempt runs in a task of its own)."""

    def __init__(
        self, metrics: Metrics, destination: str, jobs: Sequence[Incoming], events: Sequence[Any]
    ) -> None:
        self._metrics = metrics
        self._destination = destination
        if len(jobs) == 1 and isinstance(events[0], dict):
            event = events[0]
            span = tracing.enter(event.get("traceparent"))
            logs.bind(
                message_id=jobs[0].headers.get("message-id"),
                correlation_id=event.get("correlationid"),
                trace_id=span.trace_id if span else None,
                span_id=span.span_id if span else None,
                destination=destination,
            )
        else:
            ids = [job.headers.get("message-id") for job in jobs]
            logs.bind(message_ids=ids, destination=destination)
        self._started = time.perf_counter()

    def called(self, *results: Receipt | Exception) -> None:
        """The connector answered (one result per item)."""
        self._metrics.call_duration.labels(self._destination).observe(
            time.perf_counter() - self._started
        )
        for result in results:
            if isinstance(result, Rejected):
                self._metrics.errors_total.labels(self._destination, "rejected").inc()
            elif isinstance(result, Transient):
                self._metrics.errors_total.labels(self._destination, "transient").inc()


class OpenDeliveries(Collector):
    """`hub_deliveries_open{destination,status}`: pending, retrying, waiting and dead
    deliveries, one grouped COUNT in the store per scrape."""

    def __init__(self, db: Database, destinations: Iterable[str]) -> None:
        self._db = db
        self._destinations = list(destinations)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            counts = open_deliveries(self._db.engine)
        except Exception as exc:  # noqa: BLE001 - a scrape must still show the other metrics
            log.warning("could not count open deliveries: %s", exc)
            return
        for destination in self._destinations:
            for status in OPEN_STATUSES:
                counts.setdefault((destination, status), 0)
        gauge = GaugeMetricFamily(
            "hub_deliveries_open",
            "Deliveries waiting in the store: pending (queued), retrying, waiting (pull), dead",
            labels=["destination", "status"],
        )
        for (destination, status), n in sorted(counts.items()):
            gauge.add_metric([destination, status], n)
        yield gauge
