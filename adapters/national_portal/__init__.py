"""Reference National Public Service Portal (Cổng Dịch vụ công quốc gia), simulated.

The portal shows every dossier (hồ sơ thủ tục hành chính) of the country to its
applicant; provinces synchronise their dossiers to it. This simulator speaks
the portal's own JSON over HTTP; the contract is
contracts/national-portal.openapi.yaml and the mapping from canonical events is
hub/connectors/national_portal_codec.py.

    with NationalPortal() as portal:                       # 127.0.0.1, free port
        portal.rate_limit(2, retry_after=3)                # the next 2 requests: 429
        portal.rate_limit(per_second=20)                   # or above 20 requests/s
        portal.fail_items(2)                               # the next 2 items: error_code 99
        portal.fail_requests(1, retry_after=5)             # the next request: 503
        portal.add_procedure("1.012345")                   # MaTTHC accepted from now
        portal.expire_sessions()                           # every session forgotten
        portal.received(); portal.violations()

Native API (JSON; success is `error_code` "00"):

- `POST /api/auth/login` `{"username", "password", "madonvi"}` ->
  `{"error_code": "00", "session", "expires_in"}`; wrong account: 401, "01".
- `POST /api/dongbohoso` (DongBoHoSoMC) `{"session", "madonvi", "service":
  "DongBoHoSoMC", "isUpdating": "True"|"False", "data": [item...]}` ->
  `{"error_code": "00", "ketqua": [{"MaHoSo", "error_code", "message"}...]}`,
  one result per item in order: "00" taken, "02" invalid field, "03" MaTTHC not
  in the catalogue, "99" temporary failure (send it again).
- `POST /api/capnhattiendo` (CapNhatTienDoHoSoMC): the same envelope, items
  `{MaHoSo, NguoiXuLy, ChucDanh, ThoiDiemXuLy, PhongBanXuLy, NoiDungXuLy,
  TrangThai, NgayBatDau, NgayKetThucTheoQuyDinh}`; "04" unknown dossier.
- `GET /api/tracuu?MaHoSo=&session=` (TraCuuHoSo): the dossier's newest item
  with `LichSuTrangThai` and `TienDo`; "04" when unknown.
- A missing, unknown or expired session: HTTP 200 with error_code "-1".
  Malformed: 400 "02". Rate limited: 429 with Retry-After. Told to fail: 503.

Order: each item's `SoThuTuCapNhat` must be higher than the last the portal
has for that dossier; the same number again is a repeat (counted), a lower one
is recorded as a violation (adapters/national_portal/records.py).

Control (never limited, no session): `POST /_portal/rate_limit?next=N&per_second=R&retry_after=S`,
`POST /_portal/fail_items?n=N`, `POST /_portal/fail_requests?n=N&retry_after=S`,
`GET|POST /_portal/procedures` (`{"MaTTHC", "TenTTHC"}`), `POST
/_portal/expire_sessions`, `GET /_portal/received`, `GET /_portal/stats`.
Run alone: `python -m adapters.national_portal --port 9004`.
"""

from adapters.national_portal.records import CATALOGUE, PortalError, Records
from adapters.national_portal.server import ACCOUNTS, NationalPortal

__all__ = ["ACCOUNTS", "CATALOGUE", "NationalPortal", "PortalError", "Records"]
