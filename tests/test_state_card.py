"""State handler tests for card pages: load, inline edit (typed values survive errors,
version conflict), composer, stage bar refusal, conversion."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import AutomationRule, Comment, Deal, Lead, Product, TimelineEvent, User
from rxcrm.services import auth, items, rules_admin
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.settings import TZ

from . import factories as f


@pytest.fixture(scope="module")
def world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "cm1")).first():
            m = f.user(s, "cm1", full_name="Карточкина Анна")
            f.user(s, "cm2", full_name="Другой Менеджер")
            c = f.contact(s, "Смирнова", "Ольга", phones=["+7 916 555-00-11"], responsible=m)
            f.deal(s, "Карточная сделка", m, amount=30000, contact_=c)
            f.lead(s, "Лид для конверсии", m, stage_code="ACQUAINTANCE", last="Павлов", first="Илья",
                   phones=["8 903 777-66-55"])
            f.deal(s, "Сделка для диалога полей", m, amount=47025)
            f.deal(s, "Сделка для ленты", m, amount=47025)
            f.user(s, "cadmin", role="admin", dept_code=None, full_name="Админова Карта")
        for title in ("Цифровой маркетинг", "Программирование на Python"):
            if not s.exec(select(Product).where(Product.title == title)).first():
                f.product(s, title)
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        token, _ = auth.login(s, "cm1", "demo")
        deal = s.exec(select(Deal).where(Deal.title == "Карточная сделка")).one()
        lead = s.exec(select(Lead).where(Lead.title == "Лид для конверсии")).one()
        contract = f.stage(s, "dpo", "CONTRACT").id
    return token, deal.id, lead.id, contract


def _card(token, section, item_id):
    from rxcrm.state.card import CardState
    st = f.logged_in(CardState, token)
    st.check_login()
    st.router  # noqa: B018 (router exists)
    st.card_section = section
    st.card_entity = {"deals": "deal", "leads": "lead"}[section]
    st.card_id = item_id
    return st


def _load(st, section, item_id, monkeypatch):
    f.route(st, None, f"/{section}/{item_id}")
    st.load_card()


def test_card_loads_blocks_and_is_editable(world, monkeypatch):
    token, deal_id, _, _ = world
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    assert st.card_error == "" and st.card_title == "Карточная сделка"
    assert st.card_editable and "О сделке" in st.edit_blocks
    assert any(s.current and s.name == "Интерес" for s in st.stages)


def test_bad_value_keeps_what_was_typed_and_conflict_is_refused(world, monkeypatch):
    token, deal_id, _, _ = world
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    st.start_edit("О сделке")
    form = {fld.key: fld.value for fld in st.edit_fields}
    form["amount"] = "сорок тысяч"
    form["title"] = "Новое название"
    assert st.save_edit(form) is None
    assert "Сумма" in st.edit_error
    typed = {fld.key: fld.value for fld in st.edit_fields}
    assert typed["amount"] == "сорок тысяч" and typed["title"] == "Новое название"
    # someone else saves meanwhile → our save is refused with who changed it
    with session_scope() as s:
        other = s.exec(select(User).where(User.login == "cm1")).one()
        items.update_fields(s, auth.actor_for(other), "deal", deal_id, {"probability": "30"})
    form["amount"] = "40000"
    st.save_edit(form)
    assert "обновите" in st.edit_error and st.edit_block == "О сделке"


def test_comment_and_activity_from_the_composer(world, monkeypatch):
    token, deal_id, _, _ = world
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    st.add_comment({"text": "Просит счёт на юрлицо"})
    with session_scope() as s:
        assert s.exec(select(Comment).where(Comment.entity_id == deal_id)).first().text == "Просит счёт на юрлицо"
    tomorrow = (datetime.now(TZ) + timedelta(days=1)).date().isoformat()
    st.plan_activity({"kind": "call", "subject": "Перезвонить", "date": tomorrow, "time": "11:00",
                      "duration": "30", "remind": "15"})
    assert "15 минут" in st.composer_error  # a call is at most 15 minutes
    st.plan_activity({"kind": "call", "subject": "Перезвонить", "date": tomorrow, "time": "11:00",
                      "duration": "10", "remind": "15"})
    assert st.composer_error == ""
    assert [p.subject for p in st.planned_items][:1] == ["Перезвонить"]


def test_stage_click_refused_opens_the_dialog(world, monkeypatch):
    token, deal_id, _, contract = world
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    st.click_stage(contract)
    assert st.missing_open and "Номер договора" in st.missing_message


def test_convert_lead_into_deal_and_contact(world, monkeypatch):
    token, _, lead_id, _ = world
    st = _card(token, "leads", lead_id)
    _load(st, "leads", lead_id, monkeypatch)
    st.open_finish()
    assert st.finish_mode == "deal_contact"
    out = st.submit_finish({"deal_title": "", "company_title": ""})
    assert st.finish_error == "" and not st.finish_open
    with session_scope() as s:
        lead = s.get(Lead, lead_id)
        assert lead.semantic == "success" and lead.deal_id and lead.contact_id
        assert s.get(Deal, lead.deal_id).lead_id == lead_id
    assert any("/deals/" in str(x) for x in out)


# ---- issue 12: the required-fields dialog, the timeline in words, the activity form, the title ----

@pytest.fixture
def registration_needs_program_and_date(world):
    """A rule for the test only: entering «Регистрация» (ДПО) needs a program and a close date."""
    with session_scope() as s:
        admin = auth.actor_for(s.exec(select(User).where(User.login == "cadmin")).one())
        rule_id = rules_admin.save_required(s, admin, None, "dpo", "REGISTRATION", ["program_id", "close_date"]).id
        stage = f.stage(s, "dpo", "REGISTRATION").id
        deal_id = s.exec(select(Deal).where(Deal.title == "Сделка для диалога полей")).one().id
        program = s.exec(select(Product).where(Product.title == "Цифровой маркетинг")).one().id
    yield stage, deal_id, program
    with session_scope() as s:
        s.delete(s.get(AutomationRule, rule_id))


def test_required_fields_dialog_offers_programs_by_name_and_takes_a_russian_date(world, monkeypatch,
                                                                                registration_needs_program_and_date):
    token = world[0]
    stage, deal_id, program = registration_needs_program_and_date
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    st.click_stage(stage)
    assert st.missing_open
    fields = {fld.key: fld for fld in st.missing_fields}
    assert fields["program_id"].kind == "program" and fields["close_date"].kind == "date"
    # the program is picked by its name from the list (the list's value is the id)
    picks = {o.label: o.value for o in fields["program_id"].choices}
    assert picks["Цифровой маркетинг"] == str(program) and "Программирование на Python" in picks
    assert fields["close_date"].choices == []
    # a date that does not exist: the field says so, what was typed stays, nothing moves
    st.submit_missing({"program_id": str(program), "close_date": "31.13.2026"})
    assert st.missing_open and "ДД.ММ.ГГГГ" in st.missing_message
    typed = {fld.key: (fld.value, fld.error) for fld in st.missing_fields}
    assert typed["close_date"] == ("31.13.2026", "Дата ДД.ММ.ГГГГ") and typed["program_id"][0] == str(program)
    # ДД.ММ.ГГГГ as the date picker shows it
    st.submit_missing({"program_id": str(program), "close_date": "31.12.2026"})
    assert not st.missing_open
    with session_scope() as s:
        deal = s.get(Deal, deal_id)
        assert deal.stage_id == stage and deal.program_id == program and deal.close_date == date(2026, 12, 31)


def test_board_dialog_offers_the_same_controls(world, registration_needs_program_and_date):
    """WorkState's dialog (a drop on the board) gets the same pick lists and dates."""
    from rxcrm.state.work import WorkState

    token = world[0]
    stage, deal_id, program = registration_needs_program_and_date
    with session_scope() as s:
        deal = s.get(Deal, deal_id)
        if deal.stage_id == stage:  # the card test moved it: back to «Интерес»
            deal.stage_id = f.stage(s, "dpo", "INTEREST").id
            deal.program_id, deal.close_date = None, None
            s.add(deal)
        interest, version = f.stage(s, "dpo", "INTEREST").id, deal.version
    st = f.logged_in(WorkState, token, "/deals")
    st.check_login()
    exc = None
    with session_scope() as s:
        try:
            items.move_stage(s, auth.actor_for(s.exec(select(User).where(User.login == "cm1")).one()), "deal",
                             deal_id, stage)
        except items.MissingFields as e:
            exc = e
    assert exc is not None
    st._open_missing(exc, deal_id, stage, None)
    fields = {fld.key: fld for fld in st.missing_fields}
    assert {o.label for o in fields["program_id"].choices} >= {"Цифровой маркетинг"}
    list(st.submit_missing({"program_id": str(program), "close_date": "01.02.2027"}))
    assert not st.missing_open
    with session_scope() as s:
        deal = s.get(Deal, deal_id)
        assert deal.stage_id == stage and deal.close_date == date(2027, 2, 1)
    assert interest and version


