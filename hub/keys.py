"""API keys the hub issues: stored as salted hashes only, two valid at once for rotation.

A key reads `lgsp_<key id>.<secret>`: the id finds its entry without trying every
hash, the secret (256 random bits) is checked against SHA-256(salt || secret)
with a constant-time comparison. A slow password hash would add nothing for a
random 256-bit secret and would cost every request.

Where the entries live:
- `hub systems rotate-key ID` issues a key into the `system_keys` table, prints
  it once, and keeps the system's previous key valid until the next rotation or
  `--retire-previous` (callers switch in between); every process reads the
  table every few seconds.
- `hub systems new-key` prints a key and the `api_key_hash:` line for the config
  (a system or operator whose key lives in the config, without its plaintext).
- A config `api_key:` in plaintext or `env:NAME` still works (the demo uses it);
  `docs/SECURITY.md` says why a deployment should not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from hub import audit
from hub.config import HubConfig, Operator, System
from hub.store.models import system_keys, utcnow
from hub.tls import normalise

PREFIX = "lgsp_"
KEY = re.compile(r"^lgsp_([0-9a-f]{16})\.([A-Za-z0-9_-]{20,100})$")
HASH_LINE = re.compile(r"^sha256\$([0-9a-f]{16})\$([0-9a-f]{32})\$([0-9a-f]{64})$")


@dataclass(frozen=True)
class Entry:
    key_id: str
    owner: str  # a system id, or `operator:<name>` for a config operator
    salt: str  # hex
    digest: str  # hex SHA-256(salt || secret)


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def new_key() -> tuple[str, str, str, str]:
    """A fresh key: (key, key id, salt, digest)."""
    key_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
    return f"{PREFIX}{key_id}.{secret}", key_id, salt, _digest(salt, secret)


def hash_line(key_id: str, salt: str, digest: str) -> str:
    """The config's `api_key_hash:` value."""
    return f"sha256${key_id}${salt}${digest}"


def parse_hash_line(text: str) -> tuple[str, str, str] | None:
    found = HASH_LINE.match(text)
    return (found.group(1), found.group(2), found.group(3)) if found else None


class KeyRing:
    """Who a presented key belongs to: issued keys by id, config keys by digest."""

    def __init__(self, config: HubConfig, issued: Iterable[Entry] = ()) -> None:
        self.config = config
        self._entries = {e.key_id: e for e in (*_from_config(config), *issued)}
        self._subjects = {
            normalise(str(s.options["tls_subject"])): s
            for s in config.systems.values()
            if s.options.get("tls_subject")
        }

    def with_issued(self, issued: Iterable[Entry]) -> KeyRing:
        return KeyRing(self.config, issued)

    def _owner(self, key: str) -> str | None:
        found = KEY.match(key)
        if found is None:
            return None
        entry = self._entries.get(found.group(1))
        if entry is None:
            _digest("00" * 16, found.group(2))  # the same work for an unknown id
            return None
        ok = hmac.compare_digest(_digest(entry.salt, found.group(2)), entry.digest)
        return entry.owner if ok else None

    def system(self, key: str) -> System | None:
        if key.startswith(PREFIX):
            owner = self._owner(key)
            return self.config.systems.get(owner) if owner else None
        return self.config.system_by_key(key)

    def by_subject(self, subject: str) -> System | None:
        """The system a verified client certificate's subject names (mutual TLS)."""
        return self._subjects.get(subject)  # written by hub.tls.subject_of

    def operator(self, key: str) -> Operator | None:
        if key.startswith(PREFIX):
            owner = self._owner(key)
            if owner and owner.startswith("operator:"):
                return self.config.operator(owner.removeprefix("operator:"))
            return None
        return self.config.operator_by_key(key)


def _from_config(config: HubConfig) -> list[Entry]:
    entries = []
    owners: list[tuple[str, str | None]] = [
        (s.id, s.options.get("api_key_hash")) for s in config.systems.values()
    ]
    owners += [(f"operator:{o.name}", o.api_key_hash) for o in config.operators]
    for owner, line in owners:
        parsed = parse_hash_line(line) if isinstance(line, str) else None
        if parsed:
            entries.append(Entry(parsed[0], owner, parsed[1], parsed[2]))
    return entries


# The table of issued keys ----------------------------------------------------------------


def issued(engine: sa.Engine) -> list[Entry]:
    """Every key not retired."""
    q = sa.select(system_keys).where(system_keys.c.retired_at.is_(None))
    with engine.connect() as conn:
        return [Entry(r.key_id, r.system_id, r.salt, r.digest) for r in conn.execute(q)]


@dataclass(frozen=True)
class Issued:
    key: str
    key_id: str
    retired: list[str]  # ids of the keys this rotation retired


def rotate(engine: sa.Engine, system_id: str, by: str, *, retire_previous: bool) -> Issued:
    """Issue a new key for `system_id`; the newest earlier key stays valid unless
    `retire_previous`, any older one is retired (never more than two valid)."""
    key, key_id, salt, digest = new_key()
    now = utcnow()
    with engine.begin() as conn:
        live: list[str] = list(
            conn.execute(
                sa.select(system_keys.c.key_id)
                .where(system_keys.c.system_id == system_id, system_keys.c.retired_at.is_(None))
                .order_by(system_keys.c.created_at.desc(), system_keys.c.key_id)
            ).scalars()
        )
        retire = live if retire_previous else live[1:]
        if retire:
            conn.execute(
                system_keys.update()
                .where(system_keys.c.key_id.in_(retire))
                .values(retired_at=now, retired_by=by)
            )
        conn.execute(
            system_keys.insert().values(
                key_id=key_id,
                system_id=system_id,
                salt=salt,
                digest=digest,
                created_at=now,
                created_by=by,
            )
        )
        audit.append(
            conn, by, "system.rotate_key", system_id, {"key_id": key_id, "retired": retire}
        )
    return Issued(key, key_id, retire)


def listing(engine: sa.Engine, system_id: str) -> list[dict[str, str | None]]:
    """A system's issued keys, newest first: ids and dates, never a secret or hash."""
    q = (
        sa.select(system_keys)
        .where(system_keys.c.system_id == system_id)
        .order_by(system_keys.c.created_at.desc())
    )

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    with engine.connect() as conn:
        return [
            {
                "key_id": r.key_id,
                "created_at": iso(r.created_at),
                "created_by": r.created_by,
                "retired_at": iso(r.retired_at),
            }
            for r in conn.execute(q)
        ]
