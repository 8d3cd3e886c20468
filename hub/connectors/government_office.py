"""Government Office task-tracking connector (`kind: government_office`) and its poller.

System: the Government Office's task-tracking system (hệ thống theo dõi nhiệm
vụ của Văn phòng Chính phủ), which assigns directives to the city and follows
its progress. Protocol: JSON over HTTP with an `X-Api-Key`
(contracts/government-office.openapi.yaml; simulator adapters/government_office).
Supported: pulling directive changes (`GovernmentOfficePoller`), decoding a
pushed change (`decode_push`), and delivering `directive.progress.v1` and
`directive.completed.v1` (`deliver`). Mapping: hub/connectors/government_office_codec.py.

Config. The office is one System of this kind, e.g.

    - id: 000.00.00.G22:theodoinhiemvu
      kind: government_office
      endpoint: https://nhiemvu.example/        # {endpoint}/api/progress ...
      api_key: env:GOV_PUSH_KEY                 # what the OFFICE sends when it pushes to the hub
      outbound_key: env:GOV_CITY_KEY            # the city's X-Api-Key on the office's API

`outbound_key` lands in `options` unresolved (hub/config.py resolves `env:`
only for `api_key`), so it is resolved here: `env:NAME` is read from the
environment when used; a literal works too but sits in the file in clear.

Idempotency: `Idempotency-Key` carries the hub message id; the office answers a
repeat 200 with its first receipt (`MaTiepNhan`). Event ids of directive
changes are `event_id_for(directive_id, version)`, the same on every pull or
push, so the hub stores each version once.

Error mapping, shared with the other httpx connectors (hub/connectors/httpmap.py):
timeouts, connection errors, 408, 425, 429 and 5xx are `Transient` (honouring
Retry-After; a 429 slows the whole destination); any other non-2xx is
`Rejected` with the office's `MaLoi: MoTaLoi`. The client is httpx: directives
are tens a day, so the per-request cost aiohttp saves does not matter here.

Polling: `GovernmentOfficePoller` follows `GET /api/directives/changes` by
`Seq`. The cursor (`government_office:<system id>` in the store's `cursors`
table) is JSON `{"seq": <last Seq handed over or passed>, "accepted": n,
"refused": [{"seq", "id", "reason", "at"}, ...last 100], "last": {...}}` and
is saved after every item: a crash between `accept` and the save hands that
one item again (same id: the hub drops it); nothing after a failed item is
handed before it (no gap). A change the hub refuses (`Rejected` from the
mapping or from `accept`) is logged, recorded in `refused` and passed, so one
bad directive cannot block the stream. `Forbidden` and `Unauthorized` are the
exception: they say the office's System lacks a right in the hub's config
(`may_send` of the directive types), which every directive would hit, so like
any other failure they stop the round at that item and the next round starts
there again. So does `Conflict` (the office sent that directive version before
with other content): passing it would lose one of the two, so the poller stops
there, logs an error at every round, counts it (`hub_messages_conflicting`) and
shows it in the cursor's `blocked` entry until an operator settles it. Ids are
unique per source (hub/store/messages.py), so another system's event with the
same id is no conflict.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson

from hub.config import System
from hub.connectors import httpmap
from hub.connectors.base import OutboundRequest, Receipt
from hub.connectors.government_office_codec import (
    COMPLETED,
    PROGRESS,
    completion_native,
    event_for,
    event_id_for,
    progress_native,
    to_event_data,
)
from hub.errors import Conflict, Forbidden, Rejected, Transient, Unauthorized
from hub.store import cursors
from hub.store.db import Database

__all__ = [
    "GovernmentOfficeConnector",
    "GovernmentOfficePoller",
    "completion_native",
    "decode_push",
    "event_id_for",
    "outbound_key",
    "progress_native",
    "to_event_data",
]

log = logging.getLogger(__name__)

MAX_RECORDED_BODY = 500
MAX_REFUSED_KEPT = 100
PAGE = 100
OPERATIONS = {PROGRESS: "api/progress", COMPLETED: "api/completion"}

Accept = Callable[[dict[str, Any]], Awaitable[None]]


def outbound_key(system: System) -> str:
    """The city's `X-Api-Key` on the office: `options["outbound_key"]`, `env:NAME` resolved.

    Raises:
        Rejected: the option is missing, or names an unset environment variable.
    """
    key = httpmap.option_secret(system, "outbound_key")
    if key is None:
        raise Rejected(f"{system.id}: no outbound_key option (the city's key on the office)")
    return key


def decode_push(body: bytes, *, sender: System) -> dict[str, Any]:
    """A change item the office pushed -> its CloudEvent (same id as when polled).

    Raises:
        Rejected: not JSON, not a change item, or a directive the hub cannot map.
    """
    try:
        item = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"{sender.id}: the pushed body is not JSON: {exc}") from exc
    return event_for(item, sender)


class GovernmentOfficeConnector(httpmap.HttpxClient):
    """Sends the city's progress reports and completions to the Government Office."""

    kind: ClassVar[str] = "government_office"

    def __init__(self, blobs: Any = None, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(client)

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        """A pushed change item -> its event. Raises Rejected."""
        return [decode_push(native, sender=sender)]

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """The POST the office expects for a progress report or a completion."""
        kind = event.get("type")
        if kind == PROGRESS:
            body = progress_native(event)
        elif kind == COMPLETED:
            body = completion_native(event)
        else:
            raise Rejected(f"the Government Office takes {PROGRESS} and {COMPLETED}, not {kind}")
        headers = {
            "content-type": "application/json; charset=utf-8",
            "x-api-key": outbound_key(target),
            "idempotency-key": str(event["id"]),
        }
        return OutboundRequest(
            "POST", httpmap.url_for(target, OPERATIONS[kind]), headers, orjson.dumps(body)
        )

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """POST the report; raises Transient or Rejected as the module says."""
        request = self.encode(envelope, event, target)
        started = time.perf_counter()
        response = await self._send(request, target)
        answer = _answer(target, request.url, response)
        elapsed = (time.perf_counter() - started) * 1000
        receipt_id = str(answer.get("MaTiepNhan", ""))
        extra = {"receipt_id": receipt_id, "times_received": answer.get("LanNhan", 1)}
        return Receipt(response.status_code, f"MaTiepNhan {receipt_id}", elapsed, extra)


def _answer(target: System, url: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer. Raises Transient or Rejected as the module says."""
    code = response.status_code
    answer, reason = httpmap.read_answer(response, "MaLoi", "MoTaLoi")
    httpmap.raise_for_status(response, f"{target.id}: {url}: HTTP {code} {reason}".strip())
    if not isinstance(answer, dict):
        raise Rejected(f"{target.id}: {url}: HTTP {code}, the answer is not a JSON object")
    return answer


class GovernmentOfficePoller:
    """Follows the office's change log and hands each change to `accept` as a CloudEvent.

    Args:
        system: the office's System (endpoint, options.outbound_key).
        db: where the cursor is kept.
        accept: takes a CloudEvent and returns once the hub holds it; raises
            Rejected for an event it refuses (recorded and passed), anything else
            (Forbidden, Unauthorized and Conflict included) to stop the round at
            that change.
        interval: seconds between rounds of `run`.
        client: an httpx client to use (closed by its owner); default: one of its own.
    """

    def __init__(
        self,
        system: System,
        db: Database,
        accept: Accept,
        *,
        interval: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.system = system
        self.cursor_name = f"government_office:{system.id}"
        self._db = db
        self._accept = accept
        self._interval = interval
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._own_client = client is None
        self._cursor: dict[str, Any] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `interval` seconds (longer if the office asks) until `stop` is set."""
        while not stop.is_set():
            wait = self._interval
            try:
                await self.poll_once()
            except Transient as exc:
                log.warning("%s: poll deferred: %s", self.system.id, exc)
                wait = max(wait, exc.retry_after or 0.0)
            except Exception:  # a bad round must not end the poller
                log.exception("%s: poll failed", self.system.id)
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass

    async def poll_once(self) -> int:
        """Fetch the changes after the cursor, page by page; returns how many were accepted.

        Raises:
            Transient: the office is unreachable or down, or `accept` deferred a
                change; what was handed over before stays handed over.
            Rejected: the office refused the listing (e.g. a wrong key), or
                `accept` raised Forbidden or Unauthorized.
        """
        cursor = await self._load()
        accepted = 0
        while True:
            page = await self._page(int(cursor["seq"]))
            for item in page["DanhSach"]:
                accepted += await self._take(item)
            if not page["DanhSach"] or not page.get("ConNua"):
                return accepted

    async def _take(self, item: Any) -> int:
        """Hand one change to `accept`, then move the cursor past it; 1 if accepted, else 0."""
        seq = item.get("Seq") if isinstance(item, dict) else None
        if not isinstance(seq, int):
            raise Rejected(f"{self.system.id}: a change without an integer Seq: {item!r:.200}")
        cursor = await self._load()
        if seq <= cursor["seq"]:
            return 0  # already handed over (the office repeated it)
        event_id = None
        try:
            event = event_for(item, self.system)
            event_id = event["id"]
            await self._accept(event)
        except (Forbidden, Unauthorized):
            raise  # the hub's config, not the directive: passing it would lose directives
        except Conflict as exc:
            # The office sent this directive version before with other content: passing
            # it would lose one of the two. Stop here, say so, and try again next round.
            log.error("%s: change Seq %s stops the poller: %s", self.system.id, seq, exc.detail)
            cursor["blocked"] = {"seq": seq, "id": event_id, "reason": exc.detail, "at": _now()}
            await self._save()
            raise
        except Rejected as exc:
            log.warning("%s: change Seq %s refused: %s", self.system.id, seq, exc.detail)
            refused = {"seq": seq, "id": event_id, "reason": exc.detail[:MAX_RECORDED_BODY]}
            cursor["refused"] = [*cursor["refused"], refused | {"at": _now()}][-MAX_REFUSED_KEPT:]
            cursor.pop("blocked", None)
            cursor["seq"] = seq
            await self._save()
            return 0
        cursor.pop("blocked", None)
        cursor["seq"] = seq
        cursor["accepted"] += 1
        cursor["last"] = {"seq": seq, "id": event_id, "at": _now()}
        await self._save()
        return 1

    async def _page(self, after: int) -> dict[str, Any]:
        url = httpmap.url_for(self.system, "api/directives/changes")
        with httpmap.map_failures(self.system):
            response = await self._client.get(
                url,
                params={"after": str(after), "limit": str(PAGE)},
                headers={"x-api-key": outbound_key(self.system)},
                timeout=self.system.timeout,
            )
        page = _answer(self.system, url, response)
        if not isinstance(page.get("DanhSach"), list):
            raise Rejected(f"{self.system.id}: {url}: the answer has no DanhSach list")
        return page

    async def _load(self) -> dict[str, Any]:
        if self._cursor is None:
            raw = await self._db.read(cursors.load, self.cursor_name)
            fresh = {"seq": 0, "accepted": 0, "refused": [], "last": None}
            self._cursor = fresh | (json.loads(raw) if raw else {})
        return self._cursor

    async def _save(self) -> None:
        value = json.dumps(self._cursor, ensure_ascii=False)
        await self._db.run(cursors.save, self.cursor_name, value)

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()


def _now() -> str:
    return datetime.now(UTC).isoformat()
