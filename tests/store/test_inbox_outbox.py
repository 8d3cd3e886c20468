"""Inbox and outbox on both stores and both transports."""

from __future__ import annotations

import asyncio

import orjson

from hub.broker import open_transport
from hub.store import inbox, outbox
from hub.store.db import Database
from tests.conftest import delete_queues


def test_inbox_claims_each_id_once_and_a_rollback_releases_it(database_url: str) -> None:
    db = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    db.upgrade()
    try:
        with db.engine.begin() as conn:
            assert inbox.claim(conn, "tasks", ["a", "b"]) == {"a", "b"}
        with db.engine.begin() as conn:
            assert inbox.claim(conn, "tasks", ["b", "c"]) == {"c"}
            assert inbox.claim(conn, "reports", ["b"]) == {"b"}  # per consumer
        try:
            with db.engine.begin() as conn:
                assert inbox.claim(conn, "tasks", ["d"]) == {"d"}
                raise RuntimeError("the effects failed")
        except RuntimeError:
            pass
        with db.engine.begin() as conn:
            assert inbox.claim(conn, "tasks", ["d"]) == {"d"}
    finally:
        db.close()


def test_outbox_publishes_only_what_committed_once(
    database_url: str, transport_url: str, unique: str
) -> None:
    async def scenario() -> list[bytes]:
        db = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
        db.upgrade()
        transport = open_transport(transport_url)
        queue = f"{unique}.progress"
        await transport.declare(queue)
        try:
            with db.engine.begin() as conn:
                outbox.add(conn, queue, b'{"n": 1}', {"message-id": "m1"})
                outbox.add(conn, queue, b'{"n": 2}', {"message-id": "m2"})
            try:
                with db.engine.begin() as conn:
                    outbox.add(conn, queue, b'{"n": 3}', {"message-id": "m3"})
                    raise RuntimeError("rolled back with its state change")
            except RuntimeError:
                pass
            relay = outbox.OutboxRelay(db, transport)
            assert await relay.relay_once() == 2
            assert await relay.relay_once() == 0
            consumer = transport.consume(queue, prefetch=10)
            got = await consumer.get(10, timeout=5)
            assert [m.headers["message-id"] for m in got] == ["m1", "m2"]
            await consumer.ack(got)
            assert await consumer.get(10, timeout=0.3) == []
            await consumer.close()
            return [m.body for m in got]
        finally:
            await transport.close()
            db.close()

    try:
        bodies = asyncio.run(scenario())
    finally:
        if transport_url.startswith("amqp"):
            delete_queues(transport_url, unique)
    assert [orjson.loads(b)["n"] for b in bodies] == [1, 2]
