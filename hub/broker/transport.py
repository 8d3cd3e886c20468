"""The transport interface the hub's processes share: publish, consume, ack, nack, close.

`memory://` selects the in-process transport (the embedded default), `amqp://` the
kombu transport for RabbitMQ. Both give the same contract:

- `publish` returns only once the broker holds every message (publisher confirms);
  it raises `Transient` when it cannot.
- A consumed message stays owned by its consumer until `ack`; `nack(requeue=True)`
  gives it back for redelivery (flagged `redelivered`), `nack(requeue=False)` moves it
  to the queue's dead-letter queue `<queue>.dead`. A consumer closed or lost with
  messages unacked hands them back too.
- Queues are durable; on RabbitMQ they are quorum queues and messages are persistent.

Retry delays are not the transport's job: the store keeps each delivery's next
attempt time (see hub/delivery.py), so a delay of an hour survives any restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Outgoing:
    """A message to publish: bytes and string headers."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Incoming:
    """A consumed message; `tag` is the transport's own handle for ack and nack."""

    body: bytes
    headers: dict[str, Any]
    redelivered: bool
    tag: Any = field(repr=False, compare=False)


class Consumer(Protocol):
    """One subscription to one queue, with a bounded number of unacked messages."""

    async def get(self, max_batch: int, timeout: float | None = None) -> list[Incoming]:
        """Wait for a message (or `timeout` seconds: then []); return up to `max_batch`."""
        ...

    async def ack(self, messages: Sequence[Incoming]) -> None: ...

    async def nack(self, messages: Sequence[Incoming], *, requeue: bool = True) -> None: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """A message broker as the hub uses it."""

    async def declare(self, queue: str) -> None:
        """Create the queue (and its `.dead` companion) if it does not exist."""
        ...

    async def publish(self, queue: str, messages: Sequence[Outgoing]) -> None:
        """Publish to `queue`; returns once every message is confirmed. Raises Transient."""
        ...

    def consume(self, queue: str, *, prefetch: int) -> Consumer: ...

    async def depth(self, queue: str) -> int | None:
        """Messages ready in `queue`, or None when the broker cannot say now."""
        ...

    async def check(self) -> None:
        """Raise Transient when the broker cannot be reached."""
        ...

    async def close(self) -> None: ...


def open_transport(url: str) -> Transport:
    """The transport for a broker URL: `memory://` or `amqp://user:pass@host:port/vhost`."""
    if url.startswith("memory://"):
        from hub.broker.memory import MemoryTransport

        return MemoryTransport()
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        from hub.broker.kombu import KombuTransport

        return KombuTransport(url)
    raise ValueError(f"unsupported broker URL {url!r}: use memory:// or amqp://")
