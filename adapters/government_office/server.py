"""The simulated Government Office's task-tracking system on a real socket.

`GovernmentOffice` serves adapters/government_office/records.py over HTTP with
uvicorn in a background thread (adapters/serving.py). The contract is
contracts/government-office.openapi.yaml.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.government_office.records import OfficeError, Records
from adapters.serving import JSONResponse, SimulatorServer

MAX_BODY = 1 << 20
MAX_LIMIT = 500
Endpoint = Callable[[Request], Awaitable[Response]]


class GovernmentOffice(SimulatorServer):
    """The Government Office's task system: directives out, the city's reports in.

    Args:
        keys: API keys accepted in `X-Api-Key` on `/api/` (the city's key).
        port: 0 picks a free port at the first start; later starts reuse it.
    """

    label = "gov"
    title = "government office"

    def __init__(
        self, keys: Collection[str] = ("city-key",), *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.keys = set(keys)
        self.records = Records()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._down = False
        self._retry_after: int | None = None  # the Retry-After of 503s while down
        app = Starlette(
            routes=[
                Route("/api/directives/changes", self._api(self._changes), methods=["GET"]),
                Route("/api/progress", self._api(self._progress), methods=["POST"]),
                Route("/api/completion", self._api(self._completion), methods=["POST"]),
                Route("/_gov/directives", self._control(self._create), methods=["POST"]),
                Route(
                    "/_gov/directives/{id:path}/change",
                    self._control(self._change),
                    methods=["POST"],
                ),
                Route(
                    "/_gov/directives/{id:path}/revoke",
                    self._control(self._revoke),
                    methods=["POST"],
                ),
                Route("/_gov/received", self._received_endpoint, methods=["GET"]),
                Route("/_gov/down", self._down_endpoint, methods=["POST"]),
                Route("/_gov/up", self._up_endpoint, methods=["POST"]),
                Route("/_gov/push", self._control(self._push_endpoint), methods=["POST"]),
                Route("/_gov/stats", self._stats_endpoint, methods=["GET"]),
            ]
        )
        super().__init__(app, host=host, port=port)

    # Python API for tests and the demo ----------------------------------------------------

    def create(self, **fields: Any) -> dict[str, Any]:
        """Assign a new directive (native field names; unset ones get plausible values).

        Returns its change item (`Seq`, `PhienBan` 1, `NhiemVu`...).
        """
        with self._changed:
            return self.records.create(fields)

    def change(
        self, directive_id: str, *, reason: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Change a directive's fields (e.g. `HanXuLy="2027-01-15"`): a new version and Seq."""
        with self._changed:
            return self.records.change(directive_id, fields, reason)

    def revoke(self, directive_id: str, reason: str | None = None) -> dict[str, Any]:
        """Withdraw a directive: a last version and Seq."""
        with self._changed:
            return self.records.revoke(directive_id, reason)

    def received(self, directive_id: str | None = None) -> list[dict[str, Any]]:
        """Reports received (first arrivals, each with `repeats`), in arrival order."""
        with self._lock:
            return [
                r.as_json()
                for r in self.records.receipts
                if directive_id is None or r.directive_id == directive_id
            ]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self.records.stats() | {"down": self._down}

    def down(self, retry_after: int | None = None) -> None:
        """Answer 503 on `/api/` (with `Retry-After` when given) until `up`."""
        with self._lock:
            self._down, self._retry_after = True, retry_after

    def up(self) -> None:
        with self._lock:
            self._down = False

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until `count` distinct reports were received; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.records.receipts) >= count, timeout)

    def push(self, to: str, key: str, directive_id: str | None = None) -> httpx.Response:
        """POST a directive's latest change item to `to`, as the office's push would."""
        with self._lock:
            item = self.records.latest(directive_id)
        return httpx.post(to, headers=_push_headers(item, key), content=orjson.dumps(item))

    # HTTP -----------------------------------------------------------------------------------

    def _api(self, handler: Endpoint) -> Endpoint:
        """Outage, then API key, then the handler; OfficeError becomes its answer."""

        async def endpoint(request: Request) -> Response:
            with self._lock:
                down, retry = self._down, self._retry_after
                if down:
                    self.records.counts["down_refused"] += 1
            if down:
                headers = {} if retry is None else {"Retry-After": str(retry)}
                error = OfficeError(503, "BAO_TRI", "Hệ thống đang bảo trì, vui lòng thử lại sau")
                return JSONResponse(error.body(), 503, headers)
            if request.headers.get("x-api-key") not in self.keys:
                return self._refused(OfficeError(401, "SAI_KHOA", "X-Api-Key không hợp lệ"))
            try:
                return await handler(request)
            except OfficeError as exc:
                return self._refused(exc)

        return endpoint

    def _control(self, handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OfficeError as exc:
                return JSONResponse(exc.body(), exc.status)

        return endpoint

    def _refused(self, exc: OfficeError) -> Response:
        with self._lock:
            self.records.counts["refused"] += 1
        return JSONResponse(exc.body(), exc.status)

    async def _changes(self, request: Request) -> Response:
        try:
            after = int(request.query_params.get("after") or 0)
            limit = int(request.query_params.get("limit") or 100)
        except ValueError as exc:
            raise OfficeError(400, "THAM_SO_SAI", "after và limit phải là số nguyên") from exc
        if after < 0 or not 1 <= limit <= MAX_LIMIT:
            raise OfficeError(400, "THAM_SO_SAI", f"after >= 0, 1 <= limit <= {MAX_LIMIT}")
        with self._lock:
            return JSONResponse(self.records.changes(after, limit))

    async def _progress(self, request: Request) -> Response:
        return await self._receive(request, "progress")

    async def _completion(self, request: Request) -> Response:
        return await self._receive(request, "completion")

    async def _receive(self, request: Request, kind: str) -> Response:
        message_id = request.headers.get("idempotency-key", "")
        if not message_id:
            raise OfficeError(400, "THIEU_IDEMPOTENCY_KEY", "Thiếu header Idempotency-Key")
        body = await _json(request)
        with self._changed:
            receipt = self.records.receive(kind, message_id, body)
            self._changed.notify_all()
            return JSONResponse(receipt.answer())

    async def _create(self, request: Request) -> Response:
        fields = await _json(request)
        if not isinstance(fields, dict):
            raise OfficeError(400, "DU_LIEU_KHONG_HOP_LE", "Nội dung phải là một đối tượng JSON")
        return JSONResponse(self.create(**fields), 201)

    async def _change(self, request: Request) -> Response:
        fields = await _json(request)
        if not isinstance(fields, dict):
            raise OfficeError(400, "DU_LIEU_KHONG_HOP_LE", "Nội dung phải là một đối tượng JSON")
        reason = fields.pop("LyDo", None)
        return JSONResponse(self.change(request.path_params["id"], reason=reason, **fields))

    async def _revoke(self, request: Request) -> Response:
        fields = await _json(request, empty={})
        reason = fields.get("LyDo") if isinstance(fields, dict) else None
        return JSONResponse(self.revoke(request.path_params["id"], reason))

    async def _received_endpoint(self, request: Request) -> Response:
        return JSONResponse({"received": self.received(), **self.stats()})

    async def _down_endpoint(self, request: Request) -> Response:
        retry = request.query_params.get("retry_after")
        self.down(int(retry) if retry and retry.isdigit() else None)
        return JSONResponse(self.stats())

    async def _up_endpoint(self, request: Request) -> Response:
        self.up()
        return JSONResponse(self.stats())

    async def _push_endpoint(self, request: Request) -> Response:
        to, key = request.query_params.get("to"), request.query_params.get("key", "")
        if not to:
            raise OfficeError(400, "THAM_SO_SAI", "Thiếu tham số to")
        with self._lock:
            item = self.records.latest(request.query_params.get("id"))
        async with httpx.AsyncClient() as client:
            try:
                answer = await client.post(
                    to, headers=_push_headers(item, key), content=orjson.dumps(item)
                )
            except httpx.HTTPError as exc:
                raise OfficeError(502, "DAY_LOI", f"{type(exc).__name__}: {exc}") from exc
        return JSONResponse(
            {"Seq": item["Seq"], "status": answer.status_code, "answer": answer.text[:500]}
        )

    async def _stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())


def _push_headers(item: dict[str, Any], key: str) -> dict[str, str]:
    """The office's own `X-Api-Key`, and the same key as a Bearer token for the hub's auth."""
    return {
        "content-type": "application/json; charset=utf-8",
        "x-api-key": key,
        "authorization": f"Bearer {key}",
        "idempotency-key": f"{item['MaNhiemVu']}#{item['PhienBan']}",
    }


async def _json(request: Request, empty: Any = None) -> Any:
    """The request's JSON body (`empty` for no body at all). Raises OfficeError."""
    raw = await request.body()
    if empty is not None and not raw.strip():
        return empty
    if len(raw) > MAX_BODY:
        raise OfficeError(413, "QUA_LON", f"Nội dung vượt quá {MAX_BODY} byte")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OfficeError(400, "JSON_SAI", f"JSON không hợp lệ: {exc}") from exc
