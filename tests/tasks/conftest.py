"""Fixtures of the task platform's tests: a migrated database on both backends, a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.store.db import Database
from hub.tasks import Platform, Unit, save_units
from tests.tasks.helpers import HOME, JUSTICE, OFFICE, TRANSPORT, Clock, platform, start_clock


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    db = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    db.upgrade()
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def clock() -> Clock:
    return start_clock()


@pytest.fixture
def p(clock: Clock) -> Platform:
    return platform(clock)


@pytest.fixture
def units(db: Database, p: Platform) -> None:
    """The units the platform knows: three departments and one sub-unit."""
    save_units(
        db.engine,
        [
            Unit(JUSTICE, "Sở Tư pháp"),
            Unit(HOME, "Sở Nội vụ"),
            Unit(TRANSPORT, "Sở Giao thông vận tải"),
            Unit(OFFICE, "Phòng Hành chính tư pháp", JUSTICE),
        ],
        "test",
        p,
    )
