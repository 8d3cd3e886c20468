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
from hub.settings import Settings
from hub.tls import uvicorn_options
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
        settings = Settings(config=path, database_url=f"sqlite:///{tmp_path / 'hub.db'}")
        options = uvicorn_options(str(server), str(server), str(ca_file))
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
