"""Issue 11 in a real browser against the production build: the session cookie is HttpOnly
and no stored state holds it, every page carries the security headers and runs under the
CSP without a single violation, other sites cannot talk to the app, and the main block of
a seeded deal (its optional fields empty, as real data has them) saves."""
from __future__ import annotations

import re
import stat
import urllib.error
import urllib.request

from playwright.sync_api import Page, expect

from .conftest import ROOT, login


def _session_cookie(page: Page) -> dict:
    return next(c for c in page.context.cookies() if c["name"] == "rxcrm_session")


def test_session_cookie_is_httponly_and_no_state_file_holds_it(page: Page):
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, "manager1")
    cookie = _session_cookie(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert "rxcrm_session" not in page.evaluate("document.cookie")  # page JavaScript cannot read it
    page.goto("/deals")
    expect(page.get_by_test_id("kanban-column").first).to_be_visible()
    # Reflex's per-user state files: private, and none contains the token
    states = ROOT / ".states"
    assert states.is_dir() and stat.S_IMODE(states.stat().st_mode) == 0o700
    token = cookie["value"].encode()
    assert not [p.name for p in states.glob("*") if p.is_file() and token in p.read_bytes()]
    assert not violations, violations


def test_pages_carry_security_headers(page: Page, app_url: str):
    response = page.goto("/login")
    headers = response.all_headers()
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    csp = headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]+)", csp).group(1)
    assert "'unsafe-inline'" not in script_src and "'sha256-" in script_src
    assert "frame-ancestors 'none'" in csp


def _request(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def test_other_sites_get_no_cors_and_cannot_log_in(app_url: str):
    status, headers = _request(f"{app_url}/ping", headers={"Origin": "http://evil.example",
                                                           "Cookie": "rxcrm_session=x"})
    assert status == 200 and "access-control-allow-origin" not in {k.lower() for k in headers}
    status, _ = _request(f"{app_url}/api/session", "POST", b"login=manager1&password=demo",
                         {"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403


def test_main_block_of_a_seeded_deal_saves_with_empty_optional_fields(page: Page):
    """«О сделке» → Изменить → change the amount → Сохранить, on a deal of the demo data."""
    login(page, "manager1")
    page.goto("/deals")
    card = page.locator('[data-testid="kanban-column"][data-stage="Интерес"] [data-testid="kanban-card"]').first
    deal_id = card.get_attribute("data-id")
    page.goto(f"/deals/{deal_id}")
    block = page.locator('[data-testid="field-block"][data-title="О сделке"]')
    block.get_by_test_id("block-edit").click()
    amount = block.get_by_test_id("edit-amount")
    expect(amount).to_be_visible()
    amount.fill("123456")
    block.get_by_test_id("edit-save").click()
    expect(block.get_by_test_id("edit-save")).to_have_count(0)  # the form closed: saved
    expect(block).to_contain_text("123")
    expect(page.get_by_text("An error occurred")).to_have_count(0)
    expect(page.get_by_test_id("timeline-event").first).to_contain_text("123")
