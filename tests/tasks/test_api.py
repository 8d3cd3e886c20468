"""The task platform's API through a FastAPI TestClient, on SQLite and PostgreSQL.

The app (tests/tasks/conftest.py `client`) mounts only the tasks router, on a stub hub
with `db` and `config`.
"""

from __future__ import annotations

import unicodedata

import pytest
from fastapi.testclient import TestClient

from hub.store.db import Database
from hub.tasks import Platform
from tests.tasks.helpers import (
    HOME,
    JUSTICE,
    OFFICE,
    as_,
    assigned,
    check,
    lead_task,
    published,
    run,
)

pytestmark = pytest.mark.usefixtures("units")


def test_officials_report_and_complete_through_the_api(
    client: TestClient, db: Database, p: Platform
) -> None:
    run(db, p, assigned())
    assert client.get("/api/v1/tasks").status_code == 401
    justice = as_("key-justice", "nguyen.van.a", JUSTICE, "Nguyễn Văn A")
    task = lead_task(client)
    nfd = unicodedata.normalize("NFD", "Đã hoàn thành kế hoạch")
    r = client.post(
        f"/api/v1/tasks/{task}/progress", json={"percent": 60, "text": nfd}, headers=justice
    )
    assert r.status_code == 201, r.text
    [progress] = published(db)
    check(progress)
    assert progress["data"]["text"] == "Đã hoàn thành kế hoạch"  # stored and sent in NFC
    assert progress["data"]["reporter"]["name"] == "Nguyễn Văn A"
    r = client.post(
        f"/api/v1/tasks/{task}/progress", json={"percent": 101, "text": "x"}, headers=justice
    )
    assert r.status_code == 422
    other = as_("key-home", "le.van.c", HOME)
    r = client.post(
        f"/api/v1/tasks/{task}/progress", json={"percent": 70, "text": "x"}, headers=other
    )
    # Home Affairs may not see Justice's lead task: 404, as for a task that does not exist.
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = client.post(f"/api/v1/tasks/{task}/complete", json={"summary": "Xong"}, headers=justice)
    assert r.status_code == 200 and r.json()["event_id"]
    detail = client.get(f"/api/v1/tasks/{task}", headers=justice).json()
    assert detail["status"] == "completed_on_time"
    assert [h["action"] for h in detail["history"]] == ["assigned", "progress", "completed"]
    assert [x["kind"] for x in detail["reports"]] == ["progress", "completion"]
    assert detail["directive"]["status"] == "completed_on_time"
    r = client.post(f"/api/v1/tasks/{task}/complete", json={"summary": "Lại"}, headers=justice)
    assert r.status_code == 409


def test_assign_reassign_instant_mine_and_personal_reminders(
    client: TestClient, db: Database, p: Platform
) -> None:
    run(db, p, assigned())
    justice = as_("key-justice", "nguyen.van.a", JUSTICE)
    task = lead_task(client)
    body = {
        "unit": OFFICE,
        "person": "tran.thi.b",
        "person_name": "Trần Thị B",
        "work_group": "Tổ công tác",
        "members": [{"person": "pham.van.d", "name": "Phạm Văn D"}],
        "deadline": "2026-11-20",
    }
    r = client.post(f"/api/v1/tasks/{task}/assign", json=body, headers=justice)
    assert r.status_code == 201, r.text
    onward = r.json()["id"]
    platform_front = as_("key-tasks", "pham.van.d", OFFICE)
    mine = client.get("/api/v1/tasks/mine", headers=platform_front).json()["items"]
    assert [(t["id"], t["work_group"]) for t in mine] == [(onward, "Tổ công tác")]
    r = client.post(
        f"/api/v1/tasks/{onward}/reassign",
        json={"unit": JUSTICE, "person": "hoang.van.e"},
        headers=justice,
    )
    assert r.status_code == 200
    r = client.post(
        "/api/v1/tasks/instant",
        json={"title": "Rà soát văn bản", "person": "hoang.van.e", "deadline": "2026-11-04"},
        headers=justice,
    )
    assert r.status_code == 201
    quick = r.json()["id"]
    mine = client.get("/api/v1/tasks/mine", headers=as_("key-tasks", "hoang.van.e", JUSTICE)).json()
    assert {t["id"] for t in mine["items"]} == {onward, quick}
    r = client.post(
        f"/api/v1/tasks/{quick}/reminders", json={"remind_on": "2026-11-03"}, headers=justice
    )
    assert r.status_code == 201
    r = client.post(
        f"/api/v1/tasks/{quick}/reminders",
        json={"remind_on": "2026-11-03"},
        headers=as_("key-home", "x", HOME),
    )
    assert r.status_code == 404  # not visible to that official
    r = client.get("/api/v1/tasks?status=late", headers=justice)
    assert r.status_code == 422
    r = client.get(f"/api/v1/tasks?unit={HOME}", headers=justice)
    assert r.status_code == 403  # a department's system speaks for its own unit only


def test_dashboard_flags_and_units_are_for_operators_and_the_platform(
    client: TestClient, db: Database, p: Platform
) -> None:
    run(db, p, assigned(lead_unit={"code": "000.00.99.H29"}))
    viewer, ops = as_("key-viewer"), as_("key-ops")
    assert client.get("/api/v1/tasks/dashboard", headers=as_("key-justice")).status_code == 403
    board = client.get("/api/v1/tasks/dashboard?from=2026-11-01&to=2026-11-30", headers=viewer)
    assert board.status_code == 200
    assert board.json()["by_unit"]["000.00.99.H29"]["in_progress_on_time"] == 1
    assert client.get("/api/v1/tasks/dashboard", headers=as_("key-tasks")).status_code == 200
    flags = client.get("/api/v1/tasks/flagged", headers=viewer).json()
    assert [d["lead_unit"] for d in flags["directives"]] == ["000.00.99.H29"]
    assert (
        client.put("/api/v1/tasks/units/000.00.99.H29", json={}, headers=viewer).status_code == 403
    )
    r = client.put(
        "/api/v1/tasks/units/000.00.99.H29", json={"name": "Sở Khoa học và Công nghệ"}, headers=ops
    )
    assert r.status_code == 200
    assert client.get("/api/v1/tasks/flagged", headers=viewer).json()["directives"] == []
    codes = [u["code"] for u in client.get("/api/v1/tasks/units", headers=viewer).json()["items"]]
    assert "000.00.99.H29" in codes
    all_tasks = client.get("/api/v1/tasks", headers=viewer).json()["items"]
    assert {t["unit"] for t in all_tasks} == {"000.00.99.H29", HOME}
    assert client.get("/api/v1/tasks/999999", headers=viewer).status_code == 404
