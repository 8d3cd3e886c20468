"""Reports submitted: figures computed, compared with the last version sent, published.

`submit` computes a period's indicators per agency and, for each agency whose
figures differ from the last version sent for that report (or that was never
sent), writes a `vn.lgsp.report.submitted.v1` event to the outbox and its row to
`reports_sent` in one transaction: version 1 first, then version N + 1 with
`corrects: N`. Identical figures send nothing, so running it again (daily while a
period is due, or by hand) never sends a duplicate. The event id is derived from
report id and version: the same report version is one message everywhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub import envelope
from hub.reports.indicators import INDICATOR_SET, compute_in
from hub.reports.periods import VIETNAM, Period, due_periods, parse_period
from hub.reports.tables import reports_sent
from hub.store import outbox

SUBMITTED = "vn.lgsp.report.submitted.v1"


@dataclass(frozen=True)
class Reporting:
    """The reporting consumer's settings.

    Args:
        source_id: its system id, the `source` of the reports it publishes.
        queue: the outbox queue the OutboxRelay publishes to (the hub feeds it to ingest).
        consumer: its name in the inbox of processed message ids.
        indicator_set: the first part of every report id.
    """

    source_id: str
    queue: str = "reports.outbox"
    consumer: str = "reports"
    indicator_set: str = INDICATOR_SET


def report_id_for(indicator_set: str, period: str, agency: str) -> str:
    """`dossier_processing:2026-10:000.00.12.H29`: the same for every version."""
    return f"{indicator_set}:{period}:{agency}"


def submit(
    engine: sa.Engine,
    reporting: Reporting,
    period: str | Period,
    agency: str | None = None,
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """Compute `period` per agency and queue the reports whose figures changed.

    Returns one dict per agency: `report_id`, `version` (the one now current),
    `queued` (False when the figures equal the last version sent), `message_id`
    (None when nothing was queued), `corrects`, `period`, `agency`, `indicators`.
    Raises ValueError for a malformed period.
    """
    p = period if isinstance(period, Period) else parse_period(period)
    with engine.begin() as conn:
        _lock(conn)
        return [
            _submit_one(conn, reporting, p, item, now)
            for item in compute_in(conn, p, agency, now=now)
        ]


def submit_due(engine: sa.Engine, reporting: Reporting, *, now: datetime) -> list[dict[str, Any]]:
    """`submit` every period due today in Vietnam (`due_periods`); for a daily loop."""
    results: list[dict[str, Any]] = []
    for label in due_periods(now.astimezone(VIETNAM).date()):
        results += submit(engine, reporting, label, now=now)
    return results


def _submit_one(
    conn: sa.Connection, reporting: Reporting, period: Period, item: dict[str, Any], now: datetime
) -> dict[str, Any]:
    code = item["agency"]["code"]
    report_id = report_id_for(reporting.indicator_set, period.label, code)
    c = reports_sent.c
    last = conn.execute(
        sa.select(c.version, c.indicators)
        .where(c.report_id == report_id)
        .order_by(c.version.desc())
        .limit(1)
    ).first()
    result: dict[str, Any] = {
        "report_id": report_id,
        "period": period.label,
        "agency": code,
        "indicators": item["indicators"],
    }
    if last is not None and orjson.loads(last.indicators) == item["indicators"]:
        return result | {"version": last.version, "queued": False, "message_id": None}
    version = 1 if last is None else last.version + 1
    data: dict[str, Any] = {
        "report_id": report_id,
        "version": version,
        "indicator_set": reporting.indicator_set,
        "period": period.as_json(),
        "agency": item["agency"],
        "indicators": item["indicators"],
        "computed_at": _iso(now),
    }
    if last is not None:
        data["corrects"] = last.version
    message_id = _publish(conn, reporting, data, now)
    conn.execute(
        reports_sent.insert().values(
            report_id=report_id,
            version=version,
            indicator_set=reporting.indicator_set,
            period=period.label,
            agency=code,
            indicators=orjson.dumps(item["indicators"]).decode(),
            computed_at=now,
            sent_at=now,
            message_id=message_id,
        )
    )
    corrects = {"corrects": last.version} if last is not None else {}
    return result | {"version": version, "queued": True, "message_id": message_id} | corrects


def _publish(conn: sa.Connection, reporting: Reporting, data: dict[str, Any], now: datetime) -> str:
    """Add the report's CloudEvent to the outbox; returns its id."""
    key = f"{data['report_id']}#{data['version']}"
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "report-" + uuid.uuid5(uuid.NAMESPACE_URL, key).hex,
        "source": reporting.source_id,
        "type": SUBMITTED,
        "time": _iso(now),
        "subject": data["report_id"][:256],
        "datacontenttype": "application/json",
        "dataschema": "hub/schemas/report.submitted.v1.json",
        "data": data,
    }
    event = envelope.nfc(event)
    headers = {"message-id": event["id"], "type": SUBMITTED}
    outbox.add(conn, reporting.queue, envelope.dumps(event), headers)
    return str(event["id"])


def _lock(conn: sa.Connection) -> None:
    """Make submits take turns (PostgreSQL; SQLite has one writer), so versions do not race."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7243907)"))


def _iso(at: datetime) -> str:
    return at.astimezone(VIETNAM).isoformat(timespec="seconds")
