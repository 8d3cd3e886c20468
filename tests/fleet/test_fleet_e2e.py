"""End to end through a fleet: 2 API and 3 worker processes over PostgreSQL and RabbitMQ.

What a deployment of several processes behind a proxy must keep: a message sent
to either API reaches each destination once, its status and trace read the same
from the other API, one key's messages arrive in order whichever worker takes
them, and a dead letter is replayed through either API.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from adapters.sink import RecordingSink
from tests.fleet.conftest import StartFleet, client, delivered_by, fleet_config, message
from tests.support import DEST_A, DEST_B, KEYS, SENDER, note, wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
PATHS = {DEST_A: "/000-00-12-H29", DEST_B: "/000-00-13-H29"}


def test_messages_to_either_api_reach_each_destination_once(
    tmp_path: Path, sink: RecordingSink, start_fleet: StartFleet
) -> None:
    fleet = start_fleet(fleet_config(tmp_path, sink.url))
    apis = fleet.api_urls
    sent: list[tuple[str, int]] = []  # (id, the API that accepted it)
    senders = [client(url, KEYS[SENDER]) for url in apis]
    for n in range(40):
        event = note([DEST_A, DEST_B])
        r = senders[n % 2].post("/api/v1/messages", json=event)
        assert r.status_code == 202, r.text
        sent.append((event["id"], n % 2))
        if n < 4:  # a client unsure of its answer sends again, to the other API
            again = senders[1 - n % 2].post("/api/v1/messages", json=event)
            assert (again.status_code, again.json()) == (202, r.json())  # stored once
    for c in senders:
        c.close()

    expected = {(PATHS[d], i) for i, _ in sent for d in (DEST_A, DEST_B)}
    wait_until(lambda: expected <= {(r.path, r.event_id) for r in sink.received}, timeout=60)
    keys = Counter((r.path, r.headers.get("idempotency-key")) for r in sink.received)
    assert set(keys) == expected and set(keys.values()) == {1}  # each once, by its key
    for message_id, accepted_by in sent:
        m = wait_until(
            lambda i=message_id, a=accepted_by: (  # type: ignore[misc]
                (s := message(apis[1 - a], i))["status"] == "delivered" and s
            ),
            timeout=30,
        )
        assert sorted((d["destination"], d["attempts"]) for d in m["deliveries"]) == [
            (DEST_A, 1),
            (DEST_B, 1),
        ]
        stages = Counter(h["stage"] for h in m["trace"])
        assert (stages["accepted"], stages["routed"], stages["delivered"]) == (1, 2, 2)


def test_one_keys_messages_arrive_in_order_across_three_workers(
    tmp_path: Path, sink: RecordingSink, start_fleet: StartFleet
) -> None:
    ordered = {"ordered_by": "/tags/0", "retry": {"delays": [0.2, 0.3] + [0.5] * 8}}
    fleet = start_fleet(fleet_config(tmp_path, sink.url, systems={DEST_A: ordered}))
    sink.script([503] * 12)  # the first tries fail: later messages must not overtake them
    sent: dict[str, list[str]] = defaultdict(list)
    senders = [client(url, KEYS[SENDER]) for url in fleet.api_urls]
    for n in range(8):
        for k, key in enumerate(("HS-001", "HS-002", "HS-003", "HS-004")):
            event = note([DEST_A], title=f"{key} #{n}", tags=[key])
            assert senders[(n + k) % 2].post("/api/v1/messages", json=event).status_code == 202
            sent[key].append(event["id"])
    for c in senders:
        c.close()

    wait_until(lambda: len(sink.unique_ids()) == 32, timeout=90)
    arrived: dict[str, list[str | None]] = defaultdict(list)
    for r in sink.received:
        key = orjson.loads(r.body)["data"]["tags"][0]
        if r.delivered and r.event_id not in arrived[key]:
            arrived[key].append(r.event_id)
    assert arrived == sent
    assert sink.duplicates() == 0
    assert sum(not r.delivered for r in sink.received) == 12  # the failures did happen
    shares = delivered_by(fleet)
    assert all(shares.values()), f"every worker took part: {shares}"


def test_dead_letters_replayed_through_either_api(
    tmp_path: Path, sink: RecordingSink, start_fleet: StartFleet
) -> None:
    with RecordingSink() as failing:
        failing.respond(503)
        down = {"endpoint": f"{failing.url}/down", "retry": {"delays": [0.2, 0.2]}}
        fleet = start_fleet(fleet_config(tmp_path, sink.url, systems={DEST_B: down}))
        apis = fleet.api_urls
        events = [note([DEST_A, DEST_B]) for _ in apis]
        for url, event in zip(apis, events, strict=True):
            with client(url, KEYS[SENDER]) as c:
                assert c.post("/api/v1/messages", json=event).status_code == 202

        # Each message: delivered to DEST_A, tried 3 times at DEST_B, then dead.
        for n, event in enumerate(events):
            m = wait_until(
                lambda i=event["id"], url=apis[1 - n]: (  # type: ignore[misc]
                    (s := message(url, i))["status"] == "partially_delivered"
                    and {d["status"] for d in s["deliveries"]} == {"delivered", "dead"}
                    and s
                ),
                timeout=30,
            )
            dead = next(d for d in m["deliveries"] if d["destination"] == DEST_B)
            assert dead["status"] == "dead" and dead["attempts"] == 3
            assert "HTTP 503" in dead["last_error"]
            assert [h["stage"] for h in m["trace"]].count("attempt_failed") == 2
        assert Counter(failing.ids()) == {e["id"]: 3 for e in events}
        with client(apis[1]) as ops:
            listed = ops.get("/api/v1/dead-letters", params={"destination": DEST_B}).json()
        dead_ids = {d["message_id"]: d["id"] for d in listed["items"]}
        assert set(dead_ids) == {e["id"] for e in events}

        failing.respond(200)
        for url, event in zip(apis, events, strict=True):  # one replayed through each API
            with client(url) as ops:
                r = ops.post(f"/api/v1/dead-letters/{dead_ids[event['id']]}/replay")
                assert r.status_code == 200, r.text
        for n, event in enumerate(events):
            m = wait_until(
                lambda i=event["id"], url=apis[1 - n]: (  # type: ignore[misc]
                    (s := message(url, i))["status"] == "delivered" and s
                ),
                timeout=30,
            )
            assert [h["stage"] for h in m["trace"]][-2:] == ["replayed", "delivered"]
        assert Counter(failing.delivered_ids()) == {e["id"]: 1 for e in events}
        assert Counter(sink.delivered_ids()) == {e["id"]: 1 for e in events}
        with client(apis[0]) as ops:
            assert ops.get("/api/v1/dead-letters").json()["items"] == []
