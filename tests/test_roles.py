"""Scale-out roles: API and worker as separate processes over PostgreSQL and RabbitMQ."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from adapters.sink import RecordingSink
from hub.cli import app
from hub.settings import Settings
from tests.support import DEST_A, DEST_B, KEYS, SENDER, HubProcess, note, wait_until, write_config


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_api_and_worker_processes_share_the_work(
    tmp_path: Path, pg_url: str, amqp_url: str, unique: str
) -> None:
    from tests.conftest import delete_queues

    with RecordingSink() as sink:
        settings = Settings(
            config=write_config(tmp_path, sink.url),
            database_url=pg_url,
            broker_url=amqp_url,
            queue_prefix=unique,
        )
        api = HubProcess(settings, role="api", log=tmp_path / "api.log").start()
        workers = [
            HubProcess(settings, role="worker", log=tmp_path / f"w{i}.log").start()
            for i in range(2)
        ]
        try:
            ids = []
            with httpx.Client(headers={"authorization": f"Bearer {KEYS[SENDER]}"}) as c:
                for _ in range(100):
                    event = note([DEST_A, DEST_B])
                    assert c.post(f"{api.url}/api/v1/messages", json=event).status_code == 202
                    ids.append(event["id"])
            wait_until(
                lambda: set(ids) <= set(sink.delivered_ids()) and sink.stats()["delivered"] >= 200,
                timeout=60,
            )
            pairs = [(r.path, r.event_id) for r in sink.received if r.delivered]
            assert len(pairs) == len(set(pairs)) == 200  # each destination got each message once
        finally:
            for p in (api, *workers):
                p.stop()
            delete_queues(amqp_url, unique)


def test_split_roles_need_a_shared_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("HUB_BROKER_URL", "memory://")
    result = CliRunner().invoke(app, ["serve", "--role", "worker", "--no-demo"])
    assert result.exit_code != 0
    assert "shared broker" in str(result.exception) + result.output


def test_cli_reports_a_config_error_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("systems:\n  - id: nonsense\n    name: x\n    kind: http\n", encoding="utf-8")
    monkeypatch.setenv("HUB_CONFIG", str(bad))
    result = CliRunner().invoke(app, ["routes"])
    assert result.exit_code == 2
    assert f"{bad}:2" in result.output
