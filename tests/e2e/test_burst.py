"""Issue 11's burst in the real app: landing-form events posted 20 at a time while a manager
keeps commenting and editing a deal card in the browser — every event is answered 2xx on the
first try and stored, every comment and edit the person made is there afterwards."""
from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import Page, expect

from .conftest import login
from .test_intake import _post

EVENTS, AT_ONCE, COMMENTS = 60, 20, 4


def _application(i: int) -> dict:
    return {"event_id": f"e2e-burst-{i}", "form": "application", "consent": True,
            "program": {"title": "Управление проектами в образовании"},
            "client": {"full_name": f"Пачкина Ия {i}", "phone": f"+7 916 7{i:02d}-00-00",
                       "email": f"burst{i}@example.ru"}}


def test_burst_of_events_while_a_manager_edits_a_card(page: Page, app_url: str, app_env: dict):
    login(page, "manager1")
    page.goto("/deals")
    card = page.locator('[data-testid="kanban-column"][data-stage="Интерес"] [data-testid="kanban-card"]').first
    deal_id = card.get_attribute("data-id")
    page.goto(f"/deals/{deal_id}")
    expect(page.get_by_test_id("composer")).to_be_visible()

    answers: list[tuple[int, dict]] = []
    done = threading.Event()

    def burst():
        with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
            answers.extend(pool.map(lambda i: _post(app_url, _application(i)), range(EVENTS)))
        done.set()

    sender = threading.Thread(target=burst)
    sender.start()
    texts = [f"Комментарий во время потока заявок №{n}" for n in range(COMMENTS)]
    for text in texts:  # the person works while the events pour in
        page.get_by_test_id("comment-text").fill(text)
        page.get_by_test_id("comment-send").click()
        expect(page.get_by_test_id("timeline-event").filter(has_text=text)).to_have_count(1, timeout=60000)
    block = page.locator('[data-testid="field-block"][data-title="О сделке"]')
    block.get_by_test_id("block-edit").click()
    block.get_by_test_id("edit-amount").fill("77700")
    block.get_by_test_id("edit-save").click()
    expect(block.get_by_test_id("edit-save")).to_have_count(0, timeout=60000)
    sender.join(timeout=600)
    assert done.is_set(), "the burst did not finish"

    assert [code for code, _ in answers if not 200 <= code < 300] == []
    db = sqlite3.connect(Path(app_env["E2E_DIR"]) / "e2e.db")
    try:
        stored = db.execute("SELECT count(*) FROM intake_event WHERE event_id LIKE 'e2e-burst-%'").fetchone()[0]
        waiting = db.execute("SELECT count(*) FROM intake_event WHERE event_id LIKE 'e2e-burst-%' "
                             "AND status <> 'processed'").fetchone()[0]
        comments = db.execute("SELECT count(*) FROM comment WHERE entity_type = 'deal' AND entity_id = ? "
                              "AND text LIKE 'Комментарий во время потока заявок%'", (deal_id,)).fetchone()[0]
        amount = db.execute("SELECT amount FROM deal WHERE id = ?", (deal_id,)).fetchone()[0]
    finally:
        db.close()
    assert (stored, waiting, comments, float(amount)) == (EVENTS, 0, COMMENTS, 77700.0)
    page.reload()
    for text in texts:
        expect(page.get_by_test_id("timeline-event").filter(has_text=text)).to_have_count(1)
