"""The Government Office's native JSON <-> the hub's canonical directive events.

Native shapes: adapters/government_office/__init__.py and
contracts/government-office.openapi.yaml. Canonical: hub/schemas/directive.*.json.

    native change item (LoaiThayDoi)    canonical type
    TAO_MOI                             vn.lgsp.directive.assigned.v1   data = directive
    DIEU_CHINH (+ TruongThayDoi)        vn.lgsp.directive.updated.v1    {directive, changed, reason}
    THU_HOI                             vn.lgsp.directive.revoked.v1    {directive_id, version,
                                                                         revoked_at, reason}

Human text (titles, content, names, reasons) is normalised to NFC, because
Vietnamese typed on some systems arrives decomposed (NFD) and the hub compares
and searches NFC; identifiers, codes and URLs are passed as they are.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from hub.config import System
from hub.errors import Rejected

ASSIGNED = "vn.lgsp.directive.assigned.v1"
UPDATED = "vn.lgsp.directive.updated.v1"
REVOKED = "vn.lgsp.directive.revoked.v1"
PROGRESS = "vn.lgsp.directive.progress.v1"
COMPLETED = "vn.lgsp.directive.completed.v1"

AUTHORITY = {"CP": "government", "TTg": "prime_minister", "VPCP": "government_office"}
# Hỏa tốc (4) has no canonical level of its own: it is the most urgent there is.
PRIORITY = {1: "normal", 2: "urgent", 3: "very_urgent", 4: "very_urgent"}
PERIOD = {"TUAN": "week", "THANG": "month", "QUY": "quarter", "NAM": "year"}
# Native field -> the canonical field it changes (updated.v1 `changed`), in canonical order.
CHANGED = {
    "TenNhiemVu": "title",
    "NoiDung": "content",
    "LoaiHan": "deadline",
    "HanXuLy": "deadline",
    "DinhKy": "deadline",
    "DonViChuTri": "lead_unit",
    "DonViPhoiHop": "coordinating_units",
    "DoKhan": "priority",
    "TepDinhKem": "attachments",
    "SoKyHieu": "source_document",
    "NgayVanBan": "source_document",
    "CoQuanBanHanh": "source_document",
    "MaVanBan": "source_document",
    "CapGiao": "authority",
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")


def event_id_for(directive_id: str, version: int) -> str:
    """`gov:<directive id>:v<version>`, the id hashed when it has other characters."""
    if not _SAFE_ID.match(directive_id):
        directive_id = "sha256:" + hashlib.sha256(directive_id.encode("utf-8")).hexdigest()
    return f"gov:{directive_id}:v{version}"


def event_for(item: Any, sender: System) -> dict[str, Any]:
    """The CloudEvent of one native change item (polled or pushed). Raises Rejected."""
    kind, data = to_event_data(item)
    directive_id = str(item["MaNhiemVu"])
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id_for(directive_id, item["PhienBan"]),
        "source": sender.id,
        "type": kind,
        "datacontenttype": "application/json",
        "subject": directive_id[:256],
        "data": data,
    }
    if when := item.get("ThoiDiem") or item["NhiemVu"].get("NgayCapNhat"):
        event["time"] = when
    return event


def to_event_data(item: Any) -> tuple[str, dict[str, Any]]:
    """A native change item -> (canonical type, data). Raises Rejected when it cannot map."""
    try:
        return _to_event_data(item)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        ident = item.get("MaNhiemVu") if isinstance(item, dict) else None
        raise Rejected(f"directive {ident}: cannot map the change: {exc!r}") from exc


def _to_event_data(item: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    native, kind = item["NhiemVu"], item["LoaiThayDoi"]
    if native["MaNhiemVu"] != item["MaNhiemVu"] or native["PhienBan"] != item["PhienBan"]:
        raise ValueError("MaNhiemVu/PhienBan of the change and of NhiemVu differ")
    reason = _text(item.get("LyDo"))
    if kind == "THU_HOI":
        data: dict[str, Any] = {
            "directive_id": native["MaNhiemVu"],
            "version": _version(item["PhienBan"]),
            "revoked_at": item.get("ThoiDiem") or native["NgayCapNhat"],
        }
        return REVOKED, data | ({"reason": reason} if reason else {})
    directive = directive_from(native)
    if kind == "TAO_MOI":
        return ASSIGNED, directive
    if kind != "DIEU_CHINH":
        raise ValueError(f"unknown LoaiThayDoi {kind!r}")
    fields = list(item["TruongThayDoi"])
    if unknown := [f for f in fields if f not in CHANGED]:
        raise ValueError(f"unknown TruongThayDoi {unknown}")
    changed = [c for c in dict.fromkeys(CHANGED.values()) if c in {CHANGED[f] for f in fields}]
    if not changed:
        raise ValueError("DIEU_CHINH without TruongThayDoi")
    data = {"directive": directive, "changed": changed}
    return UPDATED, data | ({"reason": reason} if reason else {})


def directive_from(native: Mapping[str, Any]) -> dict[str, Any]:
    """A native `NhiemVu` -> the canonical directive (directive.defs.json#/$defs/directive)."""
    if (priority := PRIORITY.get(native["DoKhan"])) is None:
        raise ValueError(f"unknown DoKhan {native['DoKhan']!r}")
    if (authority := AUTHORITY.get(native["CapGiao"])) is None:
        raise ValueError(f"unknown CapGiao {native['CapGiao']!r}")
    source: dict[str, Any] = {
        "number": _text(native["SoKyHieu"]),
        "date": native["NgayVanBan"],
        "issuer": unit_from(native["CoQuanBanHanh"]),
    }
    if native.get("MaVanBan"):
        source["document_id"] = native["MaVanBan"]
    directive: dict[str, Any] = {
        "directive_id": native["MaNhiemVu"],
        "version": _version(native["PhienBan"]),
        "title": _text(native["TenNhiemVu"]),
        "content": _text(native["NoiDung"]),
        "source_document": source,
        "authority": authority,
        "lead_unit": unit_from(native["DonViChuTri"]),
        "coordinating_units": [unit_from(u) for u in native.get("DonViPhoiHop") or []],
        "deadline": _deadline(native),
        "priority": priority,
        "attachments": [_attachment(a) for a in native.get("TepDinhKem") or []],
    }
    if native.get("NgayGiao"):
        directive["assigned_at"] = native["NgayGiao"]
    return directive


def _deadline(native: Mapping[str, Any]) -> dict[str, Any]:
    kind = native.get("LoaiHan") or ("CO_THOI_HAN" if native.get("HanXuLy") else "KHONG_THOI_HAN")
    if kind == "CO_THOI_HAN":
        return {"kind": "date", "date": native["HanXuLy"]}
    if kind == "KHONG_THOI_HAN":
        return {"kind": "none"}
    if kind != "DINH_KY":
        raise ValueError(f"unknown LoaiHan {kind!r}")
    period = native["DinhKy"]
    deadline = {"kind": "recurring", "every": PERIOD[period["Ky"]], "day": period["NgayTrongKy"]}
    return deadline | ({"until": period["DenNgay"]} if period.get("DenNgay") else {})


def unit_from(native: Mapping[str, Any]) -> dict[str, Any]:
    """`{"MaDinhDanh", "TenDonVi"}` -> `{"code", "name"}`."""
    unit = {"code": native["MaDinhDanh"]}
    return unit | ({"name": _text(native["TenDonVi"])} if native.get("TenDonVi") else {})


def unit_native(unit: Mapping[str, Any]) -> dict[str, Any]:
    """`{"code", "name"}` -> `{"MaDinhDanh", "TenDonVi"}`."""
    return {"MaDinhDanh": unit["code"], "TenDonVi": _text(unit.get("name")) or None}


_ATTACHMENT = {
    "TenTep": "name",
    "DuongDan": "url",
    "KichThuoc": "size",
    "MaBam": "sha256",
    "LoaiTep": "content_type",
}


def _attachment(native: Mapping[str, Any]) -> dict[str, Any]:
    found = {c: native[n] for n, c in _ATTACHMENT.items() if native.get(n) is not None}
    return found | {"name": _text(native["TenTep"])}


def _attachment_native(attachment: Mapping[str, Any]) -> dict[str, Any]:
    found = {n: attachment[c] for n, c in _ATTACHMENT.items() if c in attachment}
    return found | {"TenTep": _text(attachment["name"])}


def _person_native(person: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if person is None:
        return None
    native = {"MaCanBo": person.get("id"), "HoTen": _text(person["name"])}
    native["ChucVu"] = _text(person.get("title")) or None
    native["DonVi"] = unit_native(person["unit"]) if "unit" in person else None
    return native


def progress_native(event: Mapping[str, Any]) -> dict[str, Any]:
    """A `directive.progress.v1` event -> the body of `POST /api/progress`. Raises Rejected."""
    data = _data(event, PROGRESS)
    try:
        return {
            "MaNhiemVu": data["directive_id"],
            "MaBaoCao": data["report_id"],
            "TyLeHoanThanh": data["percent"],
            "NoiDungBaoCao": _text(data["text"]),
            "NgayBaoCao": data["reported_at"],
            "DonViBaoCao": unit_native(data["unit"]),
            "NguoiBaoCao": _person_native(data.get("reporter")),
            "TepDinhKem": [_attachment_native(a) for a in data.get("attachments", [])],
        }
    except (KeyError, TypeError) as exc:
        raise Rejected(f"event {event.get('id')}: not a valid progress report: {exc!r}") from exc


def completion_native(event: Mapping[str, Any]) -> dict[str, Any]:
    """A `directive.completed.v1` event -> the body of `POST /api/completion`. Raises Rejected."""
    data = _data(event, COMPLETED)
    try:
        return {
            "MaNhiemVu": data["directive_id"],
            "NgayHoanThanh": data["completed_at"],
            "KetQua": _text(data["summary"]),
            "DonViBaoCao": unit_native(data["unit"]),
            "NguoiBaoCao": _person_native(data.get("reporter")),
            "DungHan": data["on_time"],
            "TepDinhKem": [_attachment_native(a) for a in data.get("attachments", [])],
        }
    except (KeyError, TypeError) as exc:
        raise Rejected(f"event {event.get('id')}: not a valid completion: {exc!r}") from exc


def _data(event: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    data = event.get("data")
    if event.get("type") != kind or not isinstance(data, Mapping):
        raise Rejected(
            f"event {event.get('id')}: expected {kind} with data, got {event.get('type')}"
        )
    return data


def _version(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"PhienBan must be a positive integer, not {value!r}")
    return value


def _text(value: Any) -> Any:
    """NFC of a string; anything else as it is."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value
