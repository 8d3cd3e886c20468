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
    assert "đã tiếp nhận" in timeline
    assert f"đã định tuyến → {DEST_A}" in timeline and f"đã chuyển → {DEST_B}" in timeline
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
    assert "gửi lại → 000.00.12.H29:qlvb" in timeline and "bởi operator:ops" in timeline

    page.get_by_role("link", name="Nhật ký thao tác").click()
    audit = page.get_by_test_id("audit").inner_text()
    assert "gửi lại thư lỗi" in audit and "operator:ops" in audit


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


# -- on a phone ----------------------------------------------------------------------------

PHONE = {"width": 390, "height": 844}


def sign_in_on_a_phone(browser: Any, hub: ThreadedHub, name: str = "ops") -> Any:
    page = browser.new_page(viewport=PHONE)
    page.set_default_timeout(15_000)
    page.goto(f"{hub.url}/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/overview$"))
    return page


def within_the_screen(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_on_a_phone_a_failing_destination_says_failing_with_its_controls_in_reach(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    """A destination that never succeeded and holds a dead letter is not 'đang chuyển':
    its state, dead letters and pause button are on screen at 390 px, without scrolling
    sideways."""
    sink.respond(422)
    send(hub, note([DEST_A]))
    with hub.client(OPS_KEY) as ops:
        wait_until(lambda: ops.get("/api/v1/dead-letters").json()["items"])
    sink.respond(200)
    send(hub, note([DEST_B]))
    wait_until(lambda: sink.delivered_ids())
    page = sign_in_on_a_phone(browser, hub)
    page.get_by_role("link", name="Hệ thống").click()
    failing = page.locator(f"tr[data-system='{DEST_A}']")
    state = failing.locator("[data-col=state] .pill")
    assert state.inner_text() == "đang lỗi" and "bad" in (state.get_attribute("class") or "")
    assert "chưa chuyển được lần nào" in failing.locator("[data-col=state]").inner_text()
    healthy = page.locator(f"tr[data-system='{DEST_B}'] [data-col=state] .pill")
    assert healthy.inner_text() == "đang chuyển"
    header = page.locator("header").bounding_box()
    assert header is not None and header["height"] <= 120  # was 185: the page starts near the top
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    dead = failing.locator("[data-col=dead]")
    pause = failing.get_by_role("link", name="Tạm dừng")
    for seen in (state, dead, pause):
        assert within_the_screen(page, seen)
    assert dead.inner_text().strip().endswith("1")


def test_the_overview_chart_reads_vietnam_time_and_fills_a_phone(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    """One rule for times: the chart's axis is Viet Nam time like the rest of the page,
    which says its offset; the chart is tall enough to read at 390 px."""
    send(hub, note([DEST_A]))
    wait_until(lambda: sink.delivered_ids())
    page = sign_in_on_a_phone(browser, hub)
    # Read from one render: the fragment is swapped every few seconds.
    refreshed, axis_end = page.evaluate(
        "() => [document.querySelector('[data-testid=refreshed]').textContent,"
        " document.querySelector('[data-testid=axis-end]').textContent]"
    )
    at = re.search(r"\d{4}-\d\d-\d\d (\d\d:\d\d):\d\d\+07:00", refreshed)
    assert at, refreshed  # the page's time says its offset
    assert axis_end == at.group(1)  # the chart ends at the same minute, in the same zone
    assert "Giờ Việt Nam (UTC+7)" in page.get_by_test_id("chart").locator("..").inner_text()
    chart = page.get_by_test_id("chart").bounding_box()
    assert chart is not None and chart["height"] >= 150 and chart["width"] >= 300
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_vietnamese_console_explains_traces_and_dead_letters_in_vietnamese(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    """Stages, reasons and history read in Vietnamese; the hub's raw note is one click
    away, in a <details> element."""
    sink.down()  # connection refused: retried, then dead-lettered
    event = note([DEST_A])
    send(hub, event)
    with hub.client(OPS_KEY) as ops:
        dead = wait_until(lambda: ops.get("/api/v1/dead-letters").json()["items"])
    page = sign_in_on_a_phone(browser, hub)
    page.goto(f"{hub.url}/console/messages/{event['id']}")
    timeline = page.get_by_test_id("timeline").inner_text()
    for said in (
        "đã tiếp nhận",
        f"đã định tuyến → {DEST_A}",
        "theo tuyến notes-to-recipients",
        "lần gửi lỗi",
        "chuyển vào thư lỗi",
        "không kết nối được: nơi nhận từ chối kết nối",
    ):
        assert said in timeline, said
    for english in ("accepted", "routed", "by notes", "attempt_failed", "gave up", "Errno"):
        assert english not in timeline, english
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.goto(f"{hub.url}/console/dead-letters/{dead[0]['id']}")
    reason = page.get_by_test_id("reason")
    assert reason.inner_text().startswith("Ngừng sau")
    raw = reason.locator("details code")
    assert not raw.is_visible()
    reason.get_by_text("Chi tiết kỹ thuật").click()
    assert raw.is_visible() and raw.inner_text().startswith("gave up after")
    history = page.locator("ol.timeline").inner_text()
    assert "chuyển vào thư lỗi" in history and "dead_lettered" not in history


def test_title_tiles_and_icon_say_it_once_in_one_style(
    browser: Any, hub: ThreadedHub, sink: RecordingSink
) -> None:
    page = browser.new_page(viewport=PHONE)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(f"{hub.url}/console/login")
    page.fill("input[name=name]", "ops")
    page.fill("input[name=password]", PASSWORDS["ops"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/overview$"))
    assert page.title() == "Tổng quan · Bảng điều khiển LGSP"
    assert page.locator("header .brand").inner_text().count("LGSP") == 1
    labels = page.locator(".tile").evaluate_all(
        "tiles => tiles.map(t => t.lastChild.textContent.trim())"
    )
    assert len(labels) == 5 and all(label[0].isupper() for label in labels), labels
    for path in ("/console/systems", "/console/dead-letters", "/console/audit"):
        page.goto(hub.url + path)
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and page.request.get(hub.url + icon).status == 200
    page.wait_for_load_state("networkidle")
    assert missing == []  # no page asks for what the hub does not have (the icon was)
