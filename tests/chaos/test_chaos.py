"""Chaos suite: stream messages through the hub while a fault is injected, lose none.

Every scenario sends `CHAOS_MESSAGES` notes (default 5,000), spread over the time
the fault lasts so that the fault lands while messages flow, to a RecordingSink,
then waits for the outcome and checks, with the store and with the destination:

- every message answered 202 reached the destination (none lost);
- the store agrees with the destination: its delivered deliveries are exactly the
  distinct ids the destination answered 2xx, no message is left `accepted` or
  `routed`, no delivery `pending`, `retrying` or `dead`;
- duplicates at the destination (each droppable by its Idempotency-Key) are
  counted and printed, not refused: at-least-once is the promise.

Each scenario prints one line of figures and appends it as JSON to
`bench-results/chaos.jsonl`. Hub processes log at info level to files under the
test's tmp_path; a loss fails the test with what the store says of the missing
messages and the warnings of those logs.

Run: `flock /tmp/lgsp-services.lock .venv/bin/pytest -m chaos -s` (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.requests import ClientDisconnect

from adapters.sink import RecordingSink
from hub.settings import Settings
from hub.store.db import create_engine
from tests.chaos.conftest import PG_CLUSTER
from tests.support import DEST_A, REPO, HubProcess, hub_env, note, wait_until, write_config
from tests.test_crash import Sender, explain, rabbitmqctl

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(1200)]

MESSAGES = int(os.environ.get("CHAOS_MESSAGES", "5000"))
# How long the destination answers 503 before it starts flapping.
DESTINATION_DOWN = float(os.environ.get("CHAOS_DESTINATION_DOWN_SECONDS", "60"))
# The random moments of the kill -9 scenarios; printed so a run can be repeated.
SEED = int(os.environ.get("CHAOS_SEED") or random.randrange(1_000_000))
# How long a scenario may take, after its fault, to deliver everything accepted.
DRAIN_TIMEOUT = float(os.environ.get("CHAOS_DRAIN_TIMEOUT", "300"))
RESULTS = REPO / "bench-results" / "chaos.jsonl"

# Tries enough that no fault of a scenario dead-letters anything: the destination
# itself never fails outside the destination scenario.
PATIENT = [0.2, 0.5, 1.0, 2.0, 4.0] + [5.0] * 15
# 503 for DESTINATION_DOWN seconds, then flapping, then timeouts: 31 tries over
# more than 4 minutes, delays growing to 10 s so the failing tries stay few.
DESTINATION_RETRY = [0.5, 1.0, 2.0, 4.0, 8.0] + [10.0] * 25
DESTINATION_TIMEOUT = 1.0  # the system's `timeout`; the slow phase answers after 2 s
FLAPS, FLAP_SECONDS, SLOW_SECONDS = 4, 2.5, 10.0
REFUSED_BACKOFF = 0.1  # seconds a sending thread waits after a refusal


# --- hub processes and the stream of messages ------------------------------------------


class LoggedHub(HubProcess):
    """`hub serve --role ...` as a child process, logging at info level to `log`."""

    def __init__(self, settings: Settings, role: str, log: Path) -> None:
        super().__init__(settings, role=role, log=log)
        self.log_path = log

    def start(self) -> LoggedHub:
        """Start the process; return once it serves its API (or, a worker, once started)."""
        env = hub_env(self.settings, self.port) | {"HUB_LOG_LEVEL": "info"}
        with open(self.log_path, "ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "serve", "--role", self.role, "--no-demo"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        if self.role == "worker":
            wait_until(self._worker_started, timeout=60, interval=0.1)
        else:
            wait_until(self._ready, timeout=60, interval=0.1)
        return self

    def _worker_started(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}; see {self.log_path}")
        return "hub started: role=worker" in self.log_path.read_text("utf-8", "replace")


class CountingSender(Sender):
    """test_crash's Sender that also counts why messages were refused (status or error)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reasons: Counter[str] = Counter()

    def send(self, _: int = 0) -> bool:  # type: ignore[override]
        """Send one new note to DEST_A; remember its id if answered 202, else why not."""
        event = note([DEST_A])
        try:
            r = self._client.post(f"{self.url}/api/v1/messages", json=event)
            reason = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            r, reason = None, type(exc).__name__
        with self._lock:
            if r is not None and r.status_code == 202:
                self.accepted.append(event["id"])
                return True
            self.refused += 1
            self.reasons[reason] += 1
            return False


