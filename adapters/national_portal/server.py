"""The simulated National Public Service Portal on a real socket.

`NationalPortal` serves adapters/national_portal/records.py over HTTP with
uvicorn in a background thread (adapters/serving.py). The contract is
contracts/national-portal.openapi.yaml.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.national_portal.records import CATALOGUE, INVALID, OK, PortalError, Records
from adapters.serving import JSONResponse, SimulatorServer

MAX_BODY = 4 << 20
MAX_ITEMS = 500
ACCOUNTS = {"lgsp-hcm": "matkhau-dvcqg"}
Endpoint = Callable[[Request], Awaitable[Response]]


class NationalPortal(SimulatorServer):
    """The portal: a login, DongBoHoSoMC, CapNhatTienDoHoSoMC, TraCuuHoSo, and controls.

    Args:
        accounts: username -> password accepted by the login.
        session_ttl: seconds a session lives (announced as `expires_in`).
        port: 0 picks a free port at the first start; later starts reuse it.
    """

    label = "dvcqg"
    title = "national portal"

    def __init__(
        self,
        accounts: Mapping[str, str] = ACCOUNTS,
        *,
        session_ttl: float = 1800.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.records = Records(accounts, session_ttl)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._limit_next = 0  # the next N requests answer 429
        self._per_second: float | None = None  # above this rate: 429
        self._retry_after = 1
        self._window: deque[float] = deque()  # times of the requests of the last second
        self._fail_requests = 0  # the next N requests answer 503
        self._fail_retry: int | None = None  # their Retry-After
        app = Starlette(
            routes=[
                Route("/api/auth/login", self._api(self._login), methods=["POST"]),
                Route("/api/dongbohoso", self._api(self._sync), methods=["POST"]),
                Route("/api/capnhattiendo", self._api(self._progress), methods=["POST"]),
                Route("/api/tracuu", self._api(self._lookup), methods=["GET"]),
                Route("/_portal/rate_limit", self._rate_limit_endpoint, methods=["POST"]),
                Route("/_portal/fail_items", self._fail_items_endpoint, methods=["POST"]),
                Route("/_portal/fail_requests", self._fail_requests_endpoint, methods=["POST"]),
                Route("/_portal/procedures", self._procedures_endpoint, methods=["GET", "POST"]),
                Route("/_portal/expire_sessions", self._expire_endpoint, methods=["POST"]),
                Route("/_portal/received", self._received_endpoint, methods=["GET"]),
                Route("/_portal/stats", self._stats_endpoint, methods=["GET"]),
            ]
        )
        super().__init__(app, host=host, port=port)

    # Python API for tests and the demo ----------------------------------------------------

    def received(self) -> dict[str, dict[str, Any]]:
        """Per dossier: statuses and sequences in arrival order, repeats, violations."""
        with self._lock:
            return self.records.received()

    def violations(self) -> list[dict[str, Any]]:
        """Out-of-order arrivals: `{"MaHoSo", "SoThuTuCapNhat", "after", "TrangThaiHoSo", "at"}`."""
        with self._lock:
            return [dict(v) for v in self.records.violations]

    def rate_limit(
        self, next: int = 0, *, per_second: float | None = None, retry_after: int = 1
    ) -> None:
        """Answer 429 (Retry-After: `retry_after`) to the next `next` requests, and to any
        request above `per_second` a second; `rate_limit()` lifts both."""
        with self._lock:
            self._limit_next, self._per_second, self._retry_after = next, per_second, retry_after
            self._window.clear()

    def fail_items(self, n: int) -> None:
        """The next `n` items answer error_code 99 (a temporary failure of that item)."""
        with self._lock:
            self.records.fail_items = n

    def fail_requests(self, n: int, retry_after: int | None = None) -> None:
        """The next `n` API requests answer 503 (with Retry-After when given)."""
        with self._lock:
            self._fail_requests, self._fail_retry = n, retry_after

    def add_procedure(self, code: str, name: str = "Thủ tục bổ sung") -> None:
        """Add a procedure code (MaTTHC) to the catalogue: its dossiers are accepted from now."""
        with self._lock:
            self.records.catalogue[code] = name

    def expire_sessions(self) -> None:
        """Forget every session: the next call answers error_code -1 until a new login."""
        with self._lock:
            self.records.expire_sessions()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self.records.stats()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until `count` dossier items were taken (repeats included); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.records.counts["items"] >= count, timeout)

    # HTTP -----------------------------------------------------------------------------------

    def _api(self, handler: Endpoint) -> Endpoint:
        """Rate limit, outage, then the handler; PortalError becomes its answer."""

        async def endpoint(request: Request) -> Response:
            if refusal := self._refusal():
                return refusal
            try:
                return await handler(request)
            except PortalError as exc:
                return JSONResponse(exc.body(), exc.status)

        return endpoint

    def _refusal(self) -> Response | None:
        """A 429 or 503 answer when the portal is told to give one, else None."""
        with self._lock:
            moment = time.monotonic()
            while self._window and self._window[0] <= moment - 1.0:
                self._window.popleft()
            limited = self._limit_next > 0 or (
                self._per_second is not None and len(self._window) >= self._per_second
            )
            if limited:
                self._limit_next = max(self._limit_next - 1, 0)
                self.records.counts["throttled"] += 1
                body = {"error_code": "429", "message": "Vượt quá số lượng yêu cầu cho phép"}
                return JSONResponse(body, 429, {"Retry-After": str(self._retry_after)})
            self._window.append(moment)
            if self._fail_requests > 0:
                self._fail_requests -= 1
                self.records.counts["unavailable"] += 1
                retry = self._fail_retry
                headers = {} if retry is None else {"Retry-After": str(retry)}
                body = {"error_code": "503", "message": "Hệ thống đang bận, vui lòng thử lại sau"}
                return JSONResponse(body, 503, headers)
        return None

    async def _login(self, request: Request) -> Response:
        body = await _json(request)
        with self._lock:
            return JSONResponse(self.records.login(body))

    async def _sync(self, request: Request) -> Response:
        data = await self._batch(request, "DongBoHoSoMC")
        with self._changed:
            ketqua = self.records.sync(data)
            self._changed.notify_all()
        return JSONResponse({"error_code": OK, "message": "Đã xử lý", "ketqua": ketqua})

    async def _progress(self, request: Request) -> Response:
        data = await self._batch(request, "CapNhatTienDoHoSoMC")
        with self._lock:
            ketqua = self.records.progress(data)
        return JSONResponse({"error_code": OK, "message": "Đã xử lý", "ketqua": ketqua})

    async def _batch(self, request: Request, service: str) -> list[Any]:
        """The `data` of a session-carrying request for `service`. Raises PortalError."""
        body = await _json(request)
        if not isinstance(body, dict):
            raise PortalError(400, INVALID, "Nội dung phải là một đối tượng JSON")
        with self._lock:
            self.records.check_session(body.get("session"))
        if body.get("service", service) != service:
            raise PortalError(400, INVALID, f"service phải là {service}")
        data = body.get("data")
        if not isinstance(data, list) or not 1 <= len(data) <= MAX_ITEMS:
            raise PortalError(400, INVALID, f"data phải là danh sách 1..{MAX_ITEMS} phần tử")
        return data

    async def _lookup(self, request: Request) -> Response:
        with self._lock:
            self.records.check_session(request.query_params.get("session"))
            return JSONResponse(self.records.lookup(request.query_params.get("MaHoSo", "")))

    async def _rate_limit_endpoint(self, request: Request) -> Response:
        query = request.query_params
        per_second = query.get("per_second")
        self.rate_limit(
            int(query.get("next") or 0),
            per_second=float(per_second) if per_second else None,
            retry_after=int(query.get("retry_after") or 1),
        )
        return JSONResponse(self.stats())

    async def _fail_items_endpoint(self, request: Request) -> Response:
        self.fail_items(int(request.query_params.get("n") or 1))
        return JSONResponse(self.stats())

    async def _fail_requests_endpoint(self, request: Request) -> Response:
        retry = request.query_params.get("retry_after")
        self.fail_requests(int(request.query_params.get("n") or 1), int(retry) if retry else None)
        return JSONResponse(self.stats())

    async def _procedures_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            if not isinstance(body, dict) or not isinstance(body.get("MaTTHC"), str):
                return JSONResponse(PortalError(400, INVALID, "Thiếu MaTTHC").body(), 400)
            self.add_procedure(body["MaTTHC"], str(body.get("TenTTHC") or "Thủ tục bổ sung"))
        with self._lock:
            catalogue = dict(self.records.catalogue)
        return JSONResponse({"procedures": catalogue})

    async def _expire_endpoint(self, request: Request) -> Response:
        self.expire_sessions()
        return JSONResponse(self.stats())

    async def _received_endpoint(self, request: Request) -> Response:
        return JSONResponse(
            {"dossiers": self.received(), "violations": self.violations(), "stats": self.stats()}
        )

    async def _stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())


async def _json(request: Request) -> Any:
    """The request's JSON body. Raises PortalError."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PortalError(413, INVALID, f"Nội dung vượt quá {MAX_BODY} byte")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PortalError(400, INVALID, f"JSON không hợp lệ: {exc}") from exc


__all__ = ["CATALOGUE", "NationalPortal"]
