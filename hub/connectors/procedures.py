"""Administrative-procedure connector (`kind: procedures`): the one-stop system pushes dossiers.

System: the city's administrative-procedure processing system (hệ thống một
cửa điện tử), which receives dossiers (hồ sơ thủ tục hành chính) at the desk
and follows them to the result. Protocol: it POSTs its own JSON to the hub's
`POST /api/v1/native` with its `Authorization: Bearer <key>`
(contracts/one-stop.openapi.yaml; simulator adapters/one_stop.py). Supported:
decoding a push (one event or a list) into the canonical dossier events
(`vn.lgsp.dossier.{received,status_changed,supplement_requested,completed,
returned,cancelled}.v1`). The hub sends nothing to the one-stop system yet:
`deliver` refuses. Mapping: hub/connectors/procedures_codec.py.

Config. The one-stop system is one System of this kind, e.g.

    - id: 000.00.12.H29:motcua
      kind: procedures
      api_key: env:MOTCUA_KEY
      may_send: ["vn.lgsp.dossier.*"]

Idempotency and order: every native event carries the dossier's change number
(`SoThuTuThayDoi`, 1, 2, ...); the event id is `event_id_for(code, number)`, so
a repeated push is stored once, and the number travels on as `data.sequence`
for the national portal to keep only the newest state.

Errors: a body that is not JSON, not an event or a list of events, or an event
that cannot be mapped (unknown TrangThai, a missing field) is `Rejected`, the
whole push with it: nothing of a half-understood push is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.connectors.procedures_codec import (
    dossier_from,
    event_for,
    event_id_for,
    mask,
    mask_email,
    mask_name,
    masked_applicant,
)
from hub.errors import Rejected

__all__ = [
    "MAX_EVENTS",
    "ProceduresConnector",
    "dossier_from",
    "event_for",
    "event_id_for",
    "mask",
    "mask_email",
    "mask_name",
    "masked_applicant",
]

MAX_EVENTS = 1000  # events in one push


class ProceduresConnector:
    """Turns the one-stop system's pushed dossier events into canonical ones."""

    kind: ClassVar[str] = "procedures"

    def __init__(self, blobs: Any = None) -> None:
        pass

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        """A push (one native event, or a list of them) -> their CloudEvents. Raises Rejected."""
        try:
            body = orjson.loads(native)
        except orjson.JSONDecodeError as exc:
            raise Rejected(f"{sender.id}: the pushed body is not JSON: {exc}") from exc
        items = body if isinstance(body, list) else [body]
        if not items or len(items) > MAX_EVENTS:
            raise Rejected(f"{sender.id}: a push holds 1 to {MAX_EVENTS} events, not {len(items)}")
        if not all(isinstance(i, dict) for i in items):
            raise Rejected(f"{sender.id}: every pushed event must be a JSON object")
        return [event_for(item, sender) for item in items]

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """Nothing is sent to the one-stop system. Raises Rejected."""
        raise Rejected(
            f"{target.id}: the hub sends nothing to a one-stop system ({event.get('type')})"
        )

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """Nothing is sent to the one-stop system. Raises Rejected."""
        raise Rejected(
            f"{target.id}: the hub sends nothing to a one-stop system ({event.get('type')})"
        )

    async def close(self) -> None:
        pass
