"""Duplicates in a browser: two contacts sharing an e-mail (typed in different case) are
listed on /settings → Дубликаты; the admin merges them keeping the second one's name, the
survivor's card shows it, and restoring the merged-away contact from the recycle bin undoes
the merge. The demo seed makes no such pair: the test creates it through the services."""
from __future__ import annotations

from playwright.sync_api import expect
from sqlmodel import select

from rxcrm import hooks
from rxcrm.db import session_scope
from rxcrm.models import Contact, User
from rxcrm.services import auth, create

from .conftest import login

EMAIL = "000.e2e.dup@example.com"  # sorts first: the group is on the first page


def _pair(url: str) -> tuple[int, int]:
    hooks.wire()
    with session_scope(url) as s:
        admin = s.exec(select(User).where(User.login == "admin")).one()
        actor = auth.actor_for(admin)
        a = create.create_contact(s, actor, last_name="Дубликатов", first_name="Эдуард", emails=[EMAIL],
                                  phones=["+7 999 000-11-22"])
        b = create.create_contact(s, actor, last_name="Дубликатов", first_name="Эдуард", middle_name="Петрович",
                                  emails=[EMAIL.upper()], position="Ректор")
        return a.id, b.id


def test_admin_merges_duplicate_contacts_and_the_bin_undoes_it(page, app_env):
    url = app_env["REFLEX_DB_URL"]
    a_id, b_id = _pair(url)
    login(page, "admin")
    page.goto("/settings")
    page.get_by_test_id("tab-dups").click()
    group = page.get_by_test_id("dup-group").filter(has_text=EMAIL)
    expect(group.get_by_test_id("dup-item")).to_have_count(2)
    expect(group).to_contain_text("Дубликатов Эдуард Петрович")
    group.get_by_test_id("dup-merge").click()
    dialog = page.get_by_test_id("dup-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(f'[data-testid="dup-survivor"][data-value="{a_id}"] button')).to_have_attribute(
        "data-state", "checked")
    name = dialog.locator('[data-testid="dup-field"][data-key="name"]')
    name.locator(f'[data-testid="dup-choice"][data-value="{b_id}"]').click()
    expect(name.locator(f'[data-testid="dup-choice"][data-value="{b_id}"] button')).to_have_attribute(
        "data-state", "checked")
    dialog.get_by_test_id("dup-confirm").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("dup-group").filter(has_text=EMAIL)).to_have_count(0)
    page.goto(f"/contacts/{a_id}")
    expect(page.get_by_test_id("card-heading")).to_have_text("Дубликатов Эдуард Петрович")
    expect(page.get_by_test_id("timeline-event").filter(has_text="Объединён с контактом").first).to_be_visible()
    # the merged-away contact is in the recycle bin; restoring it undoes the merge
    page.goto("/settings")
    page.get_by_role("tab", name="Корзина").click()
    row = page.get_by_role("row").filter(has_text="Дубликатов Эдуард Петрович")
    row.get_by_test_id("restore").click()
    expect(row).to_have_count(0)
    with session_scope(url, write=False) as s:
        a, b = s.get(Contact, a_id), s.get(Contact, b_id)
        assert b.deleted_at is None and a.full_name == "Дубликатов Эдуард"
    page.goto(f"/contacts/{a_id}")
    expect(page.get_by_test_id("card-heading")).to_have_text("Дубликатов Эдуард")
