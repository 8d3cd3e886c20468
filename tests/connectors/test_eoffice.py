"""EofficeConnector against the reference e-office on a real socket: SOAP push of edXML.

Packages come from the shared VPCP SDK samples (../shared/reference/edxml, skipped
when absent) and from the project's own builder, so the suite runs without them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from adapters.eoffice import EofficeSimulator
from hub.config import RetryPolicy, System
from hub.connectors.base import Receipt
from hub.connectors.edxml import (
    SENT,
    STATUS,
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
    document_event,
    parse,
    status_event,
)
from hub.connectors.edxml.model import Code, PromulgationInfo, ResponseFor, StaffInfo
from hub.connectors.eoffice import EofficeConnector
from hub.errors import Rejected, Transient
from tests.conftest import REPO
from tests.support import wait_until

SAMPLES = REPO.parent / "shared" / "reference" / "edxml" / "vpcp-sdk-samples"
SENDER = "000.00.00.H29"
ORGAN = "000.00.12.H29"
DOCUMENT_ID = "000.00.00.H29,2024/03/14,125/UBND-VP"


# Packages and events ------------------------------------------------------------------


def attachment(store: FileBlobStore, cid: str, name: str, content: bytes) -> AttachmentRef:
    """An attachment whose bytes are put in `store`."""
    with store.writer() as w:
        w.write(content)
    assert w.ref is not None
    return AttachmentRef(
        cid, name, f"Tệp {name}", "application/pdf", w.ref.size, w.ref.sha256, w.ref.key
    )


def document(*attachments: AttachmentRef, to: str = ORGAN) -> DocumentPackage:
    """A document from the city People's Committee to `to`, made with the project's model."""
    header = DocumentHeader(
        from_=Organization(SENDER, organ_name="UBND Thành phố Hồ Chí Minh"),
        to=(Organization(to, organ_name="Sở Tư pháp"),),
        document_id=DOCUMENT_ID,
        code=Code("125", "UBND-VP"),
        promulgation=PromulgationInfo("TP. Hồ Chí Minh", EdDate.of(date(2024, 3, 14))),
        subject="V/v triển khai kết nối liên thông",
    )
    business = Business(BusinessDocType.NEW, reason="Văn bản mới", paper="0")
    return DocumentPackage(header=header, business=business, attachments=attachments)


def status(code: str = "03") -> StatusPackage:
    return StatusPackage(
        from_=Organization(ORGAN, organ_name="Sở Tư pháp"),
        status_code=code,
        response_for=ResponseFor(SENDER, "125/UBND-VP", EdDate.of(date(2024, 3, 14)), DOCUMENT_ID),
        staff=StaffInfo("Văn thư", "Trần Văn A"),
        description="Đã tiếp nhận, vào sổ",
        timestamp=EdDate.of(datetime(2024, 3, 15, 9, 0, 0)),
    )


def event(
    package: DocumentPackage | StatusPackage, id: str, source: str = SENDER
) -> dict[str, Any]:
    """The canonical event the router hands to delivery."""
    if isinstance(package, StatusPackage):
        kind, data = STATUS, status_event(package)
    else:
        kind, data = SENT, document_event(package)
    return {"specversion": "1.0", "id": id, "source": f"{source}:qlvb", "type": kind, "data": data}


def system(endpoint: str | None, *, organ: str = ORGAN, timeout: float = 5.0) -> System:
    return System(
        id=f"{organ}:qlvb",
        name="Sở Tư pháp",
        kind="edxml",
        endpoint=endpoint,
        api_key=None,
        may_send=(),
        may_receive=("vn.lgsp.document.*",),
        retry=RetryPolicy(),
        timeout=timeout,
    )


def deliver(store: FileBlobStore, ev: dict[str, Any], target: System) -> Receipt:
    """One delivery with a fresh connector, closed after."""

    async def run() -> Receipt:
        connector = EofficeConnector(store)
        try:
            return await connector.deliver(json.dumps(ev).encode(), ev, target)
        finally:
            await connector.close()

    return asyncio.run(run())


# Fixtures -----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "hub-blobs")


@pytest.fixture
def eoffice(tmp_path: Path) -> Iterator[EofficeSimulator]:
    with EofficeSimulator(ORGAN, name="Sở Tư pháp", directory=tmp_path / "eoffice") as running:
        yield running


# Delivery -----------------------------------------------------------------------------


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"the shared edXML samples are not at {SAMPLES}")
def test_sdk_sample_is_delivered(store: FileBlobStore, tmp_path: Path, unique: str) -> None:
    with (SAMPLES / "edoc_new.edxml").open("rb") as f:
        package = parse(f, store, max_bytes=10 << 20)
    assert isinstance(package, DocumentPackage)
    organ = package.header.to[0].organ_id
    with EofficeSimulator(organ, directory=tmp_path / "eo") as eo:
        receipt = deliver(store, event(package, unique), system(f"{eo.url}/soap", organ=organ))
        [got] = eo.received
    assert receipt.status_code == 200 and got.doc_id in receipt.detail
    assert receipt.extra["docId"] == got.doc_id
    assert got.document_id == package.header.document_id and got.message_id == unique
    assert isinstance(got.package, DocumentPackage)
    sent = [(a.name, a.size, a.sha256) for a in package.attachments]
    assert [(a.name, a.size, a.sha256) for a in got.package.attachments] == sent
    assert got.package.header == package.header


def test_built_document_is_delivered_once(
    store: FileBlobStore, eoffice: EofficeSimulator, unique: str
) -> None:
    first = attachment(store, "cid:1", "quyet-dinh.pdf", b"%PDF-1.7 " * 5000)
    second = attachment(store, "cid:2", "phu-luc.pdf", bytes(range(256)) * 301)
    package = document(first, second)
    target = system(f"{eoffice.url}/soap")
    receipt = deliver(store, event(package, unique), target)
    again = deliver(store, event(package, unique), target)  # a redelivery: same message id
    [got] = eoffice.received
    assert (
        got.document_id == DOCUMENT_ID and got.sender == SENDER and got.operation == "sendDocument"
    )
    assert receipt.extra["docId"] == again.extra["docId"] == got.doc_id
    assert isinstance(got.package, DocumentPackage)
    assert [a.sha256 for a in got.package.attachments] == [first.sha256, second.sha256]
    with eoffice.blobs.open(got.package.attachments[1].blob) as f:
        assert f.read() == bytes(range(256)) * 301
    stats = eoffice.stats()
    assert stats["calls"] == 2 and stats["duplicates"] == 1 and stats["documents"] == 1


def test_status_goes_to_send_status(
    store: FileBlobStore, eoffice: EofficeSimulator, unique: str
) -> None:
    receipt = deliver(
        store, event(status("03"), unique, source=ORGAN), system(f"{eoffice.url}/soap")
    )
    [got] = eoffice.received
    assert got.operation == "sendStatus" and got.sender == ORGAN and receipt.status_code == 200
    assert isinstance(got.package, StatusPackage)
    assert got.package.status_code == "03" and got.document_id == DOCUMENT_ID


def test_encode_holds_the_same_request(store: FileBlobStore, unique: str) -> None:
    package = document(attachment(store, "cid:1", "a.pdf", b"x" * 100_001))
    request = EofficeConnector(store).encode(b"", event(package, unique), system("http://eo/soap"))
    assert request.headers["SOAPAction"] == '"urn:lgsp:eoffice:v1#sendDocument"'
    root = etree.fromstring(request.body)
    ns = {"e": "urn:lgsp:eoffice:v1"}
    assert root.findtext(".//e:messageId", namespaces=ns) == unique
    assert root.findtext(".//e:from", namespaces=ns) == SENDER
    edxml = base64.b64decode(root.findtext(".//e:edXML", namespaces=ns))
    assert edxml == b"".join(build(package, store))


# Error mapping ------------------------------------------------------------------------


def test_503_is_transient_with_retry_after(
    store: FileBlobStore, eoffice: EofficeSimulator, unique: str
) -> None:
    eoffice.respond(fail_next=1)
    with pytest.raises(Transient, match="HTTP 503") as caught:
        deliver(store, event(document(), unique), system(f"{eoffice.url}/soap"))
    assert caught.value.retry_after == 1.0
    deliver(store, event(document(), unique), system(f"{eoffice.url}/soap"))  # then it works
    assert len(eoffice.received) == 1


@pytest.mark.parametrize(("fault", "error"), [("client", Rejected), ("server", Transient)])
def test_soap_faults(
    store: FileBlobStore, eoffice: EofficeSimulator, unique: str, fault: Any, error: type[Exception]
) -> None:
    eoffice.respond(fault=fault)
    with pytest.raises(error, match=f"SOAP fault soap-env:{fault.title()}"):
        deliver(store, event(document(), unique), system(f"{eoffice.url}/soap"))
    assert eoffice.received == []


def test_fail_answer_is_rejected_with_the_receivers_code(
    store: FileBlobStore, eoffice: EofficeSimulator, unique: str
) -> None:
    package = document(to="000.00.13.H29")  # not this e-office
    with pytest.raises(Rejected, match="sendDocument FAIL NOT_RECIPIENT not addressed to"):
        deliver(store, event(package, unique), system(f"{eoffice.url}/soap"))


def test_connection_refused_is_transient(store: FileBlobStore, eoffice: EofficeSimulator) -> None:
    url = f"{eoffice.url}/soap"
    eoffice.stop()
    with pytest.raises(Transient, match="ConnectError"):
        deliver(store, event(document(), "m-1"), system(url))


def test_silent_receiver_times_out(store: FileBlobStore) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/soap"
        with pytest.raises(Transient, match=r"timed out after 0\.3 s"):
            deliver(store, event(document(), "m-1"), system(url, timeout=0.3))


def test_unbuildable_events_are_rejected(store: FileBlobStore, eoffice: EofficeSimulator) -> None:
    gone = AttachmentRef("cid:1", "a.pdf", None, None, 3, "0" * 64, "0" * 64)
    with pytest.raises(Rejected, match="package not built: no blob 0000"):
        deliver(store, event(document(gone), "m-1"), system(f"{eoffice.url}/soap"))
    bad = event(document(), "m-2")
    del bad["data"]["document_id"]
    with pytest.raises(Rejected, match="document_id"):
        deliver(store, bad, system(f"{eoffice.url}/soap"))
    with pytest.raises(Rejected, match="no endpoint"):
        deliver(store, event(document(), "m-3"), system(None))
    with pytest.raises(Rejected, match="axis API"):
        EofficeConnector(store).decode(b"<edXML/>", sender=system(None))
    assert eoffice.stats()["calls"] == 0


def test_altered_blob_aborts_the_call(
    store: FileBlobStore, eoffice: EofficeSimulator, unique: str
) -> None:
    altered = attachment(store, "cid:1", "a.pdf", b"A" * 300_000)
    store.path(altered.blob).write_bytes(b"B" * 300_000)  # the disk changed under the hub
    with pytest.raises(Rejected, match="does not match the SHA-256"):
        deliver(store, event(document(altered), unique), system(f"{eoffice.url}/soap"))
    wait_until(lambda: eoffice.stats()["aborted"] == 1, timeout=5)
    assert eoffice.received == [] and eoffice.blobs.pending() == []


# Memory -------------------------------------------------------------------------------

_BIG_DELIVERY = textwrap.dedent(
    """
    import asyncio, hashlib, json, os, sys, time, tracemalloc
    from pathlib import Path
    from hub.connectors.eoffice import EofficeConnector
    from hub.connectors.edxml import AttachmentRef, FileBlobStore
    from tests.connectors.test_eoffice import attachment, document, event, system

    url, directory, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    store = FileBlobStore(directory)
    with store.writer() as w:
        block = os.urandom(1 << 20)
        for n in range(size >> 20):
            w.write(hashlib.sha256(str(n).encode()).digest() + block[32:])
    ref = w.ref
    big = AttachmentRef("cid:big", "big.zip", None, None, ref.size, ref.sha256, ref.key)
    small = event(document(), "warm-up")

    async def main():
        connector = EofficeConnector(store)
        target = system(url, timeout=60)
        await connector.deliver(b"", small, target)  # imports, pools, zeep: warm
        # growth = peak RSS during the delivery - RSS before it (the peak is reset first)
        Path("/proc/self/clear_refs").write_text("5")
        status = Path("/proc/self/status").read_text()
        rss = int(status.split("VmRSS:")[1].split()[0])
        tracemalloc.start()
        started = time.perf_counter()
        receipt = await connector.deliver(b"", event(document(big), "big-one"), target)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        status = Path("/proc/self/status").read_text()
        grown = int(status.split("VmHWM:")[1].split()[0]) - rss
        await connector.close()
        print(json.dumps({"sha256": ref.sha256, "size": ref.size, "rss_before_kib": rss,
                          "rss_growth_kib": grown,
                          "traced_peak": peak, "seconds": seconds, "detail": receipt.detail}))

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_large_package_streams_in_little_memory(eoffice: EofficeSimulator, tmp_path: Path) -> None:
    size = 50 << 20
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _BIG_DELIVERY,
            f"{eoffice.url}/soap",
            str(tmp_path / "big"),
            str(size),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    print(measured)
    got = next(r for r in eoffice.received if r.message_id == "big-one")
    assert isinstance(got.package, DocumentPackage)
    [received] = got.package.attachments
    assert (received.size, received.sha256) == (size, measured["sha256"])
    assert got.package_size > size * 4 // 3  # the whole edXML went through
    # Measured 4-6 MiB of RSS growth and 1.2-1.7 MB traced whether the attachment is
    # 25 or 200 MiB: fixed costs (threads, buffers). Bounds leave room for a busy machine.
    assert measured["rss_growth_kib"] * 1024 < size // 2
    assert measured["traced_peak"] < size // 16
