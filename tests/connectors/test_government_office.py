"""The Government Office connector and poller against the simulated office on a real socket."""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from adapters.government_office import GovernmentOffice
from adapters.sink import RecordingSink
from hub.config import RetryPolicy, System
from hub.connectors import government_office as gov
from hub.connectors.government_office import (
    GovernmentOfficeConnector,
    GovernmentOfficePoller,
    completion_native,
    decode_push,
    event_id_for,
    progress_native,
    to_event_data,
)
from hub.errors import Conflict, Forbidden, Rejected, Transient
from hub.schema import SCHEMAS, Schema
from hub.store import cursors
from hub.store.db import Database
from tests.adapters.test_government_office_sim import contract_errors

KEY = "city-key"
OFFICE_ID = "000.00.00.G22:theodoinhiemvu"


def office_system(url: str, **options: Any) -> System:
    return System(
        id=OFFICE_ID,
        name="Hệ thống theo dõi nhiệm vụ của Văn phòng Chính phủ",
        kind="government_office",
        endpoint=url,
        api_key="push-key",
        may_send=("vn.lgsp.directive.*",),
        may_receive=("vn.lgsp.directive.progress.v1", "vn.lgsp.directive.completed.v1"),
        retry=RetryPolicy(),
        timeout=5.0,
        options=MappingProxyType({"outbound_key": KEY} | options),
    )


def schema_errors(kind: str, data: Any) -> list[str]:
    """Errors of `data` against the hub's schema of `kind` (vn.lgsp.<name>)."""
    name = kind.removeprefix("vn.lgsp.") + ".json"
    schema = Schema(json.loads((SCHEMAS / name).read_text("utf-8")))
    return [f"{e.pointer}: {e.detail}" for e in schema.errors(data, "")]


def envelope_errors(event: Any) -> list[str]:
    schema = Schema(json.loads((SCHEMAS / "envelope.json").read_text("utf-8")))
    return [f"{e.pointer}: {e.detail}" for e in schema.errors(event, "")]


@pytest.fixture
def office() -> Iterator[GovernmentOffice]:
    with GovernmentOffice({KEY}) as running:
        yield running


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.close()


# Mapping ---------------------------------------------------------------------------------

NFD_TITLE = unicodedata.normalize("NFD", "Đẩy nhanh cải cách thủ tục hành chính")


def test_assigned_maps_every_field_and_normalises_text_to_nfc(office: GovernmentOffice) -> None:
    item = office.create(
        TenNhiemVu=NFD_TITLE,
        CapGiao="VPCP",
        DoKhan=4,
        MaVanBan="000.00.00.G22,2026/11/20,125/TB-VPCP",
        DonViPhoiHop=[{"MaDinhDanh": "000.00.12.H29", "TenDonVi": "Sở Nội vụ"}],
        TepDinhKem=[
            {
                "TenTep": "Thông báo 125.pdf",
                "DuongDan": "https://vpcp.example/tep/1",
                "KichThuoc": 2048,
                "MaBam": "ab" * 32,
                "LoaiTep": "application/pdf",
            }
        ],
    )
    kind, data = to_event_data(item)
    assert kind == "vn.lgsp.directive.assigned.v1" and schema_errors(kind, data) == []
    assert data["title"] == "Đẩy nhanh cải cách thủ tục hành chính"
    assert unicodedata.is_normalized("NFC", data["title"])
    assert data["version"] == 1 and data["directive_id"] == item["MaNhiemVu"]
    assert data["authority"] == "government_office" and data["priority"] == "very_urgent"
    assert data["deadline"] == {"kind": "date", "date": "2026-12-31"}
    assert data["lead_unit"] == {
        "code": "000.00.00.H29",
        "name": "Ủy ban nhân dân Thành phố Hồ Chí Minh",
    }
    assert data["coordinating_units"] == [{"code": "000.00.12.H29", "name": "Sở Nội vụ"}]
    assert data["source_document"] == {
        "number": item["NhiemVu"]["SoKyHieu"],
        "date": "2026-11-20",
        "issuer": {"code": "000.00.00.G22", "name": "Văn phòng Chính phủ"},
        "document_id": "000.00.00.G22,2026/11/20,125/TB-VPCP",
    }
    assert data["attachments"][0] == {
        "name": "Thông báo 125.pdf",
        "url": "https://vpcp.example/tep/1",
        "size": 2048,
        "sha256": "ab" * 32,
        "content_type": "application/pdf",
    }
    assert data["assigned_at"] == item["NhiemVu"]["NgayGiao"]


