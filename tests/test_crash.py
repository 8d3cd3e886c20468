"""Nothing accepted is lost: kill -9 of the hub, and RabbitMQ stopped, while messages flow."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from adapters.sink import RecordingSink
from hub.settings import Settings
from tests.support import (
    DEST_A,
    KEYS,
    SENDER,
    HubProcess,
    ThreadedHub,
    note,
    wait_until,
    write_config,
)


class Sender:
    """Sends notes from several threads and remembers which ones were answered 202."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.accepted: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30, headers={"authorization": f"Bearer {KEYS[SENDER]}"})

    def send(self, _: int = 0) -> None:
        event = note([DEST_A])
        try:
            r = self._client.post(f"{self.url}/api/v1/messages", json=event)
        except httpx.HTTPError:
            r = None
        with self._lock:
            if r is not None and r.status_code == 202:
                self.accepted.append(event["id"])
            else:
                self.refused += 1


@pytest.mark.slow
def test_kill_9_with_1000_in_flight_then_restart_loses_nothing(
    tmp_path: Path, backend: dict[str, str]
) -> None:
    with RecordingSink() as sink:
        sink.respond(200, delay=0.02)  # a slow destination keeps deliveries in flight
        settings = Settings(
            config=write_config(tmp_path, sink.url, concurrency=4),
            recovery_grace_seconds=2,
            sweep_seconds=1,
            **backend,
        )
        first = HubProcess(settings, log=tmp_path / "hub-1.log").start()
        sender = Sender(first.url)
        with ThreadPoolExecutor(8) as pool:
            sending = pool.map(sender.send, range(1000))
            wait_until(lambda: len(sender.accepted) >= 700 and sink.count >= 50, timeout=120)
            first.kill()  # mid-stream: some requests in ingest, some routed, some delivering
            list(sending)
        accepted = set(sender.accepted)
        assert len(accepted) >= 700
        assert len(sink.unique_ids()) < len(accepted), "the kill came too late to prove anything"
        second = HubProcess(settings, log=tmp_path / "hub-2.log").start()
        try:
            wait_until(lambda: accepted <= sink.unique_ids(), timeout=120, interval=0.5)
        except AssertionError:
            raise AssertionError(explain(settings, accepted - sink.unique_ids())) from None
        finally:
            second.stop()
        print(
            f"\naccepted {len(accepted)}, refused while down {sender.refused}, "
            f"duplicates at the destination {sink.duplicates()}"
        )


def explain(settings: Settings, missing: set[str]) -> str:
    """What the store says of messages the destination never received."""
    import sqlalchemy as sa

    from hub.store.db import create_engine

    engine = create_engine(settings.sqlalchemy_url())
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.id, m.status, m.enqueued_at, d.status, d.attempts, d.enqueued_at "
                "FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id"
            )
        ).all()
    engine.dispose()
    lost = [r for r in rows if r[0] in missing]
    return f"{len(missing)} accepted messages never arrived; store says: {lost[:10]}"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@pytest.mark.slow
@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_rabbitmq_stopped_and_started_while_messages_flow(
    tmp_path: Path, pg_url: str, amqp_url: str, unique: str
) -> None:
    from tests.conftest import delete_queues

    with RecordingSink() as sink:
        settings = Settings(
            config=write_config(tmp_path, sink.url),
            database_url=pg_url,
            broker_url=amqp_url,
            queue_prefix=unique,
        )
        try:
            with ThreadedHub(settings) as hub:
                sender = Sender(hub.url)
                stop_sending = threading.Event()

                def stream() -> None:
                    while not stop_sending.is_set() and len(sender.accepted) < 600:
                        sender.send()
                        time.sleep(0.01)

                thread = threading.Thread(target=stream)
                thread.start()
                try:
                    wait_until(lambda: len(sender.accepted) >= 100, timeout=60)
                    rabbitmqctl("stop_app")
                    during = len(sender.accepted)
                    time.sleep(5)  # the outage itself, not a wait for an outcome
                    accepted_during = len(sender.accepted) - during
                finally:
                    rabbitmqctl("start_app")
                    rabbitmqctl("await_startup")
                wait_until(lambda: len(sender.accepted) >= 300, timeout=120)
                stop_sending.set()
                thread.join()
                accepted = set(sender.accepted)
                wait_until(lambda: accepted <= sink.unique_ids(), timeout=180, interval=0.5)
                assert accepted_during > 0, "ingest should keep accepting while the broker is away"
                print(
                    f"\naccepted {len(accepted)} ({accepted_during} while RabbitMQ was stopped), "
                    f"duplicates at the destination {sink.duplicates()}"
                )
        finally:
            delete_queues(amqp_url, unique)
