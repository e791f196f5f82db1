"""Filters, search, lists, counts and the board on SQLite and PostgreSQL (known answers)."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from rxcrm.db import session_scope
from rxcrm.models import Activity, utcnow
from rxcrm.services import listing
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import ValidationFailed
from rxcrm.services.filters import decode, encode
from rxcrm.services.fields import field_map
from rxcrm.settings import TZ

from . import factories as f

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)  # a fixed "now" (Moscow noon)


@pytest.fixture
def world(db):
    """Two ДПО managers, one admissions manager, a few deals and leads with known values."""
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        adm = f.user(s, "admissions1", dept_code="admissions", full_name="Орлова Мария")
        boss = f.user(s, "admin", role="admin", dept_code=None, full_name="Админ")
        py = f.product(s, "Программирование на Python", 45000)
        pm = f.product(s, "Управление проектами", 30000)
        ivanov = f.contact(s, "Иванов", "Пётр", "Сергеевич", phones=["+7 (987) 654-32-10"],
                           emails=["Ivanov.Petr@Mail.ru"], responsible=m1)
        kuz = f.contact(s, "Кузнецова", "Ольга", phones=["8 912 111-22-33"], responsible=m2)
        d1 = f.deal(s, "Python — Иванов", m1, amount=45000, contact_=ivanov, program_id=py.id,
                    source="Маркетплейс", created_at=NOW - timedelta(days=40),
                    next_activity_at=NOW - timedelta(hours=2), utm_campaign="python_promo",
                    custom={"dpo_docs_received": "Да"})
        d2 = f.deal(s, "Проекты — Кузнецова", m2, stage_code="REGISTRATION", amount=30000, contact_=kuz,
                    program_id=pm.id, source="Лендинг", created_at=NOW - timedelta(days=5),
                    next_activity_at=NOW + timedelta(hours=3))
        d3 = f.deal(s, "Python — повторно", m1, amount=20000, program_id=py.id, source="Звонок",
                    created_at=NOW - timedelta(days=1), next_activity_at=NOW + timedelta(days=3),
                    is_repeat=True)
        d4 = f.deal(s, "Без дел", m2, amount=15000, source="Лендинг", created_at=NOW - timedelta(days=2))
        won = f.deal(s, "Выигранная", m1, stage_code="WON", amount=99000, created_at=NOW - timedelta(days=90))
        mag = f.deal(s, "Магистратура — Орлова", adm, pipe_code="masters", stage_code="REGISTRATION",
                     amount=300000, created_at=NOW - timedelta(days=3))
        l1 = f.lead(s, "Вопрос с лендинга", m1, last="Смирнов", first="Алексей", phones=["8(903)555-44-33"],
                    emails=["smirnov@yandex.ru"], source="Лендинг", created_at=NOW - timedelta(days=1))
        l2 = f.lead(s, "Заявка с маркетплейса", m2, stage_code="ACQUAINTANCE", last="Ёлкина", first="Вера",
                    source="Маркетплейс", created_at=NOW - timedelta(days=2))
        ids = dict(m1=m1.id, m2=m2.id, adm=adm.id, boss=boss.id, py=py.id, pm=pm.id, d1=d1.id, d2=d2.id,
                   d3=d3.id, d4=d4.id, won=won.id, mag=mag.id, l1=l1.id, l2=l2.id,
                   dpo=f.pipeline(s, "dpo").id, interest=f.stage(s, "dpo", "INTEREST").id,
                   registration=f.stage(s, "dpo", "REGISTRATION").id, ivanov=ivanov.id)
        users = {u.login: actor_for(u) for u in (m1, m2, adm, boss)}
    return db, ids, users


def ids_of(db, actor, entity, filters, **kw):
    with session_scope(db) as s:
        items, _ = listing.query_items(s, actor, entity, filters, limit=None, now=NOW, **kw)
        return {i.id for i in items}


@pytest.mark.parametrize("typed", ["8(987) 654-32-10", "(987) 654-32-10", "654-32-10", "+79876543210",
                                   "89876543210", "987 654 32 10"])
def test_phone_search_finds_the_deal_of_the_contact_however_typed(world, typed):
    db, ids, u = world
    assert ids_of(db, u["admin"], "deal", {"q": typed}) == {ids["d1"]}
    assert ids_of(db, u["admin"], "contact", {"q": typed}) == {ids["ivanov"]}


def test_lead_phone_search_and_partial_digits(world):
    db, ids, u = world
    assert ids_of(db, u["admin"], "lead", {"q": "555-44-33"}) == {ids["l1"]}
    assert ids_of(db, u["admin"], "lead", {"q": "+7 903 555 44 33"}) == {ids["l1"]}
    assert ids_of(db, u["admin"], "lead", {"q": "000-00-00"}) == set()


def test_text_search_names_titles_emails_case_insensitive(world):
    db, ids, u = world
    assert ids_of(db, u["admin"], "deal", {"q": "иванов"}) == {ids["d1"]}
    assert ids_of(db, u["admin"], "deal", {"q": "PYTHON"}) == {ids["d1"], ids["d3"]}
    assert ids_of(db, u["admin"], "lead", {"q": "смирн"}) == {ids["l1"]}
    assert ids_of(db, u["admin"], "lead", {"q": "Smirnov@YANDEX"}) == {ids["l1"]}
    assert ids_of(db, u["admin"], "contact", {"q": "ivanov.petr@"}) == {ids["ivanov"]}
    assert ids_of(db, u["admin"], "lead", {"q": "ёлкина"}) == {ids["l2"]}
    assert ids_of(db, u["admin"], "deal", {"q": "100%_"}) == set()  # LIKE wildcards are literal


def test_filter_by_each_field(world):
    db, ids, u = world
    a = u["admin"]
    assert ids_of(db, a, "deal", {"stage_id": [ids["registration"]]}) == {ids["d2"]}
    assert ids_of(db, a, "deal", {"source": ["Лендинг"]}) == {ids["d2"], ids["d4"]}
    assert ids_of(db, a, "deal", {"responsible_id": [ids["m1"]]}) == {ids["d1"], ids["d3"], ids["won"]}
    assert ids_of(db, a, "deal", {"program_id": [ids["py"]]}) == {ids["d1"], ids["d3"]}
    assert ids_of(db, a, "deal", {"pipeline_id": [ids["dpo"]], "semantic": ["process"]}) == \
        {ids["d1"], ids["d2"], ids["d3"], ids["d4"]}
    created = {"from": (NOW - timedelta(days=5)).date().isoformat(), "to": (NOW - timedelta(days=2)).date().isoformat()}
    assert ids_of(db, a, "deal", {"created_at": created}) == {ids["d2"], ids["d4"], ids["mag"]}
    today = NOW.date().isoformat()
    assert ids_of(db, a, "deal", {"updated_at": {"from": today}}) >= set()  # well-formed
    assert ids_of(db, a, "deal", {"amount": {"from": "20 000", "to": 45000}}) == {ids["d1"], ids["d2"], ids["d3"]}
    assert ids_of(db, a, "deal", {"amount": {"from": 100000}}) == {ids["mag"]}
    assert ids_of(db, a, "deal", {"is_repeat": True}) == {ids["d3"]}
    assert ids_of(db, a, "deal", {"utm_campaign": "PYTHON"}) == {ids["d1"]}
    assert ids_of(db, a, "deal", {"custom.dpo_docs_received": ["Да"]}) == {ids["d1"]}
    assert ids_of(db, a, "deal", {"contact_id": [ids["ivanov"]]}) == {ids["d1"]}
    assert ids_of(db, a, "lead", {"name": "алекс"}) == {ids["l1"]}
    assert ids_of(db, a, "deal", {"phone": "654-32-10"}) == {ids["d1"]}


def test_activity_state_filter(world):
    db, ids, u = world
    a = u["admin"]
    assert ids_of(db, a, "deal", {"activity": "overdue"}) == {ids["d1"]}
    assert ids_of(db, a, "deal", {"activity": "today"}) == {ids["d2"]}
    assert ids_of(db, a, "deal", {"activity": "none", "semantic": ["process"]}) == {ids["d4"], ids["mag"]}


def test_bad_filters_are_refused_clearly(world):
    db, ids, u = world
    with pytest.raises(ValidationFailed, match="Неизвестное поле"):
        ids_of(db, u["admin"], "deal", {"nonsense": "x"})
    with pytest.raises(ValidationFailed, match="Неверная дата"):
        ids_of(db, u["admin"], "deal", {"created_at": {"from": "31.02.2026"}})
    with pytest.raises(ValidationFailed, match="Неверное число"):
        ids_of(db, u["admin"], "deal", {"amount": {"from": "много"}})
    with pytest.raises(ValidationFailed, match="состояние дел"):
        ids_of(db, u["admin"], "deal", {"activity": "someday"})


def test_manager_sees_only_their_department(world):
    db, ids, u = world
    assert ids["mag"] not in ids_of(db, u["manager1"], "deal", {})
    assert ids_of(db, u["admissions1"], "deal", {}) == {ids["mag"]}
    with session_scope(db) as s:
        assert listing.count(s, u["manager1"], "deal", {"q": "Орлова"}, NOW) == 0
        cols = listing.board_summary(s, u["admissions1"], "deal", ids["dpo"], {}, NOW)
    assert sum(c["count"] for c in cols) == 0


def test_list_page_sort_paging_total_and_display(world):
    db, ids, u = world
    with session_scope(db) as s:
        page = listing.list_page(s, u["admin"], "deal", {"pipeline_id": [ids["dpo"]]},
                                 ["title", "amount", "stage_id", "responsible_id", "contact_id", "phone",
                                  "next_activity_at", "custom.dpo_docs_received"],
                                 sort="amount", desc=True, page=1, page_size=10, now=NOW)
        assert page.total == 5
        assert [r["id"] for r in page.rows] == [ids["won"], ids["d1"], ids["d2"], ids["d3"], ids["d4"]]
        r = page.rows[1]
        assert r["amount"] == "45\u00a0000\u00a0₽"
        assert r["stage_id"] == "Интерес" and r["responsible_id"] == "Петров Иван"
        assert r["contact_id"] == "Иванов Пётр Сергеевич" and r["phone"] == "+7 987 654-32-10"  # shown in one format
        assert r["custom.dpo_docs_received"] == "Да" and r["_overdue"] is True
        assert page.rows[-1]["next_activity_at"] == "нет дел"
        by_stage = listing.list_page(s, u["admin"], "deal", {"pipeline_id": [ids["dpo"]]}, ["title"],
                                     sort="stage_id", desc=False, page_size=10, now=NOW)
        assert by_stage.rows[-1]["id"] == ids["won"]
        p2 = listing.list_page(s, u["admin"], "deal", {}, ["title"], page=2, page_size=10, now=NOW)
        assert p2.page == 1 and p2.total == 6  # page clamped to the last one
        with pytest.raises(ValidationFailed):
            listing.list_page(s, u["admin"], "deal", {}, ["title"], sort="phone")


def test_board_counts_sums_and_activity_counters_come_from_sql(world):
    db, ids, u = world
    with session_scope(db) as s:
        cols = {c["name"]: c for c in listing.board_summary(s, u["admin"], "deal", ids["dpo"], {}, NOW)}
        assert list(cols) == ["Интерес", "Регистрация", "Договор", "Аванс\\Предоплата", "Зачисление",
                              "Постоплата", "Обучение"]  # final stages are not columns
        assert cols["Интерес"]["count"] == 3
        assert cols["Интерес"]["amount"] == "80\u00a0000\u00a0₽"
        assert (cols["Интерес"]["overdue"], cols["Интерес"]["today"], cols["Интерес"]["none"]) == (1, 0, 1)
        assert cols["Регистрация"]["today"] == 1
        filtered = {c["name"]: c for c in listing.board_summary(s, u["admin"], "deal", ids["dpo"],
                                                                {"source": ["Лендинг"]}, NOW)}
        assert filtered["Интерес"]["count"] == 1 and filtered["Интерес"]["amount_value"] == 15000
        cards = listing.column_cards(s, u["admin"], "deal", ids["dpo"], ids["interest"], {}, now=NOW)
        assert [c["id"] for c in cards] == [ids["d3"], ids["d4"], ids["d1"]]  # newest first
        card = cards[2]
        assert card["client"] == "Иванов Пётр Сергеевич" and card["amount"] == "45\u00a0000\u00a0₽"
        more = listing.column_cards(s, u["admin"], "deal", ids["dpo"], ids["interest"], {}, offset=2, limit=2, now=NOW)
        assert [c["id"] for c in more] == [ids["d1"]]


def test_card_shows_next_activity_and_repeat_flag(world):
    db, ids, u = world
    with session_scope(db) as s:
        s.add(Activity(entity_type="deal", entity_id=ids["d3"], kind="call", subject="Перезвонить",
                       start_at=NOW + timedelta(days=3), responsible_id=ids["m1"]))
        s.add(Activity(entity_type="deal", entity_id=ids["d3"], kind="call", subject="Позже",
                       start_at=NOW + timedelta(days=4), responsible_id=ids["m1"]))
    with session_scope(db) as s:
        card = listing.column_cards(s, u["admin"], "deal", ids["dpo"], ids["interest"], {}, now=NOW)[0]
    assert card["activity"] == "Перезвонить" and card["activity_at"] == "23 ноября 12:00"
    assert card["overdue"] is False and card["repeat"] is True


def test_filter_url_round_trip(world):
    db, ids, u = world
    flt = {"q": "Иванов", "stage_id": [3, 4], "source": ["Лендинг", "Звонок"],
           "created_at": {"from": "2026-01-01", "to": None}, "amount": {"from": "100", "to": "500"},
           "activity": "overdue", "is_repeat": True, "custom.dpo_docs_received": ["Да"]}
    with session_scope(db) as s:
        fmap = field_map(s, "deal", ids["dpo"])
    from urllib.parse import parse_qsl
    back = decode(dict(parse_qsl(encode(flt))), fmap)
    assert back == flt


def test_a_sort_the_list_cannot_use_falls_back_to_the_default(world):
    """Issue 12: a deal sort carried to contacts (or a custom field of another pipeline, or an
    old link) must not break the list: `sort_or_default` keeps what works, else the default."""
    db, ids, u = world
    with session_scope(db) as s:
        dpo, masters = f.pipeline(s, "dpo").id, f.pipeline(s, "masters").id
        assert listing.sort_or_default(s, "deal", "amount", False) == ("amount", False)
        assert listing.sort_or_default(s, "contact", "amount", False) == listing.DEFAULT_SORT == ("created_at", True)
        assert listing.sort_or_default(s, "company", "full_name", True) == listing.DEFAULT_SORT
        assert listing.sort_or_default(s, "contact", "full_name", False) == ("full_name", False)
        assert listing.sort_or_default(s, "deal", "phone", True) == listing.DEFAULT_SORT  # not sortable
        assert listing.sort_or_default(s, "deal", "custom.masters_exam_score", True, masters)[0] == \
            "custom.masters_exam_score"
        assert listing.sort_or_default(s, "deal", "custom.masters_exam_score", True, dpo) == listing.DEFAULT_SORT
        assert listing.sort_or_default(s, "lead", "queue", False) == ("queue", False)
        assert listing.sort_or_default(s, "deal", "queue", False) == listing.DEFAULT_SORT
        assert listing.sort_or_default(s, "deal", "'; drop table deal; --", True) == listing.DEFAULT_SORT
        with pytest.raises(ValidationFailed):  # the service itself still refuses it clearly
            listing.list_page(s, u["admin"], "contact", {}, ["full_name"], sort="amount")
