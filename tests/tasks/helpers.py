"""Directive events, a controlled clock and the outbox as the tests read them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa

from hub.config import builtin_types
from hub.store.db import Database
from hub.store.models import outbox
from hub.tasks import Platform, apply
from hub.tasks.apply import Outcome
from hub.validation import Validators

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

GOV = "000.00.00.G01:nhiemvu"  # the Government Office's task-tracking system
CITY = "000.00.00.H29:nhiemvu"  # the City People's Committee's
TASKS = "000.00.00.H29:tasks"
JUSTICE, HOME, TRANSPORT = "000.00.12.H29", "000.00.13.H29", "000.00.14.H29"
OFFICE = "000.12.01.H29"  # a sub-unit of the Department of Justice
DIRECTIVE = "125/TB-VPCP-1"
VALIDATORS = Validators(builtin_types())
_ids = itertools.count(1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, iso: str) -> None:
        self.at = datetime.fromisoformat(iso)

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


def start_clock() -> Clock:
    return Clock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))  # 09:00 in Hà Nội


def platform(clock: Clock, **kw: Any) -> Platform:
    return Platform(source_id=TASKS, queue="tasks.outbox", now=clock, **kw)


def directive(version: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "directive_id": DIRECTIVE,
        "version": version,
        "title": "Triển khai nền tảng số dùng chung",
        "content": "Sở Tư pháp chủ trì, phối hợp Sở Nội vụ triển khai.",
        "source_document": {
            "number": "125/TB-VPCP",
            "date": "2026-10-30",
            "issuer": {"code": "000.00.00.G01", "name": "Văn phòng Chính phủ"},
        },
        "authority": "government_office",
        "lead_unit": {"code": JUSTICE, "name": "Sở Tư pháp"},
        "coordinating_units": [{"code": HOME, "name": "Sở Nội vụ"}],
        "deadline": {"kind": "date", "date": "2026-11-30"},
        "priority": "urgent",
    }
    body.update(changes)
    return body


def event(
    type_: str, data: dict[str, Any], *, source: str = GOV, id: str | None = None
) -> dict[str, Any]:
    """A CloudEvent whose envelope and data pass the hub's schemas."""
    ev = {
        "specversion": "1.0",
        "id": id or f"m{next(_ids)}",
        "source": source,
        "type": f"vn.lgsp.directive.{type_}.v1",
        "datacontenttype": "application/json",
        "data": data,
    }
    check(ev)
    return ev


def check(ev: dict[str, Any]) -> None:
    VALIDATORS.check_envelope(ev)
    VALIDATORS.check_data(ev)


def assigned(version: int = 1, **changes: Any) -> dict[str, Any]:
    return event("assigned", directive(version, **changes))


def updated(version: int, changed: list[str], **changes: Any) -> dict[str, Any]:
    return event("updated", {"directive": directive(version, **changes), "changed": changed})


def revoked(version: int, reason: str = "Không còn phù hợp") -> dict[str, Any]:
    data = {
        "directive_id": DIRECTIVE,
        "version": version,
        "revoked_at": "2026-11-10T08:00:00+07:00",
        "reason": reason,
    }
    return event("revoked", data)


def run(db: Database, p: Platform, ev: dict[str, Any], message_id: str | None = None) -> Outcome:
    with db.engine.begin() as conn:
        return apply(conn, message_id or ev["id"], ev, p)


def published(db: Database) -> list[dict[str, Any]]:
    """The outbox's events in id order (the order the relay publishes them)."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.queue, outbox.c.body).order_by(outbox.c.id)).all()
    for row in rows:
        assert row.queue == "tasks.outbox"
    return [orjson.loads(r.body) for r in rows]


def as_(
    key: str, official: str | None = None, unit: str | None = None, name: str = ""
) -> dict[str, str]:
    """Headers of a caller with `key`, speaking for `official` of `unit` (named `name`)."""
    headers = {"authorization": f"Bearer {key}"}
    if official:
        headers["x-official"] = official
    if unit:
        headers["x-unit"] = unit
    if name:
        headers["x-official-name"] = quote(name)
    return headers


def lead_task(client: TestClient) -> int:
    items = client.get("/api/v1/tasks", headers=as_("key-justice", unit=JUSTICE)).json()["items"]
    return int(next(t["id"] for t in items if t["role"] == "lead"))
