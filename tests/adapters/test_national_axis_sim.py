"""The simulated national document axis on its real socket, driven with signed httpx calls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.national_axis import DIRECTORY, NationalAxis
from hub.connectors.edxml import (
    AttachmentRef,
    DocumentHeader,
    DocumentPackage,
    EdDate,
    FileBlobStore,
    Organization,
    StatusPackage,
    build,
    parse,
)
from hub.connectors.edxml.model import Code, PromulgationInfo
from tests import sdk
from tests.conftest import REPO
from tests.support import wait_until

CITY, SECRET = "000.00.00.H29", "city-secret"
MINISTRY = "000.00.00.G09"


def document(
    sender: str, *recipients: str, number: str = "125", blobs: FileBlobStore | None = None
) -> DocumentPackage:
    """A document package as the project's builder writes it, with one attachment if `blobs`."""
    attachments: tuple[AttachmentRef, ...] = ()
    if blobs is not None:
        with blobs.writer() as w:
            w.write(b"%PDF-1.7 " + number.encode() * 1000)
        assert w.ref is not None
        attachments = (
            AttachmentRef("1", "van-ban.pdf", "Văn bản", "application/pdf", w.ref.size,
                          w.ref.sha256, w.ref.key),
        )  # fmt: skip
    header = DocumentHeader(
        from_=Organization(sender, organ_name="Cơ quan gửi"),
        to=tuple(Organization(r) for r in recipients),
        document_id=f"{sender},2026/11/20,{number}/UBND-VP",
        code=Code(number, "UBND-VP"),
        promulgation=PromulgationInfo("TP. Hồ Chí Minh", EdDate.of(date(2026, 11, 20))),
        subject="V/v triển khai liên thông văn bản",
    )
    return DocumentPackage(header=header, attachments=attachments)


def xml(package: DocumentPackage | StatusPackage, blobs: FileBlobStore) -> bytes:
    return b"".join(build(package, blobs))


def call(
    axis: NationalAxis,
    operation: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    system: str = CITY,
    secret: str = SECRET,
    at: datetime | None = None,
    method: str = "POST",
) -> httpx.Response:
    """One signed call, as the SDK makes it (tests/sdk.py, from the reference)."""
    kind = "application/octet-stream" if operation == "sendEdoc" else "application/json"
    signed = sdk.request(system, secret, headers, content_type=kind, at=at)
    url = f"{axis.url}/{operation}"
    return httpx.request(method, url, headers=signed, content=body, timeout=10.0)


def send(axis: NationalAxis, raw: bytes, sender: str, **extra: str) -> httpx.Response:
    headers = {"from": sender, "servicetype": "eDoc", "messagetype": "edoc"}
    headers |= {"hash-file": hashlib.sha256(raw).hexdigest(), **extra}
    return call(axis, "sendEdoc", headers, raw)


def received_list(axis: NationalAxis, messagetype: str = "edoc") -> list[dict[str, Any]]:
    answer = call(axis, "getReceivedEdocList", {"servicetype": "eDoc", "messagetype": messagetype})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture
def axis(tmp_path: Path) -> Iterator[NationalAxis]:
    with NationalAxis({CITY: SECRET}, auto_status=("01", "03"), directory=tmp_path / "axis") as a:
        yield a


def test_unsigned_wrong_hash_and_stale_calls_are_refused_401(axis: NationalAxis) -> None:
    unsigned = httpx.post(f"{axis.url}/getAgenciesList", timeout=5.0)
    wrong = call(axis, "getAgenciesList", {}, secret="not-the-secret")
    stale = call(axis, "getAgenciesList", {}, at=datetime.now(UTC) - timedelta(seconds=301))
    ahead = call(axis, "getAgenciesList", {}, at=datetime.now(UTC) + timedelta(seconds=301))
    good = sdk.request(CITY, SECRET, {"docId": "d-1"})
    tampered = httpx.post(
        f"{axis.url}/getEdoc", headers=sdk.replace(good, "XroadVnpt-docId", "d-2"), timeout=5.0
    )
    millis = sdk.request(CITY, SECRET, {}, timestamp=str(int(time.time() * 1000)))
    unix = httpx.post(f"{axis.url}/getAgenciesList", headers=millis, timeout=5.0)
    stranger = call(axis, "getAgenciesList", {}, system="000.00.00.H41")
    refused = (unsigned, wrong, stale, ahead, tampered, unix, stranger)
    for answer in refused:
        assert answer.status_code == 401
        assert answer.json()["status"] == "FAIL" and answer.json()["ErrorCode"] == "401"
    assert "timestamp" in stale.json()["ErrorDesc"] and "timestamp" in unix.json()["ErrorDesc"]
    assert "differs" in tampered.json()["ErrorDesc"]
    assert "unknown systemid" in stranger.json()["ErrorDesc"]
    assert axis.stats()["auth_refused"] == len(refused)


