"""Errors that say what the caller should do.

    HubError
    ├── Rejected          permanent: bad input, missing rights, a destination's 4xx.
    │   ├── Unauthorized  the caller is not a known system or operator (HTTP 401)
    │   ├── Forbidden     known caller, no right to do this (HTTP 403)
    │   ├── Invalid       envelope or payload fails its schema (HTTP 422)
    │   │   └── TooDeep   JSON nested deeper than the hub reads (HTTP 422)
    │   ├── TooLarge      body over the size limit (HTTP 413)
    │   ├── Conflict      the id came before from that source with other content (HTTP 409)
    │   └── NotFound      no such message or dead letter (HTTP 404)
    ├── Transient         timeout, 5xx, connection refused, broker down: retry later
    └── ConfigError       the config file is wrong; start-up stops

The API maps `Rejected` subclasses to RFC 9457 problem+json (hub/api/problems.py);
delivery sends `Rejected` straight to the dead-letter store and retries `Transient`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One failing field: a JSON pointer into the request and what is wrong there."""

    pointer: str
    detail: str


class Rejected(HubError):
    """Permanent failure: retrying the same input cannot succeed."""

    status = 422
    problem = "rejected"
    title = "Request rejected"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class Unauthorized(Rejected):
    status = 401
    problem = "unauthorized"
    title = "Unknown or missing credentials"


class Forbidden(Rejected):
    status = 403
    problem = "forbidden"
    title = "Not allowed"


class Invalid(Rejected):
    status = 422
    problem = "invalid"
    title = "Invalid message"


class TooDeep(Invalid):
    problem = "too-deep"
    title = "JSON nested too deep"


class TooLarge(Rejected):
    status = 413
    problem = "too-large"
    title = "Body too large"


class TooMany(Rejected):
    """The caller is over its rate limit; `retry_after` seconds until it may try again."""

    status = 429
    problem = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Conflict(Rejected):
    status = 409
    problem = "conflict"
    title = "Conflict"


class NotFound(Rejected):
    status = 404
    problem = "not-found"
    title = "Not found"


class Transient(HubError):
    """Temporary failure: the same call may succeed later.

    Args:
        retry_after: seconds the other side asked us to wait (HTTP Retry-After), if any.
        throttle: the other side is rate-limiting (HTTP 429): the whole destination
            slows down for `retry_after`, not only this message.
    """

    def __init__(
        self, detail: str, *, retry_after: float | None = None, throttle: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.throttle = throttle


@dataclass
class ConfigError(HubError):
    """The config file is wrong. Names the file, the line and what is wrong."""

    file: str
    line: int | None
    detail: str
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.detail}"
