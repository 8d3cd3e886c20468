"""Every request's body has a ceiling, enforced before anything parses it.

One rule, in one table (`BodyLimits.rule`):

- `POST /api/v1/messages`, `POST /api/v1/native`: `HUB_MAX_BODY_BYTES`;
  `POST /api/v1/edoc/sendEdoc`: `HUB_MAX_DOCUMENT_BYTES`. These routes check
  the caller's key first and then read the body as a stream (`read_body`,
  edoc's `spool`), so an unauthenticated caller's body is never read.
- Every other route (FastAPI parses its body before any dependency, the key
  check included, has run): the body is read here first, at most
  `HUB_MAX_BODY_BYTES` for a caller whose key or certificate is valid and
  `HUB_MAX_ANONYMOUS_BODY_BYTES` for anyone else (the console's forms among
  them), and a JSON body nested deeper than `hub.nesting.MAX_DEPTH` is refused
  before FastAPI parses it.

A declared `Content-Length` over the limit is answered 413 before a byte is
read; a body sent without one (chunked) is cut at the limit. Either way the
answer is problem+json, and what the client still sends is discarded by the
server as it arrives, never held (hub/server.py bounds how long that may take).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.auth import identify
from hub.api.problems import problem_response
from hub.errors import Rejected, TooDeep, TooLarge
from hub.nesting import check_json_depth

if TYPE_CHECKING:
    from hub.runtime import Hub


STREAMED = "streamed"


class BodyLimits:
    """ASGI middleware: the per-route body limit, checked before the route runs."""

    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    def rule(self, scope: Scope) -> tuple[int, str | None]:
        """The route's limit, and `STREAMED` for a route that reads (and cuts) the body
        itself once the key is checked, or why the anonymous limit applies."""
        settings = self.hub.settings
        if scope["method"] == "POST":
            path = scope["path"].rstrip("/")
            if path in ("/api/v1/messages", "/api/v1/native"):
                return settings.max_body_bytes, STREAMED
            if path == "/api/v1/edoc/sendEdoc":
                return settings.max_document_bytes, STREAMED
        if scope["path"].startswith("/api/") and self._authenticated(scope):
            return settings.max_body_bytes, None
        return settings.max_anonymous_body_bytes, " without a valid key or certificate"

    def _authenticated(self, scope: Scope) -> bool:
        request = Request(scope)
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        try:
            found = identify(self.hub, request, key.strip() if scheme.lower() == "bearer" else None)
        except Rejected:
            return False
        return found is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not (_header(scope, b"content-length") or _header(scope, b"transfer-encoding")):
            await self.app(scope, receive, send)  # no body: nothing to limit
            return
        limit, why = self.rule(scope)
        if why == STREAMED:
            await self.app(scope, receive, send)
            return
        why = why or ""
        declared = _content_length(scope)
        try:
            if declared is not None and declared > limit:
                raise TooLarge(f"the body is {declared} bytes; the limit is {limit}{why}")
            body = await _read(receive, limit, why)
            if body and b"json" in _header(scope, b"content-type"):
                check_json_depth(body)
        except (TooLarge, TooDeep) as exc:
            answer = problem_response(
                exc.status, exc.problem, exc.title, exc.detail, instance=scope["path"],
                errors=exc.errors,
            )  # fmt: skip
            await answer(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).lower()
    return b""


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value.isdigit() else None  # the server refuses a malformed one


async def _read(receive: Receive, limit: int, why: str) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over the limit of {limit} bytes{why}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # http.disconnect, when it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
