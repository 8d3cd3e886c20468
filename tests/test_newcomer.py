"""What a newcomer meets: the README's commands run as written, and the hub says what it
did (migrations applied, where it serves, dead letters in the server's log)."""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from adapters.sink import RecordingSink
from hub.cli import app, vietnam_time
from hub.delivery import DeadLetterWarnings
from hub.settings import Settings
from hub.store.messages import Outcome
from tests.support import (
    DEST_A,
    KEYS,
    OPS_KEY,
    REPO,
    SENDER,
    HubProcess,
    free_port,
    note,
    wait_until,
    write_config,
)

README = (REPO / "README.md").read_text("utf-8")


def readme_block(after: str) -> str:
    """The first ```sh block after the line containing `after`."""
    rest = README[README.index(after) :]
    return rest[rest.index("```sh") + 5 : rest.index("```", rest.index("```sh") + 5)]


def sample_message() -> dict[str, object]:
    """The sample message the README sends to the demo hub (its -d '...' JSON)."""
    block = readme_block("Send a message to the running demo hub")
    body = re.search(r"-d '(\{.*?\})'", block, re.S)
    assert body is not None
    return dict(orjson.loads(body.group(1)))


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_the_readmes_scale_out_commands_deliver_the_sample_message(
    tmp_path: Path, pg_url: str, amqp_url: str, unique: str
) -> None:
    """`hub serve --role api ... &` and `hub serve --role worker &` exactly as the README
    gives them (the port and the test's own database and queues aside): both keep
    running, the API answers, and the README's sample message reaches the demo's
    destination simulator."""
    from tests.conftest import delete_queues

    block = readme_block("## RabbitMQ and PostgreSQL")
    commands = [
        shlex.split(line.split("#")[0].rstrip(" &"))
        for line in block.splitlines()
        if line.startswith(".venv/bin/hub serve --role")
    ]
    assert [c[3] for c in commands] == ["api", "worker"], commands
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        "HUB_DATABASE_URL": pg_url,
        "HUB_BROKER_URL": amqp_url,
        "HUB_QUEUE_PREFIX": unique,
        "HUB_PORT": str(port),
        "HUB_LOG_LEVEL": "warning",
    }
    upgrade = subprocess.run(
        [sys.executable, "-m", "hub.cli", "db", "upgrade"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    procs = []
    try:
        for i, argv in enumerate(commands):
            log = open(tmp_path / f"{i}.log", "wb")  # noqa: SIM115 - the child owns it
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "hub.cli", *argv[1:]],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise AssertionError((tmp_path / f"{i}.log").read_text())
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=60, interval=0.2)
        message = sample_message()
        r = httpx.post(
            f"{url}/api/v1/messages",
            json=message,
            headers={"authorization": "Bearer demo-key-vp"},
        )
        assert r.status_code == 202, r.text

        def delivered() -> bool:
            got = httpx.get(
                f"{url}/api/v1/messages/{message['id']}",
                headers={"authorization": "Bearer demo-ops-key"},
            ).json()
            return got.get("status") == "delivered"

        wait_until(delivered, timeout=60, interval=0.3)
        assert all(p.poll() is None for p in procs)  # neither died (the demo's ports)
        sink = httpx.get("http://127.0.0.1:9101/_sink/received").json()
        assert message["id"] in {r.get("event_id") for r in sink}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=45)
            except subprocess.TimeoutExpired:
                p.kill()
        delete_queues(amqp_url, unique)


def test_db_upgrade_says_what_it_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    first = CliRunner().invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "database created: schema at revision" in first.output
    again = CliRunner().invoke(app, ["db", "upgrade"])
    assert "was up to date" in again.output and "nothing applied" in again.output


def test_the_cli_shows_vietnam_time_with_its_offset() -> None:
    assert vietnam_time("2026-12-03T20:26:14.282485+00:00") == "2026-12-04T03:26:14.282+07:00"
    assert vietnam_time("2026-12-03T20:26:14Z") == "2026-12-04T03:26:14.000+07:00"


