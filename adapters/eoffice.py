"""Reference e-office (QLVB) of one department: takes edXML over SOAP, answers statuses via the hub.

Serves the SOAP service of contracts/edxml/eoffice.wsdl at `/soap` (the WSDL
itself at `/soap?wsdl`), the service the hub's edxml connector pushes to. The
request is parsed as it streams (lxml parser target: no DTD, entities or
network), the base64 of `edXML` decoded straight into a blob, then read with
`hub.connectors.edxml.parse` into this e-office's own FileBlobStore: a package of
hundreds of MB is never held in memory. Repeats of a messageId are answered as
before and counted, not filed again. A document not addressed to this organ, or
a package that does not parse, is answered `FAIL`.

It answers with status packages through the hub's axis API
(`POST {hub}/api/v1/edoc/sendEdoc`, `messagetype: status`), on request or,
with `auto_status`, after each new document: with its Bearer key, or, given
`sdk=(systemid, secret)`, exactly as an e-office using the Government
Office's SDK does (signed headers, the file then CRLF, the SDK's hash-file;
adapters/sdk.py). It can misbehave for retry tests:
the next N calls answered HTTP 503, or every call a SOAP fault.

    with EofficeSimulator("000.00.12.H29", hub=hub_url, key="key-a") as eoffice:
        ...  # point the hub's system at f"{eoffice.url}/soap"
        eoffice.received                            # what it filed
        eoffice.respond(fail_next=2)                # two 503s, then normal again

Control API: `GET /_eoffice/received`, `GET /_eoffice/stats`, `GET /_eoffice/sent`,
`POST /_eoffice/status` `{"docId", "code", "description"}`,
`POST /_eoffice/respond` `{"fail_next", "fault"}`. Run on its own with
`python -m adapters.eoffice --port 9002 --organ 000.00.12.H29`.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import contextlib
import hashlib
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import orjson
import zeep
from lxml import etree  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from adapters import sdk
from adapters.serving import JSONResponse, SimulatorServer, wait_for_interrupt
from hub.connectors.edxml import (
    BlobWriter,
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
from hub.connectors.edxml.parse import hardened_parser
from hub.connectors.eoffice import PORT, SERVICE, WSDL
from hub.errors import Rejected

FaultKind = Literal["client", "server"]
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "urn:lgsp:eoffice:v1"
OPERATIONS = {"sendDocument": DocumentPackage, "sendStatus": StatusPackage}
MAX_FIELD = 1000  # characters of messageId / from
MAX_DEPTH = 32
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


class SoapFault(Exception):
    """Answer with a SOAP 1.1 fault (`Client`: the request is wrong; `Server`: try later)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Received:
    """One package this e-office filed."""

    message_id: str
    operation: str
    sender: str  # the request's `from`
    doc_id: str  # what it was filed as
    package: Package = field(repr=False)
    package_size: int
    package_sha256: str
    at: str
    traceparent: str | None = None  # the W3C trace header of the call that brought it

    @property
    def document_id(self) -> str | None:
        """The document's DocumentId, or for a status the one it answers."""
        if isinstance(self.package, DocumentPackage):
            return self.package.header.document_id
        return self.package.response_for.document_id if self.package.response_for else None

    def as_json(self) -> dict[str, Any]:
        """This package as `GET /_eoffice/received` serves it."""
        p = self.package
        out: dict[str, Any] = {
            "messageId": self.message_id,
            "operation": self.operation,
            "from": self.sender,
            "docId": self.doc_id,
            "documentId": self.document_id,
            "package": {"size": self.package_size, "sha256": self.package_sha256},
            "at": self.at,
        }
        if isinstance(p, DocumentPackage):
            return out | {
                "kind": "document",
                "sender": p.header.from_.organ_id,
                "to": [o.organ_id for o in p.header.to],
                "subject": p.header.subject,
                "attachments": [
                    {"contentId": a.content_id, "name": a.name, "size": a.size, "sha256": a.sha256}
                    for a in p.attachments
                ],
            }
        return out | {
            "kind": "status",
            "sender": p.from_.organ_id,
            "statusCode": p.status_code,
            "description": p.description,
        }


