"""Phones and small screens (issue 12): every screen usable at 390×844 and 360×740 — no
horizontal page overflow, the navigation in a menu (drawer), the board one column at a time
(scroll-snap) with the stage name on top, a stage changed on a phone (the card's «Сменить
стадию» menu and a touch long-press drag), lists as cards, the card page stacked, dialogs
inside the screen, /activities and /analytics readable; tablets (820, 1024 px) fit too. The
desktop keeps its layout (the other browser tests at 1440×900). Screenshots: /tmp/rxcrm-mobile-shots (looked at by hand)."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import login

SHOTS = Path("/tmp/rxcrm-mobile-shots")
SHOTS.mkdir(exist_ok=True)
PHONE = {"width": 390, "height": 844}
SMALL = {"width": 360, "height": 740}


def _context(browser, app_url, viewport, mobile: bool = True):
    ctx = browser.new_context(base_url=app_url, viewport=viewport, locale="ru-RU", is_mobile=mobile,
                              has_touch=mobile)
    ctx.set_default_timeout(15000)
    return ctx


@pytest.fixture
def phone(browser, app_url) -> Page:
    ctx = _context(browser, app_url, PHONE)
    yield ctx.new_page()
    ctx.close()


@pytest.fixture
def small(browser, app_url) -> Page:
    ctx = _context(browser, app_url, SMALL)
    yield ctx.new_page()
    ctx.close()


@pytest.fixture
def db(app_env):
    con = sqlite3.connect(Path(app_env["E2E_DIR"]) / "e2e.db", timeout=30)
    yield con
    con.close()


def phone_login(page: Page, user: str) -> None:
    page.goto("/login")
    page.get_by_test_id("login-input").fill(user)
    page.get_by_test_id("password-input").fill("demo")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/leads**", timeout=30000)
    expect(page.get_by_test_id("nav-menu")).to_be_visible()


def shot(page: Page, name: str) -> None:
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def assert_fits(page: Page, what: str) -> None:
    width = page.viewport_size["width"]
    page.wait_for_timeout(600)  # late content (charts, fonts) settles
    assert page_width(page) <= width, f"{what}: the page is {page_width(page)} px wide at {width} px"


def column(page, stage):
    return page.locator(f'[data-testid="kanban-column"][data-stage="{stage}"]')


def _manager_deal_in(db, stage: str, login_name: str = "manager1", skip: int = 0) -> int:
    """The manager's `skip`-th newest deal in `stage` (other tests of the session move deals
    out of it: with fewer left, the oldest one there)."""
    ids = [r[0] for r in db.execute(
        "select d.id from deal d join stage s on s.id = d.stage_id join crm_user u on u.id = d.responsible_id "
        "where s.name = ? and u.login = ? and d.deleted_at is null order by d.created_at desc limit ?",
        (stage, login_name, skip + 1)).fetchall()]
    assert ids, f"{login_name} has no deal in «{stage}» left"
    return ids[min(skip, len(ids) - 1)]


def _stage_of(db, deal_id: int) -> str:
    return db.execute("select s.name from deal d join stage s on s.id = d.stage_id where d.id = ?",
                      (deal_id,)).fetchone()[0]


# ---- the shell ------------------------------------------------------------------------------

def test_the_navigation_is_a_menu_that_opens_and_navigates(phone):
    phone_login(phone, "manager1")
    expect(phone.get_by_test_id("sidebar")).to_be_hidden()
    expect(phone.get_by_test_id("page-title")).to_be_visible()
    expect(phone.get_by_test_id("bell")).to_be_visible()
    expect(phone.get_by_test_id("user-menu")).to_be_visible()
    expect(phone.get_by_test_id("global-search")).to_be_visible()
    assert_fits(phone, "/leads")
    phone.get_by_test_id("nav-menu").click()
    drawer = phone.get_by_test_id("nav-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.get_by_test_id("nav-item")).to_have_count(8)
    expect(drawer.get_by_test_id("nav-counter-activities")).to_be_visible()  # the counters come along
    box = drawer.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(phone, "390_nav_drawer")
    drawer.get_by_test_id("nav-item").filter(has_text="Мои дела").click()
    phone.wait_for_url(re.compile(r"/activities"))
    expect(phone.get_by_test_id("nav-drawer")).to_have_count(0)
    expect(phone.get_by_test_id("page-title")).to_have_text("Мои дела")


def test_the_top_search_expands_to_the_width_of_the_screen(phone):
    phone_login(phone, "manager1")
    search = phone.get_by_test_id("global-search")
    collapsed = search.bounding_box()["width"]
    assert collapsed <= 48  # an icon until it is used
    search.click()
    search.fill("Иванова")
    expect(phone.get_by_test_id("search-dropdown")).to_be_visible()
    box = phone.get_by_test_id("search-box").bounding_box()
    assert box["width"] >= PHONE["width"] - 40
    drop = phone.get_by_test_id("search-dropdown").bounding_box()
    assert drop["x"] >= 0 and drop["x"] + drop["width"] <= PHONE["width"]
    assert_fits(phone, "search open")
    shot(phone, "390_search_open")


# ---- the board ------------------------------------------------------------------------------

def test_the_board_shows_one_column_at_a_time_with_readable_cards(phone):
    phone_login(phone, "manager1")
    phone.goto("/deals")
    first = column(phone, "Интерес").get_by_test_id("kanban-card").first
    expect(first).to_be_visible()
    assert_fits(phone, "/deals")
    board = phone.get_by_test_id("kanban")
    assert board.evaluate("e => getComputedStyle(e).scrollSnapType").startswith("x")
    assert board.evaluate("e => e.scrollWidth > e.clientWidth")  # the board scrolls, not the page
    cols = phone.get_by_test_id("board-column")
    w = cols.first.bounding_box()["width"]
    assert 0.78 * PHONE["width"] <= w <= 0.92 * PHONE["width"], w
    # the stage name, count and sum at the top of the column
    head = cols.first.get_by_test_id("column-head")
    expect(head).to_contain_text("Интерес")
    expect(head.get_by_test_id("column-count")).to_be_visible()
    expect(head.get_by_test_id("column-sum")).to_be_visible()
    # a card is as wide as its column, a title reads as a line or two, not one word per line
    assert first.bounding_box()["width"] >= w - 4
    for title in cols.first.get_by_test_id("card-title").all():
        assert title.bounding_box()["height"] <= 3 * 22, title.inner_text()
    shot(phone, "390_board")
    # a swipe moves one column: the next one snaps to the left edge with its name on top
    left = board.bounding_box()["x"]
    board.evaluate("e => e.scrollBy({left: e.clientWidth * 0.6})")
    phone.wait_for_timeout(900)
    second = cols.nth(1).bounding_box()
    assert abs(second["x"] - left) <= 16, (second["x"], left)
    expect(cols.nth(1).get_by_test_id("column-head")).to_be_in_viewport()
    shot(phone, "390_board_second_column")
    # the stage strip jumps to a column
    phone.get_by_test_id("board-stage-jump").filter(has_text="Договор").click()
    phone.wait_for_timeout(900)
    assert abs(column(phone, "Договор").bounding_box()["x"] - left) <= 24


def test_a_stage_is_changed_from_the_card_menu_on_the_board(phone, db):
    phone_login(phone, "manager1")
    deal_id = _manager_deal_in(db, "Интерес", skip=1)
    phone.goto("/deals")
    card = column(phone, "Интерес").locator(f'[data-testid="kanban-card"][data-id="{deal_id}"]')
    expect(card).to_be_visible()
    # «Сменить стадию»: a native select over the card's ⋮ (the phone's own picker)
    menu = card.get_by_test_id("card-stage-menu")
    expect(menu).to_be_visible()
    items = menu.get_by_test_id("card-stage-item")
    expect(items.filter(has_text="Регистрация")).to_have_count(1)
    expect(items.filter(has_text="Интерес")).to_have_count(0)  # not the stage it is in
    shot(phone, "390_board_card_menu")
    menu.select_option(label="Регистрация")
    expect(column(phone, "Регистрация").locator(f'[data-id="{deal_id}"]')).to_be_visible()
    expect(column(phone, "Интерес").locator(f'[data-id="{deal_id}"]')).to_have_count(0)
    for _ in range(30):
        if _stage_of(db, deal_id) == "Регистрация":
            break
        phone.wait_for_timeout(200)
    assert _stage_of(db, deal_id) == "Регистрация"
    phone.goto(f"/deals/{deal_id}")
    expect(phone.locator('[data-testid="stage-chip"][data-current="true"]')).to_have_attribute(
        "data-stage", "Регистрация")


def touch_drag(page: Page, card, target) -> None:
    """A long press on the card, then the finger moves right in small steps and lifts as soon
    as `target` (a column) lights up under the card — as a person does; Chromium's touch
    events through the DevTools protocol reach @hello-pangea/dnd's touch sensor."""
    cdp = page.context.new_cdp_session(page)
    box = card.bounding_box()
    x, y = box["x"] + 40, box["y"] + box["height"] - 18
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    page.wait_for_timeout(450)  # the long press that starts a drag (a swipe scrolls instead)
    over = False
    for _ in range(60):
        x = min(x + 6, page.viewport_size["width"] - 10)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        page.wait_for_timeout(25)
        if target.get_attribute("data-over") == "true":
            over = True
            break
    assert page.locator('[data-board-dragging="true"]').count() == 1  # the library took it as a drag
    shot(page, "390_board_touch_drag")
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    assert over, "the target column never lit up under the dragged card"


