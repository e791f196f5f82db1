"""The REST API in the running app: an admin creates a webhook on /settings, sees its address
once and a client calls it; the demo webhooks answer a real Bitrix24 client (fast-bitrix24)."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

from fast_bitrix24 import Bitrix
from playwright.sync_api import expect

from .conftest import login

SHOTS = Path("/tmp/rxcrm-card-shots")
SHOTS.mkdir(exist_ok=True)


def _post(url: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_an_admin_creates_a_webhook_and_a_client_calls_it(page, app_url):
    login(page, "admin")
    page.goto("/settings")
    page.get_by_role("tab", name="Интеграции").click()
    page.get_by_test_id("hook-user").click()
    page.get_by_role("option", name="Иванова Мария Олеговна").click()
    page.get_by_test_id("hook-name").fill("Сервис рассылок")
    page.get_by_test_id("hook-create").click()
    url_box = page.get_by_test_id("hook-url")
    expect(url_box).to_contain_text("/rest/")
    url = url_box.inner_text().strip()
    row = page.get_by_test_id("hook-row").filter(has_text="Сервис рассылок")
    expect(row).to_contain_text("Иванова Мария Олеговна")
    expect(row).to_contain_text("crm, user")
    assert url.rstrip("/").rsplit("/", 1)[1] not in row.inner_text()  # the code is shown once, not in the list
    row.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "settings-webhooks.png"), full_page=True)

    status, body = _post(url + "profile")
    assert status == 200 and body["result"]["LAST_NAME"] == "Иванова" and body["result"]["ADMIN"] is False
    status, body = _post(url + "crm.deal.list", {"select": ["ID", "TITLE"]})
    assert status == 200 and body["total"] > 0 and "time" in body

    row.get_by_test_id("hook-revoke").click()
    expect(row).to_contain_text("отозван")
    status, body = _post(url + "profile")
    assert status == 401 and body["error"] == "INVALID_CREDENTIALS"


def _in_thread(fn):
    """Run `fn` in a thread of its own: fast-bitrix24's sync API returns a Task instead of a
    result when the calling thread has an event loop running (Playwright's, in this session)."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", fn()))
    t.start()
    t.join(timeout=120)
    return out["v"]


def test_the_demo_webhooks_answer_a_real_bitrix24_client(app_url):
    manager = f"{app_url}/rest/3/demo-rest-manager1/"
    admin = f"{app_url}/rest/1/demo-rest-admin/"
    mine = _in_thread(lambda: Bitrix(manager, verbose=False).get_all(
        "crm.deal.list", {"select": ["ID", "ASSIGNED_BY_ID", "CATEGORY_ID"]}))
    every = _in_thread(lambda: Bitrix(admin, verbose=False).get_all("crm.deal.list", {"select": ["ID"]}))
    assert 0 < len(mine) < len(every)  # the manager's role sees a part of the deals
    status, body = _post(f"{app_url}/rest/3/demo-rest-manager1/crm.deal.list", {"select": ["ID"]})
    assert body["total"] == len(mine)
    status, body = _post(f"{app_url}/rest/1/demo-rest-admin/crm.deal.list", {"select": ["ID"]})
    assert body["total"] == len(every)


def test_an_outbound_event_reaches_a_receiver_subscribed_on_settings(page, app_url):
    """The whole path in the running app: a subscription made on /settings, a change made
    through the REST API, the outbound task posting Bitrix24's form to the receiver."""
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl

    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(dict(parse_qsl(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = f"http://127.0.0.1:{server.server_address[1]}/b24"
    try:
        login(page, "admin")
        page.goto("/settings")
        page.get_by_role("tab", name="Интеграции").click()
        page.get_by_test_id("binding-event").click()
        page.get_by_role("option", name="ONCRMDEALUPDATE").click()
        page.get_by_test_id("binding-handler").fill(receiver)
        page.get_by_test_id("binding-create").click()
        expect(page.get_by_test_id("binding-row").filter(has_text=receiver)).to_be_visible()

        hook = f"{app_url}/rest/3/demo-rest-manager1/"
        status, body = _post(hook + "crm.deal.list", {"select": ["ID"], "order": {"ID": "DESC"}})
        deal_id = body["result"][0]["ID"]
        status, body = _post(hook + "crm.deal.update", {"id": deal_id, "fields": {"COMMENTS": "Из интеграции"}})
        assert status == 200 and body["result"] is True, body
        deadline = time.time() + 20
        while not got and time.time() < deadline:
            time.sleep(0.25)
        assert [(g["event"], g["data[FIELDS][ID]"]) for g in got] == [("ONCRMDEALUPDATE", deal_id)]
        assert got[0]["auth[application_token]"]
        page.reload()
        page.get_by_role("tab", name="Интеграции").click()
        delivered = page.get_by_test_id("delivery-row").filter(has_text="ONCRMDEALUPDATE").first
        expect(delivered).to_contain_text("доставлено")
        delivered.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / "settings-outbound.png"), full_page=True)
    finally:
        server.shutdown()
