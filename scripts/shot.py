"""Dev helper: log in with Playwright + Debian chromium and screenshot pages.

    python scripts/shot.py --login manager1 /leads /deals ...   → /tmp/shots/*.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="*", default=["/leads"])
    ap.add_argument("--base", default="http://localhost:3000")
    ap.add_argument("--login", default="manager1")
    ap.add_argument("--password", default="demo")
    ap.add_argument("--out", default="/tmp/shots")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--wait", type=int, default=1500)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": a.width, "height": a.height})
        page.goto(a.base + "/login")
        page.screenshot(path=str(out / "login.png"))
        if a.login:
            page.get_by_test_id("login-input").fill(a.login)
            page.get_by_test_id("password-input").fill(a.password)
            page.get_by_test_id("login-submit").click()
            page.wait_for_url("**/leads**", timeout=15000)
        for path in a.paths:
            page.goto(a.base + path)
            page.wait_for_timeout(a.wait)
            name = path.strip("/").replace("/", "_").replace("?", "_").replace("&", "_").replace("=", "-") or "root"
            page.screenshot(path=str(out / f"{name}.png"), full_page=False)
            print(out / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