def test_a_touch_long_press_drags_a_card_to_the_next_stage(phone, db):
    phone_login(phone, "manager1")
    phone.goto("/deals")
    phone.get_by_test_id("board-stage-jump").filter(has_text="Регистрация").click()
    phone.wait_for_timeout(900)
    card = column(phone, "Регистрация").get_by_test_id("kanban-card").first
    expect(card).to_be_in_viewport()
    deal_id = int(card.get_attribute("data-id"))
    db.execute("update deal set custom = json_remove(coalesce(custom, '{}'), '$.dpo_contract_number') "
               "where id = ?", (deal_id,))  # so that «Договор» asks for it
    db.commit()
    target = column(phone, "Договор")
    touch_drag(phone, card, target)
    # «Договор» needs the contract number: the dialog asks for it, on a phone too
    expect(phone.get_by_test_id("move-refused")).to_contain_text("Номер договора")
    dialog = phone.get_by_role("dialog")
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(phone, "390_required_fields_dialog")
    phone.get_by_test_id("missing-input").fill("Д-2026/390")
    phone.get_by_test_id("missing-submit").click()
    expect(target.locator(f'[data-id="{deal_id}"]')).to_be_attached()
    for _ in range(30):
        if _stage_of(db, deal_id) == "Договор":
            break
        phone.wait_for_timeout(200)
    assert _stage_of(db, deal_id) == "Договор"


