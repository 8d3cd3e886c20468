"""Reporting periods (month `2026-10`, quarter `2026-Q4`, year `2026`) and when they are due.

A period is a span of calendar days in Vietnam time (UTC+7, no daylight saving):
it starts at 00:00 ICT on its first day and ends at 00:00 ICT on the day after
its last, so an instant belongs to it when `start_at <= instant < end_at`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "ICT")
DUE_DAYS = 5  # a period's reports are (re)submitted on days 1..DUE_DAYS after it ends
_LABEL = re.compile(r"^(?P<year>\d{4})(?:-(?:(?P<month>\d{2})|Q(?P<quarter>[1-4])))?$")


@dataclass(frozen=True)
class Period:
    """A month, quarter or year: its kind, first and last day, and label."""

    kind: str
    start: date
    end: date  # the last day, inclusive
    label: str

    @property
    def start_at(self) -> datetime:
        """00:00 in Vietnam on the first day."""
        return datetime.combine(self.start, time(), VIETNAM)

    @property
    def end_at(self) -> datetime:
        """00:00 in Vietnam on the day after the last: the first instant outside."""
        return datetime.combine(self.end + timedelta(days=1), time(), VIETNAM)

    def as_json(self) -> dict[str, str]:
        """The period as `report.submitted.v1` writes it."""
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "label": self.label,
        }


def parse_period(label: str) -> Period:
    """`2026-10`, `2026-Q4` or `2026` -> its Period. Raises ValueError on anything else."""
    found = _LABEL.match(label.strip())
    if not found:
        raise ValueError(f"a period is YYYY-MM, YYYY-Qn or YYYY, not {label!r}")
    year = int(found["year"])
    if found["month"]:
        month = int(found["month"])
        if not 1 <= month <= 12:
            raise ValueError(f"no month {month} in {label!r}")
        return Period("month", date(year, month, 1), _last_day(year, month), f"{year}-{month:02}")
    if found["quarter"]:
        quarter = int(found["quarter"])
        first = 3 * quarter - 2
        start, end = date(year, first, 1), _last_day(year, first + 2)
        return Period("quarter", start, end, f"{year}-Q{quarter}")
    return Period("year", date(year, 1, 1), date(year, 12, 31), str(year))


def due_periods(today: date) -> list[str]:
    """The periods whose reports are due on `today` (a day in Vietnam).

    On days 1..5 of a month: the previous month; in the first month of a quarter
    also the previous quarter; in January also the previous year. Other days: none.
    Running `submit` on each of the five days sends a period once, then only
    corrections (a dossier event that arrived late).
    """
    if today.day > DUE_DAYS:
        return []
    last = today.replace(day=1) - timedelta(days=1)  # the previous month's last day
    due = [f"{last.year}-{last.month:02}"]
    if today.month in (1, 4, 7, 10):
        due.append(f"{last.year}-Q{(last.month - 1) // 3 + 1}")
    if today.month == 1:
        due.append(str(last.year))
    return due


def _last_day(year: int, month: int) -> date:
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return nxt - timedelta(days=1)
