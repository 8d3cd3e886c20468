"""The one-stop (một cửa) system's native dossier events -> the hub's canonical dossier events.

Native shape: adapters/one_stop.py and contracts/one-stop.openapi.yaml.
Canonical: hub/schemas/dossier.*.json (the dossier as it stands after the change).

    native TrangThai       canonical status           canonical type (vn.lgsp.dossier.*.v1)
    DA_TIEP_NHAN           received                   received
    DANG_XU_LY             processing                 status_changed
    CHO_THANH_TOAN         awaiting_payment           status_changed
    YEU_CAU_BO_SUNG        supplement_requested       supplement_requested
    DA_XU_LY               completed                  completed
    DA_TRA_KET_QUA         returned                   returned
    DA_HUY                 cancelled                  cancelled
    TU_CHOI                rejected                   cancelled

Personal data is minimised here, at the boundary: of `ChuHoSo` only the kind,
the name, the identity number, the phone and the email go on (what the national
portal needs); the address, birth date, gender and anything else are dropped.
`masked_applicant` hides what is kept for logs and the console.

Dates arrive as `dd/MM/yyyy HH:mm:ss` in Vietnam time (what one-stop systems
write) or ISO 8601; they leave as ISO 8601 with +07:00 when no offset was given.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from hub.config import System
from hub.errors import Rejected

VN = timezone(timedelta(hours=7))
PREFIX = "vn.lgsp.dossier."
STATUS = {
    "DA_TIEP_NHAN": "received",
    "DANG_XU_LY": "processing",
    "CHO_THANH_TOAN": "awaiting_payment",
    "YEU_CAU_BO_SUNG": "supplement_requested",
    "DA_XU_LY": "completed",
    "DA_TRA_KET_QUA": "returned",
    "DA_HUY": "cancelled",
    "TU_CHOI": "rejected",
}
EVENT = {
    "received": "received",
    "processing": "status_changed",
    "awaiting_payment": "status_changed",
    "supplement_requested": "supplement_requested",
    "completed": "completed",
    "returned": "returned",
    "cancelled": "cancelled",
    "rejected": "cancelled",
}
LEVEL = {"TINH": "province", "HUYEN": "district", "XA": "commune"}
APPLICANT_KIND = {1: "citizen", 2: "business"}
_SAFE_CODE = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")
_NATIVE_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2})(?::(\d{2}))?$")
_PHONE_NOISE = re.compile(r"[.\-()]")


def event_type(status: str) -> str:
    """The canonical type of an event leaving the dossier in `status` (canonical)."""
    return f"{PREFIX}{EVENT[status]}.v1"


def event_id_for(dossier_code: str, sequence: int) -> str:
    """`dossier:<code>:<sequence>`, the code hashed when it has other characters."""
    if not _SAFE_CODE.match(dossier_code):
        dossier_code = "sha256:" + hashlib.sha256(dossier_code.encode("utf-8")).hexdigest()
    return f"dossier:{dossier_code}:{sequence}"


def event_for(item: Any, sender: System) -> dict[str, Any]:
    """The CloudEvent of one native dossier event. Raises Rejected when it cannot map."""
    try:
        data = dossier_from(item)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        code = item.get("MaHoSo") if isinstance(item, dict) else None
        raise Rejected(f"dossier {code}: cannot map the event: {exc!r}") from exc
    return {
        "specversion": "1.0",
        "id": event_id_for(data["dossier_code"], data["sequence"]),
        "source": sender.id,
        "type": event_type(data["status"]),
        "time": data["changed_at"],
        "datacontenttype": "application/json",
        "subject": data["dossier_code"][:256],
        "data": data,
    }


def dossier_from(native: Mapping[str, Any]) -> dict[str, Any]:
    """A native dossier event -> the canonical dossier (dossier.defs.json#/$defs/dossier)."""
    if (status := STATUS.get(native["TrangThai"])) is None:
        raise ValueError(f"unknown TrangThai {native['TrangThai']!r}")
    if (level := LEVEL.get(native["CapXuLy"])) is None:
        raise ValueError(f"unknown CapXuLy {native['CapXuLy']!r}")
    agency = native["CoQuanTiepNhan"]
    data: dict[str, Any] = {
        "dossier_code": _code(native["MaHoSo"], "MaHoSo"),
        "procedure_code": _code(native["MaTTHC"], "MaTTHC"),
        "agency": {"code": _code(agency["MaDinhDanh"], "MaDinhDanh")},
        "level": level,
        "received_at": when(native["NgayTiepNhan"]),
        "appointment_at": when(native["NgayHenTra"]),
        "status": status,
        "applicant": applicant_from(native["ChuHoSo"]),
        "sequence": _sequence(native["SoThuTuThayDoi"]),
        "changed_at": when(native["ThoiDiemThayDoi"]),
    }
    if agency.get("TenCoQuan"):
        data["agency"]["name"] = text(agency["TenCoQuan"])
    optional = {
        "procedure_name": text(native.get("TenTTHC")),
        "field_code": native.get("MaLinhVuc"),
        "completed_at": when(native["NgayKetThucXuLy"]) if native.get("NgayKetThucXuLy") else None,
        "returned_at": when(native["NgayTra"]) if native.get("NgayTra") else None,
        "summary": text(native.get("TrichYeu")),
        "note": text(native.get("GhiChu")),
    }
    data |= {k: v for k, v in optional.items() if v}
    if fees := native.get("LePhi"):
        data["fees"] = [_fee(f) for f in fees]
    if handler := _handler(native.get("CanBoXuLy")):
        data["handler"] = handler
    return data


def applicant_from(native: Mapping[str, Any]) -> dict[str, Any]:
    """`ChuHoSo` -> the minimised applicant: kind, name, id number, phone, email; nothing else."""
    kind = APPLICANT_KIND.get(native.get("LoaiDoiTuong", 1))
    if kind is None:
        raise ValueError(f"unknown LoaiDoiTuong {native.get('LoaiDoiTuong')!r}")
    applicant = {"kind": kind, "name": text(native["HoTen"]).strip()}
    if number := native.get("SoGiayTo"):
        applicant["id_number"] = str(number).replace(" ", "")
    if phone := native.get("SoDienThoai"):
        applicant["phone"] = _PHONE_NOISE.sub("", str(phone)).strip()
    if email := native.get("Email"):
        applicant["email"] = str(email).strip()
    return applicant


def when(value: Any) -> str:
    """A native date (`dd/MM/yyyy HH:mm[:ss]`, Vietnam time, or ISO 8601) -> ISO 8601."""
    if not isinstance(value, str):
        raise ValueError(f"a date must be a string, not {value!r}")
    if match := _NATIVE_DATE.match(value.strip()):
        day, month, year, hour, minute, second = match.groups()
        parsed = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=VN
        )
    else:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=VN)
    return parsed.isoformat(timespec="seconds")