class Stream:
    """Sends `total` notes through `sender` from several threads.

    Message i leaves at `i * seconds / total` after start, so the stream spans
    `seconds` and a fault injected meanwhile lands while messages flow; `unpace()`
    sends the rest as fast as the hub takes them. Each message is sent once: a
    refused one (error, 5xx, connection refused) is not accepted and not expected;
    the thread that saw it waits REFUSED_BACKOFF before its next message.
    """

    def __init__(
        self, sender: CountingSender, total: int, seconds: float, threads: int = 8
    ) -> None:
        self.sender = sender
        self.total = total
        self._interval = seconds / max(total, 1)
        self._next = 0
        self._lock = threading.Lock()
        self._unpaced = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self._t0 = 0.0

    def start(self) -> Stream:
        """Start sending; returns at once."""
        self._t0 = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def _run(self) -> None:
        while True:
            with self._lock:
                i, self._next = self._next, self._next + 1
            if i >= self.total:
                return
            wait = self._t0 + i * self._interval - time.monotonic()
            if wait > 0 and not self._unpaced.is_set():
                self._unpaced.wait(wait)
            if not self.sender.send():
                time.sleep(REFUSED_BACKOFF)  # as a client would, rather than hammer

    @property
    def sent(self) -> int:
        """Messages handed to a sending thread so far."""
        with self._lock:
            return min(self._next, self.total)

    @property
    def accepted(self) -> int:
        """Messages answered 202 so far."""
        return len(self.sender.accepted)

    def unpace(self) -> None:
        """Send what is left without waiting for its planned moment."""
        self._unpaced.set()

    def cancel(self) -> None:
        """Send nothing more (a scenario that failed early); answers under way still count."""
        with self._lock:
            self._next = self.total
        self._unpaced.set()

    def finish(self, timeout: float = 600.0) -> None:
        """Send the rest now and wait until every message has had its answer."""
        self.unpace()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the stream did not finish"


# --- what the store says ----------------------------------------------------------------


@dataclass(frozen=True)
class StoreFigures:
    """Counts of messages and deliveries per status, and the ids delivered."""

    messages: dict[str, int]
    deliveries: dict[str, int]
    delivered_ids: set[str] = field(repr=False)

    @property
    def settled(self) -> bool:
        """Nothing left to do: no message waiting for the router or a delivery, none to try."""
        waiting = ("accepted", "routed")
        return not any(self.messages.get(s) for s in waiting) and not any(
            self.deliveries.get(s) for s in ("pending", "retrying")
        )


def read_store(settings: Settings) -> StoreFigures:
    """The store's figures, read on a connection of its own."""
    engine = create_engine(settings.sqlalchemy_url())
    try:
        with engine.connect() as conn:
            messages: dict[str, int] = dict(
                conn.execute(sa.text("SELECT status, count(*) FROM messages GROUP BY status")).all()
            )
            deliveries: dict[str, int] = dict(
                conn.execute(
                    sa.text("SELECT status, count(*) FROM deliveries GROUP BY status")
                ).all()
            )
            delivered = conn.execute(
                sa.text("SELECT message_id FROM deliveries WHERE status = 'delivered'")
            ).scalars()
            return StoreFigures(messages, deliveries, set(delivered))
    finally:
        engine.dispose()


def unfinished(settings: Settings, limit: int = 5) -> list[str]:
    """Ids of messages the store shows still waiting (accepted, routed, pending, retrying)."""
    engine = create_engine(settings.sqlalchemy_url())
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT m.id FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id"
                        " WHERE m.status IN ('accepted', 'routed')"
                        " OR d.status IN ('pending', 'retrying', 'dead') ORDER BY m.seq LIMIT :n"
                    ),
                    {"n": limit},
                ).scalars()
            )
    finally:
        engine.dispose()