class _Base64Decoder:
    """Base64 text given in pieces, decoded into a blob 4-character groups at a time."""

    def __init__(self, out: BlobWriter) -> None:
        self._out = out
        self._rest = ""

    def feed(self, text: str) -> None:
        text = self._rest + "".join(text.split())
        cut = len(text) - len(text) % 4
        self._rest = text[cut:]
        if cut:
            try:
                self._out.write(binascii.a2b_base64(text[:cut].encode("ascii"), strict_mode=True))
            except (binascii.Error, UnicodeEncodeError) as exc:
                raise SoapFault("Client", f"edXML is not base64: {exc}") from None

    def finish(self) -> None:
        if self._rest:
            raise SoapFault("Client", "edXML is not base64: truncated")


class _SoapRequest:
    """lxml parser target for Envelope/Body/{urn:lgsp:eoffice:v1}op/(messageId, from, edXML)."""

    def __init__(self, edxml: BlobWriter) -> None:
        self.operation = ""
        self.fields: dict[str, str] = {}
        self._edxml = edxml
        self._path: list[str] = []
        self._text: list[str] | None = None
        self._decoder: _Base64Decoder | None = None

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise SoapFault("Client", "a DOCTYPE is refused")

    def start(self, tag: str, attrib: dict[str, str], nsmap: object = None) -> None:
        depth, local = len(self._path), etree.QName(tag).localname
        if depth >= MAX_DEPTH:
            raise SoapFault("Client", f"elements nested deeper than {MAX_DEPTH}")
        self._path.append(tag)
        in_body = depth >= 2 and self._path[1] == f"{{{SOAP_ENV}}}Body"
        if depth == 0 and tag != f"{{{SOAP_ENV}}}Envelope":
            raise SoapFault("Client", f"not a SOAP 1.1 envelope: {tag}")
        if depth == 2 and in_body:
            if tag not in (f"{{{TNS}}}{op}" for op in OPERATIONS):
                raise SoapFault("Client", f"no operation {tag}")
            self.operation = local
        elif depth == 3 and in_body and tag == f"{{{TNS}}}edXML":
            self._decoder = _Base64Decoder(self._edxml)
        elif depth == 3 and in_body and tag in (f"{{{TNS}}}messageId", f"{{{TNS}}}from"):
            self._text = []
        elif depth >= 3 and in_body:
            raise SoapFault("Client", f"unexpected element {tag} in {self.operation}")

    def data(self, text: str) -> None:
        if self._decoder is not None:
            self._decoder.feed(text)
        elif self._text is not None:
            self._text.append(text)
            if sum(map(len, self._text)) > MAX_FIELD:
                raise SoapFault("Client", f"{self._path[-1]} over {MAX_FIELD} characters")

    def end(self, tag: str) -> None:
        self._path.pop()
        if self._decoder is not None:
            self._decoder.finish()
            self._decoder = None
            self.fields["edXML"] = ""
        elif self._text is not None:
            self.fields[etree.QName(tag).localname] = "".join(self._text).strip()
            self._text = None

    def close(self) -> None:
        # lxml calls this after an error too, and an exception here would hide that error.
        return None

    def check(self) -> None:
        """Raise a Client fault when the operation or one of its fields is missing."""
        missing = {"messageId", "from", "edXML"} - set(self.fields)
        if not self.operation or missing:
            raise SoapFault("Client", f"{self.operation or 'request'} lacks {sorted(missing)}")


