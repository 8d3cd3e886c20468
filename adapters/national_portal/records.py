"""The simulated National Public Service Portal's records: sessions, catalogue, dossiers.

No HTTP here: `Records` is what adapters/national_portal/server.py serves. It
is not thread-safe on its own; the server holds its lock around every call.

Order check: every DongBoHoSoMC item carries the one-stop system's change
number (`SoThuTuCapNhat`). The portal keeps, per dossier, the numbers it has
seen: the same number again is a repeat (counted, answered "00", nothing
changes); a number lower than the highest seen is an out-of-order arrival,
recorded as a violation (answered "00" all the same, as a real portal would
take it; the dossier's current state stays the newest).
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

VN = timezone(timedelta(hours=7))
OK, INVALID, UNKNOWN_PROCEDURE, NOT_FOUND, TEMPORARY = "00", "02", "03", "04", "99"
SESSION_EXPIRED = "-1"
CATALOGUE = {
    "1.001612": "Đăng ký thành lập hộ kinh doanh",
    "1.004227": "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
    "2.000488": "Đăng ký khai sinh",
    "1.001193": "Đăng ký kết hôn",
    "2.001823": "Cấp giấy phép lái xe",
    "1.000105": "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
    "1.003003": "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất",
}
_DATE = re.compile(r"^\d{14}$")
DATES = ("NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy", "ThoiDiemCapNhat")
PROGRESS_REQUIRED = ("MaHoSo", "NoiDungXuLy", "ThoiDiemXuLy")


class PortalError(Exception):
    """A whole-request error answer: HTTP status, error_code and message (in Vietnamese)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error_code": self.code, "message": self.message}


def now() -> str:
    """The portal's clock as it writes dates: yyyyMMddHHmmss, Vietnam time."""
    return datetime.now(VN).strftime("%Y%m%d%H%M%S")


@dataclass
class Dossier:
    """What the portal holds of one dossier."""

    code: str
    statuses: list[int] = field(default_factory=list)  # TrangThaiHoSo in arrival order
    sequences: list[int | None] = field(default_factory=list)  # SoThuTuCapNhat, same order
    repeats: int = 0
    violations: int = 0
    current: dict[str, Any] = field(default_factory=dict)  # the newest item by sequence
    progress: list[dict[str, Any]] = field(default_factory=list)  # CapNhatTienDoHoSoMC items

    def as_json(self) -> dict[str, Any]:
        return {
            "MaHoSo": self.code,
            "statuses": list(self.statuses),
            "sequences": list(self.sequences),
            "repeats": self.repeats,
            "violations": self.violations,
            "TrangThaiHoSo": self.current.get("TrangThaiHoSo"),
            "progress": len(self.progress),
        }