@pytest.mark.parametrize(
    ("fields", "deadline"),
    [
        ({"LoaiHan": "KHONG_THOI_HAN", "HanXuLy": None}, {"kind": "none"}),
        (
            {
                "LoaiHan": "DINH_KY",
                "HanXuLy": None,
                "DinhKy": {"Ky": "QUY", "NgayTrongKy": 20, "DenNgay": "2027-12-31"},
            },
            {"kind": "recurring", "every": "quarter", "day": 20, "until": "2027-12-31"},
        ),
    ],
)
def test_deadline_kinds(office: GovernmentOffice, fields: Any, deadline: Any) -> None:
    kind, data = to_event_data(office.create(**fields))
    assert data["deadline"] == deadline and schema_errors(kind, data) == []


def test_updated_names_the_canonical_fields_that_changed(office: GovernmentOffice) -> None:
    directive = office.create()["MaNhiemVu"]
    item = office.change(
        directive,
        reason="Gia hạn theo " + unicodedata.normalize("NFD", "đề nghị của Thành phố"),
        LoaiHan="DINH_KY",
        HanXuLy=None,
        DinhKy={"Ky": "THANG", "NgayTrongKy": 25},
        DonViChuTri={"MaDinhDanh": "000.00.12.H29", "TenDonVi": "Sở Tài chính"},
        NgayVanBan="2026-11-21",
    )
    kind, data = to_event_data(item)
    assert kind == "vn.lgsp.directive.updated.v1" and schema_errors(kind, data) == []
    assert data["changed"] == ["deadline", "lead_unit", "source_document"]
    assert (
        data["directive"]["version"] == 2 and data["reason"] == "Gia hạn theo đề nghị của Thành phố"
    )
    assert data["directive"]["deadline"] == {"kind": "recurring", "every": "month", "day": 25}


def test_revoked_carries_version_time_and_reason(office: GovernmentOffice) -> None:
    directive = office.create()["MaNhiemVu"]
    item = office.revoke(directive, "Nhiệm vụ đã được lồng ghép")
    kind, data = to_event_data(item)
    assert kind == "vn.lgsp.directive.revoked.v1" and schema_errors(kind, data) == []
    assert data == {
        "directive_id": directive,
        "version": 2,
        "revoked_at": item["ThoiDiem"],
        "reason": "Nhiệm vụ đã được lồng ghép",
    }


@pytest.mark.parametrize(
    "fields", [{"CapGiao": "UBND"}, {"DoKhan": 9}, {"LoaiHan": "MOT_LAN"}, {"DonViChuTri": "H29"}]
)
def test_what_the_hub_cannot_map_is_rejected(office: GovernmentOffice, fields: Any) -> None:
    with pytest.raises(Rejected, match="cannot map"):
        to_event_data(office.create(**fields))
    with pytest.raises(Rejected):
        to_event_data({"Seq": 1})


def test_event_ids_are_deterministic_and_fit_the_envelope(office: GovernmentOffice) -> None:
    assert event_id_for("NV-2026-000001", 3) == "gov:NV-2026-000001:v3"
    odd = event_id_for("125/NV-VPCP", 1)
    assert odd.startswith("gov:sha256:") and odd.endswith(":v1")
    event = decode_push(
        json.dumps(office.create(MaNhiemVu="125/NV-VPCP")).encode(),
        sender=office_system(office.url),
    )
    assert event["id"] == odd and envelope_errors(event) == []


def progress_event(directive_id: str, n: int = 1, event_id: str = "01JPROGRESS1") -> dict[str, Any]:
    data = {
        "directive_id": directive_id,
        "report_id": f"BC-{n}",
        "percent": 10 * n,
        "text": unicodedata.normalize("NFD", f"Lần {n}: đã hoàn thành rà soát các thủ tục"),
        "reported_at": f"2026-11-2{n}T09:00:00+07:00",
        "unit": {"code": "000.00.12.H29", "name": "Sở Tài chính"},
        "reporter": {
            "id": "cb-7",
            "name": "Nguyễn Văn An",
            "title": "Phó Giám đốc",
            "unit": {"code": "000.00.12.H29"},
        },
        "attachments": [{"name": "Báo cáo.pdf", "url": "https://hub.example/b/1", "size": 10}],
    }
    assert schema_errors("vn.lgsp.directive.progress.v1", data) == []
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "000.00.00.H29:nhiemvu",
        "type": "vn.lgsp.directive.progress.v1",
        "data": data,
    }


