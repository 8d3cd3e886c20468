"""Leases: a scheduler runs in one process of the fleet, and moves when that one dies.

`hub/leases.py` on both databases: contenders, a holder that dies, one that
leaves, one that loses its lease; then two `hub serve --role worker` processes
over PostgreSQL and RabbitMQ polling the Government Office's simulator, the
holder killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from starlette.requests import Request
from starlette.responses import Response

from adapters.government_office import GovernmentOffice
from hub.leases import Leased, acquire, holder_id, holders, release
from hub.settings import Settings
from hub.store.db import Database, metadata
from hub.store.models import leases, utcnow
from tests.support import HubProcess, free_port, wait_until

TTL = 1.5
SLACK = 0.5


@pytest.fixture
def dbs(database_url: str) -> Iterator[tuple[Database, Database]]:
    """The store as two processes see it: two engines (and thread pools) on one database."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    a, b = Database(url), Database(url)
    a.upgrade()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@dataclass
class Run:
    who: str
    start: float
    end: float | None = None
    how: str = "running"


class Job:
    """A leased job that records when it ran in `runs`, and how it ended."""

    def __init__(self, who: str, runs: list[Run]) -> None:
        self.who, self.runs = who, runs

    async def __call__(self, stop: asyncio.Event) -> None:
        run = Run(self.who, time.monotonic())
        self.runs.append(run)
        try:
            await stop.wait()
            run.how = "stopped"
        except asyncio.CancelledError:
            run.how = "cancelled"
            raise
        finally:
            run.end = time.monotonic()


class Away:
    """A database that stops answering (it hangs) once `away` is set."""

    def __init__(self, db: Database) -> None:
        self.db, self.away = db, False

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.away:
            await asyncio.Event().wait()
        return await self.db.run(fn, *args, **kwargs)


def leased(db: Any, who: str, runs: list[Run], ttl: float = TTL) -> Leased:
    return Leased(db, "poll:test", f"{who}:{holder_id()}", ttl, Job(who, runs))


def no_overlap(runs: list[Run]) -> None:
    ordered = sorted(runs, key=lambda r: r.start)
    for before, after in itertools.pairwise(ordered):
        assert before.end is not None and before.end <= after.start, (before, after)


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def first_then_second(
    a: Leased, b: Leased, scenario: Callable[[asyncio.Event, asyncio.Task[None]], Awaitable[None]]
) -> None:
    """`a` takes the lease, then `b` contends; `scenario(stop_a, task_a)` runs; both stop."""
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(a.run(stop_a))
    await until(lambda: a.term)
    task_b = asyncio.create_task(b.run(stop_b))
    try:
        await scenario(stop_a, task_a)
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.wait_for(task_b, 10)
        task_a.cancel()  # in case it hangs on a database that does not answer
        await asyncio.gather(task_a, return_exceptions=True)


def test_the_migration_creates_the_table_as_declared(dbs: tuple[Database, Database]) -> None:
    with dbs[0].engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "leases" in str(d)] == []


def test_acquire_renew_release_and_the_term(dbs: tuple[Database, Database]) -> None:
    engine = dbs[0].engine
    assert acquire(engine, "sweep", "a", 30) == 1
    assert acquire(engine, "sweep", "b", 30) is None  # a holds it
    assert acquire(engine, "sweep", "a", 30) == 1  # renewed, same term
    assert release(engine, "sweep", "a") and not release(engine, "sweep", "a")
    assert acquire(engine, "sweep", "b", 30) == 2  # released: b at once, a new term
    with engine.begin() as conn:  # b's lease ran out
        conn.execute(leases.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    assert acquire(engine, "sweep", "a", 30) == 3
    assert acquire(engine, "sweep", "b", 30) is None
    assert holders(engine)["sweep"]["holder"] == "a"


def test_first_comers_racing_on_a_new_name_get_one_holder(
    dbs: tuple[Database, Database],
) -> None:
    got: list[int | None] = []
    start = threading.Barrier(8)

    def take(i: int) -> None:
        start.wait()
        got.append(acquire(dbs[i % 2].engine, "reports", f"h{i}", 30))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got, key=str) == [1] + [None] * 7