class Records:
    """The portal's state: accounts and sessions, the procedure catalogue, dossiers."""

    def __init__(self, accounts: Mapping[str, str], session_ttl: float = 1800.0) -> None:
        self.accounts = dict(accounts)
        self.session_ttl = session_ttl
        self.sessions: dict[str, float] = {}  # token -> monotonic expiry
        self.catalogue = dict(CATALOGUE)
        self.dossiers: dict[str, Dossier] = {}
        self.violations: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.fail_items = 0  # the next N items answer TEMPORARY

    # Sessions ----------------------------------------------------------------------------

    def login(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("madonvi"):
            raise PortalError(400, INVALID, "Thiếu username, password hoặc madonvi")
        user, password = body.get("username"), body.get("password")
        if not isinstance(user, str) or self.accounts.get(user) != password:
            self.counts["login_refused"] += 1
            raise PortalError(401, "01", "Sai tên đăng nhập hoặc mật khẩu")
        token = secrets.token_urlsafe(24)
        self.sessions[token] = time.monotonic() + self.session_ttl
        self.counts["logins"] += 1
        return {
            "error_code": OK,
            "message": "Đăng nhập thành công",
            "session": token,
            "expires_in": int(self.session_ttl),
        }

    def check_session(self, token: Any) -> None:
        """Raises PortalError (HTTP 200, error_code -1) for an unknown or expired session."""
        expiry = self.sessions.get(token) if isinstance(token, str) else None
        if expiry is None or expiry < time.monotonic():
            if isinstance(token, str):
                self.sessions.pop(token, None)
            self.counts["session_refused"] += 1
            raise PortalError(200, SESSION_EXPIRED, "Phiên làm việc không hợp lệ hoặc đã hết hạn")

    def expire_sessions(self) -> None:
        self.sessions.clear()

    # DongBoHoSoMC --------------------------------------------------------------------------

    def sync(self, data: list[Any]) -> list[dict[str, Any]]:
        """Take a batch of dossier items; one result per item, in order."""
        self.counts["sync_requests"] += 1
        return [self._sync_item(item) for item in data]

    def _sync_item(self, item: Any) -> dict[str, Any]:
        code = item.get("MaHoSo") if isinstance(item, dict) else None
        self.counts["items"] += 1
        if self.fail_items > 0:
            self.fail_items -= 1
            return self._result(code, TEMPORARY, "Lỗi hệ thống tạm thời, vui lòng đồng bộ lại")
        if problem := self._invalid(item):
            return self._result(code, INVALID, problem)
        if item["MaTTHC"] not in self.catalogue:
            message = f"Mã thủ tục {item['MaTTHC']} không có trong CSDL thủ tục hành chính"
            return self._result(code, UNKNOWN_PROCEDURE, message)
        return self._result(code, OK, self._record(item))

    def _invalid(self, item: Any) -> str | None:
        if not isinstance(item, dict):
            return "Mỗi hồ sơ phải là một đối tượng JSON"
        for name in ("MaHoSo", "MaTTHC", "ChuHoSo", "DonViXuLy"):
            if not isinstance(item.get(name), str) or not item[name]:
                return f"Thiếu trường {name}"
        if str(item.get("TrangThaiHoSo")) not in {str(n) for n in range(1, 11)}:
            return f"TrangThaiHoSo không hợp lệ: {item.get('TrangThaiHoSo')!r}"
        if str(item.get("LoaiDoiTuong", "1")) not in {"1", "2"}:
            return f"LoaiDoiTuong không hợp lệ: {item.get('LoaiDoiTuong')!r}"
        for name in DATES:
            value = item.get(name)
            if (value is not None or name in DATES[:2]) and not _DATE.match(str(value)):
                return f"{name} phải có dạng yyyyMMddHHmmss: {value!r}"
        sequence = item.get("SoThuTuCapNhat")
        if sequence is not None and (not isinstance(sequence, int) or sequence < 1):
            return f"SoThuTuCapNhat phải là số nguyên dương: {sequence!r}"
        return None

    def _record(self, item: dict[str, Any]) -> str:
        dossier = self.dossiers.setdefault(item["MaHoSo"], Dossier(item["MaHoSo"]))
        sequence, status = item.get("SoThuTuCapNhat"), int(item["TrangThaiHoSo"])
        if sequence is not None and sequence in dossier.sequences:
            dossier.repeats += 1
            self.counts["repeats"] += 1
            return "Hồ sơ đã được đồng bộ trước đó"
        dossier.statuses.append(status)
        dossier.sequences.append(sequence)
        newest = max((s for s in dossier.sequences[:-1] if s is not None), default=0)
        if sequence is not None and sequence < newest:
            dossier.violations += 1
            self.violations.append(
                {
                    "MaHoSo": dossier.code,
                    "SoThuTuCapNhat": sequence,
                    "after": newest,
                    "TrangThaiHoSo": status,
                    "at": now(),
                }
            )
            return "Đã nhận (cập nhật cũ hơn trạng thái hiện tại)"
        dossier.current = dict(item)
        return "Đồng bộ thành công"

    @staticmethod
    def _result(code: Any, error_code: str, message: str) -> dict[str, Any]:
        return {"MaHoSo": code, "error_code": error_code, "message": message}

    # CapNhatTienDoHoSoMC and TraCuuHoSo ------------------------------------------------------

    def progress(self, data: list[Any]) -> list[dict[str, Any]]:
        """Take progress items; one result per item."""
        results = []
        for item in data:
            code = item.get("MaHoSo") if isinstance(item, dict) else None
            if self.fail_items > 0:
                self.fail_items -= 1
                results.append(self._result(code, TEMPORARY, "Lỗi hệ thống tạm thời"))
            elif not isinstance(item, dict) or any(not item.get(n) for n in PROGRESS_REQUIRED):
                results.append(self._result(code, INVALID, f"Thiếu một trong {PROGRESS_REQUIRED}"))
            elif code not in self.dossiers:
                results.append(self._result(code, NOT_FOUND, f"Không tìm thấy hồ sơ {code}"))
            else:
                self.dossiers[code].progress.append(dict(item))
                results.append(self._result(code, OK, "Cập nhật tiến độ thành công"))
        return results

    def lookup(self, code: str) -> dict[str, Any]:
        dossier = self.dossiers.get(code)
        if dossier is None:
            raise PortalError(200, NOT_FOUND, f"Không tìm thấy hồ sơ {code}")
        history = {"LichSuTrangThai": dossier.statuses, "TienDo": dossier.progress}
        return {"error_code": OK, "data": dossier.current | history}

    def received(self) -> dict[str, dict[str, Any]]:
        return {code: d.as_json() for code, d in self.dossiers.items()}

    def stats(self) -> dict[str, Any]:
        return dict(self.counts) | {
            "dossiers": len(self.dossiers),
            "violations": len(self.violations),
            "procedures": len(self.catalogue),
        }
