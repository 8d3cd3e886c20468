"""e-office connector (`kind: edxml`): pushes edXML packages to a department's QLVB over SOAP.

System: a document management system (QLVB-ĐH, e-office) that takes official
documents and their status messages. Protocol: SOAP 1.1 document/literal,
hub/connectors/edxml/eoffice.wsdl (`sendDocument`, `sendStatus`), at the system's
`endpoint`. Standard: the request carries the whole edXML package (QCVN
102:2016/BTTTT) as base64, with the hub's message id as `messageId` so the
receiver can drop repeats, and the sender's organisation code as `from`.
Supported: delivery of `vn.lgsp.document.sent.v1` and `vn.lgsp.document.status.v1`;
systems send to the hub through the axis API (`/api/v1/edoc/sendEdoc`), so
`decode` refuses.

Packages reach hundreds of MB, so zeep builds the SOAP envelope around a
placeholder and the body is streamed (chunked): the envelope's head, the base64
of `hub.connectors.edxml.build`'s chunks as they come, the tail. zeep reads the answer.

Error mapping: timeouts, connection errors, HTTP 408, 425, 429 and 5xx
(honouring `Retry-After`) and SOAP faults with a Server faultcode are
`Transient`; faults with a Client faultcode, other 4xx and a `FAIL` answer
(with the receiver's errorCode and errorDesc) are `Rejected`, as are events the
package cannot be rebuilt from (bad data, missing or altered blob).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import zeep
from lxml import etree  # type: ignore[import-untyped]
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault

from hub import tracing
from hub.config import System
from hub.connectors.base import OutboundRequest, Receipt
from hub.connectors.edxml import (
    BlobStore,
    DocumentPackage,
    StatusPackage,
    build,
    package_from_event,
)
from hub.connectors.http import MAX_RECORDED_BODY, RETRYABLE, retry_after
from hub.errors import Rejected, Transient

WSDL = Path(__file__).resolve().parent / "edxml" / "eoffice.wsdl"  # shipped in the package
SERVICE, PORT = "EofficeService", "EofficePort"
BATCH = 256 * 1024  # raw bytes base64-encoded per hop to the worker thread
CLIENT_FAULTS = {"Client", "VersionMismatch", "MustUnderstand"}


@dataclass(frozen=True)
class SoapCall:
    """A SOAP request split around its edXML: `head` + base64(package) + `tail`."""

    operation: str
    url: str
    headers: Mapping[str, str]
    head: bytes
    tail: bytes
    chunks: Iterator[bytes]


class EofficeConnector:
    """Sends edXML packages to e-offices with the SOAP service of hub/connectors/edxml/eoffice.wsdl.

    Args:
        blobs: where the attachments of the events' packages are stored.
        wsdl: the service description (loaded from disk, never from the network).
        client: one HTTP client for every destination (tests); else one pool each.
    """

    kind: ClassVar[str] = "edxml"

    def __init__(
        self, blobs: BlobStore, *, wsdl: Path = WSDL, client: httpx.AsyncClient | None = None
    ) -> None:
        self._blobs = blobs
        settings = zeep.Settings(
            strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        self._zeep = zeep.Client(str(wsdl), settings=settings)  # type: ignore[no-untyped-call]
        self._binding = self._zeep.wsdl.services[SERVICE].ports[PORT].binding
        self._shared = client
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, target: System) -> httpx.AsyncClient:
        """One connection pool per destination, sized to its concurrency (as HttpConnector)."""
        if self._shared is not None:
            return self._shared
        client = self._clients.get(target.id)
        if client is None:
            size = max(1, target.concurrency)
            client = self._clients[target.id] = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                follow_redirects=False,
            )
        return client

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        raise Rejected(
            f"{sender.id}: e-offices send edXML through the axis API "
            "(POST /api/v1/edoc/sendEdoc), not through the edxml connector"
        )

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """The whole SOAP request in memory: for inspection; `deliver` streams it."""
        call = self._call(event, target)
        body = call.head + b"".join(_base64(call.chunks)) + call.tail
        return OutboundRequest("POST", call.url, call.headers, body)

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        call = self._call(event, target)
        headers = dict(call.headers)
        tracing.inject(headers)  # the delivery attempt's span, as on every outbound call
        started = time.perf_counter()
        try:
            response = await self._client(target).request(
                "POST",
                call.url,
                headers=headers,
                content=_stream(call),
                timeout=target.timeout,
            )
        except httpx.TimeoutException as exc:
            raise Transient(f"{target.id}: timed out after {target.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise Transient(f"{target.id}: {type(exc).__name__}: {exc}") from exc
        except (KeyError, ValueError) as exc:  # a blob gone or altered: the package cannot be built
            raise Rejected(f"{target.id}: package not built: {exc}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        answer = self._answer(call.operation, response, target)
        doc_id = getattr(answer, "docId", None)
        detail = f"{call.operation} OK" + (f", docId {doc_id}" if doc_id else "")
        return Receipt(response.status_code, detail, elapsed, {"docId": doc_id})

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        if self._shared is not None:
            await self._shared.aclose()

    def _call(self, event: Mapping[str, Any], target: System) -> SoapCall:
        """The SOAP request for an event, zeep's envelope split at a placeholder.

        Raises:
            Rejected: no endpoint, or the event's data is no package (Invalid).
        """
        if not target.endpoint:
            raise Rejected(f"{target.id} has no endpoint")
        package = package_from_event(dict(event["data"]))
        attachments = package.attachments if isinstance(package, DocumentPackage) else ()
        if missing := [a.blob for a in attachments if not self._blobs.exists(a.blob)]:
            raise Rejected(f"{target.id}: package not built: no blob {', '.join(missing)}")
        operation = "sendStatus" if isinstance(package, StatusPackage) else "sendDocument"
        placeholder = f"edXML{uuid.uuid4().hex}"  # a str goes into base64Binary as is
        message = self._binding.get(operation).input.serialize(
            messageId=str(event["id"]),
            edXML=placeholder,
            **{"from": str(event["source"]).partition(":")[0]},
        )
        xml = etree.tostring(message.content, xml_declaration=True, encoding="utf-8")
        head, tail = bytes(xml).split(placeholder.encode("ascii"))
        headers = {"content-type": "text/xml; charset=utf-8", **message.headers}
        chunks = build(package, self._blobs)
        return SoapCall(operation, target.endpoint, headers, head, tail, chunks)

    def _answer(self, operation: str, response: httpx.Response, target: System) -> Any:
        """The receiver's answer read by zeep; raises Transient or Rejected as mapped above."""
        code = response.status_code
        xml = "xml" in response.headers.get("content-type", "")
        if code == 200 or (code == 500 and xml):
            try:
                answer = self._binding.process_reply(
                    self._zeep, self._binding.get(operation), response
                )
            except Fault as fault:
                raise _fault_error(fault, target) from fault
            except ZeepError as exc:
                raise Transient(
                    f"{target.id}: unreadable SOAP answer (HTTP {code}): {exc}"
                ) from exc
            if getattr(answer, "status", None) != "OK":
                error = f"{getattr(answer, 'errorCode', '')} {getattr(answer, 'errorDesc', '')}"
                raise Rejected(f"{target.id}: {operation} FAIL {error.strip()}")
            return answer
        text = response.text[:MAX_RECORDED_BODY]
        if code in RETRYABLE or code >= 500:
            raise Transient(
                f"{target.id}: HTTP {code} {text}".strip(),
                retry_after=retry_after(response.headers.get("retry-after")),
            )
        raise Rejected(f"{target.id}: HTTP {code} {text}".strip())


