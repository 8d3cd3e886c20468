"""The simulated Government Office task system on its real socket, driven with httpx."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator

from adapters.government_office import GovernmentOffice
from adapters.sink import RecordingSink
from tests.conftest import REPO
from tests.support import wait_until

KEY = "city-key"
CONTRACT = yaml.safe_load((REPO / "contracts/government-office.openapi.yaml").read_text("utf-8"))


def contract_errors(name: str, instance: Any) -> list[str]:
    """What is wrong with `instance` against a schema of the contract (refs resolved in it)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": CONTRACT["components"]}
    return [e.message for e in Draft202012Validator(schema).iter_errors(instance)]


@pytest.fixture
def office() -> Iterator[GovernmentOffice]:
    with GovernmentOffice({KEY}) as running:
        yield running


def changes(office: GovernmentOffice, after: int = 0, limit: int = 100) -> httpx.Response:
    return httpx.get(
        f"{office.url}/api/directives/changes",
        params={"after": after, "limit": limit},
        headers={"X-Api-Key": KEY},
    )


def progress(
    directive_id: str, report: str = "BC-1", at: str = "2026-11-25T09:00:00+07:00"
) -> dict[str, Any]:
    return {
        "MaNhiemVu": directive_id,
        "MaBaoCao": report,
        "TyLeHoanThanh": 40,
        "NoiDungBaoCao": "Đã giải ngân 40% kế hoạch vốn",
        "NgayBaoCao": at,
        "DonViBaoCao": {"MaDinhDanh": "000.00.12.H29", "TenDonVi": "Sở Tài chính"},
    }


def post(office: GovernmentOffice, path: str, body: Any, message_id: str) -> httpx.Response:
    headers = {"X-Api-Key": KEY, "Idempotency-Key": message_id}
    return httpx.post(f"{office.url}{path}", json=body, headers=headers)


def test_change_log_is_a_gapless_seq_with_each_version_in_full(office: GovernmentOffice) -> None:
    first = office.create(TenNhiemVu="Rà soát thủ tục hành chính")["MaNhiemVu"]
    second = office.create(MaNhiemVu="125/NV-VPCP", DoKhan=4)["MaNhiemVu"]
    office.change(first, HanXuLy="2027-01-15", NoiDung="Nội dung mới", reason="Gia hạn")
    office.revoke(second, "Đã lồng ghép vào nhiệm vụ khác")
    page = changes(office).json()
    assert [i["Seq"] for i in page["DanhSach"]] == [1, 2, 3, 4]
    assert page["next"] == 4 and page["ConNua"] is False
    kinds = [(i["MaNhiemVu"], i["PhienBan"], i["LoaiThayDoi"]) for i in page["DanhSach"]]
    assert kinds == [
        (first, 1, "TAO_MOI"),
        (second, 1, "TAO_MOI"),
        (first, 2, "DIEU_CHINH"),
        (second, 2, "THU_HOI"),
    ]
    created, _, changed, revoked = page["DanhSach"]
    assert created["NhiemVu"]["HanXuLy"] == "2026-12-31"  # as it stood at version 1
    assert changed["NhiemVu"]["HanXuLy"] == "2027-01-15" and changed["LyDo"] == "Gia hạn"
    assert changed["TruongThayDoi"] == ["NoiDung", "HanXuLy"]
    assert revoked["NhiemVu"]["TrangThai"] == "DA_THU_HOI"
    for item in page["DanhSach"]:
        assert contract_errors("Change", item) == []
    assert contract_errors("ChangePage", page) == []
    paged = changes(office, after=1, limit=2).json()
    assert [i["Seq"] for i in paged["DanhSach"]] == [2, 3] and paged["ConNua"] is True
    assert paged["next"] == 3
    assert changes(office, after=4).json() == {"DanhSach": [], "next": 4, "ConNua": False}


def test_changes_refused_nothing_to_change_and_revoked_stays_revoked(
    office: GovernmentOffice,
) -> None:
    directive = office.create()["MaNhiemVu"]
    no_key = httpx.get(f"{office.url}/api/directives/changes")
    assert no_key.status_code == 401 and no_key.json()["MaLoi"] == "SAI_KHOA"
    assert changes(office, limit=0).status_code == 400
    same = httpx.post(f"{office.url}/_gov/directives/{directive}/change", json={"DoKhan": 2})
    assert same.status_code == 400 and same.json()["MaLoi"] == "KHONG_THAY_DOI"
    office.revoke(directive)
    again = httpx.post(f"{office.url}/_gov/directives/{directive}/revoke")
    assert again.status_code == 409 and again.json()["MaLoi"] == "DA_THU_HOI"
    assert httpx.post(f"{office.url}/_gov/directives/nope/revoke").status_code == 404


def test_control_endpoints_create_change_and_revoke(office: GovernmentOffice) -> None:
    created = httpx.post(f"{office.url}/_gov/directives", json={"MaNhiemVu": "NV/01"})
    assert created.status_code == 201 and created.json()["Seq"] == 1
    changed = httpx.post(
        f"{office.url}/_gov/directives/NV/01/change",
        json={"DonViPhoiHop": [], "LyDo": "Điều chỉnh đơn vị phối hợp"},
    )
    assert changed.json()["TruongThayDoi"] == ["DonViPhoiHop"] and changed.json()["PhienBan"] == 2
    revoked = httpx.post(f"{office.url}/_gov/directives/NV/01/revoke", json={"LyDo": "Thu hồi"})
    assert revoked.json()["LoaiThayDoi"] == "THU_HOI" and revoked.json()["LyDo"] == "Thu hồi"
    stats = httpx.get(f"{office.url}/_gov/stats").json()
    assert stats["directives"] == 1 and stats["revoked"] == 1 and stats["seq"] == 3


