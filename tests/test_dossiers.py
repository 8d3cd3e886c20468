"""Dossiers: the one-stop system -> the hub -> the National Public Service Portal.

The one-stop simulator pushes dossier events in its own format through
`POST /api/v1/native`; the hub turns them into canonical events and delivers
them to the portal simulator in batches, in order per dossier, through
temporary item failures, 503s and 429s. Runs on both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.national_portal import NationalPortal
from adapters.one_stop import dossier_streams, push
from adapters.reporting_system import ReportingSystem
from hub.reports.cli import send_reports
from hub.settings import Settings
from tests.support import OPS_KEY, HubProcess, ThreadedHub, wait_until

ONE_STOP = "000.00.12.H29:motcua"
PORTAL = "000.00.00.G22:dvcqg"
KEY = "k-motcua"
REPORTING = "000.00.00.H29:baocao"
REPORT_SYSTEM = "000.00.00.G22:baocao"


def config(tmp_path: Path, portal: str, reports: str = "http://127.0.0.1:9") -> Path:
    doc = {
        "systems": [
            {
                "id": REPORTING,
                "name": "Báo cáo chỉ tiêu - TP. Hồ Chí Minh",
                "kind": "reporting",
                "report_seconds": 3600,
                "may_receive": ["vn.lgsp.dossier.*"],
                "may_send": ["vn.lgsp.report.submitted.v1"],
            },
            {
                "id": REPORT_SYSTEM,
                "name": "Hệ thống thông tin báo cáo Chính phủ",
                "kind": "reporting_system",
                "endpoint": reports,
                "ordered_by": "/report_id",
                "may_receive": ["vn.lgsp.report.submitted.v1"],
                "retry": {"delays": [0.2, 0.5, 1, 1, 1]},
            },
            {
                "id": ONE_STOP,
                "name": "Hệ thống một cửa điện tử",
                "kind": "procedures",
                "api_key": KEY,
                "may_send": ["vn.lgsp.dossier.*"],
            },
            {
                "id": PORTAL,
                "name": "Cổng Dịch vụ công quốc gia",
                "kind": "national_portal",
                "endpoint": portal,
                "may_receive": ["vn.lgsp.dossier.*"],
                "batch": 20,
                "concurrency": 8,
                "ordered_by": "/dossier_code",
                "madonvi": "000.00.00.H29",
                "username": "lgsp-hcm",
                "password": "matkhau-dvcqg",
                "retry": {"delays": [0.2, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]},
            },
        ],
        "routes": [
            {"name": "dossiers-to-portal", "match": {"type": "vn.lgsp.dossier.*"}, "to": [PORTAL]},
            {
                "name": "dossiers-to-reports",
                "match": {"type": "vn.lgsp.dossier.*"},
                "to": [REPORTING],
            },
            {
                "name": "reports-out",
                "match": {"type": "vn.lgsp.report.submitted.v1"},
                "to": [REPORT_SYSTEM],
            },
        ],
        "operators": [{"name": "ops", "api_key": OPS_KEY, "role": "operator"}],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def portal() -> Iterator[NationalPortal]:
    with NationalPortal() as p:
        yield p


@pytest.fixture
def reports() -> Iterator[ReportingSystem]:
    with ReportingSystem() as r:
        yield r


@pytest.fixture
def settings(
    tmp_path: Path, backend: dict[str, str], portal: NationalPortal, reports: ReportingSystem
) -> Settings:
    return Settings(
        config=config(tmp_path, portal.url, reports.url),
        blob_dir=tmp_path / "blobs",
        retry_poll_seconds=0.1,
        **backend,
    )


@pytest.fixture
def hub(settings: Settings) -> Iterator[ThreadedHub]:
    with ThreadedHub(settings) as h:
        yield h


def settled(hub: ThreadedHub) -> bool:
    """Every message delivered to all its destinations (none still routed)."""
    with hub.client(OPS_KEY) as c:
        return not c.get("/api/v1/messages", params={"status": "routed"}).json()["items"]


def complete(portal: NationalPortal, streams: list[list[dict[str, Any]]]) -> bool:
    got = portal.received()
    return all(
        got.get(s[0]["MaHoSo"], {}).get("sequences", [])[-1:] == [s[-1]["SoThuTuThayDoi"]]
        for s in streams
    )


def test_a_stream_of_dossiers_arrives_complete_and_in_order(
    hub: ThreadedHub, portal: NationalPortal
) -> None:
    streams = dossier_streams(100, seed=7)
    total = sum(len(s) for s in streams)
    assert total >= 450
    portal.fail_items(25)  # items answered "temporary failure" inside their batches
    portal.fail_requests(2)  # whole requests answered 503
    portal.rate_limit(3, retry_after=1)  # and 429 with Retry-After
    report = asyncio.run(push(hub.url, KEY, streams, senders=4, batch=5, seed=7))
    assert report.accepted * 5 >= total and not report.errors, report

    wait_until(lambda: complete(portal, streams), 120)
    got = portal.received()
    assert portal.violations() == []
    for stream in streams:
        sequences = [s for s in got[stream[0]["MaHoSo"]]["sequences"] if s is not None]
        distinct = list(dict.fromkeys(sequences))
        assert distinct == [e["SoThuTuThayDoi"] for e in stream]  # all, in order
    stats = portal.stats()
    assert stats["dossiers"] == 100
    assert stats["throttled"] == 3 and stats["unavailable"] == 2  # the faults did happen
    assert stats["items"] >= total + 25  # the failed items were sent again


def test_a_portal_rejection_is_dead_lettered_then_replayed_once_fixed(
    hub: ThreadedHub, portal: NationalPortal
) -> None:
    [stream] = dossier_streams(1, seed=3)
    for event in stream:
        event["MaTTHC"] = "9.999999"  # not in the portal's catalogue
    asyncio.run(push(hub.url, KEY, [stream]))
    with hub.client(OPS_KEY) as c:

        def dead() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = c.get("/api/v1/dead-letters").json()["items"]
            return items

        letters = wait_until(lambda: len(dead()) == len(stream) and dead(), 30)
        assert all("9.999999" in (d["reason"] or "") for d in letters), letters
        portal.add_procedure("9.999999")  # the mapping is fixed
        for letter in sorted(letters, key=lambda d: d["id"]):
            assert c.post(f"/api/v1/dead-letters/{letter['id']}/replay").status_code == 200
    wait_until(lambda: complete(portal, [stream]), 30)
    assert portal.violations() == []
    got = portal.received()[stream[0]["MaHoSo"]]
    assert list(dict.fromkeys(got["sequences"])) == [e["SoThuTuThayDoi"] for e in stream]


def test_a_months_report_is_sent_once_and_a_correction_is_a_new_version(
    hub: ThreadedHub, portal: NationalPortal, reports: ReportingSystem, settings: Settings
) -> None:
    streams = dossier_streams(6, seed=11)
    first, last = [s[:-2] for s in streams], [s[-2:] for s in streams]
    asyncio.run(push(hub.url, KEY, first))
    wait_until(lambda: sum(len(d["sequences"]) for d in portal.received().values()) >= 6, 30)
    wait_until(lambda: settled(hub))  # the reporting consumer has applied them too
    queued = send_reports(settings, "2026-11", None)
    assert queued and all(r["queued"] and r["version"] == 1 for r in queued)
    wait_until(lambda: len(reports.received()) == len(queued), 30)
    assert send_reports(settings, "2026-11", None) and len(reports.received()) == len(queued)
    assert not any(r["queued"] for r in send_reports(settings, "2026-11", None))  # no duplicate

    asyncio.run(push(hub.url, KEY, last))  # the dossiers complete: the figures change
    wait_until(lambda: complete(portal, streams), 30)
    wait_until(lambda: settled(hub))
    again = [r for r in send_reports(settings, "2026-11", None) if r["queued"]]
    assert again and all(r["version"] == 2 and r["corrects"] == 1 for r in again)
    wait_until(lambda: len(reports.received()) == len(queued) + len(again), 30)
    for r in again:
        assert reports.latest(r["report_id"])["version"] == 2


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_two_worker_processes_keep_each_dossier_in_order(
    tmp_path: Path, pg_url: str, amqp_url: str, unique: str, portal: NationalPortal
) -> None:
    """500 events of 100 dossiers, an API and two competing worker processes, with
    item failures, 503s and 429s: complete and in order per dossier at the portal."""
    from tests.conftest import delete_queues

    settings = Settings(
        config=config(tmp_path, portal.url),
        blob_dir=tmp_path / "blobs",
        retry_poll_seconds=0.1,
        database_url=pg_url,
        broker_url=amqp_url,
        queue_prefix=unique,
    )
    api = HubProcess(settings, role="api", log=tmp_path / "api.log").start()
    workers = [
        HubProcess(settings, role="worker", log=tmp_path / f"w{i}.log").start() for i in range(2)
    ]
    try:
        streams = dossier_streams(100, seed=21)
        portal.fail_items(25)
        portal.fail_requests(2)
        portal.rate_limit(3, retry_after=1)
        report = asyncio.run(push(api.url, KEY, streams, senders=4, batch=5, seed=21))
        assert not report.errors, report
        wait_until(lambda: complete(portal, streams), 180)
        assert portal.violations() == []
        got = portal.received()
        for stream in streams:
            sequences = [s for s in got[stream[0]["MaHoSo"]]["sequences"] if s is not None]
            assert list(dict.fromkeys(sequences)) == [e["SoThuTuThayDoi"] for e in stream]
        assert portal.stats()["throttled"] == 3
    finally:
        for p in (api, *workers):
            p.stop()
        delete_queues(amqp_url, unique)
