"""The local document axis as the Government Office's SDK speaks to it, unchanged.

Requests are built by tests/sdk.py, which follows the reference's rules
(../shared/reference/STANDARDS.md) and not the hub's signing code. A city
system configured with its axis `systemid` and secret sends, lists, counts,
fetches, acknowledges and lists what it sent; every bad input is refused in
the SDK's answer shape with a reason, and nothing is stored. Timestamps come
from now. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hub import logs
from hub.config import load_config
from hub.connectors.edxml import DocumentPackage, FileBlobStore, parse
from hub.settings import Settings
from tests import sdk
from tests.support import OPS_KEY, ThreadedHub, wait_until
from tests.test_documents import CITY, DOC_ID, JUSTICE, KEYS, NOBODY, document, nothing_stored

AXIS_IDS = {CITY: "H29.CITY.EDOC", JUSTICE: "H29.JUSTICE.EDOC"}
SECRETS = {CITY: "city-axis-secret-1", JUSTICE: "justice-axis-secret-2"}


def config(tmp_path: Path) -> Path:
    def edoc(organ: str) -> dict[str, Any]:
        return {
            "id": f"{organ}:edoc",
            "name": f"Quản lý văn bản {organ}",
            "kind": "edxml",
            "api_key": KEYS[organ],
            "axis_system_id": AXIS_IDS[organ],
            "axis_secret": f"env:SDK_TEST_SECRET_{organ.replace('.', '_')}",
            "may_send": ["vn.lgsp.document.*"],
            "may_receive": ["vn.lgsp.document.*"],
        }

    doc = {
        "systems": [edoc(CITY), edoc(JUSTICE)],
        "routes": [
            {
                "name": "documents-to-recipients",
                "match": {"type": "vn.lgsp.document.sent.v1"},
                "to": {"from_data": "/recipients/*/organ_id"},
            }
        ],
        "operators": [{"name": "ops", "api_key": OPS_KEY, "role": "operator"}],
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[ThreadedHub]:
    for organ, secret in SECRETS.items():
        monkeypatch.setenv(f"SDK_TEST_SECRET_{organ.replace('.', '_')}", secret)
    settings = Settings(
        config=config(tmp_path),
        database_url=database_url,
        blob_dir=tmp_path / "blobs",
        max_document_bytes=10_000_000,
    )
    with ThreadedHub(settings) as running:
        yield running


def call(
    hub: ThreadedHub,
    organ: str,
    operation: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    content: bytes = b"",
    content_type: str = "application/json",
    **options: Any,
) -> httpx.Response:
    """One SDK call by `organ`'s system: signed headers (tests/sdk.py), no Bearer key."""
    signed = sdk.request(
        AXIS_IDS[organ], SECRETS[organ], headers or {}, content_type=content_type, **options
    )
    with httpx.Client(base_url=hub.url, timeout=30) as c:
        return c.request(method, f"/api/v1/edoc/{operation}", headers=signed, content=content)


def send_headers(package: bytes, organ: str = CITY) -> dict[str, str]:
    return {
        "from": organ,
        "to": f'[{{"OrganId":"{JUSTICE}"}}]',
        "servicetype": "eDoc",
        "messagetype": "edoc",
        "hash-file": sdk.hash_file(package),
    }


def send(hub: ThreadedHub, package: bytes, **options: Any) -> httpx.Response:
    headers = options.pop("headers", None) or send_headers(package)
    return call(
        hub,
        options.pop("organ", CITY),
        "sendEdoc",
        headers,
        content=options.pop("content", sdk.body(package)),
        content_type="application/octet-stream",
        **options,
    )


