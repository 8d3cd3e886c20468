"""Hostile input to every ingest path: CloudEvents (`/api/v1/messages`), native
formats (`/api/v1/native`, a one-stop system's JSON) and edXML packages
(`/api/v1/edoc/sendEdoc`). Each case must get a 4xx that names the problem,
leave the store exactly as it was (every table counted, blob files too), and
leave the hub ready (`/readyz`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from hub.settings import Settings
from hub.store.db import Database
from hub.store.models import metadata
from tests.connectors.edxml.test_codec import (
    BILLION_LAUGHS,
    DEEP,
    EXTERNAL_ENTITY,
    QUADRATIC,
    UNDECLARED_ENTITY,
)
from tests.support import DEST_A, KEYS, OPS_KEY, SENDER, ThreadedHub, note, write_config

ONE_STOP, ONE_STOP_KEY = "000.00.12.H29:motcua", "k-motcua"
EDOC, EDOC_KEY = "000.00.00.H29:edoc", "k-edoc"
LIMIT = 256 * 1024  # the body limit the hub runs with here

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE edXML SYSTEM "http://169.254.169.254/latest/meta-data/">
<edXML/>"""
DEEP_JSON = b'{"specversion":"1.0","data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
# "Giấy mời" in Windows-1258 (â, combining acute; ơ, combining grave): not UTF-8.
LEGACY = b"Gi\xe2\xecy m\xf5\xcci"
INVALID_UTF8 = b'{"specversion":"1.0","id":"x","data":{"title":"\xff\xfe\xc3"}}'


def event_bytes(**changes: Any) -> bytes:
    return json.dumps({**note([DEST_A]), **changes}, ensure_ascii=False).encode("utf-8")


def legacy_event() -> bytes:
    return (
        b'{"specversion":"1.0","id":"l1","source":"'
        + SENDER.encode()
        + (b'","type":"vn.lgsp.demo.note.v1","data":{"title":"' + LEGACY + b'","body":"x"}}')
    )


class Oversized:
    """A body sent in chunks without Content-Length: the limit must hold while reading."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = b"x" * 65536
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk


# (case id, body, extra headers, allowed statuses, text the answer must contain)
CASES: list[tuple[str, Any, dict[str, str], tuple[int, ...], str]] = [
    ("billion-laughs", BILLION_LAUGHS, {}, (422,), ""),
    ("quadratic-blowup", QUADRATIC, {}, (422,), ""),
    ("external-entity-file", EXTERNAL_ENTITY, {}, (422,), ""),
    ("external-dtd-network", EXTERNAL_DTD, {}, (422,), ""),
    ("undeclared-entity", UNDECLARED_ENTITY, {}, (422,), ""),
    ("deep-xml", DEEP, {}, (422,), ""),
    ("deep-json", DEEP_JSON, {}, (422,), ""),
    ("invalid-utf8", INVALID_UTF8, {}, (422,), ""),
    ("legacy-encoding", legacy_event(), {}, (422,), ""),
    ("oversized-declared", b"x" * (LIMIT + 1), {}, (413,), "limit"),
    ("oversized-streamed", "stream", {}, (413,), "limit"),
    ("empty", b"", {}, (422,), ""),
]


@pytest.fixture
def hub(tmp_path: Path, backend: dict[str, str]) -> Iterator[ThreadedHub]:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    raw = yaml.safe_load(path.read_text("utf-8"))
    raw["systems"] += [
        {
            "id": ONE_STOP,
            "name": "Hệ thống một cửa điện tử",
            "kind": "procedures",
            "api_key": ONE_STOP_KEY,
            "may_send": ["vn.lgsp.dossier.*"],
        },
        {
            "id": EDOC,
            "name": "Văn phòng UBND - Quản lý văn bản",
            "kind": "edxml",
            "api_key": EDOC_KEY,
            "may_send": ["vn.lgsp.document.*"],
            "may_receive": ["vn.lgsp.document.*"],
        },
    ]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    settings = Settings(
        config=path,
        blob_dir=tmp_path / "blobs",
        max_body_bytes=LIMIT,
        max_document_bytes=LIMIT,
        **backend,
    )
    with ThreadedHub(settings) as h:
        yield h


def snapshot(hub: ThreadedHub) -> dict[str, int]:
    db = Database(hub.settings.sqlalchemy_url())
    try:
        with db.engine.connect() as conn:
            counts = {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables
                if t.name != "console_sessions"
            }
    finally:
        db.close()
    blobs = Path(hub.settings.blob_dir)
    counts["blob files"] = sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0
    return counts


PATHS = {
    "messages": ("/api/v1/messages", KEYS[SENDER], {"content-type": "application/json"}),
    "native": ("/api/v1/native", ONE_STOP_KEY, {"content-type": "application/json"}),
    "sendEdoc": (
        "/api/v1/edoc/sendEdoc",
        EDOC_KEY,
        {"from": "000.00.00.H29", "messagetype": "edoc"},
    ),
}


def post(hub: ThreadedHub, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    url, key, base = PATHS[path]
    content = Oversized(LIMIT * 4) if body == "stream" else body
    with hub.client(key) as c:
        try:
            return c.post(url, content=content, headers={**base, **headers})
        except httpx.RemoteProtocolError:  # the hub answered and closed mid-upload
            pytest.fail(f"{path}: the connection was dropped without an answer")


def refusal_text(path: str, answer: httpx.Response) -> str:
    """The refusal's explanation, after checking its shape for the path."""
    body = answer.json()
    if path == "sendEdoc":
        assert body["status"] == "FAIL" and body["ErrorCode"] != "0", body
        return str(body["ErrorDesc"])
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert body["status"] == answer.status_code and body["title"], body
    return str(body["detail"])


