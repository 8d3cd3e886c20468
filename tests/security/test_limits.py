"""What a client can make the hub's server hold, and for how long.

A real `hub serve` (the shipped demo config, endpoints pointed at nothing) in a
child process, spoken to over real sockets: raw ones where the claim is about
the HTTP exchange itself (a head too large, a head or a body too slow), httpx
otherwise. Memory is the server process's peak RSS (VmHWM in /proc), read
before and after.

- Bodies (hub/api/limits.py): every route has a maximum checked on
  Content-Length and while reading, answered 413 problem+json before the body is
  parsed; a caller without a valid key gets 64 KiB at most.
- JSON nested 1,000 deep is a 422 naming the depth on every JSON-taking route.
- Heads and slow clients (hub/server.py): a head over 32 KiB gets 431; a head or
  a body that does not arrive in time gets 408 and the connection is closed.
  The deadlines are shortened here (2 s) through their settings.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.security.test_access import demo, embedded, write
from tests.support import REPO, HubProcess

MB = 1024 * 1024
HEAD_TIMEOUT = BODY_TIMEOUT = 2.0
SYSTEM_KEY, ONE_STOP_KEY = "demo-key-vp", "demo-key-motcua"
TASKS_KEY, ADMIN_KEY = "demo-key-tasks", "demo-admin-key"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    directory = tmp_path_factory.mktemp("limits")
    settings = embedded(directory, write(directory, demo()))
    env = {
        "HUB_BLOB_DIR": str(directory / "blobs"),
        "HUB_HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "HUB_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    process = HubProcess(settings, log=directory / "hub.log", env=env).start()
    try:
        yield process
    finally:
        process.stop()


def peak_rss(process: HubProcess) -> int:
    assert process.proc is not None
    status = Path(f"/proc/{process.proc.pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found
    return int(found.group(1)) * 1024


def chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        sent += size
        yield b"x" * size


def problem(answer: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    for word in words:
        assert word in body["detail"], body
    return body


def healthy(process: HubProcess) -> None:
    started = time.monotonic()
    assert httpx.get(f"{process.url}/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 1.0


# Bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/tasks/instant", "/api/v1/dead-letters/replay"])
@pytest.mark.parametrize("key", [None, "k-wrong"])
def test_a_100_mb_body_without_a_valid_key_is_refused_unread(
    served: HubProcess, path: str, key: str | None
) -> None:
    headers = {"content-type": "application/json"} | (
        {"authorization": f"Bearer {key}"} if key else {}
    )
    before = peak_rss(served)
    with httpx.Client(base_url=served.url, headers=headers, timeout=60) as client:
        # Declared: refused on Content-Length alone.
        declared = client.post(
            path, content=chunks(100 * MB), headers={"content-length": str(100 * MB)}
        )
        problem(declared, 413, "104857600 bytes", "65536", "without a valid key")
        # Not declared (chunked): cut after the anonymous limit.
        streamed = client.post(path, content=chunks(100 * MB))
        problem(streamed, 413, "over the limit of 65536 bytes", "without a valid key")
    grown = peak_rss(served) - before
    assert grown < 50 * MB, f"the server's peak RSS grew by {grown / MB:.0f} MB"
    healthy(served)


def test_a_valid_key_gets_the_body_limit_and_no_more(served: HubProcess) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as client:
        ops = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
        within = orjson.dumps({"destination": "x" * 100, "pad": " " * 100_000})
        # Over the anonymous limit but within the body limit: parsed, answered on content.
        answer = client.post("/api/v1/dead-letters/replay", content=within, headers=ops)
        problem(answer, 422, "pad")
        over = client.post("/api/v1/dead-letters/replay", content=chunks(2 * MB), headers=ops)
        problem(over, 413, "over the limit of 1048576 bytes")
        # Streamed routes check the key before reading a byte.
        anonymous = client.post("/api/v1/messages", content=chunks(100 * MB))
        problem(anonymous, 401)


# JSON depth --------------------------------------------------------------------------------


def json_routes() -> list[tuple[str, str]]:
    """Every operation of the API's contract that takes a JSON body, and native."""
    contract = yaml.safe_load((REPO / "contracts" / "openapi.yaml").read_text("utf-8"))
    found = {("POST", "/api/v1/native")}
    for path, item in contract["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if any("json" in media for media in content):
                found.add((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return sorted(found)


ROUTES = json_routes()


def test_the_sweep_finds_the_json_routes() -> None:
    assert len(ROUTES) >= 10, ROUTES
    assert ("POST", "/api/v1/tasks/instant") in ROUTES
    assert ("POST", "/api/v1/dead-letters/replay") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_json_nested_1000_deep_is_a_422_naming_the_depth_on_every_json_route(
    served: HubProcess, method: str, path: str
) -> None:
    key = {"/api/v1/messages": SYSTEM_KEY, "/api/v1/native": ONE_STOP_KEY}.get(path)
    key = key or (TASKS_KEY if path.startswith("/api/v1/tasks") else ADMIN_KEY)
    deep = "[" * 1000 + "]" * 1000
    body = (
        '{"specversion":"1.0","id":"deep-1","source":"000.00.00.H29:qlvb",'
        '"type":"vn.lgsp.demo.note.v1","data":{"title":' + deep + ',"body":"x"}}'
    )
    headers = {
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "x-official": "cb-001",
    }
    answer = httpx.request(method, served.url + path, content=body, headers=headers, timeout=30)
    found = problem(answer, 422, "nested more than 64 levels")
    assert found["type"].endswith("/too-deep")
    healthy(served)


# Heads and slow clients --------------------------------------------------------------------


def connect(process: HubProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", process.port), timeout=30)


def answer_and_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_request_head_over_32_kib_is_refused_431(served: HubProcess) -> None:
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Big: " + b"a" * 40_000)
        reply = answer_and_close(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"application/problem+json" in reply and b"over 32768 bytes" in reply


def test_a_300_mb_head_is_cut_early_and_health_stays_fast(served: HubProcess) -> None:
    before, sent = peak_rss(served), 0
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Big: ")
        block = b"a" * MB
        with pytest.raises(OSError):  # reset or broken pipe: the server closed
            while sent < 300 * MB:
                sock.sendall(block)
                sent += len(block)
            answer_and_close(sock)
    assert sent < 32 * MB, f"the server read {sent / MB:.0f} MB of head before closing"
    grown = peak_rss(served) - before
    assert grown < 50 * MB, f"the server's peak RSS grew by {grown / MB:.0f} MB"
    healthy(served)


def test_a_head_sent_a_line_at_a_time_is_cut_at_the_header_timeout(served: HubProcess) -> None:
    started = time.monotonic()
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n")
        try:
            for i in range(40):  # would take 20 s
                time.sleep(0.5)
                sock.sendall(b"X-Line-%d: a\r\n" % i)
        except OSError:
            pass  # closed under us, as it should be
        reply = answer_and_close(sock)
    took = time.monotonic() - started
    assert HEAD_TIMEOUT - 0.1 <= took < HEAD_TIMEOUT + 2, took
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(
    served: HubProcess,
) -> None:
    started = time.monotonic()
    with connect(served) as sock:
        reply = answer_and_close(sock)
    assert HEAD_TIMEOUT - 0.1 <= time.monotonic() - started < HEAD_TIMEOUT + 2
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("trickle", [False, True])
def test_a_body_promised_and_not_sent_is_cut_at_the_body_timeout(
    served: HubProcess, trickle: bool
) -> None:
    head = (
        b"POST /api/v1/messages HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + SYSTEM_KEY.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
    )
    started = time.monotonic()
    with connect(served) as sock:
        sock.sendall(head)
        try:
            while trickle and time.monotonic() - started < 20:  # a byte every half second
                time.sleep(0.5)
                sock.sendall(b" ")
        except OSError:
            pass
        reply = answer_and_close(sock)
    took = time.monotonic() - started
    assert BODY_TIMEOUT - 0.1 <= took < BODY_TIMEOUT + 2, took
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    healthy(served)


def test_a_steady_body_and_keep_alive_requests_go_through(served: HubProcess) -> None:
    event = {
        "specversion": "1.0",
        "id": "steady-1",
        "source": "000.00.00.H29:qlvb",
        "type": "vn.lgsp.demo.note.v1",
        "data": {"title": "Giấy mời", "body": "x" * 200_000},
    }
    raw = orjson.dumps(event)

    def paced() -> Iterator[bytes]:  # ~3 s in all, well above the minimum rate
        for i in range(0, len(raw), 32_768):
            time.sleep(0.3)
            yield raw[i : i + 32_768]

    headers = {"authorization": f"Bearer {SYSTEM_KEY}", "content-type": "application/json"}
    with httpx.Client(base_url=served.url, headers=headers, timeout=30) as client:
        answer = client.post(
            "/api/v1/messages", content=paced(), headers={"content-length": str(len(raw))}
        )
        assert answer.status_code == 202, answer.text
        time.sleep(HEAD_TIMEOUT + 0.5)  # idle between requests is keep-alive's business
        assert client.get("/api/v1/messages/steady-1").status_code == 200
