"""First paint of /deals in headless Chromium: page weight and time to the first card.

    python bench/bench_page.py --url http://127.0.0.1:PORT [--runs 3]

Logs in as manager1 (cookie from the login form), then loads /deals in a fresh page
`--runs` times and prints one JSON line per run and a summary:
    {"name": "deals_first_paint", "js_kb_gz": …, "css_kb_gz": …, "requests": …,
     "shell_ms": …, "first_card_ms": …}
`*_kb_gz` are the bytes transferred (as the server sent them, compressed), `dom_ms` /
`load_ms` the browser's DOMContentLoaded / load (the scripts loaded and run), `shell_ms` the
time to the sidebar, `first_card_ms` the time to the first kanban card, both from the start
of navigation. The first run starts with an empty cache (the whole weight of the page);
later runs are warm. Loopback only; figures, not assertions."""
from __future__ import annotations

import argparse
import json
import statistics
import time
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--login", default="manager1")
    args = ap.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("loopback only")
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        ctx = browser.new_context(base_url=args.url, viewport={"width": 1440, "height": 900}, locale="ru-RU")
        # log in through the login form's endpoint, not the page: the first /deals load then
        # starts with an empty cache and shows the page's whole weight
        r = ctx.request.post("/api/session", form={"login": args.login, "password": "demo", "next": "/deals"},
                             headers={"Origin": args.url}, max_redirects=0)
        if r.status != 303:
            raise SystemExit(f"login failed: {r.status}")
        for run in range(args.runs):
            page = ctx.new_page()
            sizes = {"js": 0, "css": 0, "other": 0}
            count = 0

            def on_finished(request):
                nonlocal count
                count += 1
                try:
                    body = request.sizes()["responseBodySize"]
                except Exception:  # noqa: BLE001 - a request without sizes (e.g. websocket)
                    return
                url = request.url.split("?")[0]
                kind = "js" if url.endswith((".js", ".mjs")) else "css" if url.endswith(".css") else "other"
                sizes[kind] += body

            page.on("requestfinished", on_finished)
            started = time.perf_counter()
            page.goto("/deals", wait_until="commit")
            page.get_by_test_id("sidebar").wait_for(state="visible", timeout=60000)
            shell = time.perf_counter() - started
            page.get_by_test_id("kanban-card").first.wait_for(state="visible", timeout=60000)
            first = time.perf_counter() - started
            page.wait_for_load_state("networkidle")
            nav = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                return {dom: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }""")
            rows.append({"name": "deals_first_paint", "run": run + 1, "js_kb_gz": round(sizes["js"] / 1024, 1),
                         "css_kb_gz": round(sizes["css"] / 1024, 1), "other_kb": round(sizes["other"] / 1024, 1),
                         "requests": count, "dom_ms": round(nav["dom"]), "load_ms": round(nav["load"]),
                         "shell_ms": round(shell * 1000), "first_card_ms": round(first * 1000)})
            print(json.dumps(rows[-1]), flush=True)
            page.close()
        browser.close()
    print(json.dumps({"name": "deals_first_paint_summary", "runs": len(rows),
                      "js_kb_gz": rows[0]["js_kb_gz"], "css_kb_gz": rows[0]["css_kb_gz"],
                      "first_card_ms_median": statistics.median(r["first_card_ms"] for r in rows),
                      "shell_ms_median": statistics.median(r["shell_ms"] for r in rows)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
