"""edXML packages to and from the `data` of canonical events.

- `vn.lgsp.document.sent.v1` (hub/schemas/document.sent.v1.json): a document
  package, `document_event`.
- `vn.lgsp.document.status.v1` (hub/schemas/document.status.v1.json): a status
  package, `status_event`.

`package_from_event` is the inverse of both, so parse -> event -> package ->
build -> parse gives an equal package. Dates travel as `{"iso", "text"}`: the
value in ISO 8601 and the spelling it was read from. Attachments travel as
blob references, the Signature block as the base64 of its kept bytes. Absent
fields are left out, never null.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from hub.connectors.edxml.model import (
    DSIG_NS,
    NS,
    AttachmentRef,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    DocumentHeader,
    DocumentPackage,
    DocumentType,
    EdDate,
    Organization,
    OtherInfo,
    Package,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusPackage,
    TraceHeader,
    format_date,
)
from hub.envelope import nfc
from hub.errors import FieldError, Invalid
from hub.schema import Schema

SENT = "vn.lgsp.document.sent.v1"
STATUS = "vn.lgsp.document.status.v1"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

ACTIONS = {
    BusinessDocType.NEW: "new",
    BusinessDocType.REVOKE: "revoke",
    BusinessDocType.UPDATE: "update",
    BusinessDocType.REPLACE: "replace",
}

# StatusCode -> (English, Vietnamese). Codes 07-12 and 14 have no published meaning.
STATUS_MEANINGS = {
    "01": ("arrived", "Đã đến"),
    "02": ("refused", "Từ chối tiếp nhận"),
    "03": ("accepted and registered", "Đã tiếp nhận, vào sổ"),
    "04": ("assigned for handling", "Phân công xử lý"),
    "05": ("being handled", "Đang xử lý"),
    "06": ("completed", "Hoàn thành"),
    "13": ("the sender asks to take the document back", "Yêu cầu lấy lại văn bản"),
    "15": ("take-back or update agreed", "Đồng ý lấy lại, cập nhật văn bản"),
    "16": ("take-back or update refused", "Từ chối lấy lại, cập nhật văn bản"),
}
UNASSIGNED = ("unassigned code", "Mã chưa được quy định")

# (model attribute, event key) pairs of the flat blocks.
_ORGANIZATION = (
    ("organ_id", "organ_id"),
    ("organization_in_charge", "organization_in_charge"),
    ("organ_name", "name"),
    ("organ_add", "address"),
    ("email", "email"),
    ("telephone", "telephone"),
    ("fax", "fax"),
    ("website", "website"),
)
_STAFF = (
    ("department", "department"),
    ("staff", "staff"),
    ("email", "email"),
    ("mobile", "mobile"),
)
_CODE = (("number", "number"), ("notation", "notation"))
_TYPE = (("type", "type"), ("type_detail", "detail"), ("type_name", "name"))
_SIGNER = (("competence", "competence"), ("position", "position"), ("full_name", "full_name"))
_OTHER = (
    ("sphere_of_promulgation", "sphere_of_promulgation"),
    ("typer_notation", "typer_notation"),
    ("promulgation_amount", "promulgation_amount"),
    ("page_amount", "page_amount"),
    ("direction", "direction"),
    ("appendixes", "appendixes"),
)


# Package -> event --------------------------------------------------------------


def document_event(pkg: DocumentPackage) -> dict[str, Any]:
    """The `data` of a vn.lgsp.document.sent.v1 event."""
    h = pkg.header
    doc_type = pkg.business.doc_type if pkg.business else BusinessDocType.NEW
    data: dict[str, Any] = _compact(
        {
            "action": ACTIONS[doc_type],
            "document_id": h.document_id,
            "sender": _flat(h.from_, _ORGANIZATION),
            "recipients": [_flat(to, _ORGANIZATION) for to in h.to],
            "metadata": _metadata(h),
            "business": _business(pkg.business),
            "trace": [_trace(t) for t in pkg.traces],
            "attachments": [_attachment(a) for a in pkg.attachments],
            "signature": _signature(pkg.signature),
        }
    )
    return data


def status_event(pkg: StatusPackage) -> dict[str, Any]:
    """The `data` of a vn.lgsp.document.status.v1 event."""
    en, vi = STATUS_MEANINGS.get(pkg.status_code, UNASSIGNED)
    data: dict[str, Any] = _compact(
        {
            "status_code": pkg.status_code,
            "meaning": {"en": en, "vi": vi},
            "from": _flat(pkg.from_, _ORGANIZATION),
            "response_for": _response_for(pkg.response_for),
            "staff": _flat(pkg.staff, _STAFF),
            "description": pkg.description,
            "timestamp": _when(pkg.timestamp),
            "trace": [_trace(t) for t in pkg.traces],
            "business": _business(pkg.business),
            "signature": _signature(pkg.signature),
        }
    )
    return data


def event_data(pkg: Package) -> tuple[str, dict[str, Any]]:
    """The event type and `data` of either kind of package."""
    if isinstance(pkg, StatusPackage):
        return STATUS, status_event(pkg)
    return SENT, document_event(pkg)


def _compact(value: Any) -> Any:
    """Drop None, empty lists and empty objects, recursively."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _flat(obj: Any, names: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {key: _plain(getattr(obj, attr)) for attr, key in names}


