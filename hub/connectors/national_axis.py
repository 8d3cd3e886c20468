"""National document axis connector (`kind: national_axis`) and its poller.

System: the Government Office's national document axis (trục liên thông văn
bản quốc gia), reached through its X-Road adapter. Protocol: REST operations
answering `{"status": "OK"|"FAIL", "ErrorCode", "ErrorDesc", ...}`, requests
signed exactly as the Government Office's SDK (SDKVXP 2.0.1) signs them
(hub/connectors/xroad.py, from ../shared/reference/STANDARDS.md). Standard:
edXML, QCVN 102:2016/BTTTT. Supported: `sendEdoc` of documents and status
packages (deliver), pulling the city's packages with `getReceivedEdocList`,
`getEdoc`, `updateStatus` (NationalAxisPoller), and for the organisation
registry `getSentEdocList`, `countReceiveEdoc`, `countReceiveStatus`,
`getAgenciesList` and `getAgenciesListQD20` (NationalAxisPoller's methods of
those names).

Config. The axis is one System of this kind, e.g.

    - id: 000.00.00.G22:truclienthong
      kind: national_axis
      endpoint: https://axis.example/lienthong      # operations are {endpoint}/sendEdoc ...
      api_key: env:AXIS_SECRET                      # the city's secret on the axis
      system_id: 000.00.00.H29                      # the city's systemid on the axis

The signing secret is the System's `api_key`: hub/config.py resolves `env:NAME`
there and checks it is unique, while other keys reach `options` as written, so
an `options["secret"]` would sit in the file in clear; it is not read.
`options["system_id"]` is required.

Idempotency: `XroadVnpt-messageid` (signed like the other headers; the SDK
signs whatever headers its caller gives it) carries the hub message id; the
simulator keeps the DocId of the first send and answers it again for a
repeat. The real axis is not known to honour it: a repeat there may file the
package twice, which its recipients drop by DocumentId.

Error mapping, shared with the other httpx connectors (hub/connectors/httpmap.py):
timeouts, connection errors, 408, 425, 429 and 5xx are `Transient` (honouring
Retry-After; a 429 slows the whole destination); any other status, an
answer that is not JSON, or `"status": "FAIL"` is `Rejected` with ErrorCode
and ErrorDesc.

Pulling (NationalAxisPoller). Each round lists the packages waiting for the
city (messagetype `edoc`, then `status`), streams each one to a temp file, hands
it to `accept` and then acknowledges it with `updateStatus`: `done` once
`accept` returned, `fail` when it raised `Rejected`; on `Transient`, on
`Conflict` (that docId was taken before with other content: logged as an error
and counted in `hub_messages_conflicting`) or any other error the package stays
pending on the axis for the next round. The
axis's pending list is the record of what is left, so nothing is skipped.

The hub message id of a pulled package is `message_id_for(docId)`, the same on
every pull, so a package handed over twice (a crash between `accept` and
`updateStatus`) is dropped by ingest as a repeat. The cursor
(`national_axis:<system id>` in the store's `cursors` table) is JSON:

    {"unacked": {"<docId>": "done"|"fail"},     # accepted or refused, ack not confirmed
     "acked": 42,                                # acknowledgements confirmed, all time
     "last": {"doc_id": "...", "status": "done", "at": "2026-..."}}

A docId enters `unacked` after `accept` returned (or refused it) and before
`updateStatus`; it leaves once the axis confirmed. After a restart those are
acknowledged first without fetching them again (cheap), and `acked`/`last`
show how far the poller got. A crash before the cursor write means one more
fetch and a repeat that ingest drops; a crash after the ack means one more
`updateStatus`, which the axis answers again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from hub.config import System
from hub.connectors import httpmap
from hub.connectors.base import OutboundRequest, Receipt
from hub.connectors.edxml import (
    SENT,
    STATUS,
    BlobStore,
    Package,
    StatusPackage,
    build,
    event_data,
    package_from_event,
    parse,
)
from hub.connectors.edxml.model import ResponseFor
from hub.connectors.xroad import JSON, OCTET_STREAM, Base64Field, sign_headers
from hub.errors import Conflict, Rejected, Transient
from hub.store import cursors
from hub.store.db import Database

log = logging.getLogger(__name__)

SERVICE_TYPE = "eDoc"
MAX_PACKAGE = 1 << 30
_SAFE_ID = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")

Accept = Callable[[Path, str, str], Awaitable[None]]
_NO_ONE = ResponseFor()


def message_id_for(doc_id: str) -> str:
    """The hub message id of the package the axis calls `doc_id`, the same on every pull.

    `axis:<docId>` when the docId is 1-100 characters of `A-Za-z0-9._~-`, else
    `axis:sha256:<hex SHA-256 of its UTF-8>`; both fit the envelope's id pattern.
    """
    if _SAFE_ID.match(doc_id):
        return f"axis:{doc_id}"
    return "axis:sha256:" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()


def axis_credentials(system: System) -> tuple[str, str]:
    """The city's systemid on the axis and its secret. Raises Rejected when either is missing."""
    system_id = system.options.get("system_id")
    if not isinstance(system_id, str) or not system_id:
        raise Rejected(f"{system.id}: no system_id option (the city's systemid on the axis)")
    if not system.api_key:
        raise Rejected(f"{system.id}: no api_key (the secret the axis signs requests with)")
    return system_id, system.api_key


