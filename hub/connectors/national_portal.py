"""National Public Service Portal connector (`kind: national_portal`): dossier synchronisation.

System: Cổng Dịch vụ công quốc gia (DVCQG), which shows every dossier of the
country to its applicant. Protocol: JSON over HTTP; a login gives a session
token that travels in each request body, `{"session", "madonvi", "service",
...}`; success is `error_code` "00" (contracts/national-portal.openapi.yaml;
simulator adapters/national_portal). Supported: delivering the canonical
dossier events (`vn.lgsp.dossier.*.v1`) with `DongBoHoSoMC`, one event or a
batch of them per call (`deliver_batch`, when the system's config sets
`batch: N`). Mapping and status codes: hub/connectors/national_portal_codec.py
and hub/connectors/portal_status.yaml.

Config. The portal is one System of this kind, e.g.

    - id: 000.00.00.G22:dvcqg
      kind: national_portal
      endpoint: https://dichvucong.example/      # {endpoint}/api/auth/login, /api/dongbohoso
      may_receive: ["vn.lgsp.dossier.*"]
      batch: 50                                  # items per DongBoHoSoMC call
      ordered_by: /dossier_code                  # one dossier's updates in order
      madonvi: 000.00.00.H29                     # the city's unit code on the portal
      username: env:DVCQG_USER
      password: env:DVCQG_PASSWORD

`username` and `password` land in `options` unresolved, so they are resolved
here when used: `env:NAME` is read from the environment; a literal works too.

Session: one token per portal System, cached until shortly before the
`expires_in` the login answered. An answer saying the session is invalid or
expired (HTTP 401, or `error_code` "-1") forgets it, logs in again and repeats
the call once.

Error mapping. Whole call: timeouts, connection errors, 408, 425 and 5xx are
`Transient` (honouring Retry-After); 429 is `Transient(throttle=True)`, so the
worker pauses the whole destination for Retry-After; any other failure (a
refused login, a malformed request) is `Rejected`. Per item (`ketqua`, in the
order of `data`): "00" is a Receipt; "99" (the portal's temporary failure) is
`Transient`; any other code (unknown MaTTHC, an invalid field) is `Rejected`
with the portal's code and message, which the dead letter shows. An event the
connector cannot map (not a dossier event, a status without a code) is that
item's `Rejected` and is not sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx
import orjson

from hub.config import System
from hub.connectors import httpmap
from hub.connectors.base import OutboundRequest, Outcomes, Receipt
from hub.connectors.national_portal_codec import (
    PORTAL_STATUS,
    is_updating,
    load_statuses,
    portal_date,
    portal_item,
    portal_status,
)
from hub.errors import Rejected, Transient

__all__ = [
    "PORTAL_STATUS",
    "NationalPortalConnector",
    "load_statuses",
    "portal_date",
    "portal_item",
    "portal_status",
]

OK = {"00", "0"}
EXPIRED = {"-1"}  # error_code of a session the portal no longer knows
ITEM_TRANSIENT = {"99"}  # error_code of an item the portal could not take this time
SESSION_MARGIN = 30.0  # seconds before the announced expiry a token is renewed
SYNC = "api/dongbohoso"
LOGIN = "api/auth/login"


def option(system: System, name: str) -> str:
    """A string option of `system`, `env:NAME` resolved. Raises Rejected when missing or unset."""
    value = httpmap.option_secret(system, name)
    if value is None:
        raise Rejected(f"{system.id}: no {name} option (the city's account on the portal)")
    return value


class _Expired(Exception):
    """The portal no longer knows the session the call carried."""


class NationalPortalConnector(httpmap.HttpxClient):
    """Synchronises dossiers to the National Public Service Portal with DongBoHoSoMC."""

    kind: ClassVar[str] = "national_portal"

    def __init__(self, blobs: Any = None, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(client)
        self._sessions: dict[str, tuple[str, float]] = {}  # system id -> (token, renew at)
        self._locks: dict[str, asyncio.Lock] = {}
        self.logins = 0  # login calls made, for tests and metrics

    def decode(self, native: bytes, *, sender: System) -> list[dict[str, Any]]:
        """The portal pushes nothing to the hub. Raises Rejected."""
        raise Rejected(f"{sender.id}: the national portal sends nothing to the hub")

    def encode(self, envelope: bytes, event: Mapping[str, Any], target: System) -> OutboundRequest:
        """The DongBoHoSoMC call for one event, with the cached session ("" before a login)."""
        item = portal_item(event)
        token = self._sessions.get(target.id, ("", 0.0))[0]
        body = _sync_body(target, [item]) | {"session": token}
        headers = {"content-type": "application/json; charset=utf-8"}
        return OutboundRequest("POST", httpmap.url_for(target, SYNC), headers, orjson.dumps(body))

    async def deliver(self, envelope: bytes, event: Mapping[str, Any], target: System) -> Receipt:
        """Synchronise one dossier event; raises Transient or Rejected as the module says."""
        (result,) = await self.deliver_batch([(envelope, event)], target)
        if isinstance(result, Receipt):
            return result
        raise result

    async def deliver_batch(
        self, items: Sequence[tuple[bytes, Mapping[str, Any]]], target: System
    ) -> Outcomes:
        """Synchronise several dossier events in one DongBoHoSoMC call: one result per item."""
        results: list[Receipt | Transient | Rejected | None] = [None] * len(items)
        data, positions = [], []
        for position, (_, event) in enumerate(items):
            try:
                data.append(portal_item(event))
                positions.append(position)
            except Rejected as exc:
                results[position] = exc
        if data:
            try:
                outcomes = await self._sync(target, data)
            except (Transient, Rejected) as exc:
                outcomes = [exc] * len(data)
            for position, outcome in zip(positions, outcomes, strict=True):
                results[position] = outcome
        return [r for r in results if r is not None]

    # The portal's API ------------------------------------------------------------------------

    async def _sync(self, target: System, data: list[dict[str, Any]]) -> Outcomes:
        started = time.perf_counter()
        body = _sync_body(target, data)
        answer = await self._call(target, SYNC, body)
        elapsed = (time.perf_counter() - started) * 1000
        ketqua = answer.get("ketqua")
        if not isinstance(ketqua, list) or len(ketqua) != len(data):
            got = len(ketqua) if isinstance(ketqua, list) else "no"
            problem = Transient(f"{target.id}: {got} results in ketqua for {len(data)} items")
            return [problem] * len(data)
        return [_outcome(target, i, r, elapsed) for i, r in zip(data, ketqua, strict=True)]

    async def _call(self, target: System, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` with a session, logging in again once if the portal forgot it."""
        token = await self._session(target)
        try:
            return await self._post(target, operation, body | {"session": token})
        except _Expired:
            self._forget(target, token)
        token = await self._session(target)
        try:
            return await self._post(target, operation, body | {"session": token})
        except _Expired as exc:
            self._forget(target, token)
            raise Transient(f"{target.id}: the portal refused a fresh session") from exc

    async def _post(self, target: System, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        url = httpmap.url_for(target, operation)
        with httpmap.map_failures(target):
            response = await self._http().post(
                url,
                content=orjson.dumps(body),
                headers={"content-type": "application/json; charset=utf-8"},
                timeout=target.timeout,
            )
        answer = _answer(target, url, response)
        code = str(answer.get("error_code"))
        if response.status_code == 401 or code in EXPIRED:
            raise _Expired(code)
        if code not in OK:
            raise Rejected(f"{target.id}: {url}: error_code {code}: {answer.get('message')}")
        return answer

    async def _session(self, target: System) -> str:
        """The cached session token of `target`, or a new one from a login."""
        lock = self._locks.setdefault(target.id, asyncio.Lock())
        async with lock:
            token, renew_at = self._sessions.get(target.id, ("", 0.0))
            if token and time.monotonic() < renew_at:
                return token
            return await self._login(target)

    async def _login(self, target: System) -> str:
        url = httpmap.url_for(target, LOGIN)
        body = {
            "username": option(target, "username"),
            "password": option(target, "password"),
            "madonvi": option(target, "madonvi"),
        }
        self.logins += 1
        with httpmap.map_failures(target):
            response = await self._http().post(url, json=body, timeout=target.timeout)
        answer = _answer(target, url, response)
        token = answer.get("session")
        if str(answer.get("error_code")) not in OK or not isinstance(token, str) or not token:
            reason = f"error_code {answer.get('error_code')}: {answer.get('message')}"
            raise Rejected(f"{target.id}: login refused: {reason}")
        lifetime = answer.get("expires_in")
        ttl = float(lifetime) if isinstance(lifetime, int | float) else 1800.0
        self._sessions[target.id] = (token, time.monotonic() + max(ttl - SESSION_MARGIN, 0.0))
        return token

    def _forget(self, target: System, token: str) -> None:
        if self._sessions.get(target.id, ("", 0.0))[0] == token:
            del self._sessions[target.id]


def _sync_body(target: System, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "madonvi": option(target, "madonvi"),
        "service": "DongBoHoSoMC",
        "isUpdating": is_updating(data),
        "data": data,
    }


def _outcome(
    target: System, item: Mapping[str, Any], result: Any, elapsed: float
) -> Receipt | Transient | Rejected:
    """One `ketqua` entry -> the item's Receipt, Transient or Rejected."""
    dossier = item["MaHoSo"]
    if not isinstance(result, dict) or result.get("MaHoSo") != dossier:
        return Transient(f"{target.id}: ketqua out of step with data at {dossier}: {result!r:.200}")
    code, message = str(result.get("error_code")), result.get("message") or ""
    if code in OK:
        extra = {"dossier_code": dossier, "portal_status": item["TrangThaiHoSo"]}
        return Receipt(
            200, f"DVCQG {dossier} TrangThaiHoSo {item['TrangThaiHoSo']}", elapsed, extra
        )
    problem = f"{target.id}: the portal refused {dossier}: error_code {code}: {message}"
    if code in ITEM_TRANSIENT:
        return Transient(problem)
    return Rejected(problem)


def _answer(target: System, url: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON object of an answer. Raises Transient or Rejected as the module says."""
    code = response.status_code
    answer, reason = httpmap.read_answer(response, "error_code", "message", prefix="error_code ")
    # 401 passes: the caller tells an expired session from a refused login
    httpmap.raise_for_status(
        response, f"{target.id}: {url}: HTTP {code} {reason}".strip(), accept={401}
    )
    if code == 401:
        return answer if isinstance(answer, dict) else {"error_code": "401", "message": reason}
    if not isinstance(answer, dict):
        raise Rejected(f"{target.id}: {url}: HTTP {code}, the answer is not a JSON object")
    return answer
