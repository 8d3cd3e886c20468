"""The console's defences, through real HTTP on both backends: sign-in throttling under
parallel guesses, page headers, sign-in forms from other sites, and what a viewer is
shown of a destination's error body."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from adapters.sink import RecordingSink
from hub.console import COOKIE
from hub.settings import Settings
from tests.support import (
    DEST_A,
    KEYS,
    OPS_KEY,
    PASSWORDS,
    SENDER,
    VIEWER_KEY,
    ThreadedHub,
    note,
    wait_until,
    write_config,
)


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as s:
        yield s


@pytest.fixture
def hub(tmp_path: Path, backend: dict[str, str], sink: RecordingSink) -> Iterator[ThreadedHub]:
    settings = Settings(
        config=write_config(tmp_path, sink.url), blob_dir=tmp_path / "blobs", **backend
    )
    with ThreadedHub(settings) as h:
        yield h


def sign_in(client: httpx.Client, name: str, password: str, **headers: str) -> httpx.Response:
    form = {"name": name, "password": password, "next": "/console/overview"}
    return client.post("/console/login", data=form, headers=headers, follow_redirects=False)


def test_thirty_parallel_wrong_passwords_get_five_checks(hub: ThreadedHub) -> None:
    """Each attempt is claimed before its password is checked: of 30 sent at once,
    5 are checked (401) and 25 refused (429), on SQLite and on PostgreSQL."""
    start = threading.Barrier(30)

    def guess(i: int) -> int:
        with hub.client() as c:
            start.wait()
            return sign_in(c, "ops", f"guess-{i}").status_code

    with ThreadPoolExecutor(30) as pool:
        answers = Counter(pool.map(guess, range(30)))
    assert answers == {401: 5, 429: 25}
    with hub.client() as c:
        late = sign_in(c, "ops", PASSWORDS["ops"])  # the right password, too late
        assert late.status_code == 429 and COOKIE not in late.cookies
        # A right password does not count against its name; other names are free.
        for _ in range(6):
            assert sign_in(c, "viewer", PASSWORDS["viewer"]).status_code == 303
    with hub.client(OPS_KEY) as ops:
        failed = ops.get("/api/v1/audit", params={"action": "console.sign_in_failed"}).json()
    assert len(failed["items"]) == 5  # the trail records the checked failures


def test_pages_are_neither_cached_nor_framed(hub: ThreadedHub) -> None:
    with hub.client() as c:
        assert sign_in(c, "ops", PASSWORDS["ops"]).status_code == 303
        for path in ("/console/login", "/console/overview", "/console/messages/none"):
            page = c.get(path)
            assert page.status_code in (200, 404), path
            assert page.headers["cache-control"] == "no-store", path
            assert page.headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"], path


def test_a_sign_in_form_from_another_site_is_refused(hub: ThreadedHub) -> None:
    """Login CSRF: another site's page posting the sign-in form signs nobody in."""
    with hub.client() as c:
        # What Chromium sends for a form posted from another site's page.
        forged = sign_in(c, "ops", PASSWORDS["ops"], **{"sec-fetch-site": "cross-site"})
        assert forged.status_code == 403 and COOKIE not in forged.cookies
        assert "trang web khác" in forged.text  # Vietnamese first
        # An older browser without Sec-Fetch-*: its Origin names the other site.
        forged = sign_in(c, "ops", PASSWORDS["ops"], origin="https://evil.example")
        assert forged.status_code == 403 and COOKIE not in forged.cookies
        forged = sign_in(c, "ops", PASSWORDS["ops"], origin="null")  # a sandboxed frame
        assert forged.status_code == 403 and COOKIE not in forged.cookies
        # The console's own page, as a browser sends it, signs in.
        own = sign_in(
            c, "ops", PASSWORDS["ops"], origin=hub.url, **{"sec-fetch-site": "same-origin"}
        )
        assert own.status_code == 303 and COOKIE in own.cookies


CCCD, PHONE, EMAIL, NAME = "079201001234", "0901234567", "an.nguyen@example.vn", "Văn An"


def test_a_destinations_error_body_is_masked_for_viewers(
    hub: ThreadedHub, sink: RecordingSink
) -> None:
    """A destination quoting the citizen in its error body: the viewer role sees the
    quote masked in the console and the API; the operator role sees it whole."""
    body = {"error": f"số định danh {CCCD} không khớp, gọi {PHONE}", "ho_ten": f"Nguyễn {NAME}"}
    sink.respond(422, body={**body, "email": EMAIL})
    event = note([DEST_A])
    with hub.client(KEYS[SENDER]) as c:
        assert c.post("/api/v1/messages", json=event).status_code == 202
    with hub.client(OPS_KEY) as ops:
        dead = wait_until(lambda: ops.get("/api/v1/dead-letters").json()["items"])
        assert CCCD in dead[0]["reason"]  # an operator repairs with the whole answer
    delivery = dead[0]["id"]
    with hub.client(VIEWER_KEY) as api:
        answers = [
            api.get(f"/api/v1/messages/{event['id']}").text,
            api.get("/api/v1/dead-letters").text,
            api.get(f"/api/v1/dead-letters/{delivery}").text,
            api.get("/api/v1/audit", params={"actor": "hub"}).text,
        ]
    with hub.client() as console:
        assert sign_in(console, "viewer", PASSWORDS["viewer"]).status_code == 303
        for path in (
            f"/console/messages/{event['id']}",
            "/console/dead-letters",
            f"/console/dead-letters/{delivery}",
            "/console/systems",
            "/console/audit?actor=hub",
        ):
            page = console.get(path)
            assert page.status_code == 200, path
            answers.append(page.text)
    for answer in answers:
        assert "0792******34" in answer or "0792" not in answer
        for secret in (CCCD, PHONE, EMAIL, NAME):
            assert secret not in answer, secret