class NationalAxisConnector(httpmap.HttpxClient):
    """Sends edXML packages to the national document axis (`sendEdoc`)."""

    kind: ClassVar[str] = "national_axis"

    def __init__(self, blobs: BlobStore, *, client: httpx.AsyncClient | None = None) -> None:
        self._blobs = blobs
        super().__init__(client)

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        """An edXML package -> its event, id from the SHA-256 of the bytes. Raises Rejected."""
        package = parse(native, self._blobs, max_bytes=MAX_PACKAGE)
        digest = hashlib.sha256(native).hexdigest()
        return [event_for(package, f"axis:sha256:{digest}", sender)]

    def decode_file(self, path: Path, doc_id: str, *, sender: System) -> dict[str, Any]:
        """A package pulled from the axis -> its event, id `message_id_for(doc_id)`."""
        with path.open("rb") as source:
            package = parse(source, self._blobs, max_bytes=MAX_PACKAGE)
        return event_for(package, message_id_for(doc_id), sender)

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """The whole sendEdoc request (for inspection: it holds the package; deliver streams)."""
        package = _package(event)
        body = b"".join(build(package, self._blobs))
        headers = self._headers(event, package, target, hashlib.sha256(body).hexdigest())
        return OutboundRequest("POST", httpmap.url_for(target, "sendEdoc"), headers, body)

    def _headers(
        self, event: Mapping[str, Any], package: Package, target: System, digest: str
    ) -> dict[str, str]:
        system_id, secret = axis_credentials(target)
        if isinstance(package, StatusPackage):
            organ, to = package.from_.organ_id, [(package.response_for or _NO_ONE).organ_id]
        else:
            organ, to = package.header.from_.organ_id, [o.organ_id for o in package.header.to]
        logical = {
            "from": organ,
            "to": json.dumps([o for o in to if o], separators=(",", ":")),
            "servicetype": SERVICE_TYPE,
            "messagetype": "status" if isinstance(package, StatusPackage) else "edoc",
            "hash-file": digest,
            "messageid": str(event["id"]),
        }
        try:
            return sign_headers(system_id, secret, logical, content_type=OCTET_STREAM)
        except ValueError as exc:
            raise Rejected(f"{target.id}: {exc}") from exc

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """Build the package twice (hash, then send), streaming; raises Transient or Rejected."""
        package = _package(event)
        try:
            digest = await asyncio.to_thread(_digest, package, self._blobs)
        except (KeyError, ValueError) as exc:
            raise Rejected(f"{target.id}: cannot build the package: {exc}") from exc
        headers = self._headers(event, package, target, digest)
        started = time.perf_counter()
        with httpmap.map_failures(target):
            response = await self._http().post(
                httpmap.url_for(target, "sendEdoc"),
                headers=headers,
                content=_stream(package, self._blobs),
                timeout=target.timeout,
            )
        answer = _answer(target, "sendEdoc", response, response.content)
        elapsed = (time.perf_counter() - started) * 1000
        doc_id = str(answer.get("DocId", ""))
        return Receipt(response.status_code, f"DocId {doc_id}", elapsed, {"doc_id": doc_id})


