"""Dossier events applied to `report_dossiers`: exactly once, newest sequence wins.

Each of the six dossier events carries the dossier as it stands after the change,
numbered by `sequence` in the one-stop system. `apply` claims the message id in
the inbox inside the caller's transaction (a repeat is a no-op), then upserts the
dossier only when the event's sequence is higher than the one stored: events of
one dossier may arrive in any order and the stored row is always the newest
state seen. The upsert's condition makes concurrent deliveries of one dossier
safe without a lock (PostgreSQL and SQLite both evaluate it on the stored row).

Derived columns:
- `completed_at`: the event's `completed_at`; when a `completed` or `returned`
  dossier lacks it, that event's `changed_at`.
- `closed_at`: for a `cancelled` or `rejected` dossier, that event's `changed_at`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.errors import Rejected
from hub.reports.periods import VIETNAM
from hub.reports.tables import report_dossiers
from hub.store import inbox
from hub.store.models import utcnow

CONSUMED = tuple(
    f"vn.lgsp.dossier.{name}.v1"
    for name in (
        "received",
        "status_changed",
        "supplement_requested",
        "completed",
        "returned",
        "cancelled",
    )
)
DONE = ("completed", "returned")
CLOSED = ("cancelled", "rejected")


@dataclass(frozen=True)
class Outcome:
    """What one message came to: applied, stale (an older sequence), or repeat (claimed)."""

    message_id: str
    result: str
    dossier_code: str | None = None
    sequence: int | None = None


def apply(
    conn: sa.Connection, message_id: str, event: Mapping[str, Any], *, consumer: str = "reports"
) -> Outcome:
    """Apply one dossier event in the caller's transaction.

    Raises:
        Rejected: not a dossier event, or its data lacks what the report needs.
    """
    if event.get("type") not in CONSUMED:
        raise Rejected(f"the reporting consumer does not take {event.get('type')!r}")
    row = dossier_row(event)
    code, sequence = row["dossier_code"], row["sequence"]
    if not inbox.claim(conn, consumer, [message_id]):
        return Outcome(message_id, "repeat", code, sequence)
    row |= {"message_id": message_id, "updated_at": utcnow()}
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(report_dossiers).values(row)
    c = report_dossiers.c
    upsert = stmt.on_conflict_do_update(
        index_elements=[c.source, c.dossier_code],
        set_={k: stmt.excluded[k] for k in row if k not in ("source", "dossier_code")},
        where=c.sequence < stmt.excluded.sequence,
    )
    applied = conn.execute(upsert.returning(c.sequence)).first() is not None
    return Outcome(message_id, "applied" if applied else "stale", code, sequence)


def dossier_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """The `report_dossiers` values of a dossier event. Raises Rejected."""
    try:
        data = event["data"]
        status = str(data["status"])
        changed_at = _instant(data["changed_at"])
        completed = data.get("completed_at")
        return {
            "source": str(event["source"]),
            "dossier_code": str(data["dossier_code"]),
            "agency": str(data["agency"]["code"]),
            "agency_name": data["agency"].get("name"),
            "procedure_code": str(data["procedure_code"]),
            "status": status,
            "received_at": _instant(data["received_at"]),
            "appointment_at": _instant(data["appointment_at"]),
            "completed_at": (
                _instant(completed) if completed else changed_at if status in DONE else None
            ),
            "closed_at": changed_at if status in CLOSED else None,
            "sequence": int(data["sequence"]),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Rejected(f"{event.get('type')}: a dossier the report cannot read: {exc!r}") from exc


def _instant(value: Any) -> datetime:
    """An RFC 3339 instant; one without an offset is read as Vietnam time."""
    at = datetime.fromisoformat(str(value))
    return at if at.tzinfo is not None else at.replace(tzinfo=VIETNAM)
