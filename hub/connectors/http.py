"""Generic HTTP connector (`kind: http`).

System: any system that takes CloudEvents over HTTP. Protocol: HTTP POST of the
structured CloudEvent (`application/cloudevents+json`, CloudEvents HTTP binding)
with `Idempotency-Key: <event id>` so the receiver can drop repeats.
Supported: delivery only; systems send to the hub through the ingest API.

Error mapping: 2xx delivered; 408, 425, 429 and 5xx, timeouts and connection
errors are `Transient` (honouring `Retry-After`); any other status is `Rejected`
with the response recorded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
import orjson

from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.errors import Rejected, Transient

RETRYABLE = {408, 425, 429}
MAX_RECORDED_BODY = 500


class HttpConnector:
    """POSTs CloudEvents to a system's endpoint."""

    kind: ClassVar[str] = "http"

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._shared = client
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, target: System) -> httpx.AsyncClient:
        """One connection pool per destination, sized to its concurrency: httpcore scans
        every pooled connection on each request, so one big shared pool costs per call."""
        if self._shared is not None:
            return self._shared
        client = self._clients.get(target.id)
        if client is None:
            size = max(1, target.concurrency)
            client = self._clients[target.id] = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                follow_redirects=False,
            )
        return client

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        event = orjson.loads(native)
        if not isinstance(event, dict):
            raise Rejected("a CloudEvent must be a JSON object")
        return [event]

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        if not target.endpoint:
            raise Rejected(f"{target.id} has no endpoint")
        headers = {
            "content-type": "application/cloudevents+json; charset=utf-8",
            "idempotency-key": str(event["id"]),
        }
        if "traceparent" in event:
            headers["traceparent"] = str(event["traceparent"])
        return OutboundRequest("POST", target.endpoint, headers, envelope)

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        request = self.encode(envelope, event, target)
        started = time.perf_counter()
        try:
            response = await self._client(target).request(
                request.method,
                request.url,
                headers=dict(request.headers),
                content=request.body,
                timeout=target.timeout,
            )
        except httpx.TimeoutException as exc:
            raise Transient(f"{target.id}: timed out after {target.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise Transient(f"{target.id}: {type(exc).__name__}: {exc}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        code = response.status_code
        if 200 <= code < 300:
            return Receipt(code, f"HTTP {code}", elapsed)
        text = response.text[:MAX_RECORDED_BODY]
        if code in RETRYABLE or code >= 500:
            raise Transient(
                f"{target.id}: HTTP {code} {text}".strip(),
                retry_after=retry_after(response.headers.get("retry-after")),
            )
        raise Rejected(f"{target.id}: HTTP {code} {text}".strip())

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        if self._shared is not None:
            await self._shared.aclose()


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
