"""Leases: jobs that run in one process of the fleet at a time, and move when it dies.

Worker processes scale out, but a poller of an external system, the reminders,
the reports' schedule, the recovery sweep, the outbox relay and the feeds that
keep the outbox's order must each run in one process at a time. Each such job
has a lease, a row of `leases`: its holder (`hostname:pid:random`), until when,
and `term`, counted up at each change of holder (a fencing token).

`acquire` takes a free or expired lease, or renews the holder's own, in one
conditional UPDATE; the first time a name is used it INSERTs the row, ON CONFLICT
DO NOTHING, so two processes starting together cannot both get it. `release`
lets a successor take over at once. `Leased` runs a job only while it holds its
lease, renewing it every ttl/3, and cancels the job as soon as a renewal fails.

Clocks: the table is judged by one clock, PostgreSQL's `now()`, so hosts whose
clocks disagree still agree on who holds what. SQLite is a file on one host, so
that host's UTC time is the database's clock and is passed in. The holder judges
its own lease by its monotonic clock, from the moment it sent its last successful
renewal: the database counts `ttl` from later than that, so the holder stops the
job before another process can start it (a tenth of `ttl` is kept in hand for the
cancelling and for clock drift). A statement the job already handed to a database
thread still completes; the leased jobs are idempotent (cursors, inbox, claimed
reminders, ids dropped by ingest), so that only wastes work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.store.db import Database
from hub.store.models import UTCDateTime, leases, utcnow

log = logging.getLogger(__name__)
RunFn = Callable[[asyncio.Event], Awaitable[None]]


def holder_id() -> str:
    """A new holder name for this process: `hostname:pid:random` (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _clock(conn: sa.Connection, ttl: float) -> tuple[Any, Any]:
    """(now, now + ttl) on the database's clock: PostgreSQL's `now()`, on SQLite the host's."""
    if conn.dialect.name == "postgresql":
        now: Any = sa.func.now()
        return now, now + timedelta(seconds=ttl)
    at = utcnow()
    return sa.literal(at, UTCDateTime()), sa.literal(at + timedelta(seconds=ttl), UTCDateTime())


def acquire(engine: sa.Engine, name: str, holder: str, ttl: float) -> int | None:
    """Take lease `name` for `ttl` seconds, or renew it: its term; None while another holds it."""
    with engine.begin() as conn:
        now, until = _clock(conn, ttl)
        renewing = sa.and_(leases.c.holder == holder, leases.c.expires_at >= now)
        term = conn.execute(
            leases.update()
            .where(
                leases.c.name == name, sa.or_(leases.c.holder == holder, leases.c.expires_at < now)
            )
            .values(
                holder=holder,
                expires_at=until,
                term=sa.case((renewing, leases.c.term), else_=leases.c.term + 1),
                acquired_at=sa.case((renewing, leases.c.acquired_at), else_=now),
            )
            .returning(leases.c.term)
        ).scalar()
        if term is None:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            term = conn.execute(
                insert(leases)
                .values(name=name, holder=holder, term=1, acquired_at=now, expires_at=until)
                .on_conflict_do_nothing()
                .returning(leases.c.term)
            ).scalar()
        return None if term is None else int(term)


def release(engine: sa.Engine, name: str, holder: str) -> bool:
    """End `holder`'s lease `name` now, so another process takes it at once; False if not held."""
    with engine.begin() as conn:
        now, _ = _clock(conn, 0)
        ended = conn.execute(
            leases.update()
            .where(leases.c.name == name, leases.c.holder == holder, leases.c.expires_at >= now)
            .values(expires_at=now)
        )
        return bool(ended.rowcount)


def holders(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Every lease: its holder, term, when taken and until when."""
    with engine.connect() as conn:
        return {
            r.name: {
                "holder": r.holder,
                "term": r.term,
                "acquired_at": r.acquired_at.isoformat(),
                "expires_at": r.expires_at.isoformat(),
            }
            for r in conn.execute(sa.select(leases))
        }


class Leased:
    """Runs a job's loop only while this process holds the job's lease.

    Args:
        db: the store keeping the leases.
        name: the job, e.g. `poll:<system id>` or `sweep`.
        holder: this process (`holder_id()`).
        ttl: seconds a lease lasts; renewed every ttl/3, and tried for every
            min(ttl/3, 1 s) while another process holds it.
        run_fn: the job, `run_fn(stop)`; cancelled when the lease may be lost.
    """

    def __init__(self, db: Database, name: str, holder: str, ttl: float, run_fn: RunFn) -> None:
        self.db = db
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.run_fn = run_fn
        self.term: int | None = None  # while the job runs
        self._retry = min(ttl / 3, 1.0)
        self._sure = ttl * 0.9  # a tenth in hand for cancelling the job and for clock drift

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for the lease and run the job while it is held, again after a loss, until `stop`."""
        while not stop.is_set():
            sent = time.monotonic()
            term = await self._acquire(self._sure)
            if term is not None and await self._hold(stop, term, sent + self._sure):
                return
            try:
                await asyncio.wait_for(stop.wait(), self._retry)
            except TimeoutError:
                pass

    async def _hold(self, stop: asyncio.Event, term: int, until: float) -> bool:
        """Run the job, renewing; True once it ended (lease released), False if the lease was lost.

        `until` is the monotonic time the lease is surely held to, a tenth of ttl early.
        """
        log.info("%s: lease taken by %s (term %d)", self.name, self.holder, term)
        job_stop = asyncio.Event()
        job = asyncio.ensure_future(self.run_fn(job_stop))
        stopping = asyncio.create_task(stop.wait())
        self.term = term
        try:
            while not (job.done() or stop.is_set()):
                await asyncio.wait(
                    [job, stopping], timeout=self.ttl / 3, return_when=asyncio.FIRST_COMPLETED
                )
                if job.done() or stop.is_set():
                    break
                sent = time.monotonic()
                if await self._acquire(until - sent) != term:
                    log.warning("%s: lease lost by %s; job stopped", self.name, self.holder)
                    return False
                until = sent + self._sure
            job_stop.set()
            await asyncio.wait([job], timeout=max(until - time.monotonic(), 0.0))
            if not job.done():
                return False
        finally:
            self.term = None
            stopping.cancel()
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        try:
            await self.db.run(release, self.name, self.holder)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("%s: lease not released: %s", self.name, exc)
        if not job.cancelled():
            job.result()  # the job's own failure, for the supervisor to log and restart
        return True

    async def _acquire(self, timeout: float) -> int | None:
        """`acquire` within `timeout` seconds; None if not held (or the database did not answer)."""
        if timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(
                self.db.run(acquire, self.name, self.holder, self.ttl), timeout
            )
        except Exception as exc:  # noqa: BLE001 - the database away: not held
            log.debug("%s: lease not acquired: %s", self.name, exc)
            return None