# ---- lists ----------------------------------------------------------------------------------

def test_list_rows_are_cards_and_a_card_opens(phone):
    phone_login(phone, "manager1")
    phone.goto("/deals?view=list")
    rows = phone.get_by_test_id("list-row")
    expect(rows.first).to_be_visible()
    assert_fits(phone, "/deals?view=list")
    expect(phone.get_by_test_id("list-header").first).to_be_hidden()  # no table head on a phone
    r1, r2 = rows.nth(0).bounding_box(), rows.nth(1).bounding_box()
    assert r1["width"] <= PHONE["width"] - 16 and r1["height"] >= 80  # a card, not a 30 px table row
    assert r2["y"] >= r1["y"] + r1["height"]  # one under the other
    # «label: value» lines (the label is the cell's ::before), the most useful columns only
    labels = rows.first.evaluate("""r => [...r.querySelectorAll('td')]
        .filter(td => getComputedStyle(td).display !== 'none')
        .map(td => getComputedStyle(td, '::before').content.replaceAll('"', ''))""")
    assert {"Стадия", "Сумма", "Контакт", "Дела"} <= set(labels) and len(labels) <= 7, labels
    expect(rows.first).to_contain_text("₽")
    expect(rows.first.get_by_test_id("row-check")).to_be_visible()
    shot(phone, "390_list")
    # the pager fits
    pager = phone.get_by_test_id("list-pager")
    pager.scroll_into_view_if_needed()
    pb = pager.bounding_box()
    assert pb["x"] >= 0 and pb["x"] + pb["width"] <= PHONE["width"]
    expect(phone.get_by_test_id("next-page")).to_be_visible()
    title = rows.first.locator("a").first
    name = title.inner_text()
    title.click()
    phone.wait_for_url(re.compile(r"/deals/\d+$"))
    expect(phone.get_by_test_id("card-heading")).to_have_text(name)


