"""Shared fixtures: one test body, two backends.

`transport_url` is parametrised memory/rabbitmq and `database_url` sqlite/postgres.
Tests that need a real service skip with the reason when it is unreachable, unless
HUB_REQUIRE_SERVICES=1 (set by CI), where an unreachable service fails the test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_URL = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under HUB_REQUIRE_SERVICES=1) when a service does not answer."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("HUB_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (HUB_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture
def unique() -> str:
    """A short name unique to this test, for queues, schemas and files."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def amqp_url() -> str:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL


@pytest.fixture
def pg_url(unique: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema made for this test and dropped after."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import sqlalchemy as sa

    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{unique}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{unique}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{unique}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def transport_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("amqp_url"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("services", marks=[pytest.mark.rabbitmq, pytest.mark.postgres]),
    ]
)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str
) -> Iterator[dict[str, str]]:
    """The two deployments under test: SQLite + in-process, and PostgreSQL + RabbitMQ.

    Yields the settings fields that differ; queues made on RabbitMQ are deleted after.
    """
    if request.param == "embedded":
        yield {
            "database_url": f"sqlite:///{tmp_path / 'hub.db'}",
            "broker_url": "memory://",
            "queue_prefix": unique,
        }
        return
    amqp = str(request.getfixturevalue("amqp_url"))
    pg = str(request.getfixturevalue("pg_url"))
    yield {"database_url": pg, "broker_url": amqp, "queue_prefix": unique}
    delete_queues(amqp, unique)


def delete_queues(amqp: str, prefix: str) -> None:
    """Delete every queue whose name starts with `prefix` (listed with rabbitmqctl)."""
    import subprocess

    import kombu

    try:
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return
    names = [n for n in listed if n.startswith(prefix + ".")]
    if not names:
        return
    with kombu.Connection(amqp, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in names:
            try:
                channel.queue_delete(name)
            except Exception:  # noqa: BLE001 - gone already; the channel closed with it
                channel = conn.channel()
