"""Fixtures of the fleet suite: 2 API and 3 worker processes (scripts/fleet.py) over
PostgreSQL and RabbitMQ, a schema and a queue prefix of the test's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from adapters.sink import RecordingSink
from hub.settings import Settings
from hub.store.db import create_engine
from scripts.fleet import Fleet
from tests.conftest import delete_queues
from tests.support import OPS_KEY, free_port, write_config

StartFleet = Callable[..., Fleet]


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as s:
        yield s


@pytest.fixture
def services(pg_url: str, amqp_url: str, unique: str) -> Iterator[dict[str, str]]:
    """The fleet's HUB_* settings for the test's schema and queues; the queues are deleted after."""
    yield {"HUB_DATABASE_URL": pg_url, "HUB_BROKER_URL": amqp_url, "HUB_QUEUE_PREFIX": unique}
    delete_queues(amqp_url, unique)


@pytest.fixture
def start_fleet(tmp_path: Path, services: dict[str, str]) -> Iterator[StartFleet]:
    """`start_fleet(config, **HUB_settings)`: a running fleet of 2 APIs and 3 workers
    (or `apis`, `workers`), logging at info level to tmp_path/logs; stopped (SIGTERM)
    after the test."""
    fleets: list[Fleet] = []

    def start(config: Path, apis: int = 2, workers: int = 3, **env: str) -> Fleet:
        fleet = Fleet(
            apis=apis,
            workers=workers,
            env={
                **services,
                "HUB_CONFIG": str(config),
                "HUB_LOG_LEVEL": "info",
                "HUB_RETRY_POLL_SECONDS": "0.1",
                **env,
            },
            log_dir=tmp_path / "logs",
            api_ports=[free_port() for _ in range(apis)],
            worker_ports=[free_port() for _ in range(workers)],
        )
        fleets.append(fleet)
        return fleet.start()

    yield start
    for fleet in fleets:
        fleet.stop()


def fleet_config(
    directory: Path, sink_url: str, *, systems: dict[str, dict[str, Any]] | None = None, **kw: Any
) -> Path:
    """tests/support.write_config's config, with some systems' fields changed."""
    path = write_config(directory, sink_url, **kw)
    doc = yaml.safe_load(path.read_text("utf-8"))
    for system in doc["systems"]:
        system.update((systems or {}).get(system["id"], {}))
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def client(url: str, key: str = OPS_KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30)


def message(url: str, message_id: str) -> dict[str, Any]:
    """A message's status, deliveries and trace, as an operator reads it from `url`."""
    with client(url) as c:
        r = c.get(f"/api/v1/messages/{message_id}")
        assert r.status_code == 200, r.text
        found: dict[str, Any] = r.json()
        return found


def delivered_by(fleet: Fleet) -> dict[str, float]:
    """Deliveries each worker made, from its metrics (hub_deliveries_delivered_total)."""
    counts = {}
    for worker in fleet.workers:
        text = httpx.get(f"{worker.url}/metrics", timeout=5).text
        counts[worker.name] = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("hub_deliveries_delivered_total{")
        )
    return counts


def store_figures(services: dict[str, str]) -> dict[str, Any]:
    """Messages, deliveries by status, and deliveries with more than one delivered hop."""
    engine = create_engine(Settings(database_url=services["HUB_DATABASE_URL"]).sqlalchemy_url())
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(sa.text("SELECT id FROM messages")).scalars())
            by_status: dict[str, int] = dict(
                conn.execute(
                    sa.text("SELECT status, count(*) FROM deliveries GROUP BY status")
                ).all()
            )
            twice = conn.execute(
                sa.text(
                    "SELECT message_id, destination, count(*) FROM hops"
                    " WHERE stage = 'delivered' GROUP BY message_id, destination"
                    " HAVING count(*) > 1"
                )
            ).all()
    finally:
        engine.dispose()
    return {"stored": stored, "deliveries": by_status, "delivered_twice": twice}