def completed_event(directive_id: str) -> dict[str, Any]:
    data = {
        "directive_id": directive_id,
        "completed_at": "2026-12-20T16:00:00+07:00",
        "summary": "Đã hoàn thành đúng hạn",
        "unit": {"code": "000.00.00.H29"},
        "on_time": True,
    }
    assert schema_errors("vn.lgsp.directive.completed.v1", data) == []
    return {
        "specversion": "1.0",
        "id": "01JDONE",
        "source": "000.00.00.H29:nhiemvu",
        "type": "vn.lgsp.directive.completed.v1",
        "data": data,
    }


def test_progress_and_completion_map_to_the_native_shape() -> None:
    body = progress_native(progress_event("NV-1"))
    assert contract_errors("ProgressReport", body) == []
    assert body["TyLeHoanThanh"] == 10 and body["MaBaoCao"] == "BC-1"
    assert body["NoiDungBaoCao"] == "Lần 1: đã hoàn thành rà soát các thủ tục"
    assert unicodedata.is_normalized("NFC", body["NoiDungBaoCao"])
    assert body["NguoiBaoCao"] == {
        "MaCanBo": "cb-7",
        "HoTen": "Nguyễn Văn An",
        "ChucVu": "Phó Giám đốc",
        "DonVi": {"MaDinhDanh": "000.00.12.H29", "TenDonVi": None},
    }
    assert body["TepDinhKem"] == [
        {"TenTep": "Báo cáo.pdf", "DuongDan": "https://hub.example/b/1", "KichThuoc": 10}
    ]
    done = completion_native(completed_event("NV-1"))
    assert contract_errors("Completion", done) == [] and done["DungHan"] is True
    with pytest.raises(Rejected):
        completion_native(progress_event("NV-1"))


# Delivery --------------------------------------------------------------------------------


def deliver(event: Any, target: System) -> Any:
    async def go() -> Any:
        connector = GovernmentOfficeConnector(None)
        try:
            return await connector.deliver(b"", event, target)
        finally:
            await connector.close()

    return asyncio.run(go())


def test_progress_delivered_twice_is_received_once(office: GovernmentOffice) -> None:
    directive = office.create()["MaNhiemVu"]
    target = office_system(office.url)
    first = deliver(progress_event(directive), target)
    again = deliver(progress_event(directive), target)
    assert first.status_code == again.status_code == 200
    assert first.extra["receipt_id"] == again.extra["receipt_id"]
    assert again.extra["times_received"] == 2
    deliver(completed_event(directive), target)
    got = office.received(directive)
    assert [(r["kind"], r["message_id"], r["repeats"]) for r in got] == [
        ("progress", "01JPROGRESS1", 1),
        ("completion", "01JDONE", 0),
    ]
    assert got[0]["body"] == progress_native(progress_event(directive))


def test_outage_and_refused_connection_are_transient(office: GovernmentOffice) -> None:
    directive = office.create()["MaNhiemVu"]
    office.down(retry_after=3600)
    with pytest.raises(Transient, match="HTTP 503 BAO_TRI") as caught:
        deliver(progress_event(directive), office_system(office.url))
    assert caught.value.retry_after == 3600
    office.up()
    assert deliver(progress_event(directive), office_system(office.url)).status_code == 200
    with pytest.raises(Transient):
        deliver(progress_event(directive), office_system("http://127.0.0.1:9"))


