"""Reporting consumer connector (`kind: reporting`): the hub delivers dossier events to it.

System: the hub's own reporting consumer, which keeps every dossier as last seen
(hub/reports/tables.py) and computes indicator reports from them. Protocol: none,
a function call in a database transaction. Supported: delivery of the six
`vn.lgsp.dossier.*.v1` events, applied exactly once, newest sequence winning
(hub/reports/apply.py). The reports it computes leave through the outbox as
`vn.lgsp.report.submitted.v1` from this system's id (hub/reports/submit.py); the
external reporting system is a separate System of kind `reporting_system`
(hub/connectors/reporting_system.py) that the hub routes those reports to.

Config. One System of this kind:

    - id: 000.00.00.H29:baocao
      kind: reporting
      may_receive: [vn.lgsp.dossier.*]
      may_send: [vn.lgsp.report.submitted.v1]
      outbox_queue: reports.outbox    # where OutboxRelay publishes (default)

Error mapping: another type, or a dossier event the report cannot read, is
`Rejected`; a database error is `Transient` (retried).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import sqlalchemy as sa
import sqlalchemy.exc

from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.errors import Rejected, Transient
from hub.reports.apply import Outcome, apply
from hub.reports.submit import Reporting
from hub.store.db import Database
from hub.store.messages import stored_key


def reporting_for(system: System, queue_prefix: str | None = None) -> Reporting:
    """The consumer's settings from its System entry; the queue gets `queue_prefix.` first."""
    queue = str(system.options.get("outbox_queue", "reports.outbox"))
    return Reporting(
        source_id=system.id, queue=f"{queue_prefix}.{queue}" if queue_prefix else queue
    )


class ReportingConnector:
    """Applies dossier events to the reporting consumer's tables in the hub's database."""

    kind: ClassVar[str] = "reporting"

    def __init__(self, blobs: Any = None) -> None:
        self._db: Database | None = None
        self._reporting: Reporting | None = None

    def bind(self, db: Database, source_id: str, outbox_queue: str) -> None:
        """Give the connector its database, its system id and its outbox queue."""
        self._db = db
        self._reporting = Reporting(source_id=source_id, queue=outbox_queue)

    @property
    def reporting(self) -> Reporting:
        """The settings `submit` takes (known once bound)."""
        if self._reporting is None:
            raise RuntimeError("the reporting connector is not bound yet")
        return self._reporting

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        raise Rejected("the reporting consumer publishes through its outbox, not through decode")

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        raise Rejected("the reporting consumer is called in process; there is no request")

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """Apply the event in one transaction. Raises Rejected or Transient."""
        if self._db is None:
            raise Transient("the reporting connector has no database yet (bind not called)")
        message_id = str(event.get("id", ""))
        if not message_id:
            raise Rejected("a dossier event without an id")
        consumer = self._reporting.consumer if self._reporting else "reports"
        started = time.perf_counter()
        try:
            outcome = await self._db.run(_apply, message_id, event, consumer)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise Transient(f"{target.id}: database: {exc.__class__.__name__}: {exc}") from exc
        detail = f"{outcome.result} {outcome.dossier_code} #{outcome.sequence}"
        elapsed = (time.perf_counter() - started) * 1000
        return Receipt(200, detail, elapsed, {"result": outcome.result})

    async def close(self) -> None:
        return None


def _apply(engine: sa.Engine, message_id: str, event: Mapping[str, Any], consumer: str) -> Outcome:
    with engine.begin() as conn:
        key = stored_key(conn, str(event.get("source", "")), message_id)
        return apply(conn, key, event, consumer=consumer)