class EofficeSimulator(SimulatorServer):
    """One department's e-office on a real socket, serving the WSDL's SOAP service.

    Args:
        organ: this e-office's organisation code, e.g. 000.00.12.H29.
        name: its OrganName in the status packages it sends.
        directory: its blob store (default: a new temp directory, kept).
        hub: base URL of the hub's API, for status packages; key: its API key there.
        auto_status: a StatusCode ("01") sent for each new document.
        max_bytes: largest edXML package taken.
    """

    label = "eoffice"
    title = "e-office"
    backlog = 512

    def __init__(
        self,
        organ: str,
        *,
        name: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        directory: Path | None = None,
        hub: str | None = None,
        key: str | None = None,
        auto_status: str | None = None,
        max_bytes: int = 1 << 30,
        sdk: tuple[str, str] | None = None,
    ) -> None:
        self.organ = Organization(organ, organ_name=name)
        self.sdk = sdk
        self.blobs = FileBlobStore(directory or tempfile.mkdtemp(prefix="eoffice-"))
        self.hub, self.key, self.auto_status = hub, key, auto_status
        self.max_bytes = max_bytes
        self._wsdl = WSDL.read_text("utf-8")
        client = zeep.Client(str(WSDL))  # type: ignore[no-untyped-call]
        self._binding = client.wsdl.services[SERVICE].ports[PORT].binding
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._by_message: dict[str, Received] = {}
        self._sent: list[dict[str, Any]] = []
        self._counts = dict.fromkeys(
            ("calls", "duplicates", "refused", "faults", "unavailable", "aborted"), 0
        )
        self._fail_next = 0
        self._fault: FaultKind | None = None
        app = Starlette(
            routes=[
                Route("/soap", self._wsdl_endpoint, methods=["GET"]),
                Route("/soap", self._soap_endpoint, methods=["POST"]),
                Route("/_eoffice/received", self._received_endpoint, methods=["GET"]),
                Route("/_eoffice/sent", self._sent_endpoint, methods=["GET"]),
                Route("/_eoffice/stats", self._stats_endpoint, methods=["GET"]),
                Route("/_eoffice/status", self._status_endpoint, methods=["POST"]),
                Route("/_eoffice/respond", self._respond_endpoint, methods=["POST"]),
            ]
        )
        super().__init__(app, host=host, port=port)

    # Misbehaving ------------------------------------------------------------
    def respond(self, *, fail_next: int = 0, fault: FaultKind | None = None) -> None:
        """Answer the next `fail_next` calls HTTP 503, then every call a `fault` (None: normal)."""
        with self._lock:
            self._fail_next, self._fault = fail_next, fault

    # What it holds ----------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        """Every package filed, repeats not included, in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every status package sent to the hub, with the hub's answer."""
        with self._lock:
            return list(self._sent)

    def stats(self) -> dict[str, int]:
        """Counters as served by `GET /_eoffice/stats`."""
        with self._lock:
            docs = sum(isinstance(r.package, DocumentPackage) for r in self._received)
            ok = sum(s["answer"].get("status") == "OK" for s in self._sent)
            return self._counts | {
                "received": len(self._received),
                "documents": docs,
                "statuses": len(self._received) - docs,
                "statuses_sent": ok,
                "statuses_failed": len(self._sent) - ok,
            }

    def document(self, document_id: str) -> DocumentPackage | None:
        """A received document by its DocumentId (or by the docId it was filed as)."""
        with self._lock:
            for r in self._received:
                p = r.package
                if isinstance(p, DocumentPackage) and document_id in (r.doc_id, r.document_id):
                    return p
        return None

    # SOAP -------------------------------------------------------------------
    async def _wsdl_endpoint(self, request: Request) -> Response:
        location = f'location="{self.url}/soap"'
        text = self._wsdl.replace('location="http://localhost:8080/soap"', location)
        return Response(text, media_type="text/xml; charset=utf-8")

    async def _soap_endpoint(self, request: Request) -> Response:
        with self._lock:
            self._counts["calls"] += 1
            unavailable = self._fail_next > 0
            self._fail_next -= unavailable
            fault = self._fault
        if unavailable or fault:
            await _drain(request)
            if unavailable:
                self._count("unavailable")
                return Response("busy", 503, {"Retry-After": "1"}, "text/plain")
            code = "Client" if fault == "client" else "Server"
            return self._fault_response(SoapFault(code, f"{code} fault, as told"))
        try:
            return await self._take(request)
        except SoapFault as exc:
            await _drain(request)
            return self._fault_response(exc)
        except ClientDisconnect:  # the sender gave up mid-package: nothing was filed
            self._count("aborted")
            return Response(status_code=400)

    async def _take(self, request: Request) -> Response:
        """Read, file and answer one call."""
        with self.blobs.writer() as raw:
            call = await self._read(request, raw)
        operation, message_id = call.operation, call.fields["messageId"]
        with self._lock:
            earlier = self._by_message.get(message_id)
            if earlier is not None:
                self._counts["duplicates"] += 1
        if earlier is not None:
            return self._answer(operation, "OK", doc_id=earlier.doc_id)
        try:
            with self.blobs.open(raw.close().key) as source:
                package = await asyncio.to_thread(
                    parse, source, self.blobs, max_bytes=self.max_bytes
                )
        except Rejected as exc:
            return self._refuse(operation, "EDXML_INVALID", exc.detail)
        if not isinstance(package, OPERATIONS[operation]):
            return self._refuse(operation, "WRONG_OPERATION", f"{operation} of another package")
        if isinstance(package, DocumentPackage) and self.organ.organ_id not in {
            o.organ_id for o in package.header.to
        }:
            return self._refuse(
                operation, "NOT_RECIPIENT", f"not addressed to {self.organ.organ_id}"
            )
        received, new = self._file(
            call, package, raw.size, raw.sha256, request.headers.get("traceparent")
        )
        task = None
        if new and self.auto_status and isinstance(package, DocumentPackage):
            task = BackgroundTask(self.send_status, package.header.document_id, self.auto_status)
        return self._answer(operation, "OK", doc_id=received.doc_id, background=task)

    async def _read(self, request: Request, raw: BlobWriter) -> _SoapRequest:
        """Stream the request through a hardened lxml parser, edXML decoded into `raw`."""
        call = _SoapRequest(raw)
        parser = hardened_parser(call)
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_bytes * 4 // 3 + 64 * 1024:
                    raise SoapFault("Client", f"request over {self.max_bytes} bytes of edXML")
                parser.feed(chunk)
            parser.close()
        except etree.XMLSyntaxError as exc:
            raise SoapFault("Client", f"not well-formed XML: {exc}") from None
        call.check()
        soap_action = request.headers.get("soapaction", "").strip('"')
        if soap_action and soap_action != f"{TNS}#{call.operation}":
            raise SoapFault("Client", f"SOAPAction {soap_action!r} for {call.operation}")
        return call

    def _file(
        self, call: _SoapRequest, package: Package, size: int, sha: str, traceparent: str | None
    ) -> tuple[Received, bool]:
        """Keep the package; False with the earlier one when a concurrent repeat came first."""
        with self._lock:
            earlier = self._by_message.get(call.fields["messageId"])
            if earlier is not None:
                self._counts["duplicates"] += 1
                return earlier, False
            received = Received(
                message_id=call.fields["messageId"],
                operation=call.operation,
                sender=call.fields["from"],
                doc_id=f"{self.organ.organ_id}/{len(self._received) + 1:06d}",
                package=package,
                package_size=size,
                package_sha256=sha,
                at=datetime.now(VIETNAM).isoformat(timespec="seconds"),
                traceparent=traceparent,
            )
            self._received.append(received)
            self._by_message[received.message_id] = received
            return received, True

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _refuse(self, operation: str, code: str, detail: str) -> Response:
        self._count("refused")
        return self._answer(operation, "FAIL", error_code=code, error_desc=detail)

    def _answer(
        self,
        operation: str,
        status: str,
        *,
        doc_id: str | None = None,
        error_code: str = "0",
        error_desc: str | None = None,
        background: BackgroundTask | None = None,
    ) -> Response:
        """The operation's answer, serialised by zeep from the WSDL."""
        message = self._binding.get(operation).output.serialize(
            status=status, errorCode=error_code, errorDesc=error_desc, docId=doc_id
        )
        body = etree.tostring(message.content, xml_declaration=True, encoding="utf-8")
        return Response(body, 200, media_type="text/xml; charset=utf-8", background=background)

    def _fault_response(self, fault: SoapFault) -> Response:
        self._count("faults")
        env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap-env": SOAP_ENV})
        node = etree.SubElement(
            etree.SubElement(env, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault"
        )
        etree.SubElement(node, "faultcode").text = f"soap-env:{fault.code}"
        etree.SubElement(node, "faultstring").text = fault.message
        xml = etree.tostring(env, xml_declaration=True, encoding="utf-8")
        return Response(xml, 500, media_type="text/xml; charset=utf-8")

    # Status packages through the hub ----------------------------------------
    def status_package(
        self, document: DocumentPackage, code: str, description: str | None = None
    ) -> StatusPackage:
        """A StatusPackage from this organ about `document`, to its sender."""
        h = document.header
        number = "/".join(filter(None, (h.code.number, h.code.notation))) if h.code else None
        return StatusPackage(
            from_=self.organ,
            status_code=code,
            response_for=ResponseFor(
                organ_id=h.from_.organ_id,
                code=number or None,
                promulgation_date=h.promulgation.date if h.promulgation else None,
                document_id=h.document_id,
            ),
            description=description or STATUS_MEANINGS.get(code, (None, None))[1],
            timestamp=EdDate.of(datetime.now(VIETNAM).replace(tzinfo=None, microsecond=0)),
        )

    async def send_status(
        self, document_id: str, code: str, description: str | None = None
    ) -> dict[str, Any]:
        """Send a status on a received document to the hub; returns (and keeps) its answer.

        Raises:
            KeyError: no such document received.
        """
        document = self.document(document_id)
        if document is None:
            raise KeyError(f"no document {document_id!r} received")
        body = b"".join(build(self.status_package(document, code, description), self.blobs))
        answer = await self._post_edoc(body)
        with self._lock:
            self._sent.append({"documentId": document_id, "code": code, "answer": answer})
        return answer

    async def _post_edoc(self, body: bytes) -> dict[str, Any]:
        """`sendEdoc` to the hub; transport failures become a FAIL answer."""
        if not self.hub:
            return {"status": "FAIL", "ErrorCode": "NO_HUB", "ErrorDesc": "no hub configured"}
        logical = {
            "from": self.organ.organ_id,
            "servicetype": "eDoc",
            "messagetype": "status",
            "hash-file": hashlib.sha256(body).hexdigest(),
        }
        if self.sdk is not None:
            system_id, secret = self.sdk
            logical["hash-file"] = sdk.hash_file(body)
            octets = "application/octet-stream"
            headers = sdk.sign(system_id, secret, logical, octets, datetime.now(VIETNAM))
            body += b"\r\n"  # the SDK's writer ends the file so
        else:
            headers = logical | {
                "authorization": f"Bearer {self.key or ''}",
                "content-type": "application/xml",
            }
        url = f"{self.hub.rstrip('/')}/api/v1/edoc/sendEdoc"
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(url, content=body, headers=headers)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return {"status": "FAIL", "ErrorCode": "HUB_UNREACHABLE", "ErrorDesc": str(exc)}
        if not isinstance(answer, dict):
            return {"status": "FAIL", "ErrorCode": "HUB_ANSWER", "ErrorDesc": repr(answer)[:200]}
        return {"http_status": response.status_code, **answer}

    # Control API ------------------------------------------------------------
    async def _received_endpoint(self, request: Request) -> Response:
        return JSONResponse([r.as_json() for r in self.received])

    async def _sent_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.sent)

    async def _stats_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _status_endpoint(self, request: Request) -> Response:
        try:
            spec = orjson.loads(await request.body())
            doc, code = str(spec["docId"]), str(spec["code"])
            description = spec.get("description")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return JSONResponse({"detail": f"expected {{docId, code}}: {exc}"}, 400)
        try:
            answer = await self.send_status(doc, code, description)
        except KeyError as exc:
            return JSONResponse({"detail": str(exc)}, 404)
        return JSONResponse(answer, 200 if "http_status" in answer else 502)

    async def _respond_endpoint(self, request: Request) -> Response:
        try:
            spec = orjson.loads(await request.body())
            fault = spec.get("fault")
            if fault not in (None, "client", "server"):
                raise ValueError(f"fault {fault!r}: client, server or null")
            self.respond(fail_next=int(spec.get("fail_next") or 0), fault=fault)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, 400)
        return JSONResponse(self.stats())


