"""Helpers shared by the end-to-end tests: a config writer, a hub on a real socket, waiting."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from hub.api.app import create_app
from hub.passwords import hash_password
from hub.runtime import Hub
from hub.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SENDER = "000.00.00.H29:qlvb"
DEST_A = "000.00.12.H29:qlvb"
DEST_B = "000.00.13.H29:qlvb"
KEYS = {SENDER: "key-sender", DEST_A: "key-a", DEST_B: "key-b"}
OPS_KEY, VIEWER_KEY = "key-ops", "key-viewer"
# Console passwords of the test operators, and their hashes (made once: scrypt is slow).
PASSWORDS = {"ops": "ops-password", "viewer": "viewer-password"}
PASSWORD_HASHES = {name: hash_password(p) for name, p in PASSWORDS.items()}


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def write_config(
    directory: Path,
    sink_url: str,
    *,
    delays: list[float] | None = None,
    concurrency: int = 16,
    timeout: float = 5.0,
) -> Path:
    """A config with one sender and two receivers, all delivering to `sink_url`."""
    delays = delays or [0.2, 0.4, 0.8]
    systems = []
    for system_id, name in (
        (SENDER, "Văn phòng UBND Thành phố"),
        (DEST_A, "Sở Tư pháp"),
        (DEST_B, "Sở Nội vụ"),
    ):
        short = system_id.split(":")[0].replace(".", "-")
        systems.append(
            {
                "id": system_id,
                "name": name,
                "kind": "http",
                "endpoint": f"{sink_url}/{short}",
                "api_key": KEYS[system_id],
                "may_send": [] if system_id == DEST_B else ["vn.lgsp.demo.*"],
                "may_receive": ["vn.lgsp.demo.*"],
                "retry": {"delays": delays},
                "concurrency": concurrency,
                "timeout": timeout,
            }
        )
    config = {
        "systems": systems,
        "routes": [
            {
                "name": "notes-to-recipients",
                "match": {"type": "vn.lgsp.demo.note.v1"},
                "to": {"from_data": "/to/*"},
            }
        ],
        "operators": [
            {
                "name": "ops",
                "api_key": OPS_KEY,
                "role": "operator",
                "password_hash": PASSWORD_HASHES["ops"],
            },
            {
                "name": "viewer",
                "api_key": VIEWER_KEY,
                "role": "viewer",
                "password_hash": PASSWORD_HASHES["viewer"],
            },
        ],
    }
    path = directory / "hub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def note(
    to: list[str], *, id: str | None = None, source: str = SENDER, **data: Any
) -> dict[str, Any]:
    """A vn.lgsp.demo.note.v1 CloudEvent."""
    return {
        "specversion": "1.0",
        "id": id or uuid.uuid4().hex,
        "source": source,
        "type": "vn.lgsp.demo.note.v1",
        "datacontenttype": "application/json",
        "data": {"title": "Giấy mời họp", "body": "Kính mời dự họp giao ban.", "to": to, **data},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadedHub:
    """A hub (role all) serving its API on a real socket from a background thread."""

    def __init__(self, settings: Settings, **server: Any) -> None:
        """`server`: more uvicorn options (HTTPS: hub.tls.uvicorn_options)."""
        self.settings = settings
        self.hub = Hub(settings)
        self.port = free_port()
        scheme = "https" if server.get("ssl_certfile") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.hub),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            **server,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedHub:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def hub_env(settings: Settings, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HUB_DATABASE_URL": settings.database_url,
            "HUB_BROKER_URL": settings.broker_url,
            "HUB_CONFIG": str(settings.config),
            "HUB_QUEUE_PREFIX": settings.queue_prefix,
            "HUB_PORT": str(port),
            "HUB_HOST": "127.0.0.1",
            "HUB_LOG_LEVEL": "warning",
            "HUB_RECOVERY_GRACE_SECONDS": str(settings.recovery_grace_seconds),
            "HUB_SWEEP_SECONDS": str(settings.sweep_seconds),
        }
    )
    return env


class HubProcess:
    """`hub serve` as a child process, for tests that kill it."""

    def __init__(
        self,
        settings: Settings,
        role: str = "all",
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.env = env or {}  # more HUB_* variables
        self.role = role
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HubProcess:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--role", self.role, "--no-demo"],
            env=hub_env(self.settings, self.port) | self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        if self.role != "worker":
            wait_until(self._ready, timeout=60, interval=0.1)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"hub exited with {self.proc.returncode}; see {self.log}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
