"""Card pages in a browser: comment, plan a call (top of the timeline and in Мои дела),
convert a lead into deal + contact and land on the new deal; issue 12 «Cards and dialogs»:
the required-fields dialog's searchable program list, the Лента in words, Russian date and
time in an English browser starting at the next working hour, finish options clickable by
their label, page titles, the rules editor's lists. Screenshots: /tmp/rxcrm-card-shots."""
from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from rxcrm.services.workdays import add_working_days
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
    tomorrow = (datetime.now(TZ).date() + timedelta(days=1)).strftime("%d.%m.%Y")  # the app's day is Moscow's
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


# ---- issue 12: cards and dialogs ------------------------------------------------------------

SHOTS = Path("/tmp/rxcrm-card-shots")
SHOTS.mkdir(exist_ok=True)


def shot(page, name: str) -> None:
    page.wait_for_timeout(400)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture
def db(app_env):
    """The running app's database (to pick a suitable item and prepare it)."""
    con = sqlite3.connect(Path(app_env["E2E_DIR"]) / "e2e.db", timeout=30)
    yield con
    con.close()


def _user_id(db, login_name: str) -> int:
    return db.execute("select id from crm_user where login = ?", (login_name,)).fetchone()[0]


def _lead_before_program_stage(db, login_name: str) -> int:
    """A lead of `login_name` in «Знакомство», its program cleared (the next stages need one)."""
    lead_id = db.execute(
        "select l.id from lead l join stage s on s.id = l.stage_id where s.name = 'Знакомство' "
        "and l.responsible_id = ? and l.deleted_at is null order by l.id limit 1", (_user_id(db, login_name),)
    ).fetchone()[0]
    db.execute("update lead set program_id = null where id = ?", (lead_id,))
    db.commit()
    return lead_id


def test_required_program_is_chosen_by_name_from_a_searchable_list(page, db):
    login(page, "manager1")
    lead_id = _lead_before_program_stage(db, "manager1")
    page.goto(f"/leads/{lead_id}")
    page.locator('[data-testid="stage-chip"][data-stage="Образовательная программа"]').click()
    expect(page.get_by_test_id("move-refused")).to_contain_text("Образовательная программа")
    program = page.get_by_test_id("missing-program_id")
    expect(program).to_be_visible()
    program.fill("5")  # a number is not a program: nothing is offered, nothing chosen
    expect(page.get_by_test_id("search-select-option")).to_have_count(0)
    program.fill("марк")
    option = page.get_by_test_id("search-select-option").filter(has_text="Цифровой маркетинг")
    expect(option).to_be_visible()
    shot(page, "required-program-dialog")
    option.click()
    expect(program).to_have_value("Цифровой маркетинг")
    page.get_by_test_id("missing-submit").click()
    expect(page.locator('[data-testid="stage-chip"][data-current="true"]')).to_have_attribute(
        "data-stage", "Образовательная программа")
    change = page.locator('[data-testid="timeline-event"][data-kind="field_changed"]').first
    expect(change).to_contain_text("Образовательная программа: пусто → Цифровой маркетинг")


def test_timeline_reads_money_and_names_after_an_edit(page, db):
    login(page, "manager1")
    deal_id = db.execute("select id from deal where responsible_id = ? and semantic = 'process' and amount > 0 "
                         "and deleted_at is null order by id limit 1", (_user_id(db, "manager1"),)).fetchone()[0]
    page.goto(f"/deals/{deal_id}")
    block = page.locator('[data-testid="field-block"][data-title="О сделке"]')
    block.get_by_test_id("block-edit").click()
    block.get_by_test_id("edit-amount").fill("48000")
    block.get_by_test_id("edit-responsible_id").fill("Петров")
    block.get_by_test_id("search-select-option").filter(has_text="Петров").first.click()
    block.get_by_test_id("edit-save").click()
    expect(block.get_by_test_id("edit-save")).to_have_count(0)
    events = page.locator('[data-testid="timeline-event"][data-kind="field_changed"]')
    expect(events.filter(has_text="Сумма:").first).to_contain_text(re.compile(r"Сумма: [\d\s\u00a0]+₽ → 48\u00a0000\u00a0₽"))
    expect(events.filter(has_text="Ответственный:").first).to_contain_text(
        re.compile(r"Ответственный: Иванова М\. О\. → Петров А\. И\."))
    shot(page, "timeline-in-words")


