"""What every connector is: native format <-> canonical events, and delivery.

A connector knows one kind of external system. `decode` turns what the system
sends into canonical CloudEvents, `encode` turns a canonical event into the
request the system expects, and `deliver` sends it through an adapter, raising
`Transient` (retry later) or `Rejected` (dead-letter now).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from hub.config import System
from hub.errors import Rejected, Transient


@dataclass(frozen=True)
class OutboundRequest:
    """An HTTP request ready to send."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Receipt:
    """What a destination answered when it took a message."""

    status_code: int
    detail: str = ""
    elapsed_ms: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    waiting: bool = False  # held for the recipient to fetch (pull), not yet delivered


class Connector(Protocol):
    kind: ClassVar[str]

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        """Native payload -> canonical events. Raises Rejected on bad input."""
        ...

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """Canonical event -> what the destination expects."""
        ...

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """Send through an adapter. Raises Transient or Rejected."""
        ...

    async def close(self) -> None: ...


Outcomes = list[Receipt | Transient | Rejected]


@runtime_checkable
class BatchConnector(Protocol):
    """A connector whose system takes several messages in one call (a portal's batch API).

    Used when the system's config sets `batch: N` (N > 1). One result per item, in
    order: a Receipt, or the Transient/Rejected of that item alone (a partial
    failure); raising instead fails the whole batch.
    """

    async def deliver_batch(
        self, items: Sequence[tuple[bytes, Mapping[str, Any]]], target: System
    ) -> Outcomes: ...
