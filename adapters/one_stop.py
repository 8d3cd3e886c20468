"""Reference one-stop system (hệ thống một cửa điện tử), simulated: it pushes dossier events.

The city's administrative-procedure system receives dossiers at the desk and
follows each to its result. On every change it pushes the dossier, as it
stands after the change, to the hub's `POST {hub}/api/v1/native` with
`Authorization: Bearer <key>` (contracts/one-stop.openapi.yaml); the hub's
mapping is hub/connectors/procedures_codec.py.

    streams = dossier_streams(100, seed=1)       # per dossier: its events, in order
    report = asyncio.run(push(hub_url, key, streams, senders=4))
    python -m adapters.one_stop --hub http://127.0.0.1:8000 --key K --dossiers 100

A dossier goes DA_TIEP_NHAN -> DANG_XU_LY -> (YEU_CAU_BO_SUNG -> DANG_XU_LY)
-> DA_XU_LY -> DA_TRA_KET_QUA, with `SoThuTuThayDoi` 1, 2, ... and plausible
working-hour times. A native event:

    {"MaHoSo": "000.00.12.H29-261123-0001", "SoThuTuThayDoi": 2,
     "ThoiDiemThayDoi": "23/11/2026 09:40:00", "TrangThai": "DANG_XU_LY",
     "MaTTHC": "2.000488", "TenTTHC": "Đăng ký khai sinh", "MaLinhVuc": "HO_TICH",
     "CoQuanTiepNhan": {"MaDinhDanh": "000.00.12.H29", "TenCoQuan": "Sở Tư pháp"},
     "CapXuLy": "TINH" | "HUYEN" | "XA",
     "NgayTiepNhan": "23/11/2026 08:15:00", "NgayHenTra": "30/11/2026 17:00:00",
     "NgayKetThucXuLy": null, "NgayTra": null, "TrichYeu": "...",
     "LePhi": [{"TenPhiLePhi", "SoTien", "NgayNop"}],
     "ChuHoSo": {"LoaiDoiTuong": 1 | 2, "HoTen", "SoGiayTo", "SoDienThoai", "Email",
                 "DiaChi", "NgaySinh", "GioiTinh"},
     "CanBoXuLy": {"HoTen", "ChucDanh", "PhongBan"}, "GhiChu": "..."}

Senders: `senders=N` pushes through N concurrent clients, each dossier through
one of them, so each dossier's events still arrive in order; `shuffle=True`
deals the events out at random, so one dossier's events may overtake each other
(what the portal's order check and the hub's `ordered_by` are about).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson

VN = timezone(timedelta(hours=7))
PROCEDURES = [
    ("2.000488", "Đăng ký khai sinh", "HO_TICH", 0),
    ("1.001193", "Đăng ký kết hôn", "HO_TICH", 0),
    ("1.000105", "Chứng thực bản sao từ bản chính giấy tờ, văn bản", "CHUNG_THUC", 2000),
    ("1.001612", "Đăng ký thành lập hộ kinh doanh", "THANH_LAP_HKD", 100000),
    ("1.004227", "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ", "XAY_DUNG", 75000),
    ("2.001823", "Cấp giấy phép lái xe", "DUONG_BO", 135000),
]
AGENCIES = [
    ("000.00.12.H29", "Sở Tư pháp Thành phố Hồ Chí Minh", "TINH"),
    ("000.00.17.H29", "Sở Xây dựng Thành phố Hồ Chí Minh", "TINH"),
    ("000.20.31.H29", "Ủy ban nhân dân Quận 1", "HUYEN"),
    ("000.21.31.H29", "Ủy ban nhân dân Phường Bến Nghé", "XA"),
]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Hữu", "Thanh"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Hà", "Khoa", "Lan", "Phúc", "Quân", "Tâm"]
HANDLERS = [("Trần Thị Mai", "Chuyên viên", "Phòng Hành chính tư pháp")]


def native_date(moment: datetime) -> str:
    """`dd/MM/yyyy HH:mm:ss` in Vietnam time, as one-stop systems write dates."""
    return moment.astimezone(VN).strftime("%d/%m/%Y %H:%M:%S")


def _applicant(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.2:
        return {
            "LoaiDoiTuong": 2,
            "HoTen": f"Công ty TNHH {rng.choice(GIVEN)} {rng.choice(GIVEN)}",
            "SoGiayTo": f"03{rng.randrange(10**8):08d}",
            "SoDienThoai": f"028 3{rng.randrange(10**7):07d}",
            "Email": "lienhe@congty.example.vn",
            "DiaChi": "12 Lê Lợi, Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh",
        }
    name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
    born = datetime(rng.randrange(1950, 2005), rng.randrange(1, 13), rng.randrange(1, 29))
    return {
        "LoaiDoiTuong": 1,
        "HoTen": name,
        "SoGiayTo": f"079{rng.randrange(10**9):09d}",
        "SoDienThoai": f"09{rng.randrange(10**8):08d}",
        "Email": f"nguoidan{rng.randrange(10**4)}@example.vn",
        "DiaChi": "45 Nguyễn Huệ, Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh",
        "NgaySinh": f"{born:%d/%m/%Y}",
        "GioiTinh": rng.choice(["Nam", "Nữ"]),
    }


def _working(moment: datetime, rng: random.Random) -> datetime:
    """The next working-hour moment at or after `moment` (Mon-Fri, 07:30-17:00)."""
    while moment.weekday() >= 5 or not 7 <= moment.hour < 17:
        early = moment.weekday() < 5 and moment.hour < 7
        day = moment if early else moment + timedelta(days=1)
        moment = day.replace(hour=7, minute=30 + rng.randrange(30))
    return moment


def dossier_events(
    number: int, rng: random.Random, *, start: datetime, supplement: bool | None = None
) -> list[dict[str, Any]]:
    """One dossier's native events, in the order they happen (SoThuTuThayDoi 1, 2, ...)."""
    code, name, field_code, fee = rng.choice(PROCEDURES)
    agency, agency_name, level = rng.choice(AGENCIES)
    received = _working(start + timedelta(minutes=rng.randrange(0, 600)), rng)
    dossier: dict[str, Any] = {
        "MaHoSo": f"{agency}-{received:%y%m%d}-{number:04d}",
        "MaTTHC": code,
        "TenTTHC": name,
        "MaLinhVuc": field_code,
        "CoQuanTiepNhan": {"MaDinhDanh": agency, "TenCoQuan": agency_name},
        "CapXuLy": level,
        "NgayTiepNhan": native_date(received),
        "NgayHenTra": native_date(
            (received + timedelta(days=rng.randrange(3, 15))).replace(hour=17, minute=0, second=0)
        ),
        "NgayKetThucXuLy": None,
        "NgayTra": None,
        "TrichYeu": f"{name} cho công dân",
        "LePhi": [
            {
                "TenPhiLePhi": f"Lệ phí {name.lower()}",
                "SoTien": fee,
                "NgayNop": native_date(received),
            }
        ]
        if fee
        else [],
        "ChuHoSo": _applicant(rng),
        "CanBoXuLy": dict(
            zip(("HoTen", "ChucDanh", "PhongBan"), rng.choice(HANDLERS), strict=True)
        ),
    }
    steps = ["DA_TIEP_NHAN", "DANG_XU_LY"]
    if supplement if supplement is not None else rng.random() < 0.3:
        steps += ["YEU_CAU_BO_SUNG", "DANG_XU_LY"]
    steps += ["DA_XU_LY", "DA_TRA_KET_QUA"]
    events, moment = [], received
    for sequence, status in enumerate(steps, 1):
        if sequence > 1:
            moment = _working(moment + timedelta(hours=rng.randrange(1, 30)), rng)
        dossier = dossier | {"TrangThai": status, "SoThuTuThayDoi": sequence}
        dossier["ThoiDiemThayDoi"] = native_date(moment)
        dossier["GhiChu"] = (
            "Đề nghị bổ sung bản sao giấy tờ tùy thân" if status == "YEU_CAU_BO_SUNG" else None
        )
        if status == "DA_XU_LY":
            dossier["NgayKetThucXuLy"] = native_date(moment)
        if status == "DA_TRA_KET_QUA":
            dossier["NgayTra"] = native_date(moment)
        events.append(copy.deepcopy(dossier))
    return events


