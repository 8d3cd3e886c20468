"""The national axis connector and poller against the simulated axis on a real socket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from adapters.national_axis import NationalAxis
from hub.config import RetryPolicy, System
from hub.connectors.edxml import SENT, STATUS, FileBlobStore, StatusPackage, event_data, parse
from hub.connectors.national_axis import (
    NationalAxisConnector,
    NationalAxisPoller,
    message_id_for,
)
from hub.connectors.xroad import Base64Field, sign_headers, verify
from hub.errors import Rejected, Transient, Unauthorized
from hub.store import cursors
from hub.store.db import Database
from tests import sdk
from tests.adapters.test_national_axis_sim import CITY, MINISTRY, SECRET, document, xml

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared/reference/edxml/vpcp-sdk-samples"
SAMPLE_SENDER, SAMPLE_SECRET = "000.00.00.A80", "a80-secret"


def axis_system(url: str, *, system_id: str = CITY, secret: str | None = SECRET) -> System:
    options = {} if system_id == "" else {"system_id": system_id}
    return System(
        id="000.00.00.G22:truclienthong",
        name="Trục liên thông văn bản quốc gia",
        kind="national_axis",
        endpoint=url,
        api_key=secret,
        may_send=("vn.lgsp.document.*",),
        may_receive=("vn.lgsp.document.*",),
        retry=RetryPolicy(),
        timeout=5.0,
        options=MappingProxyType(options),
    )


def sent_event(data: dict[str, Any], message_id: str = "01JD3M7Q4V0Y6J9Z7R8T2K1B5C") -> Any:
    kind = STATUS if "status_code" in data else SENT
    return {"specversion": "1.0", "id": message_id, "source": "000.00.00.H29:qlvb",
            "type": kind, "data": data}  # fmt: skip


def deliver(connector: NationalAxisConnector, event: Any, target: System) -> Any:
    async def go() -> Any:
        try:
            return await connector.deliver(b"", event, target)
        finally:
            await connector.close()

    return asyncio.run(go())


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture
def axis(tmp_path: Path) -> Iterator[NationalAxis]:
    systems = {CITY: SECRET, SAMPLE_SENDER: SAMPLE_SECRET}
    with NationalAxis(systems, auto_status=("01",), directory=tmp_path / "axis") as running:
        yield running


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.close()


# Signing ---------------------------------------------------------------------------------


class Headers(dict[str, list[str]]):
    """Case-insensitive headers with getlist, as starlette hands them to the hub."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in items:
            self.setdefault(name.lower(), []).append(value)

    def getlist(self, key: str) -> list[str]:
        return list(self.get(key.lower(), []))


def test_the_hub_signs_as_the_sdk_and_an_independent_verifier_accepts_it() -> None:
    now = datetime(2026, 12, 3, 11, 45, 1, 123_000, tzinfo=UTC)
    signed = sign_headers(CITY, SECRET, {"from": "000.00.11.H29", "messagetype": "edoc"}, now=now)
    assert signed["XroadVnpt-timestamp"] == "03122026T184501+0123"  # Vietnam time
    assert signed["XroadVnpt-sign-header"] == (
        '{"XroadVnpt-timestamp":"03122026T184501+0123","XroadVnpt-systemid":"000.00.00.H29",'
        '"XroadVnpt-Content-Type":"application/json","XroadVnpt-from":"000.00.11.H29",'
        '"XroadVnpt-messagetype":"edoc"}'
    )
    assert signed["XroadVnpt-sign-header-key"] == "timestamp;systemid;Content-Type;from;messagetype"
    logical = sdk.check(httpx.Headers(signed), {CITY: SECRET}, now + timedelta(seconds=299))
    assert logical["from"] == "000.00.11.H29"


def test_verify_accepts_what_the_reference_helper_builds() -> None:
    now = datetime.now(UTC)
    items = sdk.request(CITY, SECRET, {"docId": "d-1", "status": "done"}, at=now)
    got = verify(Headers(items), {CITY: SECRET}.get, now=now + timedelta(seconds=299))
    assert got.system_id == CITY and got.get("docid") == "d-1" and got.get("STATUS") == "done"


