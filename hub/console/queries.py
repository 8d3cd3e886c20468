"""What the console shows, read from the store (the one place every hub process writes).

Figures come from the store rather than a process's own metrics, so any API
replica shows the whole fleet. Each query is bounded by an index: messages by
`received_at`, deliveries by `(destination, delivered_at)` and `(destination,
status)`, failures by the partial index `ix_hops_failures`, so the cost follows
the traffic in the window, not the size of the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa

from hub.config import HubConfig
from hub.store.models import FAILED_STAGES, deliveries, hops, messages, utcnow

WINDOW = timedelta(minutes=5)  # the "now" figures: rates and latencies
HOUR = timedelta(hours=1)
LATENCY_SAMPLE = 5000  # latest deliveries per destination that the percentiles read
BACKLOG = ("pending", "retrying", "waiting")


def _minute(column: Any, dialect: str) -> Any:
    """The minute a timestamp falls in, as text `YYYY-MM-DD HH:MM` on every store."""
    if dialect == "postgresql":
        return sa.func.to_char(
            sa.func.timezone("UTC", column), sa.literal_column("'YYYY-MM-DD HH24:MI'")
        )
    return sa.func.strftime("%Y-%m-%d %H:%M", column)


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Destination:
    id: str
    delivered_per_min: float
    p50: float | None
    p95: float | None
    errors: int
    retrying: int
    waiting: int
    pending: int
    dead: int

    @property
    def backlog(self) -> int:
        return self.pending + self.retrying + self.waiting


def destinations(engine: sa.Engine, ids: Iterable[str]) -> list[Destination]:
    """Per destination: rate and latency over the last five minutes, errors in them, and
    how many deliveries are open now."""
    now = utcnow()
    since = now - WINDOW
    ids = list(ids)
    out = []
    with engine.connect() as conn:
        states: dict[str, dict[str, int]] = defaultdict(dict)
        q = (
            sa.select(deliveries.c.destination, deliveries.c.status, sa.func.count())
            .where(deliveries.c.status.in_((*BACKLOG, "dead")))
            .group_by(deliveries.c.destination, deliveries.c.status)
        )
        for destination, status, n in conn.execute(q):
            states[destination][status] = n
        for d in ids:
            rows = conn.execute(
                sa.select(deliveries.c.created_at, deliveries.c.delivered_at)
                .where(deliveries.c.destination == d, deliveries.c.delivered_at >= since)
                .order_by(deliveries.c.delivered_at.desc())
                .limit(LATENCY_SAMPLE)
            ).all()
            latencies = sorted((r.delivered_at - r.created_at).total_seconds() for r in rows)
            count = len(rows)
            if count == LATENCY_SAMPLE:  # a busy destination: count without reading rows
                count = conn.execute(
                    sa.select(sa.func.count()).where(
                        deliveries.c.destination == d, deliveries.c.delivered_at >= since
                    )
                ).scalar_one()
            errors = conn.execute(
                sa.select(sa.func.count()).where(
                    hops.c.destination == d,
                    hops.c.at >= since,
                    hops.c.stage.in_(FAILED_STAGES),
                )
            ).scalar_one()
            s = states.get(d, {})
            out.append(
                Destination(
                    d,
                    round(count / (WINDOW.total_seconds() / 60), 1),
                    _percentile(latencies, 0.5),
                    _percentile(latencies, 0.95),
                    errors,
                    s.get("retrying", 0),
                    s.get("waiting", 0),
                    s.get("pending", 0),
                    s.get("dead", 0),
                )
            )
    return out


def routes(engine: sa.Engine, config: HubConfig, since: datetime) -> dict[str, dict[str, int]]:
    """Deliveries each route created for messages received since `since`, by destination."""
    q = (
        sa.select(deliveries.c.route, deliveries.c.destination, sa.func.count())
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(messages.c.received_at >= since)
        .group_by(deliveries.c.route, deliveries.c.destination)
    )
    traffic: dict[str, dict[str, int]] = {r.name: {} for r in config.routes}
    with engine.connect() as conn:
        for names, destination, n in conn.execute(q):
            for name in (names or "").split(","):
                if name:
                    per = traffic.setdefault(name, {})
                    per[destination] = per.get(destination, 0) + n
    return traffic


def series(engine: sa.Engine, ids: Iterable[str], now: datetime, zone: tzinfo) -> dict[str, Any]:
    """Per minute over the hour before `now`: messages accepted, deliveries made, failed
    tries; `minutes` labels them in `zone` (the store groups by UTC minute)."""
    since = now - HOUR
    dialect = engine.dialect.name
    start = since.replace(second=0, microsecond=0) + timedelta(minutes=1)
    minutes = [(start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M") for i in range(60)]
    counts: dict[str, dict[str, int]] = {k: {} for k in ("accepted", "delivered", "failed")}

    def add(kind: str, rows: Iterable[Any]) -> None:
        for minute, n in rows:
            counts[kind][minute] = counts[kind].get(minute, 0) + n

    with engine.connect() as conn:
        m = _minute(messages.c.received_at, dialect)
        add(
            "accepted",
            conn.execute(
                sa.select(m, sa.func.count()).where(messages.c.received_at >= since).group_by(m)
            ),
        )
        dm = _minute(deliveries.c.delivered_at, dialect)
        hm = _minute(hops.c.at, dialect)
        for d in ids:
            add(
                "delivered",
                conn.execute(
                    sa.select(dm, sa.func.count())
                    .where(deliveries.c.destination == d, deliveries.c.delivered_at >= since)
                    .group_by(dm)
                ),
            )
            add(
                "failed",
                conn.execute(
                    sa.select(hm, sa.func.count())
                    .where(
                        hops.c.destination == d,
                        hops.c.at >= since,
                        hops.c.stage.in_(FAILED_STAGES),
                    )
                    .group_by(hm)
                ),
            )
    return {
        "minutes": [
            (start + timedelta(minutes=i)).astimezone(zone).strftime("%H:%M") for i in range(60)
        ],
        **{k: [v.get(x, 0) for x in minutes] for k, v in counts.items()},
    }


def accepted_per_minute(engine: sa.Engine) -> float:
    since = utcnow() - WINDOW
    with engine.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).where(messages.c.received_at >= since)
        ).scalar_one()
    return round(n / (WINDOW.total_seconds() / 60), 1)


@dataclass(frozen=True)
class SystemHealth:
    last_success: datetime | None
    last_error_at: datetime | None
    last_error: str | None


def system_health(engine: sa.Engine, ids: Iterable[str]) -> dict[str, SystemHealth]:
    """Each destination's last delivery and last failed try."""
    out = {}
    with engine.connect() as conn:
        for d in ids:
            ok = conn.execute(
                sa.select(sa.func.max(deliveries.c.delivered_at)).where(
                    deliveries.c.destination == d
                )
            ).scalar_one()
            failed = conn.execute(
                sa.select(hops.c.at, hops.c.detail)
                .where(hops.c.destination == d, hops.c.stage.in_(FAILED_STAGES))
                .order_by(hops.c.at.desc())
                .limit(1)
            ).first()
            out[d] = SystemHealth(
                ok, failed.at if failed else None, failed.detail if failed else None
            )
    return out


def state(health: SystemHealth | None, row: Destination | None) -> str:
    """What a destination's deliveries say about it now (paused aside): the key of
    `state.*`. Failing when its latest outcome is a failure (a failed try or a dead
    letter newer than its last delivery), whatever is still queued for it."""
    if health is None or (health.last_success is None and health.last_error_at is None):
        return "idle"
    if health.last_error_at is not None and (
        health.last_success is None or health.last_error_at > health.last_success
    ):
        return "never_delivered" if health.last_success is None else "failing"
    if row is not None and row.retrying:
        return "retrying"
    return "ok"
