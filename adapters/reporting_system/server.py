"""The simulated government reporting system on a real socket.

`ReportingSystem` serves adapters/reporting_system/records.py over HTTP with
uvicorn in a background thread (adapters/serving.py).
The contract is contracts/reporting-system.openapi.yaml.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.reporting_system.records import Records, ReportError
from adapters.serving import JSONResponse, SimulatorServer

MAX_BODY = 1 << 20


class ReportingSystem(SimulatorServer):
    """The reporting system: indicator reports in, each version stored once.

    Args:
        keys: API keys accepted in `X-Api-Key` on `/api/`; None accepts any caller.
        port: 0 picks a free port at the first start; later starts reuse it.
    """

    label = "reports"
    title = "reporting system"

    def __init__(
        self, keys: Collection[str] | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.keys = None if keys is None else set(keys)
        self.records = Records()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._failures: list[tuple[int, int | None]] = []  # (status, retry_after), next first
        app = Starlette(
            routes=[
                Route("/api/reports", self._receive, methods=["POST"]),
                Route("/_reports/received", self._received_endpoint, methods=["GET"]),
                Route("/_reports/fail", self._fail_endpoint, methods=["POST"]),
                Route("/_reports/stats", self._stats_endpoint, methods=["GET"]),
            ]
        )
        super().__init__(app, host=host, port=port)

    # Python API for tests and the demo ----------------------------------------------------

    def received(self, report_id: str | None = None) -> list[dict[str, Any]]:
        """Report versions stored (each once, with `repeats`), in arrival order."""
        with self._lock:
            return [
                s.as_json()
                for s in self.records.stored
                if report_id is None or s.key[0] == report_id
            ]

    def latest(self, report_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.records.latest(report_id)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self.records.stats() | {"failing": len(self._failures)}

    def fail(self, status: int = 503, *, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` reports with `status` (before reading them)."""
        with self._lock:
            self._failures += [(status, retry_after)] * times

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until `count` report versions are stored; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.records.stored) >= count, timeout)

    # HTTP -----------------------------------------------------------------------------------

    async def _receive(self, request: Request) -> Response:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            if failure:
                self.records.counts["failed"] += 1
        if failure is not None:
            status, retry = failure
            headers = {} if retry is None else {"Retry-After": str(retry)}
            error = ReportError(status, "FAILURE", f"simulated failure {status}")
            return JSONResponse(error.body(), status, headers)
        try:
            if self.keys is not None and request.headers.get("x-api-key") not in self.keys:
                raise ReportError(401, "UNAUTHORIZED", "X-Api-Key is missing or wrong")
            report = await _json(request)
            with self._changed:
                status, answer = self.records.receive(report, request.headers.get("x-message-id"))
                self._changed.notify_all()
        except ReportError as exc:
            with self._lock:
                self.records.counts["refused"] += 1
            return JSONResponse(exc.body(), exc.status)
        return JSONResponse(answer, status)

    async def _received_endpoint(self, request: Request) -> Response:
        return JSONResponse({"received": self.received(), **self.stats()})

    async def _fail_endpoint(self, request: Request) -> Response:
        q = request.query_params
        try:
            status, times = int(q.get("status", "503")), int(q.get("times", "1"))
            retry = int(q["retry_after"]) if q.get("retry_after") else None
        except ValueError:
            error = ReportError(400, "BAD_PARAMETER", "status, times, retry_after are integers")
            return JSONResponse(error.body(), 400)
        self.fail(status, times=times, retry_after=retry)
        return JSONResponse(self.stats())

    async def _stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())


async def _json(request: Request) -> Any:
    """The request's JSON body. Raises ReportError."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ReportError(413, "TOO_LARGE", f"the body exceeds {MAX_BODY} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ReportError(400, "MALFORMED", f"not JSON: {exc}") from exc
