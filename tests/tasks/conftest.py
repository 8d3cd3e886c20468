"""Fixtures of the task platform's tests: a migrated database on both backends, a clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api import problems
from hub.config import HubConfig, load_config
from hub.keys import KeyRing
from hub.ratelimit import RateLimits
from hub.store.db import Database
from hub.tasks import Platform, Unit, save_units
from hub.tasks.api import tasks_router
from tests.tasks.helpers import (
    HOME,
    JUSTICE,
    OFFICE,
    TASKS,
    TRANSPORT,
    Clock,
    platform,
    start_clock,
)

KEYS = {"tasks": "key-tasks", "justice": "key-justice", "home": "key-home"}


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


@dataclass
class StubHub:
    db: Database
    config: HubConfig

    def __post_init__(self) -> None:
        self.keys = KeyRing(self.config)
        self.limits = RateLimits(self.config.systems)


def write_config(directory: Path) -> Path:
    systems = [
        {
            "id": TASKS,
            "name": "Nền tảng giao việc",
            "kind": "task_platform",
            "api_key": KEYS["tasks"],
        },
        {"id": f"{JUSTICE}:qlvb", "name": "Sở Tư pháp", "kind": "http", "api_key": KEYS["justice"]},
        {"id": f"{HOME}:qlvb", "name": "Sở Nội vụ", "kind": "http", "api_key": KEYS["home"]},
    ]
    operators = [
        {"name": "ops", "api_key": "key-ops", "role": "operator"},
        {"name": "viewer", "api_key": "key-viewer", "role": "viewer"},
    ]
    path = directory / "hub.yaml"
    path.write_text(yaml.safe_dump({"systems": systems, "operators": operators}), "utf-8")
    return path


@pytest.fixture
def client(db: Database, p: Platform, tmp_path: Path) -> Iterator[TestClient]:
    config = load_config(write_config(tmp_path), kinds={"http", "task_platform"})
    hub = StubHub(db, config)
    app = FastAPI()
    app.state.hub = hub
    problems.install(app)
    app.include_router(tasks_router(hub, p))
    with TestClient(app) as c:
        yield c
