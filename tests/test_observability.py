"""Observability: /metrics, JSON log lines with the message's ids, W3C trace context."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.sink import RecordingSink
from hub import tracing
from hub.logs import JsonFormatter
from hub.settings import Settings
from tests.support import DEST_A, DEST_B, KEYS, OPS_KEY, SENDER, ThreadedHub, note, wait_until
from tests.support import write_config as write_hub_config

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as s:
        yield s


def make_hub(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink, **kw: Any
) -> ThreadedHub:
    path = write_hub_config(tmp_path, sink.url, **kw)
    settings = Settings(config=path, blob_dir=tmp_path / "blobs", retry_poll_seconds=0.1, **backend)
    return ThreadedHub(settings)


def send(hub: ThreadedHub, event: dict[str, Any], **headers: str) -> str:
    with hub.client(KEYS[SENDER]) as c:
        r = c.post("/api/v1/messages", json=event, headers=headers)
    assert r.status_code == 202, r.text
    return str(event["id"])


def message(hub: ThreadedHub, message_id: str) -> dict[str, Any]:
    with hub.client(OPS_KEY) as c:
        found: dict[str, Any] = c.get(f"/api/v1/messages/{message_id}").json()
        return found


def delivery_status(hub: ThreadedHub, message_id: str) -> str:
    return str(message(hub, message_id)["deliveries"][0]["status"])


def scrape(hub: ThreadedHub) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples of /metrics (fetched without a key), by name and labels."""
    with hub.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_messages_outcomes_and_open_deliveries(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink, delays=[60.0, 60.0]) as hub:
        before = scrape(hub)
        assert value(before, "hub_deliveries_delivered_total", destination=DEST_A) == 0
        assert value(before, "hub_deliveries_open", destination=DEST_A, status="pending") == 0

        first = [send(hub, note([DEST_A, DEST_B])) for _ in range(3)]
        wait_until(lambda: all(message(hub, m)["status"] == "delivered" for m in first))
        sink.respond(400, body={"error": "unknown field"}, times=1)
        dead = send(hub, note([DEST_A]))
        wait_until(lambda: delivery_status(hub, dead) == "dead")
        sink.respond(503)
        later = send(hub, note([DEST_B]))
        wait_until(lambda: delivery_status(hub, later) == "retrying")

        m = scrape(hub)
        note_type = "vn.lgsp.demo.note.v1"
        assert value(m, "hub_messages_accepted_total", type=note_type, source=SENDER) == 5
        for destination in (DEST_A, DEST_B):
            assert value(m, "hub_deliveries_delivered_total", destination=destination) == 3
            latency = "hub_delivery_latency_seconds_count"
            assert value(m, latency, destination=destination) == 3
            assert value(m, "hub_delivery_latency_seconds_sum", destination=destination) > 0
        route = "notes-to-recipients"
        assert value(m, "hub_messages_routed_total", route=route, destination=DEST_A) == 4
        assert value(m, "hub_messages_routed_total", route=route, destination=DEST_B) == 4
        assert value(m, "hub_deliveries_dead_lettered_total", destination=DEST_A) == 1
        assert value(m, "hub_connector_errors_total", destination=DEST_A, kind="rejected") == 1
        assert value(m, "hub_deliveries_retried_total", destination=DEST_B) == 1
        assert value(m, "hub_connector_errors_total", destination=DEST_B, kind="transient") == 1
        assert value(m, "hub_delivery_call_seconds_count", destination=DEST_A) == 4
        assert value(m, "hub_deliveries_open", destination=DEST_A, status="dead") == 1
        assert value(m, "hub_deliveries_open", destination=DEST_B, status="retrying") == 1
        assert value(m, "hub_deliveries_open", destination=DEST_B, status="pending") == 0


