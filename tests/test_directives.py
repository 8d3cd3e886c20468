"""Directives: the Government Office's system -> the hub -> the task platform, progress back.

The full loop on both backends: the simulator publishes directives, the hub
pulls them, the task platform stores and assigns them, officials report
progress through /api/v1/tasks, and the simulator receives it once and in order,
also across an outage. A City People's Committee directive arrives through the
hub API and its progress goes back to the city's system.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import yaml

from adapters.government_office import GovernmentOffice
from adapters.sink import RecordingSink
from hub.settings import Settings
from tests.support import OPS_KEY, ThreadedHub, wait_until

OFFICE = "000.00.00.G22:nhiemvu"
CITY_PC = "000.00.00.H29:chidao"
PLATFORM = "000.00.00.H29:tasks"
NOTIFY = "000.00.00.H29:thongbao"
CITY = "000.00.00.H29"
ASSIGNED = "vn.lgsp.directive.assigned.v1"
DIRECTIVES = [ASSIGNED, "vn.lgsp.directive.updated.v1", "vn.lgsp.directive.revoked.v1"]
REPORTS = ["vn.lgsp.directive.progress.v1", "vn.lgsp.directive.completed.v1"]
DELAYS = [0.2, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
# The platform's front end speaks for the official (an operator is not an official).
OFFICIAL = {"X-Official": "cb-001", "X-Unit": CITY, "X-Official-Name": quote("Nguyễn Văn An")}


def config(tmp_path: Path, office: str, sink: str) -> Path:
    systems = [
        {
            "id": OFFICE,
            "name": "Hệ thống theo dõi nhiệm vụ - Văn phòng Chính phủ",
            "kind": "government_office",
            "endpoint": office,
            "api_key": "k-office",
            "outbound_key": "city-key",
            "poll_seconds": 0.3,
            "ordered_by": "/directive_id",
            "may_send": DIRECTIVES,
            "may_receive": REPORTS,
            "retry": {"delays": DELAYS},
        },
        {
            "id": CITY_PC,
            "name": "Hệ thống chỉ đạo điều hành - UBND Thành phố",
            "kind": "http",
            "endpoint": f"{sink}/chidao",
            "api_key": "k-city",
            "ordered_by": "/directive_id",
            "may_send": DIRECTIVES,
            "may_receive": REPORTS,
            "retry": {"delays": DELAYS},
        },
        {
            "id": PLATFORM,
            "name": "Nền tảng giao việc",
            "kind": "task_platform",
            "api_key": "k-tasks",
            "remind_seconds": 3600,
            "may_receive": DIRECTIVES,
            "may_send": [*REPORTS, "vn.lgsp.reminder.due.v1"],
            "units": [
                {"code": CITY, "name": "UBND Thành phố Hồ Chí Minh"},
                {"code": "000.00.12.H29", "name": "Sở Tư pháp", "parent": CITY},
            ],
        },
        {
            "id": NOTIFY,
            "name": "Thông báo",
            "kind": "http",
            "endpoint": f"{sink}/thongbao",
            "may_receive": ["vn.lgsp.reminder.due.v1"],
        },
    ]
    routes = [
        {"name": f"directives-{t.split('.')[3]}", "match": {"type": t}, "to": [PLATFORM]}
        for t in DIRECTIVES
    ]
    routes += [
        {
            "name": f"reports-{t.split('.')[3]}",
            "match": {"type": t},
            "to": {"from_attribute": "recipient"},
        }
        for t in REPORTS
    ]
    routes.append(
        {"name": "reminders", "match": {"type": "vn.lgsp.reminder.due.v1"}, "to": [NOTIFY]}
    )
    doc = {
        "systems": systems,
        "routes": routes,
        "operators": [{"name": "ops", "api_key": OPS_KEY, "role": "operator"}],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


class Loop:
    def __init__(self, hub: ThreadedHub, office: GovernmentOffice, sink: RecordingSink) -> None:
        self.hub, self.office, self.sink = hub, office, sink

    def tasks(self, **params: str) -> list[dict[str, Any]]:
        with self.hub.client(OPS_KEY) as c:
            r = c.get("/api/v1/tasks", params={"unit": CITY, **params})
            assert r.status_code == 200, r.text
            return list(r.json()["items"])

    def task_of(self, directive_id: str) -> dict[str, Any]:
        found = [t for t in self.tasks() if t.get("directive_id") == directive_id]
        return found[0] if found else {}

    def report(self, task_id: int, percent: int, text: str) -> None:
        with self.hub.client("k-tasks") as c:
            r = c.post(
                f"/api/v1/tasks/{task_id}/progress",
                json={"percent": percent, "text": text},
                headers=OFFICIAL,
            )
            assert r.status_code == 201, r.text

    def complete(self, task_id: int, summary: str) -> None:
        with self.hub.client("k-tasks") as c:
            r = c.post(
                f"/api/v1/tasks/{task_id}/complete", json={"summary": summary}, headers=OFFICIAL
            )
            assert r.status_code == 200, r.text


@pytest.fixture
def loop(tmp_path: Path, backend: dict[str, str]) -> Iterator[Loop]:
    office = GovernmentOffice(keys=("city-key",)).start()
    sink = RecordingSink().start()
    settings = Settings(
        config=config(tmp_path, office.url, sink.url),
        blob_dir=tmp_path / "blobs",
        retry_poll_seconds=0.1,
        **backend,
    )
    try:
        with ThreadedHub(settings) as hub:
            yield Loop(hub, office, sink)
    finally:
        sink.stop()
        office.stop()


def test_directive_loop_with_an_outage(loop: Loop) -> None:
    first = loop.office.create(TenNhiemVu="Giải ngân vốn đầu tư công")["MaNhiemVu"]
    second = loop.office.create(TenNhiemVu="Chuyển đổi số cấp xã")["MaNhiemVu"]
    task = wait_until(lambda: loop.task_of(first))
    assert wait_until(lambda: loop.task_of(second))
    assert task["status"] == "in_progress_on_time"

    loop.report(task["id"], 30, "Đã rà soát các dự án")
    wait_until(lambda: len(loop.office.received(first)) == 1)

    # The Government Office's system is down while progress is reported.
    loop.office.down()
    loop.report(task["id"], 60, "Đã giải ngân 60%")
    loop.report(task["id"], 90, "Đã giải ngân 90%")
    loop.complete(task["id"], "Hoàn thành giải ngân")
    time.sleep(2)  # deliveries are being refused meanwhile
    assert len(loop.office.received(first)) == 1
    loop.office.up()

    got = wait_until(
        lambda: len(loop.office.received(first)) == 4 and loop.office.received(first), 60
    )
    assert [r["kind"] for r in got] == ["progress", "progress", "progress", "completion"]
    assert [r["body"].get("TyLeHoanThanh") for r in got[:3]] == [30, 60, 90]
    # The office reads who reported by name, never by person id.
    assert {r["body"]["NguoiBaoCao"]["HoTen"] for r in got} == {"Nguyễn Văn An"}
    assert all(r["repeats"] == 0 for r in got)
    done = wait_until(
        lambda: (
            loop.task_of(first).get("status", "").startswith("completed") and loop.task_of(first)
        )
    )
    assert done["status"] == "completed_on_time"


def test_city_directive_through_the_api_and_its_progress_back(loop: Loop) -> None:
    directive = {
        "directive_id": "UBND-2026-0042",
        "version": 1,
        "title": "Triển khai Đề án 06 tại các phường",
        "content": "Các sở, ngành và UBND các phường triển khai Đề án 06.",
        "source_document": {
            "number": "42/CT-UBND",
            "date": "2026-11-20",
            "issuer": {"code": CITY, "name": "UBND Thành phố Hồ Chí Minh"},
        },
        "authority": "city_chairman",
        "lead_unit": {"code": CITY, "name": "UBND Thành phố Hồ Chí Minh"},
        "deadline": {"kind": "date", "date": "2027-01-31"},
        "priority": "urgent",
    }
    event = {
        "specversion": "1.0",
        "id": "ubnd-2026-0042-v1",
        "source": CITY_PC,
        "type": ASSIGNED,
        "data": directive,
    }
    with loop.hub.client("k-city") as c:
        assert c.post("/api/v1/messages", json=event).status_code == 202
        assert c.post("/api/v1/messages", json=event).status_code == 202  # a repeat: once
    task = wait_until(lambda: loop.task_of("UBND-2026-0042"))
    loop.report(task["id"], 50, "Đã triển khai tại 50% số phường")
    wait_until(lambda: loop.sink.wait_for(1))
    [got] = [r for r in loop.sink.received if r.path.endswith("/chidao")]
    report = orjson.loads(got.body)
    assert report["type"] == "vn.lgsp.directive.progress.v1"
    assert report["data"]["directive_id"] == "UBND-2026-0042" and report["data"]["percent"] == 50
    assert len([t for t in loop.tasks() if t.get("directive_id") == "UBND-2026-0042"]) == 1
