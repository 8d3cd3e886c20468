"""The edXML codec: every SDK sample round-trips, own fixtures, hostile input refused.

The shared samples are read from ../shared/reference/edxml (beside the repo),
never copied here; without them those tests skip with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from lxml import etree  # type: ignore[import-untyped]

from hub.config import builtin_types
from hub.connectors.edxml import (
    NS,
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
    event_data,
    package_from_event,
    parse,
    status_event,
)
from hub.connectors.edxml.model import (
    Code,
    OtherInfo,
    PromulgationInfo,
    ResponseFor,
    StaffInfo,
    TraceHeader,
)
from hub.errors import Invalid, Rejected, TooLarge
from tests.conftest import REPO

REFERENCE = REPO.parent / "shared" / "reference" / "edxml"
SAMPLES = REFERENCE / "vpcp-sdk-samples"
XSD = etree.XMLSchema(etree.parse(str(REPO / "contracts" / "edxml" / "edxml.xsd")))
LIMIT = 10 * 1024 * 1024
NO_SAMPLES = f"the shared edXML samples are not at {SAMPLES}"


def _sample_params() -> list[Any]:
    files = sorted(SAMPLES.glob("*.edxml")) if SAMPLES.is_dir() else []
    return [pytest.param(f, id=f.name) for f in files] or [
        pytest.param(None, marks=pytest.mark.skip(reason=NO_SAMPLES))
    ]


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def _schema_check(kind: str, data: dict[str, Any]) -> None:
    validator = Draft202012Validator(dict(builtin_types()[kind].schema))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, errors
    orjson.dumps(data)  # an event payload is plain JSON


def _xsd_check(xml: bytes) -> None:
    assert XSD.validate(etree.fromstring(xml)), XSD.error_log


def _built(package: DocumentPackage | StatusPackage, store: FileBlobStore) -> bytes:
    return b"".join(build(package, store))


def _round_trip(package: DocumentPackage | StatusPackage, store: FileBlobStore) -> bytes:
    """Package -> event (schema-valid) -> package -> edXML (XSD-valid) -> package: equal."""
    kind, data = event_data(package)
    _schema_check(kind, data)
    assert package_from_event(data) == package
    out = _built(package_from_event(data), store)
    _xsd_check(out)
    assert parse(out, store, max_bytes=LIMIT) == package
    return out


def _empty(store: FileBlobStore) -> bool:
    return not list(store.keys()) and not store.pending()


# The SDK samples ------------------------------------------------------------------


@pytest.mark.parametrize("sample", _sample_params())
def test_sample_round_trips(sample: Path, store: FileBlobStore) -> None:
    with sample.open("rb") as source:
        package = parse(source, store, max_bytes=LIMIT)
    out = _round_trip(package, store)
    if isinstance(package, DocumentPackage):
        expected = _attachment_digests(sample.read_bytes())
        assert [a.sha256 for a in package.attachments] == expected
        assert all(store.exists(a.blob) for a in package.attachments)
        assert package.signature and b"MIIFqTCCBJG" in package.signature
        assert _attachment_digests(out) == expected


def _attachment_digests(xml: bytes) -> list[str]:
    """SHA-256 of each attachment, decoded independently of the codec."""
    tree = etree.fromstring(xml, etree.XMLParser(huge_tree=True))
    texts = tree.iterfind(f".//{{{NS}}}ContentTransferEncoded")
    return [hashlib.sha256(base64.b64decode("".join(t.text.split()))).hexdigest() for t in texts]


def _sample(name: str, store: FileBlobStore) -> DocumentPackage | StatusPackage:
    if not SAMPLES.is_dir():
        pytest.skip(NO_SAMPLES)
    return parse((SAMPLES / name).read_bytes(), store, max_bytes=LIMIT)


def test_sample_business_blocks(store: FileBlobStore) -> None:
    update = _sample("edoc_update.edxml", store)
    replacement = _sample("edoc_replacement.edxml", store)
    revocation = _sample("edoc_revocation.edxml", store)
    assert isinstance(update, DocumentPackage) and update.business
    info = update.business.document_info
    assert info and [(r.organ_id, r.receiver_type) for r in info.receivers] == [
        ("000.00.00.H41", 0),
        ("000.00.00.H14", 1),
    ]
    assert isinstance(replacement, DocumentPackage) and replacement.business
    assert replacement.business.replacements[0].organ_ids == ("000.00.00.H41", "000.00.00.H14")
    assert isinstance(revocation, DocumentPackage)
    data = document_event(revocation)
    assert data["action"] == "revoke"
    assert data["metadata"]["response_for"][0]["document_id"] == (
        "000.00.04.G14,2012/08/06,267/VPCP-TTĐT"
    )
    assert data["metadata"]["promulgation"]["date"] == {"iso": "2018-09-28", "text": "2018/09/28"}


@pytest.mark.parametrize(
    ("name", "code", "meaning"),
    [
        ("status_inbox_01.edxml", "01", "Đã đến"),
        ("status_rejection_02.edxml", "02", "Từ chối tiếp nhận"),
        ("status_finish_06.edxml", "06", "Hoàn thành"),
        ("status_cancellation_13.edxml", "13", "Yêu cầu lấy lại văn bản"),
        ("status_change-rejection_16.edxml", "16", "Từ chối lấy lại, cập nhật văn bản"),
    ],
)
def test_sample_status_codes(name: str, code: str, meaning: str, store: FileBlobStore) -> None:
    package = _sample(name, store)
    assert isinstance(package, StatusPackage)
    data = status_event(package)
    assert (data["status_code"], data["meaning"]["vi"]) == (code, meaning)
    assert data["response_for"]["document_id"] == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert data["timestamp"]["iso"] == "2015-09-20T11:08:36"


# The project's own fixtures, made with the builder ---------------------------------------


def _blob(store: FileBlobStore, content: bytes) -> tuple[str, int, str]:
    with store.writer() as w:
        w.write(content)
    assert w.ref is not None
    return w.ref.key, w.ref.size, w.ref.sha256


def _attachment(store: FileBlobStore, cid: str, name: str, content: bytes) -> AttachmentRef:
    key, size, sha = _blob(store, content)
    return AttachmentRef(cid, name, f"Tệp {name}", "application/pdf", size, sha, key)


def _document(store: FileBlobStore, *attachments: AttachmentRef) -> DocumentPackage:
    sender = Organization("000.00.00.H29", organ_name="UBND Thành phố Hồ Chí Minh")
    header = DocumentHeader(
        from_=sender,
        to=(Organization("000.00.11.H29", organ_name="Sở Tư pháp"), Organization("000.00.12.H29")),
        document_id="000.00.00.H29,2024/03/14,125/UBND-VP",
        code=Code("125", "UBND-VP"),
        promulgation=PromulgationInfo("TP. Hồ Chí Minh", EdDate.of(date(2024, 3, 14))),
        subject="V/v triển khai kết nối liên thông",
        due_date=EdDate.of(datetime(2024, 3, 30, 17, 0)),
        to_places=("Như trên", "Lưu: VT"),
        other_info=OtherInfo(priority=2, appendixes=("Phụ lục I",)),
        response_for=(ResponseFor("000.00.00.G22", "7816/VPCP-TTĐT", None, "x,2015/09/30,1/A"),),
        steering_type="1",
    )
    return DocumentPackage(
        header=header,
        traces=(TraceHeader("000.00.00.H29", EdDate.of(datetime(2024, 3, 14, 8, 30))),),
        business=Business(BusinessDocType.NEW, reason="Văn bản mới", paper="0"),
        attachments=attachments,
    )


def test_document_with_two_attachments(store: FileBlobStore) -> None:
    first = _attachment(store, "cid:1", "quyet-dinh.pdf", b"%PDF-1.7 one" * 1000)
    second = _attachment(store, "cid:2", "phu-luc.pdf", bytes(range(256)) * 333)
    package = _document(store, first, second)
    out = _round_trip(package, store)
    assert out.count(b"<edXML:Attachment>") == 2
    again = parse(out, store, max_bytes=LIMIT)
    assert isinstance(again, DocumentPackage)
    with store.open(again.attachments[1].blob) as f:
        assert f.read() == bytes(range(256)) * 333
    assert sorted(store.keys()) == sorted([first.blob, second.blob])  # stored once each


def _status(code: str = "06") -> StatusPackage:
    return StatusPackage(
        from_=Organization("000.00.11.H29", organ_name="Sở Tư pháp"),
        status_code=code,
        response_for=ResponseFor(
            "000.00.00.H29", "125/UBND-VP", EdDate.of(date(2024, 3, 14)), "x,2024/03/14,125/A"
        ),
        staff=StaffInfo("Văn phòng", "Trần Văn A", "a@tp.gov.vn", "0900000000"),
        description="Đã hoàn thành xử lý",
        timestamp=EdDate.of(datetime(2024, 3, 20, 9, 15, 0)),
    )


def test_status_06(store: FileBlobStore) -> None:
    out = _round_trip(_status("06"), store)
    assert b"<edXML:StatusCode>06</edXML:StatusCode>" in out
    assert status_event(_status("06"))["meaning"] == {"en": "completed", "vi": "Hoàn thành"}


def test_build_streams_attachments_in_chunks(store: FileBlobStore) -> None:
    big = _attachment(store, "cid:big", "big.bin", b"\x00\xff" * 300_000)
    chunks = list(build(_document(store, big), store))
    assert max(len(c) for c in chunks) <= 64 * 1024 + 100
    assert hashlib.sha256(b"".join(chunks)).hexdigest()  # well-formed below
    _xsd_check(b"".join(chunks))


def test_invalid_event_is_refused_with_a_pointer() -> None:
    data = status_event(_status())
    data["status_code"] = "99"
    with pytest.raises(Invalid) as caught:
        package_from_event(data)
    assert caught.value.errors[0].pointer == "/data/status_code"


# What the parser tolerates (contracts/edxml/DEVIATIONS.md) --------------------------------

SHUFFLED = f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="{NS}"><edXMLEnvelope><edXMLHeader>
  <MessageHeader>
    <StatusCode> 03 </StatusCode>
    <Timestamp>14/03/2024 08:05</Timestamp>
    <ResponseFor><DocumentId>d1</DocumentId><PromulgationDate>2024-03-14</PromulgationDate></ResponseFor>
    <From><OrganName>Cafe\u0301</OrganName><OrganId>000.00.11.H29</OrganId><Fax></Fax></From>
    <Extension xmlns="urn:other">ignored</Extension>
  </MessageHeader>
  <TraceHeaderList><Business><BusinessDocType>0</BusinessDocType></Business></TraceHeaderList>
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>
</edXMLHeader></edXMLEnvelope></edXML>"""


