"""The one-stop connector: native dossier events -> canonical ones; masking; the simulator."""

from __future__ import annotations

import asyncio
import json
import random
import unicodedata
from datetime import datetime
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator

from adapters.one_stop import VN, dossier_events, dossier_streams, lanes, push
from adapters.sink import RecordingSink
from hub.config import RetryPolicy, System
from hub.connectors.procedures import (
    ProceduresConnector,
    event_id_for,
    mask,
    mask_email,
    mask_name,
    masked_applicant,
)
from hub.errors import Rejected
from hub.schema import SCHEMAS, Schema
from tests.conftest import REPO

ONE_STOP = System(
    id="000.00.12.H29:motcua",
    name="Hệ thống một cửa điện tử",
    kind="procedures",
    endpoint=None,
    api_key="motcua-key",
    may_send=("vn.lgsp.dossier.*",),
    may_receive=(),
    retry=RetryPolicy(),
)
CONTRACT = yaml.safe_load((REPO / "contracts/one-stop.openapi.yaml").read_text("utf-8"))
KINDS = {
    "DA_TIEP_NHAN": ("received", "received"),
    "DANG_XU_LY": ("status_changed", "processing"),
    "CHO_THANH_TOAN": ("status_changed", "awaiting_payment"),
    "YEU_CAU_BO_SUNG": ("supplement_requested", "supplement_requested"),
    "DA_XU_LY": ("completed", "completed"),
    "DA_TRA_KET_QUA": ("returned", "returned"),
    "DA_HUY": ("cancelled", "cancelled"),
    "TU_CHOI": ("cancelled", "rejected"),
}


def schema_errors(kind: str, data: Any) -> list[str]:
    name = kind.removeprefix("vn.lgsp.") + ".json"
    schema = Schema(json.loads((SCHEMAS / name).read_text("utf-8")))
    return [f"{e.pointer}: {e.detail}" for e in schema.errors(data, "")]


def envelope_errors(event: Any) -> list[str]:
    schema = Schema(json.loads((SCHEMAS / "envelope.json").read_text("utf-8")))
    return [f"{e.pointer}: {e.detail}" for e in schema.errors(event, "")]


def contract_errors(instance: Any) -> list[str]:
    schema = {"$ref": "#/components/schemas/DossierEvent", "components": CONTRACT["components"]}
    return [e.message for e in Draft202012Validator(schema).iter_errors(instance)]


def native(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "MaHoSo": "000.00.12.H29-261123-0001",
        "SoThuTuThayDoi": 1,
        "ThoiDiemThayDoi": "23/11/2026 08:15:00",
        "TrangThai": "DA_TIEP_NHAN",
        "MaTTHC": "2.000488",
        "TenTTHC": "Đăng ký khai sinh",
        "MaLinhVuc": "HO_TICH",
        "CoQuanTiepNhan": {"MaDinhDanh": "000.00.12.H29", "TenCoQuan": "Sở Tư pháp"},
        "CapXuLy": "TINH",
        "NgayTiepNhan": "23/11/2026 08:15:00",
        "NgayHenTra": "30/11/2026 17:00:00",
        "NgayKetThucXuLy": None,
        "NgayTra": None,
        "TrichYeu": "Đăng ký khai sinh cho con",
        "LePhi": [{"TenPhiLePhi": "Lệ phí", "SoTien": 8000, "NgayNop": "23/11/2026 08:20"}],
        "ChuHoSo": {
            "LoaiDoiTuong": 1,
            "HoTen": "Nguyễn Văn An",
            "SoGiayTo": "079123456789",
            "SoDienThoai": "0912.345.612",
            "Email": "an.nguyen@example.vn",
            "DiaChi": "45 Nguyễn Huệ, Quận 1",
            "NgaySinh": "01/02/1990",
            "GioiTinh": "Nam",
        },
        "CanBoXuLy": {"HoTen": "Trần Thị Mai", "ChucDanh": "Chuyên viên"},
    }
    return event | fields


def decode(body: Any) -> list[dict[str, Any]]:
    return ProceduresConnector().decode(orjson.dumps(body), sender=ONE_STOP)


