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

Error mapping, shared with the other httpx connectors (hub/connectors/httpmap.py):
timeouts, connection errors, 408, 425, 429 and 5xx are `Transient` (honouring
Retry-After; a 429 slows the whole destination); 409 (a version lower
than the one the system holds: superseded) and any other non-2xx are `Rejected`
with the system's `code: message`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import orjson

from hub.config import System
from hub.connectors import httpmap
from hub.connectors.base import OutboundRequest, Receipt
from hub.errors import Rejected

SUBMITTED = "vn.lgsp.report.submitted.v1"


class ReportingSystemConnector(httpmap.HttpxClient):
    """POSTs each report version to the government reporting system."""

    kind: ClassVar[str] = "reporting_system"

    def __init__(self, blobs: Any = None, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(client)

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        raise Rejected("the reporting system only receives; reports come from the hub")

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """The POST of the report's data. Raises Rejected for another type or no endpoint."""
        if event.get("type") != SUBMITTED:
            raise Rejected(f"the reporting system takes {SUBMITTED}, not {event.get('type')}")
        data = event.get("data")
        if not isinstance(data, Mapping) or "report_id" not in data or "version" not in data:
            raise Rejected(f"{event.get('id')}: a report without report_id and version")
        url = httpmap.url_for(target, "api/reports")
        headers = {
            "content-type": "application/json; charset=utf-8",
            "idempotency-key": f"{data['report_id']}#{data['version']}",
            "x-message-id": str(event.get("id", "")),
        }
        key = httpmap.option_secret(target, "outbound_key")
        if key:
            headers["x-api-key"] = key
        return OutboundRequest("POST", url, headers, orjson.dumps(dict(data)))

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """POST the report; raises Transient or Rejected as the module says."""
        request = self.encode(envelope, event, target)
        started = time.perf_counter()
        response = await self._send(request, target)
        answer = _answer(target, response)
        elapsed = (time.perf_counter() - started) * 1000
        repeat = response.status_code == 200
        receipt_id = str(answer.get("receipt_id", ""))
        detail = f"{'already received' if repeat else 'received'} {receipt_id}"
        return Receipt(
            response.status_code, detail, elapsed, {"receipt_id": receipt_id, "repeat": repeat}
        )


def _answer(target: System, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer. Raises Transient or Rejected as the module says."""
    code = response.status_code
    answer, reason = httpmap.read_answer(response, "code", "message")
    httpmap.raise_for_status(response, f"{target.id}: HTTP {code} {reason}".strip())
    return answer if isinstance(answer, dict) else {}
