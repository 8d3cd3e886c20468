"""Reminders with a controlled clock: once per rule, task and day, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from hub.store.db import Database
from hub.tasks import Actor, Assignee, Platform, add_personal_reminder, instant, remind
from hub.tasks.queries import TaskFilter, list_tasks
from hub.tasks.status import next_due, status_of
from tests.tasks.helpers import JUSTICE, TASKS, Clock, assigned, check, published, run

pytestmark = pytest.mark.usefixtures("units")
LEAD = Actor("nguyen.van.a", JUSTICE, "Nguyễn Văn A")


def rules(db: Database, since: int) -> Counter[str]:
    events = published(db)[since:]
    for e in events:
        check(e)
        assert e["source"] == TASKS and e["type"] == "vn.lgsp.reminder.due.v1"
    return Counter(e["data"]["rule"] for e in events)


def test_due_in_three_days_today_overdue_daily_and_personal(
    db: Database, p: Platform, clock: Clock
) -> None:
    run(db, p, assigned())  # lead and coordinating tasks due 2026-11-30
    for day, title in ((5, "Sắp đến hạn"), (2, "Đến hạn hôm nay"), (1, "Quá hạn")):
        instant(db.engine, p, LEAD, Assignee(), title=title, deadline=date(2026, 11, day))
    lead = next(
        t["id"]
        for t in list_tasks(db.engine, TaskFilter(unit=JUSTICE), p.today())
        if t["role"] == "lead"
    )
    add_personal_reminder(db.engine, p, LEAD, lead, date(2026, 11, 2), "Gọi Sở Nội vụ")

    assert remind(db.engine, p) == 4  # 2026-11-02
    assert rules(db, 0) == {"due_in_days": 1, "due_today": 1, "overdue": 1, "personal": 1}
    by_rule = {e["data"]["rule"]: e["data"] for e in published(db)}
    assert by_rule["due_in_days"]["days_left"] == 3
    assert by_rule["due_today"]["days_left"] == 0
    assert by_rule["overdue"]["days_left"] == -1
    assert by_rule["personal"]["to"] == [
        {
            "id": "nguyen.van.a",
            "name": "Nguyễn Văn A",
            "unit": {"code": JUSTICE, "name": "Sở Tư pháp"},
        }
    ]
    assert by_rule["personal"]["note"] == "Gọi Sở Nội vụ"
    assert remind(db.engine, p) == 0  # rerun the same day: nothing new
    clock.advance(hours=12)  # 2026-11-02 21:00 in Vietnam, still the same day
    assert remind(db.engine, p) == 0

    clock.set("2026-11-03T08:00:00+07:00")
    sent = len(published(db))
    assert remind(db.engine, p) == 2  # overdue daily: the 1st and the 2nd
    assert rules(db, sent) == {"overdue": 2}
    assert remind(db.engine, p) == 0

    clock.set("2026-11-27T08:00:00+07:00")
    sent = len(published(db))
    assert remind(db.engine, p) == 5
    assert rules(db, sent) == {"due_in_days": 2, "overdue": 3}
    ids = [e["data"]["reminder_id"] for e in published(db)]
    assert len(ids) == len(set(ids))


def test_a_completed_or_revoked_task_is_not_reminded(
    db: Database, p: Platform, clock: Clock
) -> None:
    from hub.tasks import complete

    task = instant(db.engine, p, LEAD, Assignee(), title="Việc nhanh", deadline=date(2026, 11, 1))
    complete(db.engine, p, LEAD, task, "Xong")
    assert remind(db.engine, p) == 0


def test_recurring_deadlines_and_the_status_rules() -> None:
    monthly = {"kind": "recurring", "every": "month", "day": 5}
    assert next_due(monthly, date(2026, 11, 2)) == date(2026, 11, 5)
    assert next_due(monthly, date(2026, 11, 6)) == date(2026, 12, 5)
    assert next_due({**monthly, "day": 31}, date(2026, 11, 2)) == date(2026, 11, 30)
    assert next_due({**monthly, "until": "2026-11-30"}, date(2026, 11, 6)) is None
    weekly = {"kind": "recurring", "every": "week", "day": 1}
    assert next_due(weekly, date(2026, 11, 4)) == date(2026, 11, 9)  # the next Monday
    quarterly = {"kind": "recurring", "every": "quarter", "day": 1}
    assert next_due(quarterly, date(2026, 11, 4)) == date(2027, 1, 1)
    assert next_due({"kind": "none"}, date(2026, 11, 4)) is None
    d = date(2026, 11, 30)
    assert status_of(d, None, False, date(2026, 11, 30)) == "in_progress_on_time"
    assert status_of(d, None, False, date(2026, 12, 1)) == "in_progress_overdue"
    assert status_of(d, date(2026, 11, 30), False, date(2027, 1, 1)) == "completed_on_time"
    assert status_of(d, date(2026, 12, 1), False, date(2027, 1, 1)) == "completed_late"
    assert status_of(d, date(2026, 12, 1), True, date(2027, 1, 1)) == "revoked"
    assert status_of(None, None, False, date(2099, 1, 1)) == "in_progress_on_time"
