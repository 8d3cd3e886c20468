"""Reference destination system: records the CloudEvents the hub POSTs to it.

Simulates a destination endpoint that receives `application/cloudevents+json` by
HTTP POST with an `Idempotency-Key` header, and can be told to misbehave (error
statuses, `Retry-After`, slow answers, being down). It is a real uvicorn server on a
real socket, run in a background thread, so the hub's HTTP client is exercised for real.

    with RecordingSink() as sink:                 # 127.0.0.1, ephemeral port
        sink.respond(503, retry_after=5, times=2)  # two failures, then 200
        ...  # point the hub at f"{sink.url}/events"
        assert sink.wait_for(10, timeout=5)        # 10 distinct ids answered 2xx
        assert sink.duplicates() == 0

A receipt counts as delivered when the sink decides to answer 2xx, even if the
client gives up during `delay`: the "processed, but the answer was lost" case that
idempotency keys exist for. Across processes, use the control API (`GET /_sink/stats`,
`POST /_sink/respond`, `GET /_sink/received?limit=N`) or run it on its own with
`python -m adapters.sink --port 9001`.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.serving import JSONResponse, SimulatorServer, wait_for_interrupt


@dataclass(frozen=True)
class Reply:
    """How the sink answers one request."""

    status: int = 200
    body: Any = None
    retry_after: int | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One POST as the sink saw it, with the status it was answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    event_id: str | None
    status: int
    at: float = field(default_factory=time.monotonic)

    @property
    def delivered(self) -> bool:
        """True when the sink answered 2xx."""
        return 200 <= self.status < 300

    def as_json(self) -> dict[str, Any]:
        """This receipt for the control API, the body decoded when it is JSON."""
        try:
            body: Any = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            body = self.body.decode("utf-8", "replace")
        return {**asdict(self), "body": body}


def event_id(headers: dict[str, str], body: bytes) -> str | None:
    """The `Idempotency-Key` header, else the `id` of a JSON object body."""
    if key := headers.get("idempotency-key"):
        return key
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    ident = document.get("id") if isinstance(document, dict) else None
    return None if ident is None else str(ident)


class RecordingSink(SimulatorServer):
    """An HTTP destination that records every POST and answers as told.

    Args:
        host: interface to listen on.
        port: 0 picks a free port at the first start; later starts reuse it.
    """

    label = "sink"
    title = "sink"
    backlog = 2048

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._received: list[Received] = []
        self._delivered: list[str] = []
        self._unique: set[str] = set()
        self._duplicates = 0
        self._default = Reply()
        self._queue: deque[Reply] = deque()
        app = Starlette(
            routes=[
                Route("/_sink/stats", self._stats_endpoint, methods=["GET"]),
                Route("/_sink/respond", self._respond_endpoint, methods=["POST"]),
                Route("/_sink/received", self._received_endpoint, methods=["GET"]),
                Route("/{path:path}", self._receive, methods=["POST"]),
            ]
        )
        super().__init__(app, host=host, port=port)

    def down(self) -> None:
        """Stop listening, so connections are refused; records are kept."""
        self.stop()

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    def respond(
        self,
        status: int = 200,
        *,
        body: Any = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Answer `status` (with a JSON `body`, `Retry-After`) after `delay` seconds.

        Args:
            times: for the next `times` requests, then 200 again; None = until changed.
        """
        reply = Reply(status, body, retry_after, delay)
        with self._lock:
            self._queue.clear()
            if times is None:
                self._default = reply
            else:
                self._default = Reply()
                self._queue.extend([reply] * times)

    def script(self, statuses: Iterable[int]) -> None:
        """Answer the next requests with these statuses in order, then 200."""
        with self._lock:
            self._default = Reply()
            self._queue = deque(Reply(status) for status in statuses)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    @property
    def received(self) -> list[Received]:
        """Every receipt, answered 2xx or not, in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def count(self) -> int:
        """Number of receipts, answered 2xx or not."""
        with self._lock:
            return len(self._received)

    def ids(self) -> list[str]:
        """Event ids of every receipt that had one, in arrival order."""
        with self._lock:
            return [r.event_id for r in self._received if r.event_id is not None]

    def delivered_ids(self) -> list[str]:
        """Event ids of receipts answered 2xx, in arrival order, repeats included."""
        with self._lock:
            return list(self._delivered)

    def unique_ids(self) -> set[str]:
        """Distinct event ids answered 2xx."""
        with self._lock:
            return set(self._unique)

    def duplicates(self) -> int:
        """Receipts answered 2xx whose id had already been answered 2xx."""
        with self._lock:
            return self._duplicates

    def stats(self) -> dict[str, int]:
        """Counters as served by `GET /_sink/stats`."""
        with self._lock:
            return {
                "count": len(self._received),
                "delivered": len(self._delivered),
                "unique": len(self._unique),
                "duplicates": self._duplicates,
            }

    def wait_for(self, target: int | Callable[[RecordingSink], bool], timeout: float = 5.0) -> bool:
        """Wait until `target` distinct ids were answered 2xx, or `target(sink)` holds.

        The predicate runs with the sink's lock held, so keep it to the accessors.
        Returns False when `timeout` seconds pass first.
        """

        def check() -> bool:
            return target(self) if callable(target) else len(self._unique) >= target

        with self._changed:
            return self._changed.wait_for(check, timeout)

    def _record(self, receipt: Received) -> None:
        with self._changed:
            self._received.append(receipt)
            if receipt.delivered and receipt.event_id is not None:
                if receipt.event_id in self._unique:
                    self._duplicates += 1
                self._unique.add(receipt.event_id)
                self._delivered.append(receipt.event_id)
            self._changed.notify_all()

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = self._next_reply()
        self._record(
            Received(request.url.path, headers, body, event_id(headers, body), reply.status)
        )
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        extra = {} if reply.retry_after is None else {"Retry-After": str(reply.retry_after)}
        if reply.body is None:
            return Response(status_code=reply.status, headers=extra)
        return JSONResponse(reply.body, reply.status, extra)

    async def _stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _respond_endpoint(self, request: Request) -> Response:
        try:
            spec = orjson.loads(await request.body())
            self.respond(
                int(spec.get("status", 200)),
                body=spec.get("body"),
                retry_after=spec.get("retry_after"),
                delay=float(spec.get("delay") or 0.0),
                times=spec.get("times"),
            )
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        return JSONResponse(self.stats())

    async def _received_endpoint(self, request: Request) -> Response:
        receipts = self.received
        try:
            limit = int(request.query_params.get("limit", len(receipts)))
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        receipts = receipts[len(receipts) - limit :] if limit > 0 else []
        return JSONResponse([r.as_json() for r in receipts])


def main(argv: list[str] | None = None) -> None:
    """Run a sink in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser("python -m adapters.sink", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args(argv)
    with RecordingSink(args.host, args.port) as sink:
        print(f"recording sink on {sink.url} (stats: {sink.url}/_sink/stats); Ctrl-C stops")
        wait_for_interrupt()
        print(f"stopped: {sink.stats()}")


if __name__ == "__main__":
    main()
