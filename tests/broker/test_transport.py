"""Transport contract: the same tests against the in-process and the RabbitMQ transport.

Each test names its queue with `unique` and deletes it (and its `.dead` companion)
from RabbitMQ at teardown. Outcomes are awaited with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from kombu import Connection

from hub.broker import Consumer, Incoming, Outgoing, Transport, open_transport
from hub.broker.kombu import KombuTransport
from hub.errors import Transient

DEADLINE = 15.0


@pytest.fixture
def queue(transport_url: str, unique: str) -> Iterator[str]:
    """A queue name for this test, deleted with its `.dead` companion afterwards."""
    yield unique
    if transport_url.startswith("amqp"):
        with Connection(transport_url, connect_timeout=10) as conn:
            for name in (unique, unique + ".dead"):
                conn.channel().queue_delete(name)


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Transport]:
    transport = open_transport(url)
    try:
        yield transport
    finally:
        await transport.close()


async def take(consumer: Consumer, count: int, deadline: float = DEADLINE) -> list[Incoming]:
    """Get until `count` messages arrived or the deadline passed."""
    got: list[Incoming] = []
    end = time.monotonic() + deadline
    while len(got) < count and (left := end - time.monotonic()) > 0:
        got += await consumer.get(count - len(got), timeout=min(left, 1.0))
    return got


def test_publish_then_consume_and_ack(transport_url: str, queue: str) -> None:
    sent = [Outgoing(f"m{i}".encode(), {"n": str(i), "kind": "test"}) for i in range(20)]

    async def main() -> None:
        async with opened(transport_url) as transport:
            await transport.declare(queue)
            await transport.publish(queue, sent)
            consumer = transport.consume(queue, prefetch=50)
            got = await take(consumer, len(sent))
            assert sorted((m.body, m.headers) for m in got) == sorted(
                (m.body, m.headers) for m in sent
            )
            assert not any(m.redelivered for m in got)
            await consumer.ack(got)
            assert await consumer.get(10, timeout=0.5) == []
            await consumer.close()
            again = transport.consume(queue, prefetch=50)
            assert await again.get(10, timeout=0.5) == []
            assert await transport.depth(queue) == 0
            await transport.check()

    asyncio.run(main())


def test_prefetch_is_respected(transport_url: str, queue: str) -> None:
    async def main() -> None:
        async with opened(transport_url) as transport:
            await transport.publish(queue, [Outgoing(b"%d" % i) for i in range(20)])
            consumer = transport.consume(queue, prefetch=5)
            held: list[Incoming] = []
            end = time.monotonic() + DEADLINE
            while len(held) < 5 and time.monotonic() < end:
                held += await consumer.get(100, timeout=1.0)
                assert len(held) <= 5
            assert len(held) == 5
            assert await consumer.get(100, timeout=0.5) == []
            await consumer.ack(held)
            rest = await take(consumer, 5)
            assert len(rest) == 5
            assert {m.body for m in held}.isdisjoint(m.body for m in rest)
            await consumer.ack(rest)

    asyncio.run(main())


def test_nack_with_requeue_redelivers(transport_url: str, queue: str) -> None:
    async def main() -> None:
        async with opened(transport_url) as transport:
            await transport.publish(queue, [Outgoing(b"again", {"k": "v"})])
            consumer = transport.consume(queue, prefetch=10)
            [first] = await take(consumer, 1)
            assert not first.redelivered
            await consumer.nack([first], requeue=True)
            [second] = await take(consumer, 1)
            assert (second.body, second.headers["k"], second.redelivered) == (b"again", "v", True)
            await consumer.ack([second])

    asyncio.run(main())


def test_nack_without_requeue_dead_letters(transport_url: str, queue: str) -> None:
    async def main() -> None:
        async with opened(transport_url) as transport:
            await transport.declare(queue)
            await transport.publish(queue, [Outgoing(b"poison", {"k": "v"})])
            consumer = transport.consume(queue, prefetch=10)
            [message] = await take(consumer, 1)
            await consumer.nack([message], requeue=False)
            dead = transport.consume(queue + ".dead", prefetch=10)
            [buried] = await take(dead, 1)
            assert (buried.body, buried.headers["k"]) == (b"poison", "v")
            await dead.ack([buried])
            assert await consumer.get(10, timeout=0.5) == []

    asyncio.run(main())


def test_closed_consumer_hands_back_unacked(transport_url: str, queue: str) -> None:
    async def main() -> None:
        async with opened(transport_url) as transport:
            await transport.publish(queue, [Outgoing(b"%d" % i) for i in range(3)])
            first = transport.consume(queue, prefetch=10)
            held = await take(first, 3)
            assert len(held) == 3
            await first.close()
            second = transport.consume(queue, prefetch=10)
            back = await take(second, 3)
            assert sorted(m.body for m in back) == [b"0", b"1", b"2"]
            assert all(m.redelivered for m in back)
            await second.ack(back)

    asyncio.run(main())


def test_concurrent_publishers_deliver_exactly_once(transport_url: str, queue: str) -> None:
    tasks, batches, size = 10, 10, 50
    total = tasks * batches * size

    async def publisher(transport: Transport, task: int) -> None:
        for b in range(batches):
            bodies = (f"{task}-{b}-{i}".encode() for i in range(size))
            await transport.publish(queue, [Outgoing(body) for body in bodies])

    async def main() -> None:
        async with opened(transport_url) as transport:
            await transport.declare(queue)
            consumer = transport.consume(queue, prefetch=500)
            counts: Counter[bytes] = Counter()

            async def consume() -> None:
                end = time.monotonic() + 60
                while len(counts) < total and time.monotonic() < end:
                    got = await consumer.get(500, timeout=1.0)
                    counts.update(m.body for m in got)
                    await consumer.ack(got)

            consuming = asyncio.create_task(consume())
            start = time.perf_counter()
            await asyncio.gather(*(publisher(transport, t) for t in range(tasks)))
            published = time.perf_counter() - start
            await consuming
            consumed = time.perf_counter() - start
            rate = total / published
            print(
                f"\n{transport_url.split(':')[0]}: {total} published+confirmed in {published:.2f} s"
                f" ({rate:,.0f} msgs/s), all consumed+acked in {consumed:.2f} s"
            )
            assert len(counts) == total
            assert set(counts.values()) == {1}
            assert await consumer.get(10, timeout=0.5) == []

    asyncio.run(main())


def test_unreachable_broker_is_transient() -> None:
    """No broker needed: nothing listens on port 1."""

    async def main() -> None:
        transport = KombuTransport("amqp://guest:guest@127.0.0.1:1//")
        with pytest.raises(Transient):
            await transport.check()
        assert await transport.depth("anything") is None
        publishing = asyncio.create_task(transport.publish("anything", [Outgoing(b"x")]))
        done, _ = await asyncio.wait({publishing}, timeout=1.0)
        assert not done, "publish must keep retrying while the broker is down"
        await transport.close()
        with pytest.raises(Transient):
            await publishing
        with pytest.raises(Transient):
            await transport.publish("anything", [Outgoing(b"x")])

    asyncio.run(main())


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def _start_broker() -> None:
    """Start the RabbitMQ app and wait until it accepts AMQP connections."""
    _rabbitmqctl("start_app")
    end = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", 5672), timeout=1.0).close()
            break
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)
    _rabbitmqctl("await_startup", "--timeout", "120")


@pytest.fixture
def broker_restarts() -> Iterator[None]:
    """Whatever happens in the test, leave the broker running."""
    try:
        yield
    finally:
        _start_broker()


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_publisher_and_consumer_survive_broker_restart(
    amqp_url: str, unique: str, broker_restarts: None
) -> None:
    total, size = 2000, 50
    counts: Counter[int] = Counter()
    confirmed = 0
    confirmed_when_down = -1

    async def publish_stream(transport: Transport) -> None:
        nonlocal confirmed
        for start in range(0, total, size):
            numbers = range(start, start + size)
            await transport.publish(unique, [Outgoing(b"%d" % n) for n in numbers])
            confirmed += size
            await asyncio.sleep(0.1)  # pacing, so that the stream spans the outage

    async def consume(consumer: Consumer) -> None:
        end = time.monotonic() + 180
        while len(counts) < total and time.monotonic() < end:
            got = await consumer.get(100, timeout=1.0)
            counts.update(int(m.body) for m in got)
            await consumer.ack(got)

    async def outage() -> None:
        nonlocal confirmed_when_down
        while confirmed < 5 * size:
            await asyncio.sleep(0.05)
        try:
            await asyncio.to_thread(_rabbitmqctl, "stop_app")
            confirmed_when_down = confirmed
            await asyncio.sleep(3)  # how long the broker stays down
        finally:
            await asyncio.to_thread(_start_broker)

    async def main() -> None:
        async with opened(amqp_url) as transport:
            await transport.declare(unique)
            consumer = transport.consume(unique, prefetch=100)
            await asyncio.wait_for(
                asyncio.gather(publish_stream(transport), consume(consumer), outage()), 240
            )

    try:
        asyncio.run(main())
    finally:
        with Connection(amqp_url, connect_timeout=10) as conn:
            for name in (unique, unique + ".dead"):
                conn.channel().queue_delete(name)
    missing = set(range(total)) - set(counts)
    duplicates = sum(c - 1 for c in counts.values())
    print(
        f"\nbroker restart: stopped after {confirmed_when_down} confirmed; "
        f"{len(counts)} distinct received, {duplicates} duplicates"
    )
    assert 0 < confirmed_when_down < total, "the outage missed the stream"
    assert not missing, f"{len(missing)} numbers never received"
    assert confirmed == total


@pytest.mark.rabbitmq
def test_a_failover_list_reaches_the_node_that_answers(amqp_url: str, unique: str) -> None:
    """`amqp://dead;amqp://alive`: a cluster's nodes listed in HUB_BROKER_URL; the hub
    tries each in turn, at once, and works through the one that answers."""
    with socket.socket() as s:  # a port nobody listens on: a node that is down
        s.bind(("127.0.0.1", 0))
        dead = f"amqp://guest:guest@127.0.0.1:{s.getsockname()[1]}//"
    url = f"{dead};{amqp_url}"

    async def run() -> list[Incoming]:
        async with opened(url) as transport:
            await transport.declare(unique)
            await transport.publish(unique, [Outgoing(b"via the second node")])
            consumer = transport.consume(unique, prefetch=1)
            got = await take(consumer, 1)
            await consumer.ack(got)
            await consumer.close()
            return got

    started = time.monotonic()
    try:
        got = asyncio.run(run())
    finally:
        with Connection(amqp_url, connect_timeout=10) as conn:
            for name in (unique, unique + ".dead"):
                conn.channel().queue_delete(name)
    assert [m.body for m in got] == [b"via the second node"]
    assert time.monotonic() - started < DEADLINE
