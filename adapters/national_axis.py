"""Reference national document axis: the Government Office's exchange, simulated.

Speaks the operations of ../shared/reference/STANDARDS.md ("The national
document axis") on a real socket (uvicorn in a background thread,
adapters/serving.py): `sendEdoc`, `getReceivedEdocList`, `getEdoc`,
`updateStatus`, `getSentEdocList`, `getAgenciesList`, `getAgenciesListQD20`,
`countReceiveEdoc`, `countReceiveStatus` (the last four also by GET). Every
call must be signed as the Government Office's SDK signs, checked by
adapters/sdk.py, written from that reference and not from the hub's connector:
the HMAC-SHA256 of `XroadVnpt-sign-header` as received, each member equal to
the header sent beside it, a known `systemid`, a `ddMMyyyy'T'HHmmss+SSSS`
timestamp (Vietnam time) within `window` seconds of the clock (401 and a
FAIL answer otherwise). A sent package must match its `hash-file` (full hex,
or the SDK's per-byte hex without leading zeros; the SDK's body is the file
followed by CRLF) and parse with hub.connectors.edxml.parse (400 FAIL with
the reason otherwise); it gets a DocId and is filed for each `To`
organisation (a status package: for the organisation of its ResponseFor).

Organisations whose level-1 code (the last group, `H29` of `000.00.11.H29`)
is that of a registered system are that system's: it pulls them with
getReceivedEdocList / getEdoc and acknowledges with updateStatus (`done`
removes a package from its list, `fail` marks it failed). Every other
organisation is simulated by the axis: with `auto_status=("01", "03")` it
answers each document sent to it with those status packages, queued for the
sender's system to pull. A repeated `XroadVnpt-messageid` from the same system
is dropped and answered with the first DocId.

    with NationalAxis({"000.00.00.H29": "secret"}, auto_status=("01",)) as axis:
        ...  # point the connector at axis.url
        axis.inject(edxml_bytes)                  # a ministry sends to the city
        axis.received()                           # what the hub sent
        axis.fail_next(2)                         # the next two calls answer 503

Inspection over HTTP: `POST /_axis/inject`, `GET /_axis/received`,
`GET /_axis/stats`. Run it alone with
`python -m adapters.national_axis --port 9002 --system 000.00.00.H29:SECRET`.

The directory of getAgenciesList is small and illustrative: 000.00.00.G22
(the Government Office), 000.00.00.H29 and 000.00.00.H41 come from the
standard's examples, the other codes only look like real ones.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from adapters import sdk
from adapters.serving import JSONResponse, SimulatorServer, wait_for_interrupt
from hub.connectors.edxml import (
    DocumentPackage,
    EdDate,
    FileBlobStore,
    Organization,
    Package,
    StatusPackage,
    build,
    parse,
)
from hub.connectors.edxml.events import STATUS_MEANINGS
from hub.connectors.edxml.model import ResponseFor
from hub.errors import Rejected, TooLarge

VN = sdk.VN
MAX_PACKAGE = 1 << 30
CHUNK = 48 * 1024  # a multiple of 3: the base64 of each chunk needs no padding
DIRECTORY = (
    ("000.00.00.G22", "Văn phòng Chính phủ"),
    ("000.00.00.G03", "Bộ Nội vụ"),
    ("000.00.00.G09", "Bộ Tài chính"),
    ("000.00.00.G12", "Bộ Kế hoạch và Đầu tư"),
    ("000.00.00.G15", "Bộ Thông tin và Truyền thông"),
    ("000.00.00.G17", "Bộ Tư pháp"),
    ("000.00.00.H29", "Ủy ban nhân dân Thành phố Hồ Chí Minh"),
    ("000.00.00.H41", "Ủy ban nhân dân tỉnh Nghệ An"),
    ("000.00.00.H26", "Ủy ban nhân dân Thành phố Hà Nội"),
)


RECEIPT_MEANINGS = {"pending": "waiting to be fetched", "done": "fetched", "fail": "refused"}


class AxisError(Exception):
    """A FAIL answer: HTTP status, ErrorCode, ErrorDesc."""

    def __init__(self, status: int, desc: str) -> None:
        super().__init__(desc)
        self.status, self.desc = status, desc


@dataclass
class Filed:
    """A package on the axis and, per receiving system, its transport status."""

    doc_id: str
    messagetype: str  # edoc | status
    sender: str | None  # the sending system; None when injected or simulated
    from_organ: str
    to: tuple[str, ...]
    path: Path
    size: int
    sha256: str
    document_id: str | None
    status_code: str | None
    message_id: str | None
    title: str | None = None
    notation: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(VN))
    receipts: dict[str, str] = field(default_factory=dict)  # system -> pending|done|fail
    repeats: int = 0

    def listed(self, system: str) -> dict[str, Any]:
        """This package as a getReceivedEdocList item for `system` (the reference's fields;
        `to` is one string, since the SDK reads it with getAsString)."""
        mine = [o for o in self.to if level1(o) == level1(system)]
        status = self.receipts[system]
        return {
            "docId": self.doc_id,
            "serviceType": "eDoc",
            "messageType": self.messagetype,
            "created_time": self.created.isoformat(timespec="seconds"),
            "updated_time": self.created.isoformat(timespec="seconds"),
            "from": self.from_organ,
            "to": mine[0] if mine else "",
            "status": status,
            "status_desc": RECEIPT_MEANINGS.get(status, status),
        }

    def sent(self, owner: Callable[[str], str | None]) -> list[dict[str, Any]]:
        """This package as getSentEdocList items, one per recipient."""
        stamp = self.created.isoformat(timespec="seconds")
        items = []
        for organ in self.to:
            received = self.receipts.get(owner(organ) or "", "done")
            items.append(
                {
                    "senderDocId": self.doc_id,
                    "receiverDocId": self.doc_id,
                    "fromCode": self.from_organ,
                    "toCode": organ,
                    "sendStatus": "done",
                    "sendStatusDesc": RECEIPT_MEANINGS["done"],
                    "receiveStatus": received,
                    "receiveStatusDesc": RECEIPT_MEANINGS.get(received, received),
                    "sentTime": stamp,
                    "receivedTime": stamp if received == "done" else "",
                    "title": self.title or "",
                    "notation": self.notation or "",
                    "serviceType": "eDoc",
                    "messageType": self.messagetype,
                }
            )
        return items

    def as_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "message_id": self.message_id,
            "messagetype": self.messagetype,
            "document_id": self.document_id,
            "status_code": self.status_code,
            "from": self.from_organ,
            "to": list(self.to),
            "size": self.size,
            "sha256": self.sha256,
            "repeats": self.repeats,
            "receipts": dict(self.receipts),
        }


def level1(organ: str) -> str:
    """The level-1 code of an organisation: `H29` of `000.00.11.H29`."""
    return organ.rsplit(".", 1)[-1]


def ok(**fields: Any) -> Response:
    """An OK answer (ErrorCode "0") with `fields`."""
    return JSONResponse({"status": "OK", "ErrorCode": "0", "ErrorDesc": "", **fields})


def fail(status: int, desc: str, headers: Mapping[str, str] | None = None) -> Response:
    """A FAIL answer; ErrorCode is the HTTP status, or "1" for a refusal answered 200."""
    body = {"status": "FAIL", "ErrorCode": "1" if status == 200 else str(status), "ErrorDesc": desc}
    return JSONResponse(body, status, dict(headers or {}))


class NationalAxis(SimulatorServer):
    """The axis on a real socket.

    Args:
        systems: systemid -> secret of the systems that sign in (the city's hub).
        auto_status: StatusCodes the simulated organisations answer each document with.
        directory: where packages and blobs are kept (default: a temp directory).
        port: 0 picks a free port at the first start; later starts reuse it.
        window: seconds a request's timestamp may be off `clock`.
        clock: the axis's time (default: the system clock).
    """

    label = "axis"
    title = "axis"

    def __init__(
        self,
        systems: Mapping[str, str],
        *,
        auto_status: Sequence[str] = (),
        directory: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        window: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(VN),
    ) -> None:
        self.systems = dict(systems)
        self.window, self.clock = window, clock
        self.auto_status = tuple(auto_status)
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="axis-"))
        (self.directory / "docs").mkdir(parents=True, exist_ok=True)
        self.blobs = FileBlobStore(self.directory / "blobs")
        self._lock = threading.RLock()
        self._docs: dict[str, Filed] = {}
        self._by_message: dict[tuple[str, str], str] = {}
        self._counts = {"injected": 0, "auto_status": 0, "auth_refused": 0, "invalid": 0}
        self._fail_next: list[int] = []  # Retry-After seconds (or -1) of each coming 503
        self._refuse_next: list[str] = []
        post, both = ["POST"], ["GET", "POST"]
        app = Starlette(
            routes=[
                Route("/sendEdoc", self._send, methods=post),
                Route("/getReceivedEdocList", self._received_list, methods=post),
                Route("/getEdoc", self._get, methods=post),
                Route("/updateStatus", self._update, methods=post),
                Route("/getSentEdocList", self._sent_list, methods=post),
                Route("/getAgenciesList", self._agencies, methods=both),
                Route("/getAgenciesListQD20", self._agencies, methods=both),
                Route("/countReceiveEdoc", self._count, methods=both),
                Route("/countReceiveStatus", self._count, methods=both),
                Route("/_axis/inject", self._inject_endpoint, methods=post),
                Route("/_axis/received", self._received_endpoint, methods=["GET"]),
                Route("/_axis/stats", self._stats_endpoint, methods=["GET"]),
            ]
        )
        super().__init__(app, host=host, port=port)

    # Running -----------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; what was filed is kept (a temp directory of its own is removed)."""
        super().stop(timeout)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    # Control and inspection ------------------------------------------------------------

    def fail_next(self, times: int, retry_after: int | None = None) -> None:
        """Answer the next `times` calls 503 (with `Retry-After`), whatever they are."""
        with self._lock:
            self._fail_next = [-1 if retry_after is None else retry_after] * times

    def refuse_next(self, desc: str, times: int = 1) -> None:
        """Answer the next `times` sendEdoc calls 200 with a FAIL answer (a business refusal)."""
        with self._lock:
            self._refuse_next = [desc] * times

    def inject(self, raw: bytes) -> str:
        """File a package sent by an organisation the axis simulates; returns its DocId.

        Raises:
            AxisError: the package does not parse (400) or is too large (413).
        """
        path = self._spool(raw)
        package = self._parse(path)
        with self._lock:
            self._counts["injected"] += 1
            return self._file(package, path, sender=None, message_id=None).doc_id

    def received(self) -> list[dict[str, Any]]:
        """What the signed-in systems sent, in arrival order (repeats counted, not listed)."""
        with self._lock:
            return [d.as_json() for d in self._docs.values() if d.sender is not None]

    def pending(self, system: str) -> list[str]:
        """DocIds waiting for `system` to pull."""
        with self._lock:
            return [d.doc_id for d in self._docs.values() if d.receipts.get(system) == "pending"]

    def stats(self) -> dict[str, Any]:
        """Counters as served by `GET /_axis/stats`."""
        with self._lock:
            receipts = [s for d in self._docs.values() for s in d.receipts.values()]
            sent = [d for d in self._docs.values() if d.sender is not None]
            return {
                "received": len(sent),
                "repeats_dropped": sum(d.repeats for d in sent),
                **self._counts,
                "pending": {s: len(self.pending(s)) for s in self.systems},
                "done": receipts.count("done"),
                "failed": receipts.count("fail"),
                "fail_next": len(self._fail_next),
            }

    # Filing ------------------------------------------------------------------------------

    def _owner(self, organ: str) -> str | None:
        """The registered system an organisation's packages go to, None if simulated."""
        return next((s for s in self.systems if level1(s) == level1(organ)), None)

    def _file(
        self, package: Package, path: Path, *, sender: str | None, message_id: str | None
    ) -> Filed:
        """Give a parsed package a DocId and queue it for its recipients (lock held)."""
        doc_id = uuid.uuid4().hex
        target = self.directory / "docs" / f"{doc_id}.edxml"
        path.replace(target)
        size, digest = _measure(target)
        if isinstance(package, StatusPackage):
            respond = package.response_for or ResponseFor()
            messagetype, organ, status_code = "status", package.from_.organ_id, package.status_code
            to: tuple[str, ...] = (respond.organ_id,) if respond.organ_id else ()
            document_id = respond.document_id
        else:
            h = package.header
            messagetype, organ, status_code = "edoc", h.from_.organ_id, None
            to, document_id = tuple(o.organ_id for o in h.to), h.document_id
        doc = Filed(
            doc_id, messagetype, sender, organ, to, target, size, digest, document_id,
            status_code, message_id,
        )  # fmt: skip
        if isinstance(package, DocumentPackage):
            code = package.header.code
            doc.title = package.header.subject
            doc.notation = "/".join(p for p in (code.number, code.notation) if p) if code else None
        for organ in to:
            owner = self._owner(organ)
            # A province's hub sent it: its own organisations have it from the hub already.
            if owner is not None and owner != sender:
                doc.receipts[owner] = "pending"
        self._docs[doc_id] = doc
        if message_id is not None and sender is not None:
            self._by_message[(sender, message_id)] = doc_id
        if isinstance(package, DocumentPackage):
            for organ in to:
                if self._owner(organ) is None:
                    self._answer(package, organ)
        return doc

    def _answer(self, document: DocumentPackage, organ: str) -> None:
        """The status packages a simulated organisation sends back for a document."""
        h = document.header
        code = "/".join(p for p in (h.code.number, h.code.notation) if p) if h.code else None
        names = dict(DIRECTORY)
        for status_code in self.auto_status:
            status = StatusPackage(
                from_=Organization(organ, organ_name=names.get(organ)),
                status_code=status_code,
                response_for=ResponseFor(
                    organ_id=h.from_.organ_id,
                    code=code or None,
                    promulgation_date=h.promulgation.date if h.promulgation else None,
                    document_id=h.document_id,
                ),
                description=STATUS_MEANINGS.get(status_code, ("", ""))[1] or None,
                timestamp=EdDate.of(datetime.now(VN).replace(tzinfo=None, microsecond=0)),
            )
            path = self._spool(b"".join(build(status, self.blobs)))
            self._file(status, path, sender=None, message_id=None)
            self._counts["auto_status"] += 1

    def _spool(self, raw: bytes) -> Path:
        fd, name = tempfile.mkstemp(dir=self.directory, prefix="in-", suffix=".edxml")
        with open(fd, "wb") as out:
            out.write(raw)
        return Path(name)

    def _parse(self, path: Path) -> Package:
        """Parse a spooled package. Raises AxisError (400, 413) with the reason."""
        try:
            with path.open("rb") as source:
                return parse(source, self.blobs, max_bytes=MAX_PACKAGE)
        except TooLarge as exc:
            path.unlink(missing_ok=True)
            raise AxisError(413, exc.detail) from exc
        except Rejected as exc:
            path.unlink(missing_ok=True)
            with self._lock:
                self._counts["invalid"] += 1
            raise AxisError(400, exc.detail) from exc

    # Operations --------------------------------------------------------------------------

    def _caller(self, request: Request) -> tuple[str, dict[str, str]]:
        """The signed-in system and the logical headers. Raises AxisError (503, 401)."""
        with self._lock:
            if self._fail_next:
                wait = self._fail_next.pop(0)
                raise AxisError(503, "simulated outage" if wait < 0 else f"retry:{wait}")
        try:
            return sdk.verify(request.headers, self.systems, self.clock(), self.window)
        except sdk.Refused as exc:
            with self._lock:
                self._counts["auth_refused"] += 1
            raise AxisError(401, str(exc)) from exc

    async def _send(self, request: Request) -> Response:
        try:
            system, headers = self._caller(request)
            doc = await self._take(request, system, headers)
        except AxisError as exc:
            return _error(exc)
        return ok(DocId=doc.doc_id)

    async def _take(self, request: Request, system: str, headers: dict[str, str]) -> Filed:
        messagetype, organ = headers.get("messagetype"), headers.get("from", "")
        if headers.get("servicetype") != "eDoc" or messagetype not in ("edoc", "status"):
            raise AxisError(400, "servicetype must be eDoc and messagetype edoc or status")
        if level1(organ) != level1(system):
            raise AxisError(403, f"{system} may not send for organisation {organ!r}")
        to = headers.get("to")
        if to is not None and not _json_array(to):
            raise AxisError(400, "header to must be the JSON text of an array of recipients")
        message_id = headers.get("messageid")
        path, digest = await _spool_body(request, self.directory)
        try:
            with self._lock:
                if first := self._repeat(system, message_id):
                    return first
                if self._refuse_next:
                    raise AxisError(200, self._refuse_next.pop(0))
            claimed = headers.get("hash-file", "")
            if not sdk.hash_file_matches(claimed, bytes.fromhex(digest)):
                trimmed = _without_crlf(path)  # the SDK writes the file, then CRLF
                if trimmed is None or not sdk.hash_file_matches(claimed, trimmed):
                    raise AxisError(400, f"hash-file does not match the body (SHA-256 {digest})")
            package = await asyncio.to_thread(self._parse, path)
            sent_from = (
                package.from_ if isinstance(package, StatusPackage) else package.header.from_
            )
            kind = "status" if isinstance(package, StatusPackage) else "edoc"
            if sent_from.organ_id != organ or kind != messagetype:
                raise AxisError(400, f"the package is a {kind} from {sent_from.organ_id}")
            with self._lock:  # a concurrent send of the same message id may have won
                first = self._repeat(system, message_id)
                return first or self._file(package, path, sender=system, message_id=message_id)
        finally:
            path.unlink(missing_ok=True)

    def _repeat(self, system: str, message_id: str | None) -> Filed | None:
        """The package first sent with this message id, its repeat counted (lock held)."""
        first = self._docs.get(self._by_message.get((system, message_id or ""), ""))
        if first is not None:
            first.repeats += 1
        return first

    async def _received_list(self, request: Request) -> Response:
        try:
            system, headers = self._caller(request)
        except AxisError as exc:
            return _error(exc)
        messagetype = headers.get("messagetype", "edoc")
        if messagetype not in ("edoc", "status"):
            why = f"messagetype must be edoc or status, not {messagetype!r}"
            return _error(AxisError(400, why))
        with self._lock:
            data = [
                d.listed(system)
                for d in self._docs.values()
                if d.messagetype == messagetype and d.receipts.get(system) == "pending"
            ]
        return ok(data=data)

    async def _get(self, request: Request) -> Response:
        try:
            system, headers = self._caller(request)
            doc = self._for(system, headers.get("docid", ""))
        except AxisError as exc:
            return _error(exc)
        head = f'{{"status":"OK","ErrorCode":"0","ErrorDesc":"","docId":"{doc.doc_id}","data":"'
        return StreamingResponse(
            _base64_answer(head.encode(), doc.path), media_type="application/json"
        )

    async def _update(self, request: Request) -> Response:
        try:
            system, headers = self._caller(request)
            doc = self._for(system, headers.get("docid", ""))
            status = headers.get("status")
            if status not in ("done", "fail"):
                raise AxisError(400, f"status must be done or fail, not {status!r}")
        except AxisError as exc:
            return _error(exc)
        with self._lock:
            doc.receipts[system] = status
        return ok(docId=doc.doc_id)

    def _for(self, system: str, doc_id: str) -> Filed:
        with self._lock:
            doc = self._docs.get(doc_id)
        if doc is None or system not in doc.receipts:
            raise AxisError(404, f"no docId {doc_id!r} for {system}")
        return doc

    async def _sent_list(self, request: Request) -> Response:
        try:
            system, _ = self._caller(request)
        except AxisError as exc:
            return _error(exc)
        with self._lock:
            mine = [d for d in self._docs.values() if d.sender == system]
            data = [item for d in mine for item in d.sent(self._owner)]
        return ok(data=data)

    async def _agencies(self, request: Request) -> Response:
        try:
            self._caller(request)
        except AxisError as exc:
            return _error(exc)
        qd20 = request.url.path.endswith("QD20")
        return ok(
            data=[
                {"code": code, "name": name, **({"codeQD20": code} if qd20 else {})}
                for code, name in DIRECTORY
            ]
        )

    async def _count(self, request: Request) -> Response:
        try:
            system, _ = self._caller(request)
        except AxisError as exc:
            return _error(exc)
        kind = "status" if request.url.path.endswith("Status") else "edoc"
        with self._lock:
            count = sum(
                1
                for d in self._docs.values()
                if d.messagetype == kind and d.receipts.get(system) == "pending"
            )
        return ok(count=count)

    async def _inject_endpoint(self, request: Request) -> Response:
        try:
            doc_id = await asyncio.to_thread(self.inject, await request.body())
        except AxisError as exc:
            return _error(exc)
        return ok(DocId=doc_id)

    async def _received_endpoint(self, request: Request) -> Response:
        return JSONResponse({"documents": self.received(), **self.stats()})

    async def _stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())


