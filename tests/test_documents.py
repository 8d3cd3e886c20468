"""Documents through the hub: the local document axis, pull and SOAP push, the national axis.

One city system sends an edXML package to two others (one pulls it through
/api/v1/edoc/, one is pushed to over SOAP by the e-office simulator, which
answers its statuses as an SDK client, signed the SDK's way), to an
organisation nobody receives for, and to a ministry through the national-axis
simulator; statuses come back to the sender and show in the document's state.
Runs on the embedded default and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.eoffice import EofficeSimulator
from adapters.national_axis import NationalAxis
from hub import tracing
from hub.connectors.edxml import (
    AttachmentRef,
    Business,
    BusinessDocType,
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
from hub.settings import Settings
from tests.connectors.edxml.test_codec import HOSTILE
from tests.support import OPS_KEY, ThreadedHub, wait_until

CITY = "000.00.00.H29"  # the city People's Committee office: sends, pulls
JUSTICE = "000.00.12.H29"  # pulls
HOME = "000.00.13.H29"  # pushed to over SOAP
NOBODY = "000.00.99.H29"  # in the city, but no system receives for it
MINISTRY = "000.00.00.G09"  # outside the city: through the national axis
KEYS = {CITY: "k-city", JUSTICE: "k-justice", HOME: "k-home"}
AXIS_SECRET = "axis-secret"
HOME_SDK = ("H29.HOME.QLVB", "home-sdk-secret")  # the pushed e-office answers as an SDK client
DOC_ID = "000.00.00.H29,2026/11/23,125/UBND-VP"
ADMIN_KEY = "k-admin"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def attachment(store: FileBlobStore, name: str, content: bytes) -> AttachmentRef:
    with store.writer() as w:
        w.write(content)
    assert w.ref is not None
    return AttachmentRef(name, name, name, "application/pdf", w.ref.size, w.ref.sha256, w.ref.key)


def document(
    store: FileBlobStore,
    to: list[str],
    *,
    action: BusinessDocType = BusinessDocType.NEW,
    document_id: str = DOC_ID,
    earlier: str | None = None,
) -> bytes:
    header = DocumentHeader(
        from_=Organization(CITY, organ_name="Văn phòng UBND Thành phố Hồ Chí Minh"),
        to=tuple(Organization(o, organ_name=f"Cơ quan {o}") for o in to),
        document_id=document_id,
        code=Code("125", "UBND-VP"),
        promulgation=PromulgationInfo("TP. Hồ Chí Minh", EdDate.of(date(2026, 11, 23))),
        subject="V/v triển khai kết nối liên thông văn bản",
    )
    pdf = attachment(store, "congvan.pdf", b"%PDF-1.4 " + document_id.encode() * 2000)
    package = DocumentPackage(
        header=header,
        business=Business(action, document_id=earlier, reason="Văn bản"),
        attachments=(pdf,),
    )
    return b"".join(build(package, store))


def config(tmp_path: Path, soap: str, axis: str) -> Path:
    def edoc(organ: str, endpoint: str | None = None) -> dict[str, Any]:
        system: dict[str, Any] = {
            "id": f"{organ}:edoc",
            "name": f"Quản lý văn bản {organ}",
            "kind": "edxml",
            "api_key": KEYS[organ],
            "may_send": ["vn.lgsp.document.*"],
            "may_receive": ["vn.lgsp.document.*"],
            "retry": {"delays": [0.2, 0.5, 1]},
        }
        if endpoint:
            system["endpoint"] = endpoint
        if organ == HOME:
            system["axis_system_id"], system["axis_secret"] = HOME_SDK
        return system

    doc = {
        "systems": [
            edoc(CITY),
            edoc(JUSTICE),
            edoc(HOME, f"{soap}/soap"),
            {
                "id": "000.00.00.G22:axis",
                "name": "Trục liên thông văn bản quốc gia",
                "kind": "national_axis",
                "endpoint": axis,
                "api_key": AXIS_SECRET,
                "system_id": CITY,
                "poll_seconds": 0.3,
                "may_send": ["vn.lgsp.document.*"],
                "may_receive": ["vn.lgsp.document.*"],
                "retry": {"delays": [0.2, 0.5, 1]},
            },
        ],
        "routes": [
            {
                "name": "documents-to-recipients",
                "match": {"type": "vn.lgsp.document.sent.v1"},
                "to": {"from_data": "/recipients/*/organ_id"},
            },
            {
                "name": "document-statuses-to-senders",
                "match": {"type": "vn.lgsp.document.status.v1"},
                "to": {"from_data": "/response_for/organ_id"},
            },
        ],
        "operators": [
            {"name": "ops", "api_key": OPS_KEY, "role": "operator"},
            {"name": "admin", "api_key": ADMIN_KEY, "role": "admin"},
        ],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


class City:
    """The hub, the pushed e-office, the national axis, and a client per city system."""

    def __init__(self, hub: ThreadedHub, eoffice: EofficeSimulator, axis: NationalAxis) -> None:
        self.hub, self.eoffice, self.axis = hub, eoffice, axis

    def call(self, organ: str, operation: str, body: bytes = b"", **headers: str) -> Any:
        with self.hub.client(KEYS[organ]) as c:
            return c.post(f"/api/v1/edoc/{operation}", content=body, headers=headers)

    def send(self, organ: str, package: bytes, kind: str = "edoc", **headers: str) -> Any:
        digest = hashlib.sha256(package).hexdigest()
        return self.call(
            organ,
            "sendEdoc",
            package,
            **{"from": organ, "messagetype": kind, "hash-file": digest, **headers},
        )

    def waiting(self, organ: str, kind: str = "edoc") -> list[dict[str, Any]]:
        r = self.call(organ, "getReceivedEdocList", messagetype=kind)
        assert r.status_code == 200, r.text
        return list(r.json()["data"])

    def document(self, document_id: str) -> dict[str, Any]:
        with self.hub.client(OPS_KEY) as c:
            r = c.get(f"/api/v1/documents/{document_id}")
            assert r.status_code == 200, r.text
            return dict(r.json())


@pytest.fixture
def city(tmp_path: Path, backend: dict[str, str]) -> Iterator[City]:
    axis = NationalAxis({CITY: AXIS_SECRET}, auto_status=("01", "03")).start()
    eoffice = EofficeSimulator(
        HOME, key=KEYS[HOME], directory=tmp_path / "eoffice", sdk=HOME_SDK
    ).start()
    path = config(tmp_path, eoffice.url, axis.url)
    settings = Settings(config=path, blob_dir=tmp_path / "blobs", retry_poll_seconds=0.1, **backend)
    try:
        with ThreadedHub(settings) as hub:
            eoffice.hub = hub.url
            yield City(hub, eoffice, axis)
    finally:
        eoffice.stop()
        axis.stop()


def test_document_to_pull_push_unknown_and_ministry_then_statuses(
    city: City, tmp_path: Path
) -> None:
    store = FileBlobStore(tmp_path / "sender")
    package = document(store, [JUSTICE, HOME, NOBODY, MINISTRY])

    r = city.send(CITY, package, traceparent=TRACEPARENT)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "OK" and answer["ErrorCode"] == "0" and answer["DocId"]
    assert [x["organ_id"] for x in answer["refused"]] == [NOBODY]
    assert "unknown recipient" in answer["refused"][0]["reason"]

    # Pull: the justice department lists, fetches and acknowledges it.
    listed = wait_until(lambda: city.waiting(JUSTICE))
    assert [x["docId"] for x in listed] == [answer["DocId"]]
    assert listed[0]["from"] == CITY and listed[0]["document_id"] == DOC_ID
    got = city.call(JUSTICE, "getEdoc", docid=answer["DocId"])
    assert got.status_code == 200 and got.json()["status"] == "OK"
    fetched = parse(base64.b64decode(got.json()["data"]), store, max_bytes=10_000_000)
    assert isinstance(fetched, DocumentPackage)
    assert fetched.header.document_id == DOC_ID
    original = parse(package, store, max_bytes=10_000_000)
    assert isinstance(original, DocumentPackage)
    assert [a.sha256 for a in fetched.attachments] == [a.sha256 for a in original.attachments]
    done = city.call(JUSTICE, "updateStatus", docid=answer["DocId"], status="done")
    assert done.status_code == 200 and done.json()["status"] == "OK"
    assert city.waiting(JUSTICE) == []
    # The confirmation counts as a delivery in the metrics, once (a repeat does not).
    again = city.call(JUSTICE, "updateStatus", docid=answer["DocId"], status="done")
    assert again.status_code == 200
    with city.hub.client() as c:
        metrics = c.get("/metrics").text
    assert f'hub_deliveries_delivered_total{{destination="{JUSTICE}:edoc"}} 1.0' in metrics
    assert f'hub_delivery_latency_seconds_count{{destination="{JUSTICE}:edoc"}} 1.0' in metrics

    # Push: the home-affairs e-office got it over SOAP; it answers 01, 03, 04, 05, 06.
    wait_until(lambda: city.eoffice.document(DOC_ID) is not None)
    pushed = [x for x in city.eoffice.received if x.document_id == DOC_ID]
    span = tracing.parse(pushed[0].traceparent)  # the SOAP call carries the sender's trace
    assert span is not None and span.trace_id == TRACEPARENT.split("-")[1]
    for code in ("01", "03", "04", "05", "06"):
        sent = asyncio.run(city.eoffice.send_status(DOC_ID, code))
        assert sent["status"] == "OK", sent

    # The ministry got it through the national axis, which answered 01 and 03.
    wait_until(lambda: [d for d in city.axis.received() if d["document_id"] == DOC_ID])

    # Every status reaches the sender (7 in all), which pulls them.
    statuses = wait_until(
        lambda: len(city.waiting(CITY, "status")) == 7 and city.waiting(CITY, "status")
    )
    codes = []
    for item in statuses:
        got = city.call(CITY, "getEdoc", docid=item["docId"])
        status = parse(base64.b64decode(got.json()["data"]), store, max_bytes=1_000_000)
        assert isinstance(status, StatusPackage) and status.response_for is not None
        assert status.response_for.document_id == DOC_ID
        codes.append((status.from_.organ_id, status.status_code))
    assert sorted(codes) == sorted(
        [(HOME, c) for c in ("01", "03", "04", "05", "06")] + [(MINISTRY, "01"), (MINISTRY, "03")]
    )

    state = wait_until(
        lambda: _states(city.document(DOC_ID)).get(MINISTRY) == "03" and city.document(DOC_ID)
    )
    states = _states(state)
    assert states[HOME] == "06" and states[MINISTRY] == "03" and states[JUSTICE] == "sent"


def _states(view: dict[str, Any]) -> dict[str, str]:
    return {r["organ_id"]: r["code"] or r["state"] for r in view["recipients"]}


@pytest.fixture
def quiet_city(tmp_path: Path) -> Iterator[ThreadedHub]:
    """The hub alone on the embedded default (the simulators are not called)."""
    path = config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    settings = Settings(
        config=path,
        database_url=f"sqlite:///{tmp_path / 'hub.db'}",
        blob_dir=tmp_path / "blobs",
        max_document_bytes=10_000_000,
    )
    with ThreadedHub(settings) as hub:
        yield hub


def nothing_stored(hub: ThreadedHub, blobs: Path) -> bool:
    with hub.client(OPS_KEY) as c:
        items = c.get("/api/v1/messages").json()["items"]
    kept = [p for p in blobs.rglob("*") if p.is_file()]
    return items == [] and kept == []


@pytest.mark.parametrize(("payload", "error", "message"), HOSTILE)
def test_hostile_packages_are_refused_and_nothing_is_stored(
    quiet_city: ThreadedHub, tmp_path: Path, payload: bytes | str, error: Any, message: str
) -> None:
    body = payload.encode() if isinstance(payload, str) else payload
    with quiet_city.client(KEYS[CITY]) as c:
        r = c.post(
            "/api/v1/edoc/sendEdoc", content=body, headers={"from": CITY, "messagetype": "edoc"}
        )
    assert r.status_code in (413, 422), r.text
    answer = r.json()
    assert answer["status"] == "FAIL" and answer["ErrorCode"] != "0"
    assert re.search(message, answer["ErrorDesc"]), answer
    assert "root:" not in r.text
    assert nothing_stored(quiet_city, tmp_path / "blobs")


def test_refusals_of_the_axis_api(quiet_city: ThreadedHub, tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "sender")
    package = document(store, [JUSTICE])

    def send(key: str | None, body: bytes = package, **headers: str) -> Any:
        with quiet_city.client(key) as c:
            return c.post("/api/v1/edoc/sendEdoc", content=body, headers=headers)

    edoc = {"from": CITY, "messagetype": "edoc"}
    cases = [
        (send(None, **edoc), 401, "Bearer"),
        (send("nope", **edoc), 401, "Bearer"),
        (send(KEYS[CITY], **{**edoc, "hash-file": "0" * 64}), 422, "hash-file"),
        (send(KEYS[CITY], messagetype="edoc"), 422, "'from' is required"),
        (send(KEYS[CITY], **{**edoc, "messagetype": "fax"}), 422, "messagetype"),
        (send(KEYS[CITY], **{**edoc, "messagetype": "status"}), 422, "status"),
        (send(KEYS[JUSTICE], **edoc), 403, "does not send for organisation"),
        (send(KEYS[JUSTICE], **{**edoc, "from": JUSTICE}), 403, "the package is from"),
        (send(KEYS[CITY], document(store, [NOBODY]), **edoc), 422, "unknown recipient"),
        (send(KEYS[CITY], package + b" " * 10_000_000, **edoc), 413, "limit"),
    ]
    for r, status, words in cases:
        assert r.status_code == status, r.text
        assert r.json()["status"] == "FAIL" and words in r.json()["ErrorDesc"], r.text
    assert nothing_stored(quiet_city, tmp_path / "blobs")
    with quiet_city.client(KEYS[JUSTICE]) as c:
        missing = c.post("/api/v1/edoc/getEdoc", headers={"docid": "nope"})
        assert missing.status_code == 404 and missing.json()["status"] == "FAIL"
        wrong = c.post("/api/v1/edoc/updateStatus", headers={"docid": "x", "status": "maybe"})
        assert wrong.status_code == 422
        listing = c.get("/api/v1/edoc/getAgenciesList").json()
        assert {a["organ_id"] for a in listing["data"]} >= {CITY, JUSTICE, HOME}


def test_revoke_and_update_of_a_delivered_document(city: City, tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "sender")
    assert city.send(CITY, document(store, [JUSTICE, HOME])).json()["status"] == "OK"
    wait_until(lambda: city.eoffice.document(DOC_ID) is not None)

    revoke = document(
        store, [HOME], action=BusinessDocType.REVOKE, document_id=DOC_ID, earlier=DOC_ID
    )
    assert city.send(CITY, revoke).json()["status"] == "OK"
    # The revoke reaches the e-office too; the recipient's state says revoked.
    wait_until(lambda: [r for r in city.eoffice.received if r.document_id == DOC_ID][1:])
    view = wait_until(
        lambda: _states(city.document(DOC_ID)).get(HOME) == "revoked" and city.document(DOC_ID)
    )
    assert _states(view)[JUSTICE] == "sent"  # the revoke named only HOME
    assert view["state"] == "revoked"

    # An update of a document the hub never saw is still forwarded, and flagged.
    unseen = "000.00.00.H29,2026/01/02,9/UBND-VP"
    update = document(
        store, [JUSTICE], action=BusinessDocType.UPDATE, document_id=unseen, earlier=unseen
    )
    r = city.send(CITY, update)
    assert r.status_code == 200 and r.json()["status"] == "OK", r.text
    listed = wait_until(lambda: [x for x in city.waiting(JUSTICE) if x["document_id"] == unseen])
    assert listed
    with city.hub.client(OPS_KEY) as c:
        flags = c.get("/api/v1/documents").json()["items"]
    assert any(f["document_id"] == unseen and "never saw" in (f["flag"] or "") for f in flags), [
        f["flag"] for f in flags
    ]


def test_directory_entries_made_through_the_api_route_documents(
    quiet_city: ThreadedHub, tmp_path: Path
) -> None:
    ward = "000.77.12.H29"  # a ward served by the justice department's system
    store = FileBlobStore(tmp_path / "sender")

    def send() -> Any:
        package = document(store, [ward])
        with quiet_city.client(KEYS[CITY]) as c:
            return c.post(
                "/api/v1/edoc/sendEdoc",
                content=package,
                headers={"from": CITY, "messagetype": "edoc"},
            )

    assert send().status_code == 422  # unknown recipient: nothing else to send to
    entry = {"system_id": f"{JUSTICE}:edoc", "name": "UBND Phường 12"}
    with quiet_city.client(OPS_KEY) as c:
        assert c.put(f"/api/v1/directory/{ward}", json=entry).status_code == 403
    with quiet_city.client(ADMIN_KEY) as c:
        assert c.put("/api/v1/directory/not-a-code", json=entry).status_code == 422
        bad = {**entry, "system_id": "000.00.55.H29:none"}
        assert c.put(f"/api/v1/directory/{ward}", json=bad).status_code == 422
        r = c.put(f"/api/v1/directory/{ward}", json=entry)
        assert r.status_code == 200, r.text
        listed = c.get("/api/v1/directory").json()["items"]
        assert {
            "organ_id": ward,
            "name": "UBND Phường 12",
            "system_id": f"{JUSTICE}:edoc",
            "source": "api",
        } in listed
    r = send()
    assert r.status_code == 200 and r.json()["refused"] == [], r.text
    with quiet_city.client(KEYS[JUSTICE]) as c:
        waiting = lambda: c.post(  # noqa: E731
            "/api/v1/edoc/getReceivedEdocList", headers={"messagetype": "edoc"}
        ).json()["data"]
        assert wait_until(waiting)[0]["docId"] == r.json()["DocId"]
    with quiet_city.client(ADMIN_KEY) as c:
        assert c.delete(f"/api/v1/directory/{ward}").status_code == 204
        assert c.delete(f"/api/v1/directory/{ward}").status_code == 404
    assert send().status_code == 422
