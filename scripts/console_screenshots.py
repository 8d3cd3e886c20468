"""Screenshots of the console's main pages for docs/console/, from a running demo hub.

    .venv/bin/hub serve &                 # the embedded default with the demo config
    .venv/bin/hub demo-traffic            # two minutes of notes, some to a system that is down
    .venv/bin/python scripts/console_screenshots.py

Drives Debian's Chromium (/usr/bin/chromium) with Playwright, signed in as the demo
operator `ops`: each page at a desktop's width, and again at a phone's (390x844,
`phone-*.png`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

PAGES = [
    ("overview", "/console/overview"),
    ("systems", "/console/systems"),
    ("messages", "/console/messages?destination=000.00.12.H29%3Aqlvb"),
    ("dead-letters", "/console/dead-letters"),
    ("routes", "/console/routes"),
    ("audit", "/console/audit"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{args.url}/console/login")
        page.screenshot(path=str(args.out / "login.png"))
        page.fill("input[name=name]", "ops")
        page.fill("input[name=password]", "demo-ops")
        page.click("button[type=submit]")
        page.wait_for_url("**/console/overview")
        for name, path in PAGES:
            page.goto(args.url + path)
            page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
        page.goto(args.url + PAGES[2][1])
        page.locator("[data-testid=results] tbody tr a").first.click()
        page.screenshot(path=str(args.out / "message.png"), full_page=True)
        page.goto(args.url + "/console/dead-letters")
        page.locator("[data-testid=dead-letters] tbody tr a").first.click()
        page.screenshot(path=str(args.out / "dead-letter.png"), full_page=True)
        page.get_by_test_id("replay").click()
        page.screenshot(path=str(args.out / "confirm-replay.png"))
        page.goto(f"{args.url}/console/lang/en?next=/console/overview")
        page.screenshot(path=str(args.out / "overview-en.png"), full_page=True)
        page.goto(f"{args.url}/console/lang/vi?next=/console/overview")
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(f"{args.url}/console/login")
        phone.fill("input[name=name]", "ops")
        phone.fill("input[name=password]", "demo-ops")
        phone.click("button[type=submit]")
        phone.wait_for_url("**/console/overview")
        for name, path in PAGES:
            phone.goto(args.url + path)
            phone.screenshot(path=str(args.out / f"phone-{name}.png"), full_page=True)
        phone.goto(args.url + "/console/dead-letters")
        phone.locator("[data-testid=dead-letters] tbody tr a").first.click()
        phone.screenshot(path=str(args.out / "phone-dead-letter.png"), full_page=True)
        browser.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