@pytest.mark.parametrize(
    "attack",
    ["wrong secret", "stale", "future", "tampered", "added member", "unix ms", "unknown", "keys"],
)
def test_verify_refuses(attack: str) -> None:
    now = datetime.now(UTC)
    timestamp = str(int(now.timestamp() * 1000)) if attack == "unix ms" else None
    system = "000.00.00.H41" if attack == "unknown" else CITY
    items = sdk.request(system, SECRET, {"docId": "d-1"}, at=now, timestamp=timestamp)
    at, secrets = now, {CITY: SECRET}
    if attack == "wrong secret":
        secrets = {CITY: "other"}
    elif attack == "stale":
        at = now + timedelta(seconds=301)
    elif attack == "future":
        at = now - timedelta(seconds=301)
    elif attack == "tampered":
        items = sdk.replace(items, "XroadVnpt-docId", "d-2")
    elif attack == "added member":
        items.append(("XroadVnpt-docId", "d-2"))
    elif attack == "keys":
        items = sdk.replace(items, "XroadVnpt-sign-header-key", "timestamp;systemid")
    with pytest.raises(Unauthorized):
        verify(Headers(items), secrets.get, now=at)


def test_base64_field_decodes_as_it_streams_with_json_escapes() -> None:
    payload = bytes(range(256)) * 50
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(payload).decode(), 76))
    data = json.dumps(wrapped).replace("/", "\\/").replace("A", "\\u0041")  # escapes encoders write
    encoded = (
        '{"status": "OK", "meta": {"data": "not this one"}, "ErrorDesc": "say \\"data\\": here",'
        f' "data": {data}, "docId": "d-1"}}'
    ).encode()
    out = io.BytesIO()
    field = Base64Field(out)
    for i in range(0, len(encoded), 7):
        field.feed(encoded[i : i + 7])
    answer = field.close()
    assert out.getvalue() == payload and answer["data"] == len(payload)
    assert answer["docId"] == "d-1" and answer["meta"] == {"data": "not this one"}
    with pytest.raises(ValueError, match="base64"):
        Base64Field(io.BytesIO()).feed(b'{"data": "ab!d"}')


def test_message_id_is_deterministic_and_fits_the_envelope() -> None:
    assert message_id_for("6f1c2a") == "axis:6f1c2a"
    odd = message_id_for("văn bản/1")
    assert odd == message_id_for("văn bản/1") and odd.startswith("axis:sha256:")


def test_cursor_is_kept_per_name_on_both_stores(database_url: str) -> None:
    database = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    database.upgrade()
    try:
        with database.engine.begin() as conn:
            assert cursors.get_cursor(conn, "national_axis:a") is None
            cursors.set_cursor(conn, "national_axis:a", "1")
            cursors.set_cursor(conn, "national_axis:b", "x")
        cursors.save(database.engine, "national_axis:a", "2")
        assert cursors.load(database.engine, "national_axis:a") == "2"
        assert cursors.load(database.engine, "national_axis:b") == "x"
    finally:
        database.close()


# Delivery --------------------------------------------------------------------------------


