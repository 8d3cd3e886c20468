"""The console in a real browser: Playwright for Python driving Debian's headless
Chromium (/usr/bin/chromium; `.ci/run` installs it from Debian's packages, nothing
is downloaded). The hub serves on a real socket and delivers to a real sink."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.sink import RecordingSink
from hub.settings import Settings
from tests.support import (
    DEST_A,
    DEST_B,
    KEYS,
    OPS_KEY,
    PASSWORDS,
    SENDER,
    ThreadedHub,
    note,
    wait_until,
    write_config,
)

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        message = f"no Chromium at {CHROMIUM} (Debian package chromium)"
        if os.environ.get("HUB_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as s:
        yield s


@pytest.fixture
def hub(tmp_path: Path, backend: dict[str, str], sink: RecordingSink) -> Iterator[ThreadedHub]:
    settings = Settings(
        config=write_config(tmp_path, sink.url, delays=[0.2]),
        blob_dir=tmp_path / "blobs",
        **backend,
    )
    with ThreadedHub(settings) as h:
        yield h


def send(hub: ThreadedHub, *events: dict[str, Any]) -> None:
    with hub.client(KEYS[SENDER]) as c:
        for event in events:
            assert c.post("/api/v1/messages", json=event).status_code == 202


def sign_in(browser: Any, hub: ThreadedHub, name: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(f"{hub.url}/console/overview")
    assert "/console/login" in page.url  # not signed in: sent to the sign-in page
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/overview$"))
    return page


def test_sign_in_refuses_a_wrong_password_and_speaks_vietnamese_first(
    browser: Any, hub: ThreadedHub
) -> None:
    page = browser.new_page()
    page.goto(f"{hub.url}/console/login")
    page.fill("input[name=name]", "ops")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "Sai tên hoặc mật khẩu."
    page.close()

    page = sign_in(browser, hub, "ops")
    assert page.get_by_role("link", name="Tổng quan").is_visible()
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("link", name="Overview").is_visible()
    assert page.get_by_test_id("who").inner_text() == "Signed in as ops (operator)"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/console/login$"))
    page.goto(f"{hub.url}/console/overview")
    assert "/console/login" in page.url  # the session ended
    page.close()


def test_overview_shows_the_tests_traffic_and_refreshes_itself(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    send(hub, *(note([DEST_A]) for _ in range(5)))
    wait_until(lambda: len(sink.delivered_ids()) == 5)
    page = sign_in(browser, hub, "ops")
    row = page.locator(f"tr[data-destination='{DEST_A}']")
    assert row.locator("[data-col=per_min]").inner_text() == "1.0"  # 5 in the 5-minute window
    assert page.locator("polyline[data-series=delivered]").get_attribute("data-total") == "5"
    route = page.locator("table[data-testid=routes] tr[data-route=notes-to-recipients]")
    assert "000.00.12.H29:qlvb (5)" in route.inner_text()

    # Ten more while the page is open: the figures change without a reload.
    send(hub, *(note([DEST_A]) for _ in range(10)))
    wait_until(lambda: len(sink.delivered_ids()) == 15)
    page.wait_for_function(
        '() => document.querySelector("polyline[data-series=delivered]")'
        ".getAttribute('data-total') === '15'",
        timeout=15_000,
    )
    assert page.locator("[data-live]").get_attribute("data-refreshes") not in (None, "0")
    assert row.locator("[data-col=per_min]").inner_text() == "3.0"


def test_a_search_finds_a_message_and_its_timeline(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    wanted = {**note([DEST_A, DEST_B]), "correlationid": "hs-2026-000123"}
    send(hub, note([DEST_B]), wanted, note([DEST_B]))
    wait_until(lambda: len(sink.delivered_ids()) == 4)
    page = sign_in(browser, hub, "ops")
    page.get_by_role("link", name="Thông điệp").click()
    page.fill("input[name=correlationid]", "hs-2026-000123")
    page.get_by_role("button", name="Tìm kiếm").click()
    results = page.get_by_test_id("results")
    assert results.locator("tbody tr").count() == 1
    results.get_by_role("link", name=wanted["id"]).click()
    assert page.get_by_test_id("status").inner_text() == "đã chuyển"
    timeline = page.get_by_test_id("timeline").inner_text()
    assert "accepted" in timeline
    assert f"routed → {DEST_A}" in timeline and f"delivered → {DEST_B}" in timeline
    assert "Giấy mời họp" in page.get_by_test_id("envelope").inner_text()

    # By destination and status, from the same form.
    page.get_by_role("link", name="Thông điệp").click()
    page.select_option("select[name=destination]", DEST_A)
    page.select_option("select[name=status]", "delivered")
    page.get_by_role("button", name="Tìm kiếm").click()
    assert page.get_by_test_id("results").locator("tbody tr").count() == 1


def test_a_dead_letter_is_replayed_after_confirmation_and_shows_delivered(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    sink.respond(422, body={"error": "thiếu trường"})
    event = note([DEST_A])
    send(hub, event)
    with hub.client(OPS_KEY) as ops:
        wait_until(lambda: ops.get("/api/v1/dead-letters").json()["items"])
    sink.respond(200)  # the destination is fixed

    page = sign_in(browser, hub, "ops")
    page.get_by_role("link", name="Thư lỗi").click()
    rows = page.get_by_test_id("dead-letters").locator("tbody tr")
    assert rows.count() == 1 and "HTTP 422" in rows.first.inner_text()
    rows.first.locator("a").first.click()
    page.get_by_test_id("replay").click()
    assert "Gửi lại thư lỗi" in page.get_by_test_id("question").inner_text()
    assert not sink.delivered_ids()  # nothing happens before the confirmation
    page.get_by_role("button", name="Xác nhận").click()
    page.wait_for_url(re.compile(rf".*/console/messages/{event['id']}$"))
    # The sink records the delivery before the hub commits its outcome (the worker
    # writes outcomes in group commits after the answer): wait for the store, which
    # the page reads, not for the sink.
    with hub.client(OPS_KEY) as ops:
        url = f"/api/v1/messages/{event['id']}"
        wait_until(lambda: ops.get(url).json()["status"] == "delivered")
    assert event["id"] in sink.delivered_ids()
    page.reload()
    assert page.get_by_test_id("status").inner_text() == "đã chuyển"
    timeline = page.get_by_test_id("timeline").inner_text()
    assert "replayed → 000.00.12.H29:qlvb" in timeline and "by operator:ops" in timeline

    page.get_by_role("link", name="Nhật ký thao tác").click()
    audit = page.get_by_test_id("audit").inner_text()
    assert "dead_letter.replay" in audit and "operator:ops" in audit


def test_a_viewer_cannot_replay(browser: Any, hub: ThreadedHub, sink: RecordingSink) -> None:
    sink.respond(422)
    send(hub, note([DEST_A]))
    with hub.client(OPS_KEY) as ops:
        dead = wait_until(lambda: ops.get("/api/v1/dead-letters").json()["items"])
    delivery = dead[0]["id"]
    page = sign_in(browser, hub, "viewer")
    page.goto(f"{hub.url}/console/dead-letters/{delivery}")
    assert page.get_by_test_id("reason").is_visible()
    assert page.get_by_test_id("replay").count() == 0  # no button for a viewer
    # Going to the confirmation by hand and posting it is refused too.
    page.goto(f"{hub.url}/console/dead-letters/{delivery}/replay")
    page.get_by_role("button", name="Xác nhận").click()
    assert page.get_by_test_id("error").inner_text() == "Thao tác này cần vai trò operator."
    with hub.client(OPS_KEY) as ops:
        assert ops.get(f"/api/v1/dead-letters/{delivery}").json()["status"] == "dead"

    # A form posted without the session's CSRF token is refused, even for an operator.
    page = sign_in(browser, hub, "ops")
    answer = page.request.post(
        f"{hub.url}/console/dead-letters/{delivery}/replay", form={"csrf": "forged"}
    )
    assert answer.status == 403
    with hub.client(OPS_KEY) as ops:
        assert ops.get(f"/api/v1/dead-letters/{delivery}").json()["status"] == "dead"


def test_pause_from_the_console_holds_deliveries_until_resumed(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    page = sign_in(browser, hub, "ops")
    page.get_by_role("link", name="Hệ thống").click()
    page.locator(f"tr[data-system='{DEST_A}']").get_by_role("link", name="Tạm dừng").click()
    page.fill("input[name=reason]", "Bảo trì máy chủ")
    page.get_by_role("button", name="Xác nhận").click()
    row = page.locator(f"tr[data-system='{DEST_A}']")
    assert "tạm dừng bởi operator:ops" in row.inner_text()
    wait_until(lambda: DEST_A in hub.hub.paused, timeout=5)
    event = note([DEST_A])
    send(hub, event)
    time.sleep(1.5)  # time enough to deliver, had it not been paused
    assert event["id"] not in sink.delivered_ids()
    row.get_by_role("link", name="Tiếp tục").click()
    page.get_by_role("button", name="Xác nhận").click()
    wait_until(lambda: event["id"] in sink.delivered_ids())
