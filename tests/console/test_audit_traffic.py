"""The hub's own work in the audit trail: every acceptance, delivery and dead letter.

Messages are sent to one destination that takes them and one that refuses them
for good; the chain then names each message once as accepted (with the SHA-256
of the envelope as stored, so an inspector can check a message was not changed
afterwards), each delivery, each dead letter, and still verifies. Both backends.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import sqlalchemy as sa
import yaml

from adapters.sink import RecordingSink
from hub import audit
from hub.settings import Settings
from hub.store.db import Database
from hub.store.models import messages
from tests.support import DEST_A, DEST_B, KEYS, SENDER, ThreadedHub, note, wait_until, write_config


def test_acceptances_deliveries_and_dead_letters_are_chained(
    tmp_path: Path, backend: dict[str, str]
) -> None:
    with RecordingSink() as sink, RecordingSink() as refusing:
        refusing.respond(400, body={"error": "malformed"})  # DEST_B refuses for good
        path = write_config(tmp_path, sink.url)
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        for system in config["systems"]:
            if system["id"] == DEST_B:
                system["endpoint"] = f"{refusing.url}/snv"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        settings = Settings(config=path, **backend)
        sent = [note([DEST_A, DEST_B]) for _ in range(30)]
        with ThreadedHub(settings) as hub, hub.client(KEYS[SENDER]) as client:
            for event in sent:
                assert client.post("/api/v1/messages", json=event).status_code == 202
            again = client.post("/api/v1/messages", json=sent[0])  # a resend: stored once
            assert again.status_code in (200, 202)
            ids = {e["id"] for e in sent}
            wait_until(lambda: ids <= set(sink.delivered_ids()), timeout=30)

            def settled() -> bool:
                """Every delivery and every dead letter recorded (the sink sees a
                delivery before its outcome commits)."""
                rows = list(audit.export(hub.hub.db.engine, None, None))
                settle = [audit_detail(r) for r in rows if r["action"] == "delivery.settle"]
                done = [d for s in settle for d in s.get("delivered", []) + s.get("dead", [])]
                return len(done) == 2 * len(sent)

            wait_until(settled, timeout=30)

    db = Database(settings.sqlalchemy_url())  # read once the hub has stopped
    try:
        rows = list(audit.export(db.engine, None, None))
        with db.engine.connect() as conn:
            stored = dict(conn.execute(sa.select(messages.c.id, messages.c.envelope)).all())
        checked = audit.verify(db.engine)
    finally:
        db.close()
    assert checked.broken is None and checked.count == len(rows)

    accepted = [
        m for r in rows if r["action"] == "message.accept" for m in audit_detail(r)["messages"]
    ]
    assert sorted(m[0] for m in accepted) == sorted(ids)  # each once, the resend not again
    for message_id, source, type_, digest in accepted:
        assert (source, type_) == (SENDER, "vn.lgsp.demo.note.v1")
        assert digest == hashlib.sha256(stored[message_id].encode()).hexdigest()
    assert all(r["actor"] == "hub" for r in rows)

    settle = [audit_detail(r) for r in rows if r["action"] == "delivery.settle"]
    delivered = sorted(tuple(d) for s in settle for d in s.get("delivered", []))
    dead = [d for s in settle for d in s.get("dead", [])]
    assert delivered == sorted((i, DEST_A) for i in ids)
    assert sorted(d[0] for d in dead) == sorted(ids) and {d[1] for d in dead} == {DEST_B}
    assert all("HTTP 400" in d[2] for d in dead)


def audit_detail(row: dict[str, object]) -> dict[str, list[list[str]]]:
    detail = orjson.loads(str(row["detail"]))
    assert isinstance(detail, dict)
    return detail
