"""Dossier events, a hand-built October 2026, and the outbox as the tests read them.

October 2026 in Vietnam runs from S = 2026-10-01T00:00+07:00 to E = 2026-11-01T00:00+07:00.
Reports are computed on 2026-11-03, after E, so T = E (hub/reports/indicators.py).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub.config import builtin_types
from hub.reports import Outcome, Reporting, apply
from hub.store.db import Database
from hub.store.models import outbox
from hub.validation import Validators

MOTCUA = "000.00.00.H29:motcua"  # the one-stop system, source of the dossier events
REPORTS = "000.00.00.H29:baocao"  # the reporting consumer
JUSTICE, HOME, TRANSPORT = "000.00.12.H29", "000.00.13.H29", "000.00.14.H29"
NAMES = {JUSTICE: "Sở Tư pháp", HOME: "Sở Nội vụ", TRANSPORT: "Sở Giao thông vận tải"}
NOW = datetime.fromisoformat("2026-11-03T09:00:00+07:00")
VALIDATORS = Validators(builtin_types())
TYPES = {
    "received": "received",
    "processing": "status_changed",
    "awaiting_payment": "status_changed",
    "supplement_requested": "supplement_requested",
    "completed": "completed",
    "returned": "returned",
    "cancelled": "cancelled",
    "rejected": "cancelled",
}
_ids = itertools.count(1)


def reporting() -> Reporting:
    return Reporting(source_id=REPORTS, queue="reports.outbox")


def dossier(
    code: str,
    agency: str,
    received: str,
    appointment: str,
    *,
    status: str = "received",
    sequence: int = 1,
    completed: str | None = None,
    changed: str | None = None,
) -> dict[str, Any]:
    """A dossier event as the one-stop system sends it; times are ICT unless they say."""
    data: dict[str, Any] = {
        "dossier_code": code,
        "procedure_code": "1.001234",
        "agency": {"code": agency, "name": NAMES[agency]},
        "level": "province",
        "received_at": _at(received),
        "appointment_at": _at(appointment),
        "status": status,
        "applicant": {"kind": "citizen", "name": "Nguyễn Văn A"},
        "sequence": sequence,
        "changed_at": _at(changed or completed or received),
    }
    if completed:
        data["completed_at"] = _at(completed)
    ev = {
        "specversion": "1.0",
        "id": f"d{next(_ids)}",
        "source": MOTCUA,
        "type": f"vn.lgsp.dossier.{TYPES[status]}.v1",
        "datacontenttype": "application/json",
        "data": data,
    }
    check(ev)
    return ev


def _at(text: str) -> str:
    return text if text.endswith("Z") or "+" in text[10:] else f"{text}+07:00"


def check(ev: dict[str, Any]) -> None:
    VALIDATORS.check_envelope(ev)
    VALIDATORS.check_data(ev)


def run(db: Database, ev: dict[str, Any], message_id: str | None = None) -> Outcome:
    with db.engine.begin() as conn:
        return apply(conn, message_id or ev["id"], ev)


def october() -> list[dict[str, Any]]:
    """The hand-built event set, in the order delivered (J2 arrives newest first)."""
    d = dossier
    return [
        # Sở Tư pháp (JUSTICE)
        d("J1", JUSTICE, "2026-10-05T08:00:00", "2026-10-10T17:00:00",
          status="completed", sequence=2, completed="2026-10-09T10:00:00"),
        d("J2", JUSTICE, "2026-10-12T08:00:00", "2026-10-20T17:00:00",
          status="completed", sequence=3, completed="2026-10-22T09:00:00"),
        d("J2", JUSTICE, "2026-10-12T08:00:00", "2026-10-20T17:00:00", sequence=1),
        d("J2", JUSTICE, "2026-10-12T08:00:00", "2026-10-20T17:00:00",
          status="processing", sequence=2, changed="2026-10-13T08:00:00"),
        d("J3", JUSTICE, "2026-09-25T08:00:00", "2026-10-02T17:00:00",
          status="completed", sequence=2, completed="2026-10-03T08:00:00"),
        d("J4", JUSTICE, "2026-09-30T23:30:00", "2026-10-15T17:00:00",
          status="completed", sequence=2, completed="2026-10-15T17:00:00"),
        d("J5", JUSTICE, "2026-10-31T23:59:00", "2026-11-10T17:00:00"),
        d("J6", JUSTICE, "2026-10-20T08:00:00", "2026-10-28T17:00:00",
          status="processing", sequence=2, changed="2026-10-21T08:00:00"),
        d("J7", JUSTICE, "2026-10-25T08:00:00", "2026-10-30T17:00:00",
          status="completed", sequence=2, completed="2026-11-01T00:00:00"),
        d("J8", JUSTICE, "2026-10-10T08:00:00", "2026-10-20T17:00:00",
          status="cancelled", sequence=2, changed="2026-10-15T08:00:00"),
        # Sở Nội vụ (HOME)
        d("H1", HOME, "2026-10-01T00:00:00", "2026-10-05T17:00:00",
          status="completed", sequence=2, completed="2026-10-04T08:00:00"),
        d("H2", HOME, "2026-09-30T17:00:00Z", "2026-10-08T17:00:00",
          status="supplement_requested", sequence=2, changed="2026-10-03T08:00:00"),
        d("H3", HOME, "2026-09-10T08:00:00", "2026-09-20T17:00:00",
          status="processing", sequence=2, changed="2026-09-11T08:00:00"),
        d("H4", HOME, "2026-10-15T08:00:00", "2026-10-25T17:00:00",
          status="completed", sequence=2, completed="2026-10-26T08:00:00"),
        d("H4", HOME, "2026-10-15T08:00:00", "2026-10-25T17:00:00",
          status="returned", sequence=3, completed="2026-10-26T08:00:00",
          changed="2026-10-27T08:00:00"),
        d("H5", HOME, "2026-11-01T08:00:00", "2026-11-10T17:00:00"),
        d("H6", HOME, "2026-10-20T08:00:00", "2026-10-30T17:00:00",
          status="completed", sequence=2, completed="2026-10-29T08:00:00"),
        # Sở Giao thông vận tải (TRANSPORT): its first dossier came after the period
        d("T1", TRANSPORT, "2026-11-02T08:00:00", "2026-11-12T17:00:00"),
    ]  # fmt: skip


# Figures worked out by hand from the set above (see hub/reports/indicators.py):
#   JUSTICE received:  J1 J2 J5 J6 J7 J8 (J3, J4 came in September)             = 6
#           on time:   J1 (10-09 <= 10-10), J4 (completed exactly at appointment) = 2
#           late:      J2 (10-22 > 10-20), J3 (10-03 > 10-02)                    = 2
#           overdue:   J6 (open, due 10-28), J7 (completed at E, so open at T)   = 2
#                      (J5 is due 11-10; J8 was cancelled 10-15)
#           rate:      2 / 4                                                    = 0.5
#   HOME    received:  H1 (at S), H2 (at S, in UTC), H4, H6 (H3 Sept, H5 Nov)   = 4
#           on time:   H1, H6 = 2; late: H4 = 1; rate 2 / 3                      = 0.6667
#           overdue:   H2 (asked to supplement: still open), H3 (due in Sept)   = 2
#   TRANSPORT: no dossier received before E, so no report.
EXPECTED = {
    JUSTICE: {
        "received": 6,
        "completed_on_time": 2,
        "completed_late": 2,
        "in_progress_overdue": 2,
        "on_time_rate": 0.5,
    },
    HOME: {
        "received": 4,
        "completed_on_time": 2,
        "completed_late": 1,
        "in_progress_overdue": 2,
        "on_time_rate": 0.6667,
    },
}


def published(db: Database) -> list[dict[str, Any]]:
    """The outbox's events in id order."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.queue, outbox.c.body).order_by(outbox.c.id)).all()
    for row in rows:
        assert row.queue == "reports.outbox"
    return [orjson.loads(r.body) for r in rows]
