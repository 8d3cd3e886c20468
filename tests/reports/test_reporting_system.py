"""The reporting-system connector against the simulator on a real socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.reporting_system import ReportingSystem
from hub.config import RetryPolicy, System
from hub.connectors.reporting_system import ReportingSystemConnector
from hub.errors import Rejected, Transient
from hub.reports import SUBMITTED, submit
from hub.store.db import Database
from tests.reports.helpers import JUSTICE, NOW, check, october, published, reporting, run

REPORT_ID = f"dossier_processing:2026-10:{JUSTICE}"


@pytest.fixture
def system() -> Iterator[ReportingSystem]:
    with ReportingSystem(["city-key"]) as sim:
        yield sim


def target(endpoint: str, **options: Any) -> System:
    options = {"outbound_key": "city-key", **options}
    return System(
        "000.00.00.G12:baocao", "Hệ thống báo cáo", "reporting_system", endpoint, None,
        (), (SUBMITTED,), RetryPolicy(), timeout=5.0, options=options,
    )  # fmt: skip


def report_event(version: int = 1, **changes: Any) -> dict[str, Any]:
    data = {
        "report_id": REPORT_ID,
        "version": version,
        "indicator_set": "dossier_processing",
        "period": {"kind": "month", "start": "2026-10-01", "end": "2026-10-31", "label": "2026-10"},
        "agency": {"code": JUSTICE, "name": "Sở Tư pháp"},
        "indicators": {"received": 6, "completed_on_time": 2, "completed_late": 2,
                       "in_progress_overdue": 2, "on_time_rate": 0.5},
        "computed_at": "2026-11-03T09:00:00+07:00",
    } | changes  # fmt: skip
    if version > 1:
        data["corrects"] = version - 1
    ev = {
        "specversion": "1.0",
        "id": f"report-v{version}",
        "source": "000.00.00.H29:baocao",
        "type": SUBMITTED,
        "datacontenttype": "application/json",
        "data": data,
    }
    check(ev)
    return ev


def deliver(connector: ReportingSystemConnector, ev: dict[str, Any], to: System) -> Any:
    async def go() -> Any:
        try:
            return await connector.deliver(b"", ev, to)
        finally:
            await connector.close()

    return asyncio.run(go())


def test_delivered_then_a_repeat_is_already_received(system: ReportingSystem) -> None:
    to = target(system.url)
    first = deliver(ReportingSystemConnector(), report_event(), to)
    assert (first.status_code, first.extra["repeat"]) == (201, False)
    again = deliver(ReportingSystemConnector(), report_event(), to)
    assert (again.status_code, again.extra["repeat"]) == (200, True)
    assert again.detail == f"already received {first.extra['receipt_id']}"
    [stored] = system.received()
    assert (stored["repeats"], stored["message_id"]) == (1, "report-v1")
    assert stored["report"] == report_event()["data"]
    assert system.stats()["repeats"] == 1


def test_a_correction_is_stored_and_an_older_version_is_rejected(system: ReportingSystem) -> None:
    to = target(system.url)
    deliver(ReportingSystemConnector(), report_event(2), to)
    assert system.latest(REPORT_ID)["version"] == 2  # type: ignore[index]
    with pytest.raises(Rejected, match="409 SUPERSEDED"):
        deliver(ReportingSystemConnector(), report_event(1), to)


def test_5xx_is_transient_and_4xx_rejected(system: ReportingSystem) -> None:
    to = target(system.url)
    system.fail(503, retry_after=7)
    with pytest.raises(Transient) as caught:
        deliver(ReportingSystemConnector(), report_event(), to)
    assert caught.value.retry_after == 7
    system.fail(429)
    with pytest.raises(Transient):
        deliver(ReportingSystemConnector(), report_event(), to)
    system.fail(400)
    with pytest.raises(Rejected, match="HTTP 400"):
        deliver(ReportingSystemConnector(), report_event(), to)
    with pytest.raises(Rejected, match="401 UNAUTHORIZED"):
        deliver(ReportingSystemConnector(), report_event(), target(system.url, outbound_key="x"))
    malformed = report_event()
    malformed["data"] = {**malformed["data"], "indicators": []}
    with pytest.raises(Rejected, match="400 MALFORMED"):
        deliver(ReportingSystemConnector(), malformed, to)
    assert system.received() == []
    assert deliver(ReportingSystemConnector(), report_event(), to).status_code == 201


def test_unreachable_is_transient_and_other_types_rejected() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Transient):
        deliver(ReportingSystemConnector(), report_event(), target(f"http://127.0.0.1:{port}"))
    other = {**report_event(), "type": "vn.lgsp.demo.note.v1"}
    with pytest.raises(Rejected):
        ReportingSystemConnector().encode(b"", other, target("http://127.0.0.1:1"))


def test_what_submit_queues_reaches_the_system(db: Database, system: ReportingSystem) -> None:
    for ev in october():
        run(db, ev)
    submit(db.engine, reporting(), "2026-10", now=NOW)
    to = target(system.url)
    for ev in published(db) * 2:  # at least once: every report delivered twice
        deliver(ReportingSystemConnector(), ev, to)
    assert [r["report"]["report_id"][-13:] for r in system.received()] == [
        JUSTICE,
        "000.00.13.H29",
    ]
    assert system.stats()["repeats"] == 2
    listing = httpx.get(f"{system.url}/_reports/received").json()
    assert listing["stored"] == 2
