"""RabbitMQ transport through kombu and py-amqp: quorum queues, windowed confirms.

Design choices:

- One thread per connection. py-amqp connections are blocking and not thread-safe,
  so each belongs to one thread that does all its I/O: one publisher thread, and one
  thread per consumer (a busy consumer never delays publishing, and closing a
  consumer closes its connection, so RabbitMQ requeues what it held). The asyncio
  side only puts requests on thread-safe queues and awaits `concurrent.futures`
  futures through `asyncio.wrap_future`; threads hand messages back with
  `loop.call_soon_threadsafe`. The event loop never blocks.
- Windowed publisher confirms. kombu's `confirm_publish` waits for each confirm, one
  round trip a message (~1,000 msgs/s). The publisher thread puts its channel in
  confirm mode, publishes a whole round without waiting, then reads acks until every
  delivery tag of the round is settled. Requests that queue up meanwhile, from any
  number of tasks, go out together in the next round.
- No loss, duplicates allowed. A nack, a confirm timeout (30 s) or a connection error
  leaves a round's unconfirmed messages to publish again on a new connection, with
  backoff from 0.2 s to 5 s, so `publish` returns once all are confirmed, or raises
  `Transient` when the transport is closed first.
- Consumer tags are `(connection generation, delivery tag)`: a lost connection makes
  RabbitMQ requeue what it held, so acks of an older generation are dropped, and so
  are messages still buffered from it.
- Every queue is a durable quorum queue dead-lettering (at-least-once) to a quorum
  `<queue>.dead`; a name ending in `.dead` is declared plain, so it can be consumed
  or published to directly with the same arguments.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import logging
import queue as stdqueue
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import amqp  # type: ignore[import-untyped]
import amqp.transport  # type: ignore[import-untyped]
from kombu.connection import Connection
from kombu.entity import Queue

from hub.broker.transport import Incoming, Outgoing
from hub.errors import Transient

log = logging.getLogger(__name__)

HEARTBEAT, CONNECT_TIMEOUT, CONFIRM_TIMEOUT, CALL_TIMEOUT = 10, 5.0, 30.0, 5.0
FIRST_DELAY, MAX_DELAY = 0.2, 5.0
POLL = 0.05  # seconds a thread waits before looking at its stop flag again
ROUND_LIMIT = 10_000  # messages in one confirm round
BURST = 1_000  # deliveries read before the consumer thread sends acks again
ACK, NACK = 1, 2

Future = concurrent.futures.Future


def _queues(name: str) -> list[Queue]:
    """The queues behind `name`, its `.dead` companion first."""
    quorum = {"x-queue-type": "quorum"}
    if name.endswith(".dead"):
        return [_durable(name, quorum)]
    dead = name + ".dead"
    arguments = {
        **quorum,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead,
        # RabbitMQ refuses at-least-once dead-lettering unless overflow rejects publishes.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    return [_durable(dead, quorum), _durable(name, arguments)]


def _durable(name: str, arguments: dict[str, str]) -> Queue:
    return Queue(name, durable=True, queue_arguments=arguments)  # type: ignore[no-untyped-call]


def _declare(channel: Any, name: str) -> None:
    for q in _queues(name):
        q.bind(channel).declare()  # type: ignore[no-untyped-call]


def _connect(url: str) -> Any:
    """A kombu connection, connected, or the connect error."""
    conn: Any = Connection(  # type: ignore[no-untyped-call]
        url, heartbeat=HEARTBEAT, connect_timeout=CONNECT_TIMEOUT
    )
    # One attempt per host of a failover list (`amqp://a;amqp://b`), at once: kombu's
    # connect() would retry after 2 s; our threads back off themselves.
    conn.ensure_connection(
        max_retries=max(len(conn.alt), 1) - 1, interval_start=0, reraise_as_library_errors=False
    )
    return conn


def _shut(conn: Any, *, graceful: bool) -> None:
    """Close a connection; after an error, drop the socket without the close handshake."""
    if conn is None:
        return
    try:
        if graceful:
            conn.close()
            return
    except Exception as exc:  # noqa: BLE001 - it is going away either way
        log.debug("AMQP close: %r", exc)
    try:
        conn.collect()
    except Exception as exc:  # noqa: BLE001
        log.debug("AMQP collect: %r", exc)


def _buffer_reads(transport: Any) -> None:
    """Read the socket 8 KiB at a time rather than py-amqp's three recv calls a frame.

    A delivery is three frames, so nine system calls, each releasing and retaking the
    GIL; with a publisher and an event loop busy in the same process that halves a
    consumer's throughput. Only plain TCP: TLS sockets buffer on their own.
    """
    if type(transport) is not amqp.transport.TCPTransport:
        return

    def read(n: int, initial: bool = False) -> bytes:
        buffer = transport._read_buffer
        try:
            while len(buffer) < n:
                try:
                    chunk = transport.sock.recv(max(n - len(buffer), 8192))
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EINTR):
                        raise
                    if initial:  # as py-amqp: nothing to read yet is a timeout
                        raise TimeoutError() from exc
                    continue
                if not chunk:
                    raise OSError("Server unexpectedly closed connection")
                buffer += chunk
        except BaseException:
            transport._read_buffer = buffer
            raise
        result: bytes = buffer[:n]
        transport._read_buffer = buffer[n:]
        return result

    transport._read = read


def _transient(detail: str, cause: BaseException | None) -> Transient:
    error = Transient(detail)
    error.__cause__ = cause
    return error


class _Backoff:
    def __init__(self) -> None:
        self.delay = FIRST_DELAY

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, MAX_DELAY)
        return delay


@dataclass(eq=False)
class _Batch:
    """One `publish` call; `pending` shrinks to what the broker has not confirmed."""

    queue: str
    pending: list[Outgoing]
    future: Future[None]


@dataclass(eq=False)
class _Call:
    """Work for the publisher thread, on a scratch channel of its connection."""

    run: Callable[[Any], Any]
    future: Future[Any]


class _Window:
    """The delivery tags of one confirm round and the broker's verdict on each."""

    def __init__(self, first: int, size: int) -> None:
        self.first = first
        self.status = bytearray(size)
        self.low = 0  # every index below was settled by a `multiple` ack or nack
        self.open = size
        self.nacked = 0

    def settle(self, verdict: int, tag: int, multiple: bool) -> None:
        i = tag - self.first
        if i < 0 or (i >= len(self.status) and not multiple):
            return
        hi = min(i, len(self.status) - 1)
        for j in range(self.low if multiple else i, hi + 1):
            if not self.status[j]:
                self.status[j] = verdict
                self.open -= 1
                self.nacked += verdict == NACK
        if multiple:
            self.low = max(self.low, hi + 1)