def trace(settings: Settings, ids: list[str]) -> str:
    """Each message's row, its deliveries and its hops, as the store has them."""
    engine = create_engine(settings.sqlalchemy_url())
    lines = []
    try:
        with engine.connect() as conn:
            for mid in ids:
                m = conn.execute(
                    sa.text(
                        "SELECT status, received_at, enqueued_at, updated_at FROM messages"
                        " WHERE id = :id"
                    ),
                    {"id": mid},
                ).first()
                lines.append(f"message {mid}: {tuple(m) if m else 'NOT IN THE STORE'}")
                for d in conn.execute(
                    sa.text(
                        "SELECT id, status, attempts, enqueued_at, updated_at, last_error"
                        " FROM deliveries WHERE message_id = :id"
                    ),
                    {"id": mid},
                ):
                    lines.append(f"  delivery {tuple(d)}")
                for h in conn.execute(
                    sa.text(
                        "SELECT at, stage, destination, detail FROM hops"
                        " WHERE message_id = :id ORDER BY id"
                    ),
                    {"id": mid},
                ):
                    lines.append(f"  hop {tuple(h)}")
    finally:
        engine.dispose()
    return "\n".join(lines)


def log_excerpt(logs: list[Path], lines: int = 40) -> str:
    """The warnings and errors of the hub's logs (the last `lines` of each)."""
    out = []
    for path in logs:
        text = path.read_text("utf-8", "replace").splitlines() if path.exists() else []
        notable = [t for t in text if "WARNING" in t or "ERROR" in t or "Traceback" in t]
        out.append(f"--- {path} ({len(text)} lines, {len(notable)} warnings/errors)")
        out.extend(notable[-lines:])
    return "\n".join(out)


# --- one scenario -------------------------------------------------------------------------