def test_an_sdk_client_sends_lists_counts_fetches_and_acknowledges(
    hub: ThreadedHub, tmp_path: Path
) -> None:
    store = FileBlobStore(tmp_path / "sender")
    package = document(store, [JUSTICE])

    r = send(hub, package)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "OK" and answer["ErrorCode"] == "0" and answer["DocId"]
    assert isinstance(answer["ErrorDesc"], str)

    listed = wait_until(
        lambda: call(hub, JUSTICE, "getReceivedEdocList", {"servicetype": "eDoc"}).json()["data"]
    )
    item = listed[0]
    assert item["docId"] == answer["DocId"]
    assert {k: item[k] for k in ("serviceType", "messageType", "from", "to")} == {
        "serviceType": "eDoc",
        "messageType": "edoc",
        "from": CITY,
        "to": JUSTICE,
    }
    for name in ("created_time", "updated_time", "status", "status_desc"):
        assert isinstance(item[name], str) and item[name], name

    for method in ("GET", "POST"):
        counted = call(hub, JUSTICE, "countReceiveEdoc", method=method).json()
        assert counted["status"] == "OK" and counted["count"] == 1, counted
    assert call(hub, JUSTICE, "countReceiveStatus", method="GET").json()["count"] == 0
    agencies = call(hub, JUSTICE, "getAgenciesList", method="GET").json()
    assert {a["organ_id"] for a in agencies["data"]} >= {CITY, JUSTICE}

    # The SDK's getEdoc carries `docId` and, from the same instance, whatever came before.
    got = call(hub, JUSTICE, "getEdoc", {"docId": answer["DocId"], "filePath": "/tmp/x"})
    assert got.status_code == 200 and got.json()["ErrorCode"] == "0"
    fetched = parse(base64.b64decode(got.json()["data"]), store, max_bytes=10_000_000)
    assert isinstance(fetched, DocumentPackage) and fetched.header.document_id == DOC_ID

    done = call(hub, JUSTICE, "updateStatus", {"docId": answer["DocId"], "status": "done"})
    assert done.status_code == 200 and done.json()["status"] == "OK", done.text

    [mine] = call(hub, CITY, "getSentEdocList", {"servicetype": "eDoc"}).json()["data"]
    assert mine["senderDocId"] == answer["DocId"] and mine["toCode"] == JUSTICE
    assert mine["fromCode"] == CITY and mine["receiveStatus"] == "done"
    assert mine["notation"] == "125/UBND-VP" and mine["title"].startswith("V/v")
    assert mine["messageType"] == "edoc" and mine["receivedTime"] and mine["sentTime"]
    assert call(hub, JUSTICE, "getReceivedEdocList", {"messagetype": "edoc"}).json()["data"] == []
    assert call(hub, JUSTICE, "countReceiveEdoc", method="GET").json()["count"] == 0


def test_full_hex_and_a_body_without_crlf_are_accepted_in_any_member_order(
    hub: ThreadedHub, tmp_path: Path
) -> None:
    package = document(FileBlobStore(tmp_path / "sender"), [JUSTICE])
    headers = send_headers(package) | {"hash-file": sdk.hashlib.sha256(package).hexdigest()}
    order = ["messagetype", "Content-Type", "from", "hash-file", "systemid", "to"]
    order += ["timestamp", "servicetype"]
    r = send(hub, package, headers=headers, content=package, order=order)
    assert r.status_code == 200 and r.json()["status"] == "OK", r.text


def test_the_sdk_hash_file_drops_each_bytes_leading_zero() -> None:
    data = next(b"x" * n for n in range(200) if min(sdk.hashlib.sha256(b"x" * n).digest()) < 16)
    assert len(sdk.hash_file(data)) < 64
    assert int(sdk.hash_file(data), 16) != int(sdk.hashlib.sha256(data).hexdigest(), 16)


