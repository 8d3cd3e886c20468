"""A hub under test: a destination, a config, `hub serve` child processes and their store.

`Backend` is where the hub keeps its state: `services` (a fresh PostgreSQL schema
and a unique queue prefix on RabbitMQ, both removed afterwards) or `embedded` (a
fresh SQLite file and the in-process transport). `Deployment` starts the
destination (`python -m adapters.sink`) and one or more `hub serve` processes on
a backend, and stops them; everything runs as child processes so their CPU can be
read from /proc and the bench process stays out of their way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

from hub.settings import Settings

SENDER = "000.00.00.H29:qlvb"
DEST = "000.00.12.H29:qlvb"
SENDER_KEY = "bench-key-sender"
DEST_KEY = "bench-key-dest"
# Document systems (`documents=True`): both pull through the local document axis API.
DOC_SENDER = "000.00.00.H29:edoc"
DOC_RECIPIENT = "000.00.12.H29:edoc"
DOC_KEYS = {DOC_SENDER: "bench-key-doc-sender", DOC_RECIPIENT: "bench-key-doc-recipient"}
# Deliveries in flight to the destination: enough that delivery keeps up with
# ingest (with the default of 16 it falls behind at saturation); see
# docs/PERFORMANCE.md for what more costs in the HTTP client.
CONCURRENCY = 64
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `check()` until it is true; RuntimeError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {timeout:g} s")
        time.sleep(interval)


@dataclass
class Backend:
    """Where a deployment keeps its state, and what to remove afterwards."""

    name: str  # services | embedded
    database_url: str
    broker_url: str
    queue_prefix: str
    schema: str | None = None
    admin_url: str | None = None

    def engine(self) -> sa.Engine:
        from hub.store.db import create_engine

        return create_engine(Settings(database_url=self.database_url).sqlalchemy_url())


def _pg_admin(pg_url: str) -> sa.Engine:
    return sa.create_engine(Settings(database_url=pg_url).sqlalchemy_url())


@contextmanager
def services_backend(pg_url: str, amqp_url: str) -> Iterator[Backend]:
    """A fresh PostgreSQL schema and queue prefix, dropped and deleted afterwards."""
    tag = "bench_" + uuid.uuid4().hex[:10]
    admin = _pg_admin(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{tag}"'))
    sep = "&" if "?" in pg_url else "?"
    backend = Backend(
        "services", f"{pg_url}{sep}options=-csearch_path%3D{tag}", amqp_url, tag, tag, pg_url
    )
    try:
        yield backend
    finally:
        receivers = [DEST, *DOC_KEYS]
        delete_queues(amqp_url, [f"{tag}.route", *(f"{tag}.deliver.{r}" for r in receivers)])
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{tag}" CASCADE'))
        admin.dispose()


@contextmanager
def embedded_backend(directory: Path) -> Iterator[Backend]:
    """A fresh SQLite file and the in-process transport."""
    tag = "bench_" + uuid.uuid4().hex[:10]
    yield Backend("embedded", f"sqlite:///{directory / (tag + '.db')}", "memory://", tag)


def delete_queues(amqp_url: str, names: list[str]) -> None:
    """Delete queues and their `.dead` companions; missing ones are fine."""
    import pika  # type: ignore[import-untyped]

    from hub.bench.raw import parameters

    conn = pika.BlockingConnection(parameters(amqp_url))
    try:
        for name in names:
            for queue in (name, name + ".dead"):
                channel = conn.channel()
                with suppress(pika.exceptions.ChannelClosedByBroker):
                    channel.queue_delete(queue)
                if channel.is_open:
                    channel.close()
    finally:
        conn.close()


def write_config(directory: Path, sink_url: str, *, documents: bool = False) -> Path:
    """One sender and one destination; notes go to the recipients named in `data.to`.

    With `documents`, also two pulling document systems and the route of edXML
    packages to their recipients.
    """

    def system(system_id: str, key: str, send: bool) -> dict[str, Any]:
        return {
            "id": system_id,
            "name": f"bench {system_id}",
            "kind": "http",
            "endpoint": f"{sink_url}/{system_id.split(':')[0]}",
            "api_key": key,
            "may_send": ["vn.lgsp.demo.*"] if send else [],
            "may_receive": [] if send else ["vn.lgsp.demo.*"],
            "retry": {"delays": [1, 5, 30]},
            "concurrency": CONCURRENCY,
            "timeout": 10,
        }

    config = {
        "systems": [system(SENDER, SENDER_KEY, True), system(DEST, DEST_KEY, False)],
        "routes": [
            {
                "name": "notes-to-recipients",
                "match": {"type": "vn.lgsp.demo.note.v1", "source": SENDER},
                "to": {"from_data": "/to/*"},
            }
        ],
    }
    if documents:
        config["systems"] += [_document_system(s, key) for s, key in DOC_KEYS.items()]
        config["routes"].append(
            {
                "name": "documents-to-recipients",
                "match": {"type": "vn.lgsp.document.sent.v1"},
                "to": {"from_data": "/recipients/*/organ_id"},
            }
        )
    path = directory / "bench-hub.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _document_system(system_id: str, key: str) -> dict[str, Any]:
    """A document-management system that sends and pulls through /api/v1/edoc/."""
    return {
        "id": system_id,
        "name": f"bench {system_id}",
        "kind": "edxml",
        "api_key": key,
        "may_send": ["vn.lgsp.document.*"],
        "may_receive": ["vn.lgsp.document.*"],
    }


@dataclass
class Child:
    """A child process with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


