"""Delivery: one worker per destination system, retries kept in the store.

Each destination has its own durable queue and worker, so one slow or broken
system never holds up the others. A worker takes up to `concurrency` jobs at a
time, checks in the store that each is still to do (a job enqueued twice after
a crash is sent once if the first copy already succeeded), hands it to the
system's connector, and acks the job only after its outcome is committed.

- `Transient` (timeout, 5xx, 429, connection refused): tried again after the
  system's next retry delay, or the delay the destination asked for in
  `Retry-After`; after the last delay the job is dead-lettered.
- `Rejected` (any other 4xx): dead-lettered at once, the response recorded.

The next try time is a column of the delivery, not a message parked in the
broker: `RetryScheduler` claims due deliveries and enqueues them again, so a
delay of an hour survives any restart, and an operator's replay is simply
"due now".
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import orjson

from hub import logs
from hub.batching import Batcher
from hub.broker import Consumer, Incoming, Transport
from hub.config import System
from hub.connectors.base import BatchConnector, Connector, Receipt
from hub.errors import Rejected, Transient
from hub.metrics import Metrics
from hub.router import DeliveryQueues
from hub.store.db import Database
from hub.store.messages import (
    Outcome,
    blocked,
    claim_due,
    defer,
    delivery_states,
    record_outcomes,
)
from hub.store.models import utcnow

log = logging.getLogger(__name__)
MAX_RETRY_AFTER = 86_400.0
TURN_WAIT = 1.0  # seconds an ordered job waits before looking again for its turn
PAUSE_POLL = 0.5  # seconds between looks at whether a paused destination was resumed
THROTTLE_WAIT = 1.0  # seconds a rate-limited destination rests when it names no Retry-After
DEAD_WARN_EVERY = 10.0  # seconds between two dead-letter warnings of one destination


class OutcomeWriter:
    """Group-commits delivery outcomes for every worker of the process."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._batcher: Batcher[Outcome, None] = Batcher(self._write, max_batch=500)

    async def _write(self, outcomes: Any) -> list[None]:
        await self._db.run(record_outcomes, list(outcomes))
        return [None] * len(outcomes)

    async def write(self, outcome: Outcome) -> None:
        await self._batcher.submit(outcome)

    async def drain(self) -> None:
        await self._batcher.drain()


def failed(system: System, job: Incoming, attempts: int, exc: Exception) -> Outcome:
    """The outcome of a failed try: retry later, or dead letter."""
    delivery_id, message_id = int(job.headers["delivery-id"]), str(job.headers["message-id"])
    detail = logs.scrub(getattr(exc, "detail", str(exc)))  # shown in the console and API
    if isinstance(exc, Transient):
        delay = system.retry.next_delay(attempts + 1)
        if delay is not None:
            if exc.retry_after is not None:
                delay = min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER)
            when = utcnow() + timedelta(seconds=delay)
            return Outcome(
                delivery_id,
                message_id,
                system.id,
                "retrying",
                f"try {attempts + 1} failed: {detail}; next try in {delay:g} s",
                when,
            )
        detail = f"gave up after {attempts + 1} tries: {detail}"
    return Outcome(delivery_id, message_id, system.id, "dead", detail)