def test_of_two_contenders_exactly_one_runs(dbs: tuple[Database, Database]) -> None:
    runs: list[Run] = []
    a, b = leased(dbs[0], "a", runs), leased(dbs[1], "b", runs)

    async def go() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(x.run(stop)) for x in (a, b)]  # together
        await until(lambda: runs)
        await asyncio.sleep(2 * TTL)  # several renewals: the lease stays where it is
        assert len(runs) == 1 and {a.term, b.term} == {1, None}
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    asyncio.run(go())
    assert len(runs) == 1 and runs[0].how == "stopped"


def test_the_other_takes_over_within_ttl_when_the_holder_dies(
    dbs: tuple[Database, Database],
) -> None:
    runs: list[Run] = []
    a, b = leased(dbs[0], "a", runs), leased(dbs[1], "b", runs)
    took = 0.0

    async def scenario(_stop_a: asyncio.Event, task_a: asyncio.Task[None]) -> None:
        nonlocal took
        await asyncio.sleep(TTL / 2)  # b tries while a renews
        assert len(runs) == 1
        task_a.cancel()  # a dies: its renewals and its job end, nothing is released
        await asyncio.gather(task_a, return_exceptions=True)
        died = time.monotonic()
        await until(lambda: len(runs) == 2)
        took = runs[1].start - died

    asyncio.run(first_then_second(a, b, scenario))
    # a renewed at most ttl/3 before it died: its lease is kept for the rest of ttl
    assert TTL * 2 / 3 - 0.1 <= took <= TTL + b._retry + SLACK, took
    assert [(r.who, r.how) for r in runs] == [("a", "cancelled"), ("b", "stopped")]
    no_overlap(runs)


def test_a_graceful_stop_hands_over_at_once(dbs: tuple[Database, Database]) -> None:
    runs: list[Run] = []
    ttl = 6.0  # the successor must not wait for it to run out
    a, b = leased(dbs[0], "a", runs, ttl), leased(dbs[1], "b", runs, ttl)
    took = 0.0

    async def scenario(stop_a: asyncio.Event, _task_a: asyncio.Task[None]) -> None:
        nonlocal took
        left = time.monotonic()
        stop_a.set()
        await until(lambda: len(runs) == 2)
        took = runs[1].start - left
        assert b.term == 2 and a.term is None

    asyncio.run(first_then_second(a, b, scenario))
    assert took <= b._retry + SLACK < ttl, took
    assert [(r.who, r.how) for r in runs] == [("a", "stopped"), ("b", "stopped")]
    no_overlap(runs)


def test_a_job_whose_lease_is_taken_is_stopped(dbs: tuple[Database, Database]) -> None:
    runs: list[Run] = []
    a = leased(dbs[0], "a", runs)

    async def go() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(a.run(stop))
        await until(lambda: runs)
        with dbs[1].engine.begin() as conn:  # another process took it (a was paused, say)
            conn.execute(
                leases.update().values(
                    holder="thief", term=leases.c.term + 1, expires_at=utcnow() + timedelta(60)
                )
            )
        taken = time.monotonic()
        await until(lambda: runs[0].end)
        await asyncio.sleep(TTL)  # a keeps trying; the thief keeps it
        stop.set()
        await asyncio.wait_for(task, 10)
        assert runs[0].end is not None
        return runs[0].end - taken

    stopped_after = asyncio.run(go())
    assert stopped_after <= TTL / 3 + SLACK, stopped_after
    assert [r.how for r in runs] == ["cancelled"] and a.term is None


