"""The edXML package model (QCVN 102:2016/BTTTT) as plain frozen dataclasses.

A `DocumentPackage` is an official document with its attachments; a
`StatusPackage` is the business status a recipient (or the sender) reports on
one. Codes whose meaning differs between producers (DocumentType.Type,
SteeringType, Paper, Direction) are kept as their text. Attachments are
references to blobs, never their bytes. The Signature block is kept as XML
bytes (its exclusive C14N form), to be copied untouched.

Dates keep the text they were read from (`EdDate.text`, not part of equality)
next to the parsed value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


class BusinessDocType(IntEnum):
    """TraceHeaderList/Bussiness/BussinessDocType: what the package does to the document."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3


@dataclass(frozen=True)
class EdDate:
    """A date or date-time as written in a package, with its parsed value.

    `text` is the original spelling (`2019/01/16`, `16/01/2019 08:00:00`, ISO...);
    equality compares the value only.
    """

    value: date | datetime
    text: str = field(default="", compare=False)

    @classmethod
    def of(cls, value: date | datetime) -> EdDate:
        """An EdDate spelled the standard's way (`yyyy/MM/dd[ HH:mm:ss]`, ISO 8601 if zoned)."""
        return cls(value, format_date(value))


_DATE_FORMATS = (
    (re.compile(r"\d{4}/\d{1,2}/\d{1,2}"), "%Y/%m/%d"),
    (re.compile(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}:\d{2}"), "%Y/%m/%d %H:%M:%S"),
    (re.compile(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}"), "%Y/%m/%d %H:%M"),
    (re.compile(r"\d{1,2}/\d{1,2}/\d{4}"), "%d/%m/%Y"),
    (re.compile(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2}"), "%d/%m/%Y %H:%M:%S"),
    (re.compile(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}"), "%d/%m/%Y %H:%M"),
    (re.compile(r"\d{1,2}-\d{1,2}-\d{4}"), "%d-%m-%Y"),
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(text: str) -> EdDate:
    """Read a date in any of the spellings producers use.

    Raises:
        ValueError: the text is no date this function knows.
    """
    text = text.strip()
    for pattern, fmt in _DATE_FORMATS:
        if pattern.fullmatch(text):
            parsed = datetime.strptime(text, fmt)
            has_time = "%H" in fmt
            return EdDate(parsed if has_time else parsed.date(), text)
    if _ISO_DATE.fullmatch(text):
        return EdDate(date.fromisoformat(text), text)
    try:
        return EdDate(datetime.fromisoformat(text.replace("Z", "+00:00")), text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date") from None


def format_date(value: date | datetime) -> str:
    """The standard's spelling: `yyyy/MM/dd` or `yyyy/MM/dd HH:mm:ss`; ISO 8601 when zoned."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.isoformat()
        return value.strftime("%Y/%m/%d %H:%M:%S")
    return value.strftime("%Y/%m/%d")


@dataclass(frozen=True)
class Organization:
    """From / To: an organisation (OrganId like `000.00.00.G22`)."""

    organ_id: str
    organization_in_charge: str | None = None
    organ_name: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class Code:
    """The document's number and notation (`7816`, `VPCP-TTĐT`)."""

    number: str | None = None
    notation: str | None = None


@dataclass(frozen=True)
class PromulgationInfo:
    place: str | None = None
    date: EdDate | None = None


@dataclass(frozen=True)
class DocumentType:
    """Type values differ between producers: kept as text."""

    type: str | None = None
    type_detail: str | None = None
    type_name: str | None = None


@dataclass(frozen=True)
class SignerInfo:
    competence: str | None = None
    position: str | None = None
    full_name: str | None = None


@dataclass(frozen=True)
class OtherInfo:
    """Priority: 0 normal, 1 urgent, 2 very urgent, 3 express, 4 express at a set time."""

    priority: int | None = None
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: str | None = None
    page_amount: str | None = None
    direction: str | None = None
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseFor:
    """The document a package answers or acts on."""

    organ_id: str | None = None
    code: str | None = None
    promulgation_date: EdDate | None = None
    document_id: str | None = None


@dataclass(frozen=True)
class StaffInfo:
    department: str | None = None
    staff: str | None = None
    email: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class DocumentHeader:
    """MessageHeader of a document package."""

    from_: Organization
    to: tuple[Organization, ...]
    document_id: str
    code: Code | None = None
    promulgation: PromulgationInfo | None = None
    document_type: DocumentType | None = None
    subject: str | None = None
    content: str | None = None
    signer: SignerInfo | None = None
    due_date: EdDate | None = None
    to_places: tuple[str, ...] = ()
    other_info: OtherInfo | None = None
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: str | None = None


@dataclass(frozen=True)
class TraceHeader:
    """One hop the package went through."""

    organ_id: str | None = None
    timestamp: EdDate | None = None


@dataclass(frozen=True)
class Receiver:
    """An update's change to the recipients: receiver_type 0 removed, 1 added."""

    organ_id: str
    receiver_type: int


@dataclass(frozen=True)
class BusinessDocumentInfo:
    """Bussiness/BussinessDocumentInfo of an update (DocumentInfo, DocumentReceiver: flags)."""

    document_info: str | None = None
    document_receiver: str | None = None
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True)
class ReplacementInfo:
    """A replaced document and the organisations it was sent to."""

    document_id: str | None = None
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Business:
    """TraceHeaderList/Bussiness (the standard's spelling)."""

    doc_type: BusinessDocType
    document_id: str | None = None
    reason: str | None = None
    paper: str | None = None
    staff: StaffInfo | None = None
    document_info: BusinessDocumentInfo | None = None
    replacements: tuple[ReplacementInfo, ...] = ()


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment: its metadata and the blob holding its decoded bytes."""

    content_id: str
    name: str | None
    description: str | None
    content_type: str | None
    size: int
    sha256: str
    blob: str


@dataclass(frozen=True)
class DocumentPackage:
    """An official document: header, trace, business block, signature, attachments."""

    header: DocumentHeader
    traces: tuple[TraceHeader, ...] = ()
    business: Business | None = None
    signature: bytes | None = None
    attachments: tuple[AttachmentRef, ...] = ()


@dataclass(frozen=True)
class StatusPackage:
    """A status report on a document: StatusCode "01".."16"."""

    from_: Organization
    status_code: str
    response_for: ResponseFor | None = None
    staff: StaffInfo | None = None
    description: str | None = None
    timestamp: EdDate | None = None
    traces: tuple[TraceHeader, ...] = ()
    business: Business | None = None
    signature: bytes | None = None


Package = DocumentPackage | StatusPackage
