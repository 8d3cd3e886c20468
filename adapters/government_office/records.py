"""The simulated Government Office's records: directives, their change log, what the city sent.

No HTTP here: `Records` is what adapters/government_office/server.py serves. It
is not thread-safe on its own; the server holds its lock around every call.

A directive (nhiệm vụ) is kept in the office's native shape (see the module
docstring of adapters/government_office/__init__.py). Every create, change and
revoke adds one version (`PhienBan`) and one entry to the change log, numbered
by `Seq` from 1 with no gaps: the log is the strict total order clients follow.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

VN = timezone(timedelta(hours=7))
NEW, CHANGED, REVOKED = "TAO_MOI", "DIEU_CHINH", "THU_HOI"
IN_PROGRESS, WITHDRAWN = "DANG_THUC_HIEN", "DA_THU_HOI"
CHANGEABLE = (
    "TenNhiemVu",
    "NoiDung",
    "SoKyHieu",
    "NgayVanBan",
    "CoQuanBanHanh",
    "MaVanBan",
    "CapGiao",
    "DonViChuTri",
    "DonViPhoiHop",
    "LoaiHan",
    "HanXuLy",
    "DinhKy",
    "DoKhan",
    "TepDinhKem",
)
REQUIRED = ("TenNhiemVu", "NoiDung", "SoKyHieu", "NgayVanBan", "DonViChuTri")
GOVERNMENT_OFFICE = {"MaDinhDanh": "000.00.00.G22", "TenDonVi": "Văn phòng Chính phủ"}
CITY = {"MaDinhDanh": "000.00.00.H29", "TenDonVi": "Ủy ban nhân dân Thành phố Hồ Chí Minh"}
PROGRESS_REQUIRED = (
    "MaNhiemVu",
    "MaBaoCao",
    "TyLeHoanThanh",
    "NoiDungBaoCao",
    "NgayBaoCao",
    "DonViBaoCao",
)
COMPLETION_REQUIRED = ("MaNhiemVu", "NgayHoanThanh", "KetQua", "DonViBaoCao", "DungHan")


class OfficeError(Exception):
    """An error answer: HTTP status, MaLoi (a code) and MoTaLoi (what is wrong, in Vietnamese)."""

    def __init__(self, status: int, code: str, desc: str) -> None:
        super().__init__(desc)
        self.status, self.code, self.desc = status, code, desc

    def body(self) -> dict[str, Any]:
        return {"ThanhCong": False, "MaLoi": self.code, "MoTaLoi": self.desc}


def now() -> str:
    """The office's clock, ISO 8601 in Vietnam time, to the second."""
    return datetime.now(VN).isoformat(timespec="seconds")


def sample(number: int) -> dict[str, Any]:
    """The fields of a plausible directive to the city, for `create` to start from."""
    return {
        "TenNhiemVu": "Đẩy nhanh tiến độ giải ngân vốn đầu tư công năm 2026",
        "NoiDung": (
            "Ủy ban nhân dân Thành phố Hồ Chí Minh chỉ đạo các sở, ngành rà soát, "
            "tháo gỡ vướng mắc và báo cáo kết quả giải ngân."
        ),
        "SoKyHieu": f"{number}/TB-VPCP",
        "NgayVanBan": "2026-11-20",
        "CoQuanBanHanh": dict(GOVERNMENT_OFFICE),
        "CapGiao": "TTg",
        "DonViChuTri": dict(CITY),
        "DonViPhoiHop": [{"MaDinhDanh": "000.00.00.G12", "TenDonVi": "Bộ Tài chính"}],
        "LoaiHan": "CO_THOI_HAN",
        "HanXuLy": "2026-12-31",
        "DinhKy": None,
        "DoKhan": 2,
        "TepDinhKem": [],
    }


