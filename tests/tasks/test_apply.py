"""Directive events applied exactly once and in version order, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.config import RetryPolicy, System
from hub.errors import Rejected, Transient
from hub.store.db import Database
from hub.store.models import metadata
from hub.tasks import (
    Actor,
    Assignee,
    Platform,
    Unit,
    assign,
    flagged,
    held,
    report_progress,
    save_units,
)
from hub.tasks.connector import TaskPlatformConnector
from hub.tasks.queries import TaskFilter, list_tasks, task_detail
from hub.tasks.tables import TABLES, directive_events, directives, tasks
from tests.tasks.helpers import (
    DIRECTIVE,
    GOV,
    HOME,
    JUSTICE,
    OFFICE,
    TASKS,
    Clock,
    assigned,
    check,
    event,
    published,
    revoked,
    run,
    updated,
)

pytestmark = pytest.mark.usefixtures("units")
LEAD = Actor("nguyen.van.a", JUSTICE, "Nguyễn Văn A")


def the_directive(db: Database) -> sa.Row[Any]:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(directives)).one()


def tasks_of(db: Database, p: Platform) -> dict[str, dict[str, Any]]:
    items = list_tasks(db.engine, TaskFilter(), p.today())
    return {f"{t['role']}:{t['unit']}": t for t in items}


def event_states(db: Database) -> list[tuple[int, str, str]]:
    c = directive_events.c
    with db.engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(sa.select(c.version, c.type, c.state).order_by(c.id))
        ]


def test_migration_creates_the_tables_as_declared(db: Database) -> None:
    assert {t.name for t in TABLES} <= set(metadata.tables)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    names = {t.name for t in TABLES}
    assert [d for d in diff if any(n in str(d) for n in names)] == []


def test_assigned_creates_the_directive_a_lead_and_a_coordinating_task(
    db: Database, p: Platform
) -> None:
    outcome = run(db, p, assigned())
    assert (outcome.result, outcome.versions, outcome.flag) == ("applied", (1,), None)
    d = the_directive(db)
    assert (d.source, d.directive_id, d.version, d.state, str(d.deadline)) == (
        GOV,
        DIRECTIVE,
        1,
        "open",
        "2026-11-30",
    )
    found = tasks_of(db, p)
    assert set(found) == {f"lead:{JUSTICE}", f"coordinating:{HOME}"}
    assert {t["status"] for t in found.values()} == {"in_progress_on_time"}
    assert found[f"lead:{JUSTICE}"]["deadline"] == "2026-11-30"
    assert found[f"lead:{JUSTICE}"]["title"] == "Triển khai nền tảng số dùng chung"


def test_the_same_message_twice_is_applied_once(db: Database, p: Platform) -> None:
    ev = assigned()
    assert run(db, p, ev).result == "applied"
    assert run(db, p, ev).result == "repeat"
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(directive_events)).scalar() == 1


def test_v2_before_v1_is_held_then_both_apply_in_order(db: Database, p: Platform) -> None:
    v2 = updated(2, ["deadline"], deadline={"kind": "date", "date": "2026-12-15"})
    v3 = updated(
        3,
        ["title"],
        title="Triển khai nền tảng số (sửa đổi)",
        deadline={"kind": "date", "date": "2026-12-15"},
    )
    assert run(db, p, v3).result == "held"
    assert run(db, p, v2).result == "held"
    assert [h["version"] for h in held(db.engine)] == [3, 2]
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(directives)).first() is None
    outcome = run(db, p, assigned())
    assert (outcome.result, outcome.versions) == ("applied", (1, 2, 3))
    d = the_directive(db)
    assert (d.version, str(d.deadline), d.title) == (
        3,
        "2026-12-15",
        "Triển khai nền tảng số (sửa đổi)",
    )
    assert held(db.engine) == []
    assert event_states(db) == [
        (3, "vn.lgsp.directive.updated.v1", "applied"),
        (2, "vn.lgsp.directive.updated.v1", "applied"),
        (1, "vn.lgsp.directive.assigned.v1", "applied"),
    ]
    # a gap: v5 waits for v4
    assert run(db, p, revoked(5)).result == "held"
    assert the_directive(db).state == "open"
    assert run(db, p, updated(4, ["priority"], priority="very_urgent")).versions == (4, 5)
    assert the_directive(db).state == "revoked"


def test_an_older_or_equal_version_is_recorded_as_a_duplicate_and_ignored(
    db: Database, p: Platform
) -> None:
    run(db, p, assigned())
    run(db, p, updated(2, ["deadline"], deadline={"kind": "date", "date": "2026-12-15"}))
    late = updated(2, ["deadline"], deadline={"kind": "date", "date": "2027-01-31"})
    assert run(db, p, late).result == "duplicate"
    assert run(db, p, assigned()).result == "duplicate"  # v1 again, another message id
    assert str(the_directive(db).deadline) == "2026-12-15"
    assert [s for _, _, s in event_states(db)] == ["applied", "applied", "duplicate", "duplicate"]
    assert len(tasks_of(db, p)) == 2


def test_deadline_moved_after_progress_recomputes_the_status(
    db: Database, p: Platform, clock: Clock
) -> None:
    run(db, p, assigned())
    lead = tasks_of(db, p)[f"lead:{JUSTICE}"]
    clock.set("2026-11-20T09:00:00+07:00")
    report_progress(db.engine, p, LEAD, lead["id"], 40, "Đã xây dựng kế hoạch.")
    assert tasks_of(db, p)[f"lead:{JUSTICE}"]["status"] == "in_progress_on_time"
    run(db, p, updated(2, ["deadline"], deadline={"kind": "date", "date": "2026-11-15"}))
    now = tasks_of(db, p)
    assert now[f"lead:{JUSTICE}"]["status"] == "in_progress_overdue"
    assert now[f"coordinating:{HOME}"]["status"] == "in_progress_overdue"
    assert now[f"lead:{JUSTICE}"]["percent"] == 40
    detail = task_detail(db.engine, lead["id"], p.today())
    assert detail is not None
    assert [h["action"] for h in detail["history"]] == ["assigned", "progress", "deadline_moved"]
    assert detail["directive"]["status"] == "in_progress_overdue"
    run(db, p, updated(3, ["deadline"], deadline={"kind": "date", "date": "2026-12-31"}))
    assert tasks_of(db, p)[f"lead:{JUSTICE}"]["status"] == "in_progress_on_time"


def test_updated_units_move_the_lead_task_and_the_coordinating_ones(
    db: Database, p: Platform
) -> None:
    run(db, p, assigned())
    run(
        db,
        p,
        updated(
            2,
            ["lead_unit", "coordinating_units"],
            lead_unit={"code": HOME},
            coordinating_units=[{"code": "000.00.14.H29"}],
        ),
    )
    found = tasks_of(db, p)
    assert found[f"lead:{HOME}"]["status"] == "in_progress_on_time"
    assert found[f"coordinating:{HOME}"]["status"] == "revoked"
    assert found["coordinating:000.00.14.H29"]["status"] == "in_progress_on_time"


def test_revoked_while_in_progress_closes_all_and_tells_the_assignees(
    db: Database, p: Platform, clock: Clock
) -> None:
    run(db, p, assigned())
    lead = tasks_of(db, p)[f"lead:{JUSTICE}"]
    report_progress(db.engine, p, LEAD, lead["id"], 30, "Đang triển khai.")
    onward = assign(
        db.engine,
        p,
        LEAD,
        lead["id"],
        Assignee(OFFICE, "tran.thi.b", "Trần Thị B"),
    )
    before = len(published(db))
    clock.set("2026-11-10T10:00:00+07:00")
    assert run(db, p, revoked(2)).result == "applied"
    d = the_directive(db)
    assert (d.state, d.revoke_reason) == ("revoked", "Không còn phù hợp")
    assert {t["status"] for t in tasks_of(db, p).values()} == {"revoked"}
    reminders = published(db)[before:]
    for ev in reminders:
        check(ev)
        assert (ev["source"], ev["type"]) == (TASKS, "vn.lgsp.reminder.due.v1")
        assert ev["data"]["rule"] == "revoked" and ev["data"]["day"] == "2026-11-10"
    to = {ev["data"]["task_id"]: ev["data"]["to"] for ev in reminders}
    assert to == {
        str(lead["id"]): [{"code": JUSTICE, "name": "Sở Tư pháp"}],
        str(tasks_of(db, p)[f"coordinating:{HOME}"]["id"]): [{"code": HOME, "name": "Sở Nội vụ"}],
        str(onward): [
            {
                "id": "tran.thi.b",
                "name": "Trần Thị B",
                "unit": {"code": OFFICE, "name": "Phòng Hành chính tư pháp"},
            }
        ],
    }
    assert run(db, p, revoked(2)).result == "duplicate"
    assert len(published(db)) == before + 3


def test_a_directive_for_an_unknown_unit_is_kept_and_flagged(db: Database, p: Platform) -> None:
    outcome = run(db, p, assigned(lead_unit={"code": "000.00.99.H29"}))
    assert outcome.result == "applied"
    assert outcome.flag == "units not known to the platform: 000.00.99.H29"
    [flag] = flagged(db.engine)
    assert (flag["directive_id"], flag["lead_unit"], flag["flagged"]) == (
        DIRECTIVE,
        "000.00.99.H29",
        outcome.flag,
    )
    assert "lead:000.00.99.H29" in tasks_of(db, p)  # kept, waiting for the unit
    save_units(db.engine, [Unit("000.00.99.H29", "Sở Khoa học và Công nghệ")], "test", p)
    assert flagged(db.engine) == []


def test_the_connector_applies_and_refuses_other_types(db: Database, p: Platform) -> None:
    target = System(TASKS, "Nền tảng giao việc", "task_platform", None, None, (), (), RetryPolicy())
    connector = TaskPlatformConnector(None)

    async def scenario() -> None:
        ev = assigned()
        body = b""

        with pytest.raises(Transient):
            await connector.deliver(body, ev, target)
        connector.bind(db, p)
        receipt = await connector.deliver(body, ev, target)
        assert (receipt.status_code, receipt.detail) == (200, f"applied {DIRECTIVE} v1")
        again = await connector.deliver(body, ev, target)
        assert again.extra == {"result": "repeat"}
        note = event("assigned", assigned()["data"])
        note["type"] = "vn.lgsp.demo.note.v1"
        with pytest.raises(Rejected):
            await connector.deliver(body, note, target)

    asyncio.run(scenario())
