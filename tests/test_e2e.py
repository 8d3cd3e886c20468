"""Messages through the whole hub: ingest, route, deliver, retry, dead-letter, replay.

Each test runs on the embedded default (SQLite + in-process transport) and on
PostgreSQL + RabbitMQ, with a real HTTP destination (adapters.sink) on loopback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.sink import RecordingSink
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


def make_hub(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink, **config: Any
) -> ThreadedHub:
    path = write_config(tmp_path, sink.url, **config)
    settings = Settings(
        config=path,
        blob_dir=tmp_path / "blobs",
        max_body_bytes=65536,
        retry_poll_seconds=0.1,
        **backend,
    )
    return ThreadedHub(settings)


def status_of(hub: ThreadedHub, message_id: str) -> dict[str, Any]:
    with hub.client(OPS_KEY) as c:
        r = c.get(f"/api/v1/messages/{message_id}")
        assert r.status_code == 200, r.text
        return r.json()


def send(hub: ThreadedHub, event: dict[str, Any], key: str = KEYS[SENDER]) -> Any:
    with hub.client(key) as c:
        return c.post("/api/v1/messages", json=event)


def test_happy_path_delivers_to_each_recipient(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        event = {**note([DEST_A, DEST_B]), "correlationid": "corr-1"}
        r = send(hub, event)
        assert r.status_code == 202, r.text
        assert r.json() == {"id": event["id"], "status": "accepted"}
        m = wait_until(lambda: (s := status_of(hub, event["id"]))["status"] == "delivered" and s)
        assert {d["destination"] for d in m["deliveries"]} == {DEST_A, DEST_B}
        assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in m["deliveries"])
        stages = [h["stage"] for h in m["trace"]]
        assert (
            stages[0] == "accepted"
            and stages.count("routed") == 2
            and stages.count("delivered") == 2
        )
        got = [x for x in sink.received if x.event_id == event["id"]]
        assert sorted(x.path for x in got) == ["/000-00-12-H29", "/000-00-13-H29"]
        assert all(
            x.headers["content-type"].startswith("application/cloudevents+json") for x in got
        )
        assert got[0].as_json()["body"]["data"]["title"] == "Giấy mời họp"
        with hub.client(KEYS[SENDER]) as c:
            listed = c.get("/api/v1/messages", params={"correlationid": "corr-1"}).json()
        assert [i["id"] for i in listed["items"]] == [event["id"]]


def test_same_id_twice_is_stored_and_delivered_once(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        event = note([DEST_A])
        first, second = send(hub, event), send(hub, event)
        assert first.status_code == second.status_code == 202
        assert first.json() == second.json()
        m = wait_until(lambda: (s := status_of(hub, event["id"]))["status"] == "delivered" and s)
        assert len(m["deliveries"]) == 1
        assert [h["stage"] for h in m["trace"]].count("accepted") == 1
        assert sink.ids().count(event["id"]) == 1


def test_unroutable_message_is_kept_and_listed(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        nowhere = note(["000.00.99.H29"])  # an organisation with no system
        assert send(hub, nowhere).status_code == 202
        m = wait_until(lambda: (s := status_of(hub, nowhere["id"]))["status"] == "unroutable" and s)
        assert m["deliveries"] == []
        assert {"refused", "unroutable"} <= {h["stage"] for h in m["trace"]}
        with hub.client(OPS_KEY) as c:
            listed = c.get("/api/v1/messages", params={"status": "unroutable"}).json()
        assert nowhere["id"] in [i["id"] for i in listed["items"]]


def test_destination_down_then_up_is_retried_and_delivered_once(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink, delays=[0.3, 0.5, 1, 1, 1, 1, 1, 1, 1, 1]) as hub:
        sink.down()
        event = note([DEST_A])
        assert send(hub, event).status_code == 202
        wait_until(lambda: status_of(hub, event["id"])["deliveries"][0]["attempts"] >= 2)
        d = status_of(hub, event["id"])["deliveries"][0]
        assert d["status"] in ("retrying", "pending")
        assert "cannot connect" in (d["last_error"] or "")
        sink.up()
        m = wait_until(lambda: (s := status_of(hub, event["id"]))["status"] == "delivered" and s)
        assert m["deliveries"][0]["attempts"] >= 3
        assert sink.delivered_ids().count(event["id"]) == 1
        assert "attempt_failed" in [h["stage"] for h in m["trace"]]


def test_retry_after_is_honoured(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink, delays=[0.1, 0.1]) as hub:
        sink.respond(429, retry_after=2, times=1)
        event = note([DEST_A])
        assert send(hub, event).status_code == 202
        m = wait_until(lambda: (s := status_of(hub, event["id"]))["status"] == "delivered" and s)
        tries = [r.at for r in sink.received if r.event_id == event["id"]]
        assert len(tries) == 2 and tries[1] - tries[0] >= 1.9
        assert "next try in 2 s" in " ".join(h["detail"] or "" for h in m["trace"])


def test_rejected_by_destination_is_dead_lettered_then_replayed(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        sink.respond(400, body={"error": "unknown field"})
        event = note([DEST_A])
        assert send(hub, event).status_code == 202
        m = wait_until(lambda: (s := status_of(hub, event["id"]))["status"] == "dead" and s)
        d = m["deliveries"][0]
        assert (
            d["attempts"] == 1
            and "HTTP 400" in d["last_error"]
            and "unknown field" in d["last_error"]
        )
        with hub.client(VIEWER_KEY) as viewer, hub.client(OPS_KEY) as ops:
            dead = viewer.get("/api/v1/dead-letters").json()["items"]
            assert [x["message_id"] for x in dead] == [event["id"]]
            assert viewer.post(f"/api/v1/dead-letters/{d['id']}/replay").status_code == 403
            sink.respond(200)
            r = ops.post(f"/api/v1/dead-letters/{d['id']}/replay")
            assert r.status_code == 200, r.text
        m = wait_until(lambda: (s := status_of(hub, event["id"]))["status"] == "delivered" and s)
        assert [h["stage"] for h in m["trace"]][-2:] == ["replayed", "delivered"]
        with hub.client(OPS_KEY) as ops:
            assert ops.get("/api/v1/dead-letters").json()["items"] == []
            assert ops.post(f"/api/v1/dead-letters/{d['id']}/replay").status_code == 404


def test_discard_keeps_the_message_marked(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        sink.respond(404)
        event = note([DEST_A])
        send(hub, event)
        m = wait_until(lambda: (s := status_of(hub, event["id"]))["status"] == "dead" and s)
        with hub.client(OPS_KEY) as ops:
            r = ops.delete(f"/api/v1/dead-letters/{m['deliveries'][0]['id']}")
            assert r.status_code == 200
        m = status_of(hub, event["id"])
        assert (
            m["deliveries"][0]["status"] == "discarded" and m["trace"][-1]["stage"] == "discarded"
        )


def test_partial_delivery_status(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        sink.script([400])  # the first delivery is refused, the second taken
        event = note([DEST_A, DEST_B])
        send(hub, event)
        m = wait_until(
            lambda: (s := status_of(hub, event["id"]))["status"] == "partially_delivered" and s
        )
        assert sorted(d["status"] for d in m["deliveries"]) == ["dead", "delivered"]
