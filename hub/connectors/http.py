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

import httpcore
import orjson

from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.errors import Rejected, Transient

RETRYABLE = {408, 425, 429}
MAX_RECORDED_BODY = 500


class Slots:
    """Connections to one destination, one per request in flight.

    Each slot is an httpcore pool of one keep-alive connection: a request takes a
    free slot and gives it back, so nothing scans the other connections, which
    httpx's shared pool does on every request (measured: 1.0 ms of CPU per request
    with httpx and a 64-connection pool, 0.43 ms this way; docs/PERFORMANCE.md).
    """

    def __init__(self) -> None:
        self._free: list[httpcore.AsyncConnectionPool] = []
        self._all: list[httpcore.AsyncConnectionPool] = []

    def take(self) -> httpcore.AsyncConnectionPool:
        if self._free:
            return self._free.pop()
        pool = httpcore.AsyncConnectionPool(max_connections=1, max_keepalive_connections=1)
        self._all.append(pool)
        return pool

    def give(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._free.append(pool)

    async def close(self) -> None:
        for pool in self._all:
            await pool.aclose()
        self._all.clear()
        self._free.clear()


class HttpConnector:
    """POSTs CloudEvents to a system's endpoint."""

    kind: ClassVar[str] = "http"

    def __init__(self) -> None:
        self._slots: dict[str, Slots] = {}

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
        slots = self._slots.get(target.id) or self._slots.setdefault(target.id, Slots())
        pool = slots.take()
        started = time.perf_counter()
        timeout = target.timeout
        try:
            response = await pool.request(
                request.method,
                request.url,
                headers=[*request.headers.items(), ("content-length", str(len(request.body)))],
                content=request.body,
                extensions={
                    "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": 1}
                },
            )
        except httpcore.TimeoutException as exc:
            raise Transient(f"{target.id}: timed out after {timeout:g} s") from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise Transient(f"{target.id}: {type(exc).__name__}: {exc}") from exc
        finally:
            slots.give(pool)
        elapsed = (time.perf_counter() - started) * 1000
        code = response.status
        if 200 <= code < 300:
            return Receipt(code, f"HTTP {code}", elapsed)
        text = response.content[:MAX_RECORDED_BODY].decode("utf-8", "replace")
        if code in RETRYABLE or code >= 500:
            raise Transient(
                f"{target.id}: HTTP {code} {text}".strip(),
                retry_after=retry_after(_header(response, b"retry-after")),
            )
        raise Rejected(f"{target.id}: HTTP {code} {text}".strip())

    async def close(self) -> None:
        for slots in self._slots.values():
            await slots.close()


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


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