def test_activity_form_is_russian_in_an_english_browser_and_starts_at_the_next_working_hour(browser, app_url, db):
    from rxcrm.services.activities import suggested_start

    ctx = browser.new_context(base_url=app_url, viewport={"width": 1440, "height": 900}, locale="en-US")
    ctx.set_default_timeout(15000)
    page = ctx.new_page()
    try:
        login(page, "manager1")
        deal_id = db.execute("select id from deal where responsible_id = ? and semantic = 'process' "
                             "and deleted_at is null order by id desc limit 1",
                             (_user_id(db, "manager1"),)).fetchone()[0]
        page.goto(f"/deals/{deal_id}")
        page.get_by_test_id("tab-activity").click()
        start = suggested_start()
        date_box, time_box = page.get_by_test_id("activity-date"), page.get_by_test_id("activity-time")
        expect(date_box).to_have_value(start.strftime("%d.%m.%Y"))
        expect(time_box).to_have_value(start.strftime("%H:%M"))
        # the calendar is Russian too: Monday first, the month in words
        page.get_by_test_id("activity-date-calendar").click()
        expect(page.get_by_test_id("ru-calendar")).to_contain_text("Пн")
        months = ("Январь", "Февраль", "Март", "Апрель", "Май", "Июнь", "Июль", "Август", "Сентябрь", "Октябрь",
                  "Ноябрь", "Декабрь")
        expect(page.get_by_test_id("ru-calendar-month")).to_have_text(f"{months[start.month - 1]} {start.year}")
        shot(page, "activity-form-calendar-en-browser")
        # a few working days on — within the discipline (at most 5 working days after the last
        # contact, i.e. today) whatever today is; the next month when that is where it falls
        later = datetime.combine(add_working_days(start.date(), 3), start.time(), start.tzinfo)
        if later.month != start.month:
            page.get_by_label("Следующий месяц").click()
        page.locator(f'[data-testid="ru-calendar-day"][data-date="{later.date().isoformat()}"]').click()
        expect(date_box).to_have_value(later.strftime("%d.%m.%Y"))
        time_box.fill("1530")  # typed without the colon: masked to 15:30 (24-hour)
        expect(time_box).to_have_value("15:30")
        page.get_by_test_id("activity-subject").fill("Созвон по договору")
        page.get_by_test_id("activity-save").click()
        planned = page.get_by_test_id("planned-activity").filter(has_text="Созвон по договору")
        expect(planned).to_contain_text("15:30")
        shot(page, "activity-planned-en-browser")
    finally:
        ctx.close()


def test_finish_options_are_clickable_by_their_label(page, db):
    login(page, "manager1")
    lead_id = db.execute("select l.id from lead l where l.responsible_id = ? and l.semantic = 'process' "
                         "and l.deleted_at is null order by l.id desc limit 1",
                         (_user_id(db, "manager1"),)).fetchone()[0]
    page.goto(f"/leads/{lead_id}")
    page.get_by_test_id("finish-open").click()
    expect(page.get_by_test_id("finish-reason")).to_have_count(0)
    page.get_by_test_id("finish-mode").get_by_text("Некачественный", exact=True).click()  # the words, not the circle
    expect(page.get_by_test_id("finish-reason")).to_be_visible()
    page.get_by_test_id("finish-mode").get_by_text("Только сделку", exact=True).click()
    expect(page.get_by_test_id("finish-reason")).to_have_count(0)
    shot(page, "finish-dialog")


def test_page_titles_name_the_page_and_the_card_its_item(page):
    login(page, "manager1")
    page.goto("/deals")
    expect(page).to_have_title("Сделки — rxcrm")
    page.goto("/activities")
    expect(page).to_have_title("Мои дела — rxcrm")
    page.goto("/deals")
    card = page.locator('[data-testid="kanban-card"]').first
    deal_id = card.get_attribute("data-id")
    page.goto(f"/deals/{deal_id}")
    heading = page.get_by_test_id("card-heading")
    expect(heading).not_to_have_text("")
    expect(page).to_have_title(f"{heading.inner_text()} — Сделка — rxcrm")