def test_timeline_shows_names_money_and_dates_as_people_read_them(world, monkeypatch):
    token = world[0]
    with session_scope() as s:
        deal = s.exec(select(Deal).where(Deal.title == "Сделка для ленты")).one()
        other = s.exec(select(User).where(User.login == "cm2")).one()
        program = s.exec(select(Product).where(Product.title == "Цифровой маркетинг")).one()
        me = auth.actor_for(s.exec(select(User).where(User.login == "cm1")).one())
        items.update_fields(s, me, "deal", deal.id, {"amount": "48000", "program_id": str(program.id),
                                                     "close_date": "2026-12-25"})
        items.update_fields(s, me, "deal", deal.id, {"responsible_id": str(other.id)})
        deal_id = deal.id
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    texts = [e.text for e in st.events if e.kind == "field_changed"]
    assert "Ответственный: Карточкина А. → Другой М." in texts
    assert "Образовательная программа: пусто → Цифровой маркетинг" in texts
    assert "Сумма: 47\u00a0025\u00a0₽ → 48\u00a0000\u00a0₽" in texts
    assert "Предполагаемая дата закрытия: пусто → 25 декабря 2026" in texts


def test_activity_form_starts_at_the_next_working_hour_in_russian_format(world, monkeypatch):
    from rxcrm.services import activities
    token, deal_id = world[0], world[1]
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    start = activities.suggested_start()
    assert st.activity_date == start.strftime("%d.%m.%Y") and st.activity_time == start.strftime("%H:00")
    st.plan_activity({"kind": "task", "subject": "Подготовить договор", "date": st.activity_date,
                      "time": "17:30", "duration": "30", "remind": "none"})
    assert st.composer_error == ""
    planned = next(p for p in st.planned_items if p.subject == "Подготовить договор")
    assert planned.date == st.activity_date and planned.time == "17:30"
    st.open_resched(planned.id)
    assert (st.resched_date, st.resched_time) == (planned.date, "17:30")
    st.plan_activity({"kind": "task", "subject": "Без даты", "date": "32.01.2027", "time": "10:00"})
    assert "ДД.ММ.ГГГГ" in st.composer_error


