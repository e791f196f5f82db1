"""Card pages in a browser: comment, plan a call (top of the timeline and in Мои дела),
convert a lead into deal + contact and land on the new deal."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from playwright.sync_api import expect

from rxcrm.settings import TZ

from .conftest import login


def test_open_deal_from_board_comment_and_plan_a_call(page):
    login(page, "manager1")
    page.goto("/deals")
    card = page.locator('[data-testid="kanban-column"][data-stage="Интерес"] [data-testid="kanban-card"]').first
    deal_id = card.get_attribute("data-id")
    card.get_by_test_id("card-title").click()
    page.wait_for_url(f"**/deals/{deal_id}")
    expect(page.get_by_test_id("composer")).to_be_visible()
    # a comment
    page.get_by_test_id("comment-text").fill("Клиент просит рассрочку на 3 месяца")
    page.get_by_test_id("comment-send").click()
    first = page.get_by_test_id("timeline-event").first
    expect(first).to_contain_text("Клиент просит рассрочку на 3 месяца")
    # a call for tomorrow
    page.get_by_test_id("tab-activity").click()
    page.get_by_test_id("activity-subject").fill("Перезвонить по рассрочке")
    tomorrow = (datetime.now(TZ).date() + timedelta(days=1)).isoformat()  # the app's day is Moscow's
    page.get_by_test_id("activity-date").fill(tomorrow)
    page.get_by_test_id("activity-time").fill("11:30")
    page.get_by_test_id("activity-save").click()
    planned = page.get_by_test_id("planned-activity").filter(has_text="Перезвонить по рассрочке")
    expect(planned).to_be_visible()
    # planned activities sit above the history
    box_planned = planned.bounding_box()
    box_history = page.get_by_test_id("timeline").bounding_box()
    assert box_planned["y"] < box_history["y"]
    # and it is in Мои дела (upcoming)
    page.goto("/activities?tab=upcoming")
    expect(page.get_by_text("Перезвонить по рассрочке").first).to_be_visible()


def test_convert_lead_into_deal_and_contact(page):
    login(page, "manager1")
    page.goto("/leads")
    card = page.locator('[data-testid="kanban-column"][data-stage="Знакомство"] [data-testid="kanban-card"]').first
    lead_id = card.get_attribute("data-id")
    page.goto(f"/leads/{lead_id}")
    page.get_by_test_id("finish-open").click()
    page.get_by_test_id("finish-submit").click()  # default mode: deal + contact
    page.wait_for_url(re.compile(r".*/deals/\d+$"))
    expect(page.get_by_test_id("card-heading")).to_be_visible()
    links = page.get_by_test_id("links")
    expect(links).to_contain_text("Контакт")
    expect(links.get_by_role("link").filter(has_text=re.compile(".+")).first).to_be_visible()
    # the lead is now Качественный and links to the deal
    page.goto(f"/leads/{lead_id}")
    expect(page.locator('[data-testid="stage-chip"][data-current="true"]')).to_have_attribute("data-stage", "Качественный")
    expect(page.get_by_test_id("links")).to_contain_text("Сделка")
