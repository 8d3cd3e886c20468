"""Statuses derived from dates, the platform's settings, and deadline arithmetic.

A status is never stored: it is computed from the deadline, the completion day,
the revocation and today's date in Vietnam (UTC+7, no daylight saving), the same
way in Python (`status_of`) and in SQL (`status_sql`), so a deadline moved or a
day gone by shows at once.

    revoked               revoked, whatever else happened
    completed_on_time     completed on or before the deadline (or without one)
    completed_late        completed after the deadline
    in_progress_overdue   open and today is past the deadline
    in_progress_on_time   open, deadline today or later (or none)
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from hub.store.models import utcnow

VIETNAM = timezone(timedelta(hours=7), "ICT")
STATUSES = (
    "in_progress_on_time",
    "in_progress_overdue",
    "completed_on_time",
    "completed_late",
    "revoked",
)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Platform:
    """The task platform's settings, shared by apply, the work functions and reminders.

    Args:
        source_id: the platform's system id, the `source` of what it publishes.
        queue: the outbox queue the OutboxRelay publishes to (the hub feeds it to ingest).
        due_in_days: the "due in N days" reminder's N.
        now: the clock (tests pass a controlled one).
        consumer: its name in the inbox of processed message ids.
    """

    source_id: str
    queue: str = "tasks.outbox"
    due_in_days: int = 3
    now: Clock = utcnow
    consumer: str = "tasks"

    def today(self, at: datetime | None = None) -> date:
        return local_day(at or self.now())


def local_day(at: datetime) -> date:
    """The calendar day in Vietnam at instant `at`."""
    return at.astimezone(VIETNAM).date()


def status_of(deadline: date | None, completed_on: date | None, revoked: bool, today: date) -> str:
    """The status of a directive or task on `today`."""
    if revoked:
        return "revoked"
    if completed_on is not None:
        late = deadline is not None and completed_on > deadline
        return "completed_late" if late else "completed_on_time"
    if deadline is not None and today > deadline:
        return "in_progress_overdue"
    return "in_progress_on_time"


def status_sql(
    deadline: sa.ColumnElement[Any],
    completed_on: sa.ColumnElement[Any],
    revoked_at: sa.ColumnElement[Any],
    today: date,
) -> sa.ColumnElement[str]:
    """`status_of` as a SQL expression (dates compare as dates on both databases)."""
    return sa.case(
        (revoked_at.is_not(None), "revoked"),
        (
            completed_on.is_not(None),
            sa.case(
                (sa.and_(deadline.is_not(None), completed_on > deadline), "completed_late"),
                else_="completed_on_time",
            ),
        ),
        (
            sa.and_(deadline.is_not(None), deadline < sa.literal(today, sa.Date)),
            "in_progress_overdue",
        ),
        else_="in_progress_on_time",
    )


def final_deadline(deadline: Mapping[str, Any]) -> date | None:
    """The date after which a directive is overdue: its date, a recurring one's `until`."""
    if deadline["kind"] == "date":
        return date.fromisoformat(deadline["date"])
    if deadline["kind"] == "recurring" and "until" in deadline:
        return date.fromisoformat(deadline["until"])
    return None


def next_due(deadline: Mapping[str, Any], today: date) -> date | None:
    """The next day something is due, on or after `today` (a report of a recurring one)."""
    if deadline["kind"] != "recurring":
        end = final_deadline(deadline)
        return end if end is not None and end >= today else None
    until = final_deadline(deadline)
    for start in _periods(deadline["every"], today):
        due = _day_of(start, deadline["every"], int(deadline["day"]))
        if due >= today:
            return due if until is None or due <= until else None
    return None  # pragma: no cover - _periods always reaches a due day


def _periods(every: str, today: date) -> list[date]:
    """The first days of this period and the next one."""
    if every == "week":
        start = today - timedelta(days=today.weekday())
        return [start, start + timedelta(days=7)]
    if every == "month":
        start = today.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return [start, nxt]
    if every == "quarter":
        start = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
        nxt = (start + timedelta(days=95)).replace(day=1)
        return [start, nxt]
    start = today.replace(month=1, day=1)
    return [start, start.replace(year=start.year + 1)]


def _day_of(start: date, every: str, day: int) -> date:
    """The `day`-th day of the period starting at `start`, kept inside the period."""
    if every == "week":
        length = 7
    elif every == "month":
        length = calendar.monthrange(start.year, start.month)[1]
    elif every == "quarter":
        length = ((start + timedelta(days=95)).replace(day=1) - start).days
    else:
        length = 366 if calendar.isleap(start.year) else 365
    return start + timedelta(days=min(day, length) - 1)