def test_dead_letters_are_warned_at_most_once_per_destination_every_ten_seconds() -> None:
    now = [100.0]
    warnings = DeadLetterWarnings(every=10.0, clock=lambda: now[0])
    dead = Outcome(7, "m-1", DEST_A, "dead", "gave up after 4 tries: connection refused")
    assert warnings.dead(dead) is True
    now[0] += 3
    assert warnings.dead(dead) is False and warnings.dead(dead) is False
    now[0] += 8

    class Capture(logging.Handler):
        lines: ClassVar[list[str]] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    handler = Capture()
    logging.getLogger("hub.delivery").addHandler(handler)
    try:
        assert warnings.dead(dead) is True
    finally:
        logging.getLogger("hub.delivery").removeHandler(handler)
    [line] = handler.lines
    assert "m-1" in line and DEST_A in line and "and 2 more" in line and "replay" in line


def test_the_server_log_warns_when_deliveries_die(tmp_path: Path) -> None:
    """A destination refusing everything: the hub's own log (a real `hub serve`) names the
    dead letters, rate-limited (30 dead letters, not 30 lines)."""
    with RecordingSink() as sink:
        sink.respond(status=400, body={"error": "không hợp lệ"})
        settings = Settings(
            config=write_config(tmp_path, sink.url),
            database_url=f"sqlite:///{tmp_path / 'hub.db'}",
            broker_url="memory://",
        )
        log = tmp_path / "hub.log"
        hub = HubProcess(settings, log=log).start()
        try:
            ids = []
            with httpx.Client(headers={"authorization": f"Bearer {KEYS[SENDER]}"}) as c:
                for _ in range(30):
                    event = note([DEST_A])
                    assert c.post(f"{hub.url}/api/v1/messages", json=event).status_code == 202
                    ids.append(event["id"])

            def all_dead() -> bool:
                with httpx.Client(headers={"authorization": f"Bearer {OPS_KEY}"}) as c:
                    r = c.get(f"{hub.url}/api/v1/dead-letters", params={"limit": 100})
                    return len(r.json()["items"]) == 30

            wait_until(all_dead, timeout=30)
            lines = wait_until(
                lambda: [x for x in log.read_text("utf-8").splitlines() if "dead letter:" in x]
            )
        finally:
            hub.stop()
    assert 1 <= len(lines) < 30
    assert any(i in lines[0] for i in ids) and DEST_A in lines[0] and "400" in lines[0]


SAMPLES = REPO.parent / "shared" / "reference" / "edxml" / "vpcp-sdk-samples"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared (the reference samples) is absent")
def test_the_readmes_edxml_walk_through_shows_status_01(tmp_path: Path) -> None:
    """The README's edXML commands, run by bash against `hub serve` on the embedded
    default with the demo config: the document is filed by the recipient's e-office and
    the status package it answers, fetched as the README fetches it, says 01."""
    block = readme_block("Send an official document (edXML")
    port = free_port()
    block = block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    send, rest = block.split("curl -s http://127.0.0.1:9103/_eoffice/received")
    rest = "curl -s http://127.0.0.1:9103/_eoffice/received" + rest
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HUB_BLOB_DIR": str(tmp_path / "blobs"),
        "HUB_PORT": str(port),
        "HUB_LOG_LEVEL": "warning",
    }
    log = open(tmp_path / "hub.log", "wb")  # noqa: SIM115 - the child owns it
    hub = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready() -> bool:
            assert hub.poll() is None, (tmp_path / "hub.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=60, interval=0.2)

        def bash(script: str) -> str:
            done = subprocess.run(
                ["bash", "-c", "set -eo pipefail\n" + script],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        sent = orjson.loads(bash(send))
        assert sent["status"] == "OK" and sent["DocId"], sent

        def answered() -> bool:
            r = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/edoc/getReceivedEdocList",
                headers={"authorization": "Bearer demo-key-sample", "messagetype": "status"},
            )
            return bool(r.json().get("data"))

        wait_until(answered, timeout=30, interval=0.2)
        out = bash(rest)
        assert "<edXML:StatusCode>01</edXML:StatusCode>" in out, out
    finally:
        hub.terminate()
        hub.wait(timeout=45)
