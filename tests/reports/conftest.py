"""Fixtures of the reporting tests: a migrated database on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.store.db import Database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    db = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    db.upgrade()
    try:
        yield db
    finally:
        db.close()
