"""Console sign-in sessions, kept in the store so that any API replica knows them.

The browser holds a random token in an HttpOnly, SameSite=Strict cookie; the
store holds its SHA-256 (a copy of the table signs nobody in), the operator's
name and the session's CSRF token, which every form that changes something
must send back. The role is read from the config on each request, so a demotion
takes effect at once. Sessions end at sign-out or after `LIFETIME`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from hub.store.models import audit, console_sessions, utcnow

LIFETIME = timedelta(hours=8)
# Sign-in throttling: after FAILURES wrong passwords for one name within WINDOW,
# that name cannot sign in (even with the right password) until the oldest of
# them is WINDOW old. The failures are the audit trail's, so every replica counts
# the same ones; a guesser gets 5 tries per name per 15 minutes.
FAILURES = 5
FAILED = "console.sign_in_failed"  # the audit trail's action of a wrong password
WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Session:
    operator: str
    csrf: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(engine: sa.Engine, operator: str) -> tuple[str, Session]:
    """A new session for `operator`: the cookie's token and the session."""
    token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), utcnow()
    with engine.begin() as conn:
        conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < now))
        conn.execute(
            console_sessions.insert().values(
                token_hash=_hash(token),
                operator=operator,
                csrf=csrf,
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
    return token, Session(operator, csrf)


def find(engine: sa.Engine, token: str) -> Session | None:
    """The live session of a cookie's token, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(console_sessions.c.operator, console_sessions.c.csrf).where(
                console_sessions.c.token_hash == _hash(token),
                console_sessions.c.expires_at > utcnow(),
            )
        ).first()
    return Session(row.operator, row.csrf) if row else None


def end(engine: sa.Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(console_sessions.delete().where(console_sessions.c.token_hash == _hash(token)))


def throttled(engine: sa.Engine, name: str) -> int | None:
    """Seconds until `name` may try to sign in again, or None when it may now."""
    since = utcnow() - WINDOW
    q = (
        sa.select(audit.c.at)
        .where(
            audit.c.actor == failed_actor(name),
            audit.c.action == FAILED,
            audit.c.at >= since,
        )
        .order_by(audit.c.at.desc())
        .limit(FAILURES)
    )
    with engine.connect() as conn:
        recent = conn.execute(q).scalars().all()
    if len(recent) < FAILURES:
        return None
    return max(1, int((recent[-1] + WINDOW - utcnow()).total_seconds()) + 1)


def failed_actor(name: str) -> str:
    """The audit trail's actor of a failed sign-in as `name` (which may be no operator's)."""
    return f"console:{name[:100]}"