def test_card_page_title_names_the_item(world, monkeypatch):
    token, deal_id = world[0], world[1]
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    assert st.page_title == f"{st.card_title} — Сделка — rxcrm"
    _load(st, "deals", 10 ** 9, monkeypatch)
    assert st.page_title.endswith("— Сделка — rxcrm") and st.card_title == ""


# ---- the card in English: labels of the catalog, service texts by their codes ----------

def test_the_catalog_names_blocks_and_timeline_events_as_the_service_does():
    """Block titles and timeline labels come from services.cards in Russian; the card shows
    them through the catalog, whose Russian text is the service's own."""
    from rxcrm import i18n
    from rxcrm.services import cards
    from rxcrm.state.card import BLOCK_KEYS
    titles = {t for blocks in cards.BLOCKS.values() for t, _ in blocks} | \
        {t for blocks in cards.EDIT_BLOCKS.values() for t in blocks}
    assert titles <= set(BLOCK_KEYS), sorted(titles - set(BLOCK_KEYS))
    for kind, label in cards.KIND_LABEL.items():
        assert i18n.RU[f"card.event.{kind}"] == label and i18n.EN[f"card.event.{kind}"] != label


def test_the_card_in_english(world, monkeypatch):
    token, deal_id, _, _ = world
    st = _card(token, "deals", deal_id)
    _load(st, "deals", deal_id, monkeypatch)
    ru_blocks = {b.title: b for b in st.blocks}
    assert ru_blocks["О сделке"].label == "О сделке"
    assert "Сумма" in {r.label for r in ru_blocks["О сделке"].fields}
    st.lang = "en"
    _load(st, "deals", deal_id, monkeypatch)
    blocks = {b.title: b for b in st.blocks}  # the title stays the service's: what start_edit sends
    assert blocks["О сделке"].label == "About the deal"
    assert {"Amount", "Stage", "Responsible"} <= {r.label for r in blocks["О сделке"].fields}
    assert all(link.kind in ("Contact", "Company", "Lead", "Deal") for link in st.card_links)
    st.add_comment({"text": "Wants an invoice"})
    assert st.events[0].kind == "comment" and st.events[0].label == "Comment"
    st.start_edit("О сделке")
    assert "Amount" in {fld.label for fld in st.edit_fields}
    st.plan_activity({"kind": "call", "subject": "Call back", "date": "32.01.2027", "time": "10:00"})
    assert st.composer_error == "Enter the start date (DD.MM.YYYY) and time (HH:MM)"
    st.cancel_edit()
    st.lang = "ru"