class Lines(logging.Handler):
    """Keeps the JSON lines logged through it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    handler, logger = Lines(), logging.getLogger("hub")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_json_log_lines_carry_the_message_ids(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink, json_lines: Lines
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        sink.respond(429, times=1)  # the worker logs that the destination is rate-limiting
        event = {**note([DEST_A]), "correlationid": "corr-42"}
        send(hub, event, traceparent=INCOMING)
        wait_until(lambda: message(hub, event["id"])["status"] == "delivered")
    lines = [orjson.loads(line) for line in json_lines.lines]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("message_id") == event["id"]]
    assert mine and "rate-limiting" in mine[0]["message"], lines
    assert mine[0]["correlation_id"] == "corr-42"
    assert mine[0]["trace_id"] == TRACE and mine[0]["destination"] == DEST_A
    assert mine[0]["logger"] == "hub.delivery" and mine[0]["level"] == "INFO"


def test_json_formatter_takes_extra_fields_and_exceptions() -> None:
    logger = logging.getLogger("hub.test")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("failed %s", "x", exc_info=True, extra={"message_id": "m-1"})
    finally:
        logger.removeHandler(handler)
    line = orjson.loads(stream.getvalue().splitlines()[0])
    assert line["message"] == "failed x" and line["message_id"] == "m-1"
    assert line["level"] == "ERROR" and "ValueError: boom" in line["exception"]


def test_traceparent_reaches_the_destination_as_a_new_span_of_the_same_trace(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        sink.respond(503, times=1)  # two attempts: two spans
        event = note([DEST_A])
        send(hub, event, traceparent=INCOMING)
        wait_until(lambda: message(hub, event["id"])["status"] == "delivered")
        assert message(hub, event["id"])["envelope"]["traceparent"] == INCOMING
    got = [r for r in sink.received if r.event_id == event["id"]]
    assert len(got) == 2
    spans = [tracing.parse(r.headers["traceparent"]) for r in got]
    assert all(s is not None and s.trace_id == TRACE for s in spans)
    ids = {s.span_id for s in spans if s is not None}
    assert len(ids) == 2 and "00f067aa0ba902b7" not in ids
    assert orjson.loads(got[-1].body)["traceparent"] == INCOMING  # the extension travels as is


@pytest.mark.parametrize("header", ["00-zz-bad", f"00-{'0' * 32}-00f067aa0ba902b7-01", None])
def test_invalid_or_missing_traceparent_starts_a_new_trace(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink, header: str | None
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        event = note([DEST_A])
        send(hub, event, **({"traceparent": header} if header else {}))
        wait_until(lambda: message(hub, event["id"])["status"] == "delivered")
        stored = tracing.parse(message(hub, event["id"])["envelope"]["traceparent"])
    assert stored is not None
    (got,) = [r for r in sink.received if r.event_id == event["id"]]
    sent = tracing.parse(got.headers["traceparent"])
    assert sent is not None and sent.trace_id == stored.trace_id
    assert sent.span_id != stored.span_id


def test_an_events_own_traceparent_is_kept(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink
) -> None:
    with make_hub(tmp_path, backend, sink) as hub:
        event = {**note([DEST_A]), "traceparent": INCOMING}
        other = f"00-{'1' * 32}-{'2' * 16}-01"
        send(hub, event, traceparent=other)
        wait_until(lambda: message(hub, event["id"])["status"] == "delivered")
        assert message(hub, event["id"])["envelope"]["traceparent"] == INCOMING


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (INCOMING, True),
        (INCOMING.upper(), False),
        (f"ff-{TRACE}-00f067aa0ba902b7-01", False),
        (f"00-{TRACE}-{'0' * 16}-01", False),
        (INCOMING + "-extra", False),
        (f"01-{TRACE}-00f067aa0ba902b7-01-future", True),
        ("", False),
        (42, False),
    ],
)
def test_traceparent_parse(value: object, valid: bool) -> None:
    assert (tracing.parse(value) is not None) is valid


def test_job_trace_is_read_from_the_stored_envelope() -> None:
    stamped = tracing.stamp({"id": "x", "traceparent": "nonsense"}, INCOMING)
    assert list(stamped) == ["traceparent", "id"] and stamped["traceparent"] == INCOMING
    assert tracing.of_envelope(orjson.dumps(stamped).decode()) == INCOMING
    assert tracing.of_envelope('{"id":"x"}') is None
