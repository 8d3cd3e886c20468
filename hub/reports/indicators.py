"""The dossier-processing indicators of an agency for a period, from `report_dossiers`.

For agency A and period P (hub/reports/periods.py: from S = 00:00 ICT on its first
day to E = 00:00 ICT on the day after its last), computed at instant `now`, with
T = min(E, now), every dossier counted by its newest state applied:

    received             A's dossiers with S <= received_at < E, whatever their status
    completed_on_time    A's dossiers with S <= completed_at < E and completed_at <= appointment_at
    completed_late       A's dossiers with S <= completed_at < E and completed_at >  appointment_at
    in_progress_overdue  A's dossiers still open at T and past their appointment at T:
                         received_at < T, appointment_at < T,
                         completed_at is null or >= T, closed_at is null or >= T
    on_time_rate         completed_on_time / (completed_on_time + completed_late),
                         rounded to 4 decimals; null when that sum is 0

A dossier completed in P counts as completed whenever it was received. Being
asked to supplement (supplement_requested) does not stop its clock. A dossier
cancelled or rejected (closed_at) is never completed and stops being open then.
The agencies reported are those with at least one dossier received before E.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hub.reports.periods import Period, parse_period
from hub.reports.tables import report_dossiers

INDICATOR_SET = "dossier_processing"


def compute(
    engine: sa.Engine, period: str | Period, agency: str | None = None, *, now: datetime
) -> list[dict[str, Any]]:
    """The indicators per agency for `period`, by agency code.

    Returns one `{"agency": {"code", "name"?}, "period": {...}, "as_of": iso,
    "indicators": {...}}` per agency (only `agency` when given).
    """
    p = period if isinstance(period, Period) else parse_period(period)
    with engine.connect() as conn:
        return compute_in(conn, p, agency, now=now)


def compute_in(
    conn: sa.Connection, period: Period, agency: str | None = None, *, now: datetime
) -> list[dict[str, Any]]:
    """`compute` in the caller's transaction."""
    c = report_dossiers.c
    start, end = period.start_at, period.end_at
    at = min(end, now)
    completed_in = sa.and_(c.completed_at >= start, c.completed_at < end)
    open_overdue = sa.and_(
        c.received_at < at,
        c.appointment_at < at,
        sa.or_(c.completed_at.is_(None), c.completed_at >= at),
        sa.or_(c.closed_at.is_(None), c.closed_at >= at),
    )
    q = (
        sa.select(
            c.agency,
            sa.func.max(c.agency_name).label("name"),
            _count(sa.and_(c.received_at >= start, c.received_at < end)).label("received"),
            _count(sa.and_(completed_in, c.completed_at <= c.appointment_at)).label("on_time"),
            _count(sa.and_(completed_in, c.completed_at > c.appointment_at)).label("late"),
            _count(open_overdue).label("overdue"),
        )
        .where(c.received_at < end)
        .group_by(c.agency)
        .order_by(c.agency)
    )
    if agency is not None:
        q = q.where(c.agency == agency)
    return [
        {
            "agency": {"code": r.agency, "name": r.name} if r.name else {"code": r.agency},
            "period": period.as_json(),
            "as_of": at.isoformat(),
            "indicators": indicators(int(r.received), int(r.on_time), int(r.late), int(r.overdue)),
        }
        for r in conn.execute(q)
    ]


def indicators(received: int, on_time: int, late: int, overdue: int) -> dict[str, Any]:
    """The indicators object of `report.submitted.v1`."""
    completed = on_time + late
    return {
        "received": received,
        "completed_on_time": on_time,
        "completed_late": late,
        "in_progress_overdue": overdue,
        "on_time_rate": round(on_time / completed, 4) if completed else None,
    }


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)
