"""The broker's own ceiling, measured in the same run: pika straight to a quorum queue.

A publisher process (pika `SelectConnection`, asynchronous) keeps a window of
unconfirmed persistent messages (delivery_mode 2) in flight under publisher
confirms; a consumer process (prefetch, multiple acks) takes them from the same
durable quorum queue. Each body starts with its publish time; the consumer
measures the latency. Separate processes, so neither client waits for the
other's GIL. The queue is deleted afterwards.
"""

from __future__ import annotations

import multiprocessing
import struct
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import unquote, urlsplit

import pika  # type: ignore[import-untyped]

from hub.bench.procs import Probe, own_cpu_seconds, pids_named
from hub.bench.store import percentile

WINDOW = 200  # unconfirmed messages in flight
PREFETCH = 1000
ACK_EVERY = 100
STAMP = struct.Struct("!d")
DRAIN_TIMEOUT = 60.0
QUORUM = {"x-queue-type": "quorum"}


def parameters(url: str) -> Any:
    """pika connection parameters from an amqp:// URL as kombu writes it (`//` = vhost `/`)."""
    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return pika.ConnectionParameters(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5672,
        virtual_host=vhost or "/",
        credentials=pika.PlainCredentials(
            unquote(parts.username or "guest"), unquote(parts.password or "guest")
        ),
    )


class Publisher:
    """Publishes for `seconds`, keeping `window` messages unconfirmed."""

    def __init__(self, url: str, queue: str, size: int, seconds: float, window: int) -> None:
        self.url, self.queue, self.seconds, self.window = url, queue, seconds, window
        self.pad = b"x" * max(0, size - STAMP.size)
        self.props = pika.BasicProperties(delivery_mode=2)
        self.seq = self.confirmed = self.nacked = 0
        self.unsettled: set[int] = set()
        self.order: deque[int] = deque()
        self.stopping = False
        self.started = self.ended = self.last_confirm = 0.0
        self.conn: Any = None
        self.channel: Any = None

    def run(self) -> dict[str, Any]:
        self.conn = pika.SelectConnection(
            parameters(self.url),
            on_open_callback=lambda c: c.channel(on_open_callback=self._on_channel),
            on_open_error_callback=self._on_error,
        )
        self.conn.ioloop.start()
        return {
            "published": self.seq,
            "confirmed": self.confirmed,
            "nacked": self.nacked,
            "started": self.started,
            "ended": self.ended,
            "last_confirm": self.last_confirm,
        }

    def _on_error(self, _conn: Any, exc: BaseException) -> None:
        self.conn.ioloop.stop()
        raise RuntimeError(f"cannot connect to RabbitMQ: {exc!r}")

    def _on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame: Any) -> None:
        self.started = time.time()
        self.conn.ioloop.call_later(self.seconds, self._stop)
        self._fill()

    def _fill(self) -> None:
        while not self.stopping and len(self.unsettled) < self.window:
            self.seq += 1
            body = STAMP.pack(time.time()) + self.pad
            self.channel.basic_publish("", self.queue, body, self.props)
            self.unsettled.add(self.seq)
            self.order.append(self.seq)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ack = isinstance(method, pika.spec.Basic.Ack)
        settled = [method.delivery_tag]
        if method.multiple:
            settled = []
            while self.order and self.order[0] <= method.delivery_tag:
                settled.append(self.order.popleft())
        for tag in settled:
            if tag in self.unsettled:
                self.unsettled.discard(tag)
                self.confirmed += ack
                self.nacked += not ack
        self.last_confirm = time.time()
        if self.stopping and not self.unsettled:
            self.conn.close()
            self.conn.ioloop.stop()
        else:
            self._fill()

    def _stop(self) -> None:
        self.stopping, self.ended = True, time.time()
        if not self.unsettled:
            self.conn.close()
            self.conn.ioloop.stop()


def publish_main(url: str, queue: str, size: int, seconds: float, out: Connection) -> None:
    """Child process: publish, then send the counts and this process's CPU seconds."""
    result = Publisher(url, queue, size, seconds, WINDOW).run()
    result["cpu_seconds"] = own_cpu_seconds()
    out.send(result)