def test_tolerated_deviations(store: FileBlobStore) -> None:
    package = parse(SHUFFLED.encode(), store, max_bytes=LIMIT)
    assert isinstance(package, StatusPackage)
    assert package.status_code == "03"
    assert package.from_ == Organization("000.00.11.H29", organ_name="Café")  # NFC, empty Fax
    assert package.timestamp == EdDate(datetime(2024, 3, 14, 8, 5))
    assert package.timestamp and package.timestamp.text == "14/03/2024 08:05"
    assert package.business and package.business.doc_type is BusinessDocType.NEW
    assert package.signature == (
        b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo></SignedInfo></Signature>'
    )
    out = _round_trip(package, store)
    assert b"<edXML:Timestamp>2024/03/14 08:05:00</edXML:Timestamp>" in out
    assert b"<edXML:Bussiness>" in out
    utf16 = SHUFFLED.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert parse(utf16, store, max_bytes=LIMIT) == package


def _one_attachment(content: str, *, extra: str = "", cid: str = "cid:1") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXML xmlns:edXML="{NS}"><edXML:edXMLEnvelope><edXML:edXMLHeader>
<edXML:MessageHeader><edXML:From><edXML:OrganId>A</edXML:OrganId></edXML:From>
<edXML:To><edXML:OrganId>B</edXML:OrganId></edXML:To><edXML:DocumentId>d</edXML:DocumentId>
</edXML:MessageHeader></edXML:edXMLHeader></edXML:edXMLEnvelope>
<edXML:AttachmentEncoded><edXML:Attachment><edXML:ContentId>{cid}</edXML:ContentId>
<edXML:AttachmentName>to-trinh.doc</edXML:AttachmentName>{extra}
<edXML:ContentTransferEncoded>{content}</edXML:ContentTransferEncoded>
</edXML:Attachment></edXML:AttachmentEncoded></edXML:edXML>""".encode()


def test_base64_with_line_breaks_and_no_padding(store: FileBlobStore) -> None:
    raw = b"hello edXML attachment!!" * 100 + b"x"
    text = base64.b64encode(raw).decode().rstrip("=")
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    package = parse(_one_attachment(wrapped), store, max_bytes=LIMIT)
    assert isinstance(package, DocumentPackage)
    assert package.attachments[0].sha256 == hashlib.sha256(raw).hexdigest()
    assert package.attachments[0].size == len(raw)


def test_declared_hash_is_checked(store: FileBlobStore) -> None:
    raw = b"signed scan"
    good = f"<edXML:Sha256>{hashlib.sha256(raw).hexdigest()}</edXML:Sha256>"
    package = parse(
        _one_attachment(base64.b64encode(raw).decode(), extra=good), store, max_bytes=LIMIT
    )
    assert isinstance(package, DocumentPackage) and package.attachments[0].size == len(raw)


def test_missing_fields_and_bad_values_point_at_the_element(store: FileBlobStore) -> None:
    no_id = _one_attachment("QQ==").replace(b"<edXML:DocumentId>d</edXML:DocumentId>", b"")
    with pytest.raises(Invalid) as caught:
        parse(no_id, store, max_bytes=LIMIT)
    assert caught.value.errors[0].pointer.endswith("/MessageHeader/DocumentId")
    bad_date = SHUFFLED.replace("14/03/2024 08:05", "next Tuesday").encode()
    with pytest.raises(Invalid, match="next Tuesday"):
        parse(bad_date, store, max_bytes=LIMIT)
    with pytest.raises(Invalid, match="status code"):
        parse(SHUFFLED.replace(" 03 ", "42").encode(), store, max_bytes=LIMIT)
    assert _empty(store)


# Hostile input: refused, nothing stored, the process fine after ---------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&lol9;</edXML>"""

QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "'
    + b"x" * 50_000
    + b'">]><edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><Subject>'
    + b"&a;" * 20_000
    + b"</Subject></edXML>"
)

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [<!ENTITY passwd SYSTEM "file:///etc/passwd">]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><Subject>&passwd;</Subject></edXML>"""

PLAIN_DOCTYPE = b"""<?xml version="1.0"?>
<!DOCTYPE edXML>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"/>"""

UNDECLARED_ENTITY = b"""<?xml version="1.0"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><Subject>&passwd;</Subject></edXML>"""

DEEP = (
    b'<?xml version="1.0"?><edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    + b"<a>" * 10_000
    + b"</a>" * 10_000
    + b"</edXML>"
)

GOOD_THEN_CORRUPT = _one_attachment(base64.b64encode(b"first, fine").decode()).replace(
    b"</edXML:AttachmentEncoded>",
    b"<edXML:Attachment><edXML:ContentId>cid:2</edXML:ContentId>"
    b"<edXML:AttachmentName>hong.zip</edXML:AttachmentName>"
    b"<edXML:ContentTransferEncoded>UEsDBB*@@@</edXML:ContentTransferEncoded>"
    b"</edXML:Attachment></edXML:AttachmentEncoded>",
)

HOSTILE = [
    pytest.param(BILLION_LAUGHS, Invalid, "DOCTYPE", id="billion-laughs"),
    pytest.param(QUADRATIC, Invalid, "DOCTYPE", id="quadratic-blowup"),
    pytest.param(EXTERNAL_ENTITY, Invalid, "DOCTYPE", id="external-entity-file"),
    pytest.param(PLAIN_DOCTYPE, Invalid, "DOCTYPE", id="doctype-at-all"),
    pytest.param(UNDECLARED_ENTITY, Invalid, "not well-formed.*passwd", id="undeclared-entity"),
    pytest.param(DEEP, Invalid, "deeper than 64", id="depth-10000"),
    pytest.param(b"junk" + PLAIN_DOCTYPE, Invalid, "junk before", id="junk-before-declaration"),
    pytest.param(b"\n" + UNDECLARED_ENTITY, Invalid, "junk before", id="blank-before-declaration"),
    pytest.param(
        UNDECLARED_ENTITY.replace(b'version="1.0"', b'version="1.0" encoding="windows-1258"'),
        Invalid,
        "windows-1258",
        id="legacy-encoding",
    ),
    pytest.param(_one_attachment("UEsDBB*@@@"), Invalid, "'to-trinh.doc': corrupt", id="bad-b64"),
    pytest.param(_one_attachment("QUJD" * 10 + "Q"), Invalid, "truncated", id="cut-base64"),
    pytest.param(GOOD_THEN_CORRUPT, Invalid, "'hong.zip': corrupt base64", id="second-corrupt"),
    pytest.param(
        _one_attachment("QUJD", extra=f"<edXML:Sha256>{'0' * 64}</edXML:Sha256>"),
        Invalid,
        "differs from the declared",
        id="declared-hash-differs",
    ),
    pytest.param(b"<notedxml/>", Invalid, "not an edXML package", id="other-xml"),
    pytest.param(
        SHUFFLED.replace("</MessageHeader>", "<Content>" + "<br/>x" * 60_000 + "</Content>"),
        Invalid,
        "more than 50000 elements",
        id="element-flood",
    ),
    pytest.param(
        SHUFFLED.replace("</MessageHeader>", "<Content>" + "x" * (17 << 19) + "</Content>"),
        Invalid,
        "header text over",
        id="header-text-flood",
    ),
    pytest.param(b"", Invalid, "empty", id="empty"),
]


