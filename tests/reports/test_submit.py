"""Reports submitted through the outbox: once, then only corrections, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.config import load_config
from hub.reports import SUBMITTED, submit, submit_due
from hub.reports.cli import send_reports
from hub.reports.tables import reports_sent
from hub.settings import Settings
from hub.store.db import Database
from tests.reports.helpers import (
    EXPECTED,
    HOME,
    JUSTICE,
    NOW,
    REPORTS,
    check,
    dossier,
    october,
    published,
    reporting,
    run,
)

J_REPORT = f"dossier_processing:2026-10:{JUSTICE}"
H_REPORT = f"dossier_processing:2026-10:{HOME}"


@pytest.fixture
def loaded(db: Database) -> Database:
    for ev in october():
        run(db, ev)
    return db


def sent(db: Database) -> list[tuple[str, int]]:
    c = reports_sent.c
    with db.engine.connect() as conn:
        q = sa.select(c.report_id, c.version).order_by(c.report_id, c.version)
        return [tuple(r) for r in conn.execute(q)]


def test_submit_queues_one_valid_report_per_agency(loaded: Database) -> None:
    results = submit(loaded.engine, reporting(), "2026-10", now=NOW)
    assert [(r["report_id"], r["version"], r["queued"]) for r in results] == [
        (J_REPORT, 1, True),
        (H_REPORT, 1, True),
    ]
    events = published(loaded)
    assert [e["data"]["report_id"] for e in events] == [J_REPORT, H_REPORT]
    for ev in events:
        check(ev)  # envelope and report.submitted.v1 schema
        assert (ev["type"], ev["source"]) == (SUBMITTED, REPORTS)
        assert "corrects" not in ev["data"]
    j = events[0]["data"]
    assert j["indicators"] == EXPECTED[JUSTICE]
    assert j["agency"] == {"code": JUSTICE, "name": "Sở Tư pháp"}
    assert j["period"] == {"kind": "month", "start": "2026-10-01", "end": "2026-10-31",
                           "label": "2026-10"}  # fmt: skip
    assert j["computed_at"] == "2026-11-03T09:00:00+07:00"
    assert results[0]["message_id"] == events[0]["id"]


def test_submitting_again_sends_nothing(loaded: Database) -> None:
    submit(loaded.engine, reporting(), "2026-10", now=NOW)
    again = submit(loaded.engine, reporting(), "2026-10", now=NOW.replace(day=4))
    assert [(r["version"], r["queued"], r["message_id"]) for r in again] == [
        (1, False, None),
        (1, False, None),
    ]
    assert len(published(loaded)) == 2
    assert sent(loaded) == [(J_REPORT, 1), (H_REPORT, 1)]


def test_a_late_event_sends_a_correction(loaded: Database) -> None:
    submit(loaded.engine, reporting(), "2026-10", now=NOW)
    # J6 was completed on 10-27 (due 10-28); the one-stop system tells us on 11-04
    late = dossier(
        "J6", JUSTICE, "2026-10-20T08:00:00", "2026-10-28T17:00:00",
        status="completed", sequence=3, completed="2026-10-27T10:00:00",
    )  # fmt: skip
    run(loaded, late)
    results = submit(loaded.engine, reporting(), "2026-10", JUSTICE, now=NOW.replace(day=4))
    assert [(r["report_id"], r["version"], r["queued"], r["corrects"]) for r in results] == [
        (J_REPORT, 2, True, 1)
    ]
    correction = published(loaded)[-1]
    check(correction)
    assert (correction["data"]["version"], correction["data"]["corrects"]) == (2, 1)
    assert correction["data"]["indicators"] == EXPECTED[JUSTICE] | {
        "completed_on_time": 3,
        "in_progress_overdue": 1,
        "on_time_rate": 0.6,
    }
    # the daily run on 11-05 finds nothing new for October
    assert [
        r["queued"] for r in submit_due(loaded.engine, reporting(), now=NOW.replace(day=5))
    ] == [
        False,
        False,
    ]
    assert sent(loaded) == [(J_REPORT, 1), (J_REPORT, 2), (H_REPORT, 1)]
    assert len({e["id"] for e in published(loaded)}) == 3


def test_send_reports_from_settings(
    loaded: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f"""
systems:
  - id: "{REPORTS}"
    name: "Báo cáo"
    kind: reporting
    may_receive: ["vn.lgsp.dossier.*"]
    may_send: ["{SUBMITTED}"]
routes: []
""",
        "utf-8",
    )
    config = load_config(config_file, kinds={"reporting", "http"})
    url = loaded.url.replace("postgresql+psycopg://", "postgresql://")
    settings = Settings(database_url=url, config=config_file, queue_prefix="t")
    results = send_reports(settings, "2026-10", HOME, config=config, now=NOW)
    assert [(r["report_id"], r["version"], r["queued"]) for r in results] == [(H_REPORT, 1, True)]
    assert f"{H_REPORT}: queued v1" in capsys.readouterr().out
    with loaded.engine.connect() as conn:
        queues = conn.execute(sa.text("SELECT queue FROM outbox")).scalars().all()
    assert queues == ["t.reports.outbox"]
