"""Mutual TLS: a system known by its client certificate's subject (hub/tls.py).

A real HTTPS listener (uvicorn with the hub's protocol class) and real
certificates from a test CA (trustme): a certificate alone authenticates its
system; a key and a certificate must agree; a system with `tls_required` is not
accepted on its key alone; a certificate from another CA never gets a handshake.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml

from adapters.sink import RecordingSink
from hub.config import load_config
from hub.errors import ConfigError
from hub.server import uvicorn_options
from hub.settings import Settings
from tests.support import DEST_A, KEYS, SENDER, ThreadedHub, note, wait_until, write_config

SUBJECT = "O=UBND TP Hồ Chí Minh,OU=Văn phòng,CN=000.00.00.H29:qlvb"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="LGSP test CA")


def client_cert(ca: trustme.CA, directory: Path, name: str, cn: str) -> Path:
    cert = ca.issue_cert(
        f"{name}.example", common_name=cn, organization_name="UBND TP Hồ Chí Minh",
        organization_unit_name="Văn phòng",
    )  # fmt: skip
    path = directory / f"{name}.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@pytest.fixture
def hub(tmp_path: Path, ca: trustme.CA) -> Iterator[tuple[ThreadedHub, Path]]:
    """A hub on HTTPS asking for client certificates; the sender is tls_required."""
    with RecordingSink() as sink:
        path = write_config(tmp_path, sink.url)
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        for system in config["systems"]:
            if system["id"] == SENDER:
                system |= {"tls_subject": SUBJECT, "tls_required": True}
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        server, ca_file = tmp_path / "server.pem", tmp_path / "ca.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server))
        ca.cert_pem.write_to_path(str(ca_file))
        settings = Settings(
            config=path,
            database_url=f"sqlite:///{tmp_path / 'hub.db'}",
            tls_certfile=str(server),
            tls_keyfile=str(server),
            tls_client_ca=str(ca_file),
        )
        options = uvicorn_options(settings)  # what `hub serve` runs: TLS and request limits
        with ThreadedHub(settings, **options) as running:
            running.sink = sink  # type: ignore[attr-defined]
            yield running, ca_file


def post(url: str, ca_file: Path, cert: Path | None, key: str | None, event: Any) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(ca_file))
    if cert is not None:
        context.load_cert_chain(str(cert))
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(verify=context, headers=headers, timeout=10) as client:
        return client.post(f"{url}/api/v1/messages", json=event)


def test_a_certificate_alone_authenticates_its_system(
    hub: tuple[ThreadedHub, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    running, ca_file = hub
    cert = client_cert(ca, tmp_path, "sender", "000.00.00.H29:qlvb")
    event = note([DEST_A])
    answer = post(running.url, ca_file, cert, None, event)
    assert answer.status_code == 202, answer.text
    sink = running.sink  # type: ignore[attr-defined]
    wait_until(lambda: event["id"] in sink.delivered_ids(), timeout=20)
    # ... and only as itself: the same certificate cannot send as another source.
    forged = note([DEST_A], source=DEST_A)
    refused = post(running.url, ca_file, cert, None, forged)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"


def test_key_alone_refused_for_a_system_that_requires_its_certificate(
    hub: tuple[ThreadedHub, Path],
) -> None:
    running, ca_file = hub
    answer = post(running.url, ca_file, None, KEYS[SENDER], note([DEST_A]))
    assert answer.status_code == 401
    assert "client certificate" in answer.json()["detail"]
    # No key, no certificate: 401 naming what to send.
    assert post(running.url, ca_file, None, None, note([DEST_A])).status_code == 401


def test_key_and_certificate_must_name_the_same_system(
    hub: tuple[ThreadedHub, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    running, ca_file = hub
    cert = client_cert(ca, tmp_path, "sender", "000.00.00.H29:qlvb")
    answer = post(running.url, ca_file, cert, KEYS[DEST_A], note([DEST_A], source=DEST_A))
    assert answer.status_code == 401
    assert "different systems" in answer.json()["detail"]
    # Key-only systems keep working beside certificate ones.
    assert post(running.url, ca_file, None, KEYS[DEST_A], note([SENDER], source=DEST_A)).is_success


def test_unknown_subject_and_foreign_ca_refused(
    hub: tuple[ThreadedHub, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    running, ca_file = hub
    stranger = client_cert(ca, tmp_path, "stranger", "000.00.99.H29:khac")
    answer = post(running.url, ca_file, stranger, None, note([DEST_A]))
    assert answer.status_code == 401
    assert "names no registered system" in answer.json()["detail"]
    other_ca = trustme.CA()
    foreign = client_cert(other_ca, tmp_path, "foreign", "000.00.00.H29:qlvb")
    with pytest.raises(httpx.HTTPError):  # the handshake fails: the app never sees it
        post(running.url, ca_file, foreign, None, note([DEST_A]))


def test_config_checks_tls_settings(tmp_path: Path) -> None:
    with RecordingSink() as sink:
        path = write_config(tmp_path, sink.url)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["systems"][0] |= {"tls_subject": SUBJECT}
    config["systems"][1] |= {"tls_subject": SUBJECT.replace(",", ", ")}
    config["systems"][2] |= {"tls_required": True}
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    text = "\n".join(raised.value.problems)
    assert f"tls_subject of {DEST_A} is that of system {SENDER}" in text
    assert "tls_required of 000.00.13.H29:qlvb must be true or false, with tls_subject" in text


def forged_cert(
    ca: trustme.CA, directory: Path, name: str, rdns: list[list[tuple[Any, str]]]
) -> Path:
    """A client certificate signed by `ca` with exactly the subject `rdns` (cert order)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.RelativeDistinguishedName([x509.NameAttribute(o, v) for o, v in rdn]) for rdn in rdns]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    path = directory / f"{name}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_a_subject_with_a_comma_or_a_multi_valued_rdn_is_not_another_systems(
    hub: tuple[ThreadedHub, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    """The CA signs what a system asks for in its OU; read unescaped, an OU of
    "Văn phòng,CN=000.00.00.H29:qlvb" (or OU and CN as one multi-valued RDN) would
    read as the sender's configured subject."""
    from cryptography.x509.oid import NameOID as N

    running, ca_file = hub
    org = (N.ORGANIZATION_NAME, "UBND TP Hồ Chí Minh")
    forgeries = {
        "comma": [[org], [(N.ORGANIZATIONAL_UNIT_NAME, "Văn phòng,CN=000.00.00.H29:qlvb")]],
        "multi": [
            [org],
            [(N.ORGANIZATIONAL_UNIT_NAME, "Văn phòng"), (N.COMMON_NAME, "000.00.00.H29:qlvb")],
        ],
    }
    for name, rdns in forgeries.items():
        cert = forged_cert(ca, tmp_path, name, rdns)
        answer = post(running.url, ca_file, cert, None, note([DEST_A]))
        assert answer.status_code == 401, (name, answer.text)
        assert "names no registered system" in answer.json()["detail"]
    # The genuine subject, built the same way, still authenticates.
    genuine = [[org], [(N.ORGANIZATIONAL_UNIT_NAME, "Văn phòng")], [(N.COMMON_NAME, SENDER)]]
    cert = forged_cert(ca, tmp_path, "genuine", genuine)
    assert post(running.url, ca_file, cert, None, note([DEST_A])).status_code == 202
