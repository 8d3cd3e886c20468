"""The machine a benchmark ran on: cores, CPU model, memory, and the versions in play."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.settings import Settings


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def rabbitmq_version(amqp_url: str) -> str | None:
    """The broker's version as it announces itself on connecting."""
    import pika  # type: ignore[import-untyped]

    from hub.bench.raw import parameters

    try:
        conn = pika.BlockingConnection(parameters(amqp_url))
    except Exception:  # noqa: BLE001 - not reachable: reported as unknown
        return None
    try:
        version = conn._impl.server_properties.get("version")
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        conn.close()


def postgres_version(pg_url: str) -> str | None:
    try:
        engine = sa.create_engine(Settings(database_url=pg_url).sqlalchemy_url())
        with engine.connect() as conn:
            version = str(conn.execute(sa.text("SHOW server_version")).scalar_one())
        engine.dispose()
        return version
    except Exception:  # noqa: BLE001 - not reachable: reported as unknown
        return None


def wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).split("[")[0].strip() or None


def describe(services: bool, pg_url: str, amqp_url: str) -> dict[str, Any]:
    """What to print next to the figures so that they can be compared and reproduced."""
    import sqlite3

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version(),
    }
    if services:
        info["rabbitmq"] = rabbitmq_version(amqp_url)
        info["postgresql"] = postgres_version(pg_url)
    return info