def _plain(value: Any) -> Any:
    if isinstance(value, EdDate):
        return _when(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _when(value: EdDate | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"iso": value.value.isoformat(), "text": value.text or format_date(value.value)}


def _signature(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def _metadata(h: DocumentHeader) -> dict[str, Any]:
    prom, other = h.promulgation, h.other_info
    return {
        "code": _flat(h.code, _CODE),
        "subject": h.subject,
        "content": h.content,
        "type": _flat(h.document_type, _TYPE),
        "promulgation": None if prom is None else {"place": prom.place, "date": _when(prom.date)},
        "signer": _flat(h.signer, _SIGNER),
        "due_date": _when(h.due_date),
        "priority": None if other is None else other.priority,
        "steering_type": h.steering_type,
        "to_places": list(h.to_places),
        "response_for": [_response_for(r) for r in h.response_for],
        "other_info": _flat(other, _OTHER),
    }


def _response_for(r: ResponseFor | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "document_id": r.document_id,
        "organ_id": r.organ_id,
        "code": r.code,
        "promulgation_date": _when(r.promulgation_date),
    }


def _trace(t: TraceHeader) -> dict[str, Any]:
    return {"organ_id": t.organ_id, "timestamp": _when(t.timestamp)}


def _business(b: Business | None) -> dict[str, Any] | None:
    if b is None:
        return None
    info = b.document_info
    return {
        "action": ACTIONS[b.doc_type],
        "doc_type": int(b.doc_type),
        "document_id": b.document_id,
        "reason": b.reason,
        "paper": b.paper,
        "staff": _flat(b.staff, _STAFF),
        "document_info": None if info is None else _document_info(info),
        "replacements": [
            {"document_id": r.document_id, "organ_ids": list(r.organ_ids)} for r in b.replacements
        ],
    }


def _document_info(info: BusinessDocumentInfo) -> dict[str, Any]:
    receivers = [
        {
            "organ_id": r.organ_id,
            "receiver_type": r.receiver_type,
            "change": "added" if r.receiver_type == 1 else "removed",
        }
        for r in info.receivers
    ]
    return {
        "document_info": info.document_info,
        "document_receiver": info.document_receiver,
        "receivers": receivers,
    }


def _attachment(a: AttachmentRef) -> dict[str, Any]:
    return {
        "content_id": a.content_id,
        "name": a.name,
        "description": a.description,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "blob": a.blob,
    }


# Event -> package --------------------------------------------------------------


def package_from_event(data: dict[str, Any]) -> Package:
    """The package an event's `data` describes (status if it has `status_code`).

    Raises:
        Invalid: `data` fails the event type's JSON Schema; `errors` point at it.
    """
    data = nfc(data)
    kind = STATUS if "status_code" in data else SENT
    _check(kind, data)
    if kind == STATUS:
        return _status_package(data)
    return _document_package(data)


@cache
def validator(kind: str) -> Schema:
    """The compiled JSON Schema of `vn.lgsp.document.sent.v1` or `...status.v1`."""
    name = kind.removeprefix("vn.lgsp.") + ".json"
    return Schema(json.loads((SCHEMAS / name).read_text("utf-8")))


def _check(kind: str, data: dict[str, Any]) -> None:
    errors = validator(kind).errors(data, "/data")
    if errors:
        raise Invalid(f"invalid {kind}: {errors[0].pointer}: {errors[0].detail}", errors=errors)


def _build(cls: Any, data: dict[str, Any] | None, names: tuple[tuple[str, str], ...]) -> Any:
    if data is None:
        return None
    values = {attr: data.get(key) for attr, key in names}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _date(data: dict[str, str] | None) -> EdDate | None:
    if data is None:
        return None
    iso = data["iso"]
    value: date | datetime = (
        date.fromisoformat(iso) if len(iso) == 10 else datetime.fromisoformat(iso)
    )
    return EdDate(value, data.get("text") or format_date(value))


def _organization(data: dict[str, Any]) -> Organization:
    org: Organization = _build(Organization, data, _ORGANIZATION)
    return org


def _document_package(data: dict[str, Any]) -> DocumentPackage:
    m = data.get("metadata", {})
    prom, other = m.get("promulgation"), m.get("other_info")
    header = DocumentHeader(
        from_=_organization(data["sender"]),
        to=tuple(_organization(r) for r in data["recipients"]),
        document_id=data["document_id"],
        code=_build(Code, m.get("code"), _CODE),
        promulgation=None
        if prom is None
        else PromulgationInfo(prom.get("place"), _date(prom.get("date"))),
        document_type=_build(DocumentType, m.get("type"), _TYPE),
        subject=m.get("subject"),
        content=m.get("content"),
        signer=_build(SignerInfo, m.get("signer"), _SIGNER),
        due_date=_date(m.get("due_date")),
        to_places=tuple(m.get("to_places", ())),
        other_info=_other_info(other, m.get("priority")),
        response_for=tuple(_response(r) for r in m.get("response_for", ())),
        steering_type=m.get("steering_type"),
    )
    return DocumentPackage(
        header=header,
        traces=_traces(data),
        business=_business_from(data.get("business")),
        signature=_raw_signature(data),
        attachments=tuple(_attachment_from(a) for a in data.get("attachments", ())),
    )


def _other_info(data: dict[str, Any] | None, priority: int | None) -> OtherInfo | None:
    if data is None and priority is None:
        return None
    other: OtherInfo = _build(OtherInfo, data or {}, _OTHER)
    return OtherInfo(**{**vars(other), "priority": priority, "appendixes": other.appendixes or ()})


def _status_package(data: dict[str, Any]) -> StatusPackage:
    return StatusPackage(
        from_=_organization(data["from"]),
        status_code=data["status_code"],
        response_for=None if "response_for" not in data else _response(data["response_for"]),
        staff=_build(StaffInfo, data.get("staff"), _STAFF),
        description=data.get("description"),
        timestamp=_date(data.get("timestamp")),
        traces=_traces(data),
        business=_business_from(data.get("business")),
        signature=_raw_signature(data),
    )


def _response(data: dict[str, Any]) -> ResponseFor:
    return ResponseFor(
        organ_id=data.get("organ_id"),
        code=data.get("code"),
        promulgation_date=_date(data.get("promulgation_date")),
        document_id=data.get("document_id"),
    )


def _traces(data: dict[str, Any]) -> tuple[TraceHeader, ...]:
    return tuple(
        TraceHeader(t.get("organ_id"), _date(t.get("timestamp"))) for t in data.get("trace", ())
    )


def _raw_signature(data: dict[str, Any]) -> bytes | None:
    """The Signature block, checked to be one well-formed Signature element, then canonical.

    It is copied into the edXML as is, so nothing else may hide in it.
    """
    if "signature" not in data:
        return None
    raw = base64.b64decode(data["signature"])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        if b"<!" in raw:
            raise ValueError("a DOCTYPE, comment or CDATA section")
        root = etree.fromstring(raw, parser)
        if root.tag not in (f"{{{NS}}}Signature", f"{{{DSIG_NS}}}Signature"):
            raise ValueError(f"root element {root.tag}")
        return bytes(etree.tostring(root, method="c14n", exclusive=True))
    except (ValueError, etree.XMLSyntaxError, etree.C14NError) as exc:
        detail = f"not a Signature block: {exc}"
        raise Invalid(
            f"invalid signature: {detail}", errors=[FieldError("/data/signature", detail)]
        ) from None


def _business_from(data: dict[str, Any] | None) -> Business | None:
    if data is None:
        return None
    info = data.get("document_info")
    return Business(
        doc_type=BusinessDocType(data["doc_type"]),
        document_id=data.get("document_id"),
        reason=data.get("reason"),
        paper=data.get("paper"),
        staff=_build(StaffInfo, data.get("staff"), _STAFF),
        document_info=None
        if info is None
        else BusinessDocumentInfo(
            document_info=info.get("document_info"),
            document_receiver=info.get("document_receiver"),
            receivers=tuple(
                Receiver(r["organ_id"], r["receiver_type"]) for r in info.get("receivers", ())
            ),
        ),
        replacements=tuple(
            ReplacementInfo(r.get("document_id"), tuple(r.get("organ_ids", ())))
            for r in data.get("replacements", ())
        ),
    )


def _attachment_from(data: dict[str, Any]) -> AttachmentRef:
    return AttachmentRef(
        content_id=data["content_id"],
        name=data.get("name"),
        description=data.get("description"),
        content_type=data.get("content_type"),
        size=data["size"],
        sha256=data["sha256"],
        blob=data["blob"],
    )