def test_the_filter_bar_wraps_and_the_filter_opens(phone):
    phone_login(phone, "manager1")
    phone.goto("/deals?view=list")
    expect(phone.get_by_test_id("list-row").first).to_be_visible()
    bar = phone.get_by_test_id("filter-bar").bounding_box()
    assert bar["x"] >= 0 and bar["x"] + bar["width"] <= PHONE["width"]
    search = phone.get_by_test_id("search-input").bounding_box()
    assert search["width"] >= 180
    phone.get_by_test_id("filter-open").click()
    expect(phone.get_by_test_id("filter-apply")).to_be_visible()
    assert_fits(phone, "filter panel")
    shot(phone, "390_filter_panel")
    phone.keyboard.press("Escape")
    phone.get_by_test_id("create-open").click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    expect(phone.get_by_test_id("create-submit")).to_be_visible()
    shot(phone, "390_create_dialog")


# ---- the card page ----------------------------------------------------------------------------

def test_the_deal_card_stacks_edits_a_block_comments_and_changes_the_stage(phone, db):
    phone_login(phone, "manager1")
    deal_id = _manager_deal_in(db, "Интерес", skip=2)
    phone.goto(f"/deals/{deal_id}")
    expect(phone.get_by_test_id("card-heading")).to_be_visible()
    assert_fits(phone, "deal card")
    blocks = phone.get_by_test_id("field-block").first.bounding_box()
    composer = phone.get_by_test_id("composer").bounding_box()
    assert blocks["width"] >= PHONE["width"] - 40 and composer["width"] >= PHONE["width"] - 40
    assert composer["y"] > blocks["y"] + blocks["height"]  # one column: blocks first, then the composer
    heading = phone.get_by_test_id("card-heading").bounding_box()
    assert heading["x"] + heading["width"] <= PHONE["width"]
    shot(phone, "390_deal_card")
    # the stage bar scrolls inside itself, its chips are readable
    bar = phone.get_by_test_id("stage-bar")
    assert bar.evaluate("e => e.scrollWidth > e.clientWidth")
    chip = phone.locator('[data-testid="stage-chip"][data-stage="Регистрация"]')
    assert chip.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # the name is not cut
    # edit a block
    block = phone.locator('[data-testid="field-block"][data-title="О сделке"]')
    block.get_by_test_id("block-edit").click()
    block.get_by_test_id("edit-amount").fill("39000")
    shot(phone, "390_deal_card_edit")
    block.get_by_test_id("edit-save").click()
    expect(block.get_by_test_id("edit-save")).to_have_count(0)
    expect(block).to_contain_text("39\u00a0000\u00a0₽")
    # a comment
    phone.get_by_test_id("comment-text").fill("Позвонила с телефона: клиент согласен")
    phone.get_by_test_id("comment-send").click()
    expect(phone.get_by_test_id("timeline-event").first).to_contain_text("Позвонила с телефона")
    # «Сменить стадию»
    phone.get_by_test_id("stage-menu").click()
    item = phone.get_by_test_id("stage-menu-item").filter(has_text="Регистрация")
    expect(item).to_be_visible()
    shot(phone, "390_deal_card_stage_menu")
    item.click()
    expect(phone.locator('[data-testid="stage-chip"][data-current="true"]')).to_have_attribute(
        "data-stage", "Регистрация")
    assert _stage_of(db, deal_id) == "Регистрация"
    # the activity form fits
    phone.get_by_test_id("tab-activity").click()
    expect(phone.get_by_test_id("activity-save")).to_be_visible()
    assert_fits(phone, "activity form")
    shot(phone, "390_deal_card_activity_form")


