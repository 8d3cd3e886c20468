"""Delivery in order per key (`ordered_by`), different keys in parallel, through failures.

A destination that must see one key's messages in the order they happened (a
directive's progress reports, a dossier's status changes) names the key with
`ordered_by: <JSON pointer into data>`. Runs on both backends.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from adapters.sink import RecordingSink
from hub.settings import Settings
from tests.support import KEYS, OPS_KEY, SENDER, ThreadedHub, note, wait_until

DEST = "000.00.12.H29:qlvb"


@pytest.fixture
def sink() -> Any:
    with RecordingSink() as s:
        yield s


def config(tmp_path: Path, sink: RecordingSink) -> Path:
    systems = [
        {
            "id": SENDER,
            "name": "Văn phòng",
            "kind": "http",
            "endpoint": f"{sink.url}/sender",
            "api_key": KEYS[SENDER],
            "may_send": ["vn.lgsp.demo.*"],
        },
        {
            "id": DEST,
            "name": "Cổng dịch vụ công",
            "kind": "http",
            "endpoint": f"{sink.url}/portal",
            "may_receive": ["vn.lgsp.demo.*"],
            "retry": {"delays": [0.2, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]},
            "concurrency": 16,
            "ordered_by": "/tags/0",
        },
    ]
    doc = {
        "systems": systems,
        "routes": [{"name": "all", "match": {"type": "vn.lgsp.demo.note.v1"}, "to": [DEST]}],
        "operators": [{"name": "ops", "api_key": OPS_KEY, "role": "operator"}],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_one_keys_messages_arrive_in_order_through_failures(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    settings = Settings(
        config=config(tmp_path, sink),
        blob_dir=tmp_path / "blobs",
        retry_poll_seconds=0.1,
        **backend,
    )
    # The first tries fail (503): every key's first message is retried, and the
    # messages behind it must not overtake it.
    sink.script([503] * 12)
    sent: dict[str, list[str]] = defaultdict(list)
    with ThreadedHub(settings) as hub, hub.client(KEYS[SENDER]) as c:
        for n in range(10):
            for key in ("HS-001", "HS-002", "HS-003"):
                event = note([DEST], title=f"{key} #{n}", tags=[key])
                assert c.post("/api/v1/messages", json=event).status_code == 202
                sent[key].append(event["id"])
        wait_until(lambda: len({r.event_id for r in sink.received if r.delivered}) == 30, 60)

    arrived: dict[str, list[str]] = defaultdict(list)
    for r in sink.received:
        if r.delivered:
            key = orjson.loads(r.body)["data"]["tags"][0]
            if r.event_id not in arrived[key]:
                arrived[key].append(r.event_id)
    assert arrived == sent
    assert any(not r.delivered for r in sink.received)  # the failures did happen


def test_429_slows_the_whole_destination_without_loss_or_reordering(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    settings = Settings(
        config=config(tmp_path, sink),
        blob_dir=tmp_path / "blobs",
        retry_poll_seconds=0.1,
        **backend,
    )
    sent: dict[str, list[str]] = defaultdict(list)
    with ThreadedHub(settings) as hub, hub.client(KEYS[SENDER]) as c:
        first = note([DEST], title="first", tags=["HS-000"])
        sink.respond(429, retry_after=2, times=1)
        assert c.post("/api/v1/messages", json=first).status_code == 202
        sent["HS-000"].append(first["id"])
        wait_until(lambda: sink.count == 1)
        throttled_at = sink.received[0].at
        with hub.client(OPS_KEY) as ops:  # the hub has taken the 429 in
            wait_until(
                lambda: (
                    ops.get(f"/api/v1/messages/{first['id']}").json()["deliveries"][0]["status"]
                    == "retrying"
                )
            )
        for n in range(5):
            for key in ("HS-001", "HS-002"):
                event = note([DEST], title=f"{key} #{n}", tags=[key])
                assert c.post("/api/v1/messages", json=event).status_code == 202
                sent[key].append(event["id"])
        wait_until(lambda: len({r.event_id for r in sink.received if r.delivered}) == 11, 30)

    after = [r.at - throttled_at for r in sink.received[1:]]
    assert min(after) >= 1.9  # nothing was sent to it while it asked for 2 s of rest
    arrived: dict[str, list[str]] = defaultdict(list)
    for r in sink.received:
        if (
            r.delivered
            and r.event_id not in arrived[key := orjson.loads(r.body)["data"]["tags"][0]]
        ):
            arrived[key].append(r.event_id)
    assert arrived == sent
