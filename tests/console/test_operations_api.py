"""The operator's actions through the API: dead letters replayed (one, by filter) or
discarded, search by destination and time, personal data masked for viewers, and
each action in the audit trail with who and when. Both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.sink import RecordingSink
from hub import audit
from hub.console import COOKIE
from hub.settings import Settings
from hub.store.db import Database
from tests.support import (
    DEST_A,
    DEST_B,
    KEYS,
    OPS_KEY,
    PASSWORDS,
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


def dead_letters(client: Any, **params: str) -> list[dict[str, Any]]:
    r = client.get("/api/v1/dead-letters", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_dead_letters_replayed_one_by_filter_and_discarded_each_audited(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    settings = Settings(
        config=write_config(tmp_path, sink.url), blob_dir=tmp_path / "blobs", **backend
    )
    sink.respond(400, body={"error": "malformed"})  # permanent: dead at once
    with ThreadedHub(settings) as hub, hub.client(OPS_KEY) as ops, hub.client(VIEWER_KEY) as viewer:
        sent = [note([DEST_A]) for _ in range(3)] + [note([DEST_B])]
        with hub.client(KEYS[SENDER]) as c:
            for event in sent:
                assert c.post("/api/v1/messages", json=event).status_code == 202
        wait_until(lambda: len(dead_letters(ops)) == 4)
        dead_a = dead_letters(ops, destination=DEST_A)
        assert len(dead_a) == 3 and all("HTTP 400" in d["reason"] for d in dead_a)
        assert len(dead_letters(ops, destination=DEST_B, type="vn.lgsp.demo.note.v1")) == 1
        assert dead_letters(ops, type="vn.lgsp.other.v1") == []

        # A viewer may look, not act; nothing changes.
        first, second, third = sorted(d["id"] for d in dead_a)
        assert viewer.post(f"/api/v1/dead-letters/{first}/replay").status_code == 403
        assert viewer.delete(f"/api/v1/dead-letters/{first}").status_code == 403
        refused = viewer.post("/api/v1/dead-letters/replay", json={"destination": DEST_A})
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert len(dead_letters(ops, destination=DEST_A)) == 3

        sink.respond(200)
        assert ops.delete(f"/api/v1/dead-letters/{first}").json()["status"] == "discarded"
        assert ops.post(f"/api/v1/dead-letters/{second}/replay").status_code == 200
        bad = ops.post("/api/v1/dead-letters/replay", json={"destinaton": DEST_A})
        assert bad.status_code == 422  # a misspelt filter replays nothing
        r = ops.post("/api/v1/dead-letters/replay", json={"destination": DEST_A})
        assert r.json() == {"matched": 1, "replayed": 1, "more": False}

        delivered = {sent[1]["id"], sent[2]["id"]}
        wait_until(lambda: delivered <= set(sink.delivered_ids()))
        assert sent[0]["id"] not in sink.delivered_ids()  # discarded stays undelivered
        assert [d["destination"] for d in dead_letters(ops)] == [DEST_B]

        entries = ops.get("/api/v1/audit", params={"actor": "operator:ops"}).json()["items"]
        actions = [(e["action"], e["target"]) for e in reversed(entries)]
        assert actions == [
            ("dead_letter.discard", f"delivery:{first}"),
            ("dead_letter.replay", f"delivery:{second}"),
            ("dead_letter.replay", f"delivery:{third}"),
            ("dead_letter.replay_matching", None),
        ]
        assert entries[0]["detail"] == {"filter": {"destination": DEST_A}, "replayed": 1}
        assert all(
            datetime.now(UTC) - datetime.fromisoformat(e["at"]) < timedelta(minutes=1)
            for e in entries
        )
        # The trail of the same actions (and of the hub's own acceptances, deliveries
        # and dead letters between them) is a chain that holds.
        db = Database(settings.sqlalchemy_url())
        try:
            checked = audit.verify(db.engine)
            total = len(list(audit.export(db.engine, None, None)))
        finally:
            db.close()
        assert (checked.count, checked.broken) == (total, None) and total > 4


def test_pause_resume_and_directory_edits_are_audited(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    config_path = write_config(tmp_path, sink.url)
    config = yaml.safe_load(config_path.read_text("utf-8"))
    config["operators"].append({"name": "root", "api_key": "key-admin", "role": "admin"})
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    settings = Settings(config=config_path, blob_dir=tmp_path / "blobs", **backend)
    with ThreadedHub(settings) as hub, hub.client(OPS_KEY) as ops, hub.client("key-admin") as admin:
        ops.post(f"/api/v1/systems/{DEST_A}/pause", json={"reason": "bảo trì"})
        ops.post(f"/api/v1/systems/{DEST_A}/resume")
        entry = {"name": "Sở Tài chính", "system_id": DEST_B}
        assert admin.put("/api/v1/directory/000.00.14.H29", json=entry).status_code == 200
        assert admin.delete("/api/v1/directory/000.00.14.H29").status_code == 204
        items = admin.get("/api/v1/audit").json()["items"]
        got = [(e["actor"], e["action"], e["target"]) for e in reversed(items)]
        assert got == [
            ("operator:ops", "system.pause", DEST_A),
            ("operator:ops", "system.resume", DEST_A),
            ("operator:root", "directory.put", "000.00.14.H29"),
            ("operator:root", "directory.delete", "000.00.14.H29"),
        ]
        assert items[-1]["detail"] == {"reason": "bảo trì"}
        # A refused action (already resumed) writes nothing.
        assert ops.post(f"/api/v1/systems/{DEST_A}/resume").status_code == 409
        assert len(admin.get("/api/v1/audit").json()["items"]) == 4
        with hub.client(KEYS[SENDER]) as system:
            assert system.get("/api/v1/audit").status_code == 403


def test_search_by_destination_and_time_window(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    settings = Settings(
        config=write_config(tmp_path, sink.url), blob_dir=tmp_path / "blobs", **backend
    )
    with ThreadedHub(settings) as hub, hub.client(OPS_KEY) as ops:
        with hub.client(KEYS[SENDER]) as c:
            to_a = note([DEST_A])
            to_b = note([DEST_B])
            for event in (to_a, to_b):
                assert c.post("/api/v1/messages", json=event).status_code == 202

        def ids(**params: str) -> set[str]:
            r = ops.get("/api/v1/messages", params=params)
            assert r.status_code == 200, r.text
            return {m["id"] for m in r.json()["items"]}

        assert ids(destination=DEST_A) == {to_a["id"]}
        assert ids(destination=DEST_B) == {to_b["id"]}
        now = datetime.now(UTC)
        assert ids(since=(now - timedelta(minutes=5)).isoformat()) == {to_a["id"], to_b["id"]}
        assert ids(since=(now + timedelta(minutes=1)).isoformat()) == set()
        assert ids(until=(now - timedelta(minutes=5)).isoformat()) == set()
        # Hostile or malformed filters are answered, not obeyed as SQL.
        assert ids(destination="x' OR '1'='1") == set()
        bad = ops.get("/api/v1/messages", params={"since": "yesterday"})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")


def test_a_viewer_reads_messages_with_personal_data_masked(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    config_path = write_config(tmp_path, sink.url)
    config = yaml.safe_load(config_path.read_text("utf-8"))
    schema = {
        "type": "object",
        "properties": {"applicant": {"type": "object"}, "contact": {"type": "object"}},
    }
    (tmp_path / "case.json").write_text(json.dumps(schema), "utf-8")
    config["types"] = [{"type": "vn.lgsp.test.case.v1", "schema": "case.json"}]
    for system in config["systems"]:
        system["may_send"] = system["may_send"] + ["vn.lgsp.test.*"] if system["may_send"] else []
        system["may_receive"] = [*system["may_receive"], "vn.lgsp.test.*"]
    config["routes"].append(
        {"name": "cases", "match": {"type": "vn.lgsp.test.case.v1"}, "to": [DEST_A]}
    )
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    settings = Settings(config=config_path, blob_dir=tmp_path / "blobs", **backend)
    data = {
        "applicant": {
            "kind": "citizen",
            "name": "Nguyễn Văn An",
            "id_number": "079201001234",
            "phone": "0901234567",
            "email": "an.nguyen@example.vn",
        },
        "contact": {"email": "lan@example.vn", "dia_chi": "12 Lê Lợi, Quận 1"},
    }
    event = {**note([]), "type": "vn.lgsp.test.case.v1", "data": data}
    with ThreadedHub(settings) as hub:
        with hub.client(KEYS[SENDER]) as c:
            assert c.post("/api/v1/messages", json=event).status_code == 202
        with hub.client(VIEWER_KEY) as viewer:
            seen = viewer.get(f"/api/v1/messages/{event['id']}").json()["envelope"]["data"]
        with hub.client(OPS_KEY) as ops:
            whole = ops.get(f"/api/v1/messages/{event['id']}").json()["envelope"]["data"]
    assert whole == data
    text = json.dumps(seen, ensure_ascii=False)
    for secret in ("079201001234", "0901234567", "an.nguyen", "Văn An", "lan@", "Lê Lợi"):
        assert secret not in text, secret
    assert seen["applicant"]["name"] == "Nguyễn V*** A"
    assert seen["applicant"]["id_number"] == "0792******34"
    assert seen["contact"]["email"] == "l***@example.vn"


def test_sign_in_is_throttled_after_repeated_wrong_passwords(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    settings = Settings(config=write_config(tmp_path, sink.url), **backend)
    with ThreadedHub(settings) as hub, hub.client() as browser:

        def sign_in(name: str, password: str) -> httpx.Response:
            form = {"name": name, "password": password, "next": "/console/overview"}
            return browser.post("/console/login", data=form, follow_redirects=False)

        for _ in range(5):
            assert sign_in("ops", "guess").status_code == 401
        blocked = sign_in("ops", PASSWORDS["ops"])  # the right password, too late
        assert blocked.status_code == 429
        assert 60 <= int(blocked.headers["retry-after"]) <= 15 * 60
        assert "15 phút" in blocked.text  # Vietnamese first
        assert COOKIE not in blocked.cookies
        # Other names are not held back by one name's guesser.
        assert sign_in("viewer", PASSWORDS["viewer"]).status_code == 303
        # The failures are in the audit trail, with where they came from.
        with hub.client(OPS_KEY) as ops:
            failed = ops.get("/api/v1/audit", params={"action": "console.sign_in_failed"})
        items = failed.json()["items"]
        assert [e["actor"] for e in items] == ["console:ops"] * 5
        assert all(e["detail"] == {"client": "127.0.0.1"} for e in items)