def consume_main(url: str, queue: str, out: Connection) -> None:
    """Child process: consume until told how many were published and all have come."""
    conn = pika.BlockingConnection(parameters(url))
    channel = conn.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    received, latency = array("d"), array("d")
    pending = [0, 0]  # unacked count, last delivery tag

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        now = time.time()
        received.append(now)
        latency.append(now - STAMP.unpack_from(body)[0])
        pending[0], pending[1] = pending[0] + 1, method.delivery_tag
        if pending[0] >= ACK_EVERY:
            ch.basic_ack(pending[1], multiple=True)
            pending[0] = 0

    channel.basic_consume(queue, on_message)
    out.send("ready")
    expected, deadline = -1, float("inf")
    while expected < 0 or (len(received) < expected and time.monotonic() < deadline):
        conn.process_data_events(time_limit=0.05)
        if pending[0]:
            channel.basic_ack(pending[1], multiple=True)
            pending[0] = 0
        if expected < 0 and out.poll():
            expected, deadline = int(out.recv()), time.monotonic() + DRAIN_TIMEOUT
    conn.close()
    out.send((received.tobytes(), latency.tobytes(), own_cpu_seconds()))


def declare(url: str, queue: str, delete: bool = False) -> None:
    conn = pika.BlockingConnection(parameters(url))
    try:
        channel = conn.channel()
        if delete:
            channel.queue_delete(queue)
        else:
            channel.queue_declare(queue, durable=True, arguments=QUORUM)
    finally:
        conn.close()


def run_raw(amqp_url: str, size: int, seconds: float) -> dict[str, Any]:
    """One publisher and one consumer through a fresh quorum queue for `seconds`."""
    queue = f"bench-raw-{uuid.uuid4().hex[:10]}"
    declare(amqp_url, queue)
    try:
        return _run(amqp_url, queue, size, seconds)
    finally:
        declare(amqp_url, queue, delete=True)


def _run(url: str, queue: str, size: int, seconds: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    probe = Probe({"rabbitmq": lambda: pids_named("beam.smp")})
    cons_end, cons_child = ctx.Pipe()
    pub_end, pub_child = ctx.Pipe()
    consumer = ctx.Process(target=consume_main, args=(url, queue, cons_child), daemon=True)
    consumer.start()
    if not cons_end.poll(30) or cons_end.recv() != "ready":
        raise RuntimeError("the raw consumer did not start")
    before = probe.snapshot()
    publisher = ctx.Process(
        target=publish_main, args=(url, queue, size, seconds, pub_child), daemon=True
    )
    publisher.start()
    pub = _receive(pub_end, seconds + 60, publisher.is_alive, "publisher")
    cons_end.send(pub["confirmed"])
    got = _receive(cons_end, DRAIN_TIMEOUT + 30, consumer.is_alive, "consumer")
    usage = probe.usage(before, probe.snapshot())
    publisher.join(10)
    consumer.join(10)
    return summarise(size, pub, got, usage.seconds.get("rabbitmq", 0.0), usage.wall)


def _receive(end: Connection, timeout: float, alive: Callable[[], bool], who: str) -> Any:
    deadline = time.monotonic() + timeout
    while not end.poll(0.2):
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the raw {who} failed or did not finish")
    return end.recv()


def summarise(
    size: int, pub: dict[str, Any], got: tuple[bytes, bytes, float], beam: float, wall: float
) -> dict[str, Any]:
    """Rates, latency and CPU per message from what both clients reported."""
    received, latency = array("d"), array("d")
    received.frombytes(got[0])
    latency.frombytes(got[1])
    window = pub["ended"] - pub["started"]
    in_window = sum(1 for t in received if t <= pub["ended"])
    lat = sorted(x * 1000 for x in latency)
    count = max(1, len(received))
    return {
        "size_kib": size // 1024,
        "seconds": round(window, 2),
        "window": WINDOW,
        "published": pub["published"],
        "confirmed": pub["confirmed"],
        "nacked": pub["nacked"],
        "consumed": len(received),
        "msgs_per_s": round(in_window / window, 1) if window > 0 else 0.0,
        "confirmed_per_s": round(
            pub["confirmed"] / max(1e-9, pub["last_confirm"] - pub["started"]), 1
        ),
        "latency_ms": {
            "p50": _r(percentile(lat, 50)),
            "p99": _r(percentile(lat, 99)),
            "max": _r(lat[-1] if lat else None),
        },
        "cpu_us_per_msg": {
            "rabbitmq": round(beam / count * 1e6, 1),
            "clients": round((pub["cpu_seconds"] + got[2]) / count * 1e6, 1),
        },
        "cores": {"rabbitmq": round(beam / wall, 2) if wall else 0.0},
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
