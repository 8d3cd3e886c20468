"""Read an edXML package (QCVN 102:2016) from a stream, attachments straight to blobs.

Streaming approach: `lxml.etree.XMLParser(target=...)` fed with 64 KiB chunks
(`parser.feed`), not `iterparse`. With a Python target, libxml2's SAX events
reach `_Target` as they are parsed and no tree is built: text arrives through
`data()` in pieces no bigger than a fed chunk, so the base64 of an attachment
(hundreds of MB in one text node) is decoded as it streams, 4-character groups
carried over between pieces, into a blob writer that hashes and counts it.
`iterparse` would hand the whole text over in `elem.text` at the end event.
The small blocks (MessageHeader, TraceHeaderList, Signature, each manifest
Reference, each Attachment minus its content) are built as throw-away
subtrees with a `TreeBuilder`, turned into the model and dropped; nothing
else is kept, so there is no growing tree to `clear()` and memory stays flat
whatever the package's size. The Signature block is kept as its exclusive
C14N bytes (its content untouched; the target API does not see prefixes).

Protections: the parser never loads a DTD, resolves entities or touches the
network (`resolve_entities=False, no_network=True, load_dtd=False,
huge_tree=False`), and any DOCTYPE at all is refused when it starts (which
refuses entity bombs and external DTDs/entities before anything expands);
undeclared entity references are then well-formedness errors. Also refused:
bytes over `max_bytes` (counted as read), nesting over `max_depth`, anything
but `<` (after a byte order mark) before the XML declaration, declared
encodings other than UTF-8 and UTF-16, more than 8 Mi characters of text
outside attachments, more than 50,000 elements, more than 1,000 attachments,
corrupt base64 and an attachment whose declared SHA-256 differs. Blobs are
committed only when the whole package has been read and checked: a refused
package leaves nothing in the store.

Elements are matched by namespace URI and local name, never by prefix or
position; missing optional blocks are fine. contracts/edxml/DEVIATIONS.md
lists what is tolerated on input.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from io import BytesIO
from typing import Any, BinaryIO, TypeVar

from lxml import etree  # type: ignore[import-untyped]

from hub.connectors.edxml.blobs import BlobStore, BlobWriter
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
    parse_date,
)
from hub.envelope import nfc
from hub.errors import FieldError, Invalid, TooLarge

_T = TypeVar("_T")

CHUNK = 64 * 1024
MAX_TEXT = 8 << 20  # characters kept, all header blocks together
MAX_ELEMENTS = 50_000
MAX_ATTACHMENTS = 1000
_ENCODINGS = {"utf-8", "utf-16"}
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def q(local: str) -> str:
    """The Clark name of a QCVN element."""
    return f"{{{NS}}}{local}"


def parse(
    source: BinaryIO | bytes, blobs: BlobStore, *, max_bytes: int, max_depth: int = 64
) -> Package:
    """Read one edXML package; attachments are decoded into `blobs` as they stream.

    Raises:
        TooLarge: more than `max_bytes` bytes.
        Invalid: not well-formed, hostile (DTD, entities, depth, junk), not an edXML
            package, or a field that cannot be read; `errors` points at it.
    """
    reader = _CountingReader(BytesIO(source) if isinstance(source, bytes) else source, max_bytes)
    with ExitStack() as stack:
        target = _Target(blobs, stack, max_depth)
        _feed(reader, target)
        package = _package(target.blocks)
        if not isinstance(package, DocumentPackage):
            if target.attachments:
                raise _invalid("/edXML/AttachmentEncoded", "a status package has no attachments")
            return package
        pending = _merge_manifest(target.blocks.references, target.attachments)
    # Every check passed and the stack committed the blobs: fill in their keys.
    return replace(package, attachments=tuple(p.ref() for p in pending))


def hardened_parser(target: Any) -> etree.XMLParser:
    """An lxml feed parser for untrusted XML: no entities, DTDs or network; text comes to
    `target` in pieces, so no huge_tree is needed. (DOCTYPE is refused by the targets.)"""
    return etree.XMLParser(
        target=target,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _feed(reader: _CountingReader, target: _Target) -> None:
    parser = hardened_parser(target)
    head = reader.head(1024)
    _check_prolog(head)
    try:
        parser.feed(head)
        while chunk := reader.read(CHUNK):
            parser.feed(chunk)
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise _invalid("", f"not well-formed XML: {exc}") from None
    if not target.seen_root:
        raise _invalid("", "no XML element")


def _invalid(pointer: str, detail: str) -> Invalid:
    return Invalid(f"edXML refused: {detail}", errors=[FieldError(pointer, detail)])


class _CountingReader:
    """Reads the source in chunks and refuses past `max_bytes`."""

    def __init__(self, source: BinaryIO, max_bytes: int) -> None:
        self._source = source
        self._max = max_bytes
        self.count = 0

    def read(self, size: int) -> bytes:
        chunk = self._source.read(size)
        self.count += len(chunk)
        if self.count > self._max:
            raise TooLarge(
                f"edXML package over {self._max} bytes",
                errors=[FieldError("", f"more than {self._max} bytes")],
            )
        return chunk

    def head(self, size: int) -> bytes:
        """At least `size` bytes unless the source ends first."""
        parts, got = [], 0
        while got < size and (chunk := self.read(size - got)):
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)


def _check_prolog(head: bytes) -> None:
    """Refuse junk before the declaration and encodings other than UTF-8/UTF-16."""
    if not head:
        raise _invalid("", "empty body")
    encoding = "utf-8"
    for bom, name in _BOMS:
        if head.startswith(bom):
            head, encoding = head[len(bom) :], name
            break
    else:
        if head[:2] in (b"<\x00", b"\x00<"):
            encoding = "utf-16-le" if head[0] == 0x3C else "utf-16-be"
    if encoding != "utf-8":
        head = head[: len(head) // 2 * 2].decode(encoding, "replace").encode("utf-8", "replace")
    if head.startswith(b"<?xml"):
        declaration = head.split(b"?>", 1)[0]
        found = _DECLARED_ENCODING.search(declaration)
        declared = found.group(1).decode("ascii", "replace").lower() if found else "utf-8"
        if declared not in _ENCODINGS:
            raise _invalid("", f"declared encoding {declared!r}: only UTF-8 and UTF-16 are read")
        return
    if not head.lstrip().startswith(b"<") or head.lstrip().startswith(b"<?xml"):
        raise _invalid("", "junk before the XML declaration")


@dataclass
class _Pending:
    """An attachment read and checked, its blob not yet committed."""

    meta: _AttachmentMeta
    writer: BlobWriter

    def ref(self) -> AttachmentRef:
        assert self.meta.content_id is not None  # _merge_manifest refuses an attachment without
        return AttachmentRef(
            content_id=self.meta.content_id,
            name=self.meta.name,
            description=self.meta.description,
            content_type=self.meta.content_type,
            size=self.writer.size,
            sha256=self.writer.sha256,
            blob=self.writer.close().key,  # already stored by the exit stack: same ref
        )


class _Base64Sink:
    """Decodes base64 text given in pieces into a blob writer, 64 KiB at a time."""

    BATCH = 64 * 1024

    def __init__(self, writer: BlobWriter, label: Callable[[], str]) -> None:
        self._writer = writer
        self._label = label
        self._parts: list[str] = []
        self._pending = 0
        self._rest = ""
        self._padded = False

    def feed(self, text: str) -> None:
        self._parts.append(text)
        self._pending += len(text)
        if self._pending >= self.BATCH:
            self._drain(final=False)

    def finish(self) -> None:
        self._drain(final=True)

    def _drain(self, *, final: bool) -> None:
        compact = self._rest + "".join("".join(self._parts).split())
        self._parts, self._pending = [], 0
        if final:
            if len(compact) % 4 == 1:
                self._corrupt("truncated")
            compact += "=" * (-len(compact) % 4)
            self._rest = ""
        else:
            cut = len(compact) - len(compact) % 4
            compact, self._rest = compact[:cut], compact[cut:]
        if not compact:
            return
        if self._padded:
            self._corrupt("data after the padding")
        try:
            raw = binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            self._corrupt(str(exc))
        self._padded = compact.endswith("=")
        self._writer.write(raw)

    def _corrupt(self, why: str) -> None:
        raise _invalid(
            "/edXML/AttachmentEncoded/Attachment/ContentTransferEncoded",
            f"attachment {self._label()}: corrupt base64 ({why})",
        )


class _Target:
    """The parser target: tracks depth and path, builds small blocks, streams attachments."""

    def __init__(self, blobs: BlobStore, stack: ExitStack, max_depth: int) -> None:
        self.blocks = _Blocks()
        self.attachments: list[_Pending] = []
        self.seen_root = False
        self._blobs = blobs
        self._stack = stack
        self._max_depth = max_depth
        self._path: list[str] = []
        self._elements = 0
        self._text = 0
        self._builder: etree.TreeBuilder | None = None
        self._block_depth = 0
        self._block_path = ""
        self._sink: _Base64Sink | None = None
        self._blob: BlobWriter | None = None
        self._label: dict[str, str] = {}

    # lxml calls these ------------------------------------------------------
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _invalid("", "a DOCTYPE is refused (no DTDs, no entity declarations)")

    def start(self, tag: str, attrib: dict[str, str], nsmap: object = None) -> None:
        self._enter(tag)
        if self._sink is not None:
            raise _invalid(self._pointer(), "ContentTransferEncoded holds base64 text only")
        if self._builder is not None:
            self._builder.start(tag, attrib)
            if tag == q("ContentTransferEncoded") and self._block_path.endswith("/Attachment"):
                self._open_attachment()
        elif self._is_block(tag):
            self._open_block(tag, attrib)
        self._path.append(tag)

    def data(self, text: str) -> None:
        if self._sink is not None:
            self._sink.feed(text)
        elif self._builder is not None:
            self._text += len(text)
            if self._text > MAX_TEXT:
                raise _invalid(self._pointer(), f"header text over {MAX_TEXT} characters")
            self._builder.data(text)

    def end(self, tag: str) -> None:
        self._path.pop()
        if self._builder is not None:
            if self._sink is not None:
                self._sink.finish()
                self._sink = None
            elem = self._builder.end(tag)
            if len(self._path) + 1 == self._block_depth:
                self._close_block(elem)
            elif elem.getparent() is not None and self._block_path.endswith("/Attachment"):
                self._label[etree.QName(elem).localname] = (elem.text or "").strip()

    def close(self) -> None:
        return None

    # ----------------------------------------------------------------------
    def _enter(self, tag: str) -> None:
        if not self.seen_root and tag != q("edXML"):
            raise _invalid("/", f"not an edXML package: root element {tag}")
        self.seen_root = True
        if len(self._path) >= self._max_depth:
            raise _invalid(self._pointer(), f"elements nested deeper than {self._max_depth}")
        self._elements += 1
        if self._elements > MAX_ELEMENTS:
            raise _invalid(self._pointer(), f"more than {MAX_ELEMENTS} elements")

    def _pointer(self) -> str:
        return "/" + "/".join(etree.QName(t).localname for t in self._path)

    def _is_block(self, tag: str) -> bool:
        parent = self._path[-1] if self._path else ""
        if tag in (q("MessageHeader"), q("TraceHeaderList"), q("Signature")):
            return True
        if tag == f"{{{DSIG_NS}}}Signature":
            return True
        return (tag, parent) in (
            (q("Reference"), q("edXMLManifest")),
            (q("Attachment"), q("AttachmentEncoded")),
        )

    def _open_block(self, tag: str, attrib: dict[str, str]) -> None:
        self._builder = etree.TreeBuilder()
        self._block_depth = len(self._path) + 1
        self._block_path = self._pointer() + "/" + etree.QName(tag).localname
        if etree.QName(tag).localname == "Signature":
            # Keep the signature's own namespace as the default one, as producers write it.
            nsmap: dict[str | None, str] = {None: etree.QName(tag).namespace or NS}
        else:
            nsmap = {None: NS}
        self._builder.start(tag, attrib, nsmap)
        self._label = {}

    def _close_block(self, elem: etree._Element) -> None:
        assert self._builder is not None
        self._builder.close()
        self._builder = None
        path, self._block_path = self._block_path, ""
        if path.endswith("/Attachment"):
            self._close_attachment(elem, path)
        else:
            self.blocks.add(elem, path)

    def _open_attachment(self) -> None:
        if self._blob is not None:
            raise _invalid(self._pointer(), "two ContentTransferEncoded in one attachment")
        if len(self.attachments) >= MAX_ATTACHMENTS:
            raise _invalid(self._pointer(), f"more than {MAX_ATTACHMENTS} attachments")
        self._blob = self._stack.enter_context(self._blobs.writer())
        self._sink = _Base64Sink(self._blob, self._attachment_label)

    def _attachment_label(self) -> str:
        name = self._label.get("AttachmentName") or self._label.get("ContentId")
        return repr(name) if name else f"#{len(self.attachments) + 1}"

    def _close_attachment(self, elem: etree._Element, path: str) -> None:
        blob, self._blob = self._blob, None
        label = self._attachment_label()
        if blob is None:
            raise _invalid(path, f"attachment {label} has no ContentTransferEncoded")
        meta = _attachment_meta(elem, path, len(self.attachments) + 1)
        if meta.declared_sha256 and meta.declared_sha256 != blob.sha256:
            raise _invalid(
                path + "/Sha256",
                f"attachment {label}: SHA-256 {blob.sha256} differs from the declared "
                f"{meta.declared_sha256}",
            )
        self.attachments.append(_Pending(meta, blob))


# The blocks, read into the model -------------------------------------------------


@dataclass
class _Blocks:
    """The small blocks of a package as they were read, with where they were."""

    headers: list[tuple[etree._Element, str]] = field(default_factory=list)
    traces: list[tuple[etree._Element, str]] = field(default_factory=list)
    references: list[tuple[etree._Element, str]] = field(default_factory=list)
    signature: bytes | None = None

    def add(self, elem: etree._Element, path: str) -> None:
        name = etree.QName(elem).localname
        if name == "Signature":
            if self.signature is None:
                self.signature = _keep_signature(elem, path)
        elif name == "MessageHeader":
            self.headers.append((elem, path))
        elif name == "TraceHeaderList":
            self.traces.append((elem, path))
        else:
            self.references.append((elem, path))


@dataclass(frozen=True)
class _AttachmentMeta:
    content_id: str | None
    name: str | None
    description: str | None
    content_type: str | None
    declared_sha256: str | None = None


def _keep_signature(elem: etree._Element, path: str) -> bytes:
    """The block as its exclusive C14N bytes: content untouched, prefixes canonical."""
    try:
        return bytes(etree.tostring(elem, method="c14n", exclusive=True))
    except etree.C14NError as exc:
        raise _invalid(path, f"the Signature block cannot be kept: {exc}") from None


def _package(blocks: _Blocks) -> Package:
    if len(blocks.headers) != 1:
        found = "no" if not blocks.headers else "more than one"
        raise _invalid("/edXML/edXMLEnvelope/edXMLHeader/MessageHeader", f"{found} MessageHeader")
    header, path = blocks.headers[0]
    traces, business = _trace_list(*blocks.traces[0]) if blocks.traces else ((), None)
    if header.find(q("StatusCode")) is not None:
        return _status(header, path, traces, business, blocks.signature)
    return DocumentPackage(
        header=_document_header(header, path),
        traces=traces,
        business=business,
        signature=blocks.signature,
    )


def _value(elem: etree._Element | None) -> str | None:
    if elem is None or elem.text is None:
        return None
    text = elem.text.strip()
    return nfc(text) if text else None


def _text(elem: etree._Element | None, *names: str) -> str | None:
    """The stripped NFC text of the first child named so (spellings tried in order)."""
    return _value(_find(elem, *names))


def _find(elem: etree._Element | None, *names: str) -> etree._Element | None:
    if elem is None:
        return None
    for name in names:
        found = elem.find(q(name))
        if found is not None:
            return found
    return None


def _texts(elem: etree._Element | None, name: str) -> tuple[str, ...]:
    if elem is None:
        return ()
    return tuple(v for c in elem.iterfind(q(name)) if (v := _value(c)) is not None)


def _required(value: str | None, pointer: str) -> str:
    if value is None:
        raise _invalid(pointer, f"{pointer.rsplit('/', 1)[-1]} is missing")
    return value


def _date(elem: etree._Element | None, name: str, path: str) -> EdDate | None:
    text = _text(elem, name)
    if text is None:
        return None
    try:
        return parse_date(text)
    except ValueError:
        detail = f"{text!r} is not a date (yyyy/MM/dd[ HH:mm:ss], dd/MM/yyyy, ISO 8601)"
        raise _invalid(f"{path}/{name}", detail) from None


def _code(elem: etree._Element | None, names: tuple[str, ...], path: str, top: int) -> int | None:
    text = _text(elem, *names)
    if text is None:
        return None
    if not re.fullmatch("[0-9]{1,2}", text) or int(text) > top:
        raise _invalid(f"{path}/{names[0]}", f"{text!r} is not a code 0..{top}")
    return int(text)


def _some(obj: _T) -> _T | None:
    """None for a block whose fields are all empty (`<Code/>`)."""
    return obj if any(v not in (None, ()) for v in vars(obj).values()) else None


def _organization(elem: etree._Element, path: str) -> Organization:
    return Organization(
        organ_id=_required(_text(elem, "OrganId"), f"{path}/OrganId"),
        organization_in_charge=_text(elem, "OrganizationInCharge"),
        organ_name=_text(elem, "OrganName"),
        organ_add=_text(elem, "OrganAdd"),
        email=_text(elem, "Email"),
        telephone=_text(elem, "Telephone"),
        fax=_text(elem, "Fax"),
        website=_text(elem, "Website"),
    )


def _from(header: etree._Element, path: str) -> Organization:
    elem = header.find(q("From"))
    if elem is None:
        raise _invalid(f"{path}/From", "From is missing")
    return _organization(elem, f"{path}/From")


def _response_for(elem: etree._Element, path: str) -> ResponseFor:
    return ResponseFor(
        organ_id=_text(elem, "OrganId"),
        code=_text(elem, "Code"),
        promulgation_date=_date(elem, "PromulgationDate", path),
        document_id=_text(elem, "DocumentId"),
    )


def _staff(elem: etree._Element | None) -> StaffInfo | None:
    if elem is None:
        return None
    staff = StaffInfo(
        department=_text(elem, "Department"),
        staff=_text(elem, "Staff"),
        email=_text(elem, "Email"),
        mobile=_text(elem, "Mobile"),
    )
    return _some(staff)


def _document_header(h: etree._Element, path: str) -> DocumentHeader:
    to = tuple(_organization(e, f"{path}/To[{i}]") for i, e in enumerate(h.iterfind(q("To")), 1))
    if not to:
        raise _invalid(f"{path}/To", "a document has at least one To")
    code, prom = h.find(q("Code")), h.find(q("PromulgationInfo"))
    kind, signer, other = h.find(q("DocumentType")), h.find(q("SignerInfo")), h.find(q("OtherInfo"))
    return DocumentHeader(
        from_=_from(h, path),
        to=to,
        document_id=_required(_text(h, "DocumentId"), f"{path}/DocumentId"),
        code=_some(Code(_text(code, "CodeNumber"), _text(code, "CodeNotation"))),
        promulgation=_some(
            PromulgationInfo(
                _text(prom, "Place"), _date(prom, "PromulgationDate", f"{path}/PromulgationInfo")
            )
        ),
        document_type=_some(
            DocumentType(_text(kind, "Type"), _text(kind, "TypeDetail"), _text(kind, "TypeName"))
        ),
        subject=_text(h, "Subject"),
        content=_text(h, "Content"),
        signer=_some(
            SignerInfo(
                _text(signer, "Competence"), _text(signer, "Position"), _text(signer, "FullName")
            )
        ),
        due_date=_date(h, "DueDate", path),
        to_places=_texts(h.find(q("ToPlaces")), "Place"),
        other_info=_other_info(other, f"{path}/OtherInfo"),
        response_for=tuple(
            _response_for(e, f"{path}/ResponseFor[{i}]")
            for i, e in enumerate(h.iterfind(q("ResponseFor")), 1)
        ),
        steering_type=_text(h, "SteeringType"),
    )


def _other_info(elem: etree._Element | None, path: str) -> OtherInfo | None:
    if elem is None:
        return None
    other = OtherInfo(
        priority=_code(elem, ("Priority",), path, 4),
        sphere_of_promulgation=_text(elem, "SphereOfPromulgation"),
        typer_notation=_text(elem, "TyperNotation"),
        promulgation_amount=_text(elem, "PromulgationAmount"),
        page_amount=_text(elem, "PageAmount"),
        direction=_text(elem, "Direction"),
        appendixes=_texts(elem.find(q("Appendixes")), "Appendix"),
    )
    return _some(other)


def _status(
    h: etree._Element,
    path: str,
    traces: tuple[TraceHeader, ...],
    business: Business | None,
    signature: bytes | None,
) -> StatusPackage:
    code = _required(_text(h, "StatusCode"), f"{path}/StatusCode")
    if not re.fullmatch("0[1-9]|1[0-6]", code):
        raise _invalid(f"{path}/StatusCode", f"{code!r} is not a status code 01..16")
    response = h.find(q("ResponseFor"))
    return StatusPackage(
        from_=_from(h, path),
        status_code=code,
        response_for=None if response is None else _response_for(response, f"{path}/ResponseFor"),
        staff=_staff(h.find(q("StaffInfo"))),
        description=_text(h, "Description"),
        timestamp=_date(h, "Timestamp", path),
        traces=traces,
        business=business,
        signature=signature,
    )


def _trace_list(elem: etree._Element, path: str) -> tuple[tuple[TraceHeader, ...], Business | None]:
    traces = tuple(
        TraceHeader(_text(t, "OrganId"), _date(t, "Timestamp", f"{path}/TraceHeader[{i}]"))
        for i, t in enumerate(elem.iterfind(q("TraceHeader")), 1)
    )
    business = _find(elem, "Bussiness", "Business")
    return traces, None if business is None else _business(business, f"{path}/Bussiness")


def _business(b: etree._Element, path: str) -> Business:
    doc_type = _code(b, ("BussinessDocType", "BusinessDocType"), path, 3)
    if doc_type is None:
        raise _invalid(f"{path}/BussinessDocType", "BussinessDocType is missing")
    info = _find(b, "BussinessDocumentInfo", "BusinessDocumentInfo")
    replaced = b.iterfind(f"{q('ReplacementInfoList')}/{q('ReplacementInfo')}")
    return Business(
        doc_type=BusinessDocType(doc_type),
        document_id=_text(b, "DocumentId"),
        reason=_text(b, "BussinessDocReason", "BusinessDocReason"),
        paper=_text(b, "Paper"),
        staff=_staff(b.find(q("StaffInfo"))),
        document_info=None if info is None else _document_info(info, path),
        replacements=tuple(
            ReplacementInfo(_text(r, "DocumentId"), _texts(r.find(q("OrganIdList")), "OrganId"))
            for r in replaced
        ),
    )


def _document_info(info: etree._Element, path: str) -> BusinessDocumentInfo:
    where = f"{path}/BussinessDocumentInfo/ReceiverList/Receiver"
    receivers = info.iterfind(f"{q('ReceiverList')}/{q('Receiver')}")
    return BusinessDocumentInfo(
        document_info=_text(info, "DocumentInfo"),
        document_receiver=_text(info, "DocumentReceiver"),
        receivers=tuple(
            Receiver(
                organ_id=_required(_text(r, "OrganId"), f"{where}[{i}]/OrganId"),
                receiver_type=_receiver_type(r, f"{where}[{i}]"),
            )
            for i, r in enumerate(receivers, 1)
        ),
    )


def _receiver_type(elem: etree._Element, path: str) -> int:
    kind = _code(elem, ("ReceiverType",), path, 1)
    if kind is None:
        raise _invalid(f"{path}/ReceiverType", "ReceiverType is missing")
    return kind


def _attachment_meta(elem: etree._Element, path: str, index: int) -> _AttachmentMeta:
    declared = _text(elem, "Sha256")
    if declared is not None:
        declared = _hex_digest(declared, f"{path}/Sha256")
    return _AttachmentMeta(
        content_id=_text(elem, "ContentId"),
        name=_text(elem, "AttachmentName"),
        description=_text(elem, "Description"),
        content_type=_text(elem, "ContentType"),
        declared_sha256=declared,
    )


def _hex_digest(text: str, pointer: str) -> str:
    """A declared SHA-256 as lowercase hex (written as hex or base64)."""
    if re.fullmatch("[0-9a-fA-F]{64}", text):
        return text.lower()
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise _invalid(pointer, f"{text!r} is not a SHA-256 (hex or base64)")
    return raw.hex()


def _merge_manifest(
    references: list[tuple[etree._Element, str]], pending: list[_Pending]
) -> list[_Pending]:
    """Attachments completed from their manifest Reference; each side must match the other."""
    listed: dict[str, etree._Element] = {}
    for elem, path in references:
        cid = _required(_text(elem, "ContentId"), f"{path}/ContentId")
        if cid in listed:
            raise _invalid(f"{path}/ContentId", f"the manifest lists {cid!r} twice")
        listed[cid] = elem
    merged, seen = [], set()
    for i, item in enumerate(pending, 1):
        where = f"/edXML/AttachmentEncoded/Attachment[{i}]/ContentId"
        cid = _required(item.meta.content_id, where)
        if cid in seen:
            raise _invalid(where, f"two attachments carry {cid!r}")
        seen.add(cid)
        merged.append(replace(item, meta=_completed(item.meta, listed.get(cid))))
    for cid in listed.keys() - seen:
        raise _invalid("/edXML/AttachmentEncoded", f"the manifest lists {cid!r}: no attachment")
    return merged


def _completed(meta: _AttachmentMeta, ref: etree._Element | None) -> _AttachmentMeta:
    return replace(
        meta,
        name=meta.name or _text(ref, "AttachmentName"),
        description=meta.description or _text(ref, "Description"),
        content_type=meta.content_type or _text(ref, "ContentType"),
    )