def test_rules_editor_offers_fields_and_stages_from_lists(page):
    login(page, "admin")
    page.goto("/settings")
    page.get_by_role("tab", name="Правила").click()
    page.get_by_test_id("rule-req-stage").click()
    page.get_by_role("option", name="Воронка ДПО 2 часть · Регистрация").click()
    page.get_by_test_id("rule-req-field").click()
    page.get_by_role("option", name="Номер договора").click()
    expect(page.get_by_test_id("rule-field-chip")).to_have_text("Номер договора")
    page.get_by_test_id("rule-trig-from").click()
    page.get_by_role("option", name="Воронка ДПО 2 часть · любая стадия").click()
    page.get_by_test_id("rule-trig-field").click()
    page.get_by_role("option", name="Договор подписан").click()
    expect(page.get_by_role("combobox").filter(has_text="Значение")).to_be_visible()  # Да/Нет from a list, not typed
    page.get_by_test_id("rule-field-chip").scroll_into_view_if_needed()
    page.mouse.wheel(0, 400)
    shot(page, "rules-editor")
    page.get_by_test_id("rule-req-add").click()
    row = page.get_by_test_id("rule-row").filter(has_text="Регистрация").filter(has_text="Заполнить: «Номер договора»")
    expect(row).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("custom.dpo_contract_number")
    row.get_by_test_id("rule-delete").click()
    expect(row).to_have_count(0)


def test_on_enter_rule_form_follows_the_chosen_action(page):
    """The «При входе на стадию» form is drawn from the action plug-in's form: each action
    brings its own inputs (with their defaults), another action's inputs start fresh, and what
    is typed reaches the rule."""
    login(page, "admin")
    page.goto("/settings")
    page.get_by_role("tab", name="Правила").click()
    form = page.get_by_test_id("rule-action-form")
    expect(form).to_contain_text("Вид дела")  # the default action: plan an activity
    expect(page.get_by_test_id("rule-form-in_hours")).to_have_value("24")
    expect(page.get_by_test_id("rule-form-kind")).to_have_text("Звонок")
    page.get_by_test_id("rule-action").click()
    page.get_by_role("option", name="Заполнить поле").click()
    expect(page.get_by_test_id("rule-form-subject")).to_have_count(0)
    expect(form).to_contain_text("Сначала выберите стадию")  # the fields are the stage's pipeline's
    page.get_by_test_id("rule-enter-stage").click()
    page.get_by_role("option", name="Воронка ДПО 2 часть · Договор").click()
    expect(page.get_by_test_id("rule-enter-field")).to_be_visible()
    page.get_by_test_id("rule-action").click()
    page.get_by_role("option", name="Уведомить").click()
    expect(page.get_by_test_id("rule-form-to")).to_have_text("Ответственному")
    page.get_by_test_id("rule-enter-name").fill("Договор: уведомить ответственного")
    page.get_by_test_id("rule-form-text").fill("Сделка «{title}» на договоре")
    page.get_by_test_id("rule-on-enter-add").scroll_into_view_if_needed()
    shot(page, "rules-on-enter-notify")
    page.get_by_test_id("rule-on-enter-add").click()
    row = page.get_by_test_id("rule-row").filter(has_text="Договор: уведомить ответственного")
    expect(row).to_contain_text("уведомить ответственного: «Сделка «{title}» на договоре»")
    row.get_by_test_id("rule-delete").click()
    expect(row).to_have_count(0)


def test_history_dates_are_russian_and_every_action_reads_in_words(page):
    login(page, "admin")
    page.goto("/history")
    expect(page.get_by_test_id("history-row").first).to_be_visible()
    codes = re.compile(r"\b[a-z]+_[a-z_]+\b")  # intake_assign, rule_update… never on screen
    for text in page.get_by_test_id("history-row").all_inner_texts():
        assert not codes.search(text), text
    shot(page, "history")
    frm = page.get_by_test_id("history-from")
    frm.fill("01.01.2030")  # typed as people write dates: the filter takes the day
    expect(page.get_by_test_id("history-total")).to_have_text("Всего: 0")
    expect(frm).to_have_value("01.01.2030")
    frm.fill("")
    expect(page.get_by_test_id("history-total")).not_to_have_text("Всего: 0")