def test_reports_are_idempotent_by_key_and_kept_in_arrival_order(
    office: GovernmentOffice,
) -> None:
    directive = office.create()["MaNhiemVu"]
    first = post(office, "/api/progress", progress(directive), "m-1")
    repeat = post(office, "/api/progress", progress(directive), "m-1")
    assert first.status_code == repeat.status_code == 200
    assert first.json()["MaTiepNhan"] == repeat.json()["MaTiepNhan"]
    assert (first.json()["LanNhan"], repeat.json()["LanNhan"]) == (1, 2)
    earlier = progress(directive, "BC-0", "2026-11-24T09:00:00+07:00")
    assert post(office, "/api/progress", earlier, "m-2").status_code == 200
    completion = {
        "MaNhiemVu": directive,
        "NgayHoanThanh": "2026-12-20T16:00:00+07:00",
        "KetQua": "Hoàn thành giải ngân",
        "DonViBaoCao": {"MaDinhDanh": "000.00.00.H29"},
        "DungHan": True,
    }
    assert post(office, "/api/completion", completion, "m-3").status_code == 200
    got = office.received(directive)
    assert [(r["order"], r["kind"], r["message_id"]) for r in got] == [
        (1, "progress", "m-1"),
        (2, "progress", "m-2"),
        (3, "completion", "m-3"),
    ]
    assert [r["repeats"] for r in got] == [1, 0, 0]
    assert [r["out_of_order"] for r in got] == [False, True, False]
    listed = httpx.get(f"{office.url}/_gov/received").json()
    assert listed["received"] == got and listed["repeats"] == 1 and listed["out_of_order"] == 1
    assert contract_errors("ProgressReport", got[0]["body"]) == []
    assert contract_errors("Completion", got[2]["body"]) == []


def test_bad_reports_are_refused_with_a_reason(office: GovernmentOffice) -> None:
    directive = office.create()["MaNhiemVu"]
    unknown = post(office, "/api/progress", progress("NV-khong-co"), "m-1")
    assert unknown.status_code == 404 and unknown.json()["MaLoi"] == "KHONG_TIM_THAY"
    missing = post(office, "/api/progress", {"MaNhiemVu": directive}, "m-2")
    assert missing.status_code == 400 and "TyLeHoanThanh" in missing.json()["MoTaLoi"]
    no_key = httpx.post(f"{office.url}/api/progress", json=progress(directive))
    assert no_key.status_code == 401
    no_id = httpx.post(
        f"{office.url}/api/progress", json=progress(directive), headers={"X-Api-Key": KEY}
    )
    assert no_id.status_code == 400 and no_id.json()["MaLoi"] == "THIEU_IDEMPOTENCY_KEY"
    office.revoke(directive)
    late = post(office, "/api/progress", progress(directive), "m-3")
    assert late.status_code == 409 and contract_errors("Error", late.json()) == []
    assert office.received() == [] and office.stats()["refused"] == 5


def test_down_answers_503_to_the_api_until_up(office: GovernmentOffice) -> None:
    directive = office.create()["MaNhiemVu"]
    assert httpx.post(f"{office.url}/_gov/down", params={"retry_after": 3600}).json()["down"]
    refused = post(office, "/api/progress", progress(directive), "m-1")
    assert refused.status_code == 503 and refused.headers["retry-after"] == "3600"
    assert changes(office).status_code == 503
    assert office.create()["Seq"] == 2  # the office keeps working behind the outage
    httpx.post(f"{office.url}/_gov/up")
    assert post(office, "/api/progress", progress(directive), "m-1").status_code == 200
    assert office.stats()["down_refused"] == 2 and len(office.received()) == 1


def test_push_posts_the_latest_change_item() -> None:
    with GovernmentOffice({KEY}) as office, RecordingSink() as sink:
        directive = office.create()["MaNhiemVu"]
        office.change(directive, TenNhiemVu="Tên mới")
        answer = httpx.post(
            f"{office.url}/_gov/push",
            params={"to": f"{sink.url}/push", "key": "push-key", "id": directive},
        )
        assert answer.json()["status"] == 200 and answer.json()["Seq"] == 2
        [got] = sink.received
        assert got.headers["x-api-key"] == "push-key"
        assert got.headers["authorization"] == "Bearer push-key"
        assert got.event_id == f"{directive}#2"
        assert got.as_json()["body"]["TruongThayDoi"] == ["TenNhiemVu"]
        assert office.push(f"{sink.url}/push", "k").status_code == 200
        assert sink.count == 2


def test_contract_lists_every_route() -> None:
    office = GovernmentOffice()
    routes = {r.path.replace(":path}", "}") for r in office._app.routes}  # type: ignore[attr-defined]
    assert routes == set(CONTRACT["paths"])


def test_runs_from_the_command_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cmd = [sys.executable, "-m", "adapters.government_office", "--port", str(port)]
    cmd += ["--key", KEY, "--directives", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def stats() -> Any:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/_gov/stats", timeout=1.0).json()
            except httpx.TransportError:
                return None

        # Serving starts before the two directives are filed: wait for both.
        assert wait_until(lambda: (got := stats()) and got["directives"] == 2, timeout=20)
    finally:
        proc.terminate()
        proc.wait(10)
