"""SIGTERM stops a hub process gracefully: it takes no new work, finishes what it
holds, and exits 0.

An API stops listening, answers the requests under way (202 once stored), then
exits, even with the broker away (what it could not publish is swept later). A
worker stops consuming, waits for its calls under way to be answered (up to the
destination's `timeout`), records their outcomes and acks their jobs, then
exits: none of them is sent again by another worker. Only a stop that runs out
of time cuts calls, and then records nothing for them (the last test, in process).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
import pytest
import sqlalchemy as sa

from adapters.sink import RecordingSink
from hub.runtime import Hub
from hub.settings import Settings
from hub.store.db import create_engine
from tests.fleet.conftest import StartFleet, client, fleet_config, message, store_figures
from tests.support import DEST_A, KEYS, SENDER, free_port, note, wait_until

SLOW = 12.0  # seconds the destination takes to answer: more than the 10 s the hub used
# to give its tasks on stop before cancelling them, calls and all


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_api_stopped_during_a_request_answers_it_once_stored(
    tmp_path: Path, sink: RecordingSink, start_fleet: StartFleet
) -> None:
    fleet = start_fleet(fleet_config(tmp_path, sink.url), apis=2, workers=1)
    api, other = fleet.apis
    assert api.proc is not None
    event = note([DEST_A])
    body = orjson.dumps(event)
    refused: list[bool] = []

    def slowly() -> Iterator[bytes]:
        """The body in two parts, the API told to stop in between."""
        yield body[:20]
        time.sleep(0.3)  # the API has the request's head
        api.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        time.sleep(0.5)
        try:
            httpx.get(f"{api.url}/healthz", timeout=2)
            refused.append(False)
        except httpx.ConnectError:
            refused.append(True)  # no new connection while it finishes this one
        yield body[20:]

    r = httpx.post(
        f"{api.url}/api/v1/messages",
        content=slowly(),
        headers={"authorization": f"Bearer {KEYS[SENDER]}", "content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    assert refused == [True]
    assert api.proc.wait(30) == 0
    m = wait_until(
        lambda: (s := message(other.url, event["id"]))["status"] == "delivered" and s, timeout=30
    )
    assert [d["attempts"] for d in m["deliveries"]] == [1]


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_worker_stopped_during_slow_calls_finishes_them(
    tmp_path: Path, sink: RecordingSink, start_fleet: StartFleet, services: dict[str, str]
) -> None:
    sink.respond(200, delay=SLOW)
    config = fleet_config(tmp_path, sink.url, concurrency=4, timeout=SLOW + 3)
    fleet = start_fleet(config, apis=1, workers=2)
    sent = []
    with client(fleet.api_urls[0], KEYS[SENDER]) as c:
        for _ in range(8):
            event = note([DEST_A])
            assert c.post("/api/v1/messages", json=event).status_code == 202
            sent.append(event["id"])
    wait_until(lambda: sink.count == 8)  # each worker has 4 calls under way (concurrency 4)

    restart = fleet.restart_one("worker-1")
    figures = wait_until(
        lambda: (f := store_figures(services))["deliveries"] == {"delivered": 8} and f,
        timeout=30,
    )
    assert Counter(sink.ids()) == dict.fromkeys(sent, 1)
    assert figures["delivered_twice"] == []
    assert restart.exit_code == 0
    assert SLOW - 1 < restart.stop_seconds < SLOW + 8, restart  # it waited for its answers


class BrokerLink:
    """A TCP relay to the local RabbitMQ that can be cut: the broker away for the
    processes connected through it only."""

    def __init__(self, amqp_url: str) -> None:
        self.port = free_port()
        self.url = amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{self.port}")
        self._loop = asyncio.new_event_loop()
        self._streams: list[asyncio.StreamWriter] = []
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._server = self._run(asyncio.start_server(self._relay, "127.0.0.1", self.port))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        self._streams += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""

        async def cut() -> None:
            self._server.close()
            for writer in self._streams:
                writer.transport.abort()

        self._run(cut())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_api_stopped_with_the_broker_away_exits_and_loses_nothing(
    tmp_path: Path,
    sink: RecordingSink,
    start_fleet: StartFleet,
    services: dict[str, str],
) -> None:
    config = fleet_config(tmp_path, sink.url)
    with BrokerLink(services["HUB_BROKER_URL"]) as link:
        api = start_fleet(config, apis=1, workers=0, HUB_BROKER_URL=link.url)
        link.cut()
        sent = []
        with client(api.api_urls[0], KEYS[SENDER]) as c:
            for _ in range(5):
                event = note([DEST_A])
                assert c.post("/api/v1/messages", json=event).status_code == 202  # stored
                sent.append(event["id"])
        began = time.monotonic()
        assert api.stop() == {"api-1": 0}
        assert time.monotonic() - began < 15  # not waiting for ever for the broker's confirms
    # The jobs it could not publish are committed: a worker's sweep enqueues them.
    start_fleet(config, apis=0, workers=1, HUB_RECOVERY_GRACE_SECONDS="1", HUB_SWEEP_SECONDS="1")
    wait_until(lambda: sink.unique_ids() == set(sent), timeout=30)
    assert sink.duplicates() == 0


def test_a_stop_that_times_out_cuts_the_calls_and_records_nothing_for_them(
    tmp_path: Path, sink: RecordingSink
) -> None:
    """The embedded hub, in process: a call still under way when the stop's time is up
    is cancelled with its worker, not left running to record an outcome afterwards."""
    sink.respond(200, delay=3)
    settings = Settings(
        config=fleet_config(tmp_path, sink.url),
        database_url=f"sqlite:///{tmp_path / 'hub.db'}",
        blob_dir=tmp_path / "blobs",
    )

    async def scenario() -> list[str]:
        hub = Hub(settings)
        await hub.start()
        sender = hub.config.systems[SENDER]
        await hub.ingest.accept(hub.ingest.parse(sender, orjson.dumps(note([DEST_A]))))
        await asyncio.to_thread(wait_until, lambda: sink.count == 1)
        await hub.stop(timeout=0.5)
        return [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(scenario()) == []  # nothing left running
    engine = create_engine(settings.sqlalchemy_url())
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, attempts FROM deliveries")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("pending", 0)]  # no try counted: sent again at start