async def _drain(request: Request) -> None:
    """Read what is left of the body: the client is still sending and waits for the answer."""
    with contextlib.suppress(RuntimeError, ClientDisconnect):  # RuntimeError: already read
        async for _ in request.stream():
            pass


def main(argv: list[str] | None = None) -> None:
    """Run an e-office in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser("python -m adapters.eoffice", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument("--organ", required=True, help="organisation code, e.g. 000.00.12.H29")
    parser.add_argument("--name", help="organisation name in its status packages")
    parser.add_argument("--dir", type=Path, help="blob store directory (default: a temp dir)")
    parser.add_argument("--hub", help="hub API base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", help="this e-office's API key at the hub")
    parser.add_argument("--auto-status", metavar="CODE", help="status sent for each document")
    parser.add_argument("--fail-next", type=int, default=0, help="answer N calls with HTTP 503")
    parser.add_argument("--fault", choices=["client", "server"], help="answer with SOAP faults")
    args = parser.parse_args(argv)
    eoffice = EofficeSimulator(
        args.organ,
        name=args.name,
        host=args.host,
        port=args.port,
        directory=args.dir,
        hub=args.hub,
        key=args.key,
        auto_status=args.auto_status,
    )
    eoffice.respond(fail_next=args.fail_next, fault=args.fault)
    with eoffice:
        print(f"e-office {args.organ} on {eoffice.url}/soap (WSDL: {eoffice.url}/soap?wsdl)")
        print(f"blobs in {eoffice.blobs.directory}; Ctrl-C stops")
        wait_for_interrupt()
        print(f"stopped: {eoffice.stats()}")


if __name__ == "__main__":
    main()
