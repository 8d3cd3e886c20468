"""The simulated National Public Service Portal on its real socket, driven with httpx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator

from adapters.national_portal import ACCOUNTS, NationalPortal
from tests.conftest import REPO

USER, PASSWORD = next(iter(ACCOUNTS.items()))
CONTRACT = yaml.safe_load((REPO / "contracts/national-portal.openapi.yaml").read_text("utf-8"))


def contract_errors(name: str, instance: Any) -> list[str]:
    """What is wrong with `instance` against a schema of the contract (refs resolved in it)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": CONTRACT["components"]}
    return [e.message for e in Draft202012Validator(schema).iter_errors(instance)]


@pytest.fixture
def portal() -> Iterator[NationalPortal]:
    with NationalPortal() as running:
        yield running


def login(portal: NationalPortal) -> str:
    answer = httpx.post(
        f"{portal.url}/api/auth/login",
        json={"username": USER, "password": PASSWORD, "madonvi": "000.00.00.H29"},
    )
    assert answer.status_code == 200 and contract_errors("Session", answer.json()) == []
    return str(answer.json()["session"])


def item(code: str = "HS-0001", sequence: int = 1, status: str = "2", **fields: Any) -> Any:
    return {
        "MaHoSo": code,
        "MaTTHC": "2.000488",
        "TenTTHC": "Đăng ký khai sinh",
        "ChuHoSo": "Nguyễn Văn An",
        "LoaiDoiTuong": "1",
        "MaDoiTuong": "079123456789",
        "NgayTiepNhan": "20261123081500",
        "NgayHenTra": "20261130170000",
        "TrangThaiHoSo": status,
        "DonViXuLy": "000.00.12.H29",
        "SoThuTuCapNhat": sequence,
        "ThoiDiemCapNhat": "20261123081500",
    } | fields


def sync(portal: NationalPortal, session: str, *items: Any) -> httpx.Response:
    body = {
        "session": session,
        "madonvi": "000.00.00.H29",
        "service": "DongBoHoSoMC",
        "isUpdating": "True",
        "data": list(items),
    }
    return httpx.post(f"{portal.url}/api/dongbohoso", json=body)


def test_login_then_sync_answers_per_item(portal: NationalPortal) -> None:
    session = login(portal)
    assert contract_errors("Dossier", item()) == []
    answer = sync(
        portal,
        session,
        item("HS-1"),
        item("HS-2", MaTTHC="9.999999"),
        item("HS-3", NgayHenTra="30/11/2026"),
        item("HS-4", TrangThaiHoSo="11"),
    )
    assert answer.status_code == 200
    result = answer.json()
    assert contract_errors("BatchResult", result) == []
    codes = [(r["MaHoSo"], r["error_code"]) for r in result["ketqua"]]
    assert codes == [("HS-1", "00"), ("HS-2", "03"), ("HS-3", "02"), ("HS-4", "02")]
    assert "9.999999" in result["ketqua"][1]["message"]
    assert list(portal.received()) == ["HS-1"]


def test_a_wrong_login_and_a_bad_session(portal: NationalPortal) -> None:
    wrong = httpx.post(
        f"{portal.url}/api/auth/login",
        json={"username": USER, "password": "x", "madonvi": "000.00.00.H29"},
    )
    assert wrong.status_code == 401 and wrong.json()["error_code"] == "01"
    stale = sync(portal, "no-such-session", item())
    assert stale.status_code == 200 and stale.json()["error_code"] == "-1"
    session = login(portal)
    portal.expire_sessions()
    assert sync(portal, session, item()).json()["error_code"] == "-1"


def test_repeats_are_counted_and_older_updates_flagged(portal: NationalPortal) -> None:
    session = login(portal)
    sync(portal, session, item(sequence=1), item(sequence=2, status="4"))
    sync(portal, session, item(sequence=2, status="4"), item(sequence=4, status="9"))
    sync(portal, session, item(sequence=3, status="5"))
    seen = portal.received()["HS-0001"]
    assert seen["statuses"] == [2, 4, 9, 5] and seen["sequences"] == [1, 2, 4, 3]
    assert seen["repeats"] == 1 and seen["violations"] == 1 and seen["TrangThaiHoSo"] == "9"
    (violation,) = portal.violations()
    assert violation["SoThuTuCapNhat"] == 3 and violation["after"] == 4
    over_http = httpx.get(f"{portal.url}/_portal/received").json()
    assert over_http["dossiers"]["HS-0001"]["violations"] == 1
    assert over_http["violations"][0]["MaHoSo"] == "HS-0001"


