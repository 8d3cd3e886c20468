"""Government reporting system connector (`kind: reporting_system`).

System: the government reporting information system (hệ thống thông tin báo cáo),
which collects indicator reports per period and agency. Protocol: JSON over HTTP
(contracts/reporting-system.openapi.yaml; simulator adapters/reporting_system).
Supported: delivering `vn.lgsp.report.submitted.v1`, its `data` POSTed as is to
`{endpoint}/api/reports`. The reports are computed inside the hub by the
reporting consumer (hub/reports/, kind `reporting`) and routed here.

Config. The reporting system is one System of this kind, e.g.

    - id: 000.00.00.G12:baocao
      kind: reporting_system
      endpoint: https://baocao.example/       # {endpoint}/api/reports
      may_receive: [vn.lgsp.report.submitted.v1]
      outbound_key: env:REPORTS_KEY           # optional: the city's X-Api-Key there
      ordered_by: /report_id                  # versions of one report in order

Idempotency: the system keys a report by (report_id, version); the same pair
again is answered 200 "already received" (a receipt, `repeat: true`), so the
hub's at-least-once delivery stores each version once. `Idempotency-Key` carries
`<report_id>#<version>` and `X-Message-Id` the hub message id, for the record.

Error mapping, as in hub/connectors/http.py: timeouts, connection errors, 408,
425, 429 and 5xx are `Transient` (honouring Retry-After); 409 (a version lower
than the one the system holds: superseded) and any other non-2xx are `Rejected`
with the system's `code: message`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import orjson

from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.connectors.http import RETRYABLE, retry_after
from hub.errors import Rejected, Transient

SUBMITTED = "vn.lgsp.report.submitted.v1"
MAX_RECORDED_BODY = 500


class ReportingSystemConnector:
    """POSTs each report version to the government reporting system."""

    kind: ClassVar[str] = "reporting_system"

    def __init__(self, blobs: Any = None, *, client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._own_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        raise Rejected("the reporting system only receives; reports come from the hub")

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """The POST of the report's data. Raises Rejected for another type or no endpoint."""
        if event.get("type") != SUBMITTED:
            raise Rejected(f"the reporting system takes {SUBMITTED}, not {event.get('type')}")
        data = event.get("data")
        if not isinstance(data, Mapping) or "report_id" not in data or "version" not in data:
            raise Rejected(f"{event.get('id')}: a report without report_id and version")
        if not target.endpoint:
            raise Rejected(f"{target.id} has no endpoint")
        headers = {
            "content-type": "application/json; charset=utf-8",
            "idempotency-key": f"{data['report_id']}#{data['version']}",
            "x-message-id": str(event.get("id", "")),
        }
        key = _outbound_key(target)
        if key:
            headers["x-api-key"] = key
        url = f"{target.endpoint.rstrip('/')}/api/reports"
        return OutboundRequest("POST", url, headers, orjson.dumps(dict(data)))

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """POST the report; raises Transient or Rejected as the module says."""
        request = self.encode(envelope, event, target)
        started = time.perf_counter()
        try:
            response = await self._http().post(
                request.url,
                headers=dict(request.headers),
                content=request.body,
                timeout=target.timeout,
            )
        except httpx.TimeoutException as exc:
            raise Transient(f"{target.id}: timed out after {target.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise Transient(f"{target.id}: {type(exc).__name__}: {exc}") from exc
        answer = _answer(target, response)
        elapsed = (time.perf_counter() - started) * 1000
        repeat = response.status_code == 200
        receipt_id = str(answer.get("receipt_id", ""))
        detail = f"{'already received' if repeat else 'received'} {receipt_id}"
        return Receipt(
            response.status_code, detail, elapsed, {"receipt_id": receipt_id, "repeat": repeat}
        )

    async def close(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()


def _outbound_key(system: System) -> str | None:
    """`options["outbound_key"]` with `env:NAME` resolved; None when not set.

    Raises:
        Rejected: it names an unset environment variable.
    """
    value = system.options.get("outbound_key")
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("env:"):
        resolved = os.environ.get(value[4:], "")
        if not resolved:
            raise Rejected(f"{system.id}: outbound_key: environment variable {value[4:]} is unset")
        return resolved
    return value


def _answer(target: System, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer. Raises Transient or Rejected as the module says."""
    code = response.status_code
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and "code" in answer:
        reason = f"{answer.get('code')}: {answer.get('message')}"
    else:
        reason = response.content[:MAX_RECORDED_BODY].decode("utf-8", "replace")
    problem = f"{target.id}: HTTP {code} {reason}".strip()
    if code in RETRYABLE or code >= 500:
        wait = retry_after(response.headers.get("retry-after"))
        raise Transient(problem, retry_after=wait, throttle=code == 429)
    if not 200 <= code < 300:
        raise Rejected(problem)
    return answer if isinstance(answer, dict) else {}