class DeadLetterWarnings:
    """A warning in the server's log per dead letter, at most one line per destination
    every `every` seconds; the line after a quiet spell counts those held back."""

    def __init__(
        self, every: float = DEAD_WARN_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self._clock = every, clock
        self._last: float | None = None
        self._held = 0

    def dead(self, outcome: Outcome) -> bool:
        """Log `outcome` unless a line was written less than `every` s ago; True if logged."""
        now = self._clock()
        if self._last is not None and now - self._last < self.every:
            self._held += 1
            return False
        more = f" (and {self._held} more since the last warning)" if self._held else ""
        log.warning(
            "dead letter: message %s to %s: %s%s; replay it from the console or with "
            "hub dead-letters replay %d",
            outcome.message_id,
            outcome.destination,
            outcome.detail,
            more,
            outcome.delivery_id,
        )
        self._last, self._held = now, 0
        return True


class DeliveryWorker:
    """Delivers the jobs of one destination's queue through its connector."""

    def __init__(
        self,
        system: System,
        connector: Connector,
        db: Database,
        transport: Transport,
        queue: str,
        writer: OutcomeWriter,
        paused: Callable[[str], bool] = lambda _: False,
        metrics: Metrics | None = None,
    ) -> None:
        self.system = system
        self._metrics = metrics or Metrics()
        self._paused = paused  # whether an operator paused a destination (hub/store/pauses.py)
        self._connector = connector
        self._db = db
        self._transport = transport
        self._queue = queue
        self._writer = writer
        self._inflight: set[asyncio.Task[None]] = set()
        self._held: set[int] = set()  # delivery ids being sent by this worker
        self._acks: list[Incoming] = []  # done and recorded, to ack together
        self._ordered = isinstance(system.options.get("ordered_by"), str)
        self._acking: asyncio.Task[None] | None = None
        size = int(system.options.get("batch", 1))
        self._batch = size if size > 1 and isinstance(connector, BatchConnector) else 1
        self._resume_at = 0.0  # monotonic time before which a throttled destination waits
        self._dead_warnings = DeadLetterWarnings()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop`; then finish the deliveries under way, record and ack them.

        Jobs taken but not started go back to the queue. Cancelled (the hub's stop
        timed out), it cancels the calls still under way before the consumer closes.
        """
        limit = max(1, self.system.concurrency)
        consumer = self._transport.consume(self._queue, prefetch=limit)
        try:
            while not stop.is_set():
                free = limit - len(self._held)
                if free <= 0 and self._inflight:
                    await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                await self._rest(stop)
                jobs = await consumer.get(max(free, 1), timeout=0.5)
                if jobs:
                    await self._rest(stop)  # a 429 may have come while waiting for these
                    if stop.is_set():  # taken while stopping: for another worker
                        await consumer.nack(jobs, requeue=True)
                        break
                    await self._start(consumer, jobs)
            if self._inflight:
                await asyncio.wait(self._inflight)
            if self._acking is not None:
                await self._acking
        except asyncio.CancelledError:  # the hub's stop timed out
            await self._abandon()
            raise
        finally:
            await consumer.close()

    async def _abandon(self) -> None:
        """Cancel the deliveries still under way, before the consumer closes.

        Closing the consumer returns their jobs to the queue, where another worker
        takes them: a call left running here would race that worker's call to the
        same destination (both see the delivery pending), outlive the hub's stop
        and record its outcome after it. Cancelled, it records nothing; the job is
        tried again.
        """
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start(self, consumer: Consumer, jobs: list[Incoming]) -> None:
        ids = [int(j.headers["delivery-id"]) for j in jobs]
        states = await self._db.read(delivery_states, ids)
        if self._ordered:
            jobs, ids = await self._in_turn(consumer, jobs, ids)
        done, todo = [], []
        for job, delivery_id in zip(jobs, ids, strict=True):
            status, attempts = states.get(delivery_id, ("missing", 0))
            # Already delivered, dead, discarded or waiting to retry, or a second copy
            # of a job this worker is sending now: nothing to do.
            if status != "pending" or delivery_id in self._held:
                done.append(job)
                continue
            self._held.add(delivery_id)
            todo.append((job, attempts))
        for start in range(0, len(todo), self._batch):
            group = todo[start : start + self._batch]
            if self._batch > 1:
                task = asyncio.create_task(self._deliver_batch(consumer, group))
            else:
                task = asyncio.create_task(self._deliver(consumer, *group[0]))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            held = [int(job.headers["delivery-id"]) for job, _ in group]
            task.add_done_callback(functools.partial(self._release, held))
        if done:
            await consumer.ack(done)

    async def _in_turn(
        self, consumer: Consumer, jobs: list[Incoming], ids: list[int]
    ) -> tuple[list[Incoming], list[int]]:
        """For a destination taking one key's messages in order: the jobs whose turn it is.

        A job with an earlier delivery of its key still open (pending, retrying,
        being sent) goes back to wait `TURN_WAIT` seconds, no try counted; the
        retry scheduler brings it back. A dead earlier delivery no longer holds
        the key (an operator's replay of it then arrives after the later ones).
        """
        waiting = await self._db.read(blocked, ids)
        if not waiting:
            return jobs, ids
        await self._db.run(defer, sorted(waiting), TURN_WAIT)
        await consumer.ack([j for j, i in zip(jobs, ids, strict=True) if i in waiting])
        kept = [(j, i) for j, i in zip(jobs, ids, strict=True) if i not in waiting]
        return [j for j, _ in kept], [i for _, i in kept]

    def _release(self, delivery_ids: list[int], _: object) -> None:
        self._held.difference_update(delivery_ids)

    def _withdrawn(self, event: dict[str, Any]) -> Rejected | None:
        """The refusal of a type this system may no longer receive (its grant was
        withdrawn after the message was routed: a queued or replayed delivery)."""
        kind = str(event.get("type"))
        if self.system.can_receive(kind):
            return None
        return Rejected(f"{self.system.id} may not receive {kind}; not delivered")

    async def _deliver(self, consumer: Consumer, job: Incoming, attempts: int) -> None:
        event = orjson.loads(job.body)
        if refused := self._withdrawn(event):
            await self._record(consumer, job, attempts, refused)
            return
        attempt = self._metrics.attempt(self.system.id, [job], [event])
        try:
            result: Receipt | Transient | Rejected = await self._connector.deliver(
                job.body, event, self.system
            )
        except (Transient, Rejected) as exc:
            result = exc
        except Exception as exc:  # a connector bug must not lose the job: retry it
            log.exception("connector %s failed on %s", self.system.kind, job.headers)
            result = Transient(f"internal error: {exc!r}")
        attempt.called(result)
        await self._record(consumer, job, attempts, result)

    async def _deliver_batch(self, consumer: Consumer, group: list[tuple[Incoming, int]]) -> None:
        """Several jobs in one call; each gets its own outcome (a partial failure retries
        only the items that failed)."""
        assert isinstance(self._connector, BatchConnector)
        items = [(job.body, orjson.loads(job.body)) for job, _ in group]
        refusals = [self._withdrawn(event) for _, event in items]
        if any(refusals):
            paired = list(zip(group, items, refusals, strict=True))
            await asyncio.gather(*(self._record(consumer, j, n, r) for (j, n), _, r in paired if r))
            group = [g for g, _, r in paired if r is None]
            items = [i for _, i, r in paired if r is None]
            if not group:
                return
        attempt = self._metrics.attempt(
            self.system.id, [job for job, _ in group], [event for _, event in items]
        )
        results: Sequence[Receipt | Transient | Rejected]
        try:
            results = await self._connector.deliver_batch(items, self.system)
            if len(results) != len(group):
                raise Transient(f"{len(results)} results for a batch of {len(group)}")
        except (Transient, Rejected) as exc:
            results = [exc] * len(group)
        except Exception as exc:  # a connector bug must not lose the jobs: retry them
            log.exception("connector %s failed on a batch", self.system.kind)
            results = [Transient(f"internal error: {exc!r}")] * len(group)
        attempt.called(*results)
        await asyncio.gather(
            *(self._record(consumer, job, n, r) for (job, n), r in zip(group, results, strict=True))
        )

    async def _record(
        self, consumer: Consumer, job: Incoming, attempts: int, result: Receipt | Exception
    ) -> None:
        """Commit the outcome of one try, then ack the job (or return it to the queue)."""
        if isinstance(result, Receipt):
            outcome = Outcome(
                int(job.headers["delivery-id"]),
                str(job.headers["message-id"]),
                self.system.id,
                "waiting" if result.waiting else "delivered",
                result.detail
                if result.waiting
                else f"{result.detail} in {result.elapsed_ms:.0f} ms",
            )
        else:
            assert isinstance(result, (Transient, Rejected))
            if isinstance(result, Transient) and result.throttle:
                self._slow_down(result.retry_after)
            outcome = failed(self.system, job, attempts, result)
        try:
            await self._writer.write(outcome)
        except Exception:
            log.exception("could not record outcome; job returned to the queue")
            await consumer.nack([job], requeue=True)
            return
        self._metrics.outcome(outcome, job.headers)
        if outcome.status == "dead":
            self._dead_warnings.dead(outcome)
        self._ack_soon(consumer, job)

    async def _rest(self, stop: asyncio.Event) -> None:
        """While the destination is paused by an operator or rate-limiting, wait (or until
        the hub stops); jobs already taken are held, unacked, and sent on resuming."""
        while not stop.is_set():
            pause = self._resume_at - time.monotonic()
            if self._paused(self.system.id):
                pause = max(pause, PAUSE_POLL)
            if pause <= 0:
                return
            try:
                await asyncio.wait_for(stop.wait(), pause)
            except TimeoutError:
                pass

    def _slow_down(self, seconds: float | None) -> None:
        """The destination is rate-limiting: take no new job from its queue for a while."""
        wait = min(max(seconds or THROTTLE_WAIT, 0.0), MAX_RETRY_AFTER)
        self._resume_at = max(self._resume_at, time.monotonic() + wait)
        log.info("%s is rate-limiting; no new deliveries for %.1f s", self.system.id, wait)

    def _ack_soon(self, consumer: Consumer, job: Incoming) -> None:
        """Ack with the others recorded in the same outcome batch: one request, not one each."""
        self._acks.append(job)
        if self._acking is None or self._acking.done():
            self._acking = asyncio.create_task(self._ack_gathered(consumer))

    async def _ack_gathered(self, consumer: Consumer) -> None:
        logs.clear()  # started from one attempt's task, it acks the jobs of many
        await asyncio.sleep(0)  # the other outcomes of the batch resolve in this loop turn
        while self._acks:
            jobs, self._acks = self._acks, []
            try:
                await consumer.ack(jobs)
            except Exception as exc:  # noqa: BLE001 - unacked jobs come back; they are done
                log.warning(
                    "ack of %d recorded jobs failed (they will be dropped): %s", len(jobs), exc
                )


class RetryScheduler:
    """Enqueues deliveries whose next try is due (retries and operator replays)."""

    def __init__(self, db: Database, queues: DeliveryQueues, *, poll: float = 0.5) -> None:
        self._db = db
        self._queues = queues
        self._poll = poll

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                jobs = await self._db.run(claim_due)
                if jobs:
                    await self._queues.publish(jobs)
                    continue
            except Exception:
                log.exception("retry scheduler pass failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), self._poll)
            except TimeoutError:
                pass
