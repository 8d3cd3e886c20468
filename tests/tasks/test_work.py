"""Progress, completion, onward assignment and the dashboard, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from hub.errors import Conflict, Invalid, NotFound
from hub.store.db import Database
from hub.tasks import (
    Actor,
    Assignee,
    Platform,
    TaskFilter,
    add_personal_reminder,
    assign,
    complete,
    dashboard,
    instant,
    list_tasks,
    reassign,
    report_progress,
    task_detail,
)
from tests.tasks.helpers import (
    CITY,
    DIRECTIVE,
    GOV,
    HOME,
    JUSTICE,
    OFFICE,
    TASKS,
    TRANSPORT,
    Clock,
    assigned,
    check,
    event,
    published,
    run,
)

pytestmark = pytest.mark.usefixtures("units")
LEAD = Actor("nguyen.van.a", JUSTICE, "Nguyễn Văn A")
HOME_OFFICIAL = Actor("le.van.c", HOME, "Lê Văn C")


def task_id(db: Database, p: Platform, role: str, unit: str) -> int:
    items = list_tasks(db.engine, TaskFilter(unit=unit), p.today())
    return int(next(t["id"] for t in items if t["role"] == role))


def test_progress_then_completion_leave_in_order_as_valid_events(
    db: Database, p: Platform, clock: Clock
) -> None:
    first = assigned()
    run(db, p, first)
    lead = task_id(db, p, "lead", JUSTICE)
    reports = []
    for percent in (10, 50, 80):
        clock.advance(days=1)
        reports.append(report_progress(db.engine, p, LEAD, lead, percent, f"Hoàn thành {percent}%"))
    coordinating = task_id(db, p, "coordinating", HOME)
    assert (
        report_progress(db.engine, p, HOME_OFFICIAL, coordinating, 50, "Phối hợp")["event_id"]
        is None
    )  # only the lead unit reports back
    attachment = {"name": "Báo cáo.pdf", "url": "https://files.example/bc.pdf", "size": 10}
    done = complete(db.engine, p, LEAD, lead, "Đã hoàn thành nhiệm vụ.", [attachment])
    events = published(db)
    assert [e["id"] for e in events] == [r["event_id"] for r in reports] + [done["event_id"]]
    for e in events:
        check(e)
        assert e["source"] == TASKS
        assert (e["recipient"], e["subject"], e["correlationid"]) == (GOV, DIRECTIVE, first["id"])
    assert [e["data"]["percent"] for e in events[:3]] == [10, 50, 80]
    assert [e["data"]["report_id"] for e in events[:3]] == [r["report_id"] for r in reports]
    assert events[0]["data"]["reporter"] == {
        "id": "nguyen.van.a",
        "name": "Nguyễn Văn A",
        "unit": {"code": JUSTICE, "name": "Sở Tư pháp"},
    }
    last = events[3]
    assert last["type"] == "vn.lgsp.directive.completed.v1"
    assert last["data"]["on_time"] is True and last["data"]["attachments"] == [attachment]
    statuses = {t["role"]: t["status"] for t in list_tasks(db.engine, TaskFilter(), p.today())}
    assert statuses == {"lead": "completed_on_time", "coordinating": "completed_on_time"}
    with pytest.raises(Conflict):
        report_progress(db.engine, p, LEAD, lead, 100, "Thêm")


def test_onward_assignment_to_sub_units_people_and_work_groups(db: Database, p: Platform) -> None:
    run(db, p, assigned())
    lead = task_id(db, p, "lead", JUSTICE)
    group = Assignee(
        OFFICE,
        "tran.thi.b",
        "Trần Thị B",
        "Tổ công tác chuyển đổi số",
        (("pham.van.d", "Phạm Văn D"), ("tran.thi.b", "Trần Thị B")),
    )
    onward = assign(db.engine, p, LEAD, lead, group, deadline=date(2026, 11, 20))
    mine = list_tasks(db.engine, TaskFilter(person="pham.van.d"), p.today())
    assert [(t["id"], t["work_group"], t["deadline"]) for t in mine] == [
        (onward, "Tổ công tác chuyển đổi số", "2026-11-20")
    ]
    member = Actor("pham.van.d", OFFICE)
    report_progress(db.engine, p, member, onward, 20, "Tổ đã họp")
    assert published(db) == []  # onward tasks report inside the platform only
    with pytest.raises(Invalid):
        assign(db.engine, p, LEAD, lead, Assignee(HOME))  # not a sub-unit
    with pytest.raises(Invalid):
        assign(db.engine, p, LEAD, lead, Assignee(OFFICE), deadline=date(2026, 12, 31))
    with pytest.raises(NotFound):  # Home Affairs does not see Justice's lead task
        assign(db.engine, p, HOME_OFFICIAL, lead, Assignee(OFFICE))
    reassign(db.engine, p, LEAD, onward, Assignee(JUSTICE, "hoang.van.e", "Hoàng Văn E"))
    detail = task_detail(db.engine, onward, p.today())
    assert detail is not None
    assert (detail["unit"], detail["person"]) == (JUSTICE, "hoang.van.e")
    assert [h["action"] for h in detail["history"]] == ["assigned", "progress", "reassigned"]
    with pytest.raises(NotFound):
        reassign(db.engine, p, HOME_OFFICIAL, onward, Assignee(HOME))
    with pytest.raises(Conflict):
        reassign(db.engine, p, LEAD, lead, Assignee(OFFICE))  # comes with its directive
    parent = task_detail(db.engine, lead, p.today())
    assert parent is not None and [t["id"] for t in parent["onward"]] == [onward]
    with pytest.raises(Invalid):
        add_personal_reminder(db.engine, p, LEAD, lead, date(2026, 11, 1))


def test_dashboard_counts_against_a_hand_built_data_set(
    db: Database, p: Platform, clock: Clock
) -> None:
    run(db, p, assigned())  # GOV: JUSTICE leads, HOME coordinates, due 2026-11-30
    city = assigned(
        directive_id="UBND-45",
        lead_unit={"code": TRANSPORT},
        coordinating_units=[],
        deadline={"kind": "date", "date": "2026-11-05"},
    )
    run(db, p, event("assigned", city["data"], source=CITY))
    home_quick = instant(
        db.engine, p, HOME_OFFICIAL, Assignee(), title="Rà soát hồ sơ", deadline=date(2026, 11, 3)
    )
    justice_quick = instant(
        db.engine, p, LEAD, Assignee(), title="Báo cáo nhanh", deadline=date(2026, 11, 10)
    )
    clock.set("2026-11-04T10:00:00+07:00")
    transport = Actor("vo.van.f", TRANSPORT, "Võ Văn F")
    complete(db.engine, p, transport, task_id(db, p, "lead", TRANSPORT), "Xong")
    clock.set("2026-11-12T10:00:00+07:00")
    complete(db.engine, p, LEAD, justice_quick, "Xong muộn")
    clock.set("2026-11-20T10:00:00+07:00")
    complete(db.engine, p, HOME_OFFICIAL, task_id(db, p, "coordinating", HOME), "Đã phối hợp")
    clock.set("2026-12-02T10:00:00+07:00")

    board = dashboard(db.engine, p.today(), date(2026, 11, 1), date(2026, 11, 30))
    nonzero = {
        k: {u: {s: n for s, n in c.items() if n} for u, c in v.items()}
        for k, v in board.items()
        if k in ("by_unit", "by_source")
    }
    assert nonzero == {
        "by_unit": {
            JUSTICE: {"in_progress_overdue": 1, "completed_late": 1},
            HOME: {"in_progress_overdue": 1, "completed_on_time": 1},
            TRANSPORT: {"completed_on_time": 1},
        },
        "by_source": {GOV: {"in_progress_overdue": 1}, CITY: {"completed_on_time": 1}},
    }
    assert [(t["id"], t["days_overdue"]) for t in board["overdue"]] == [
        (home_quick, 29),
        (task_id(db, p, "lead", JUSTICE), 2),
    ]
    assert board["on_time_rate"]["units"] == {
        JUSTICE: {"completed": 1, "on_time": 0, "rate": 0.0},
        HOME: {"completed": 1, "on_time": 1, "rate": 1.0},
        TRANSPORT: {"completed": 1, "on_time": 1, "rate": 1.0},
    }
    overdue = list_tasks(db.engine, TaskFilter(status="in_progress_overdue"), p.today())
    assert {t["id"] for t in overdue} == {home_quick, task_id(db, p, "lead", JUSTICE)}
    window = TaskFilter(deadline_from=date(2026, 11, 4), deadline_to=date(2026, 11, 10))
    assert {t["id"] for t in list_tasks(db.engine, window, p.today())} == {
        justice_quick,
        task_id(db, p, "lead", TRANSPORT),
    }
    by_source = list_tasks(db.engine, TaskFilter(source="instant"), p.today())
    assert {t["id"] for t in by_source} == {home_quick, justice_quick}
