"""The reference e-office on its real socket: its SOAP service, refusals, statuses via the hub.

Requests are written by hand here (the connector's own tests drive it with zeep), so
the simulator is checked against the WSDL's wire format on its own. The hub's
`sendEdoc` endpoint is played by a RecordingSink answering the axis contract.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree  # type: ignore[import-untyped]

from adapters.eoffice import EofficeSimulator
from adapters.sink import RecordingSink
from hub.connectors.edxml import FileBlobStore, StatusPackage, build, parse
from tests.connectors.test_eoffice import DOCUMENT_ID, ORGAN, SENDER, attachment, document, status
from tests.support import free_port, wait_until

TNS = "urn:lgsp:eoffice:v1"
HUB_OK = {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "DocId": "hub-42"}


def soap(operation: str, message_id: str, edxml: bytes | str, sender: str = SENDER) -> bytes:
    """A request as the WSDL describes it (document/literal, SOAP 1.1)."""
    encoded = base64.b64encode(edxml).decode() if isinstance(edxml, bytes) else edxml
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<e:{operation} xmlns:e="{TNS}"><e:messageId>{message_id}</e:messageId>'
        f"<e:from>{sender}</e:from><e:edXML>{encoded}</e:edXML></e:{operation}>"
        "</s:Body></s:Envelope>"
    ).encode()


def call(eo: EofficeSimulator, operation: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST to /soap; the answer's fields, or faultcode/faultstring."""
    headers = {"content-type": "text/xml; charset=utf-8", "soapaction": f'"{TNS}#{operation}"'}
    response = httpx.post(f"{eo.url}/soap", content=body, headers=headers, timeout=10)
    root = etree.fromstring(response.content)
    body_node = root[0]
    fields = {etree.QName(n).localname: n.text for n in body_node[0]}
    return response.status_code, fields


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "sender")


@pytest.fixture
def hub() -> Iterator[RecordingSink]:
    with RecordingSink() as sink:
        sink.respond(200, body=HUB_OK)
        yield sink


@pytest.fixture
def eoffice(tmp_path: Path, hub: RecordingSink) -> Iterator[EofficeSimulator]:
    eo = EofficeSimulator(ORGAN, name="Sở Tư pháp", directory=tmp_path / "eo", hub=hub.url, key="k")
    with eo:
        yield eo


def edxml(package: Any, store: FileBlobStore) -> bytes:
    return b"".join(build(package, store))


def test_document_is_filed_and_repeats_dropped(
    eoffice: EofficeSimulator, store: FileBlobStore
) -> None:
    first = attachment(store, "cid:1", "quyet-dinh.pdf", b"%PDF-1.7 " * 999)
    package = edxml(document(first), store)
    code, answer = call(eoffice, "sendDocument", soap("sendDocument", "m-1", package))
    assert code == 200 and answer["status"] == "OK" and answer["errorCode"] == "0"
    assert call(eoffice, "sendDocument", soap("sendDocument", "m-1", package))[1] == answer
    [filed] = httpx.get(f"{eoffice.url}/_eoffice/received").json()
    assert filed["docId"] == answer["docId"] and filed["messageId"] == "m-1"
    assert filed["documentId"] == DOCUMENT_ID and filed["from"] == SENDER
    assert filed["to"] == [ORGAN] and filed["kind"] == "document"
    assert filed["subject"] == "V/v triển khai kết nối liên thông"
    assert filed["attachments"] == [
        {"contentId": "cid:1", "name": "quyet-dinh.pdf", "size": first.size, "sha256": first.sha256}
    ]
    assert filed["package"] == {"size": len(package), "sha256": hashlib.sha256(package).hexdigest()}
    stats = httpx.get(f"{eoffice.url}/_eoffice/stats").json()
    assert stats["calls"] == 2 and stats["duplicates"] == 1 and stats["received"] == 1


def test_status_package_is_filed(eoffice: EofficeSimulator, store: FileBlobStore) -> None:
    code, answer = call(eoffice, "sendStatus", soap("sendStatus", "s-1", edxml(status(), store)))
    assert code == 200 and answer["status"] == "OK"
    [filed] = eoffice.received
    assert filed.as_json()["statusCode"] == "03" and filed.document_id == DOCUMENT_ID


def test_wsdl_is_served_with_its_own_address(eoffice: EofficeSimulator) -> None:
    response = httpx.get(f"{eoffice.url}/soap?wsdl")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    ns = {"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    assert root.find(".//soap:address", ns).get("location") == f"{eoffice.url}/soap"


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        (soap("sendDocument", "m", b"x")[:-20], "not well-formed"),
        (b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "DOCTYPE"),
        (b"<Envelope/>", "not a SOAP 1.1 envelope"),
        (soap("sendDocument", "m", "!!!not base64!!!"), "not base64"),
        (soap("sendDocument", "m", "QUJD" + "Q"), "truncated"),
        (soap("sendDocument", "m", b"x").replace(b"<e:from>", b"<e:sender/><e:from>"), "sender"),
        (soap("sendDocument", "m", b"x").replace(b"<e:messageId>m</e:messageId>", b""), "lacks"),
        (soap("sendStatus", "m", b"x"), "SOAPAction"),  # sent with sendDocument's action
        (
            soap("sendDocument", "m", b"x").replace(
                b"<s:Body>", b"<s:Header>" + b"<h>" * 40 + b"</h>" * 40 + b"</s:Header><s:Body>"
            ),
            "nested deeper",
        ),
    ],
)
def test_bad_requests_get_a_client_fault(
    eoffice: EofficeSimulator, body: bytes, fault: str
) -> None:
    code, answer = call(eoffice, "sendDocument", body)
    assert code == 500 and answer["faultcode"] == "soap-env:Client"
    assert fault in answer["faultstring"]
    assert eoffice.received == [] and eoffice.blobs.pending() == []
    assert list(eoffice.blobs.keys()) == []


