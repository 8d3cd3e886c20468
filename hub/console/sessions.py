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

from hub.store.models import console_sessions, sign_in_attempts, utcnow

LIFETIME = timedelta(hours=8)
# Sign-in throttling: after FAILURES wrong passwords for one name within WINDOW,
# that name cannot sign in (even with the right password) until the oldest of
# them is WINDOW old; a guesser gets 5 tries per name per 15 minutes. Each attempt
# is claimed in the store before its password is checked (`claim`) and counts as
# failed until the password proved right (`succeeded`), so thirty guesses sent
# at once are counted as they start: five are checked, the rest refused. The
# audit trail still records every failure, with where it came from.
FAILURES = 5
FAILED = "console.sign_in_failed"  # the audit trail's action of a wrong password
WINDOW = timedelta(minutes=15)
CLAIM_LOCK = 0x4C475349  # "LGSI": advisory locks of sign-in claims, one per name


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


@dataclass(frozen=True)
class Claim:
    """One sign-in attempt: `id` to settle it once checked, or `wait` seconds refused."""

    id: int | None
    wait: int | None


def claim(engine: sa.Engine, name: str) -> Claim:
    """Count `name`'s recent failed attempts and, under the limit, claim one more.

    Count and claim are one step for every process of the fleet: on PostgreSQL an
    advisory lock per name makes claims for one name take turns; on SQLite the
    DELETE that opens the transaction takes the database's write lock before the
    count is read.
    """
    name, now = name[:100], utcnow()
    attempts = sign_in_attempts.c
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            key = sa.func.hashtext(name)
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK, key)))
        conn.execute(sign_in_attempts.delete().where(attempts.at < now - WINDOW))
        recent = (
            conn.execute(
                sa.select(attempts.at)
                .where(attempts.name == name, attempts.at >= now - WINDOW, ~attempts.succeeded)
                .order_by(attempts.at.desc())
                .limit(FAILURES)
            )
            .scalars()
            .all()
        )
        if len(recent) >= FAILURES:
            return Claim(None, max(1, int((recent[-1] + WINDOW - now).total_seconds()) + 1))
        new = conn.execute(
            sign_in_attempts.insert().values(name=name, at=now).returning(attempts.id)
        ).scalar_one()
    return Claim(int(new), None)


def succeeded(engine: sa.Engine, attempt: int) -> None:
    """The attempt's password was right: it no longer counts against its name."""
    with engine.begin() as conn:
        conn.execute(
            sign_in_attempts.update().where(sign_in_attempts.c.id == attempt).values(succeeded=True)
        )


def failed_actor(name: str) -> str:
    """The audit trail's actor of a failed sign-in as `name` (which may be no operator's)."""
    return f"console:{name[:100]}"
