"""The card's Лента shows values as people read them (issue 12): names for ids, money and
dates in Russian formats, names looked up once per page — on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from rxcrm.db import get_engine, session_scope
from rxcrm.models import TimelineEvent
from rxcrm.services import activities, admin, cards, items
from rxcrm.services.auth import actor_for
from rxcrm.settings import TZ

from . import factories as f

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "tl1", full_name="Петров Пётр Петрович")
        m2 = f.user(s, "tl2", full_name="Иванова Мария Олеговна")
        boss = f.user(s, "tladm", role="admin", dept_code=None, full_name="Админов Админ")
        program = f.product(s, "Цифровой маркетинг")
        deal = f.deal(s, "Маркетинг — Сидоров", m1, amount=47025)
        a = {u.login: actor_for(u) for u in (m1, m2, boss)}
        ids = dict(deal=deal.id, program=program.id, m1=m1.id, m2=m2.id)
    return db, a, ids


def _texts(db, actor, deal_id) -> list[str]:
    with session_scope(db, write=False) as s:
        rows, _ = cards.timeline(s, actor, "deal", deal_id, now=NOW)
    return [r["text"] for r in rows]


def test_field_changes_read_as_names_money_dates_and_words(w):
    db, a, ids = w
    with session_scope(db) as s:
        items.update_fields(s, a["tl1"], "deal", ids["deal"], {
            "amount": "48000", "program_id": str(ids["program"]), "close_date": "2026-12-25",
            "custom.dpo_contract_signed": "Да", "is_repeat": "Да", "probability": "60"})
    with session_scope(db) as s:
        items.update_fields(s, a["tl1"], "deal", ids["deal"], {"responsible_id": str(ids["m2"]),
                                                               "program_id": ""})
    texts = _texts(db, a["tladm"], ids["deal"])
    assert "Сумма: 47\u00a0025\u00a0₽ → 48\u00a0000\u00a0₽" in texts
    assert "Образовательная программа: пусто → Цифровой маркетинг" in texts
    assert "Образовательная программа: Цифровой маркетинг → пусто" in texts
    assert "Предполагаемая дата закрытия: пусто → 25 декабря 2026" in texts
    assert "Договор подписан: пусто → Да" in texts
    assert "Повторная сделка: Нет → Да" in texts
    assert "Вероятность: 0 → 60" in texts
    assert "Ответственный: Петров П. П. → Иванова М. О." in texts


def test_a_bulk_reassignment_and_a_planned_call_read_in_words(w):
    db, a, ids = w
    with session_scope(db) as s:
        admin.reassign_items(s, a["tladm"], ids["m1"], ids["m2"])
    with session_scope(db) as s:
        activities.plan_activity(s, a["tl2"], "deal", ids["deal"], kind="call", subject="Уточнить оплату",
                                 start_at=NOW + timedelta(days=3), duration_min=15, now=NOW)
    texts = _texts(db, a["tladm"], ids["deal"])
    assert "Ответственный: Петров П. П. → Иванова М. О." in texts
    assert "Звонок · Уточнить оплату · 23 ноября 12:00 · Иванова М. О." in texts


def test_names_are_looked_up_once_per_page(w):
    """A page of many changes costs the same few statements as a page of one."""
    db, a, ids = w
    engine = get_engine(db)
    with session_scope(db) as s:
        for i in range(12):
            who = ids["m2"] if i % 2 else ids["m1"]
            items.update_fields(s, a["tladm"], "deal", ids["deal"], {"responsible_id": str(who),
                                                                     "amount": str(50000 + i)})
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        texts = _texts(db, a["tladm"], ids["deal"])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(texts) > 12
    assert len([q for q in seen if "crm_user" in q]) <= 3, seen
    with session_scope(db) as s:
        assert s.query(TimelineEvent).count() > 12


def test_events_without_a_person_name_the_system_or_the_rule_as_the_catalog_does(w):
    """The card shows «Система» / «Правило «…»» through the catalog (the person's language):
    the service's words are the catalog's Russian ones."""
    from rxcrm import i18n
    db, a, ids = w
    with session_scope(db) as s:
        s.add(TimelineEvent(entity_type="deal", entity_id=ids["deal"], kind="automation", data={}))
        s.add(TimelineEvent(entity_type="deal", entity_id=ids["deal"], kind="stage_changed",
                            rule="Оплата → Обучение", data={"from": "Договор", "to": "Обучение"}))
    with session_scope(db, write=False) as s:
        rows, _ = cards.timeline(s, a["tladm"], "deal", ids["deal"], now=NOW)
    who = {r["kind"]: r["who"] for r in rows}
    assert who["automation"] == i18n.RU["card.who.system"]
    assert who["stage_changed"] == i18n.text("ru", "card.who.rule", name="Оплата → Обучение")
