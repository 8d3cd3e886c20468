"""What the httpx connectors share: their client, endpoint URLs, `env:` options, error mapping.

The connectors that call their system with httpx (government_office,
national_portal, national_axis, reporting_system) map failures the way
hub/connectors/http.py does for aiohttp: timeouts, connection errors, 408,
425, 429 and 5xx are `Transient` (honouring Retry-After; a 429 also slows the
whole destination), any other non-2xx is `Rejected`. Each keeps the part that
is its own: how its error bodies read.

    class ReportConnector(HttpxClient):
        async def deliver(self, envelope, event, target):
            response = await self._send(self.encode(envelope, event, target), target)
            answer, reason = read_answer(response, "code", "message")
            raise_for_status(response, f"{target.id}: HTTP {response.status_code} {reason}")
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from hub import tracing
from hub.config import System
from hub.connectors.base import OutboundRequest
from hub.connectors.http import MAX_RECORDED_BODY, RETRYABLE, retry_after
from hub.errors import Rejected, Transient


class HttpxClient:
    """The httpx client of a connector: the one given, or its own, opened on first use.

    Args:
        client: a client to use (closed by its owner); default: one of its own.
    """

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._own_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def _send(self, request: OutboundRequest, target: System) -> httpx.Response:
        """Send an encoded request to `target`, its httpx failures mapped as `map_failures`."""
        headers = dict(request.headers)
        tracing.inject(headers)  # the delivery attempt's span, when there is one
        with map_failures(target):
            return await self._http().request(
                request.method,
                request.url,
                headers=headers,
                content=request.body,
                timeout=target.timeout,
            )

    async def close(self) -> None:
        """Close the connector's own client (a later call opens a new one)."""
        if self._own_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def url_for(target: System, operation: str) -> str:
    """`{endpoint}/{operation}`. Raises Rejected when `target` has no endpoint."""
    if not target.endpoint:
        raise Rejected(f"{target.id} has no endpoint")
    return f"{target.endpoint.rstrip('/')}/{operation}"


def option_secret(system: System, name: str) -> str | None:
    """`system.options[name]` with `env:NAME` read from the environment; None when not set.

    hub/config.py resolves `env:` only for `api_key`; other secrets land in
    `options` as written and are resolved here, when used.

    Raises:
        Rejected: the option names an unset environment variable.
    """
    value = system.options.get(name)
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("env:"):
        resolved = os.environ.get(value[4:], "")
        if not resolved:
            raise Rejected(f"{system.id}: {name}: environment variable {value[4:]} is unset")
        return resolved
    return value


@contextmanager
def map_failures(target: System) -> Iterator[None]:
    """httpx failures -> Transient, keeping the cause."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise Transient(f"{target.id}: timed out after {target.timeout:g} s") from exc
    except httpx.TransportError as exc:
        raise Transient(f"{target.id}: {type(exc).__name__}: {exc}") from exc


def read_answer(
    response: httpx.Response, code: str, message: str, *, prefix: str = ""
) -> tuple[Any, str]:
    """An answer's JSON (None when it is not JSON) and the reason to record for it.

    The reason is `{prefix}{answer[code]}: {answer[message]}` when the answer is
    a JSON object with a `code` field, else the start of the body.
    """
    answer = load_json(response.content)
    if isinstance(answer, dict) and code in answer:
        return answer, f"{prefix}{answer.get(code)}: {answer.get(message)}"
    return answer, excerpt(response.content)


def load_json(content: bytes) -> Any:
    """The JSON of an answer's body, None when it is not JSON."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def excerpt(content: bytes) -> str:
    """The start of an answer's body, for the record."""
    return content[:MAX_RECORDED_BODY].decode("utf-8", "replace")


def raise_if_retryable(response: httpx.Response, problem: str) -> None:
    """Raise Transient(`problem`) for 408, 425, 429 and 5xx, with the answer's Retry-After."""
    code = response.status_code
    if code in RETRYABLE or code >= 500:
        wait = retry_after(response.headers.get("retry-after"))
        raise Transient(problem, retry_after=wait, throttle=code == 429)


def raise_for_status(
    response: httpx.Response, problem: str, *, accept: Collection[int] = ()
) -> None:
    """Raise for an answer that is not 2xx: Transient as `raise_if_retryable`, else Rejected.

    Args:
        accept: other statuses the caller reads itself (e.g. 401 for an expired session).
    """
    raise_if_retryable(response, problem)
    code = response.status_code
    if not 200 <= code < 300 and code not in accept:
        raise Rejected(problem)