@pytest.mark.parametrize("path", list(PATHS))
def test_every_hostile_body_is_refused_on_every_path_and_changes_nothing(
    hub: ThreadedHub, path: str
) -> None:
    before = snapshot(hub)
    for case, body, headers, statuses, text in CASES:
        answer = post(hub, path, body, headers)
        assert answer.status_code in statuses, (case, answer.status_code, answer.text[:300])
        detail = refusal_text(path, answer)
        assert detail and text in detail, (case, detail)
        assert "root:" not in answer.text and "Traceback" not in answer.text, case
        assert snapshot(hub) == before, case
        with hub.client() as c:
            assert c.get("/readyz").status_code == 200, case


def test_a_source_or_sender_posing_as_another_system_is_refused(hub: ThreadedHub) -> None:
    before = snapshot(hub)
    spoofed = post(hub, "messages", event_bytes(source=DEST_A), {})
    assert spoofed.status_code == 403
    assert "is not the calling system" in refusal_text("messages", spoofed)
    pretend = post(hub, "sendEdoc", UNDECLARED_ENTITY, {"from": "000.00.13.H29"})
    assert pretend.status_code == 403, pretend.text
    assert snapshot(hub) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "abc\r\nX-Injected: 1"),
        ("id", "a\nb"),
        ("correlationid", "c\r\nSet-Cookie: x=1"),
        ("source", "000.00.00.H29:qlvb\r\nX: y"),
        ("type", "vn.lgsp.demo.note.v1\r\n"),
    ],
)
def test_values_that_would_inject_headers_downstream_are_refused(
    hub: ThreadedHub, field: str, value: str
) -> None:
    # The id travels on as Idempotency-Key, the correlation id in logs and headers.
    before = snapshot(hub)
    answer = post(hub, "messages", event_bytes(**{field: value}), {})
    assert answer.status_code in (403, 422), answer.text
    assert snapshot(hub) == before


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"type": "' OR '1'='1"}, 200),
        ({"source": "x'; DROP TABLE messages; --"}, 200),
        ({"correlationid": "%' OR 1=1 --"}, 200),
        ({"status": "delivered' OR 1=1"}, 422),
        ({"cursor": "1 OR 1=1"}, 422),
        ({"limit": "100000"}, 422),
        ({"since": "2026-01-01'; --"}, 422),
    ],
)
def test_injection_in_search_parameters_is_data_not_sql(
    hub: ThreadedHub, params: dict[str, str], status: int
) -> None:
    with hub.client(KEYS[SENDER]) as c:  # stored, to no one: nothing moves afterwards
        assert c.post("/api/v1/messages", json=note([])).status_code == 202
    before = snapshot(hub)
    with hub.client(OPS_KEY) as ops:
        answer = ops.get("/api/v1/messages", params=params)
        assert answer.status_code == status, answer.text
        if status == 200:
            assert answer.json()["items"] == []  # matched as text, found nothing
        else:
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert len(ops.get("/api/v1/messages").json()["items"]) == 1
    assert snapshot(hub) == before
