"""The national portal connector against the simulated portal on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from adapters.national_portal import ACCOUNTS, NationalPortal
from hub.config import RetryPolicy, System
from hub.connectors.base import BatchConnector, Outcomes, Receipt
from hub.connectors.national_portal import (
    PORTAL_STATUS,
    NationalPortalConnector,
    load_statuses,
    portal_date,
    portal_item,
    portal_status,
)
from hub.errors import Rejected, Transient
from tests.adapters.test_national_portal_sim import contract_errors

USER, PASSWORD = next(iter(ACCOUNTS.items()))
PORTAL_ID = "000.00.00.G22:dvcqg"


def portal_system(url: str, **options: Any) -> System:
    return System(
        id=PORTAL_ID,
        name="Cổng Dịch vụ công quốc gia",
        kind="national_portal",
        endpoint=url,
        api_key=None,
        may_send=(),
        may_receive=("vn.lgsp.dossier.*",),
        retry=RetryPolicy(),
        timeout=5.0,
        options=MappingProxyType(
            {"madonvi": "000.00.00.H29", "username": USER, "password": PASSWORD, "batch": 50}
            | options
        ),
    )


def dossier_event(
    code: str = "000.00.12.H29-261123-0001",
    sequence: int = 1,
    status: str = "received",
    procedure: str = "2.000488",
) -> dict[str, Any]:
    kind = {"received": "received", "completed": "completed"}.get(status, "status_changed")
    data = {
        "dossier_code": code,
        "procedure_code": procedure,
        "procedure_name": "Đăng ký khai sinh",
        "field_code": "HO_TICH",
        "agency": {"code": "000.00.12.H29", "name": "Sở Tư pháp"},
        "level": "province",
        "received_at": "2026-11-23T01:15:00+00:00",
        "appointment_at": "2026-11-30T17:00:00+07:00",
        "status": status,
        "applicant": {
            "kind": "citizen",
            "name": "Nguyễn Văn An",
            "id_number": "079123456789",
            "phone": "0912345612",
        },
        "fees": [{"name": "Lệ phí", "amount": 8000, "paid_at": "2026-11-23T08:20:00+07:00"}],
        "sequence": sequence,
        "changed_at": "2026-11-23T08:15:00+07:00",
    }
    return {
        "specversion": "1.0",
        "id": f"dossier:{code}:{sequence}",
        "source": "000.00.12.H29:motcua",
        "type": f"vn.lgsp.dossier.{kind}.v1",
        "data": data,
    }


def items(*events: Mapping[str, Any]) -> list[tuple[bytes, Mapping[str, Any]]]:
    return [(orjson.dumps(e), e) for e in events]


def run_batch(
    connector: NationalPortalConnector, events: Sequence[Mapping[str, Any]], target: System
) -> Outcomes:
    async def go() -> Outcomes:
        try:
            return await connector.deliver_batch(items(*events), target)
        finally:
            await connector.close()

    return asyncio.run(go())


@pytest.fixture
def portal() -> Iterator[NationalPortal]:
    with NationalPortal() as running:
        yield running


# Mapping ----------------------------------------------------------------------------------


def test_the_status_mapping_is_the_yaml_file() -> None:
    assert PORTAL_STATUS == {
        "received": 2,
        "processing": 4,
        "supplement_requested": 5,
        "awaiting_payment": 6,
        "completed": 9,
        "returned": 10,
        "cancelled": 7,
        "rejected": 3,
    }
    assert portal_status("returned") == "10"
    with pytest.raises(Rejected, match=r"'archived'.*portal_status\.yaml"):
        portal_status("archived")


def test_a_mapping_file_missing_a_status_stops_loading(tmp_path: Path) -> None:
    bad = tmp_path / "portal_status.yaml"
    bad.write_text("statuses: {received: 2, processing: 4}\n", "utf-8")
    with pytest.raises(ValueError, match="no TrangThaiHoSo for"):
        load_statuses(bad)
    bad.write_text("statuses: {received: 11}\n", "utf-8")
    with pytest.raises(ValueError, match=r"1\.\.10"):
        load_statuses(bad)


def test_an_item_has_the_portals_fields_and_vietnam_dates() -> None:
    item = portal_item(dossier_event(status="processing", sequence=2))
    assert item["MaHoSo"] == "000.00.12.H29-261123-0001" and item["TrangThaiHoSo"] == "4"
    assert item["NgayTiepNhan"] == "20261123081500"  # 01:15 UTC is 08:15 in Vietnam
    assert item["NgayHenTra"] == "20261130170000"
    assert item["ChuHoSo"] == "Nguyễn Văn An" and item["LoaiDoiTuong"] == "1"
    assert item["MaDoiTuong"] == "079123456789" and "Email" not in item
    assert item["DonViXuLy"] == "000.00.12.H29" and item["SoThuTuCapNhat"] == 2
    assert item["DanhSachLePhi"] == [
        {"TenPhiLePhi": "Lệ phí", "MucPhi": 8000, "NgayNop": "20261123082000"}
    ]
    assert contract_errors("Dossier", item) == []
    assert portal_date("2026-12-31T20:00:00Z") == "20270101030000"


# Delivery ---------------------------------------------------------------------------------


def test_a_batch_of_five_is_delivered_in_one_call(portal: NationalPortal) -> None:
    connector = NationalPortalConnector()
    assert isinstance(connector, BatchConnector)
    events = [dossier_event(f"H29-{n:04d}") for n in range(5)]
    results = run_batch(connector, events, portal_system(portal.url))
    assert all(isinstance(r, Receipt) for r in results), results
    assert [r.extra["dossier_code"] for r in results if isinstance(r, Receipt)] == [
        f"H29-{n:04d}" for n in range(5)
    ]
    assert sorted(portal.received()) == [f"H29-{n:04d}" for n in range(5)]
    assert portal.stats()["sync_requests"] == 1 and connector.logins == 1


def test_two_items_failing_for_now_are_transient_the_others_delivered(
    portal: NationalPortal,
) -> None:
    portal.fail_items(2)
    events = [dossier_event(f"H29-{n:04d}") for n in range(5)]
    results = run_batch(NationalPortalConnector(), events, portal_system(portal.url))
    assert [type(r).__name__ for r in results] == ["Transient"] * 2 + ["Receipt"] * 3
    assert "error_code 99" in str(results[0])
    assert sorted(portal.received()) == [f"H29-{n:04d}" for n in (2, 3, 4)]


def test_an_unknown_procedure_is_rejected_with_the_portals_reason_until_added(
    portal: NationalPortal,
) -> None:
    target = portal_system(portal.url)
    events = [dossier_event("H29-0001"), dossier_event("H29-0002", procedure="1.999999")]
    first, second = run_batch(NationalPortalConnector(), events, target)
    assert isinstance(first, Receipt)
    assert isinstance(second, Rejected)
    assert "error_code 03" in second.detail and "1.999999" in second.detail
    assert "H29-0002" in second.detail
    portal.add_procedure("1.999999")
    (again,) = run_batch(NationalPortalConnector(), events[1:], target)
    assert isinstance(again, Receipt)
    assert portal.received()["H29-0002"]["statuses"] == [2]


def test_an_unmappable_event_is_rejected_alone(portal: NationalPortal) -> None:
    odd = dossier_event("H29-0002")
    odd["data"] = odd["data"] | {"status": "archived"}
    results = run_batch(
        NationalPortalConnector(), [dossier_event("H29-0001"), odd], portal_system(portal.url)
    )
    assert isinstance(results[0], Receipt)
    assert isinstance(results[1], Rejected) and "archived" in results[1].detail
    assert list(portal.received()) == ["H29-0001"]


def test_rate_limiting_throttles_the_whole_batch(portal: NationalPortal) -> None:
    connector = NationalPortalConnector()
    target = portal_system(portal.url)
    run_batch(connector, [dossier_event("H29-0000")], target)  # logged in
    portal.rate_limit(1, retry_after=7)
    results = run_batch(connector, [dossier_event(f"H29-{n:04d}") for n in (1, 2)], target)
    assert all(isinstance(r, Transient) for r in results)
    assert all(r.throttle and r.retry_after == 7.0 for r in results if isinstance(r, Transient))
    portal.rate_limit(1, retry_after=3)
    with pytest.raises(Transient) as raised:
        asyncio.run(connector.deliver(b"", dossier_event("H29-0003"), target))
    assert raised.value.throttle and raised.value.retry_after == 3.0


def test_an_unavailable_portal_is_transient(portal: NationalPortal) -> None:
    portal.fail_requests(1, retry_after=5)
    (result,) = run_batch(NationalPortalConnector(), [dossier_event()], portal_system(portal.url))
    assert isinstance(result, Transient) and not result.throttle and result.retry_after == 5.0
    with NationalPortal() as gone:
        url = gone.url
    (result,) = run_batch(NationalPortalConnector(), [dossier_event()], portal_system(url))
    assert isinstance(result, Transient)


def test_an_expired_session_logs_in_again_once(portal: NationalPortal) -> None:
    connector = NationalPortalConnector()
    target = portal_system(portal.url)

    async def go() -> list[Receipt]:
        receipts = [await connector.deliver(b"", dossier_event("H29-0001"), target)]
        receipts.append(await connector.deliver(b"", dossier_event("H29-0002"), target))
        portal.expire_sessions()
        receipts.append(await connector.deliver(b"", dossier_event("H29-0003"), target))
        await connector.close()
        return receipts

    assert len(asyncio.run(go())) == 3
    assert connector.logins == 2
    assert portal.stats()["session_refused"] == 1 and len(portal.received()) == 3


def test_a_wrong_password_is_rejected(portal: NationalPortal) -> None:
    target = portal_system(portal.url, password="sai-mat-khau")
    (result,) = run_batch(NationalPortalConnector(), [dossier_event()], target)
    assert isinstance(result, Rejected) and "login refused" in result.detail


def test_credentials_come_from_the_environment(
    portal: NationalPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVCQG_USER", USER)
    monkeypatch.setenv("DVCQG_PASSWORD", PASSWORD)
    target = portal_system(portal.url, username="env:DVCQG_USER", password="env:DVCQG_PASSWORD")
    (result,) = run_batch(NationalPortalConnector(), [dossier_event()], target)
    assert isinstance(result, Receipt)
    unset = portal_system(portal.url, password="env:DVCQG_UNSET_PASSWORD")
    (result,) = run_batch(NationalPortalConnector(), [dossier_event()], unset)
    assert isinstance(result, Rejected) and "DVCQG_UNSET_PASSWORD" in result.detail


def test_an_older_update_after_a_newer_one_shows_as_a_violation(portal: NationalPortal) -> None:
    target = portal_system(portal.url)
    events = [
        dossier_event("H29-0001", 1),
        dossier_event("H29-0001", 3, "completed"),
        dossier_event("H29-0001", 2, "processing"),
        dossier_event("H29-0001", 3, "completed"),
    ]
    results = run_batch(NationalPortalConnector(), events, target)
    assert all(isinstance(r, Receipt) for r in results)
    seen = portal.received()["H29-0001"]
    assert seen["statuses"] == [2, 9, 4] and seen["repeats"] == 1 and seen["TrangThaiHoSo"] == "9"
    assert [(v["SoThuTuCapNhat"], v["after"]) for v in portal.violations()] == [(2, 3)]


def test_encode_builds_the_dongbohoso_call(portal: NationalPortal) -> None:
    request = NationalPortalConnector().encode(b"", dossier_event(), portal_system(portal.url))
    body = orjson.loads(request.body)
    assert request.url == f"{portal.url}/api/dongbohoso"
    assert body["service"] == "DongBoHoSoMC" and body["isUpdating"] == "False"
    assert body["madonvi"] == "000.00.00.H29" and len(body["data"]) == 1
    assert contract_errors("SyncRequest", body) == []