def dossier_streams(
    dossiers: int, *, seed: int = 0, start: datetime | None = None
) -> list[list[dict[str, Any]]]:
    """`dossiers` dossiers' native events: one list per dossier, each in order."""
    rng = random.Random(seed)
    begin = start or datetime(2026, 11, 23, 7, 30, tzinfo=VN)
    return [dossier_events(n, rng, start=begin) for n in range(1, dossiers + 1)]


@dataclass
class PushReport:
    """What a push run did: events sent, HTTP answers by status, seconds taken."""

    sent: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.answers[202]


def lanes(
    streams: Sequence[Sequence[dict[str, Any]]], senders: int, *, shuffle: bool, seed: int = 0
) -> list[list[dict[str, Any]]]:
    """The events each sender pushes, in its order (see the module docstring)."""
    lanes: list[list[dict[str, Any]]] = [[] for _ in range(max(senders, 1))]
    if shuffle:
        events = [e for stream in streams for e in stream]
        random.Random(seed).shuffle(events)
        for n, event in enumerate(events):
            lanes[n % len(lanes)].append(event)
        return lanes
    rng = random.Random(seed)
    pending = [list(s) for s in streams if s]
    while pending:  # interleave dossiers, each one's events kept in order
        stream = rng.choice(pending)
        event = stream.pop(0)
        lanes[zlib.crc32(event["MaHoSo"].encode()) % len(lanes)].append(event)
        pending = [s for s in pending if s]
    return lanes