def _refusals(hub: ThreadedHub, package: bytes) -> list[tuple[str, httpx.Response, str]]:
    now = datetime.now(UTC)
    good = sdk.request(AXIS_IDS[CITY], SECRETS[CITY], send_headers(package))
    content = sdk.body(package)

    def raw(headers: list[tuple[str, str]]) -> httpx.Response:
        with httpx.Client(base_url=hub.url, timeout=30) as c:
            return c.post("/api/v1/edoc/sendEdoc", headers=headers, content=content)

    wrong_hmac = sdk.replace(good, "XroadVnpt-hash-header", "0" * 64)
    other_member = sdk.replace(good, "XroadVnpt-from", JUSTICE)
    unhashed = {k: v for k, v in send_headers(package).items() if k != "hash-file"}
    return [
        ("wrong HMAC", raw(wrong_hmac), "HMAC"),
        ("a member differs from its header", raw(other_member), "differs"),
        (
            "timestamp 10 minutes old",
            send(hub, package, at=now - timedelta(minutes=10)),
            "from now",
        ),
        ("timestamp ahead", send(hub, package, at=now + timedelta(minutes=10)), "from now"),
        (
            "Unix milliseconds",
            send(hub, package, timestamp=str(int(now.timestamp() * 1000))),
            "ddMMyyyy",
        ),
        ("ISO time", send(hub, package, timestamp=now.isoformat()), "ddMMyyyy"),
        ("unknown systemid", _unknown(hub, package), "unknown systemid"),
        ("from another organisation", send(hub, package, organ=JUSTICE), "does not send for"),
        (
            "hash-file of another body",
            send(hub, package, headers=send_headers(package) | {"hash-file": "ab" * 32}),
            "hash-file",
        ),
        ("no hash-file", send(hub, package, headers=unhashed), "hash-file"),
        (
            "unsigned members only",
            raw([(n, v) for n, v in good if n != "XroadVnpt-hash-header"]),
            "hash-header",
        ),
    ]


def _unknown(hub: ThreadedHub, package: bytes) -> httpx.Response:
    signed = sdk.request("H29.NOBODY", SECRETS[CITY], send_headers(package))
    with httpx.Client(base_url=hub.url, timeout=30) as c:
        return c.post("/api/v1/edoc/sendEdoc", headers=signed, content=sdk.body(package))


def test_bad_sdk_input_is_refused_in_the_sdk_shape_and_nothing_is_stored(
    hub: ThreadedHub, tmp_path: Path
) -> None:
    package = document(FileBlobStore(tmp_path / "sender"), [JUSTICE])
    for what, r, reason in _refusals(hub, package):
        assert r.status_code in (401, 403, 422), (what, r.status_code, r.text)
        answer = r.json()
        assert answer["status"] == "FAIL" and answer["ErrorCode"] != "0", what
        assert answer["DocId"] == "", what  # the SDK reads DocId from every answer
        assert reason in answer["ErrorDesc"], (what, answer)
    assert nothing_stored(hub, tmp_path / "blobs")


def test_a_package_to_nobody_is_refused_with_an_empty_doc_id(
    hub: ThreadedHub, tmp_path: Path
) -> None:
    package = document(FileBlobStore(tmp_path / "sender"), [NOBODY])
    r = send(hub, package)
    assert r.status_code == 422 and r.json()["DocId"] == "" and r.json()["status"] == "FAIL"


def test_an_unknown_messagetype_is_refused_not_a_500(hub: ThreadedHub) -> None:
    signed = call(hub, JUSTICE, "getReceivedEdocList", {"messagetype": "foo"})
    with hub.client(KEYS[JUSTICE]) as c:
        keyed = c.post("/api/v1/edoc/getReceivedEdocList", headers={"messagetype": "foo"})
    for r in (signed, keyed):
        assert r.status_code == 422, r.text
        answer = r.json()
        assert answer["status"] == "FAIL" and "messagetype" in answer["ErrorDesc"]


def test_bearer_keys_still_work_beside_the_sdk(hub: ThreadedHub) -> None:
    with hub.client(KEYS[JUSTICE]) as c:
        r = c.get("/api/v1/edoc/countReceiveEdoc")
    assert r.status_code == 200 and r.json()["count"] == 0


def test_axis_secrets_given_by_env_are_scrubbed_from_logs(hub: ThreadedHub) -> None:
    for secret in SECRETS.values():
        assert logs.scrub(f"signing with {secret}") == "signing with ***"


def test_axis_secrets_are_known_secrets_and_go_in_pairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for organ, secret in SECRETS.items():
        monkeypatch.setenv(f"SDK_TEST_SECRET_{organ.replace('.', '_')}", secret)
    loaded = load_config(config(tmp_path))
    assert set(SECRETS.values()) <= set(loaded.secrets())

    doc = yaml.safe_load(config(tmp_path).read_text(encoding="utf-8"))
    del doc["systems"][0]["axis_secret"]
    doc["systems"][1]["axis_system_id"] = AXIS_IDS[CITY]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(Exception, match="go together") as info:
        load_config(bad)
    assert "is that of" in repr(info.value)
