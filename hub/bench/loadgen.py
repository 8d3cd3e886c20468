"""Load generators: authenticated CloudEvent POSTs, each with a unique id.

- `wrk` (closed loop, `clients` connections each sending as soon as the previous
  answer came) with a Lua script that builds a fresh id per request. It is written
  in C and costs the machine little, so it is preferred.
- A Python closed-loop generator with the same behaviour, when wrk is missing.
- `HttpConnection`, a minimal HTTP/1.1 keep-alive client on asyncio streams, used
  by the Python generators (here and in the open-loop `load.py`); much cheaper per
  request than a full HTTP client library, so the generator stays small.

Every generator reports how much CPU it used itself.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from hub.bench.deploy import DEST, SENDER, SENDER_KEY
from hub.bench.procs import children_cpu_seconds, own_cpu_seconds

ID_MARK = "@@ID@@"
PATH = "/api/v1/messages"
T = TypeVar("T")

LUA = r"""
-- POST a CloudEvent whose id is unique per request: <prefix><thread>-<n>
local counter = 0
local head, tail, ids
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local template = f:read("*a")
  f:close()
  local at = string.find(template, "@@ID@@", 1, true)
  head = string.sub(template, 1, at - 1)
  tail = string.sub(template, at + 6)
  ids = args[2] .. tid .. "-"
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[3]
  wrk.headers["Content-Type"] = "application/cloudevents+json"
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. ids .. counter .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def template(size: int) -> bytes:
    """A vn.lgsp.demo.note.v1 CloudEvent of `size` bytes whose id is `@@ID@@`.

    The id a generator puts in is up to ~30 bytes longer than the mark; the
    padding is plain ASCII in `data.body`, so the JSON needs no escaping.
    """
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": ID_MARK,
        "source": SENDER,
        "type": "vn.lgsp.demo.note.v1",
        "datacontenttype": "application/json",
        "data": {"title": "Giấy mời họp", "body": "", "to": [DEST]},
    }
    bare = len(orjson.dumps(event))
    event["data"]["body"] = "x" * max(0, size - bare - 24)
    return orjson.dumps(event)


@dataclass
class LoadResult:
    """What a generator did: requests answered, errors, and its own cost."""

    generator: str  # wrk | python
    clients: int
    seconds: float  # wall time of the load
    started: float  # time.time() when the load began
    requests: int = 0  # answered 2xx
    errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    http_p50_ms: float | None = None
    http_p99_ms: float | None = None
    late_sends: int = 0  # open loop: sends that left more than 5 ms behind schedule

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_closed_loop(
    url: str,
    body: bytes,
    clients: int,
    seconds: float,
    id_prefix: str,
    directory: Path,
    generator: str = "auto",
) -> LoadResult:
    """POST to the hub from `clients` connections for `seconds`, with wrk when it is there.

    Args:
        generator: "auto" (wrk when installed, else Python), "wrk" or "python".
    """
    if generator == "wrk" or (generator == "auto" and have_wrk()):
        return run_wrk(url, body, clients, seconds, id_prefix, directory)
    return run_async(python_closed_loop(url, body, clients, seconds, id_prefix))


def run_wrk(
    url: str, body: bytes, clients: int, seconds: float, id_prefix: str, directory: Path
) -> LoadResult:
    script, body_file = directory / "bench.lua", directory / f"body-{len(body)}.json"
    script.write_text(LUA, encoding="utf-8")
    body_file.write_bytes(body)
    threads = 2 if clients >= 32 else 1
    argv = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s"]
    argv += ["--timeout", "30s", "-s", str(script), url + PATH, "--"]
    argv += [str(body_file), id_prefix, SENDER_KEY]
    cpu0, started, t0 = children_cpu_seconds(), time.time(), time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    wall, cpu = time.monotonic() - t0, children_cpu_seconds() - cpu0
    found = re.search(r"^BENCH (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    summary = orjson.loads(found.group(1))
    errors = {k: int(summary[k]) for k in ("connect", "read", "write", "status", "timeout")}
    return LoadResult(
        "wrk",
        clients,
        wall,
        started,
        requests=int(summary["requests"]) - errors["status"],
        errors={k: v for k, v in errors.items() if v},
        cpu_seconds=cpu,
        http_p50_ms=summary["p50_us"] / 1000,
        http_p99_ms=summary["p99_us"] / 1000,
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a generator coroutine on uvloop when it is installed (cheaper per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that POSTs CloudEvents to the hub."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {SENDER_KEY}\r\n"
            "Content-Type: application/cloudevents+json\r\nContent-Length: "
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        """Send one event; returns the status code.

        A kept-alive connection the server closed while idle (uvicorn does after 5 s)
        fails before any answer: the event is sent again once on a new connection, as
        HTTP clients do. Sending an id twice is safe: the hub answers a repeat the same.
        """
        reused = self._writer is not None
        try:
            return await self._exchange(body)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            if not reused:
                raise
        return await self._exchange(body)

    async def _exchange(self, body: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if found:
            await self._reader.readexactly(int(found.group(1)))
        if re.search(rb"(?i)\r\nconnection:\s*close", head):
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class Tally:
    """Answers counted by a Python generator."""

    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def send(self, conn: HttpConnection, body: bytes) -> bool:
        """Send one event and count the answer; False when no answer came."""
        t0 = time.perf_counter()
        try:
            status = await conn.post(body)
        except (OSError, asyncio.IncompleteReadError):
            self.error("connect")
            return False
        self.latencies.append(time.perf_counter() - t0)
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.error(f"status_{status}")
        return True


def body_maker(body: bytes, id_prefix: str) -> Callable[[int], bytes]:
    head, _, tail = body.partition(ID_MARK.encode())
    prefix = id_prefix.encode()
    return lambda n: head + prefix + str(n).encode() + tail


async def python_closed_loop(
    url: str, body: bytes, clients: int, seconds: float, id_prefix: str
) -> LoadResult:
    """The wrk behaviour in Python: each client sends again as soon as it has its answer."""
    make = body_maker(body, id_prefix)
    tally, counter = Tally(), iter(range(1, 1 << 62))
    cpu0, started, t0 = own_cpu_seconds(), time.time(), time.monotonic()
    deadline = t0 + seconds

    async def client() -> None:
        conn = HttpConnection(url)
        try:
            while time.monotonic() < deadline:
                if not await tally.send(conn, make(next(counter))):
                    await asyncio.sleep(0.1)  # the hub is away: do not spin
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return finish(tally, "python", clients, started, t0, cpu0)


def finish(
    tally: Tally, generator: str, clients: int, started: float, t0: float, cpu0: float
) -> LoadResult:
    """A LoadResult from what a Python generator counted."""
    lat = sorted(tally.latencies)
    p50 = lat[len(lat) // 2] * 1000 if lat else None
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None
    return LoadResult(
        generator,
        clients,
        time.monotonic() - t0,
        started,
        requests=tally.ok,
        errors=tally.errors,
        cpu_seconds=own_cpu_seconds() - cpu0,
        http_p50_ms=p50,
        http_p99_ms=p99,
    )