def _error(exc: AxisError) -> Response:
    if exc.status == 503 and exc.desc.startswith("retry:"):
        return fail(503, "simulated outage", {"Retry-After": exc.desc[6:]})
    return fail(exc.status, exc.desc)


async def _spool_body(request: Request, directory: Path) -> tuple[Path, str]:
    """Stream a request body to a temp file; returns it with its SHA-256."""
    fd, name = tempfile.mkstemp(dir=directory, prefix="in-", suffix=".edxml")
    sha, size = hashlib.sha256(), 0
    try:
        with open(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_PACKAGE:
                    raise AxisError(413, f"package over {MAX_PACKAGE} bytes")
                sha.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), sha.hexdigest()


def _json_array(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


def _without_crlf(path: Path) -> bytes | None:
    """The SHA-256 of the file without its last two bytes, when they are CRLF."""
    size = path.stat().st_size
    sha = hashlib.sha256()
    with path.open("rb") as source:
        source.seek(max(size - 2, 0))
        if size < 2 or source.read() != b"\r\n":
            return None
        source.seek(0)
        left = size - 2
        while left and (chunk := source.read(min(left, 1 << 20))):
            sha.update(chunk)
            left -= len(chunk)
    return sha.digest()


def _measure(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            sha.update(chunk)
    return path.stat().st_size, sha.hexdigest()


def _base64_answer(head: bytes, path: Path) -> Iterator[bytes]:
    """A getEdoc answer, the package's base64 read from disk as it is sent."""
    yield head
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield base64.b64encode(chunk)
    yield b'"}'


def main(argv: list[str] | None = None) -> None:
    """Run the simulated national document axis in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser("python -m adapters.national_axis", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument(
        "--system", action="append", required=True, metavar="SYSTEMID:SECRET",
        help="a system that signs in, e.g. 000.00.00.H29:secret (repeatable)",
    )  # fmt: skip
    parser.add_argument("--auto-status", default="", metavar="CODES", help="e.g. 01,03")
    parser.add_argument("--fail-next", type=int, default=0, metavar="N", help="answer 503 N times")
    parser.add_argument("--dir", type=Path, default=None, help="where packages are kept")
    args = parser.parse_args(argv)
    systems = dict(s.split(":", 1) for s in args.system)
    codes = [c.strip() for c in args.auto_status.split(",") if c.strip()]
    axis = NationalAxis(
        systems, auto_status=codes, directory=args.dir, host=args.host, port=args.port
    )
    with axis:
        axis.fail_next(args.fail_next)
        print(f"national axis on {axis.url} (stats: {axis.url}/_axis/stats); Ctrl-C stops")
        wait_for_interrupt()
        print(f"stopped: {axis.stats()}")


if __name__ == "__main__":
    main()
