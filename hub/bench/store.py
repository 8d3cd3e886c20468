"""What the store says about a load step: accepted, delivered, and how long it took.

Latency is measured where the hub itself records it: from `messages.received_at`
(the message's batch was being committed, just before the 202) to
`deliveries.delivered_at` (the destination's 2xx was being committed). A step's
messages are found by the id prefix its generator used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from hub.store.models import deliveries, messages

DRAIN_TIMEOUT = 300.0  # a step's backlog must be delivered before the next step


@dataclass(frozen=True)
class StepStore:
    """A step as the store saw it."""

    accepted: int
    delivered: int
    delivered_in_window: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def undelivered(engine: sa.Engine, id_prefix: str) -> int:
    """Messages of a step not yet delivered."""
    q = sa.select(sa.func.count()).where(
        messages.c.id.startswith(id_prefix, autoescape=True), messages.c.status != "delivered"
    )
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def wait_drained(engine: sa.Engine, id_prefix: str, timeout: float = DRAIN_TIMEOUT) -> bool:
    """Wait until every message of a step is delivered; False when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while undelivered(engine, id_prefix):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def step_store(engine: sa.Engine, id_prefix: str, window_end: float) -> StepStore:
    """Counts and acceptance-to-delivery latency of the messages whose id starts with the prefix.

    Args:
        window_end: time.time() at the end of the load; deliveries committed by then
            count toward the step's throughput.
    """
    mine = messages.c.id.startswith(id_prefix, autoescape=True)
    q = (
        sa.select(messages.c.received_at, deliveries.c.delivered_at)
        .select_from(messages.outerjoin(deliveries, deliveries.c.message_id == messages.c.id))
        .where(mine)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    end = datetime.fromtimestamp(window_end, UTC)
    done = [(r, d) for r, d in rows if d is not None]
    lat = sorted((d - r).total_seconds() * 1000 for r, d in done)
    return StepStore(
        accepted=len(rows),  # one destination: one row per message
        delivered=len(done),
        delivered_in_window=sum(1 for _, d in done if d <= end),
        p50_ms=percentile(lat, 50),
        p95_ms=percentile(lat, 95),
        p99_ms=percentile(lat, 99),
        max_ms=lat[-1] if lat else None,
    )
