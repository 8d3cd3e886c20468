"""Pausing delivery to one destination (a system under maintenance): nothing lost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters.sink import RecordingSink
from hub.cli import app
from hub.settings import Settings
from tests.support import (
    DEST_A,
    DEST_B,
    KEYS,
    OPS_KEY,
    SENDER,
    VIEWER_KEY,
    ThreadedHub,
    note,
    wait_until,
    write_config,
)


@pytest.fixture
def sink() -> Any:
    with RecordingSink() as s:
        yield s


def test_a_paused_destination_gets_nothing_then_everything_once(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    settings = Settings(
        config=write_config(tmp_path, sink.url), blob_dir=tmp_path / "blobs", **backend
    )
    with ThreadedHub(settings) as hub, hub.client(OPS_KEY) as ops:
        with hub.client(VIEWER_KEY) as viewer:
            assert viewer.post(f"/api/v1/systems/{DEST_A}/pause", json={}).status_code == 403
        r = ops.post(f"/api/v1/systems/{DEST_A}/pause", json={"reason": "bảo trì hệ thống"})
        assert r.status_code == 200, r.text
        assert ops.post(f"/api/v1/systems/{DEST_A}/pause", json={}).status_code == 409
        listed = {s["id"]: s for s in ops.get("/api/v1/systems").json()["items"]}
        assert listed[DEST_A]["paused"]["paused_by"] == "operator:ops"
        assert listed[DEST_B]["paused"] is None

        ids = []
        with hub.client(KEYS[SENDER]) as c:
            for _ in range(20):
                event = note([DEST_A, DEST_B])
                assert c.post("/api/v1/messages", json=event).status_code == 202
                ids.append(event["id"])
        wait_until(lambda: len([r for r in sink.received if "/000-00-13-H29" in r.path]) == 20)
        time.sleep(1.5)  # DEST_B got all; DEST_A, paused, nothing
        assert not [r for r in sink.received if "/000-00-12-H29" in r.path]

        assert ops.post(f"/api/v1/systems/{DEST_A}/resume").status_code == 200
        wait_until(lambda: len([r for r in sink.received if "/000-00-12-H29" in r.path]) == 20)
        got = [r.event_id for r in sink.received if "/000-00-12-H29" in r.path]
        assert sorted(got) == sorted(ids)  # each once
        assert ops.post(f"/api/v1/systems/{DEST_A}/resume").status_code == 409


def test_pause_and_resume_from_the_command_line(
    tmp_path: Path, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    config = write_config(tmp_path, sink.url)
    settings = Settings(config=config, database_url=database, blob_dir=tmp_path / "blobs")
    monkeypatch.setenv("HUB_DATABASE_URL", database)
    monkeypatch.setenv("HUB_CONFIG", str(config))
    runner = CliRunner()
    with ThreadedHub(settings) as hub:
        out = runner.invoke(app, ["pause", DEST_A, "--reason", "maintenance"])
        assert out.exit_code == 0 and "paused" in out.output, out.output
        assert runner.invoke(app, ["pause", "nope:none"]).exit_code != 0
        time.sleep(1.5)  # the hub reads the pauses every second
        with hub.client(KEYS[SENDER]) as c:
            assert c.post("/api/v1/messages", json=note([DEST_A])).status_code == 202
        time.sleep(1.5)
        assert sink.count == 0
        out = runner.invoke(app, ["resume", DEST_A])
        assert out.exit_code == 0 and "resumed" in out.output, out.output
        wait_until(lambda: sink.count == 1)