def event_for(package: Package, message_id: str, sender: System) -> dict[str, Any]:
    """The CloudEvent of a package received from the axis."""
    kind, data = event_data(package)
    return {
        "specversion": "1.0",
        "id": message_id,
        "source": sender.id,
        "type": kind,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }


def _package(event: Mapping[str, Any]) -> Package:
    if event.get("type") not in (SENT, STATUS):
        raise Rejected(f"the national axis takes {SENT} and {STATUS}, not {event.get('type')}")
    return package_from_event(dict(event["data"]))


def _digest(package: Package, blobs: BlobStore) -> str:
    sha = hashlib.sha256()
    for chunk in build(package, blobs):
        sha.update(chunk)
    return sha.hexdigest()


async def _stream(package: Package, blobs: BlobStore) -> AsyncIterator[bytes]:
    """The built package, each chunk read off the event loop (attachments come from disk)."""
    chunks = build(package, blobs)
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


def _answer(target: System, operation: str, response: httpx.Response, body: bytes) -> Any:
    """The JSON answer of an OK call. Raises Transient or Rejected as the module says."""
    code = response.status_code
    answer = httpmap.load_json(body)
    text = httpmap.excerpt(body)
    httpmap.raise_if_retryable(response, f"{target.id}: {operation}: HTTP {code} {text}".strip())
    if isinstance(answer, dict) and 200 <= code < 300 and answer.get("status") == "OK":
        return answer
    if isinstance(answer, dict):
        error = f"ErrorCode {answer.get('ErrorCode')}: {answer.get('ErrorDesc')}"
        raise Rejected(f"{target.id}: {operation}: HTTP {code} {error}")
    raise Rejected(f"{target.id}: {operation}: HTTP {code} {text}".strip())