@pytest.mark.parametrize("status", sorted(KINDS))
def test_every_native_status_maps_to_a_valid_canonical_event(status: str) -> None:
    fields: dict[str, Any] = {"TrangThai": status, "SoThuTuThayDoi": 3}
    if status in ("DA_XU_LY", "DA_TRA_KET_QUA"):
        fields["NgayKetThucXuLy"] = "28/11/2026 10:00:00"
    if status == "DA_TRA_KET_QUA":
        fields["NgayTra"] = "2026-11-29T09:00:00+07:00"
    (event,) = decode(native(**fields))
    kind, local = KINDS[status]
    assert event["type"] == f"vn.lgsp.dossier.{kind}.v1"
    assert event["data"]["status"] == local
    assert envelope_errors(event) == []
    assert schema_errors(event["type"], event["data"]) == []
    assert event["id"] == "dossier:000.00.12.H29-261123-0001:3"
    assert event["source"] == ONE_STOP.id and event["subject"] == "000.00.12.H29-261123-0001"
    assert event["time"] == "2026-11-23T08:15:00+07:00"


def test_fields_dates_and_fees_are_mapped() -> None:
    (event,) = decode(native(TrangThai="DA_TRA_KET_QUA", NgayTra="29/11/2026 09:00:00"))
    data = event["data"]
    assert data["agency"] == {"code": "000.00.12.H29", "name": "Sở Tư pháp"}
    assert data["level"] == "province" and data["procedure_code"] == "2.000488"
    assert data["received_at"] == "2026-11-23T08:15:00+07:00"
    assert data["appointment_at"] == "2026-11-30T17:00:00+07:00"
    assert data["returned_at"] == "2026-11-29T09:00:00+07:00" and "completed_at" not in data
    assert data["fees"] == [
        {"name": "Lệ phí", "amount": 8000, "paid_at": "2026-11-23T08:20:00+07:00"}
    ]
    assert data["handler"] == {"name": "Trần Thị Mai", "title": "Chuyên viên"}


def test_personal_data_is_minimised_and_text_is_nfc() -> None:
    name = unicodedata.normalize("NFD", "Nguyễn Văn An")
    (event,) = decode(native(ChuHoSo=native()["ChuHoSo"] | {"HoTen": name}))
    applicant = event["data"]["applicant"]
    assert applicant == {
        "kind": "citizen",
        "name": "Nguyễn Văn An",
        "id_number": "079123456789",
        "phone": "0912345612",
        "email": "an.nguyen@example.vn",
    }
    assert unicodedata.is_normalized("NFC", applicant["name"])
    flat = orjson.dumps(event).decode()
    assert "Nguyễn Huệ" not in flat and "01/02/1990" not in flat and "Nam" not in flat


def test_a_business_applicant() -> None:
    owner = {"LoaiDoiTuong": 2, "HoTen": "Công ty TNHH Bình An", "SoGiayTo": "0312345678"}
    (event,) = decode(native(ChuHoSo=owner))
    assert event["data"]["applicant"] == {
        "kind": "business",
        "name": "Công ty TNHH Bình An",
        "id_number": "0312345678",
    }


def test_ids_are_deterministic_and_hashed_for_odd_codes() -> None:
    assert event_id_for("H29-0001", 2) == "dossier:H29-0001:2"
    odd = event_id_for("HS/2026/Quận 1/0001", 2)
    assert odd.startswith("dossier:sha256:") and odd.endswith(":2")
    assert odd == event_id_for("HS/2026/Quận 1/0001", 2)
    (event,) = decode(native(MaHoSo="HS/2026/0001"))
    assert event["id"] == event_id_for("HS/2026/0001", 1) and envelope_errors(event) == []
    assert event["subject"] == "HS/2026/0001"


