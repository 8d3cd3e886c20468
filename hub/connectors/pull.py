"""Pull delivery (`kind: edxml` without an endpoint): the package waits for its recipient.

Document-management systems built for the national axis poll for their
packages (`getReceivedEdocList`, `getEdoc`, `updateStatus` of the local document
axis API, hub/api/edoc.py). For them a delivery job ends in `waiting`: the
package is held, listed to the recipient, and the delivery becomes `delivered`
when the recipient acknowledges it with `done` (or dead with `fail`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.errors import Rejected


class PullConnector:
    """Holds each job for its recipient to fetch."""

    kind: ClassVar[str] = "edxml-pull"

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        raise Rejected("pulling systems send through the local document axis API")

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        raise Rejected(f"{target.id} pulls its packages; nothing is sent to it")

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        return Receipt(0, f"waiting for {target.id} to fetch it", waiting=True)

    async def close(self) -> None:
        return None