def spawn(name: str, argv: list[str], directory: Path, env: dict[str, str] | None = None) -> Child:
    log = directory / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=directory, env=env or dict(os.environ)
        )
    return Child(name, proc, log)


@dataclass
class Deployment:
    """A destination and the hub processes of one backend, in a scratch directory."""

    backend: Backend
    directory: Path
    roles: list[str] = field(default_factory=lambda: ["all"])
    documents: bool = False  # add the document systems (write_config)
    sink: Child | None = None
    hubs: list[Child] = field(default_factory=list)
    sink_url: str = ""
    url: str = ""

    def start(self) -> Deployment:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._start_sink()
        config = write_config(self.directory, self.sink_url, documents=self.documents)
        api_port = free_port()
        self.url = f"http://127.0.0.1:{api_port}"
        for i, role in enumerate(self.roles):
            env = self._env(config, api_port if role != "worker" else free_port())
            argv = [sys.executable, "-m", "hub.cli", "serve", "--role", role, "--no-demo"]
            child = spawn(f"hub-{role}-{i}", argv, self.directory, env)
            self.hubs.append(child)
            self._wait_started(child, role)
        return self

    def _start_sink(self) -> None:
        port = free_port()
        self.sink_url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "adapters.sink", "--port", str(port)]
        self.sink = spawn("sink", argv, self.directory)
        sink = self.sink
        wait_for(lambda: _answers(f"{self.sink_url}/_sink/stats", sink), 30, "destination")

    def _env(self, config: Path, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HUB_DATABASE_URL": self.backend.database_url,
                "HUB_BROKER_URL": self.backend.broker_url,
                "HUB_QUEUE_PREFIX": self.backend.queue_prefix,
                "HUB_CONFIG": str(config),
                "HUB_BLOB_DIR": str(self.directory / "blobs"),
                "HUB_HOST": "127.0.0.1",
                "HUB_PORT": str(port),
                "HUB_LOG_LEVEL": "info",
            }
        )
        return env

    def _wait_started(self, child: Child, role: str) -> None:
        if role == "worker":
            wait_for(lambda: _logged(child, "hub started"), START_TIMEOUT, child.name)
        else:
            wait_for(lambda: _answers(f"{self.url}/readyz", child), START_TIMEOUT, child.name)

    def hub_pids(self) -> list[int]:
        return [h.pid for h in self.hubs]

    def check(self) -> None:
        """Raise if a child process died."""
        for child in [*self.hubs, *([self.sink] if self.sink else [])]:
            child.check()

    def stop(self) -> None:
        for child in reversed(self.hubs):
            child.stop()
        if self.sink:
            self.sink.stop()

    def __enter__(self) -> Deployment:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(url: str, child: Child) -> bool:
    child.check()
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _logged(child: Child, text: str) -> bool:
    child.check()
    return text in child.log.read_text(errors="replace")
