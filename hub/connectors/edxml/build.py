"""Write a package as edXML (QCVN 102:2016), streamed as byte chunks.

Every element carries the `edXML:` prefix on the QCVN namespace and children
come in the standard's order, so the output validates against
contracts/edxml/edxml.xsd. Attachments are read from the blob store 48 KiB at
a time and written as base64 as they are read; the whole package is never in
memory. The Signature block is copied as kept by the parser.

    with open(path, "wb") as out:
        for chunk in build(package, blobs):
            out.write(chunk)
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

from hub.connectors.edxml.blobs import BlobStore
from hub.connectors.edxml.model import (
    NS,
    AttachmentRef,
    Business,
    DocumentHeader,
    DocumentPackage,
    EdDate,
    Organization,
    OtherInfo,
    Package,
    ResponseFor,
    StaffInfo,
    StatusPackage,
    TraceHeader,
    format_date,
)
from hub.errors import FieldError, Invalid

RAW_CHUNK = 48 * 1024  # a multiple of 3: base64 of each chunk needs no padding
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ORGANIZATION = (
    ("organ_id", "OrganId"),
    ("organization_in_charge", "OrganizationInCharge"),
    ("organ_name", "OrganName"),
    ("organ_add", "OrganAdd"),
    ("email", "Email"),
    ("telephone", "Telephone"),
    ("fax", "Fax"),
    ("website", "Website"),
)
_STAFF = (
    ("department", "Department"),
    ("staff", "Staff"),
    ("email", "Email"),
    ("mobile", "Mobile"),
)

Lines = list[str]


def build(package: Package, blobs: BlobStore) -> Iterator[bytes]:
    """Yield the package as UTF-8 edXML, attachments streamed from `blobs`.

    Raises:
        Invalid: a text holds a character XML 1.0 cannot carry.
        KeyError: an attachment's blob is not in the store.
        ValueError: a blob no longer matches its SHA-256.
    """
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<edXML:edXML xmlns:edXML="{NS}">',
        "  <edXML:edXMLEnvelope>",
        "    <edXML:edXMLHeader>",
        *_message_header(package),
        *_trace_list(package.traces, package.business),
    ]
    yield _encode(head)
    if package.signature:
        yield b"      " + package.signature + b"\n"
    attachments = package.attachments if isinstance(package, DocumentPackage) else ()
    tail = ["    </edXML:edXMLHeader>"]
    if isinstance(package, DocumentPackage):
        tail += _manifest(attachments)
    tail.append("  </edXML:edXMLEnvelope>")
    yield _encode(tail)
    if attachments:
        yield _encode(["  <edXML:AttachmentEncoded>"])
        for attachment in attachments:
            yield from _attachment(attachment, blobs)
        yield _encode(["  </edXML:AttachmentEncoded>"])
    yield _encode(["</edXML:edXML>"])


def _encode(lines: Lines) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def _escape(text: str) -> str:
    bad = _NOT_XML.search(text)
    if bad:
        detail = f"character U+{ord(bad.group()):04X} cannot be written in XML"
        raise Invalid(f"edXML not written: {detail}", errors=[FieldError("", detail)])
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;")


def _leaf(name: str, value: str | int | EdDate | None, depth: int) -> Lines:
    if value is None:
        return []
    if isinstance(value, EdDate):
        value = format_date(value.value)
    return [f"{'  ' * depth}<edXML:{name}>{_escape(str(value))}</edXML:{name}>"]


def _node(name: str, depth: int, children: Lines, *, keep_empty: bool = False) -> Lines:
    if not children and not keep_empty:
        return []
    pad = "  " * depth
    if not children:
        return [f"{pad}<edXML:{name}/>"]
    return [f"{pad}<edXML:{name}>", *children, f"{pad}</edXML:{name}>"]


def _leaves(obj: Any, names: tuple[tuple[str, str], ...], depth: int) -> Lines:
    return [line for attr, name in names for line in _leaf(name, getattr(obj, attr), depth)]


def _organization(name: str, org: Organization, depth: int) -> Lines:
    return _node(name, depth, _leaves(org, _ORGANIZATION, depth + 1))


def _staff(staff: StaffInfo | None, depth: int) -> Lines:
    return [] if staff is None else _node("StaffInfo", depth, _leaves(staff, _STAFF, depth + 1))


def _response_for(response: ResponseFor, depth: int) -> Lines:
    names = (
        ("organ_id", "OrganId"),
        ("code", "Code"),
        ("promulgation_date", "PromulgationDate"),
        ("document_id", "DocumentId"),
    )
    return _node("ResponseFor", depth, _leaves(response, names, depth + 1), keep_empty=True)


def _message_header(package: Package) -> Lines:
    if isinstance(package, StatusPackage):
        body = _status_header(package)
    else:
        body = _document_header(package.header)
    return _node("MessageHeader", 3, body)


def _status_header(s: StatusPackage) -> Lines:
    return [
        *_organization("From", s.from_, 4),
        *([] if s.response_for is None else _response_for(s.response_for, 4)),
        *_staff(s.staff, 4),
        *_leaf("StatusCode", s.status_code, 4),
        *_leaf("Description", s.description, 4),
        *_leaf("Timestamp", s.timestamp, 4),
    ]


def _document_header(h: DocumentHeader) -> Lines:
    code, prom, kind, signer = h.code, h.promulgation, h.document_type, h.signer
    return [
        *_organization("From", h.from_, 4),
        *[line for to in h.to for line in _organization("To", to, 4)],
        *_leaf("DocumentId", h.document_id, 4),
        *_group("Code", code, (("number", "CodeNumber"), ("notation", "CodeNotation"))),
        *_group("PromulgationInfo", prom, (("place", "Place"), ("date", "PromulgationDate"))),
        *_group(
            "DocumentType",
            kind,
            (("type", "Type"), ("type_detail", "TypeDetail"), ("type_name", "TypeName")),
        ),
        *_leaf("Subject", h.subject, 4),
        *_leaf("Content", h.content, 4),
        *_group(
            "SignerInfo",
            signer,
            (("competence", "Competence"), ("position", "Position"), ("full_name", "FullName")),
        ),
        *_leaf("DueDate", h.due_date, 4),
        *_node("ToPlaces", 4, [line for p in h.to_places for line in _leaf("Place", p, 5)]),
        *_other_info(h.other_info),
        *[line for r in h.response_for for line in _response_for(r, 4)],
        *_leaf("SteeringType", h.steering_type, 4),
    ]


def _group(name: str, obj: Any, names: tuple[tuple[str, str], ...]) -> Lines:
    """A MessageHeader child made of leaves, omitted when absent."""
    return [] if obj is None else _node(name, 4, _leaves(obj, names, 5))


def _other_info(other: OtherInfo | None) -> Lines:
    if other is None:
        return []
    names = (
        ("priority", "Priority"),
        ("sphere_of_promulgation", "SphereOfPromulgation"),
        ("typer_notation", "TyperNotation"),
        ("promulgation_amount", "PromulgationAmount"),
        ("page_amount", "PageAmount"),
        ("direction", "Direction"),
    )
    appendixes = [line for a in other.appendixes for line in _leaf("Appendix", a, 6)]
    return _node("OtherInfo", 4, _leaves(other, names, 5) + _node("Appendixes", 5, appendixes))


def _trace_list(traces: tuple[TraceHeader, ...], business: Business | None) -> Lines:
    hops = [
        line
        for t in traces
        for line in _node(
            "TraceHeader",
            4,
            _leaf("OrganId", t.organ_id, 5) + _leaf("Timestamp", t.timestamp, 5),
            keep_empty=True,
        )
    ]
    return _node("TraceHeaderList", 3, hops + _business(business))


def _business(b: Business | None) -> Lines:
    if b is None:
        return []
    children = [
        *_leaf("DocumentId", b.document_id, 5),
        *_leaf("BussinessDocType", int(b.doc_type), 5),
        *_leaf("BussinessDocReason", b.reason, 5),
        *_leaf("Paper", b.paper, 5),
    ]
    if b.document_info is not None:
        info = b.document_info
        receivers = [
            line
            for r in info.receivers
            for line in _node(
                "Receiver",
                7,
                _leaf("OrganId", r.organ_id, 8) + _leaf("ReceiverType", r.receiver_type, 8),
            )
        ]
        children += _node(
            "BussinessDocumentInfo",
            5,
            _leaf("DocumentInfo", info.document_info, 6)
            + _leaf("DocumentReceiver", info.document_receiver, 6)
            + _node("ReceiverList", 6, receivers),
            keep_empty=True,
        )
    replaced = [
        line
        for r in b.replacements
        for line in _node(
            "ReplacementInfo",
            6,
            _leaf("DocumentId", r.document_id, 7)
            + _node("OrganIdList", 7, [x for o in r.organ_ids for x in _leaf("OrganId", o, 8)]),
            keep_empty=True,
        )
    ]
    children += _node("ReplacementInfoList", 5, replaced)
    children += _staff(b.staff, 5)
    return _node("Bussiness", 4, children)


def _manifest(attachments: tuple[AttachmentRef, ...]) -> Lines:
    references = [
        line
        for a in attachments
        for line in _node(
            "Reference",
            4,
            _leaf("ContentId", a.content_id, 5)
            + _leaf("ContentType", a.content_type, 5)
            + _leaf("Description", a.description, 5)
            + _leaf("AttachmentName", a.name, 5),
        )
    ]
    pad = "    "
    return [
        f"{pad}<edXML:edXMLBody>",
        f'{pad}  <edXML:edXMLManifest version="1.0">',
        *references,
        f"{pad}  </edXML:edXMLManifest>",
        f"{pad}</edXML:edXMLBody>",
    ]


def _attachment(a: AttachmentRef, blobs: BlobStore) -> Iterator[bytes]:
    meta = (
        _leaf("ContentId", a.content_id, 3)
        + _leaf("AttachmentName", a.name, 3)
        + _leaf("Description", a.description, 3)
        + _leaf("ContentType", a.content_type, 3)
    )
    yield _encode(["    <edXML:Attachment>", *meta]) + b"      <edXML:ContentTransferEncoded>"
    yield from _base64(a, blobs)
    yield b"</edXML:ContentTransferEncoded>\n    </edXML:Attachment>\n"


def _base64(a: AttachmentRef, blobs: BlobStore) -> Iterator[bytes]:
    """The blob as base64, checked against the attachment's SHA-256 as it is read."""
    digest, rest = hashlib.sha256(), b""
    with blobs.open(a.blob) as source:
        while chunk := source.read(RAW_CHUNK):
            digest.update(chunk)
            chunk = rest + chunk
            cut = len(chunk) - len(chunk) % 3
            rest = chunk[cut:]
            yield base64.b64encode(chunk[:cut])
    yield base64.b64encode(rest)
    if digest.hexdigest() != a.sha256:
        raise ValueError(f"blob {a.blob} does not match the SHA-256 of attachment {a.content_id}")