class NationalAxisPoller:
    """Pulls the packages the axis holds for the city and hands each to `accept`.

    Args:
        system: the axis System (endpoint, api_key, options.system_id).
        accept: takes (package file, from organ, docId) and returns once the hub
            holds the package; raises Rejected for a package it refuses, anything
            else to leave it pending. The file is deleted when it returns.
        interval: seconds between rounds of `run`.
        spool: directory of the temp files (default: the system's temp directory).
    """

    def __init__(
        self,
        system: System,
        db: Database,
        accept: Accept,
        *,
        client: httpx.AsyncClient | None = None,
        interval: float = 30.0,
        spool: Path | None = None,
    ) -> None:
        self.system = system
        self.cursor_name = f"national_axis:{system.id}"
        self._db = db
        self._accept = accept
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._own_client = client is None
        self._interval = interval
        self._spool = spool
        self._cursor: dict[str, Any] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `interval` seconds until `stop` is set; a failed round is logged."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Transient as exc:
                log.warning("%s: poll deferred: %s", self.system.id, exc)
            except Exception:  # a bad round must not end the poller
                log.exception("%s: poll failed", self.system.id)
            try:
                await asyncio.wait_for(stop.wait(), self._interval)
            except TimeoutError:
                pass

    async def poll_once(self) -> int:
        """One round; returns how many packages were acknowledged (done or fail).

        Raises:
            Transient: the axis could not be reached; the round stops, nothing is lost.
            Rejected: the axis refused a listing (e.g. a wrong secret).
        """
        cursor = await self._load()
        settled = 0
        for doc_id, status in list(cursor["unacked"].items()):
            await self._acknowledge(doc_id, status)
            settled += 1
        for messagetype in ("edoc", "status"):
            listed = await self._call(
                "getReceivedEdocList", {"servicetype": SERVICE_TYPE, "messagetype": messagetype}
            )
            for item in listed.get("data") or []:
                outcome = await self._take(str(item["docId"]), str(item.get("from", "")))
                if outcome is not None:
                    await self._acknowledge(str(item["docId"]), outcome)
                    settled += 1
        return settled

    async def _take(self, doc_id: str, from_organ: str) -> str | None:
        """Fetch and hand over one package: "done", "fail", or None to leave it pending."""
        try:
            path = await self._fetch(doc_id)
        except Rejected as exc:
            log.warning("%s: docId %s cannot be read: %s", self.system.id, doc_id, exc)
            return "fail"
        try:
            await self._accept(path, from_organ, doc_id)
        except Conflict as exc:  # this docId came before with other content: keep both
            log.error("%s: docId %s left pending: %s", self.system.id, doc_id, exc)
            return None
        except Rejected as exc:
            log.warning("%s: docId %s refused: %s", self.system.id, doc_id, exc)
            return "fail"
        except Transient as exc:
            log.info("%s: docId %s left pending: %s", self.system.id, doc_id, exc)
            return None
        except Exception:  # left pending; retried next round
            log.exception("%s: docId %s left pending", self.system.id, doc_id)
            return None
        finally:
            path.unlink(missing_ok=True)
        return "done"

    async def _acknowledge(self, doc_id: str, status: str) -> None:
        """Record the outcome, tell the axis, then record that the axis knows."""
        cursor = await self._load()
        cursor["unacked"][doc_id] = status
        await self._save()
        try:
            await self._call("updateStatus", {"docId": doc_id, "status": status})
        except Rejected as exc:
            log.warning("%s: updateStatus %s %s refused: %s", self.system.id, doc_id, status, exc)
        del cursor["unacked"][doc_id]
        cursor["acked"] += 1
        cursor["last"] = {"doc_id": doc_id, "status": status, "at": datetime.now(UTC).isoformat()}
        await self._save()

    async def _load(self) -> dict[str, Any]:
        if self._cursor is None:
            raw = await self._db.read(cursors.load, self.cursor_name)
            self._cursor = json.loads(raw) if raw else {"unacked": {}, "acked": 0, "last": None}
        return self._cursor

    async def _save(self) -> None:
        await self._db.run(cursors.save, self.cursor_name, json.dumps(self._cursor))

    async def sent_list(self) -> list[dict[str, Any]]:
        """getSentEdocList: per recipient of what the city sent, send and receive status."""
        return list((await self._call("getSentEdocList", {})).get("data") or [])

    async def count_received(self, messagetype: str = "edoc") -> int:
        """countReceiveEdoc (`edoc`) or countReceiveStatus (`status`): how many wait."""
        operation = "countReceiveStatus" if messagetype == "status" else "countReceiveEdoc"
        answer = await self._call(operation, {"servicetype": SERVICE_TYPE}, method="GET")
        return int(answer.get("count", 0))

    async def agencies(self, *, qd20: bool = False) -> list[dict[str, Any]]:
        """getAgenciesList (or getAgenciesListQD20, with the Decision 20 codes too)."""
        operation = "getAgenciesListQD20" if qd20 else "getAgenciesList"
        return list((await self._call(operation, {}, method="GET")).get("data") or [])

    def _signed(self, logical: Mapping[str, str]) -> dict[str, str]:
        system_id, secret = axis_credentials(self.system)
        return sign_headers(system_id, secret, logical, content_type=JSON)

    async def _call(self, operation: str, logical: Mapping[str, str], method: str = "POST") -> Any:
        with httpmap.map_failures(self.system):
            response = await self._client.request(
                method,
                httpmap.url_for(self.system, operation),
                headers=self._signed(logical),
                timeout=self.system.timeout,
            )
        return _answer(self.system, operation, response, response.content)

    async def _fetch(self, doc_id: str) -> Path:
        """getEdoc, its base64 decoded to a temp file as the answer streams."""
        fd, name = tempfile.mkstemp(dir=self._spool, prefix="axis-", suffix=".edxml")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, httpmap.map_failures(self.system):
                field = Base64Field(out)
                async with self._client.stream(
                    "POST",
                    httpmap.url_for(self.system, "getEdoc"),
                    headers=self._signed({"docId": doc_id}),
                    timeout=self.system.timeout,
                ) as response:
                    if response.status_code != 200:
                        _answer(self.system, "getEdoc", response, await response.aread())
                    async for chunk in response.aiter_bytes():
                        field.feed(chunk)
                answer = field.close()
            if answer.get("status") != "OK" or "data" not in answer:
                raise Rejected(
                    f"{self.system.id}: getEdoc {doc_id}: "
                    f"ErrorCode {answer.get('ErrorCode')}: {answer.get('ErrorDesc')}"
                )
        except ValueError as exc:
            path.unlink(missing_ok=True)
            raise Rejected(f"{self.system.id}: getEdoc {doc_id}: {exc}") from exc
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()
