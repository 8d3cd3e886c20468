"""The simulated reporting system's records: the report versions it received.

No HTTP here: `Records` is what adapters/reporting_system/server.py serves. It is
not thread-safe on its own; the server holds its lock around every call.

A report is identified by `report_id` (indicator set, period, agency) and
`version`. A new (report_id, version) is stored (201); the same pair again is
answered 200 "already received" and counted as a repeat, not stored twice; a
version lower than the latest stored for that report is refused with 409.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REQUIRED = ("report_id", "version", "indicator_set", "period", "agency", "indicators")


class ReportError(Exception):
    """An error answer: HTTP status, a code and what is wrong."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"success": False, "code": self.code, "message": self.message}


@dataclass
class Stored:
    """One report version as received, with how many times it came again."""

    receipt_id: str
    report: dict[str, Any]
    message_id: str | None
    received_at: str
    repeats: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return str(self.report["report_id"]), int(self.report["version"])

    def answer(self, status: str) -> dict[str, Any]:
        report_id, version = self.key
        return {
            "success": True,
            "status": status,
            "receipt_id": self.receipt_id,
            "report_id": report_id,
            "version": version,
            "repeats": self.repeats,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "receipt_id": self.receipt_id,
            "message_id": self.message_id,
            "received_at": self.received_at,
            "repeats": self.repeats,
            "report": self.report,
        }


@dataclass
class Records:
    """Every report version received, in arrival order, and the counts of what happened."""

    stored: list[Stored] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    _by_key: dict[tuple[str, int], Stored] = field(default_factory=dict)
    _latest: dict[str, int] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def receive(self, report: Any, message_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """Take one report: (201, receipt), (200, the first receipt) for a repeat.

        Raises:
            ReportError: 400 malformed, 409 a version lower than the latest stored.
        """
        report_id, version = _check(report)
        found = self._by_key.get((report_id, version))
        if found is not None:
            found.repeats += 1
            self.counts["repeats"] += 1
            return 200, found.answer("already received")
        latest = self._latest.get(report_id, 0)
        if version < latest:
            self.counts["superseded"] += 1
            raise ReportError(
                409, "SUPERSEDED", f"{report_id}: version {version} < latest version {latest}"
            )
        receipt = Stored(
            f"BC-{next(self._numbers):06}", dict(report), message_id, datetime.now(UTC).isoformat()
        )
        self.stored.append(receipt)
        self._by_key[receipt.key] = receipt
        self._latest[report_id] = version
        self.counts["stored"] += 1
        return 201, receipt.answer("received")

    def latest(self, report_id: str) -> dict[str, Any] | None:
        """The highest version stored of a report, or None."""
        version = self._latest.get(report_id)
        return None if version is None else self._by_key[(report_id, version)].report

    def stats(self) -> dict[str, int]:
        return {
            "stored": self.counts["stored"],
            "repeats": self.counts["repeats"],
            "superseded": self.counts["superseded"],
            "refused": self.counts["refused"],
            "failed": self.counts["failed"],
        }


def _check(report: Any) -> tuple[str, int]:
    """The report's (report_id, version). Raises ReportError 400."""
    if not isinstance(report, Mapping):
        raise ReportError(400, "MALFORMED", "a report is a JSON object")
    missing = [k for k in REQUIRED if k not in report]
    if missing:
        raise ReportError(400, "MALFORMED", f"missing: {', '.join(missing)}")
    report_id, version = report["report_id"], report["version"]
    if not isinstance(report_id, str) or not report_id:
        raise ReportError(400, "MALFORMED", "report_id is a non-empty string")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReportError(400, "MALFORMED", "version is an integer >= 1")
    if not isinstance(report["indicators"], Mapping):
        raise ReportError(400, "MALFORMED", "indicators is an object")
    return report_id, version
