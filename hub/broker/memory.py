"""In-process transport: the embedded default.

A real implementation, not a test double: it honours prefetch, ack, nack with
requeue (redelivered first, flagged), dead-lettering to `<queue>.dead`, and hands
back what a closed consumer held. It keeps nothing across a restart; the hub's
recovery re-enqueues from the store what is pending, which is why the embedded
default keeps the same guarantees as RabbitMQ.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence

from hub.broker.transport import Incoming, Outgoing
from hub.errors import Transient


class _Queue:
    def __init__(self) -> None:
        self.ready: deque[tuple[Outgoing, bool]] = deque()
        self.changed = asyncio.Condition()


class MemoryConsumer:
    """A consumer of one in-process queue."""

    def __init__(self, transport: MemoryTransport, queue: str, prefetch: int) -> None:
        self._transport = transport
        self._queue = queue
        self._prefetch = prefetch
        self._unacked: dict[int, Outgoing] = {}
        self._tags = itertools.count(1)
        self._closed = False

    async def get(self, max_batch: int, timeout: float | None = None) -> list[Incoming]:
        q = self._transport._queue(self._queue)
        async with q.changed:
            try:
                await asyncio.wait_for(q.changed.wait_for(self._can_take), timeout)
            except TimeoutError:
                return []
            room = min(max_batch, self._prefetch - len(self._unacked))
            batch: list[Incoming] = []
            while q.ready and len(batch) < room:
                message, redelivered = q.ready.popleft()
                tag = next(self._tags)
                self._unacked[tag] = message
                batch.append(Incoming(message.body, dict(message.headers), redelivered, tag))
            return batch

    def _can_take(self) -> bool:
        if self._closed:
            raise Transient(f"consumer of {self._queue} is closed")
        q = self._transport._queue(self._queue)
        return bool(q.ready) and len(self._unacked) < self._prefetch

    async def ack(self, messages: Sequence[Incoming]) -> None:
        for m in messages:
            self._unacked.pop(m.tag, None)
        await self._transport._notify(self._queue)

    async def nack(self, messages: Sequence[Incoming], *, requeue: bool = True) -> None:
        returned = [self._unacked.pop(m.tag) for m in messages if m.tag in self._unacked]
        if requeue:
            await self._transport._give_back(self._queue, returned)
        else:
            await self._transport.publish(self._queue + ".dead", returned)
        await self._transport._notify(self._queue)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        held = list(self._unacked.values())
        self._unacked.clear()
        await self._transport._give_back(self._queue, held)


class MemoryTransport:
    """Queues in this process's memory, shared by every task of its event loop."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}

    def _queue(self, name: str) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = _Queue()
        return q

    async def _notify(self, name: str) -> None:
        q = self._queue(name)
        async with q.changed:
            q.changed.notify_all()

    async def _give_back(self, name: str, messages: Sequence[Outgoing]) -> None:
        q = self._queue(name)
        async with q.changed:
            # Returned messages go first, as RabbitMQ requeues them near the head.
            q.ready.extendleft((m, True) for m in reversed(messages))
            q.changed.notify_all()

    async def declare(self, queue: str) -> None:
        self._queue(queue)
        self._queue(queue + ".dead")

    async def publish(self, queue: str, messages: Sequence[Outgoing]) -> None:
        q = self._queue(queue)
        async with q.changed:
            q.ready.extend((m, False) for m in messages)
            q.changed.notify_all()

    def consume(self, queue: str, *, prefetch: int) -> MemoryConsumer:
        return MemoryConsumer(self, queue, prefetch)

    async def depth(self, queue: str) -> int | None:
        return len(self._queue(queue).ready)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self._queues.clear()