def test_refusals_are_rejected_with_the_office_reason(
    office: GovernmentOffice, monkeypatch: pytest.MonkeyPatch
) -> None:
    directive = office.create()["MaNhiemVu"]
    with pytest.raises(Rejected, match="HTTP 404 KHONG_TIM_THAY"):
        deliver(progress_event("NV-khong-co"), office_system(office.url))
    with pytest.raises(Rejected, match="HTTP 401 SAI_KHOA"):
        deliver(progress_event(directive), office_system(office.url, outbound_key="wrong"))
    with pytest.raises(Rejected, match="GOV_KEY is unset"):
        deliver(progress_event(directive), office_system(office.url, outbound_key="env:GOV_KEY"))
    monkeypatch.setenv("GOV_KEY", KEY)
    assert deliver(progress_event(directive), office_system(office.url, outbound_key="env:GOV_KEY"))
    office.revoke(directive)
    with pytest.raises(Rejected, match="HTTP 409 DA_THU_HOI"):
        deliver(progress_event(directive, 2, "01JPROGRESS2"), office_system(office.url))
    assigned = {
        "specversion": "1.0",
        "id": "x",
        "type": "vn.lgsp.directive.assigned.v1",
        "data": {},
    }
    with pytest.raises(Rejected, match="takes"):
        deliver(assigned, office_system(office.url))
    assert len(office.received()) == 1


# Polling ---------------------------------------------------------------------------------