class Scenario:
    """A sink, the hub processes of one scenario, its stream, its checks and its report."""

    def __init__(
        self,
        name: str,
        backend: str,
        tmp_path: Path,
        sink: RecordingSink,
        fields: dict[str, str],
        *,
        delays: list[float] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.backend = backend
        self.tmp_path = tmp_path
        self.sink = sink
        self.settings = Settings(
            config=write_config(tmp_path, sink.url, delays=delays or PATIENT, timeout=timeout),
            # What a crash left committed but unconfirmed in RabbitMQ is swept after 3 s.
            recovery_grace_seconds=3,
            sweep_seconds=1,
            database_url=fields["database_url"],
            broker_url=fields["broker_url"],
            queue_prefix=fields["queue_prefix"],
        )
        self.hubs: list[LoggedHub] = []
        self.events: list[dict[str, Any]] = []
        self.stream: Stream | None = None
        self.started = 0.0

    def hub(self, role: str = "all") -> LoggedHub:
        """Start one more hub process of `role`, logging to its own file."""
        log = self.tmp_path / f"hub-{len(self.hubs) + 1:02d}-{role}.log"
        process = LoggedHub(self.settings, role, log).start()
        self.hubs.append(process)
        return process

    def send(self, url: str, seconds: float) -> Stream:
        """Start streaming MESSAGES notes to the API at `url`, spread over `seconds`."""
        self.started = time.monotonic()
        self.stream = Stream(CountingSender(url), MESSAGES, seconds).start()
        return self.stream

    def note(self, event: str, **extra: Any) -> None:
        """Record a fault event with when it happened and how far the stream had got."""
        assert self.stream is not None
        at = round(time.monotonic() - self.started, 1)
        entry = {"event": event, "at": at, "accepted": self.stream.accepted, **extra}
        self.events.append(entry)
        print(f"  {at:6.1f} s  {event}  (accepted so far {self.stream.accepted})")

    def mid_stream(self) -> None:
        """Fail when the stream had ended before the fault: it would prove nothing."""
        assert self.stream is not None
        assert self.stream.sent < self.stream.total, "the fault came after the stream ended"

    def stop(self) -> None:
        """Stop sending and stop every hub process still running."""
        if self.stream is not None:
            self.stream.cancel()
        for process in self.hubs:
            process.stop()

    def logs(self) -> list[Path]:
        """The log files of every hub process of the scenario, in start order."""
        return [p.log_path for p in self.hubs]

    def check(self, **extra: Any) -> dict[str, Any]:
        """Finish the stream, wait for every accepted message, compare store and sink, report."""
        stream = self.stream
        assert stream is not None
        stream.finish()
        sent_in = time.monotonic() - self.started
        accepted = set(stream.sender.accepted)
        assert len(accepted) >= MESSAGES // 2, f"only {len(accepted)} accepted: too few to prove"
        try:
            wait_until(
                lambda: accepted <= self.sink.unique_ids(), timeout=DRAIN_TIMEOUT, interval=0.2
            )
        except AssertionError:
            missing = accepted - self.sink.unique_ids()
            raise AssertionError(self.diagnose(f"LOSS in {self.name}", sorted(missing))) from None
        delivered_in = time.monotonic() - self.started
        try:
            wait_until(lambda: read_store(self.settings).settled, timeout=120, interval=0.5)
        except AssertionError:
            stuck = unfinished(self.settings)
            raise AssertionError(
                self.diagnose(f"store not settled in {self.name}", stuck)
            ) from None
        elapsed = time.monotonic() - self.started
        store = read_store(self.settings)
        at_sink = self.sink.unique_ids()
        total = sum(store.messages.values())
        figures = {
            "scenario": self.name,
            "backend": self.backend,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "messages": MESSAGES,
            "accepted": len(accepted),
            "refused": stream.sender.refused,
            "refused_why": dict(stream.sender.reasons),
            "stored": total,
            "delivered": len(at_sink),
            "store_delivered": store.deliveries.get("delivered", 0),
            "duplicates": self.sink.duplicates(),
            "seconds": round(elapsed, 1),
            # From the first message sent: the last answered, the last accepted delivered.
            "sent_in": round(sent_in, 1),
            "delivered_in": round(delivered_in, 1),
            "seed": SEED,
            "events": self.events,
            **extra,
        }
        self.report(figures)
        # Every message stored (202 or not: a kill can cut the answer after the commit)
        # was delivered, once in the store's eyes; the destination saw exactly those.
        assert store.messages == {"delivered": total}, store.messages
        assert store.deliveries == {"delivered": total}, store.deliveries
        assert store.delivered_ids == at_sink, (
            f"store and destination disagree: {len(store.delivered_ids - at_sink)} delivered in "
            f"the store only, {len(at_sink - store.delivered_ids)} at the destination only"
        )
        return figures

    def diagnose(self, what: str, ids: list[str]) -> str:
        """What the store and the logs say of messages that did not arrive."""
        return "\n".join(
            [
                f"{what}: {len(ids)} messages; seed {SEED}; events {self.events}",
                explain(self.settings, set(ids)),
                trace(self.settings, ids[:5]),
                f"store: {read_store(self.settings)}",
                log_excerpt(self.logs()),
            ]
        )

    def report(self, figures: dict[str, Any]) -> None:
        """Print one line of figures and append them to bench-results/chaos.jsonl."""
        reasons = figures["refused_why"]
        why = ": " + ", ".join(f"{n} {r}" for r, n in reasons.items()) if reasons else ""
        print(
            f"\nchaos {self.name} [{self.backend}]: accepted {figures['accepted']}/{MESSAGES}"
            f" (refused {figures['refused']}{why}),"
            f" delivered {figures['delivered']},"
            f" duplicates {figures['duplicates']}, {figures['seconds']} s"
            f" (sent in {figures['sent_in']} s, delivered in {figures['delivered_in']} s)"
        )
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as f:
            f.write(json.dumps(figures, ensure_ascii=False) + "\n")


@pytest.fixture
def services(pg_url: str, amqp_url: str, unique: str) -> Iterator[dict[str, str]]:
    """PostgreSQL (a schema of this test) and RabbitMQ (queues of this test, deleted after)."""
    from tests.conftest import delete_queues

    yield {"database_url": pg_url, "broker_url": amqp_url, "queue_prefix": unique}
    delete_queues(amqp_url, unique)


def _not_a_cut_request(record: logging.LogRecord) -> bool:
    """False for the sink's traceback of a request whose sender was killed mid-body."""
    return not (record.exc_info and isinstance(record.exc_info[1], ClientDisconnect))


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    """The destination; a hub killed while posting to it is expected, not logged as an error."""
    server_log = logging.getLogger("uvicorn.error")
    server_log.addFilter(_not_a_cut_request)
    try:
        with RecordingSink() as s:
            yield s
    finally:
        server_log.removeFilter(_not_a_cut_request)


def backend_name(fields: dict[str, str]) -> str:
    return "embedded" if fields["broker_url"].startswith("memory://") else "services"


# --- faults ---------------------------------------------------------------------------------


@contextmanager
def rabbitmq_stopped() -> Iterator[None]:
    """`rabbitmqctl stop_app` for the block; started again (and awaited) in any case."""
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")


def beam_pid() -> int:
    """The OS pid of the RabbitMQ node's beam.smp."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "eval", "os:getpid()."],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return int(out.strip().strip('"'))


@contextmanager
def rabbitmq_paused() -> Iterator[int]:
    """`kill -STOP` of the broker for the block; `kill -CONT` in any case."""
    pid = beam_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def pg_ctl(action: str) -> None:
    """`pg_ctlcluster` on the local cluster: start, stop, restart."""
    version, name = PG_CLUSTER
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextmanager
def postgres_stopped() -> Iterator[None]:
    """PostgreSQL stopped (fast: sessions cut) for the block; started again in any case."""
    pg_ctl("stop")
    try:
        yield
    finally:
        pg_ctl("start")


# --- scenarios ------------------------------------------------------------------------------


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_rabbitmq_stopped_twice(
    tmp_path: Path, sink: RecordingSink, services: dict[str, str]
) -> None:
    """RabbitMQ stopped for 10 s and started again, twice, while messages flow."""
    run = Scenario("rabbitmq-stopped-twice", "services", tmp_path, sink, services)
    try:
        hub = run.hub()
        stream = run.send(hub.url, seconds=45)
        accepted_while_down = 0
        for outage in (1, 2):
            time.sleep(4)  # messages flow before the fault
            run.mid_stream()
            before = stream.accepted
            with rabbitmq_stopped():
                run.note(f"rabbitmqctl stop_app #{outage}")
                time.sleep(10)  # the outage itself
                accepted_while_down += stream.accepted - before
                run.note(f"rabbitmqctl start_app #{outage}")
            run.note(f"RabbitMQ up again #{outage}")
        time.sleep(3)
        run.check(accepted_while_rabbitmq_down=accepted_while_down)
        assert accepted_while_down > 0, "ingest should keep accepting while the broker is away"
    finally:
        run.stop()


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_kill_9_worker_then_api_then_all_in_one(
    tmp_path: Path, sink: RecordingSink, services: dict[str, str]
) -> None:
    """kill -9 of a worker, then of the API, then of an all-in-one process, each restarted."""
    rng = random.Random(SEED)
    run = Scenario("kill-9-worker-api-all", "services", tmp_path, sink, services)
    try:
        api, worker = run.hub("api"), run.hub("worker")
        stream = run.send(api.url, seconds=30)

        time.sleep(rng.uniform(2.0, 5.0))
        run.mid_stream()
        worker.kill()
        run.note("kill -9 worker")
        time.sleep(rng.uniform(0.0, 1.0))
        worker = run.hub("worker")
        run.note("worker restarted")

        time.sleep(rng.uniform(2.0, 5.0))
        run.mid_stream()
        api.kill()
        run.note("kill -9 api")
        api = run.hub("api")
        stream.sender.url = api.url
        run.note("api restarted")

        everything = run.hub("all")
        stream.sender.url = everything.url
        api.stop()
        worker.stop()
        run.note("all-in-one took over; api and worker stopped")
        time.sleep(rng.uniform(2.0, 5.0))
        run.mid_stream()
        everything.kill()
        run.note("kill -9 all-in-one")
        everything = run.hub("all")
        stream.sender.url = everything.url
        run.note("all-in-one restarted")
        run.check()
    finally:
        run.stop()


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_postgres_stopped_and_started(
    tmp_path: Path, sink: RecordingSink, services: dict[str, str]
) -> None:
    """PostgreSQL stopped for 5 s (sessions cut) and started again while messages flow."""
    run = Scenario("postgres-stopped-5s", "services", tmp_path, sink, services)
    try:
        hub = run.hub()
        stream = run.send(hub.url, seconds=30)
        time.sleep(5)
        run.mid_stream()
        refused_before = stream.sender.refused
        with postgres_stopped():
            run.note("pg_ctlcluster stop")
            time.sleep(5)  # the outage itself
            run.note("pg_ctlcluster start")
        run.note("PostgreSQL up again")
        refused_during = stream.sender.refused - refused_before
        time.sleep(3)
        run.check(refused_while_postgres_down=refused_during)
    finally:
        run.stop()


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_rabbitmq_paused(tmp_path: Path, sink: RecordingSink, services: dict[str, str]) -> None:
    """RabbitMQ frozen (`kill -STOP` of beam.smp) for 5 s, then `kill -CONT`."""
    run = Scenario("rabbitmq-paused", "services", tmp_path, sink, services)
    try:
        hub = run.hub()
        run.send(hub.url, seconds=15)
        time.sleep(4)
        run.mid_stream()
        with rabbitmq_paused() as pid:
            run.note(f"kill -STOP {pid}")
            time.sleep(5)  # the pause itself
        run.note(f"kill -CONT {pid}")
        time.sleep(2)
        run.check()
    finally:
        run.stop()


def test_kill_9_all_in_one_embedded(
    tmp_path: Path, sink: RecordingSink, sqlite_url: str, unique: str
) -> None:
    """Embedded default (SQLite, in-process broker): kill -9 of the hub, twice, restarted."""
    rng = random.Random(SEED)
    fields = {"database_url": sqlite_url, "broker_url": "memory://", "queue_prefix": unique}
    run = Scenario("kill-9-all-in-one", "embedded", tmp_path, sink, fields)
    try:
        hub = run.hub()
        stream = run.send(hub.url, seconds=20)
        for kill in (1, 2):
            time.sleep(rng.uniform(2.0, 6.0))
            run.mid_stream()
            hub.kill()
            run.note(f"kill -9 all-in-one #{kill}")
            hub = run.hub()
            stream.sender.url = hub.url
            run.note(f"all-in-one restarted #{kill}")
        run.check()
    finally:
        run.stop()


def test_destination_503_then_flapping_then_slow(
    tmp_path: Path, sink: RecordingSink, backend: dict[str, str]
) -> None:
    """The destination answers 503, then comes and goes, then answers after its timeout."""
    name = backend_name(backend)
    run = Scenario(
        "destination-503-flapping-slow",
        name,
        tmp_path,
        sink,
        backend,
        delays=DESTINATION_RETRY,
        timeout=DESTINATION_TIMEOUT,
    )
    try:
        hub = run.hub()
        sink.respond(503)
        planned = DESTINATION_DOWN + 2 * FLAPS * FLAP_SECONDS + SLOW_SECONDS
        run.send(hub.url, seconds=planned)
        run.note(f"destination answers 503 for {DESTINATION_DOWN:g} s")
        time.sleep(DESTINATION_DOWN)
        sink.respond(200)
        run.note(f"destination flapping: down {FLAP_SECONDS:g} s, up {FLAP_SECONDS:g} s")
        for _ in range(FLAPS):
            sink.down()
            time.sleep(FLAP_SECONDS)
            sink.up()
            time.sleep(FLAP_SECONDS)
        run.mid_stream()
        sink.respond(200, delay=2 * DESTINATION_TIMEOUT)
        run.note(f"destination answers after {2 * DESTINATION_TIMEOUT:g} s for {SLOW_SECONDS:g} s")
        time.sleep(SLOW_SECONDS)
        sink.respond(200)
        run.note("destination healthy")
        failed = sum(1 for r in sink.received if not r.delivered)
        run.check(destination_errors=failed)
    finally:
        run.stop()