def _fault_error(fault: Fault, target: System) -> Transient | Rejected:
    """Client faults (`soap:Client.Auth`, ...) are the request's fault; the rest may pass."""
    code = str(fault.code or "")
    kind = code.rpartition(":")[2].partition(".")[0]
    detail = f"{target.id}: SOAP fault {code}: {fault.message}"
    return Rejected(detail) if kind in CLIENT_FAULTS else Transient(detail)


def _base64(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Base64 of a byte stream, chunk by chunk: 3-byte groups carried between chunks."""
    rest = b""
    for chunk in chunks:
        chunk = rest + chunk
        cut = len(chunk) - len(chunk) % 3
        rest = chunk[cut:]
        if cut:
            yield base64.b64encode(chunk[:cut])
    yield base64.b64encode(rest)


def _batch(encoded: Iterator[bytes]) -> bytes:
    """The next ~BATCH bytes of base64 (empty at the end); runs in a worker thread."""
    parts, size = [], 0
    for part in encoded:
        parts.append(part)
        size += len(part)
        if size >= BATCH:
            break
    return b"".join(parts)


async def _stream(call: SoapCall) -> AsyncIterator[bytes]:
    """The request body; blobs are read and encoded off the event loop."""
    yield call.head
    encoded = _base64(call.chunks)
    while batch := await asyncio.to_thread(_batch, encoded):
        yield batch
    yield call.tail
