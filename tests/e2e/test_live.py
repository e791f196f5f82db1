"""Live boards in two browsers: a move made by manager1 shows on the head's open board
(same department) within a few seconds without a reload — the card in its new column, the
column counts updated — and a deal of another department never arrives there."""
from __future__ import annotations

from playwright.sync_api import expect

from .conftest import login
from .test_work_surfaces import column, drag


def _tab(browser, app_url, user):
    ctx = browser.new_context(base_url=app_url, viewport={"width": 1440, "height": 900}, locale="ru-RU")
    ctx.set_default_timeout(15000)
    page = ctx.new_page()
    login(page, user)
    return ctx, page


def test_a_move_shows_on_a_colleagues_board_and_nothing_of_another_department(browser, app_url):
    head_ctx, head = _tab(browser, app_url, "head")
    m_ctx, manager = _tab(browser, app_url, "manager1")
    adm_ctx, adm = _tab(browser, app_url, "admissions1")
    try:
        manager.goto("/deals")
        card = column(manager, "Интерес").get_by_test_id("kanban-card").first
        expect(card).to_be_visible()
        deal_id = card.get_attribute("data-id")
        # the head looks at the department's whole board (every deal in work)
        head.goto("/deals?filter=none")
        expect(head.get_by_test_id("kanban-card").first).to_be_visible()
        head_card = head.locator(f'[data-testid="kanban-card"][data-id="{deal_id}"]')
        reg_before = head.get_by_test_id("kanban").locator('[data-testid="board-column"]').filter(
            has=head.locator('[data-testid="kanban-column"][data-stage="Регистрация"]'))
        count_before = int(reg_before.get_by_test_id("column-count").inner_text())

        drag(manager, card, column(manager, "Регистрация"))
        expect(column(manager, "Регистрация").locator(f'[data-id="{deal_id}"]')).to_be_visible()

        # within a few seconds, without a reload, on the head's board
        expect(column(head, "Регистрация").locator(f'[data-id="{deal_id}"]')).to_be_visible(timeout=6000)
        expect(column(head, "Интерес").locator(f'[data-id="{deal_id}"]')).to_have_count(0)
        expect(reg_before.get_by_test_id("column-count")).to_have_text(str(count_before + 1))
        assert head_card.count() == 1

        # an admissions deal moved meanwhile never reaches the ДПО head's board
        adm.goto("/deals")
        adm_card = adm.get_by_test_id("kanban-card").first
        expect(adm_card).to_be_visible()
        adm_id = adm_card.get_attribute("data-id")
        cols = adm.get_by_test_id("kanban-column")
        src = adm_card.locator("xpath=ancestor::*[@data-testid='kanban-column']").get_attribute("data-stage")
        target = next(cols.nth(i) for i in range(cols.count()) if cols.nth(i).get_attribute("data-stage") != src)
        drag(adm, adm_card, target)
        head.wait_for_timeout(3000)
        expect(head.locator(f'[data-testid="kanban-card"][data-id="{adm_id}"]')).to_have_count(0)
    finally:
        for ctx in (head_ctx, m_ctx, adm_ctx):
            ctx.close()


def _set_hidden(page, hidden: bool) -> None:
    """What the browser does when another tab comes in front (or back): the page's
    visibilityState changes and `visibilitychange` fires."""
    page.evaluate("""(hidden) => {
        Object.defineProperty(document, 'visibilityState', {value: hidden ? 'hidden' : 'visible', configurable: true});
        Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", hidden)


def test_a_hidden_board_is_not_refreshed_and_catches_up_when_shown(browser, app_url):
    head_ctx, head = _tab(browser, app_url, "head")
    m_ctx, manager = _tab(browser, app_url, "manager1")
    try:
        manager.goto("/deals")
        card = column(manager, "Интерес").get_by_test_id("kanban-card").first
        expect(card).to_be_visible()
        deal_id = card.get_attribute("data-id")
        head.goto("/deals?filter=none")
        expect(head.locator(f'[data-testid="kanban-card"][data-id="{deal_id}"]')).to_be_visible()
        reg = head.get_by_test_id("board-column").filter(
            has=head.locator('[data-testid="kanban-column"][data-stage="Регистрация"]')).get_by_test_id("column-count")
        reg_before = int(reg.inner_text())
        head.wait_for_timeout(500)  # the page's watcher is mounted
        _set_hidden(head, True)
        head.wait_for_timeout(500)

        drag(manager, card, column(manager, "Регистрация"))
        expect(column(manager, "Регистрация").locator(f'[data-id="{deal_id}"]')).to_be_visible()
        head.wait_for_timeout(5000)  # rounds pass: the hidden board stays as it was
        expect(column(head, "Интерес").locator(f'[data-id="{deal_id}"]')).to_be_visible()
        expect(reg).to_have_text(str(reg_before))

        _set_hidden(head, False)  # shown again: it catches up at the next round
        expect(column(head, "Интерес").locator(f'[data-id="{deal_id}"]')).to_have_count(0, timeout=6000)
        expect(reg).to_have_text(str(reg_before + 1))  # (the card itself may sit below the column's first page)
    finally:
        for ctx in (head_ctx, m_ctx):
            ctx.close()