class Hub:
    """An accept callback that keeps what it is handed, or raises what it is told to."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.raises: dict[int, Exception] = {}  # call number (1-based) -> error
        self.calls = 0

    async def accept(self, event: dict[str, Any]) -> None:
        self.calls += 1
        if error := self.raises.pop(self.calls, None):
            raise error
        assert envelope_errors(event) == [] and schema_errors(event["type"], event["data"]) == []
        self.events.append(event)


def poll(poller: GovernmentOfficePoller, rounds: int = 1) -> list[int]:
    async def go() -> list[int]:
        try:
            return [await poller.poll_once() for _ in range(rounds)]
        finally:
            await poller.close()

    return asyncio.run(go())


def five_changes(office: GovernmentOffice) -> list[str]:
    ids = [office.create()["MaNhiemVu"] for _ in range(3)]
    office.change(ids[0], HanXuLy="2027-01-15")
    office.revoke(ids[1], "Thu hồi")
    return ids


def test_poll_hands_changes_in_seq_order_once(office: GovernmentOffice, db: Database) -> None:
    a, b, c = five_changes(office)
    hub = Hub()
    poller = GovernmentOfficePoller(office_system(office.url), db, hub.accept)
    assert poll(poller, rounds=2) == [5, 0]
    assert [e["id"] for e in hub.events] == [
        f"gov:{a}:v1",
        f"gov:{b}:v1",
        f"gov:{c}:v1",
        f"gov:{a}:v2",
        f"gov:{b}:v2",
    ]
    assert [e["type"].split(".")[3] for e in hub.events] == [
        "assigned",
        "assigned",
        "assigned",
        "updated",
        "revoked",
    ]
    assert {e["source"] for e in hub.events} == {OFFICE_ID}
    cursor = json.loads(cursors.load(db.engine, poller.cursor_name) or "")
    assert cursor["seq"] == 5 and cursor["accepted"] == 5 and cursor["refused"] == []
    office.create()
    again = GovernmentOfficePoller(office_system(office.url), db, hub.accept)
    assert poll(again) == [1]  # a new poller resumes after the saved cursor
    assert len(hub.events) == 6 and hub.events[-1]["id"].endswith(":v1")


def test_transient_stops_the_round_and_the_next_resumes_there(
    office: GovernmentOffice, db: Database, sqlite_url: str
) -> None:
    five_changes(office)
    hub = Hub()
    hub.raises[2] = Transient("store busy")
    with pytest.raises(Transient, match="store busy"):
        poll(GovernmentOfficePoller(office_system(office.url), db, hub.accept))
    assert len(hub.events) == 1
    restarted = Database(sqlite_url)
    try:
        assert poll(GovernmentOfficePoller(office_system(office.url), restarted, hub.accept)) == [4]
    finally:
        restarted.close()
    assert [e["id"] for e in hub.events] == [i["id"] for i in replay(office)]


def replay(office: GovernmentOffice) -> list[dict[str, Any]]:
    """Every change of the office as the events the poller must hand over, in order."""
    sender = office_system(office.url)
    return [decode_push(json.dumps(i).encode(), sender=sender) for i in office.records.log]


def test_a_refused_change_is_recorded_and_passed(office: GovernmentOffice, db: Database) -> None:
    five_changes(office)
    office.create(CapGiao="UBND")  # the hub has no authority for it: cannot map
    hub = Hub()
    hub.raises[2] = Rejected("invalid directive")
    poller = GovernmentOfficePoller(office_system(office.url), db, hub.accept)
    assert poll(poller) == [4]
    cursor = json.loads(cursors.load(db.engine, poller.cursor_name) or "")
    assert cursor["seq"] == 6 and cursor["accepted"] == 4
    refused = [(r["seq"], r["id"]) for r in cursor["refused"]]
    assert refused == [(2, event_id_for(office.records.log[1]["MaNhiemVu"], 1)), (6, None)]
    assert "CapGiao" in cursor["refused"][1]["reason"]


def test_a_missing_right_stops_the_round_instead_of_losing_directives(
    office: GovernmentOffice, db: Database
) -> None:
    five_changes(office)
    hub = Hub()
    hub.raises[2] = Forbidden("000.00.00.G22:theodoinhiemvu may not send ...assigned.v1")
    poller = GovernmentOfficePoller(office_system(office.url), db, hub.accept)
    with pytest.raises(Forbidden):
        poll(poller)
    assert json.loads(cursors.load(db.engine, poller.cursor_name) or "")["seq"] == 1
    assert poll(GovernmentOfficePoller(office_system(office.url), db, hub.accept)) == [4]


def test_a_conflict_stops_the_poller_at_that_change_and_shows_it(
    office: GovernmentOffice, db: Database
) -> None:
    """The hub holds this directive version from the office with other content: passing
    it would lose one of the two (before: recorded as refused and passed over)."""
    five_changes(office)
    hub = Hub()
    hub.raises[2] = Conflict("id 'gov:NV-2026-000002:v1' was already accepted ...")
    poller = GovernmentOfficePoller(office_system(office.url), db, hub.accept)
    with pytest.raises(Conflict):
        poll(poller)
    cursor = json.loads(cursors.load(db.engine, poller.cursor_name) or "")
    assert cursor["seq"] == 1 and cursor["refused"] == []
    second = event_id_for(office.records.log[1]["MaNhiemVu"], 1)
    assert (cursor["blocked"]["seq"], cursor["blocked"]["id"]) == (2, second)
    assert poll(GovernmentOfficePoller(office_system(office.url), db, hub.accept)) == [4]
    cursor = json.loads(cursors.load(db.engine, poller.cursor_name) or "")
    assert cursor["seq"] == 5 and "blocked" not in cursor


def test_pages_outage_and_run(
    office: GovernmentOffice, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gov, "PAGE", 2)
    five_changes(office)
    hub = Hub()
    office.down(retry_after=5)
    with pytest.raises(Transient):
        poll(GovernmentOfficePoller(office_system(office.url), db, hub.accept))
    office.up()

    async def go() -> None:
        poller = GovernmentOfficePoller(office_system(office.url), db, hub.accept, interval=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        deadline = time.monotonic() + 10
        while len(hub.events) < 6 and time.monotonic() < deadline:
            if len(hub.events) == 5 and office.stats()["seq"] == 5:
                office.create()
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        await poller.close()

    asyncio.run(go())
    assert [e["id"] for e in hub.events] == [e["id"] for e in replay(office)]


# Push ------------------------------------------------------------------------------------


def test_decode_push_of_a_real_push_matches_the_polled_event(
    office: GovernmentOffice, db: Database, tmp_path: Path
) -> None:
    directive = office.create()["MaNhiemVu"]
    office.change(directive, NoiDung="Bổ sung yêu cầu báo cáo hằng tháng", reason="Bổ sung")
    with RecordingSink() as sink:
        assert office.push(f"{sink.url}/push", "push-key", directive).status_code == 200
        [got] = sink.received
    sender = office_system(office.url)
    event = decode_push(got.body, sender=sender)
    assert got.headers["x-api-key"] == sender.api_key
    assert event["type"] == "vn.lgsp.directive.updated.v1" and event["data"]["changed"] == [
        "content"
    ]
    assert envelope_errors(event) == [] and schema_errors(event["type"], event["data"]) == []
    hub = Hub()
    poll(GovernmentOfficePoller(sender, db, hub.accept))
    assert hub.events[-1] == event  # same id, same content: the hub stores it once
    assert GovernmentOfficeConnector().decode(got.body, sender=sender) == [event]
    with pytest.raises(Rejected, match="not JSON"):
        decode_push(b"<xml/>", sender=sender)
    with pytest.raises(Rejected, match="cannot map"):
        decode_push(b"[]", sender=sender)