class _Publisher:
    """The publisher thread: one connection, one confirm-mode channel."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._requests: stdqueue.SimpleQueue[_Batch | _Call] = stdqueue.SimpleQueue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._finished = False
        self._carry: deque[_Batch] = deque()  # unconfirmed: published again first
        self._conn: Any = None
        self._amqp: Any = None
        self._channel: Any = None
        self._declared: set[str] = set()
        self._seq = 0
        self._window: _Window | None = None
        self._thread = threading.Thread(target=self._run, name="hub-amqp-publisher", daemon=True)
        self._thread.start()

    def submit(self, request: _Batch | _Call) -> Future[Any]:
        with self._lock:
            if self._finished:
                raise Transient("the AMQP transport is closed")
            self._requests.put(request)
        return request.future

    async def close(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            try:
                if self._conn is None:
                    self._open()
                    backoff = _Backoff()
                self._serve()
            except Exception as exc:  # noqa: BLE001 - whatever broke: reconnect, republish
                log.warning("AMQP publisher: %r; reconnecting", exc)
                _shut(self._conn, graceful=False)
                self._conn = self._channel = None
                self._wait_out(backoff.next(), exc)
        with self._lock:
            self._finished = True
        leftovers: list[_Batch | _Call] = [*self._carry]
        while not self._requests.empty():
            leftovers.append(self._requests.get_nowait())
        for request in leftovers:
            if not request.future.done():
                request.future.set_exception(Transient("AMQP transport closed before confirms"))
        _shut(self._conn, graceful=True)

    def _open(self) -> None:
        self._conn = _connect(self._url)
        self._amqp = self._conn.connection
        self._declared.clear()  # a reset broker may have lost them
        self._open_channel()

    def _open_channel(self) -> None:
        self._channel = self._amqp.channel()
        self._channel.confirm_select()
        self._channel.events["basic_ack"].add(partial(self._settle, ACK))
        self._channel.events["basic_nack"].add(partial(self._settle, NACK))
        self._seq = 0

    def _settle(self, verdict: int, tag: int, multiple: bool) -> None:
        if self._window is not None:
            self._window.settle(verdict, tag, multiple)

    def _wait_out(self, delay: float, cause: BaseException) -> None:
        """Back off; calls fail at once meanwhile, batches wait for the next connection."""
        deadline = time.monotonic() + delay
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            try:
                request = self._requests.get(timeout=min(left, POLL))
            except stdqueue.Empty:
                continue
            if not request.future.set_running_or_notify_cancel():
                continue
            if isinstance(request, _Batch):
                self._carry.append(request)
            else:
                request.future.set_exception(_transient(f"broker unreachable: {cause}", cause))

    def _serve(self) -> None:
        while not self._stop.is_set():
            batches, calls = self._take()
            for call in calls:
                self._call(call)
            if batches:
                self._publish(batches)
            elif not calls:
                try:  # idle: read the broker's heartbeats, send ours
                    self._amqp.drain_events(timeout=0)
                except TimeoutError:
                    pass
                self._amqp.heartbeat_tick()

    def _take(self) -> tuple[list[_Batch], list[_Call]]:
        """The next round: carried-over batches first, then whatever is queued."""
        batches: list[_Batch] = []
        calls: list[_Call] = []
        count = 0
        while self._carry and count < ROUND_LIMIT:
            batches.append(self._carry.popleft())
            count += len(batches[-1].pending)
        wait = not batches
        while count < ROUND_LIMIT:
            try:
                request = self._requests.get(timeout=POLL) if wait else self._requests.get_nowait()
            except stdqueue.Empty:
                break
            wait = False
            if not request.future.set_running_or_notify_cancel():
                continue  # its caller was cancelled
            if isinstance(request, _Batch):
                batches.append(request)
                count += len(request.pending)
            else:
                calls.append(request)
        return batches, calls

    def _call(self, call: _Call) -> None:
        try:
            channel = self._amqp.channel()
            try:
                result = call.run(channel)
            finally:
                if channel.is_open:
                    channel.close()
        except amqp.ChannelError as exc:  # closes this channel only
            call.future.set_exception(_transient(f"broker refused: {exc}", exc))
        except BaseException as exc:
            call.future.set_exception(_transient(f"broker unreachable: {exc}", exc))
            raise
        else:
            call.future.set_result(result)

    def _publish(self, batches: list[_Batch]) -> None:
        """One confirm round: declare, publish everything, then wait for every confirm."""
        window = None
        try:
            for batch in batches:
                if batch.queue not in self._declared:
                    self._declare_for(batch)
            batches = [b for b in batches if not b.future.done()]
            window = self._window = _Window(self._seq + 1, sum(len(b.pending) for b in batches))
            for batch in batches:
                for m in batch.pending:
                    message = amqp.Message(m.body, delivery_mode=2, application_headers=m.headers)
                    self._channel.basic_publish(message, exchange="", routing_key=batch.queue)
                    self._seq += 1
            deadline = time.monotonic() + CONFIRM_TIMEOUT
            while window.open and not self._stop.is_set():
                if (left := deadline - time.monotonic()) <= 0:
                    break
                try:
                    self._amqp.drain_events(timeout=min(left, 0.2))
                except TimeoutError:
                    self._amqp.heartbeat_tick()
        finally:
            self._window = None
            verdicts = iter(window.status if window else ())
            for batch in batches:
                if window:
                    batch.pending = [m for m in batch.pending if next(verdicts) != ACK]
                if not batch.pending:
                    batch.future.set_result(None)
                elif not batch.future.done():
                    self._carry.append(batch)
        assert window is not None
        if window.nacked or (window.open and not self._stop.is_set()):
            raise Transient(f"{window.nacked} nacked, {window.open} unconfirmed in a round")

    def _declare_for(self, batch: _Batch) -> None:
        try:
            _declare(self._channel, batch.queue)
            self._declared.add(batch.queue)
        except amqp.ChannelError as exc:
            # E.g. the queue exists with other arguments: publishing again cannot help.
            batch.future.set_exception(_transient(f"cannot declare {batch.queue}: {exc}", exc))
            self._open_channel()


@dataclass(eq=False)
class _Settle:
    tags: list[tuple[int, int]]
    requeue: bool | None  # None: ack
    future: Future[None]


class KombuConsumer:
    """A consumer of one queue, with its own connection and thread."""

    def __init__(self, url: str, queue: str, prefetch: int, forget: Callable[[Any], None]) -> None:
        self._url = url
        self._queue = queue
        self._prefetch = prefetch
        self._forget = forget
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._requests: stdqueue.SimpleQueue[_Settle] = stdqueue.SimpleQueue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._finished = False
        self._closed = False
        # Written to wake the thread when a request comes, so an ack is sent at once.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Event-loop side.
        self._buffer: deque[Incoming] = deque()
        self._arrived = asyncio.Event()
        self._generation = 0
        # Thread side.
        self._thread_generation = 0
        self._channel: Any = None
        self._unacked: set[int] = set()
        self._inbox: list[Incoming] = []

    async def get(self, max_batch: int, timeout: float | None = None) -> list[Incoming]:
        loop = asyncio.get_running_loop()
        self._start(loop)
        deadline = None if timeout is None else loop.time() + timeout
        while not self._buffer:
            if self._closed:
                raise Transient(f"consumer of {self._queue} is closed")
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return []
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass
        return [self._buffer.popleft() for _ in range(min(max_batch, len(self._buffer)))]

    async def ack(self, messages: Sequence[Incoming]) -> None:
        await self._settle(messages, None)

    async def nack(self, messages: Sequence[Incoming], *, requeue: bool = True) -> None:
        await self._settle(messages, requeue)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._arrived.set()
        self._forget(self)
        if self._thread is not None:
            self._stop.set()
            self._wake()
            await asyncio.to_thread(self._thread.join)
        self._wake_r.close()
        self._wake_w.close()

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._thread is None and not self._closed:
            self._loop = loop
            name = f"hub-amqp-consumer-{self._queue}"
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
            self._thread.start()

    async def _settle(self, messages: Sequence[Incoming], requeue: bool | None) -> None:
        """Ack or nack on the consumer thread; a no-op once the consumer is closed."""
        if not messages or self._thread is None:
            return
        request = _Settle([m.tag for m in messages], requeue, Future())
        with self._lock:
            if self._finished:
                return
            self._requests.put(request)
        self._wake()
        await asyncio.wrap_future(request.future)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full: a wake-up is pending already
            pass

    def _receive(self, generation: int, batch: list[Incoming]) -> None:
        """On the event loop: take a batch; drop what an older connection delivered."""
        if self._closed:
            return
        if generation != self._generation:
            self._generation = generation
            self._buffer = deque(m for m in self._buffer if m.tag[0] == generation)
        self._buffer.extend(batch)
        self._arrived.set()

    def _run(self) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            conn = None
            try:
                conn = _connect(self._url)
                self._subscribe(conn)
                backoff = _Backoff()
                self._pump(conn.connection)
                _shut(conn, graceful=True)
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect and resume
                _shut(conn, graceful=False)
                if not self._stop.is_set():
                    log.warning("AMQP consumer of %s: %r; reconnecting", self._queue, exc)
                    self._wait_out(backoff.next())
        with self._lock:
            self._finished = True
        while not self._requests.empty():
            self._requests.get_nowait().future.set_result(None)

    def _subscribe(self, conn: Any) -> None:
        _buffer_reads(conn.connection.transport)
        channel = conn.connection.channel()
        _declare(channel, self._queue)
        self._thread_generation += 1
        self._unacked.clear()
        self._inbox.clear()
        self._channel = channel
        channel.basic_qos(0, self._prefetch, False)
        # py-amqp's own messages, not kombu's: kombu reads a "compression" header as
        # an instruction to decompress, and the hub's headers are its callers' data.
        channel.basic_consume(self._queue, callback=self._on_message, no_ack=False)

    def _on_message(self, message: Any) -> None:
        tag = message.delivery_info["delivery_tag"]
        self._unacked.add(tag)
        headers = dict(message.properties.get("application_headers") or {})
        redelivered = bool(message.delivery_info.get("redelivered"))
        incoming = Incoming(message.body, headers, redelivered, (self._thread_generation, tag))
        self._inbox.append(incoming)

    def _pump(self, connection: Any) -> None:
        """Alternate reading deliveries and sending acks until asked to stop."""
        assert self._loop is not None
        while not self._stop.is_set():
            wait = 0 if connection.transport._read_buffer else POLL  # frames read ahead
            ready, _, _ = select.select([connection.sock, self._wake_r], [], [], wait)
            if self._wake_r in ready:
                self._wake_r.recv(4096)
            self._serve_requests()
            try:
                for _ in range(BURST):
                    connection.drain_events(timeout=0)
            except TimeoutError:
                pass
            if self._inbox:
                batch, self._inbox = self._inbox, []
                try:
                    self._loop.call_soon_threadsafe(self._receive, self._thread_generation, batch)
                except RuntimeError:  # the event loop is gone: nobody will read
                    self._stop.set()
            connection.heartbeat_tick()

    def _serve_requests(self) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except stdqueue.Empty:
                return
            try:
                self._apply(request)
            finally:
                # A failed ack needs no retry: the lost connection requeues the message.
                request.future.set_result(None)

    def _apply(self, request: _Settle) -> None:
        mine = {t for g, t in request.tags if g == self._thread_generation} & self._unacked
        if not mine:
            return
        self._unacked -= mine
        tags = sorted(mine)
        if request.requeue is None:
            # One multiple ack covers the tags when no unacked tag lies below the last.
            if not self._unacked or min(self._unacked) > tags[-1]:
                self._channel.basic_ack(tags[-1], multiple=True)
                return
            for tag in tags:
                self._channel.basic_ack(tag)
        else:
            for tag in tags:
                self._channel.basic_reject(tag, requeue=request.requeue)

    def _wait_out(self, delay: float) -> None:
        """Back off; settle requests meanwhile are stale (their messages were requeued)."""
        deadline = time.monotonic() + delay
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            try:
                self._requests.get(timeout=min(left, POLL)).future.set_result(None)
            except stdqueue.Empty:
                pass


class KombuTransport:
    """The `Transport` for RabbitMQ: `KombuTransport("amqp://guest:guest@host:5672//")`."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._publisher: _Publisher | None = None
        self._consumers: set[KombuConsumer] = set()
        self._closed = False

    def _submit(self, request: _Batch | _Call) -> Future[Any]:
        if self._closed:
            raise Transient("the AMQP transport is closed")
        if self._publisher is None:
            self._publisher = _Publisher(self._url)
        return self._publisher.submit(request)

    async def _call(self, run: Callable[[Any], Any]) -> Any:
        future = asyncio.wrap_future(self._submit(_Call(run, Future())))
        try:
            return await asyncio.wait_for(future, CALL_TIMEOUT)
        except TimeoutError as exc:
            raise Transient(f"broker did not answer within {CALL_TIMEOUT} s") from exc

    async def declare(self, queue: str) -> None:
        await self._call(lambda channel: _declare(channel, queue))

    async def publish(self, queue: str, messages: Sequence[Outgoing]) -> None:
        if messages:
            await asyncio.wrap_future(self._submit(_Batch(queue, list(messages), Future())))

    def consume(self, queue: str, *, prefetch: int) -> KombuConsumer:
        if self._closed:
            raise Transient("the AMQP transport is closed")
        consumer = KombuConsumer(self._url, queue, prefetch, self._consumers.discard)
        self._consumers.add(consumer)
        return consumer

    async def depth(self, queue: str) -> int | None:
        try:
            result = await self._call(lambda channel: channel.queue_declare(queue, passive=True))
        except Transient:
            return None
        return int(result.message_count)

    async def check(self) -> None:
        await self._call(lambda channel: None)

    async def close(self) -> None:
        self._closed = True
        closing = [c.close() for c in list(self._consumers)]
        if self._publisher is not None:
            closing.append(self._publisher.close())
        await asyncio.gather(*closing)