def test_failing_items_then_procedures_added_over_http(portal: NationalPortal) -> None:
    session = login(portal)
    httpx.post(f"{portal.url}/_portal/fail_items", params={"n": 2})
    codes = [r["error_code"] for r in sync(portal, session, *map(item, "ABC")).json()["ketqua"]]
    assert codes == ["99", "99", "00"]
    added = httpx.post(f"{portal.url}/_portal/procedures", json={"MaTTHC": "1.012345"})
    assert "1.012345" in added.json()["procedures"]
    answer = sync(portal, session, item("D", MaTTHC="1.012345")).json()
    assert answer["ketqua"][0]["error_code"] == "00"


def test_rate_limits_answer_429_with_retry_after(portal: NationalPortal) -> None:
    session = login(portal)
    httpx.post(f"{portal.url}/_portal/rate_limit", params={"next": 2, "retry_after": 4})
    answers = [sync(portal, session, item()) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "4"
    portal.rate_limit(per_second=3)
    statuses = [sync(portal, session, item()).status_code for _ in range(5)]
    assert statuses.count(200) == 3 and statuses.count(429) == 2
    time.sleep(1.05)
    assert sync(portal, session, item()).status_code == 200
    portal.rate_limit()
    assert all(sync(portal, session, item()).status_code == 200 for _ in range(5))


def test_failing_requests_answer_503(portal: NationalPortal) -> None:
    session = login(portal)
    portal.fail_requests(1, retry_after=9)
    failed = sync(portal, session, item())
    assert failed.status_code == 503 and failed.headers["retry-after"] == "9"
    assert sync(portal, session, item()).status_code == 200


def test_progress_and_lookup(portal: NationalPortal) -> None:
    session = login(portal)
    sync(portal, session, item())
    progress = {
        "session": session,
        "madonvi": "000.00.00.H29",
        "service": "CapNhatTienDoHoSoMC",
        "data": [
            {
                "MaHoSo": "HS-0001",
                "NguoiXuLy": "Trần Thị Mai",
                "ChucDanh": "Chuyên viên",
                "ThoiDiemXuLy": "20261124090000",
                "PhongBanXuLy": "Phòng Hành chính tư pháp",
                "NoiDungXuLy": "Thẩm định hồ sơ",
                "TrangThai": "4",
            },
            {"MaHoSo": "HS-9999", "NoiDungXuLy": "x", "ThoiDiemXuLy": "20261124090000"},
        ],
    }
    assert contract_errors("ProgressRequest", progress) == []
    answer = httpx.post(f"{portal.url}/api/capnhattiendo", json=progress).json()
    assert [r["error_code"] for r in answer["ketqua"]] == ["00", "04"]
    found = httpx.get(
        f"{portal.url}/api/tracuu", params={"MaHoSo": "HS-0001", "session": session}
    ).json()
    assert found["error_code"] == "00" and contract_errors("LookedUp", found["data"]) == []
    assert found["data"]["LichSuTrangThai"] == [2] and len(found["data"]["TienDo"]) == 1
    missing = httpx.get(f"{portal.url}/api/tracuu", params={"MaHoSo": "X", "session": session})
    assert missing.json()["error_code"] == "04"


def test_malformed_requests_are_400(portal: NationalPortal) -> None:
    session = login(portal)
    bad = httpx.post(f"{portal.url}/api/dongbohoso", content=b"{")
    assert bad.status_code == 400 and bad.json()["error_code"] == "02"
    empty = httpx.post(
        f"{portal.url}/api/dongbohoso",
        json={"session": session, "madonvi": "x", "service": "DongBoHoSoMC", "data": []},
    )
    assert empty.status_code == 400
