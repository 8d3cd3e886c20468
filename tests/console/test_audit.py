"""The audit trail is a hash chain: `hub audit verify` names the first entry edited,
deleted or moved in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub import audit
from hub.cli import app
from hub.store.db import Database
from hub.store.models import audit as audit_table


@pytest.fixture
def trail(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.upgrade()
    for i in range(1, 7):
        audit.record(db.engine, "operator:ops", "dead_letter.replay", f"delivery:{i}", {"n": i})
    yield db
    db.close()


def cli_verify(database_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    out = CliRunner().invoke(app, ["audit", "verify"])
    return out.exit_code, out.output


def test_an_untouched_trail_holds(
    trail: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = audit.verify(trail.engine)
    assert checked.count == 6 and checked.broken is None
    code, output = cli_verify(database_url, monkeypatch)
    assert code == 0 and "holds: 6 entries" in output and checked.head in output


def test_an_edited_entry_is_named(
    trail: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trail.engine.begin() as conn:
        conn.execute(
            audit_table.update().where(audit_table.c.seq == 4).values(actor="operator:someone")
        )
    assert audit.verify(trail.engine).broken == audit.Break(4, "altered")
    code, output = cli_verify(database_url, monkeypatch)
    assert code != 0 and "broken at entry 4: altered" in output


def test_an_edit_that_recomputes_the_entrys_own_hash_is_named(trail: Database) -> None:
    # Someone who knows the rule rewrites entry 3 with a fresh hash of its own: entry 4
    # still names the old one.
    with trail.engine.begin() as conn:
        row = conn.execute(sa.select(audit_table).where(audit_table.c.seq == 3)).one()
        forged = audit._digest(3, row.at, row.actor, "system.pause", None, "{}", row.prev_hash)
        conn.execute(
            audit_table.update()
            .where(audit_table.c.seq == 3)
            .values(action="system.pause", target=None, detail="{}", hash=forged)
        )
    assert audit.verify(trail.engine).broken == audit.Break(3, "altered")


def test_a_deleted_entry_is_named(
    trail: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trail.engine.begin() as conn:
        conn.execute(audit_table.delete().where(audit_table.c.seq == 2))
    checked = audit.verify(trail.engine)
    assert checked.broken == audit.Break(2, "missing") and checked.count == 1
    code, output = cli_verify(database_url, monkeypatch)
    assert code != 0 and "broken at entry 2: missing" in output


def test_reordered_entries_are_named(
    trail: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Swap the places of entries 3 and 5 (their content moves, hashes with it).
    with trail.engine.begin() as conn:
        conn.execute(audit_table.update().where(audit_table.c.seq == 3).values(seq=-3))
        conn.execute(audit_table.update().where(audit_table.c.seq == 5).values(seq=3))
        conn.execute(audit_table.update().where(audit_table.c.seq == -3).values(seq=5))
    assert audit.verify(trail.engine).broken == audit.Break(3, "reordered", moved_from=5)
    code, output = cli_verify(database_url, monkeypatch)
    assert code != 0 and "broken at entry 3: reordered (written as entry 5)" in output


def test_export_gives_a_window_an_inspector_can_check(
    trail: Database, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    out = CliRunner().invoke(app, ["audit", "export", "--from", "2000-01-01T00:00:00"])
    lines = [json.loads(line) for line in out.output.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5, 6]
    for before, entry in itertools.pairwise(lines):
        assert entry["prev_hash"] == before["hash"]
    out = CliRunner().invoke(app, ["audit", "export", "--to", "2000-01-01T00:00:00"])
    assert out.exit_code == 0 and out.output == ""
    assert CliRunner().invoke(app, ["audit", "export", "--from", "soon"]).exit_code != 0
