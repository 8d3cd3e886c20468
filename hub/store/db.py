"""The database: engine, migrations, and a bridge from asyncio to blocking SQL.

SQL runs in worker threads, never on the event loop. SQLite allows one writer at
a time, so its work goes through a single thread (no "database is locked" inside
one process; `busy_timeout` covers other processes such as the CLI). PostgreSQL
gets a small pool of threads and connections.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from hub.store.models import metadata

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str) -> sa.Engine:
    """An engine for a SQLAlchemy URL, with SQLite set up for durability and concurrency."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the writer; FULL makes a commit survive power
            # loss, which a 202 promises. Group commits keep its cost per message low.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def alembic_config(connection: sa.Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to `revision`.

    On PostgreSQL an advisory lock makes processes starting together take turns.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7243901)"))
        command.upgrade(alembic_config(conn), revision)


def revision(engine: sa.Engine) -> str | None:
    """The revision the database stands at (None: no schema yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class Database:
    """An engine plus the threads that run its blocking work for asyncio code."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 8, thread_name_prefix="hub-db"
        )
        # SQLite in WAL mode lets readers run beside its one writer.
        self._readers = (
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="hub-db-read")
            if self.is_sqlite
            else self._executor
        )

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(engine, *args, **kwargs)` in a database thread and await its result."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, self.engine, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like `run`, for work that only reads (on SQLite it does not wait for the writer)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, self.engine, *args, **kwargs)
        return await loop.run_in_executor(self._readers, call)

    def upgrade(self) -> None:
        upgrade(self.engine)

    def check(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.engine.dispose()


__all__ = ["Database", "create_engine", "metadata", "revision", "upgrade"]
