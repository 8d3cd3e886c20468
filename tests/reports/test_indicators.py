"""Dossier events applied exactly once by sequence, and the indicators, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.config import RetryPolicy, System
from hub.errors import Rejected, Transient
from hub.reports import compute, due_periods, parse_period
from hub.reports.connector import ReportingConnector
from hub.reports.tables import TABLES, report_dossiers
from hub.store.db import Database
from hub.store.models import metadata
from tests.reports.helpers import (
    EXPECTED,
    HOME,
    JUSTICE,
    NOW,
    REPORTS,
    dossier,
    october,
    run,
)


def load_october(db: Database) -> None:
    for ev in october():
        run(db, ev)


def by_agency(
    db: Database, period: str = "2026-10", now: datetime = NOW
) -> dict[str, dict[str, Any]]:
    return {r["agency"]["code"]: r for r in compute(db.engine, period, now=now)}


def test_migration_creates_the_tables_as_declared(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    names = {t.name for t in TABLES}
    assert [d for d in diff if any(n in str(d) for n in names)] == []


def test_a_month_equals_the_figures_computed_by_hand(db: Database) -> None:
    load_october(db)
    reports = by_agency(db)
    assert {code: r["indicators"] for code, r in reports.items()} == EXPECTED
    assert reports[JUSTICE]["agency"] == {"code": JUSTICE, "name": "Sở Tư pháp"}
    assert reports[JUSTICE]["period"] == {
        "kind": "month",
        "start": "2026-10-01",
        "end": "2026-10-31",
        "label": "2026-10",
    }
    assert reports[JUSTICE]["as_of"] == "2026-11-01T00:00:00+07:00"
    only = compute(db.engine, "2026-10", HOME, now=NOW)
    assert [r["indicators"] for r in only] == [EXPECTED[HOME]]


def test_events_out_of_order_keep_the_newest_state(db: Database) -> None:
    load_october(db)
    with db.engine.connect() as conn:
        row = conn.execute(
            sa.select(report_dossiers).where(report_dossiers.c.dossier_code == "J2")
        ).one()
    assert (row.status, row.sequence) == ("completed", 3)
    assert row.completed_at == datetime.fromisoformat("2026-10-22T09:00:00+07:00")
    stale = dossier("J6", JUSTICE, "2026-10-20T08:00:00", "2026-10-28T17:00:00", sequence=1)
    assert run(db, stale).result == "stale"
    assert by_agency(db)[JUSTICE]["indicators"] == EXPECTED[JUSTICE]


def test_the_same_message_twice_is_applied_once(db: Database) -> None:
    first = dossier("X1", JUSTICE, "2026-10-05T08:00:00", "2026-10-10T17:00:00")
    assert run(db, first).result == "applied"
    # the same id again, even carrying a newer state, is a repeat: nothing changes
    later = dossier(
        "X1", JUSTICE, "2026-10-05T08:00:00", "2026-10-10T17:00:00",
        status="completed", sequence=2, completed="2026-10-06T08:00:00",
    )  # fmt: skip
    assert run(db, later, message_id=first["id"]).result == "repeat"
    figures = by_agency(db)[JUSTICE]["indicators"]
    assert (figures["received"], figures["completed_on_time"]) == (1, 0)
    assert run(db, later).result == "applied"
    assert by_agency(db)[JUSTICE]["indicators"]["completed_on_time"] == 1


def test_mid_period_overdue_is_counted_at_now(db: Database) -> None:
    load_october(db)
    mid = datetime.fromisoformat("2026-10-21T00:00:00+07:00")
    report = by_agency(db, now=mid)[JUSTICE]
    assert report["as_of"] == "2026-10-21T00:00:00+07:00"
    # J2 (due 10-20, completed 10-22) is open and overdue on 10-21; J6 is due 10-28
    assert report["indicators"]["in_progress_overdue"] == 1


def test_quarter_and_year_cover_the_month(db: Database) -> None:
    load_october(db)
    quarter = by_agency(db, "2026-Q4")
    # Q4 adds what came after October: H5 and T1 (received in November)
    assert quarter[HOME]["indicators"]["received"] == 5
    assert quarter["000.00.14.H29"]["indicators"]["received"] == 1
    assert quarter[JUSTICE]["indicators"]["completed_on_time"] == 2
    assert quarter[JUSTICE]["as_of"] == NOW.isoformat()  # the quarter has not ended
    year = by_agency(db, "2026")
    # the year adds September too: H3 for HOME; J3 and J4 for JUSTICE
    assert year[HOME]["indicators"]["received"] == 6
    assert year[JUSTICE]["indicators"]["received"] == 8
    assert year[JUSTICE]["period"]["label"] == "2026"


def test_other_types_and_unreadable_dossiers_are_rejected(db: Database) -> None:
    ev = dossier("X2", JUSTICE, "2026-10-05T08:00:00", "2026-10-10T17:00:00")
    with pytest.raises(Rejected):
        run(db, {**ev, "type": "vn.lgsp.directive.assigned.v1"})
    with pytest.raises(Rejected):
        run(db, {**ev, "data": {**ev["data"], "received_at": "yesterday"}})


def test_periods_parse() -> None:
    q = parse_period("2026-Q4")
    assert (q.kind, q.start, q.end, q.label) == (
        "quarter",
        date(2026, 10, 1),
        date(2026, 12, 31),
        "2026-Q4",
    )
    y = parse_period("2026")
    assert (y.kind, y.start, y.end) == ("year", date(2026, 1, 1), date(2026, 12, 31))
    m = parse_period("2028-02")
    assert (m.kind, m.end) == ("month", date(2028, 2, 29))
    assert parse_period("2026-Q1").end == date(2026, 3, 31)
    assert m.start_at.isoformat() == "2028-02-01T00:00:00+07:00"
    assert m.end_at.isoformat() == "2028-03-01T00:00:00+07:00"
    for bad in ("2026-13", "2026-Q5", "26-10", "2026-10-01", ""):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_due_periods() -> None:
    assert due_periods(date(2026, 11, 1)) == ["2026-10"]
    assert due_periods(date(2026, 11, 5)) == ["2026-10"]
    assert due_periods(date(2026, 11, 6)) == []
    assert due_periods(date(2026, 10, 3)) == ["2026-09", "2026-Q3"]
    assert due_periods(date(2027, 1, 2)) == ["2026-12", "2026-Q4", "2026"]
    assert due_periods(date(2027, 2, 1)) == ["2027-01"]


def test_the_connector_applies_dossier_events(db: Database) -> None:
    target = System(REPORTS, "Báo cáo", "reporting", None, None, (), (), RetryPolicy())
    connector = ReportingConnector(None)
    ev = dossier("X3", JUSTICE, "2026-10-05T08:00:00", "2026-10-10T17:00:00")

    async def scenario() -> None:
        with pytest.raises(Transient):
            await connector.deliver(b"", ev, target)
        connector.bind(db, REPORTS, "reports.outbox")
        receipt = await connector.deliver(b"", ev, target)
        assert (receipt.status_code, receipt.detail) == (200, "applied X3 #1")
        again = await connector.deliver(b"", ev, target)
        assert again.extra["result"] == "repeat"
        with pytest.raises(Rejected):
            await connector.deliver(b"", {**ev, "id": "z", "type": "vn.lgsp.demo.note.v1"}, target)

    asyncio.run(scenario())
    assert connector.reporting.source_id == REPORTS
