"""Fixtures of the chaos suite.

`pg_url` overrides the shared one (tests/conftest.py) for this folder only: its
admin engine keeps no pooled connection, so creating and dropping the test's
schema works across a PostgreSQL restart made by a scenario. The `backend`
fixture picks this override up too.

`services_restored` (autouse, once per session) checks at the end that the
faults left RabbitMQ and PostgreSQL running, restarting them when not.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import PG_URL, require_service

PG_CLUSTER = os.environ.get("CHAOS_PG_CLUSTER", "15/main").split("/")


@pytest.fixture
def pg_url(unique: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema made for this test and dropped after."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    admin = sa.create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool
    )
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{unique}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{unique}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{unique}" CASCADE'))
        admin.dispose()


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a command; a missing program counts as a failure (returncode 127)."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(command, 127, "", str(exc))


def restore_services() -> list[str]:
    """Start whatever a fault left stopped; returns what had to be done."""
    done = []
    for pid in _run("pgrep", "-x", "beam.smp").stdout.split():
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "T":
            os.kill(int(pid), signal.SIGCONT)
            done.append(f"kill -CONT {pid}")
    running = _run("rabbitmqctl", "-q", "eval", "rabbit:is_running().")
    if running.returncode != 127 and running.stdout.strip() != "true":
        if _run("rabbitmqctl", "start_app").returncode != 0:
            _run("rabbitmq-server", "-detached")
        _run("rabbitmqctl", "await_startup")
        done.append("rabbitmqctl start_app")
    version, name = PG_CLUSTER
    if _run("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "status").returncode == 3:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start")
        done.append(f"pg_ctlcluster {version} {name} start")
    return done


@pytest.fixture(scope="session", autouse=True)
def services_restored() -> Iterator[None]:
    """After the suite: RabbitMQ running and not stopped, PostgreSQL up."""
    yield
    if done := restore_services():
        print(f"\nchaos: services restored after the suite: {'; '.join(done)}")
