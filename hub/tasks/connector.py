"""Task platform connector (`kind: task_platform`): the hub delivers directives to its tables.

System: the city's digital-government task platform, which runs inside the hub
and keeps its own tables (hub/tasks/tables.py). Protocol: none, a function call
in a database transaction. Supported: delivery of `vn.lgsp.directive.assigned.v1`,
`.updated.v1` and `.revoked.v1`, applied exactly once and in version order
(hub/tasks/apply.py). What the platform publishes (progress, completion,
reminders) leaves through the outbox, not through this connector.

Config. One System of this kind; its id is the `source` of what the platform
publishes, and it must be allowed to send the types it publishes:

    - id: 000.00.00.H29:tasks
      kind: task_platform
      may_receive: [vn.lgsp.directive.*]
      may_send: [vn.lgsp.directive.progress.v1, vn.lgsp.directive.completed.v1,
                 vn.lgsp.reminder.due.v1]
      due_in_days: 3                 # the "due in N days" reminder (default 3)
      outbox_queue: tasks.outbox     # where OutboxRelay publishes (default)
      units:                         # unit codes the platform knows (also PUT through the API)
        - {code: 000.00.12.H29, name: Sở Tư pháp}
        - {code: 000.12.01.H29, name: Phòng Hành chính tư pháp, parent: 000.00.12.H29}

Error mapping: a type the platform does not take, or a directive event without
an id and version, is `Rejected`; a database error is `Transient` (retried).
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
from hub.store.db import Database
from hub.store.messages import stored_key
from hub.store.models import utcnow
from hub.tasks.apply import Outcome, apply
from hub.tasks.status import Clock, Platform
from hub.tasks.work import Unit


def platform_for(system: System, now: Clock = utcnow) -> Platform:
    """The platform's settings from its System entry in the config."""
    return Platform(
        source_id=system.id,
        queue=str(system.options.get("outbox_queue", "tasks.outbox")),
        due_in_days=int(system.options.get("due_in_days", 3)),
        now=now,
    )


def units_of(system: System) -> list[Unit]:
    """The units listed under the System's `units:` option."""
    return [
        Unit(str(u["code"]), u.get("name"), u.get("parent"))
        for u in system.options.get("units", [])
    ]


class TaskPlatformConnector:
    """Applies directive events to the task platform's tables in the hub's database."""

    kind: ClassVar[str] = "task_platform"

    def __init__(self, blobs: Any = None) -> None:
        self._db: Database | None = None
        self._now: Clock = utcnow
        self._platform: Platform | None = None

    def bind(self, db: Database, platform: Platform | None = None, *, now: Clock = utcnow) -> None:
        """Give the connector its database; without `platform`, it is built from the target."""
        self._db, self._platform, self._now = db, platform, now

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        raise Rejected("the task platform sends through its outbox, not through decode")

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        raise Rejected("the task platform is called in process; there is no request to encode")

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """Apply the event in one transaction. Raises Rejected or Transient."""
        if self._db is None:
            raise Transient("the task platform connector has no database yet (bind not called)")
        platform = self._platform or platform_for(target, self._now)
        message_id = str(event.get("id", ""))
        if not message_id:
            raise Rejected("a directive event without an id")
        started = time.perf_counter()
        try:
            outcome = await self._db.run(_apply, message_id, event, platform)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise Transient(f"{target.id}: database: {exc.__class__.__name__}: {exc}") from exc
        detail = f"{outcome.result} {outcome.directive_id}"
        if outcome.versions:
            detail += f" v{','.join(map(str, outcome.versions))}"
        if outcome.flag:
            detail += f" (flagged: {outcome.flag})"
        elapsed = (time.perf_counter() - started) * 1000
        return Receipt(200, detail, elapsed, {"result": outcome.result})

    async def close(self) -> None:
        return None


def _apply(
    engine: sa.Engine, message_id: str, event: Mapping[str, Any], platform: Platform
) -> Outcome:
    with engine.begin() as conn:
        key = stored_key(conn, str(event.get("source", "")), message_id)
        return apply(conn, key, event, platform)
