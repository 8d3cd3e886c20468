"""Who is calling: a registered system or an operator, by its Bearer key or (a system)
by its client certificate (mutual TLS, hub/tls.py); on the local document axis also
a system signing as the Government Office's SDK does (`identify_signed`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.config import Operator, System
from hub.connectors.httpmap import option_secret
from hub.connectors.xroad import Signed, verify
from hub.errors import Forbidden, Rejected, Unauthorized
from hub.tls import client_subject

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass(frozen=True)
class Caller:
    system: System | None = None
    operator: Operator | None = None

    @property
    def name(self) -> str:
        if self.system:
            return self.system.id
        assert self.operator is not None
        return f"operator:{self.operator.name}"

    def require_operator(self, role: str = "viewer") -> Operator:
        if self.operator is None or not self.operator.may(role):
            raise Forbidden(f"this needs an operator key with role {role} or higher")
        return self.operator

    def require_system(self) -> System:
        if self.system is None:
            raise Forbidden("only a registered system may send messages")
        return self.system


bearer = HTTPBearer(auto_error=False, description="A system's or an operator's API key")


def identify(hub: Hub, request: Request, key: str | None) -> Caller | None:
    """Who presents `key` and/or a verified client certificate; None when neither.

    A certificate alone names its system; a key and a certificate must name the
    same one; a system with `tls_required` is not accepted on its key alone.
    """
    subject = client_subject(request.scope)
    by_cert = hub.keys.by_subject(subject) if subject else None
    if subject and by_cert is None:
        raise Unauthorized("the client certificate names no registered system")
    if not key:
        return Caller(system=by_cert) if by_cert else None
    system = hub.keys.system(key)
    if system is not None:
        if by_cert is not None and by_cert.id != system.id:
            raise Unauthorized("the key and the client certificate name different systems")
        if by_cert is None and system.options.get("tls_required"):
            raise Unauthorized(f"{system.id} must present its client certificate")
        return Caller(system=system)
    operator = hub.keys.operator(key)
    if operator is not None and by_cert is None:
        return Caller(operator=operator)
    raise Unauthorized("unknown key: send 'Authorization: Bearer <key>' with a registered one")


AXIS_SYSTEM_ID = "axis_system_id"
AXIS_SECRET = "axis_secret"


def axis_signer(hub: Hub, system_id: str) -> System | None:
    """The system configured with `axis_system_id: system_id` (its systemid on the axis)."""
    return next(
        (s for s in hub.config.systems.values() if s.options.get(AXIS_SYSTEM_ID) == system_id),
        None,
    )


def identify_signed(hub: Hub, request: Request) -> tuple[System, Signed]:
    """The system whose SDK signed `request` (hub/connectors/xroad.py), and what it signed.

    A system signs with its `axis_system_id` and `axis_secret` options; a client
    certificate, when presented, must name the same system, and a system with
    `tls_required` must present one.

    Raises:
        Unauthorized: the reason the signature, the systemid or the timestamp is refused.
    """

    def secret_for(system_id: str) -> str | None:
        system = axis_signer(hub, system_id)
        try:
            return option_secret(system, AXIS_SECRET) if system else None
        except Rejected:  # an unset env: secret signs nothing
            return None

    signed = verify(request.headers, secret_for)
    system = axis_signer(hub, signed.system_id)
    assert system is not None
    subject = client_subject(request.scope)
    by_cert = hub.keys.by_subject(subject) if subject else None
    if subject and (by_cert is None or by_cert.id != system.id):
        raise Unauthorized("the client certificate does not name the system that signed")
    if by_cert is None and system.options.get("tls_required"):
        raise Unauthorized(f"{system.id} must present its client certificate")
    return system, signed


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    """FastAPI dependency: the caller, or 401 for a missing or unknown key or certificate."""
    hub = request.app.state.hub
    key = credentials.credentials.strip() if credentials is not None else None
    caller = identify(hub, request, key)
    if caller is None:
        raise Unauthorized("send 'Authorization: Bearer <key>' with a system or operator key")
    if caller.system is not None:
        hub.limits.take(caller.system.id)
    return caller