def text(value: Any) -> Any:
    """NFC of a string (Vietnamese typed on some systems arrives decomposed); else as is."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _code(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
    return value.strip()


def _sequence(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"SoThuTuThayDoi must be a positive integer, not {value!r}")
    return value


def _fee(native: Mapping[str, Any]) -> dict[str, Any]:
    fee = {"name": text(native["TenPhiLePhi"]), "amount": int(native["SoTien"])}
    return fee | ({"paid_at": when(native["NgayNop"])} if native.get("NgayNop") else {})


def _handler(native: Any) -> dict[str, Any]:
    if not isinstance(native, Mapping):
        return {}
    names = {"HoTen": "name", "ChucDanh": "title", "PhongBan": "department"}
    return {c: text(native[n]) for n, c in names.items() if native.get(n)}


# Masking for logs and the console ---------------------------------------------------------


def mask(value: str, *, keep_start: int = 2, keep_end: int = 2) -> str:
    """`value` with all but its first `keep_start` and last `keep_end` characters as `*`.

    A value too short to hide anything that way keeps only its first character.
    """
    if len(value) <= keep_start + keep_end:
        return value[:1] + "*" * max(len(value) - 1, 0)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask_name(name: str) -> str:
    """`Nguyễn Văn An` -> `Nguyễn V*** A`: the family name, then initials."""
    words = unicodedata.normalize("NFC", name).split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0][:1] + "***"
    middle = [w[:1] + "***" for w in words[1:-1]]
    return " ".join([words[0], *middle, words[-1][:1]])


def mask_email(email: str) -> str:
    """`an.nguyen@example.vn` -> `a***@example.vn`."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else mask(email)


def masked_applicant(applicant: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical applicant as logs and the console show it (only its minimised fields).

    A business's name is public and shown whole; a citizen's is reduced to initials.
    """
    shown: dict[str, Any] = {"kind": applicant.get("kind")}
    if name := applicant.get("name"):
        shown["name"] = name if applicant.get("kind") == "business" else mask_name(name)
    if number := applicant.get("id_number"):
        shown["id_number"] = mask(number, keep_start=4, keep_end=2)
    if phone := applicant.get("phone"):
        shown["phone"] = mask(phone.replace(" ", ""))
    if email := applicant.get("email"):
        shown["email"] = mask_email(email)
    return shown
