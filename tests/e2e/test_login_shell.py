"""Log in, see the Russian shell, switch language, reload, log out — in a real browser."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import login

NAV_RU = ["Лиды", "Сделки", "Контакты", "Компании", "Мои дела", "Аналитика", "История", "Настройки"]
NAV_EN = ["Leads", "Deals", "Contacts", "Companies", "My activities", "Analytics", "History", "Settings"]


def nav_labels(page):
    return [t.strip() for t in page.get_by_test_id("nav-item").all_inner_texts()]


def test_no_session_redirects_to_login(page):
    page.goto("/deals")
    page.wait_for_url(re.compile(r".*/login\?next=/deals"))
    expect(page.get_by_test_id("login-submit")).to_be_visible()


def test_wrong_password_is_refused_with_a_message(page):
    page.goto("/login")
    page.get_by_test_id("login-input").fill("manager1")
    page.get_by_test_id("password-input").fill("wrong")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text("Неверный логин или пароль")
    assert "/login" in page.url


def test_manager_logs_in_sees_russian_nav_switches_to_english_and_back(page):
    login(page, "manager1")
    expect(page.get_by_test_id("nav-item").first).to_have_text(re.compile("^Лиды"))
    assert [re.sub(r"\d+$", "", t).strip() for t in nav_labels(page)] == NAV_RU
    # every nav item opens a page without a crash
    for route, title in [("/deals", "Сделки"), ("/contacts", "Контакты"), ("/companies", "Компании"),
                         ("/activities", "Мои дела"), ("/analytics", "Аналитика"), ("/history", "История"),
                         ("/settings", "Настройки"), ("/leads", "Лиды")]:
        page.locator(f'[data-route="{route}"]').click()
        page.wait_for_url(f"**{route}")
        expect(page.get_by_test_id("page-title")).to_have_text(title)
    # English
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("lang-en").click()
    expect(page.get_by_test_id("nav-item").first).to_have_text(re.compile("^Leads"))
    assert [re.sub(r"\d+$", "", t).strip() for t in nav_labels(page)] == NAV_EN
    # the session and the language survive a reload
    page.reload()
    expect(page.get_by_test_id("page-title")).to_have_text("Leads")
    # and back to Russian
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("lang-ru").click()
    expect(page.get_by_test_id("page-title")).to_have_text("Лиды")
    assert [re.sub(r"\d+$", "", t).strip() for t in nav_labels(page)] == NAV_RU


def test_logout_ends_the_session(page):
    login(page, "manager2")
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    page.wait_for_url(re.compile(r".*/login/?$"))  # the logout form's answer: a fresh /login page
    assert not [c for c in page.context.cookies() if c["name"] == "rxcrm_session"]  # the cookie is cleared
    page.goto("/leads")
    page.wait_for_url(re.compile(r".*/login"))