@dataclass
class Receipt:
    """A progress report or completion as it first arrived, with its repeats counted."""

    order: int
    kind: str  # progress | completion
    message_id: str
    receipt_id: str  # MaTiepNhan
    directive_id: str
    body: dict[str, Any]
    at: str = field(default_factory=now)
    repeats: int = 0
    out_of_order: bool = False  # reported earlier than the directive's previous report

    def as_json(self) -> dict[str, Any]:
        return copy.deepcopy(self.__dict__)

    def answer(self) -> dict[str, Any]:
        """What the office answers the sender, the first time and for every repeat."""
        return {"ThanhCong": True, "MaTiepNhan": self.receipt_id, "LanNhan": self.repeats + 1}


class Records:
    """Directives, their change log and the reports received."""

    def __init__(self) -> None:
        self.directives: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.receipts: list[Receipt] = []
        self._by_message: dict[str, Receipt] = {}
        self._last_report: dict[str, datetime] = {}
        self._numbers = itertools.count(1)
        self.counts = {"changes_served": 0, "repeats": 0, "refused": 0, "down_refused": 0}

    def create(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """File a new directive (version 1) from `fields` over `sample` defaults."""
        number = next(self._numbers)
        directive = sample(number) | dict(copy.deepcopy(fields))
        directive_id = str(directive.setdefault("MaNhiemVu", f"NV-2026-{number:06d}"))
        if directive_id in self.directives:
            raise OfficeError(409, "DA_TON_TAI", f"Nhiệm vụ {directive_id} đã tồn tại")
        if missing := [k for k in REQUIRED if not directive.get(k)]:
            raise OfficeError(400, "THIEU_TRUONG", f"Thiếu trường: {', '.join(missing)}")
        stamp = now()
        directive.setdefault("NgayGiao", stamp)
        directive |= {"PhienBan": 1, "TrangThai": IN_PROGRESS, "NgayCapNhat": stamp}
        self.directives[directive_id] = directive
        return self._append(directive, NEW, [], None, stamp)

    def change(
        self, directive_id: str, fields: Mapping[str, Any], reason: str | None
    ) -> dict[str, Any]:
        """A new version with `fields` changed (deadline, content, units...)."""
        directive = self._live(directive_id)
        unknown = sorted(set(fields) - set(CHANGEABLE))
        if unknown:
            raise OfficeError(400, "TRUONG_KHONG_HOP_LE", f"Không sửa được: {', '.join(unknown)}")
        changed = [k for k in CHANGEABLE if k in fields and fields[k] != directive.get(k)]
        if not changed:
            raise OfficeError(400, "KHONG_THAY_DOI", "Không có trường nào thay đổi")
        stamp = now()
        directive |= copy.deepcopy(dict(fields))
        directive |= {"PhienBan": directive["PhienBan"] + 1, "NgayCapNhat": stamp}
        return self._append(directive, CHANGED, changed, reason, stamp)

    def revoke(self, directive_id: str, reason: str | None) -> dict[str, Any]:
        """Withdraw a directive: a last version with TrangThai DA_THU_HOI."""
        directive = self._live(directive_id)
        stamp = now()
        directive |= {
            "PhienBan": directive["PhienBan"] + 1,
            "TrangThai": WITHDRAWN,
            "NgayCapNhat": stamp,
        }
        return self._append(directive, REVOKED, [], reason, stamp)

    def _live(self, directive_id: str) -> dict[str, Any]:
        directive = self.directives.get(directive_id)
        if directive is None:
            raise OfficeError(404, "KHONG_TIM_THAY", f"Không tìm thấy nhiệm vụ {directive_id}")
        if directive["TrangThai"] == WITHDRAWN:
            raise OfficeError(409, "DA_THU_HOI", f"Nhiệm vụ {directive_id} đã bị thu hồi")
        return directive

    def _append(
        self, directive: dict[str, Any], kind: str, changed: list[str], reason: str | None, at: str
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "Seq": len(self.log) + 1,
            "MaNhiemVu": directive["MaNhiemVu"],
            "PhienBan": directive["PhienBan"],
            "LoaiThayDoi": kind,
            "TruongThayDoi": changed,
            "LyDo": reason,
            "ThoiDiem": at,
            "NhiemVu": copy.deepcopy(directive),
        }
        self.log.append(item)
        return copy.deepcopy(item)

    def changes(self, after: int, limit: int) -> dict[str, Any]:
        """The change log after Seq `after`, at most `limit` items, and the next cursor."""
        items = copy.deepcopy(self.log[max(after, 0) : max(after, 0) + limit])
        self.counts["changes_served"] += len(items)
        last = items[-1]["Seq"] if items else max(after, 0)
        return {"DanhSach": items, "next": last, "ConNua": last < len(self.log)}

    def latest(self, directive_id: str | None) -> dict[str, Any]:
        """The last change item of a directive (of any, when None)."""
        for item in reversed(self.log):
            if directive_id is None or item["MaNhiemVu"] == directive_id:
                return copy.deepcopy(item)
        raise OfficeError(404, "KHONG_TIM_THAY", f"Không tìm thấy nhiệm vụ {directive_id}")

    def receive(self, kind: str, message_id: str, body: Any) -> Receipt:
        """Take a report, or count a repeat of its message id. Raises OfficeError."""
        if first := self._by_message.get(message_id):
            first.repeats += 1
            self.counts["repeats"] += 1
            return first
        directive_id = self._check(kind, body)
        receipt = Receipt(
            order=len(self.receipts) + 1,
            kind=kind,
            message_id=message_id,
            receipt_id=f"TN-{len(self.receipts) + 1:06d}",
            directive_id=directive_id,
            body=body,
        )
        stamp = body["NgayBaoCao" if kind == "progress" else "NgayHoanThanh"]
        when = _parse_time(stamp)
        previous = self._last_report.get(directive_id)
        receipt.out_of_order = previous is not None and when < previous
        self._last_report[directive_id] = max(when, previous or when)
        self.receipts.append(receipt)
        self._by_message[message_id] = receipt
        return receipt

    def _check(self, kind: str, body: Any) -> str:
        """The directive a report is about, once the report is well-formed."""
        if not isinstance(body, dict):
            raise OfficeError(400, "DU_LIEU_KHONG_HOP_LE", "Nội dung phải là một đối tượng JSON")
        required = PROGRESS_REQUIRED if kind == "progress" else COMPLETION_REQUIRED
        if missing := [k for k in required if body.get(k) in (None, "")]:
            raise OfficeError(400, "THIEU_TRUONG", f"Thiếu trường: {', '.join(missing)}")
        unit = body["DonViBaoCao"]
        if not isinstance(unit, dict) or not unit.get("MaDinhDanh"):
            raise OfficeError(400, "DU_LIEU_KHONG_HOP_LE", "DonViBaoCao thiếu MaDinhDanh")
        percent = body.get("TyLeHoanThanh", 0)
        if kind == "progress" and (not isinstance(percent, int) or not 0 <= percent <= 100):
            raise OfficeError(400, "DU_LIEU_KHONG_HOP_LE", "TyLeHoanThanh phải từ 0 đến 100")
        if kind == "completion" and not isinstance(body["DungHan"], bool):
            raise OfficeError(400, "DU_LIEU_KHONG_HOP_LE", "DungHan phải là true hoặc false")
        stamp = body["NgayBaoCao" if kind == "progress" else "NgayHoanThanh"]
        try:
            _parse_time(stamp)
        except (TypeError, ValueError) as exc:
            raise OfficeError(400, "DU_LIEU_KHONG_HOP_LE", f"Thời điểm sai: {stamp!r}") from exc
        directive_id = str(body["MaNhiemVu"])
        self._live(directive_id)
        return directive_id

    def stats(self) -> dict[str, Any]:
        """Counters for `GET /_gov/stats`."""
        kinds = [r.kind for r in self.receipts]
        return {
            "directives": len(self.directives),
            "revoked": sum(d["TrangThai"] == WITHDRAWN for d in self.directives.values()),
            "seq": len(self.log),
            "progress": kinds.count("progress"),
            "completion": kinds.count("completion"),
            "out_of_order": sum(r.out_of_order for r in self.receipts),
            **self.counts,
        }


def _parse_time(value: Any) -> datetime:
    when = datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=VN)