# ---- /activities and /analytics --------------------------------------------------------------

def test_activities_fit_and_an_activity_is_completed(phone):
    phone_login(phone, "manager1")
    phone.goto("/activities?tab=upcoming")
    rows = phone.get_by_test_id("activity-row")
    expect(rows.first).to_be_visible()
    assert_fits(phone, "/activities")
    r = rows.first.bounding_box()
    assert r["x"] >= 0 and r["x"] + r["width"] <= PHONE["width"]
    link = rows.first.get_by_test_id("activity-item-link")
    expect(link).to_be_in_viewport()
    expect(rows.first.get_by_test_id("activity-complete")).to_be_in_viewport()
    shot(phone, "390_activities")
    subject = rows.first.inner_text()
    rows.first.get_by_test_id("activity-complete").click()
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    phone.get_by_test_id("complete-result").fill("Договорились с телефона")
    phone.get_by_test_id("complete-submit").click()
    expect(dialog).to_have_count(0)
    assert subject


def test_analytics_fit_with_charts_and_kpis(phone):
    phone_login(phone, "head")
    phone.goto("/analytics?period=year")
    chart = phone.get_by_test_id("an-deal-funnel-chart")
    expect(chart.locator("svg.main-svg").first).to_be_visible(timeout=30000)
    assert_fits(phone, "/analytics")
    cb = chart.bounding_box()
    assert cb["x"] >= 0 and cb["x"] + cb["width"] <= PHONE["width"] and cb["width"] >= 280
    kpis = phone.get_by_test_id("an-kpi")
    k1, k2 = kpis.nth(0).bounding_box(), kpis.nth(1).bounding_box()
    assert k1["x"] + k1["width"] <= PHONE["width"] and k2["x"] + k2["width"] <= PHONE["width"]
    shot(phone, "390_analytics")
    managers = phone.get_by_test_id("an-managers")
    managers.scroll_into_view_if_needed()
    mb = managers.bounding_box()
    assert mb["x"] + mb["width"] <= PHONE["width"]
    shot(phone, "390_analytics_managers")


# ---- every screen at 360 and 390 -----------------------------------------------------------

SCREENS = [("manager1", "/leads", "kanban-card"), ("manager1", "/deals", "kanban-card"),
           ("manager1", "/deals?view=list", "list-row"), ("manager1", "/contacts", "list-row"),
           ("manager1", "/companies", "list-total"), ("manager1", "/activities", "activity-tabs"),
           ("manager1", "/deals/card", "card-heading"), ("head", "/analytics", "an-kpi"),
           ("head", "/history", "history-row"), ("admin", "/settings", "user-row")]


@pytest.mark.parametrize("viewport", [SMALL, PHONE, {"width": 820, "height": 1180}, {"width": 1024, "height": 768}],
                         ids=["360", "390", "820-tablet", "1024"])
def test_no_screen_is_wider_than_the_phone(browser, app_url, db, viewport):
    ctx = _context(browser, app_url, viewport, mobile=viewport["width"] < 800)
    page = ctx.new_page()
    wide = {}
    try:
        user = None
        for login_name, path, ready in SCREENS:
            if login_name != user:
                page.context.clear_cookies()
                if viewport["width"] < 1024:
                    phone_login(page, login_name)
                else:  # from 1024 px the sidebar is back
                    login(page, login_name)
                user = login_name
            if path == "/deals/card":
                path = f"/deals/{_manager_deal_in(db, 'Интерес')}"
            page.goto(path)
            expect(page.get_by_test_id(ready).first).to_be_visible(timeout=30000)
            page.wait_for_timeout(800)
            width = page_width(page)
            name = path.strip("/").replace("/", "_").replace("?", "_").replace("=", "-")
            shot(page, f"{viewport['width']}_{name}")
            if width > viewport["width"]:
                wide[path] = width
    finally:
        ctx.close()
    assert not wide, f"wider than {viewport['width']} px: {wide}"
