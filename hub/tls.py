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
"O=...,OU=...,CN=..."`, RFC 4514 syntax but the RDNs in the certificate's order);
hub/api/auth.py maps the subject to the system. Both sides are written by
`cryptography` (each RDN's `rfc4514_string`), so a comma or a plus sign inside a
value stays escaped and a multi-valued RDN keeps its `+`: an OU reading
"Văn phòng,CN=..." or an RDN "OU=...+CN=..." cannot pass for another subject.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is an optional speed-up
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

# Names RFC 4514 lacks that configs use; `cryptography` writes these attributes by OID.
_EXTRA_NAMES = {"E": NameOID.EMAIL_ADDRESS, "SERIALNUMBER": NameOID.SERIAL_NUMBER}
_SPACE_AFTER_COMMA = re.compile(r"(?<!\\),\s+")


def _written(rdns: Iterable[x509.RelativeDistinguishedName]) -> str:
    return ",".join(rdn.rfc4514_string() for rdn in rdns)


def subject_of(der: bytes) -> str | None:
    """The subject of a DER certificate, its RDNs in the certificate's order, escaped."""
    return _written(x509.load_der_x509_certificate(der).subject.rdns) or None


def normalise(subject: str) -> str:
    """A configured subject written the way `subject_of` writes one.

    Raises:
        ValueError: not a distinguished name in RFC 4514 syntax.
    """
    text = _SPACE_AFTER_COMMA.sub(",", subject.strip())
    name = x509.Name.from_rfc4514_string(text, _EXTRA_NAMES)
    # from_rfc4514_string reads the RFC's order (last RDN first); configs list the
    # certificate's order, so the parsed RDNs are turned back.
    return _written(reversed(name.rdns))


def client_subject(scope: Mapping[str, Any]) -> str | None:
    """The verified client certificate's subject of a request, if it came with one."""
    tls = scope.get("extensions", {}).get("tls") or {}
    subject = tls.get("client_subject")
    return subject if isinstance(subject, str) else None


class PeerCertificate:
    """Mixed into uvicorn's HTTP protocols: each request's scope gets the TLS extension."""

    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)  # verified by the handshake, or None
        extension = {
            "tls_version": ssl_object.version(),
            "client_subject": subject_of(der) if der else None,
        }
        app = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            extensions = {**scope.get("extensions", {}), "tls": extension}
            await app({**scope, "extensions": extensions}, receive, send)

        self.app = with_tls


class H11WithPeer(PeerCertificate, H11Protocol):
    pass


def protocol() -> type[asyncio.Protocol]:
    """The HTTP protocol class for uvicorn's `http=` (httptools when installed)."""
    if HttpToolsProtocol is None:
        return H11WithPeer

    class HttpToolsWithPeer(PeerCertificate, HttpToolsProtocol):
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
