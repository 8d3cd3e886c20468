"""RFC 9457 problem details: every refusal the API gives, in one shape."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from hub.errors import FieldError, Rejected, TooMany, Transient

PROBLEM_BASE = "https://lgsp-hub.example/problems/"
MEDIA_TYPE = "application/problem+json"


def problem_response(
    status: int,
    problem: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + problem,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in errors]
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Map hub errors, HTTP errors and request validation errors to problem+json."""

    @app.exception_handler(Rejected)
    async def _rejected(request: Request, exc: Rejected) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, TooMany):
            headers = {"Retry-After": str(exc.retry_after)}
        return problem_response(
            exc.status,
            exc.problem,
            exc.title,
            exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=headers,
        )

    @app.exception_handler(Transient)
    async def _transient(request: Request, exc: Transient) -> Response:
        return problem_response(
            503,
            "unavailable",
            "Service unavailable",
            exc.detail,
            instance=request.url.path,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    async def _database(request: Request, exc: sqlalchemy.exc.OperationalError) -> Response:
        # The store is away (restart, failover): nothing was accepted; the caller retries.
        return problem_response(
            503,
            "unavailable",
            "Service unavailable",
            "the store is unreachable; nothing was accepted, send again later",
            instance=request.url.path,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return problem_response(
            exc.status_code,
            "http-" + str(exc.status_code),
            str(exc.detail),
            str(exc.detail),
            instance=request.url.path,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            FieldError("/" + "/".join(str(p) for p in e.get("loc", ())), str(e.get("msg", "")))
            for e in exc.errors()
        ]
        detail = errors[0].pointer + ": " + errors[0].detail if errors else "invalid request"
        return problem_response(
            422,
            "invalid-request",
            "Invalid request",
            detail,
            instance=request.url.path,
            errors=errors,
        )
