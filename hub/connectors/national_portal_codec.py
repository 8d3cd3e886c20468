"""Canonical dossier events -> the National Public Service Portal's DongBoHoSoMC items.

Canonical: hub/schemas/dossier.*.json. Native: contracts/national-portal.openapi.yaml
(the portal's field names, docs/reference STANDARDS "National Public Service
Portal"). The local status becomes `TrangThaiHoSo` through
hub/connectors/portal_status.yaml, loaded at import; dates become
`yyyyMMddHHmmss` in Vietnam time whatever offset they came with.

    canonical                      DongBoHoSoMC item
    dossier_code                   MaHoSo
    procedure_code / _name         MaTTHC / TenTTHC
    field_code                     MaLinhVuc
    applicant.name / kind          ChuHoSo / LoaiDoiTuong ("1" citizen, "2" business)
    applicant.id_number            MaDoiTuong
    applicant.phone / email        SoDienThoai / Email
    summary                        TrichYeuHoSo
    received_at / appointment_at   NgayTiepNhan / NgayHenTra
    completed_at / returned_at     NgayKetThucXuLy / NgayTra
    status                         TrangThaiHoSo (portal_status.yaml)
    agency.code / name             DonViXuLy / TenDonViXuLy
    fees                           DanhSachLePhi [{TenPhiLePhi, MucPhi, NgayNop}]
    note                           GhiChu
    sequence / changed_at          SoThuTuCapNhat / ThoiDiemCapNhat (the hub's extension:
                                   the portal keeps only the newest update of a dossier)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from hub.errors import Rejected

VN = timezone(timedelta(hours=7))
PREFIX = "vn.lgsp.dossier."
STATUS_FILE = Path(__file__).with_name("portal_status.yaml")
LOCAL_STATUSES = (
    "received",
    "processing",
    "supplement_requested",
    "awaiting_payment",
    "completed",
    "returned",
    "cancelled",
    "rejected",
)
APPLICANT_KIND = {"citizen": "1", "business": "2"}


def load_statuses(path: Path = STATUS_FILE) -> dict[str, int]:
    """The local status -> TrangThaiHoSo mapping of a YAML file. Raises ValueError when wrong."""
    raw = yaml.safe_load(path.read_text("utf-8"))
    statuses = raw.get("statuses") if isinstance(raw, dict) else None
    if not isinstance(statuses, dict):
        raise ValueError(f"{path}: no `statuses:` mapping")
    for local, code in statuses.items():
        if not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= 10:
            raise ValueError(f"{path}: {local}: TrangThaiHoSo must be 1..10, not {code!r}")
    if missing := [s for s in LOCAL_STATUSES if s not in statuses]:
        raise ValueError(f"{path}: no TrangThaiHoSo for {missing}")
    return {str(k): v for k, v in statuses.items()}


PORTAL_STATUS = load_statuses()


def portal_status(status: Any, statuses: Mapping[str, int] = PORTAL_STATUS) -> str:
    """The portal's TrangThaiHoSo (a string, as the portal writes it) of a local status.

    Raises:
        Rejected: the status is not in hub/connectors/portal_status.yaml.
    """
    code = statuses.get(status) if isinstance(status, str) else None
    if code is None:
        raise Rejected(
            f"dossier status {status!r} has no TrangThaiHoSo in {STATUS_FILE.name}; "
            f"known: {sorted(statuses)}"
        )
    return str(code)


def portal_date(value: str) -> str:
    """ISO 8601 -> `yyyyMMddHHmmss` in Vietnam time."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VN)
    return parsed.astimezone(VN).strftime("%Y%m%d%H%M%S")


def portal_item(event: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical dossier event -> its DongBoHoSoMC item. Raises Rejected."""
    kind = event.get("type")
    data = event.get("data")
    if not isinstance(kind, str) or not kind.startswith(PREFIX) or not isinstance(data, Mapping):
        raise Rejected(
            f"event {event.get('id')}: the national portal takes dossier events, not {kind}"
        )
    status = portal_status(data.get("status"))
    try:
        return _item(data, status)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Rejected(f"event {event.get('id')}: not a valid dossier: {exc!r}") from exc


def _item(data: Mapping[str, Any], status: str) -> dict[str, Any]:
    applicant, agency = data["applicant"], data["agency"]
    item: dict[str, Any] = {
        "MaHoSo": data["dossier_code"],
        "MaTTHC": data["procedure_code"],
        "TenTTHC": data.get("procedure_name"),
        "MaLinhVuc": data.get("field_code"),
        "ChuHoSo": applicant["name"],
        "LoaiDoiTuong": APPLICANT_KIND[applicant["kind"]],
        "MaDoiTuong": applicant.get("id_number"),
        "SoDienThoai": applicant.get("phone"),
        "Email": applicant.get("email"),
        "TrichYeuHoSo": data.get("summary"),
        "NgayTiepNhan": portal_date(data["received_at"]),
        "NgayHenTra": portal_date(data["appointment_at"]),
        "TrangThaiHoSo": status,
        "NgayKetThucXuLy": _date(data.get("completed_at")),
        "NgayTra": _date(data.get("returned_at")),
        "DonViXuLy": agency["code"],
        "TenDonViXuLy": agency.get("name"),
        "GhiChu": data.get("note"),
        "SoThuTuCapNhat": data["sequence"],
        "ThoiDiemCapNhat": portal_date(data["changed_at"]),
    }
    if fees := data.get("fees"):
        item["DanhSachLePhi"] = [
            {"TenPhiLePhi": f["name"], "MucPhi": f["amount"], "NgayNop": _date(f.get("paid_at"))}
            for f in fees
        ]
    return {k: v for k, v in item.items() if v is not None}


def _date(value: Any) -> str | None:
    return portal_date(value) if isinstance(value, str) else None


def is_updating(items: list[dict[str, Any]]) -> str:
    """DongBoHoSoMC's `isUpdating`: "False" only when every item is a dossier's first receipt."""
    first = all(
        i["TrangThaiHoSo"] == portal_status("received") and i["SoThuTuCapNhat"] == 1 for i in items
    )
    return "False" if first else "True"
