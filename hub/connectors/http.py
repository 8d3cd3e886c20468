"""Generic HTTP connector (`kind: http`).

System: any system that takes CloudEvents over HTTP. Protocol: HTTP POST of the
structured CloudEvent (`application/cloudevents+json`, CloudEvents HTTP binding)
with `Idempotency-Key: <event id>` so the receiver can drop repeats, and
`traceparent`: the delivery attempt's span of the message's trace (hub/tracing.py).
Supported: delivery only; systems send to the hub through the ingest API.

Error mapping: 2xx delivered; 408, 425, 429 and 5xx, timeouts and connection
errors are `Transient` (honouring `Retry-After`); any other status is `Rejected`
with the response recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import aiohttp
import orjson

from hub import tracing
from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.errors import Invalid, Rejected, Transient

RETRYABLE = {408, 425, 429}
MAX_RECORDED_BODY = 500


class HttpConnector:
    """POSTs CloudEvents to a system's endpoint.

    The client is aiohttp, one session (a pool of keep-alive connections sized to
    the system's concurrency) per destination: delivery is the step the hub repeats
    most, and aiohttp costs about 0.2 ms of CPU per request here against 0.6 ms for
    httpcore and 1.0 ms for httpx with a shared pool (docs/PERFORMANCE.md).
    """

    kind: ClassVar[str] = "http"

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, target: System) -> aiohttp.ClientSession:
        session = self._sessions.get(target.id)
        if session is None or session.closed:
            size = max(1, target.concurrency)
            session = self._sessions[target.id] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=size, limit_per_host=size),
                skip_auto_headers=("User-Agent",),
                auto_decompress=False,
            )
        return session

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        try:
            event = orjson.loads(native)
        except orjson.JSONDecodeError as exc:
            raise Invalid(f"the body is not valid JSON: {exc}") from None
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
        if traceparent := tracing.outgoing(event):  # the attempt's span of the message's trace
            headers["traceparent"] = traceparent
        return OutboundRequest("POST", target.endpoint, headers, envelope)

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        request = self.encode(envelope, event, target)
        started = time.perf_counter()
        try:
            async with self._session(target).request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=request.body,
                timeout=aiohttp.ClientTimeout(total=target.timeout),
                allow_redirects=False,
            ) as response:
                code = response.status
                text = "" if 200 <= code < 300 else await _excerpt(response)
                wait = response.headers.get("retry-after")
        except TimeoutError as exc:
            raise Transient(f"{target.id}: timed out after {target.timeout:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise Transient(f"{target.id}: cannot connect: {exc.os_error}") from exc
        except aiohttp.ClientError as exc:
            raise Transient(f"{target.id}: {type(exc).__name__}: {exc}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        if 200 <= code < 300:
            return Receipt(code, f"HTTP {code}", elapsed)
        problem = f"{target.id}: HTTP {code} {text}".strip()
        if code in RETRYABLE or code >= 500:
            raise Transient(problem, retry_after=retry_after(wait), throttle=code == 429)
        raise Rejected(problem)

    async def close(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    """The start of an error answer, for the record."""
    raw = await response.content.read(MAX_RECORDED_BODY)
    return raw.decode("utf-8", "replace")


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
