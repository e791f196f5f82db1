"""Intake against the running app: a landing form posted to /api/intake/landing with the demo
token becomes a lead a person finds in the list and opens; the same event id again changes
nothing; a wrong token is refused with 401 and creates nothing."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from playwright.sync_api import expect

from .conftest import login


def _post(base: str, body: dict, token: str = "demo-intake-token") -> tuple[int, dict]:
    req = urllib.request.Request(f"{base}/api/intake/landing", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_landing_question_becomes_a_lead_in_the_list(page, app_url):
    body = {"event_id": "e2e-landing-1", "form": "question", "question": "Когда начало занятий?",
            "client": {"last_name": "Интейкова", "first_name": "Зоя", "middle_name": "", "phone": "+7 915 000-11-22"}}
    status, answer = _post(app_url, body)
    assert status == 200, answer
    lead_id = answer["lead_id"]
    assert answer["duplicate"] is False and lead_id

    status, again = _post(app_url, body)  # the same event id: the same answer, nothing new
    assert status == 200 and again["lead_id"] == lead_id

    status, refused = _post(app_url, {**body, "event_id": "e2e-landing-2"}, token="wrong-token")
    assert status == 401

    login(page, "admin")
    page.goto("/leads?view=list&q=Интейкова")
    expect(page.get_by_test_id("list-total")).to_have_text("Всего: 1")  # not 2: no duplicate, no refused one
    page.get_by_test_id("list-row").first.locator("a").first.click()
    page.wait_for_url(re.compile(rf"/leads/{lead_id}$"))
    expect(page.get_by_test_id("card-heading")).to_contain_text("Интейкова")
    expect(page.get_by_test_id("timeline")).to_contain_text("Когда начало занятий?")
