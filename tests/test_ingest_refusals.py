"""Every refusal of the ingest API: the right status, a problem+json that names the
failing field, and nothing stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.sink import RecordingSink
from hub.settings import Settings
from hub.store.db import create_engine
from tests.support import (
    DEST_A,
    DEST_B,
    KEYS,
    OPS_KEY,
    SENDER,
    ThreadedHub,
    note,
    wait_until,
    write_config,
)


@pytest.fixture
def hub(tmp_path: Path, backend: dict[str, str]) -> Any:
    with RecordingSink() as sink:
        path = write_config(tmp_path, sink.url)
        settings = Settings(config=path, max_body_bytes=65536, **backend)
        with ThreadedHub(settings) as running:
            yield running


def stored(hub: ThreadedHub) -> tuple[int, int]:
    engine = create_engine(hub.settings.sqlalchemy_url())
    with engine.connect() as conn:
        counts = (
            conn.execute(sa.text("SELECT count(*) FROM messages")).scalar_one(),
            conn.execute(sa.text("SELECT count(*) FROM hops")).scalar_one(),
        )
    engine.dispose()
    return counts


def post(
    hub: ThreadedHub, body: Any, *, key: str | None = KEYS[SENDER], raw: bytes | None = None
) -> Any:
    with hub.client(key) as c:
        if raw is not None:
            return c.post(
                "/api/v1/messages",
                content=raw,
                headers={"content-type": "application/cloudevents+json"},
            )
        return c.post("/api/v1/messages", json=body)


def without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != name}


CASES = [
    # (name, how to send, status, pointer named in errors or None)
    ("no key", lambda h: post(h, note([DEST_A]), key=None), 401, None),
    ("unknown key", lambda h: post(h, note([DEST_A]), key="nope"), 401, None),
    ("operator key cannot send", lambda h: post(h, note([DEST_A]), key=OPS_KEY), 403, None),
    ("source is another system", lambda h: post(h, note([DEST_A], source=DEST_B)), 403, "/source"),
    (
        "type not granted",
        lambda h: post(
            h, {**note([DEST_A], source=DEST_B), "type": "vn.lgsp.demo.note.v1"}, key=KEYS[DEST_B]
        ),
        403,
        "/type",
    ),
    ("not JSON", lambda h: post(h, None, raw=b"{not json"), 422, ""),
    ("not an object", lambda h: post(h, [1, 2]), 422, ""),
    ("missing id", lambda h: post(h, without(note([DEST_A]), "id")), 422, "/id"),
    (
        "wrong specversion",
        lambda h: post(h, {**note([DEST_A]), "specversion": "0.3"}),
        422,
        "/specversion",
    ),
    ("bad time", lambda h: post(h, {**note([DEST_A]), "time": "yesterday"}), 422, "/time"),
    (
        "unknown type",
        lambda h: post(h, {**note([DEST_A]), "type": "vn.lgsp.demo.nothing.v1"}),
        422,
        "/type",
    ),
    (
        "payload misses a field",
        lambda h: post(h, {**note([DEST_A]), "data": {"body": "x"}}),
        422,
        "/data/title",
    ),
    (
        "payload field of the wrong type",
        lambda h: post(h, note([DEST_A], priority="high")),
        422,
        "/data/priority",
    ),
    ("over the size limit", lambda h: post(h, note([DEST_A], body="x" * 70000)), 413, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_refusal_is_a_problem_and_stores_nothing(hub: ThreadedHub, case: Any) -> None:
    _, send, status, pointer = case
    before = stored(hub)
    r = send(hub)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert problem["type"].startswith("https://")
    if pointer is not None:
        assert pointer in [e["pointer"] for e in problem["errors"]], problem
    assert stored(hub) == before


def test_ids_are_unique_per_source_not_across_sources(hub: ThreadedHub) -> None:
    """CloudEvents: an event is its (source, id). Another system's event with the same
    id is a different event (before: 409, and a poller behind it skipped it)."""
    first = note([DEST_A])
    assert post(hub, first).status_code == 202
    before = stored(hub)
    same_id = note([DEST_B], id=first["id"], source=DEST_A)
    r = post(hub, same_id, key=KEYS[DEST_A])
    assert r.status_code == 202, r.text
    assert r.json() == {"id": first["id"], "status": "accepted"}
    assert stored(hub)[0] == before[0] + 1
    assert post(hub, same_id, key=KEYS[DEST_A]).status_code == 202  # a repeat: stored once
    assert stored(hub)[0] == before[0] + 1

    with hub.client(KEYS[SENDER]) as own, hub.client(KEYS[DEST_A]) as other:
        mine = own.get(f"/api/v1/messages/{first['id']}").json()
        theirs = other.get(f"/api/v1/messages/{first['id']}").json()
    assert (mine["source"], mine["event_id"]) == (SENDER, first["id"])
    assert (theirs["source"], theirs["event_id"]) == (DEST_A, first["id"])
    assert mine["envelope"]["data"]["to"] == [DEST_A]
    assert theirs["envelope"]["data"]["to"] == [DEST_B]
    with hub.client(OPS_KEY) as ops:
        wait_until(
            lambda: ops.get(f"/api/v1/messages/{theirs['id']}").json()["status"] == "delivered"
        )
        # An operator naming only the id is not handed one of the two: 409 naming both.
        r = ops.get(f"/api/v1/messages/{first['id']}")
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert SENDER in r.json()["detail"] and DEST_A in r.json()["detail"]
        assert r.json()["errors"][0]["pointer"] == "/source"
        by_source = ops.get(f"/api/v1/messages/{first['id']}", params={"source": DEST_A})
        assert by_source.json()["id"] == theirs["id"]
        [delivery] = by_source.json()["deliveries"]
        assert delivery["destination"] == DEST_B


def test_same_id_from_the_same_source_with_other_content_is_a_conflict(hub: ThreadedHub) -> None:
    """Before: 202 and the second content silently dropped."""
    event = note([DEST_A])
    assert post(hub, event).status_code == 202
    with hub.client(OPS_KEY) as ops:
        wait_until(
            lambda: ops.get(f"/api/v1/messages/{event['id']}").json()["status"] == "delivered"
        )
    before = stored(hub)
    # The same event again, with trace context and time of its own: a repeat, 202.
    again = event | {"time": "2026-12-01T08:00:00+07:00"}
    again["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert post(hub, again).status_code == 202
    changed = note([DEST_A], id=event["id"], body="Nội dung khác")
    r = post(hub, changed)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "other content" in r.json()["detail"]
    assert r.json()["errors"][0]["pointer"] == "/id"
    assert stored(hub) == before
    with hub.client(KEYS[SENDER]) as own:
        kept = own.get(f"/api/v1/messages/{event['id']}").json()["envelope"]
    assert kept["data"] == event["data"]


def test_bad_query_parameter_is_a_problem(hub: ThreadedHub) -> None:
    with hub.client(KEYS[SENDER]) as c:
        r = c.get("/api/v1/messages", params={"status": "bogus"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["pointer"] == "/query/status"


def test_a_system_sees_only_its_own_messages(hub: ThreadedHub) -> None:
    event = note([DEST_A])
    assert post(hub, event).status_code == 202
    with hub.client(KEYS[DEST_A]) as other, hub.client(KEYS[SENDER]) as own:
        assert other.get(f"/api/v1/messages/{event['id']}").status_code == 404
        assert own.get(f"/api/v1/messages/{event['id']}").status_code == 200
        assert other.get("/api/v1/messages").json()["items"] == []
        assert other.get("/api/v1/dead-letters").status_code == 403


def test_store_unreachable_is_a_503_problem(hub: ThreadedHub) -> None:
    """With the store away (a restart, a failover) nothing can be accepted: 503, retry later."""
    working = hub.hub.db.engine
    hub.hub.db.engine = sa.create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    try:
        r = post(hub, note([DEST_A]))
    finally:
        hub.hub.db.engine = working
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "5"
    assert post(hub, note([DEST_A])).status_code == 202
