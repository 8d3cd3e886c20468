"""Reference Government Office task-tracking system (hệ thống theo dõi nhiệm vụ), simulated.

The Government Office (Văn phòng Chính phủ) assigns directives (nhiệm vụ) to
the city and follows the city's progress. This simulator speaks its own JSON
over HTTP, not the hub's canonical events; the contract is
contracts/government-office.openapi.yaml and the mapping to canonical events
is hub/connectors/government_office.py.

    with GovernmentOffice(keys={"city-key"}) as office:      # 127.0.0.1, free port
        item = office.create(TenNhiemVu="Rà soát thủ tục hành chính")
        office.change(item["MaNhiemVu"], HanXuLy="2027-01-15", reason="Gia hạn")
        office.revoke(item["MaNhiemVu"], "Đã lồng ghép vào nhiệm vụ khác")
        office.down(retry_after=3600); office.up()
        office.received()                                     # the city's reports

Native API (every `/api/` call needs `X-Api-Key`; while down: 503):

- `GET /api/directives/changes?after=<Seq>&limit=N` answers
  `{"DanhSach": [change...], "next": <last Seq>, "ConNua": bool}`. A change is
  `{"Seq", "MaNhiemVu", "PhienBan", "LoaiThayDoi": TAO_MOI|DIEU_CHINH|THU_HOI,
  "TruongThayDoi": [field...], "LyDo", "ThoiDiem", "NhiemVu": {directive}}`,
  the directive as it stood at that version. Seq starts at 1 and has no gaps.
- `POST /api/progress` and `POST /api/completion` take a report with an
  `Idempotency-Key`; a repeated key is answered 200 with the first receipt
  (`MaTiepNhan`) and counted, not stored again. Unknown directive: 404,
  revoked: 409, malformed: 400. Errors are `{"ThanhCong": false, "MaLoi",
  "MoTaLoi"}`.

A directive (`NhiemVu`): `MaNhiemVu`, `PhienBan`, `TenNhiemVu`, `NoiDung`, the
assigning document (`SoKyHieu`, `NgayVanBan`, `CoQuanBanHanh`, `MaVanBan`),
`CapGiao` (CP | TTg | VPCP), `DonViChuTri`, `DonViPhoiHop` (units are
`{"MaDinhDanh", "TenDonVi"}`), the deadline (`LoaiHan` CO_THOI_HAN with
`HanXuLy`, KHONG_THOI_HAN, or DINH_KY with `DinhKy: {"Ky": TUAN|THANG|QUY|NAM,
"NgayTrongKy", "DenNgay"}`), `DoKhan` (1 thường, 2 khẩn, 3 thượng khẩn, 4 hỏa
tốc), `TepDinhKem` (`TenTep`, `DuongDan`, `KichThuoc`, `MaBam`, `LoaiTep`),
`NgayGiao`, `TrangThai` (DANG_THUC_HIEN | DA_THU_HOI), `NgayCapNhat`.

Control (no key, never down): `POST /_gov/directives`, `POST
/_gov/directives/{id}/change` (the fields to change, `LyDo`), `POST
/_gov/directives/{id}/revoke` (`{"LyDo"}`), `GET /_gov/received`, `POST
/_gov/down?retry_after=S`, `POST /_gov/up`, `POST /_gov/push?to=URL&key=K[&id=ID]`
(POSTs the directive's latest change item to URL with `X-Api-Key: K` and
`Authorization: Bearer K`),
`GET /_gov/stats`. Run alone: `python -m adapters.government_office --port 9003 --key K`.
"""

from adapters.government_office.records import OfficeError, Records, sample
from adapters.government_office.server import GovernmentOffice

__all__ = ["GovernmentOffice", "OfficeError", "Records", "sample"]
