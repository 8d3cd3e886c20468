"""Who is calling: a registered system or an operator, by its Bearer key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.config import Operator, System
from hub.errors import Forbidden, Unauthorized


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


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    """FastAPI dependency: the caller, or 401 for a missing or unknown key."""
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized("send 'Authorization: Bearer <key>' with a system or operator key")
    hub = request.app.state.hub
    key = credentials.credentials.strip()
    system = hub.keys.system(key)
    if system is not None:
        hub.limits.take(system.id)
        return Caller(system=system)
    operator = hub.keys.operator(key)
    if operator is not None:
        return Caller(operator=operator)
    raise Unauthorized("unknown key")