@pytest.mark.parametrize(
    ("operation", "package", "error"),
    [
        ("sendDocument", b"<edXML/>", "EDXML_INVALID"),
        ("sendDocument", "status", "WRONG_OPERATION"),
        ("sendDocument", "elsewhere", "NOT_RECIPIENT"),
    ],
)
def test_unfit_packages_are_answered_fail(
    eoffice: EofficeSimulator, store: FileBlobStore, operation: str, package: Any, error: str
) -> None:
    if package == "status":
        package = edxml(status(), store)
    elif package == "elsewhere":
        package = edxml(document(to="000.00.13.H29"), store)
    code, answer = call(eoffice, operation, soap(operation, "m-1", package))
    assert code == 200 and answer["status"] == "FAIL" and answer["errorCode"] == error
    assert answer["errorDesc"] and eoffice.received == [] and eoffice.stats()["refused"] == 1


def test_misbehaves_as_told_through_the_control_api(
    eoffice: EofficeSimulator, store: FileBlobStore
) -> None:
    body = soap("sendDocument", "m-1", edxml(document(), store))
    httpx.post(f"{eoffice.url}/_eoffice/respond", json={"fail_next": 2})
    statuses = [httpx.post(f"{eoffice.url}/soap", content=body).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    httpx.post(f"{eoffice.url}/_eoffice/respond", json={"fault": "server"})
    assert call(eoffice, "sendDocument", body)[1]["faultcode"] == "soap-env:Server"
    refused = httpx.post(f"{eoffice.url}/_eoffice/respond", json={"fault": "maybe"})
    assert refused.status_code == 400
    stats = eoffice.stats()
    assert (stats["unavailable"], stats["faults"], stats["received"]) == (2, 1, 1)


# Statuses through the hub -------------------------------------------------------------


def _status_sent(hub: RecordingSink, store: FileBlobStore) -> StatusPackage:
    """The status package the hub received, checked against the axis contract."""
    [request] = hub.received
    assert request.path == "/api/v1/edoc/sendEdoc"
    assert request.headers["authorization"] == "Bearer k"
    assert request.headers["from"] == ORGAN
    assert request.headers["messagetype"] == "status"
    assert request.headers["hash-file"] == hashlib.sha256(request.body).hexdigest()
    package = parse(request.body, store, max_bytes=1 << 20)
    assert isinstance(package, StatusPackage)
    return package


def test_status_goes_to_the_hub(
    eoffice: EofficeSimulator, hub: RecordingSink, store: FileBlobStore
) -> None:
    call(eoffice, "sendDocument", soap("sendDocument", "m-1", edxml(document(), store)))
    spec = {"docId": DOCUMENT_ID, "code": "03", "description": "Vào sổ văn bản đến"}
    response = httpx.post(f"{eoffice.url}/_eoffice/status", json=spec, timeout=10)
    assert response.status_code == 200 and response.json()["DocId"] == "hub-42"
    package = _status_sent(hub, store)
    assert package.status_code == "03" and package.description == "Vào sổ văn bản đến"
    assert package.from_.organ_id == ORGAN and package.from_.organ_name == "Sở Tư pháp"
    assert package.response_for is not None
    assert package.response_for.document_id == DOCUMENT_ID
    assert package.response_for.organ_id == SENDER
    assert package.response_for.code == "125/UBND-VP"
    assert eoffice.stats()["statuses_sent"] == 1


def test_auto_status_01_after_each_new_document(
    tmp_path: Path, hub: RecordingSink, store: FileBlobStore
) -> None:
    eo = EofficeSimulator(ORGAN, directory=tmp_path / "eo", hub=hub.url, key="k", auto_status="01")
    with eo:
        body = soap("sendDocument", "m-1", edxml(document(), store))
        call(eo, "sendDocument", body)
        call(eo, "sendDocument", body)  # a repeat: no second status
        wait_until(lambda: eo.sent, timeout=10)
    package = _status_sent(hub, store)
    assert package.status_code == "01" and package.description == "Đã đến"
    assert package.response_for is not None and package.response_for.document_id == DOCUMENT_ID


def test_status_errors(eoffice: EofficeSimulator, hub: RecordingSink, store: FileBlobStore) -> None:
    url = f"{eoffice.url}/_eoffice/status"
    assert httpx.post(url, json={"docId": "nope", "code": "03"}).status_code == 404
    assert httpx.post(url, json={"code": "03"}).status_code == 400
    call(eoffice, "sendDocument", soap("sendDocument", "m-1", edxml(document(), store)))
    hub.stop()
    response = httpx.post(url, json={"docId": DOCUMENT_ID, "code": "03"}, timeout=15)
    assert response.status_code == 502 and response.json()["ErrorCode"] == "HUB_UNREACHABLE"
    assert eoffice.stats()["statuses_failed"] == 1


def test_runs_from_the_command_line(tmp_path: Path) -> None:
    port = free_port()
    args = ["--port", str(port), "--organ", ORGAN, "--dir", str(tmp_path), "--fail-next", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.eoffice", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def stats() -> Any:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/_eoffice/stats").json()
            except httpx.TransportError:
                return None

        assert wait_until(stats, timeout=20)["calls"] == 0
        assert httpx.post(f"http://127.0.0.1:{port}/soap", content=b"x").status_code == 503
    finally:
        process.terminate()
        process.wait(10)