@pytest.mark.parametrize(("payload", "error", "message"), HOSTILE)
def test_hostile_input_is_refused(
    payload: bytes | str, error: type[Rejected], message: str, store: FileBlobStore
) -> None:
    if isinstance(payload, str):
        payload = payload.encode()
    with pytest.raises(error, match=message) as caught:
        parse(payload, store, max_bytes=LIMIT)
    assert "root:" not in str(caught.value)  # /etc/passwd never read
    assert caught.value.errors
    assert _empty(store)
    _process_is_healthy(store)


def test_external_dtd_over_http_is_never_fetched(store: FileBlobStore) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        payload = (
            f'<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "http://127.0.0.1:{port}/evil.dtd">'
            f'<edXML xmlns="{NS}"/>'
        ).encode()
        with pytest.raises(Invalid, match="DOCTYPE"):
            parse(payload, store, max_bytes=LIMIT)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert _empty(store)
    _process_is_healthy(store)


def test_size_over_the_limit(store: FileBlobStore) -> None:
    payload = _one_attachment(base64.b64encode(b"z" * 100_000).decode())
    with pytest.raises(TooLarge, match="over 50000 bytes"):
        parse(payload, store, max_bytes=50_000)
    assert _empty(store)
    _process_is_healthy(store)


def _process_is_healthy(store: FileBlobStore) -> None:
    """The parser still reads a good package, within the same process."""
    raw = b"still fine"
    package = parse(_one_attachment(base64.b64encode(raw).decode()), store, max_bytes=LIMIT)
    assert isinstance(package, DocumentPackage)
    assert package.attachments[0].sha256 == hashlib.sha256(raw).hexdigest()
    assert re.fullmatch("[0-9a-f]{64}", package.attachments[0].blob)


@pytest.mark.parametrize(
    "signature",
    [
        b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/></edXML:edXMLHeader><x/>',
        b"<Other/>",
        b'<!DOCTYPE x [<!ENTITY a "b">]><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/>',
    ],
)
def test_an_event_cannot_smuggle_xml_in_the_signature(signature: bytes) -> None:
    data = status_event(_status())
    data["signature"] = base64.b64encode(signature).decode()
    with pytest.raises(Invalid) as caught:
        package_from_event(data)
    assert caught.value.errors[0].pointer == "/data/signature"