def test_a_job_is_stopped_before_its_lease_can_run_out(dbs: tuple[Database, Database]) -> None:
    """The holder's database stops answering: its job ends before the other's begins."""
    runs: list[Run] = []
    away = Away(dbs[0])
    a, b = leased(away, "a", runs), leased(dbs[1], "b", runs)
    gone = 0.0

    async def scenario(_stop_a: asyncio.Event, _task_a: asyncio.Task[None]) -> None:
        nonlocal gone
        away.away = True
        gone = time.monotonic()
        await until(lambda: len(runs) == 2)

    asyncio.run(first_then_second(a, b, scenario))
    assert [(r.who, r.how) for r in runs] == [("a", "cancelled"), ("b", "stopped")]
    assert runs[0].end is not None and runs[0].end - gone <= TTL
    assert runs[1].start - gone <= TTL + b._retry + SLACK
    no_overlap(runs)


# One lease across processes -------------------------------------------------------------

OFFICE = "000.00.00.G22:nhiemvu"
POLL = 0.5
LEASE = 3


class CountingOffice(GovernmentOffice):
    """The Government Office's simulator, noting when each listing of changes was asked."""

    def __init__(self) -> None:
        self.polls: list[float] = []
        super().__init__()

    async def _changes(self, request: Request) -> Response:
        self.polls.append(time.monotonic())
        return await super()._changes(request)


def office_config(tmp_path: Path, office: str) -> Path:
    system = {
        "id": OFFICE,
        "name": "Hệ thống theo dõi nhiệm vụ - Văn phòng Chính phủ",
        "kind": "government_office",
        "endpoint": office,
        "api_key": "k-office",
        "outbound_key": "city-key",
        "poll_seconds": POLL,
        "may_send": ["vn.lgsp.directive.assigned.v1"],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"systems": [system], "routes": []}), encoding="utf-8")
    return path


def poll_lease(url: str) -> dict[str, Any] | None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return holders(engine).get(f"poll:{OFFICE}")
    finally:
        engine.dispose()


def serving_metrics(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_two_workers_poll_once_and_the_survivor_takes_over(
    tmp_path: Path, pg_url: str, amqp_url: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_LEASE_SECONDS", str(LEASE))
    with CountingOffice() as office:
        settings = Settings(
            config=office_config(tmp_path, office.url),
            database_url=pg_url,
            broker_url=amqp_url,
            queue_prefix=unique,
        )
        workers, metrics = [], [free_port(), free_port()]
        for i, port in enumerate(metrics):  # a worker serves /metrics once its tasks started
            monkeypatch.setenv("HUB_METRICS_PORT", str(port))
            workers.append(HubProcess(settings, role="worker", log=tmp_path / f"w{i}.log").start())
        try:
            wait_until(lambda: all(serving_metrics(p) for p in metrics), timeout=30)
            both = len(office.polls)  # from here both contend for the poller's lease
            wait_until(lambda: len(office.polls) >= both + 8, timeout=10)
            gaps = [b - a for a, b in itertools.pairwise(office.polls[both:])]
            assert min(gaps) >= POLL * 0.8, gaps  # one poller: never two polls close together
            lease = poll_lease(pg_url)
            assert lease is not None and lease["term"] == 1
            pids = {w.proc.pid: w for w in workers if w.proc}
            holder = pids.pop(int(lease["holder"].split(":")[1]))
            (survivor_pid,) = pids

            holder.kill()
            killed = time.monotonic()
            wait_until(lambda: office.polls[-1] > killed, timeout=LEASE + 5)
            took = next(t for t in office.polls if t > killed) - killed
            # the lease runs out, the survivor's next try (every min(ttl/3, 1 s)), a poll
            assert took <= LEASE + 1.0 + SLACK, took
            lease = poll_lease(pg_url)
            assert lease is not None and lease["term"] == 2
            assert int(lease["holder"].split(":")[1]) == survivor_pid
            print(f"taken over {took:.2f} s after SIGKILL (lease {LEASE} s)")
        finally:
            for w in workers:
                w.stop()
