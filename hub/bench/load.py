"""Latency under a set load: open loop at fractions of the saturation rate.

The generator sends on a fixed schedule (request i at t0 + i / rate) whatever the
hub answers, opening more connections when all are busy, so a slow hub meets the
same arrivals a fast one does (no coordinated omission). It runs on uvloop in the
bench process; at these rates its cost is small and is reported. Latency is read
from the store, from acceptance to delivery, as in the end-to-end steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from hub.bench.deploy import Deployment
from hub.bench.e2e import Plan, measure
from hub.bench.loadgen import (
    HttpConnection,
    LoadResult,
    Tally,
    body_maker,
    finish,
    run_async,
    template,
)
from hub.bench.procs import own_cpu_seconds

FRACTIONS = (0.25, 0.5, 0.75)
MAX_CONNECTIONS = 512
LATE = 0.005  # seconds behind schedule that count a send as late


async def open_loop(url: str, body: bytes, rate: float, seconds: float, prefix: str) -> LoadResult:
    """Send `rate` events a second for `seconds` on a fixed schedule."""
    loop = asyncio.get_running_loop()
    make = body_maker(body, prefix)
    tally, idle, opened, late = Tally(), [HttpConnection(url) for _ in range(16)], 16, 0
    freed = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def send(conn: HttpConnection, n: int) -> None:
        await tally.send(conn, make(n))
        idle.append(conn)
        freed.set()

    cpu0, started, t0 = own_cpu_seconds(), time.time(), time.monotonic()
    start, total = loop.time(), int(rate * seconds)
    for n in range(total):
        due = start + n / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        late += loop.time() - due > LATE
        while not idle and opened >= MAX_CONNECTIONS:
            freed.clear()
            await freed.wait()
        if not idle:
            idle.append(HttpConnection(url))
            opened += 1
        task = asyncio.create_task(send(idle.pop(), n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    for conn in idle:
        conn.close()
    result = finish(tally, "python open loop", 0, started, t0, cpu0)
    result.seconds = seconds  # the schedule's length; answers may come a little later
    result.late_sends = late
    return result


def run_load(
    dep: Deployment,
    engine: sa.Engine,
    saturation: float,
    plan: Plan,
    fractions: Sequence[float] = FRACTIONS,
) -> list[dict[str, Any]]:
    """One open-loop step per fraction of the saturation rate (1 KiB messages)."""
    body, out = template(1024), []
    for fraction in fractions:
        rate = max(1.0, saturation * fraction)

        def load(prefix: str, rate: float = rate) -> LoadResult:
            return run_async(open_loop(dep.url, body, rate, plan.seconds, prefix))

        step = measure(dep, engine, 1024, f"{plan.tag}-load{int(fraction * 100)}-", load)
        step.rate = round(rate, 1)
        step.clients = None
        step.extra["fraction"] = fraction
        plan.report(step)
        out.append(asdict(step))
    return out
