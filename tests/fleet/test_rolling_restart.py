"""A rolling restart under load loses nothing and sends nothing twice.

A sender streams `MESSAGES` notes (to two destinations each) from several
clients, round-robin over the fleet's two APIs, while every process of the fleet
is restarted one by one: SIGTERM, wait for it to exit, start it, wait until it
is ready. A client that loses its answer (connection refused or cut, 5xx) sends
the same message again to the other API: the same id from the same source is a
duplicate, answered 202 like the first time and stored once.

Afterwards, from the store and from the destination: every message answered 202
is stored and delivered to each destination, each delivery recorded delivered
once, and each (message, destination) received once. A graceful stop finishes
or returns what it holds, so a restart must not make the destination see a
message twice (repeats are counted, then required to be zero).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from adapters.sink import RecordingSink
from tests.fleet.conftest import StartFleet, fleet_config, store_figures
from tests.support import DEST_A, DEST_B, KEYS, SENDER, note, wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
MESSAGES = 5_000
CLIENTS = 8
PACE = 150.0  # messages per second while restarting: the stream outlasts the restarts
ORDER = ["api-1", "worker-1", "worker-2", "api-2", "worker-3"]


class Sender:
    """Sends `total` notes from `clients` threads, message n to API n % 2 first, paced
    at `pace` per second until `unpace()`; a lost answer is retried on the other API."""

    def __init__(self, urls: list[str], total: int, clients: int, pace: float) -> None:
        self.urls = urls
        self.total = total
        self.pace = pace
        self.accepted: set[str] = set()
        self.resent = 0  # answers lost and the message sent again
        self.errors: Counter[str] = Counter()
        self.refused: list[str] = []  # answered 4xx: a bug, not a restart
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._unpaced = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        self._t0 = 0.0

    def start(self) -> Sender:
        self._t0 = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def unpace(self) -> None:
        self._unpaced.set()

    def join(self, timeout: float) -> None:
        self.unpace()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the sender did not finish"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def _run(self) -> None:
        headers = {"authorization": f"Bearer {KEYS[SENDER]}"}
        clients = [httpx.Client(base_url=u, headers=headers, timeout=30) for u in self.urls]
        try:
            while (n := next(self._next)) < self.total:
                wait = self._t0 + n / self.pace - time.monotonic()
                if wait > 0 and not self._unpaced.is_set():
                    self._unpaced.wait(wait)
                self._send(clients, n, note([DEST_A, DEST_B], id=f"roll-{n:05d}"))
        finally:
            for c in clients:
                c.close()

    def _send(self, clients: list[httpx.Client], n: int, event: dict[str, object]) -> None:
        deadline = time.monotonic() + 60
        for attempt in itertools.count():
            try:
                r = clients[(n + attempt) % 2].post("/api/v1/messages", json=event)
                reason = f"HTTP {r.status_code}"
            except httpx.TransportError as exc:
                r, reason = None, type(exc).__name__
            with self._lock:
                if r is not None and r.status_code == 202:
                    self.accepted.add(str(event["id"]))
                    return
                self.errors[reason] += 1
                if r is not None and r.status_code < 500:
                    self.refused.append(f"{event['id']}: {r.status_code} {r.text[:200]}")
                    return
                self.resent += 1
            if time.monotonic() > deadline:
                self.refused.append(f"{event['id']}: no answer within 60 s ({reason})")
                return
            time.sleep(0.05)


def test_rolling_restart_under_load_loses_nothing_and_repeats_nothing(
    tmp_path: Path, sink: RecordingSink, start_fleet: StartFleet, services: dict[str, str]
) -> None:
    sink.respond(200, delay=0.02)  # calls take a little time: some are under way at each stop
    fleet = start_fleet(fleet_config(tmp_path, sink.url))
    began = time.monotonic()
    sender = Sender(fleet.api_urls, MESSAGES, CLIENTS, PACE).start()
    restarts = []
    try:
        wait_until(lambda: sender.count >= 300, timeout=60)
        for name in ORDER:
            restarts.append((fleet.restart_one(name), sender.count))
        sender.join(timeout=300)
    finally:
        sender.unpace()
    sending = time.monotonic() - began

    accepted = sender.accepted
    expected = {(path, i) for i in accepted for path in ("/000-00-12-H29", "/000-00-13-H29")}
    wait_until(
        lambda: expected <= {(r.path, r.event_id) for r in sink.received},
        timeout=180,
        interval=0.5,
    )
    figures = wait_until(
        lambda: (
            (f := store_figures(services))["deliveries"] == {"delivered": 2 * len(accepted)} and f
        ),
        timeout=60,
        interval=0.5,
    )
    elapsed = time.monotonic() - began
    received = Counter((r.path, r.event_id) for r in sink.received if r.delivered)
    repeats = sum(n - 1 for n in received.values())
    failed = sum(not r.delivered for r in sink.received)
    print(
        f"\nrolling restart: {len(accepted)} messages ({2 * len(accepted)} deliveries),"
        f" {len(restarts)} restarts (exited in / ready again in) "
        + ", ".join(f"{r.name} {r.stop_seconds:.1f}/{r.total_seconds:.1f} s" for r, _ in restarts)
        + f"; sent in {sending:.1f} s, all delivered in {elapsed:.1f} s;"
        f" sent again to the other API {sender.resent} {dict(sender.errors)};"
        f" repeats at the destination {repeats}, answered other than 2xx {failed}"
    )

    assert sender.refused == []
    assert len(accepted) == MESSAGES
    assert all(r.exit_code == 0 for r, _ in restarts), restarts
    assert restarts[-1][1] < MESSAGES, "the restarts ended after the stream: not under load"
    assert figures["stored"] == accepted
    assert figures["delivered_twice"] == []
    assert set(received) == expected
    assert repeats == 0, [k for k, n in received.items() if n > 1][:10]
    assert fleet.stop() == dict.fromkeys(fleet.members, 0)