def test_document_built_by_the_project_is_received_with_its_document_id(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    package = document("000.00.11.H29", MINISTRY, blobs=blobs)
    data = event_data(package)[1]
    receipt = deliver(NationalAxisConnector(blobs), sent_event(data), axis_system(axis.url))
    [got] = axis.received()
    assert receipt.status_code == 200 and receipt.extra["doc_id"] == got["doc_id"]
    assert got["document_id"] == package.header.document_id
    assert got["message_id"] == "01JD3M7Q4V0Y6J9Z7R8T2K1B5C" and got["to"] == [MINISTRY]
    assert got["sha256"] == hashlib.sha256(xml(package, blobs)).hexdigest()
    assert len(axis.pending(CITY)) == 1  # the ministry's automatic "01"
    request = NationalAxisConnector(blobs).encode(b"", sent_event(data), axis_system(axis.url))
    assert request.url == f"{axis.url}/sendEdoc" and request.body == xml(package, blobs)
    logical = sdk.check(httpx.Headers(request.headers), {CITY: SECRET}, datetime.now(UTC))
    assert logical["hash-file"] == got["sha256"] and logical["from"] == "000.00.11.H29"
    assert logical["Content-Type"] == "application/octet-stream"
    assert json.loads(logical["to"]) == [MINISTRY]
    assert logical["servicetype"] == "eDoc" and logical["messagetype"] == "edoc"


def test_shared_sample_and_a_status_package_are_delivered(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the shared edXML samples are not at {SAMPLES}")
    target = axis_system(axis.url, system_id=SAMPLE_SENDER, secret=SAMPLE_SECRET)
    for n, name in enumerate(["edoc_new.edxml", "status.edxml"]):
        package = parse((SAMPLES / name).read_bytes(), blobs, max_bytes=10 << 20)
        if isinstance(package, StatusPackage):
            target = axis_system(axis.url, system_id=package.from_.organ_id, secret="s")
            axis.systems[package.from_.organ_id] = "s"
        deliver(NationalAxisConnector(blobs), sent_event(event_data(package)[1], f"m-{n}"), target)
    document_sent, status_sent = axis.received()
    assert document_sent["document_id"] == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert document_sent["size"] > 300_000
    assert status_sent["messagetype"] == "status" and status_sent["to"] == ["000.00.00.G22"]


def test_repeated_message_id_is_dropped(axis: NationalAxis, blobs: FileBlobStore) -> None:
    event = sent_event(event_data(document("000.00.11.H29", MINISTRY))[1])
    first = deliver(NationalAxisConnector(blobs), event, axis_system(axis.url))
    again = deliver(NationalAxisConnector(blobs), event, axis_system(axis.url))
    assert first.extra["doc_id"] == again.extra["doc_id"]
    assert len(axis.received()) == 1 and axis.stats()["repeats_dropped"] == 1


def test_503_and_a_refused_connection_are_transient(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    event = sent_event(event_data(document("000.00.11.H29", MINISTRY))[1])
    axis.fail_next(1, retry_after=7)
    with pytest.raises(Transient) as caught:
        deliver(NationalAxisConnector(blobs), event, axis_system(axis.url))
    assert caught.value.retry_after == 7
    assert deliver(NationalAxisConnector(blobs), event, axis_system(axis.url)).status_code == 200
    with pytest.raises(Transient):
        deliver(NationalAxisConnector(blobs), event, axis_system("http://127.0.0.1:9"))


def test_fail_answers_and_missing_settings_are_rejected(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    event = sent_event(event_data(document("000.00.11.H29", MINISTRY))[1])
    axis.refuse_next("Văn bản đã tồn tại")
    with pytest.raises(Rejected, match="ErrorCode 1: Văn bản đã tồn tại"):
        deliver(NationalAxisConnector(blobs), event, axis_system(axis.url))
    with pytest.raises(Rejected, match="HTTP 401"):
        deliver(NationalAxisConnector(blobs), event, axis_system(axis.url, secret="wrong"))
    with pytest.raises(Rejected, match="system_id"):
        deliver(NationalAxisConnector(blobs), event, axis_system(axis.url, system_id=""))
    foreign = sent_event(event_data(document("000.00.00.H41", MINISTRY))[1])
    with pytest.raises(Rejected, match="HTTP 403"):
        deliver(NationalAxisConnector(blobs), foreign, axis_system(axis.url))
    assert axis.received() == []


# Polling ---------------------------------------------------------------------------------


class Hub:
    """An accept callback that parses what it is handed, or raises what it is told to."""

    def __init__(self, blobs: FileBlobStore) -> None:
        self.blobs = blobs
        self.accepted: list[tuple[str, str, str]] = []
        self.raises: list[Exception] = []
        self.calls = 0

    async def accept(self, path: Path, from_organ: str, doc_id: str) -> None:
        self.calls += 1
        if self.raises:
            raise self.raises.pop(0)
        sender = axis_system("http://unused")
        event = NationalAxisConnector(self.blobs).decode_file(path, doc_id, sender=sender)
        assert event["id"] == message_id_for(doc_id) and event["type"] == SENT
        self.accepted.append((from_organ, doc_id, event["data"]["document_id"]))


def poll(poller: NationalAxisPoller, rounds: int = 1) -> list[int]:
    async def go() -> list[int]:
        try:
            return [await poller.poll_once() for _ in range(rounds)]
        finally:
            await poller.close()

    return asyncio.run(go())


def inject_two(axis: NationalAxis, blobs: FileBlobStore) -> list[str]:
    return [
        axis.inject(xml(document(MINISTRY, "000.00.11.H29", number="1", blobs=blobs), blobs)),
        axis.inject(xml(document(MINISTRY, "000.00.12.H29", number="2"), blobs)),
    ]


def test_poll_hands_each_package_once_and_acknowledges_it(
    axis: NationalAxis, blobs: FileBlobStore, db: Database, tmp_path: Path
) -> None:
    doc_ids = inject_two(axis, blobs)
    hub = Hub(blobs)
    poller = NationalAxisPoller(axis_system(axis.url), db, hub.accept, spool=tmp_path)
    assert poll(poller, rounds=2) == [2, 0]
    assert [(f, d) for f, d, _ in hub.accepted] == [(MINISTRY, i) for i in doc_ids]
    assert hub.accepted[0][2] == f"{MINISTRY},2026/11/20,1/UBND-VP"
    assert axis.pending(CITY) == [] and axis.stats()["done"] == 2
    assert list(tmp_path.glob("axis-*")) == []  # spooled files removed
    cursor = json.loads(cursors.load(db.engine, poller.cursor_name) or "")
    assert cursor["unacked"] == {} and cursor["acked"] == 2
    assert cursor["last"]["doc_id"] == doc_ids[1]


def test_transient_leaves_the_package_pending_and_rejected_acknowledges_fail(
    axis: NationalAxis, blobs: FileBlobStore, db: Database
) -> None:
    doc_ids = inject_two(axis, blobs)
    hub = Hub(blobs)
    hub.raises = [Transient("store busy"), Rejected("schema")]
    poller = NationalAxisPoller(axis_system(axis.url), db, hub.accept)
    assert poll(poller, rounds=1) == [1]
    assert axis.pending(CITY) == [doc_ids[0]] and axis.stats()["failed"] == 1
    assert poll(NationalAxisPoller(axis_system(axis.url), db, hub.accept)) == [1]
    assert [d for _, d, _ in hub.accepted] == [doc_ids[0]] and axis.pending(CITY) == []


def test_cursor_acknowledges_after_a_crash_without_handing_the_package_again(
    axis: NationalAxis, blobs: FileBlobStore, db: Database, sqlite_url: str
) -> None:
    [doc_id, _] = inject_two(axis, blobs)
    hub = Hub(blobs)
    original = hub.accept

    async def accept_then_axis_down(path: Path, from_organ: str, doc: str) -> None:
        await original(path, from_organ, doc)
        axis.fail_next(100)  # updateStatus cannot reach the axis: the process "dies"

    crashed = NationalAxisPoller(axis_system(axis.url), db, accept_then_axis_down)
    with pytest.raises(Transient):
        poll(crashed)
    assert json.loads(cursors.load(db.engine, crashed.cursor_name) or "")["unacked"] == {
        doc_id: "done"
    }
    axis.fail_next(0)
    restarted_db = Database(sqlite_url)
    try:
        restarted = NationalAxisPoller(axis_system(axis.url), restarted_db, hub.accept)
        assert poll(restarted) == [2]  # the backlog ack, then the second package
    finally:
        restarted_db.close()
    assert hub.calls == 2 and hub.accepted[0][1] == doc_id
    assert axis.pending(CITY) == [] and axis.stats()["done"] == 2


def test_run_polls_until_stopped(axis: NationalAxis, blobs: FileBlobStore, db: Database) -> None:
    inject_two(axis, blobs)
    hub = Hub(blobs)

    async def go() -> None:
        poller = NationalAxisPoller(axis_system(axis.url), db, hub.accept, interval=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        deadline = time.monotonic() + 10
        while len(hub.accepted) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        await poller.close()

    asyncio.run(go())
    assert len(hub.accepted) == 2 and axis.pending(CITY) == []


def test_the_registry_operations_answer_with_the_reference_fields(
    axis: NationalAxis, blobs: FileBlobStore, db: Database, tmp_path: Path
) -> None:
    inject_two(axis, blobs)
    package = document("000.00.11.H29", MINISTRY, blobs=blobs)
    deliver(NationalAxisConnector(blobs), sent_event(event_data(package)[1]), axis_system(axis.url))
    poller = NationalAxisPoller(axis_system(axis.url), db, Hub(blobs).accept, spool=tmp_path)

    async def ask() -> tuple[Any, ...]:
        try:
            return (
                await poller.count_received("edoc"),
                await poller.count_received("status"),
                await poller.sent_list(),
                await poller.agencies(),
                await poller.agencies(qd20=True),
            )
        finally:
            await poller.close()

    edocs, statuses, sent, agencies, qd20 = asyncio.run(ask())
    assert (edocs, statuses) == (2, 1)  # two injected documents, the ministry's "01"
    assert [s["toCode"] for s in sent] == [MINISTRY] and sent[0]["fromCode"] == "000.00.11.H29"
    assert {"000.00.00.G22"} <= {a["code"] for a in agencies}
    assert all("codeQD20" in a for a in qd20)
