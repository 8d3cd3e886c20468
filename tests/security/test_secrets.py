"""Secrets never written out: not in logs, console pages, API answers or error bodies.

A real `hub serve` (debug JSON logs to a file) with keys in its config, a
destination whose endpoint carries a password and another whose query carries a
token (unreachable, so its failures are logged and recorded). Traffic, wrong
keys, a wrong console password, every console page and operations API answer;
then no secret appears anywhere the hub wrote or answered.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from adapters.sink import RecordingSink
from hub import logs
from hub.settings import Settings
from tests.support import (
    DEST_A,
    DEST_B,
    KEYS,
    OPS_KEY,
    PASSWORDS,
    SENDER,
    VIEWER_KEY,
    HubProcess,
    free_port,
    note,
    wait_until,
    write_config,
)

ENDPOINT_PASSWORD = "Pa55-in-the-endpoint"
QUERY_TOKEN = "tok-in-the-query-8841"
WRONG_PASSWORD = "hunter2-wrong-password"
WRONG_KEY = KEYS[SENDER] + "-but-wrong"


def test_no_secret_in_logs_pages_or_answers(tmp_path: Path) -> None:
    with RecordingSink() as sink:
        path = write_config(tmp_path, sink.url, delays=[0.2, 0.2, 0.2])
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        for system in config["systems"]:
            if system["id"] == DEST_A:
                system["endpoint"] = sink.url.replace("://", f"://hub:{ENDPOINT_PASSWORD}@") + "/a"
            if system["id"] == DEST_B:  # nobody listens there
                system["endpoint"] = f"http://127.0.0.1:{free_port()}/b?token={QUERY_TOKEN}"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        settings = Settings(config=path, database_url=f"sqlite:///{tmp_path / 'hub.db'}")
        log = tmp_path / "hub.log"
        env = {"HUB_LOG_LEVEL": "debug", "HUB_LOG_FORMAT": "json"}
        hub = HubProcess(settings, log=log, env=env).start()
        answers: list[httpx.Response] = []
        try:
            with httpx.Client(base_url=hub.url, timeout=10) as c:
                auth = {"authorization": f"Bearer {KEYS[SENDER]}"}
                events = [note([DEST_A, DEST_B]) for _ in range(5)]
                for event in events:
                    assert c.post("/api/v1/messages", json=event, headers=auth).status_code == 202
                wrong = {"authorization": f"Bearer {WRONG_KEY}"}
                answers.append(c.post("/api/v1/messages", json=events[0], headers=wrong))
                answers.append(c.get(f"/api/v1/messages/{events[0]['id']}", headers=wrong))
                assert answers[-1].status_code == 401
                wait_until(lambda: {e["id"] for e in events} <= set(sink.delivered_ids()))
                ops = {"authorization": f"Bearer {OPS_KEY}"}

                def dead() -> bool:
                    items = c.get("/api/v1/dead-letters", headers=ops).json()["items"]
                    return len(items) == len(events)

                wait_until(dead, timeout=30)  # DEST_B's failures recorded, then dead letters
                for url in (
                    f"/api/v1/messages/{events[0]['id']}",
                    "/api/v1/messages",
                    "/api/v1/dead-letters",
                    "/api/v1/systems",
                    "/api/v1/audit",
                    "/metrics",
                ):
                    answers.append(c.get(url, headers=ops))
                    assert answers[-1].status_code == 200, url
                answers.append(
                    c.get("/api/v1/systems", headers={"authorization": f"Bearer {VIEWER_KEY}"})
                )

                form = {"name": "ops", "password": WRONG_PASSWORD, "next": "/console/overview"}
                answers.append(c.post("/console/login", data=form))
                assert answers[-1].status_code == 401
                form["password"] = PASSWORDS["ops"]
                assert c.post("/console/login", data=form).status_code == 303
                for page in ("overview", "systems", "messages", "dead-letters", "routes", "audit"):
                    answers.append(c.get(f"/console/{page}"))
                    assert answers[-1].status_code == 200, page
                answers.append(c.get(f"/console/messages/{events[0]['id']}"))
                answers.append(c.get("/console/audit", params={"actor": "hub"}))
        finally:
            hub.stop()

    written = log.read_text(encoding="utf-8")
    assert "hub started" in written
    reasons = next(r for r in answers if r.request.url.path == "/api/v1/dead-letters").text
    assert "cannot connect" in reasons  # the failing endpoint's path was exercised
    secrets = [*KEYS.values(), OPS_KEY, VIEWER_KEY, ENDPOINT_PASSWORD, QUERY_TOKEN]
    secrets += [WRONG_PASSWORD, WRONG_KEY, *PASSWORDS.values()]
    secrets = [s for s in secrets if len(s) >= 6]  # "key-a" would match "key-a…" prose
    bodies = [r.text for r in answers] + [str(r.headers) for r in answers]
    for secret in secrets:
        assert secret not in written, f"{secret!r} in the log"
        for r, body in zip(answers * 2, bodies, strict=True):
            assert secret not in body, f"{secret!r} in {r.request.method} {r.request.url.path}"
    shown = next(r for r in answers if r.request.url.path == "/console/systems").text
    assert "hub:***@" in shown and "token=***" in shown  # endpoints shown, redacted


def test_the_log_filter_scrubs_registered_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    """What a log line or a traceback would carry (an exception quoting a URL with its
    password, say) is written with `***` instead."""
    logs.keep_secret("s3cr3t-broker-pw", "lgsp_0123456789abcdef.not-for-logs")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.SecretFilter())
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting to %s", "amqp://hub:s3cr3t-broker-pw@rabbit-1//")
        try:
            raise RuntimeError("refused key lgsp_0123456789abcdef.not-for-logs")
        except RuntimeError:
            logger.exception("delivery failed")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "amqp://hub:***@rabbit-1//" in err and "refused key ***" in err
    assert "s3cr3t" not in err and "not-for-logs" not in err
