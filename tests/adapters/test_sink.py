"""RecordingSink against its real socket, driven with httpx."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from adapters.sink import RecordingSink

CE = {"content-type": "application/cloudevents+json"}


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as running:
        yield running


def post(sink: RecordingSink, event_id: str, path: str = "/events") -> httpx.Response:
    """POST a minimal CloudEvent the way the hub does."""
    event = {"specversion": "1.0", "id": event_id, "source": "test", "type": "vn.lgsp.t.v1"}
    headers = {**CE, "Idempotency-Key": event_id}
    return httpx.post(sink.url + path, json=event, headers=headers, timeout=5.0)


def test_post_is_recorded_and_stats_agree(sink: RecordingSink) -> None:
    assert sink.port != 0 and sink.url == f"http://127.0.0.1:{sink.port}"
    response = post(sink, "e-1", "/inbox/docs")
    assert response.status_code == 200
    [receipt] = sink.received
    assert receipt.path == "/inbox/docs"
    assert receipt.event_id == "e-1" and receipt.status == 200 and receipt.delivered
    assert receipt.headers["idempotency-key"] == "e-1"
    assert receipt.headers["content-type"] == "application/cloudevents+json"
    assert b'"id":"e-1"' in receipt.body.replace(b" ", b"")
    stats = httpx.get(sink.url + "/_sink/stats").json()
    assert stats == {"count": 1, "delivered": 1, "unique": 1, "duplicates": 0}
    assert sink.ids() == ["e-1"] and sink.unique_ids() == {"e-1"}


def test_event_id_falls_back_to_body_id(sink: RecordingSink) -> None:
    httpx.post(sink.url + "/events", content=b'{"id": "from-body"}', headers=CE)
    assert sink.ids() == ["from-body"]


def test_respond_times_then_back_to_200(sink: RecordingSink) -> None:
    sink.respond(503, times=2)
    statuses = [post(sink, f"e-{n}").status_code for n in range(3)]
    assert statuses == [503, 503, 200]
    assert [r.status for r in sink.received] == [503, 503, 200]
    assert sink.delivered_ids() == ["e-2"]
    assert sink.count == 3


def test_retry_after_header_and_body(sink: RecordingSink) -> None:
    sink.respond(429, retry_after=7, body={"detail": "slow down"})
    response = post(sink, "e-1")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"detail": "slow down"}
    assert post(sink, "e-2").status_code == 429, "times=None holds until changed"
    assert sink.delivered_ids() == []


def test_script_answers_in_order(sink: RecordingSink) -> None:
    sink.script([500, 400, 200])
    assert [post(sink, "e").status_code for _ in range(4)] == [500, 400, 200, 200]


def test_down_refuses_and_up_reuses_the_port(sink: RecordingSink) -> None:
    assert post(sink, "before").status_code == 200
    port = sink.port
    sink.down()
    with pytest.raises(httpx.ConnectError):
        post(sink, "while-down")
    sink.up()
    assert sink.port == port
    assert post(sink, "after").status_code == 200
    assert sink.ids() == ["before", "after"]


def test_duplicates_count_repeated_successful_ids(sink: RecordingSink) -> None:
    sink.script([503])
    for event_id in ["a", "a", "a", "b"]:
        post(sink, event_id)
    assert sink.delivered_ids() == ["a", "a", "b"]
    assert sink.duplicates() == 1
    assert sink.unique_ids() == {"a", "b"}


def test_wait_for_count_and_predicate(sink: RecordingSink) -> None:
    sender = threading.Thread(target=lambda: [post(sink, f"e-{n}") for n in range(3)])
    sender.start()
    assert sink.wait_for(3, timeout=10)
    assert sink.wait_for(lambda s: s.count >= 3, timeout=10)
    sender.join()
    assert not sink.wait_for(4, timeout=0.2)


def test_delay_does_not_queue_requests(sink: RecordingSink) -> None:
    sink.respond(200, delay=0.5)
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda n: post(sink, f"e-{n}"), range(2)))
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200, 200]
    # Served one after the other, the two would take at least 2 x 0.5 s.
    assert elapsed < 1.0
    first, second = sorted(r.at for r in sink.received)
    assert second - first < 0.5, "the second arrived while the first was still delayed"


def test_control_api(sink: RecordingSink) -> None:
    control = httpx.post(
        sink.url + "/_sink/respond", json={"status": 503, "retry_after": 3, "times": 1}
    )
    assert control.status_code == 200
    failed = post(sink, "e-1")
    assert failed.status_code == 503 and failed.headers["retry-after"] == "3"
    assert post(sink, "e-2").status_code == 200
    last = httpx.get(sink.url + "/_sink/received", params={"limit": 1}).json()
    assert len(last) == 1
    assert last[0]["event_id"] == "e-2" and last[0]["body"]["id"] == "e-2"
    assert sink.count == 2, "control paths are not recorded"
    bad = httpx.post(sink.url + "/_sink/respond", content=b"not json")
    assert bad.status_code == 400


def test_start_stop_without_context_manager() -> None:
    sink = RecordingSink(port=0).start()
    try:
        assert post(sink, "x").status_code == 200
    finally:
        sink.stop()
    with pytest.raises(httpx.ConnectError):
        post(sink, "y")
