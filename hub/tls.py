"""Mutual TLS: the verified client certificate's subject, handed to the app.

With `HUB_TLS_CERTFILE`, `HUB_TLS_KEYFILE` and `HUB_TLS_CLIENT_CA` the API speaks
HTTPS and asks every client for a certificate signed by that CA (optional, so
that operators' browsers and key-only systems still connect; a certificate that
does not verify ends the handshake). Uvicorn 0.54 does not yet pass the peer
certificate to the application (the ASGI TLS extension is still an open pull
request there), so the protocol classes below read it from the connection and
add `scope["extensions"]["tls"]["client_subject"]` to each request, the way
that extension will.

A system names its certificate's subject in the config (`tls_subject:
"CN=...,O=..."`, attributes in the certificate's order); hub/api/auth.py maps
the subject to the system.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is an optional speed-up
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

# RFC 4514 short names for the attributes certificates use; others keep their long name.
SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "serialNumber": "SERIALNUMBER",
    "emailAddress": "E",
}


def subject_of(cert: dict[str, Any]) -> str | None:
    """The subject of a certificate as `ssl` parses it, as `CN=...,O=...`."""
    rdns = cert.get("subject") or ()
    parts = [f"{SHORT.get(name, name)}={value}" for rdn in rdns for name, value in rdn]
    return ",".join(parts) or None


def normalise(subject: str) -> str:
    """A configured subject compared the way `subject_of` writes one (no spaces after commas)."""
    return ",".join(part.strip() for part in subject.split(","))


def client_subject(scope: Mapping[str, Any]) -> str | None:
    """The verified client certificate's subject of a request, if it came with one."""
    tls = scope.get("extensions", {}).get("tls") or {}
    subject = tls.get("client_subject")
    return subject if isinstance(subject, str) else None


class _PeerCertificate:
    """Mixed into uvicorn's HTTP protocols: each request's scope gets the TLS extension."""

    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        cert = ssl_object.getpeercert()  # verified by the handshake, or None
        extension = {
            "tls_version": ssl_object.version(),
            "client_subject": subject_of(cert) if cert else None,
        }
        app = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            extensions = {**scope.get("extensions", {}), "tls": extension}
            await app({**scope, "extensions": extensions}, receive, send)

        self.app = with_tls


class H11WithPeer(_PeerCertificate, H11Protocol):
    pass


def protocol() -> type[asyncio.Protocol]:
    """The HTTP protocol class for uvicorn's `http=` (httptools when installed)."""
    if HttpToolsProtocol is None:
        return H11WithPeer

    class HttpToolsWithPeer(_PeerCertificate, HttpToolsProtocol):
        pass

    return HttpToolsWithPeer


def uvicorn_options(certfile: str | None, keyfile: str | None, client_ca: str | None) -> Any:
    """Keyword arguments for uvicorn: HTTPS when a certificate is set, client certificates
    asked for (not required) when a client CA is set."""
    if not certfile:
        return {}
    options: dict[str, Any] = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
    if client_ca:
        options |= {
            "ssl_ca_certs": client_ca,
            "ssl_cert_reqs": ssl.CERT_OPTIONAL,
            "http": protocol(),
        }
    return options