def test_a_list_is_decoded_in_order() -> None:
    events = decode([native(SoThuTuThayDoi=n, TrangThai="DANG_XU_LY") for n in (1, 2, 3)])
    assert [e["data"]["sequence"] for e in events] == [1, 2, 3]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "1 to"),
        (b"[1]", "JSON object"),
        (orjson.dumps(native(TrangThai="DANG_CHO")), "DANG_CHO"),
        (orjson.dumps(native(CapXuLy="TRUNG_UONG")), "TRUNG_UONG"),
        (orjson.dumps(native(SoThuTuThayDoi=0)), "SoThuTuThayDoi"),
        (orjson.dumps(native(NgayHenTra="mai")), "mai"),
        (orjson.dumps({k: v for k, v in native().items() if k != "MaTTHC"}), "MaTTHC"),
    ],
)
def test_bad_pushes_are_rejected_whole(body: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        ProceduresConnector().decode(body, sender=ONE_STOP)


def test_nothing_is_delivered_to_the_one_stop_system() -> None:
    with pytest.raises(Rejected, match="sends nothing"):
        asyncio.run(ProceduresConnector().deliver(b"{}", {"type": "x"}, ONE_STOP))


# Masking ---------------------------------------------------------------------------------


def test_masking_for_logs_and_the_console() -> None:
    assert mask_name("Nguyễn Văn An") == "Nguyễn V*** A"
    assert mask_name("Trần Thị Ngọc Bích") == "Trần T*** N*** B"
    assert mask_name("Lê Bình") == "Lê B" and mask_name("Hà") == "H***"
    assert mask("079123456789", keep_start=4) == "0791******89"
    assert mask("0912345612") == "09******12"
    assert mask("123") == "1**"
    assert mask_email("an.nguyen@example.vn") == "a***@example.vn"
    applicant = {
        "kind": "citizen",
        "name": "Nguyễn Văn An",
        "id_number": "079123456789",
        "phone": "0912345612",
        "email": "an.nguyen@example.vn",
    }
    assert masked_applicant(applicant) == {
        "kind": "citizen",
        "name": "Nguyễn V*** A",
        "id_number": "0791******89",
        "phone": "09******12",
        "email": "a***@example.vn",
    }
    business = {"kind": "business", "name": "Công ty TNHH Bình An", "id_number": "0312345678"}
    assert masked_applicant(business) == {
        "kind": "business",
        "name": "Công ty TNHH Bình An",  # a business's name is public
        "id_number": "0312****78",
    }


# The simulated one-stop system --------------------------------------------------------------


def test_generated_streams_follow_the_contract_and_decode_valid() -> None:
    streams = dossier_streams(30, seed=7)
    supplemented = 0
    for stream in streams:
        assert [e["SoThuTuThayDoi"] for e in stream] == list(range(1, len(stream) + 1))
        assert stream[0]["TrangThai"] == "DA_TIEP_NHAN"
        assert stream[-1]["TrangThai"] == "DA_TRA_KET_QUA"
        supplemented += any(e["TrangThai"] == "YEU_CAU_BO_SUNG" for e in stream)
        for item in stream:
            assert contract_errors(item) == []
        events = decode(stream)
        for event in events:
            assert schema_errors(event["type"], event["data"]) == []
            assert envelope_errors(event) == []
        times = [e["data"]["changed_at"] for e in events]
        assert times == sorted(times)
    assert 0 < supplemented < 30
    assert dossier_streams(30, seed=7) == streams


def test_a_supplement_round_is_in_the_stream() -> None:
    events = dossier_events(
        1, random.Random(1), start=datetime(2026, 11, 23, 8, tzinfo=VN), supplement=True
    )
    assert [e["TrangThai"] for e in events] == [
        "DA_TIEP_NHAN",
        "DANG_XU_LY",
        "YEU_CAU_BO_SUNG",
        "DANG_XU_LY",
        "DA_XU_LY",
        "DA_TRA_KET_QUA",
    ]
    assert events[2]["GhiChu"] and events[4]["NgayKetThucXuLy"] and events[5]["NgayTra"]


def test_lanes_keep_each_dossier_in_order_unless_shuffled() -> None:
    streams = dossier_streams(20, seed=3)
    for lane in lanes(streams, 4, shuffle=False):
        seen: dict[str, int] = {}
        for event in lane:
            assert event["SoThuTuThayDoi"] == seen.get(event["MaHoSo"], 0) + 1
            seen[event["MaHoSo"]] = event["SoThuTuThayDoi"]
    shuffled = lanes(streams, 4, shuffle=True)
    assert sum(map(len, shuffled)) == sum(map(len, streams))


def test_push_posts_native_bodies_with_the_bearer_key() -> None:
    streams = dossier_streams(5, seed=2)
    with RecordingSink() as sink:
        sink.respond(202)
        report = asyncio.run(push(sink.url, "motcua-key", streams, senders=2))
        received = sink.received  # push returns once every answer came
    total = sum(map(len, streams))
    assert report.sent == total and report.accepted == total and not report.errors
    assert {r.path for r in received} == {"/api/v1/native"}
    assert {r.headers["authorization"] for r in received} == {"Bearer motcua-key"}
    bodies = [orjson.loads(r.body) for r in received]
    assert sorted((b["MaHoSo"], b["SoThuTuThayDoi"]) for b in bodies) == sorted(
        (e["MaHoSo"], e["SoThuTuThayDoi"]) for s in streams for e in s
    )
