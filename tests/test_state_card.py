"""State handler tests for card pages: load, inline edit (typed values survive errors,
version conflict), composer, stage bar refusal, conversion."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Comment, Deal, Lead, User
from rxcrm.services import auth, items
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
