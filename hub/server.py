"""The HTTP server the hub runs: uvicorn, with the request limits uvicorn lacks.

Uvicorn (0.55) limits neither the size of a request's head with httptools (its
`h11_max_incomplete_event_size` applies to h11 only) nor the time a client may
take to send it: `timeout_keep_alive` covers the idle time between requests and
is reset by every byte received, so a client sending one header line every 9 s,
or promising a body and never sending it, holds its connection as long as it
likes (uvicorn issue #157 lists both timeouts as not done). The protocol class
below adds, on uvicorn's httptools protocol:

- a request head (request line and headers) over `HUB_MAX_HEADER_BYTES` is
  answered 431 and the connection closed; what is held meanwhile is bounded by
  that limit plus one read (256 KiB);
- the head must be complete within `HUB_HEADER_TIMEOUT_SECONDS` of its first
  byte (or of the connection, for one that sends nothing);
- the body must be complete within `HUB_BODY_TIMEOUT_SECONDS` after the head,
  extended by one second per `HUB_MIN_BODY_RATE` bytes received (the rule of
  Apache's mod_reqtimeout: a slow but steady upload of a large edXML package
  goes through, a trickle does not);
- otherwise 408 (if no answer was started) and the connection is closed.

`HUB_MAX_CONNECTIONS` is uvicorn's `limit_concurrency`: past it, new requests
get 503 rather than the process running out of file descriptors.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.api.problems import MEDIA_TYPE, PROBLEM_BASE
from hub.tls import PeerCertificate
from hub.tls import uvicorn_options as tls_options

if TYPE_CHECKING:
    from hub.settings import Settings


def _problem(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP answer, written before any request reached the app."""
    body = orjson.dumps(
        {"type": f"{PROBLEM_BASE}http-{status}", "title": reason, "status": status,
         "detail": detail}
    )  # fmt: skip
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {MEDIA_TYPE}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head + body


class RequestLimits:
    """Mixed into uvicorn's httptools protocol: head size, head and body deadlines."""

    max_header_bytes: ClassVar[int] = 32_768
    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 10.0
    min_body_rate: ClassVar[int] = 8_192

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    flow: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._stage = "head"  # head -> body -> idle (answering or between requests)
        self._head_bytes = 0
        self._body_bytes = 0
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._stage != "body":
            self._head_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        if self._stage == "head" and self._head_bytes > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large",
                         f"the request head is over {self.max_header_bytes} bytes")  # fmt: skip

    def on_message_begin(self) -> None:
        super().on_message_begin()  # type: ignore[misc]
        if self._stage != "head":
            self._stage = "head"
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()  # type: ignore[misc]
        self._stage, self._body_bytes = "body", 0
        self._arm(self.body_timeout)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)  # type: ignore[misc]
        self._body_bytes += len(body)
        self._deadline += len(body) / self.min_body_rate  # checked when the timer fires

    def on_message_complete(self) -> None:
        super().on_message_complete()  # type: ignore[misc]
        self._stage, self._head_bytes = "idle", 0
        self._disarm()  # uvicorn's keep-alive timeout takes over once answered

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.time() + seconds
        self._timer = self.loop.call_at(self._deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._stage == "idle" or self.transport.is_closing():
            return
        now = self.loop.time()
        if self._stage == "body" and self.flow.read_paused:  # the app is slow, not the client
            self._deadline = max(self._deadline, now + 1.0)
        if now < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._expired)
            return
        what = "request head" if self._stage == "head" else "request body"
        self._refuse(408, "Request Timeout", f"the {what} did not arrive in time")

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._stage = "idle"
        self._disarm()
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_problem(status, reason, detail))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() gets http.disconnect
            cycle.message_event.set()
        self.transport.close()


def protocol(settings: Settings, peer_certificate: bool = False) -> type[asyncio.Protocol]:
    """Uvicorn's httptools protocol with the settings' limits (and the client certificate)."""
    bases: tuple[type, ...] = (RequestLimits,)
    if peer_certificate:
        bases += (PeerCertificate,)
    limits = {
        "max_header_bytes": settings.max_header_bytes,
        "header_timeout": settings.header_timeout_seconds,
        "body_timeout": settings.body_timeout_seconds,
        "min_body_rate": settings.min_body_rate,
    }
    return type("HubHttpProtocol", (*bases, HttpToolsProtocol), limits)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for uvicorn: TLS as configured (hub/tls.py) and the limits."""
    options: dict[str, Any] = dict(
        tls_options(settings.tls_certfile, settings.tls_keyfile, settings.tls_client_ca)
    )
    options["http"] = protocol(settings, peer_certificate="ssl_ca_certs" in options)
    options["limit_concurrency"] = settings.max_connections
    return options
