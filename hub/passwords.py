"""Operator passwords: scrypt (hashlib) with a random salt, in one self-describing string.

`scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>`; `hub operators hash-password`
prints one for the config file. Only the hash is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P, LENGTH = 2**14, 8, 1, 32


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=LENGTH)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def well_formed(stored: str) -> bool:
    try:
        _parse(stored)
    except ValueError:
        return False
    return True


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt" or not (n.isdigit() and r.isdigit() and p.isdigit()):
        raise ValueError("not an scrypt hash")
    return int(n), int(r), int(p), base64.b64decode(salt), base64.b64decode(digest)


def check_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`; a missing hash takes as long and fails."""
    if stored is None:
        hash_password(password)  # the same work, so timing does not tell who exists
        return False
    n, r, p, salt, digest = _parse(stored)
    found = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(digest), maxmem=2**27
    )
    return hmac.compare_digest(found, digest)
