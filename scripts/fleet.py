"""A hub fleet on one machine: API and worker processes over RabbitMQ and PostgreSQL.

    .venv/bin/python scripts/fleet.py up --api 2 --workers 3 --config hub.yaml
    .venv/bin/python scripts/fleet.py down          # from another shell, or Ctrl-C

`up` starts `hub serve --role api` (ports 8001, 8002, ...) and `hub serve --role
worker` (metrics on 9201, 9202, ...), each logging to its own file under `--dir`
(`var/fleet`), against HUB_DATABASE_URL and HUB_BROKER_URL (default: the local
PostgreSQL and RabbitMQ). It waits until every API answers `/readyz` and every
worker serves its metrics, prints the URLs, and stays in the foreground. Ctrl-C,
SIGTERM or `down` stops the fleet: each process gets SIGTERM and `--grace` seconds
to finish what it holds (then SIGKILL, reported). Processes run in a session of
their own, so a Ctrl-C in the terminal reaches the fleet, not them directly.

Importable: `Fleet` (`start`, `stop`, `restart_one`), used by tests/fleet.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Self

import httpx

REPO = Path(__file__).resolve().parent.parent
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
# An API: 15 s for requests under way, then the hub's stop. A worker: its calls under
# way end by their system's `timeout` (10 s by default), + 5 s to record them; then 5 s
# at most for publishes to be confirmed. More with slower destinations: --grace.
GRACE = 40.0
READY_TIMEOUT = 60.0
STATE = "fleet.json"


@dataclass
class Member:
    """One process of the fleet: `api-N` serves the API on `port`, `worker-N` its metrics."""

    name: str
    role: str
    host: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def probe(self) -> str:
        """What answers 200 once the process is ready."""
        return f"{self.url}/readyz" if self.role == "api" else f"{self.url}/metrics"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass(frozen=True)
class Restart:
    """How one restart went: the exit code of the stopped process and the times taken."""

    name: str
    exit_code: int
    stop_seconds: float
    total_seconds: float


class Fleet:
    """`hub serve` processes of both roles, started, stopped and restarted one by one.

    Args:
        apis: number of API processes (`api-1`, ...).
        workers: number of worker processes (`worker-1`, ...).
        env: HUB_* settings shared by every process, over the inherited environment
            (HUB_PORT and HUB_METRICS_PORT are set per process).
        log_dir: where each process appends to `<name>.log`.
        api_ports, worker_ports: ports of the APIs and of the workers' metrics.
        grace: seconds a process has to exit after SIGTERM before it is killed.
        demo: run the demo destination simulators in `api-1` (the demo config).
    """

    def __init__(
        self,
        *,
        apis: int = 2,
        workers: int = 3,
        env: Mapping[str, str] | None = None,
        log_dir: Path,
        api_ports: Sequence[int],
        worker_ports: Sequence[int],
        host: str = "127.0.0.1",
        grace: float = GRACE,
        demo: bool = False,
    ) -> None:
        if len(api_ports) != apis or len(worker_ports) != workers:
            raise ValueError("one port per API and per worker")
        self.env = {**os.environ, **(env or {}), "HUB_HOST": host}
        self.log_dir = log_dir
        self.grace = grace
        self.demo = demo
        self.members: dict[str, Member] = {}
        for role, ports in (("api", api_ports), ("worker", worker_ports)):
            for n, port in enumerate(ports, 1):
                name = f"{role}-{n}"
                self.members[name] = Member(name, role, host, port, log_dir / f"{name}.log")

    @property
    def apis(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "api"]

    @property
    def workers(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "worker"]

    @property
    def api_urls(self) -> list[str]:
        return [m.url for m in self.apis]

    def start(self) -> Self:
        """Start every process; return once all are ready (raises if one exits first)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for member in self.members.values():
                self._launch(member)
            for member in self.members.values():
                self._wait_ready(member)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, int]:
        """SIGTERM every process at once, wait for each; returns the exit codes
        (-9 for one killed after `grace` seconds)."""
        running = [m for m in self.members.values() if m.running]
        for member in running:
            self._signal(member, signal.SIGTERM)
        return {m.name: self._reap(m) for m in running}

    def restart_one(self, name: str) -> Restart:
        """SIGTERM one process, wait for it to exit, start it again and wait until ready."""
        member = self.members[name]
        started = time.monotonic()
        code = 0
        if member.running:
            self._signal(member, signal.SIGTERM)
            code = self._reap(member)
        stopped = time.monotonic()
        self._launch(member)
        self._wait_ready(member)
        return Restart(name, code, stopped - started, time.monotonic() - started)

    def exited(self) -> dict[str, int]:
        """The processes that exited on their own, with their exit codes."""
        return {
            m.name: code
            for m in self.members.values()
            if m.proc is not None and (code := m.proc.poll()) is not None
        }

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self, member: Member) -> None:
        env = dict(self.env)
        env["HUB_PORT" if member.role == "api" else "HUB_METRICS_PORT"] = str(member.port)
        demo = self.demo and member.name == "api-1"
        command = [sys.executable, "-m", "hub.cli", "serve", "--role", member.role]
        with open(member.log, "ab") as out:  # the child keeps its own descriptor
            out.write(f"--- {time.strftime('%H:%M:%S')} fleet: starting {member.name}\n".encode())
            out.flush()
            member.proc = subprocess.Popen(
                [*command, "--demo" if demo else "--no-demo"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )

    def _wait_ready(self, member: Member, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert member.proc is not None
            if (code := member.proc.poll()) is not None:
                raise RuntimeError(f"{member.name} exited with {code} starting: {tail(member)}")
            try:
                if httpx.get(member.probe, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{member.name} not ready within {timeout} s: {tail(member)}")
            time.sleep(0.1)

    def _signal(self, member: Member, sig: signal.Signals) -> None:
        assert member.proc is not None
        try:
            member.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def _reap(self, member: Member) -> int:
        assert member.proc is not None
        try:
            return member.proc.wait(self.grace)
        except subprocess.TimeoutExpired:
            self._signal(member, signal.SIGKILL)
            return member.proc.wait()


def tail(member: Member, lines: int = 15) -> str:
    """The last lines of a member's log, for an error message."""
    try:
        text = member.log.read_text("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {member.log})"
    return f"{member.log}:\n" + "\n".join(text)


# --- the command ------------------------------------------------------------------------


def up(args: argparse.Namespace) -> int:
    """Start the fleet, print where it listens, stop it on Ctrl-C, SIGTERM or `down`."""
    env = {
        "HUB_DATABASE_URL": os.environ.get("HUB_DATABASE_URL", DATABASE_URL),
        "HUB_BROKER_URL": os.environ.get("HUB_BROKER_URL", BROKER_URL),
    }
    if args.config:
        env["HUB_CONFIG"] = str(Path(args.config).resolve())
    fleet = Fleet(
        apis=args.api,
        workers=args.workers,
        env=env,
        log_dir=args.dir,
        api_ports=range(args.port, args.port + args.api),
        worker_ports=range(args.metrics_port, args.metrics_port + args.workers),
        host=args.host,
        grace=args.grace,
        demo=args.demo,
    )
    stopping = threading.Event()

    def stop_on(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop_on)
    signal.signal(signal.SIGTERM, stop_on)
    began = time.monotonic()
    print(f"starting {args.api} API and {args.workers} worker processes, logs in {args.dir}/")
    try:
        fleet.start()
    except RuntimeError as exc:
        print(f"fleet did not start: {exc}", file=sys.stderr)
        return 1
    _write_state(args.dir, fleet)
    for m in fleet.members.values():
        assert m.proc is not None
        where = m.url if m.role == "api" else f"{m.url}/metrics"
        print(f"  {m.name:<10} {where:<32} pid {m.proc.pid:<8} {m.log}")
    print(f"ready in {time.monotonic() - began:.1f} s; APIs: {' '.join(fleet.api_urls)}")
    print("Ctrl-C (or scripts/fleet.py down) stops the fleet")
    reported: set[str] = set()
    while not stopping.wait(0.5):
        for name, code in fleet.exited().items():
            if name not in reported:
                reported.add(name)
                print(f"{name} exited with {code}; see {fleet.members[name].log}", file=sys.stderr)
        if len(reported) == len(fleet.members):
            break
    print("stopping (SIGTERM)...")
    codes = fleet.stop()
    (args.dir / STATE).unlink(missing_ok=True)
    print("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
    return 0 if all(code == 0 for code in codes.values()) else 1


def down(args: argparse.Namespace) -> int:
    """Stop the fleet `up` started: SIGTERM to `up` (which stops its processes), or to
    the processes themselves when `up` is gone; wait until they exit."""
    path = args.dir / STATE
    try:
        state = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        print(f"no fleet running (no {path})", file=sys.stderr)
        return 1
    if _is(state["pid"], "fleet.py"):
        targets = [state["pid"]]
        wait = args.grace + 10
    else:
        targets = [m["pid"] for m in state["members"] if _is(m["pid"], "hub.cli")]
        wait = args.grace
    for pid in targets:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while any(_is(pid, "") for pid in targets):
        if time.monotonic() > deadline:
            print(f"still running after {wait:.0f} s: {targets}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    path.unlink(missing_ok=True)
    print(f"fleet stopped ({len(state['members'])} processes)")
    return 0


def _write_state(directory: Path, fleet: Fleet) -> None:
    members: list[dict[str, Any]] = [
        {"name": m.name, "pid": m.proc.pid, "url": m.url, "log": str(m.log)}
        for m in fleet.members.values()
        if m.proc is not None
    ]
    state = {"pid": os.getpid(), "members": members}
    (directory / STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")


def _is(pid: int, marker: str) -> bool:
    """Whether `pid` is a live (not zombie) process whose command line contains `marker`."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except (OSError, IndexError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("scripts/fleet.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help=up.__doc__)
    start.add_argument("--api", type=int, default=2, help="API processes (default 2)")
    start.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    start.add_argument("--config", help="the hub's config file (default HUB_CONFIG or the demo)")
    start.add_argument("--host", default="127.0.0.1")
    start.add_argument("--port", type=int, default=8001, help="first API port (default 8001)")
    start.add_argument(
        "--metrics-port", type=int, default=9201, help="first worker metrics port (default 9201)"
    )
    start.add_argument("--demo", action="store_true", help="demo simulators in api-1")
    stop = commands.add_parser("down", help=down.__doc__)
    for command in (start, stop):
        command.add_argument("--dir", type=Path, default=REPO / "var" / "fleet", help="logs, state")
        command.add_argument(
            "--grace", type=float, default=GRACE, help=f"seconds to exit after SIGTERM ({GRACE:g})"
        )
    args = parser.parse_args(argv)
    return up(args) if args.command == "up" else down(args)


if __name__ == "__main__":
    sys.exit(main())
