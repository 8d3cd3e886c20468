"""The running hub: settings, config, store, broker and the tasks of one process.

Roles: `api` ingests (and routes) and answers queries; `worker` delivers and
retries; `all` does both in one process (the embedded default). Workers recover:
every pending delivery the broker never confirmed (all of them at the start of an
in-process hub, whose queues start empty) is enqueued again, so a crash at any
moment loses nothing (a job may be sent twice; destinations drop repeats by
Idempotency-Key).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from hub import logs
from hub.broker import Transport, open_transport
from hub.config import HubConfig, System, load_config
from hub.connectors import connector_for_system, connector_key
from hub.connectors.base import Connector
from hub.connectors.edxml.blobs import FileBlobStore
from hub.connectors.government_office import GovernmentOfficeConnector, GovernmentOfficePoller
from hub.connectors.national_axis import NationalAxisConnector, NationalAxisPoller
from hub.delivery import DeliveryWorker, OutcomeWriter, RetryScheduler
from hub.directory import Directory, load_entries
from hub.ingest import Ingest
from hub.keys import KeyRing
from hub.keys import issued as issued_keys
from hub.leases import Leased, holder_id
from hub.marks import EnqueueMarks
from hub.metrics import Metrics
from hub.ratelimit import RateLimits
from hub.reports import Reporting, submit_due
from hub.reports.connector import ReportingConnector, reporting_for
from hub.router import DeliveryQueues, plan
from hub.settings import Settings
from hub.store.db import Database, upgrade
from hub.store.messages import accepted_since, pending_since, record_routes, touch
from hub.store.models import utcnow
from hub.store.outbox import OutboxRelay
from hub.store.pauses import paused as paused_destinations
from hub.tasks.connector import TaskPlatformConnector, platform_for, units_of
from hub.tasks.feed import IngestFeed
from hub.tasks.reminders import remind
from hub.tasks.status import Platform
from hub.tasks.work import save_units

log = logging.getLogger(__name__)
Role = Literal["all", "api", "worker"]
RECOVERY_PAGE = 500
RunFn = Callable[[asyncio.Event], Awaitable[None]]


class Hub:
    """One hub process. `start(role)` then `stop()`; or `async with Hub(...)`."""

    def __init__(self, settings: Settings, config: HubConfig | None = None) -> None:
        self.settings = settings
        self.config = config or load_config(settings.config)
        logs.keep_secret(*self.config.secrets(), *settings.secrets())
        self.db = Database(settings.sqlalchemy_url())
        self.blobs = FileBlobStore(settings.blob_dir)
        self.transport: Transport = open_transport(settings.broker_url)
        prefix = settings.queue_prefix
        self.marks = EnqueueMarks(self.db)
        self.queues = DeliveryQueues(self.transport, self.marks, prefix)
        self.metrics = Metrics(self.db, self.receivers())
        self.ingest = Ingest(self.config, self.db, self.queues, self.metrics)
        self.writer = OutcomeWriter(self.db)
        self.connectors: dict[str, Connector] = {}
        self.role: Role = "all"
        self.holder = holder_id()  # this process, as the holder of leases (hub/leases.py)
        self.paused: set[str] = set()  # destinations an operator paused, read every second
        self.keys = KeyRing(self.config)  # + the issued keys, read every second
        self.limits = RateLimits(self.config.systems)
        self.platform = self._platform_settings()
        self.reporting = self._reporting_settings()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: list[Callable[[], Awaitable[None]]] = []

    @property
    def in_process(self) -> bool:
        return self.settings.broker_url.startswith("memory://")

    def connector(self, system: System) -> Connector:
        """The connector serving `system`, one per kind in a process (connections are shared)."""
        key = connector_key(system)
        if key not in self.connectors:
            self.connectors[key] = connector_for_system(system, self.blobs)
        return self.connectors[key]

    def receivers(self) -> list[str]:
        return [s.id for s in self.config.systems.values() if s.may_receive]

    async def start(self, role: Role = "all") -> None:
        if role != "all" and self.in_process:
            raise ValueError(f"role {role!r} needs a shared broker (HUB_BROKER_URL=amqp://...)")
        self.role = role
        if self.settings.auto_migrate:
            await self.db.run(upgrade)
        for system_id in self.receivers():
            await self.transport.declare(self.queues.name(system_id))
        await self.reload_directory()
        self._tasks.append(asyncio.create_task(self._supervise(self._refresh_directory)))
        await self.reload_pauses()
        self._tasks.append(asyncio.create_task(self._supervise(self._refresh_pauses)))
        if self.platform is not None:
            await self._start_platform(self.platform)
        if self.reporting is not None:
            await self._start_reporting(self.reporting)
        if role in ("all", "worker"):
            if self.in_process:
                await self.recover()  # in-process queues start empty: enqueue all that waits
            self._spawn_workers()
        self._tasks.append(asyncio.create_task(self._supervise(self.marks.run)))
        log.info(
            "hub started: role=%s database=%s broker=%s",
            role,
            self.db.engine.dialect.name,
            self.settings.broker_url.split("@")[-1],
        )

    def _spawn_workers(self) -> None:
        runners: list[RunFn] = [
            RetryScheduler(self.db, self.queues, poll=self.settings.retry_poll_seconds).run,
        ]
        for system_id in self.receivers():
            system = self.config.systems[system_id]
            worker = DeliveryWorker(
                system,
                self.connector(system),
                self.db,
                self.transport,
                self.queues.name(system_id),
                self.writer,
                paused=lambda destination: destination in self.paused,
                metrics=self.metrics,
            )
            runners.append(worker.run)
        for system in self.config.systems.values():
            if system.kind == NationalAxisConnector.kind:
                runners.append(self._leased(f"poll:{system.id}", self._poller(system).run))
            elif system.kind == GovernmentOfficeConnector.kind:
                runners.append(self._leased(f"poll:{system.id}", self._office_poller(system).run))
        if self.platform is not None:
            runners += self._platform_runners(self.platform)
        if self.reporting is not None:
            runners += self._reporting_runners(self.reporting)
        if self.platform is not None or self.reporting is not None:
            relay = OutboxRelay(self.db, self.transport)  # every outbox queue
            runners.append(self._leased("outbox", relay.run))
        if not self.in_process:
            runners.append(self._leased("sweep", self._sweep))
        for run in runners:
            self._tasks.append(asyncio.create_task(self._supervise(run)))

    def _leased(self, name: str, run: RunFn) -> RunFn:
        """`run` in one process of the fleet at a time, under the lease `name`.

        The in-process broker means one worker process, which runs it without a lease.
        Relays and feeds of an outbox are leased too: two relays publish every row
        twice, and two feeds sharing a queue hand ingest its events out of order.
        """
        if self.in_process:
            return run
        return Leased(self.db, name, self.holder, self.settings.lease_seconds, run).run

    def _poller(self, axis: System) -> NationalAxisPoller:
        """Pulls what the national axis holds for the city, as messages from `axis`."""
        connector = self.connector(axis)
        assert isinstance(connector, NationalAxisConnector)

        async def accept(path: Path, organ: str, doc_id: str) -> None:
            event = await asyncio.to_thread(connector.decode_file, path, doc_id, sender=axis)
            # parse_event refuses a package of an organisation the axis does not carry
            # (a city organisation, say): Directory.sends_for, as on sendEdoc.
            await self.ingest.accept(self.ingest.parse_event(axis, event, package=True))

        interval = float(axis.options.get("poll_seconds", 30))
        poller = NationalAxisPoller(axis, self.db, accept, interval=interval, spool=self.blobs.tmp)
        self._closing.append(poller.close)
        return poller

    def _platform_settings(self) -> Platform | None:
        """The task platform's settings, when the config has a system of kind task_platform."""
        found = [s for s in self.config.systems.values() if s.kind == "task_platform"]
        if not found:
            return None
        queue = f"{self.settings.queue_prefix}.tasks.outbox"
        return replace(platform_for(found[0]), queue=queue)

    async def _start_platform(self, platform: Platform) -> None:
        """Bind the platform's connector to the store, seed its units, declare its queue."""
        system = self.config.systems[platform.source_id]
        connector = self.connector(system)
        assert isinstance(connector, TaskPlatformConnector)
        connector.bind(self.db, platform)
        await self.db.run(save_units, units_of(system), "config", platform)
        await self.transport.declare(platform.queue)

    def _platform_runners(self, platform: Platform) -> list[RunFn]:
        """Its outbox to the broker, the broker to ingest (as the platform), and reminders."""
        system = self.config.systems[platform.source_id]

        async def accept(event: dict[str, Any]) -> str:
            return await self.ingest.accept(self.ingest.parse_event(system, event))

        async def reminders(stop: asyncio.Event) -> None:
            every = float(system.options.get("remind_seconds", 300))
            while not stop.is_set():
                await self.db.run(remind, platform)
                try:
                    await asyncio.wait_for(stop.wait(), every)
                except TimeoutError:
                    pass

        feed = IngestFeed(self.transport, platform.queue, accept)
        return [
            self._leased(f"feed:{platform.queue}", feed.run),
            self._leased("reminders", reminders),
        ]

    def _reporting_settings(self) -> Reporting | None:
        found = [s for s in self.config.systems.values() if s.kind == "reporting"]
        return reporting_for(found[0], self.settings.queue_prefix) if found else None

    async def _start_reporting(self, reporting: Reporting) -> None:
        """Bind the reporting consumer's connector to the store, declare its queue."""
        connector = self.connector(self.config.systems[reporting.source_id])
        assert isinstance(connector, ReportingConnector)
        connector.bind(self.db, reporting.source_id, reporting.queue)
        await self.transport.declare(reporting.queue)

    def _reporting_runners(self, reporting: Reporting) -> list[RunFn]:
        """Its reports from the outbox into ingest, and the periods due sent each hour."""
        system = self.config.systems[reporting.source_id]

        async def accept(event: dict[str, Any]) -> str:
            return await self.ingest.accept(self.ingest.parse_event(system, event))

        async def schedule(stop: asyncio.Event) -> None:
            every = float(system.options.get("report_seconds", 3600))
            while not stop.is_set():
                await self.db.run(submit_due, reporting, now=utcnow())
                try:
                    await asyncio.wait_for(stop.wait(), every)
                except TimeoutError:
                    pass

        feed = IngestFeed(self.transport, reporting.queue, accept)
        return [
            self._leased(f"feed:{reporting.queue}", feed.run),
            self._leased("reports", schedule),
        ]

    def _office_poller(self, office: System) -> GovernmentOfficePoller:
        """Pulls new, changed and revoked directives from the Government Office's system."""

        async def accept(event: dict[str, Any]) -> None:
            await self.ingest.accept(self.ingest.parse_event(office, event))

        interval = float(office.options.get("poll_seconds", 30))
        poller = GovernmentOfficePoller(office, self.db, accept, interval=interval)
        self._closing.append(poller.close)
        return poller

    @property
    def directory(self) -> Directory:
        return self.ingest.directory

    async def reload_directory(self) -> None:
        """Read the API's directory entries again (another process may have changed them)."""
        entries = await self.db.read(load_entries)
        self.ingest.directory = self.ingest.directory.with_entries(entries)

    async def reload_pauses(self) -> None:
        self.paused = set(await self.db.read(paused_destinations))
        self.keys = self.keys.with_issued(await self.db.read(issued_keys))

    async def _refresh_pauses(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                await self.reload_pauses()

    async def _refresh_directory(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.settings.sweep_seconds)
            except TimeoutError:
                await self.reload_directory()

    async def _supervise(self, run: RunFn) -> None:
        """Run a worker loop; if it fails (broker or database away), start it again."""
        delay = 0.2
        while not self._stop.is_set():
            try:
                await run(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "%s failed; restarting in %.1f s", getattr(run, "__qualname__", run), delay
                )
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, 5.0)

    async def _sweep(self, stop: asyncio.Event) -> None:
        """Every few seconds, enqueue again what a crash left committed but unpublished."""
        while not stop.is_set():
            grace = timedelta(seconds=self.settings.recovery_grace_seconds)
            stuck = timedelta(seconds=self.settings.stuck_seconds)
            await self.recover(unqueued_before=utcnow() - grace, stuck_before=utcnow() - stuck)
            try:
                await asyncio.wait_for(stop.wait(), self.settings.sweep_seconds)
            except TimeoutError:
                pass

    async def recover(
        self, *, unqueued_before: datetime | None = None, stuck_before: datetime | None = None
    ) -> None:
        """Route what was stored unrouted, enqueue again the pending deliveries.

        With `unqueued_before`, only what the broker never confirmed and is older
        than that (on RabbitMQ the rest is safe in its durable queues).
        """
        seq, routed = 0, 0
        since = {"unqueued_before": unqueued_before, "stuck_before": stuck_before}
        while page := await self.db.run(accepted_since, seq, RECOVERY_PAGE, **since):
            plans = [
                plan(self.config, mid, orjson.loads(env), self.directory) for _, mid, env in page
            ]
            await self.queues.publish(await self.db.run(record_routes, plans))
            seq, routed = page[-1][0], routed + len(page)
        last, pending = 0, 0
        while jobs := await self.db.run(pending_since, last, RECOVERY_PAGE, **since):
            await self.db.run(touch, delivery_ids=[j.delivery_id for j in jobs])
            await self.queues.publish(jobs)
            last, pending = jobs[-1].delivery_id, pending + len(jobs)
        if routed or pending:
            log.info(
                "recovery: %d messages to route, %d deliveries enqueued again", routed, pending
            )

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking work, finish what is held, close connections.

        Args:
            timeout: how long the tasks get to finish before they are cancelled; by
                default enough for a delivery under way to end by its system's
                `timeout` and have its outcome recorded (a call cut by the cancel
                is sent again, by another worker).
        """
        if timeout is None:
            calls = [self.config.systems[s].timeout for s in self.receivers()]
            timeout = max([10.0, *calls]) + 5.0
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            # Publishes wait for the broker's confirm, for ever while it is away (and
            # the transport closes after this). Their rows are committed: the sweep
            # enqueues what was never confirmed.
            await asyncio.wait_for(self.ingest.drain(), 5.0)
        except TimeoutError:
            log.warning("stopping with delivery jobs the broker has not confirmed (swept later)")
        await self.writer.drain()
        await self.marks.flush()
        for close in self._closing:
            await close()
        for connector in self.connectors.values():
            await connector.close()
        await self.transport.close()
        self.db.close()
