"""Who may act for an official on the task API, in which order the answers come, and
what is kept of it: operators never act as officials, a task an official may not see
answers as one that does not exist, every action is audited with the system whose key
spoke, and the office reads the official's name, never a person id.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from hub.store.db import Database
from hub.store.models import audit
from hub.tasks import Platform
from hub.tasks.tables import personal_reminders, progress_reports, task_history, tasks
from tests.tasks.helpers import (
    HOME,
    JUSTICE,
    OFFICE,
    TASKS,
    as_,
    assigned,
    lead_task,
    published,
    run,
)

pytestmark = pytest.mark.usefixtures("units")
MISSING = 987654  # no task has this id


def counts(db: Database) -> dict[str, int]:
    tables = (tasks, task_history, progress_reports, personal_reminders, audit)
    with db.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in tables
        }


def audited(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit).where(audit.c.action.like("task.%")).order_by(audit.c.seq)
        )
        return [{**r._mapping, "detail": orjson.loads(r.detail)} for r in rows]


def test_an_operator_is_not_an_official(client: TestClient, db: Database, p: Platform) -> None:
    """An operator key with X-Official is refused on every action (it reads, never acts)."""
    run(db, p, assigned())
    task = lead_task(client)
    ops = as_("key-ops", "ghost", HOME, "Ma")
    before = counts(db)
    tomorrow = (p.today() + timedelta(days=1)).isoformat()
    answers = [
        client.post(
            f"/api/v1/tasks/{task}/progress", json={"percent": 10, "text": "x"}, headers=ops
        ),
        client.post(f"/api/v1/tasks/{task}/complete", json={"summary": "x"}, headers=ops),
        client.post(f"/api/v1/tasks/{task}/assign", json={"person": "x"}, headers=ops),
        client.post(f"/api/v1/tasks/{task}/reassign", json={"person": "x"}, headers=ops),
        client.post(f"/api/v1/tasks/{task}/reminders", json={"remind_on": tomorrow}, headers=ops),
        client.post("/api/v1/tasks/instant", json={"title": "x", "person": "y"}, headers=ops),
    ]
    for r in answers:
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "not an official" in r.json()["detail"]
    assert counts(db) == before and published(db) == []
    # Operators still read every task.
    assert client.get(f"/api/v1/tasks/{task}", headers=as_("key-viewer")).status_code == 200


def test_a_task_the_official_may_not_see_answers_as_one_that_does_not_exist(
    client: TestClient, db: Database, p: Platform
) -> None:
    """Order: 401, 403 for X-Unit, 422 for a body of the wrong shape (the same for any
    task), 404 for a task not visible, then the task's own rules. Home Affairs learns
    nothing of Justice's lead task, whatever it sends, even a body the task would refuse."""
    run(db, p, assigned())
    hidden = lead_task(client)
    home = as_("key-home", "le.van.c", HOME, "Lê Văn C")
    yesterday = (p.today() - timedelta(days=1)).isoformat()
    late = (p.today() + timedelta(days=400)).isoformat()  # after the directive's deadline
    actions: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = [
        ("get", "", None, {}),
        ("post", "/progress", {"percent": 10, "text": "x"}, {"percent": "mười"}),
        ("post", "/complete", {"summary": "x"}, {"summary": ""}),
        ("post", "/assign", {"unit": OFFICE, "deadline": late}, {"deadline": "mai"}),
        ("post", "/reassign", {"person": "x"}, {"members": "x"}),
        ("post", "/reminders", {"remind_on": yesterday}, {}),
    ]
    before = counts(db)
    for method, path, body, wrong in actions:
        seen = []
        for task in (hidden, MISSING):
            url = f"/api/v1/tasks/{task}{path}"
            r = client.request(method, url, json=body, headers=home)
            detail = r.json()["detail"].replace(f"task {task}", "task N")
            seen.append((r.status_code, r.json()["title"], detail))
        assert seen[0] == seen[1], (path, seen)
        assert seen[0][0] == 404, (path, seen)
        if body is not None:  # a body of the wrong shape: 422, the same for both
            shapes = [
                client.post(f"/api/v1/tasks/{t}{path}", json=wrong, headers=home)
                for t in (hidden, MISSING)
            ]
            assert [s.status_code for s in shapes] == [422, 422], path
            assert shapes[0].json()["errors"] == shapes[1].json()["errors"]
    assert counts(db) == before
    # Seen but not theirs: Justice's sub-unit official sees the lead task through its
    # organisation's system only as Justice; an official of Justice may act.
    justice = as_("key-justice", "nguyen.van.a", JUSTICE, "Nguyễn Văn A")
    r = client.post(
        f"/api/v1/tasks/{hidden}/reminders", json={"remind_on": yesterday}, headers=justice
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/remind_on"


def test_every_action_taken_for_an_official_is_audited_with_the_system_that_spoke(
    client: TestClient, db: Database, p: Platform
) -> None:
    run(db, p, assigned())
    task = lead_task(client)
    justice = as_("key-justice", "nguyen.van.a", JUSTICE, "Nguyễn Văn A")
    front = as_("key-tasks", "tran.thi.b", OFFICE, "Trần Thị B")
    tomorrow = (p.today() + timedelta(days=1)).isoformat()
    r = client.post(f"/api/v1/tasks/{task}/assign", json={"unit": OFFICE}, headers=justice)
    onward = r.json()["id"]
    client.post(f"/api/v1/tasks/{onward}/reassign", json={"person": "tran.thi.b"}, headers=justice)
    client.post(f"/api/v1/tasks/{onward}/progress", json={"percent": 5, "text": "x"}, headers=front)
    client.post(f"/api/v1/tasks/{task}/reminders", json={"remind_on": tomorrow}, headers=justice)
    quick = client.post("/api/v1/tasks/instant", json={"title": "Rà soát"}, headers=justice)
    client.post(f"/api/v1/tasks/{task}/complete", json={"summary": "Xong"}, headers=justice)
    got = [(e["actor"], e["action"], e["target"], e["detail"]["official"]) for e in audited(db)]
    assert got == [
        (f"{JUSTICE}:qlvb", "task.assign", f"task:{task}", "nguyen.van.a"),
        (f"{JUSTICE}:qlvb", "task.reassign", f"task:{onward}", "nguyen.van.a"),
        (TASKS, "task.progress", f"task:{onward}", "tran.thi.b"),
        (f"{JUSTICE}:qlvb", "task.remind", f"task:{task}", "nguyen.van.a"),
        (f"{JUSTICE}:qlvb", "task.instant", f"task:{quick.json()['id']}", "nguyen.van.a"),
        (f"{JUSTICE}:qlvb", "task.complete", f"task:{task}", "nguyen.van.a"),
    ]
    assert audited(db)[2]["detail"]["unit"] == OFFICE
    assert audited(db)[0]["detail"]["name"] == "Nguyễn Văn A"


def test_the_office_reads_the_officials_name_never_an_id(
    client: TestClient, db: Database, p: Platform
) -> None:
    run(db, p, assigned())
    task = lead_task(client)
    nameless = as_("key-justice", "cb-001", JUSTICE)
    before = counts(db)
    r = client.post(
        f"/api/v1/tasks/{task}/progress", json={"percent": 10, "text": "x"}, headers=nameless
    )
    assert r.status_code == 422 and "X-Official-Name" in r.json()["detail"]
    assert counts(db) == before and published(db) == []
    named = as_("key-justice", "cb-001", JUSTICE, "Nguyễn Văn An")
    r = client.post(
        f"/api/v1/tasks/{task}/progress", json={"percent": 10, "text": "x"}, headers=named
    )
    assert r.status_code == 201, r.text
    [report] = published(db)
    assert report["data"]["reporter"]["name"] == "Nguyễn Văn An"
    assert report["data"]["reporter"]["id"] == "cb-001"
    # Inside the platform (an onward task) the name is the one the task knows.
    onward = client.post(
        f"/api/v1/tasks/{task}/assign",
        json={"unit": OFFICE, "person": "tran.thi.b", "person_name": "Trần Thị B"},
        headers=named,
    ).json()["id"]
    r = client.post(
        f"/api/v1/tasks/{onward}/progress",
        json={"percent": 5, "text": "x"},
        headers=as_("key-tasks", "tran.thi.b", OFFICE),
    )
    assert r.status_code == 201, r.text


def test_mine_lists_only_tasks_within_the_callers_organisation(
    client: TestClient, db: Database, p: Platform
) -> None:
    """Home Affairs' system, naming a person of a Justice task, lists nothing of it."""
    run(db, p, assigned())
    task = lead_task(client)
    justice = as_("key-justice", "nguyen.van.a", JUSTICE, "Nguyễn Văn A")
    onward = client.post(
        f"/api/v1/tasks/{task}/assign", json={"person": "tran.thi.b"}, headers=justice
    ).json()["id"]

    def mine(headers: dict[str, str]) -> list[int]:
        r = client.get("/api/v1/tasks/mine", headers=headers)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert mine(as_("key-home", "tran.thi.b", HOME)) == []
    assert mine(as_("key-justice", "tran.thi.b", JUSTICE)) == [onward]
    assert mine(as_("key-tasks", "tran.thi.b", HOME)) == [onward]  # the platform: any unit


def test_a_parent_organisations_system_acts_for_a_named_person_not_for_a_sub_unit(
    client: TestClient, db: Database, p: Platform
) -> None:
    """Decided: a task assigned to a person is that person's, whichever system of their
    organisation speaks for them (Justice's system for an official of its sub-unit);
    a task assigned to a sub-unit is the sub-unit's work, acted on through the platform's
    key (which speaks for any unit); Justice itself, which assigned it, sees it (403)."""
    run(db, p, assigned())
    task = lead_task(client)
    justice = as_("key-justice", "nguyen.van.a", JUSTICE, "Nguyễn Văn A")
    person = client.post(
        f"/api/v1/tasks/{task}/assign",
        json={"unit": OFFICE, "person": "tran.thi.b"},
        headers=justice,
    ).json()["id"]
    unit = client.post(
        f"/api/v1/tasks/{task}/assign", json={"unit": OFFICE}, headers=justice
    ).json()["id"]
    body = {"percent": 30, "text": "Đang làm"}
    by_parent = as_("key-justice", "tran.thi.b", JUSTICE, "Trần Thị B")
    assert (
        client.post(f"/api/v1/tasks/{person}/progress", json=body, headers=by_parent).status_code
        == 201
    )
    r = client.post(f"/api/v1/tasks/{unit}/progress", json=body, headers=by_parent)
    assert r.status_code == 403 and "to act on" in r.json()["detail"]
    in_unit = as_("key-tasks", "tran.thi.b", OFFICE, "Trần Thị B")
    assert (
        client.post(f"/api/v1/tasks/{unit}/progress", json=body, headers=in_unit).status_code == 201
    )