def test_a_private_dialect_does_not_pass(axis: NationalAxis) -> None:
    """The hub's former dialect: a hash over the sorted JSON of unprefixed names, Unix ms."""
    logical = {"systemid": CITY, "timestamp": str(int(time.time() * 1000))}
    text = json.dumps(logical, sort_keys=True, separators=(",", ":")).encode()
    digest = hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest()
    headers = {f"XroadVnpt-{k}": v for k, v in logical.items()}
    headers["XroadVnpt-hash-header"] = digest
    answer = httpx.post(f"{axis.url}/getAgenciesList", headers=headers, timeout=5.0)
    assert answer.status_code == 401 and answer.json()["status"] == "FAIL"


def test_agencies_directory_has_the_government_office_in_nfc(axis: NationalAxis) -> None:
    answer = call(axis, "getAgenciesList", {}).json()
    assert answer["status"] == "OK" and answer["ErrorCode"] == "0"
    names = {a["code"]: a["name"] for a in answer["data"]}
    assert names["000.00.00.G22"] == "Văn phòng Chính phủ"
    assert all(unicodedata.is_normalized("NFC", name) for _, name in DIRECTORY)


def test_sent_document_gets_a_doc_id_and_ministries_answer_with_status(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    raw = xml(document("000.00.11.H29", MINISTRY, "000.00.00.G17", blobs=blobs), blobs)
    answer = send(axis, raw, "000.00.11.H29", messageid="m-1")
    assert answer.status_code == 200, answer.text
    doc_id = answer.json()["DocId"]
    [got] = axis.received()
    assert got["doc_id"] == doc_id and got["message_id"] == "m-1"
    assert got["document_id"] == "000.00.11.H29,2026/11/20,125/UBND-VP"
    assert got["to"] == [MINISTRY, "000.00.00.G17"]
    assert got["sha256"] == hashlib.sha256(raw).hexdigest()
    statuses = received_list(axis, "status")
    assert len(statuses) == 4 and {s["from"] for s in statuses} == {MINISTRY, "000.00.00.G17"}
    first = call(axis, "getEdoc", {"docid": statuses[0]["docId"]}).json()
    package = parse(base64.b64decode(first["data"]), blobs, max_bytes=1 << 20)
    assert isinstance(package, StatusPackage) and package.status_code == "01"
    assert package.response_for and package.response_for.document_id == got["document_id"]
    sent = call(axis, "getSentEdocList", {}).json()["data"]
    assert [s["toCode"] for s in sent] == [MINISTRY, "000.00.00.G17"]
    assert sent[0]["senderDocId"] == doc_id and sent[0]["fromCode"] == "000.00.11.H29"
    assert sent[0]["receiveStatus"] == "done" and sent[0]["notation"] == "125/UBND-VP"
    for name in ("sendStatus", "sendStatusDesc", "receiveStatusDesc", "sentTime", "title"):
        assert isinstance(sent[0][name], str) and sent[0][name], name
    assert sent[0]["serviceType"] == "eDoc" and sent[0]["messageType"] == "edoc"
    assert call(axis, "countReceiveStatus", {}, method="GET").json()["count"] == 4
    assert call(axis, "countReceiveEdoc", {}, method="GET").json()["count"] == 0


def test_repeated_message_id_is_dropped_with_the_first_doc_id(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    raw = xml(document("000.00.11.H29", MINISTRY), blobs)
    first = send(axis, raw, "000.00.11.H29", messageid="m-1").json()["DocId"]
    again = send(axis, raw, "000.00.11.H29", messageid="m-1").json()["DocId"]
    assert first == again
    stats = httpx.get(f"{axis.url}/_axis/stats").json()
    assert stats["received"] == 1 and stats["repeats_dropped"] == 1
    listed = httpx.get(f"{axis.url}/_axis/received").json()
    assert [d["repeats"] for d in listed["documents"]] == [1]


def test_bad_body_hash_corrupt_package_and_foreign_sender_fail(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    raw = xml(document("000.00.11.H29", MINISTRY), blobs)
    headers = {"from": "000.00.11.H29", "servicetype": "eDoc", "messagetype": "edoc"}
    mismatch = call(axis, "sendEdoc", headers | {"hash-file": "0" * 64}, raw)
    assert mismatch.status_code == 400 and "hash-file" in mismatch.json()["ErrorDesc"]
    corrupt = raw[: len(raw) // 2]
    broken = send(axis, corrupt, "000.00.11.H29")
    assert broken.status_code == 400 and broken.json()["status"] == "FAIL"
    assert "well-formed" in broken.json()["ErrorDesc"]
    foreign = send(axis, xml(document("000.00.00.H41", MINISTRY), blobs), "000.00.00.H41")
    assert foreign.status_code == 403
    assert axis.received() == [] and axis.stats()["invalid"] == 1


def test_the_sdk_body_and_hash_file_spelling_are_accepted(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    """The SDK sends the file then CRLF, its hash-file each byte's hex without a leading 0."""
    raw = xml(document("000.00.11.H29", MINISTRY), blobs)
    headers = {"from": "000.00.11.H29", "servicetype": "eDoc", "messagetype": "edoc"}
    headers |= {"to": f'["{MINISTRY}"]', "hash-file": sdk.hash_file(raw)}
    answer = call(axis, "sendEdoc", headers, sdk.body(raw))
    assert answer.status_code == 200 and answer.json()["DocId"], answer.text
    not_json = call(axis, "sendEdoc", headers | {"to": MINISTRY}, sdk.body(raw))
    assert not_json.status_code == 400 and "to" in not_json.json()["ErrorDesc"]
    foo = call(axis, "getReceivedEdocList", {"messagetype": "foo"})
    assert foo.status_code == 400 and foo.json()["status"] == "FAIL"


def test_city_pulls_injected_documents_and_acknowledges_them(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    raw = xml(document(MINISTRY, "000.00.11.H29", "000.00.00.G17"), blobs)
    doc_id = httpx.post(f"{axis.url}/_axis/inject", content=raw).json()["DocId"]
    [item] = received_list(axis)
    assert item["docId"] == doc_id and item["from"] == MINISTRY
    assert item["to"] == "000.00.11.H29" and item["status"] == "pending"
    assert item["serviceType"] == "eDoc" and item["messageType"] == "edoc"
    assert item["status_desc"] and item["created_time"] and item["updated_time"]
    fetched = call(axis, "getEdoc", {"docid": doc_id}).json()
    assert base64.b64decode(fetched["data"]) == raw
    assert call(axis, "updateStatus", {"docid": doc_id, "status": "done"}).status_code == 200
    assert received_list(axis) == [] and axis.stats()["done"] == 1
    assert call(axis, "getEdoc", {"docid": "nope"}).status_code == 404
    other = axis.inject(xml(document(MINISTRY, "000.00.12.H29", number="126"), blobs))
    assert call(axis, "updateStatus", {"docid": other, "status": "fail"}).status_code == 200
    assert axis.pending(CITY) == [] and axis.stats()["failed"] == 1


def test_fail_next_answers_503_with_retry_after(axis: NationalAxis) -> None:
    axis.fail_next(2, retry_after=3)
    answers = [call(axis, "getAgenciesList", {}) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["retry-after"] == "3"


def test_runs_from_the_command_line(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "adapters.national_axis", "--port", str(port)]
    cmd += ["--system", f"{CITY}:{SECRET}", "--auto-status", "01,03", "--fail-next", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/_axis/stats"

        def stats() -> Any:
            try:
                return httpx.get(url, timeout=1.0).json()
            except httpx.TransportError:
                return None

        assert wait_until(stats, timeout=20)["fail_next"] == 1
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_contract_lists_every_route_and_describes_the_answers(
    axis: NationalAxis, blobs: FileBlobStore
) -> None:
    from jsonschema import Draft202012Validator

    contract = yaml.safe_load((REPO / "contracts" / "national-axis.openapi.yaml").read_text())
    routes = {r.path for r in axis._app.routes}  # type: ignore[attr-defined]
    assert routes == set(contract["paths"])
    axis.inject(xml(document(MINISTRY, "000.00.11.H29"), blobs))
    schemas = contract["components"]["schemas"]
    item = Draft202012Validator(schemas["ReceivedItem"])
    assert [e.message for e in item.iter_errors(received_list(axis)[0])] == []
    answer = Draft202012Validator(schemas["Answer"])
    assert [e.message for e in answer.iter_errors(call(axis, "getAgenciesList", {}).json())] == []