async def push(
    hub: str,
    key: str,
    streams: Sequence[Sequence[dict[str, Any]]],
    *,
    senders: int = 1,
    shuffle: bool = False,
    batch: int = 1,
    seed: int = 0,
    timeout: float = 30.0,
) -> PushReport:
    """POST every event to `{hub}/api/v1/native`, `batch` per request, through `senders` clients."""
    report, url = PushReport(), f"{hub.rstrip('/')}/api/v1/native"
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json; charset=utf-8"}
    started = time.perf_counter()

    async def sender(events: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(timeout=timeout) as client:
            for first in range(0, len(events), batch):
                chunk = events[first : first + batch]
                body = orjson.dumps(chunk[0] if batch == 1 else chunk)
                try:
                    answer = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    report.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                report.sent += len(chunk)
                report.answers[answer.status_code] += 1
                if answer.status_code >= 300 and len(report.errors) < 20:
                    report.errors.append(f"HTTP {answer.status_code}: {answer.text[:300]}")

    await asyncio.gather(
        *(sender(lane) for lane in lanes(streams, senders, shuffle=shuffle, seed=seed))
    )
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> None:
    """Generate dossiers and push their events to a hub."""
    parser = argparse.ArgumentParser("python -m adapters.one_stop", description=main.__doc__)
    parser.add_argument("--hub", required=True, help="the hub's base URL")
    parser.add_argument("--key", required=True, help="the one-stop system's API key on the hub")
    parser.add_argument("--dossiers", type=int, default=100)
    parser.add_argument("--senders", type=int, default=1, help="concurrent clients")
    parser.add_argument("--shuffle", action="store_true", help="let a dossier's events overtake")
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    streams = dossier_streams(args.dossiers, seed=args.seed)
    report = asyncio.run(
        push(
            args.hub,
            args.key,
            streams,
            senders=args.senders,
            shuffle=args.shuffle,
            batch=max(args.batch, 1),
            seed=args.seed,
        )
    )
    rate = report.sent / report.seconds if report.seconds else 0.0
    print(
        f"{report.sent} events of {args.dossiers} dossiers in {report.seconds:.1f} s ({rate:.0f}/s)"
    )
    print(f"answers: {dict(report.answers)}")
    for error in report.errors[:5]:
        print(f"  {error}")


if __name__ == "__main__":
    main()
