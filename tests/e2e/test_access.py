"""Access in a browser: another department's deal by URL → нет доступа; the head sees
manager1's card view in /history."""
from __future__ import annotations

import sqlite3

from playwright.sync_api import expect

from .conftest import login


def _db(app_env):
    return sqlite3.connect(app_env["REFLEX_DB_URL"].removeprefix("sqlite:///"))


def test_manager_cannot_open_another_departments_deal(page, app_env):
    with _db(app_env) as c:
        deal_id, title = c.execute("select d.id, d.title from deal d join pipeline p on p.id = d.pipeline_id "
                                   "where p.code = 'masters' order by d.id limit 1").fetchone()
    login(page, "manager1")
    page.goto(f"/deals/{deal_id}")
    expect(page.get_by_test_id("card-error")).to_have_text("Нет доступа")
    # and the list does not show it either
    page.goto("/deals?view=list&q=" + title.split(" — ")[0])
    expect(page.get_by_test_id("list-total")).to_have_text("Всего: 0")


def test_head_sees_a_card_view_by_manager1_in_history(page, app_env):
    with _db(app_env) as c:
        m1 = c.execute("select id, department_id from crm_user where login = 'manager1'").fetchone()
        deal_id, title = c.execute("select id, title from deal where responsible_id = ? order by id desc limit 1",
                                   (m1[0],)).fetchone()
    login(page, "manager1")
    page.goto(f"/deals/{deal_id}")
    expect(page.get_by_test_id("card-heading")).to_have_text(title)
    page.context.clear_cookies()
    login(page, "head")
    page.goto(f"/history?user={m1[0]}&action=view")
    row = page.get_by_test_id("history-row").filter(has_text=title).first
    expect(row).to_be_visible()
    expect(row).to_contain_text("Просмотр")


def test_manager_has_no_history(page):
    login(page, "manager2")
    page.goto("/history")
    expect(page.get_by_test_id("history-denied")).to_be_visible()
