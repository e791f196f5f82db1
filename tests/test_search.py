"""The top search (services/search.py): every kind of item at once, grouped, each hit a card
link; phones in any format, names, e-mails; the lists' access scope; bounded per group —
on SQLite and PostgreSQL."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event
from sqlmodel import select

from rxcrm.db import get_engine, session_scope
from rxcrm.models import Communication, Company
from rxcrm.services import auth, search
from rxcrm.services.phones import comm_row, search_text

from . import factories as f


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        m1 = f.user(s, "srch1", full_name="Иванова Мария Олеговна")
        m2 = f.user(s, "srch2", full_name="Петров Алексей Игоревич")
        adm = f.user(s, "srchadm", dept_code="admissions", full_name="Морозова Ольга")
        boss = f.user(s, "srchboss", role="admin", dept_code=None, full_name="Админов Админ")
        client = f.contact(s, "Пономарёва", "Анна", "Сергеевна", phones=["+7 987 654-32-10"],
                           emails=["anna.ponomareva@example.ru"], responsible=m1)
        f.deal(s, "Цифровой маркетинг — Пономарёва", m1, contact_=client, amount=79000)
        f.lead(s, "Заявка с лендинга", m1, last="Пономарёва", first="Анна", phones=["8 (987) 654-32-10"])
        company = Company(title="ООО «Пономарь и партнёры»", responsible_id=m1.id, department_id=m1.department_id,
                          search_text=search_text("ООО «Пономарь и партнёры»"))
        s.add(company)
        s.flush()
        s.add(Communication(**comm_row("company", company.id, "phone", "+7 495 111-22-33")))
        # someone of another department with the same surname: not for the DPO managers
        other = f.contact(s, "Пономарёв", "Олег", phones=["+7 916 000-11-22"], responsible=adm)
        f.deal(s, "Магистратура — Пономарёв", adm, pipe_code="masters", stage_code="REGISTRATION", contact_=other)
        for i in range(8):  # many leads matching one word: the group is bounded
            f.lead(s, f"Вебинар по аналитике {i}", m2, last="Слушатель", first=str(i))
        actors = {u.login: auth.actor_for(u) for u in (m1, m2, adm, boss)}
    return db, actors


def _find(db, actor, q, **kw):
    with session_scope(db, write=False) as s:
        return search.search(s, actor, q, **kw)


def _titles(groups) -> dict[str, list[str]]:
    return {g["entity"]: [h["title"] for h in g["hits"]] for g in groups}


@pytest.mark.parametrize("typed", ["+7 987 654-32-10", "89876543210", "8(987) 654-32-10", "(987) 654-32-10",
                                   "654-32-10", "+79876543210"])
def test_a_phone_in_any_format_finds_the_lead_the_contact_and_their_deal(world, typed):
    db, a = world
    found = _titles(_find(db, a["srch1"], typed))
    assert found == {"lead": ["Заявка с лендинга"], "deal": ["Цифровой маркетинг — Пономарёва"],
                     "contact": ["Пономарёва Анна Сергеевна"]}


def test_a_name_finds_every_kind_grouped_in_order_with_card_links(world):
    db, a = world
    groups = _find(db, a["srch1"], "пономар")
    assert [g["entity"] for g in groups] == ["lead", "deal", "contact", "company"]
    assert [g["label"] for g in groups] == ["Лиды", "Сделки", "Контакты", "Компании"]
    by = {g["entity"]: g for g in groups}
    assert by["company"]["hits"][0]["title"] == "ООО «Пономарь и партнёры»"
    contact = by["contact"]["hits"][0]
    assert contact["href"] == f"/contacts/{contact['id']}"
    assert contact["hint"] == "+7 987 654-32-10 · anna.ponomareva@example.ru"
    deal = by["deal"]["hits"][0]
    assert deal["href"] == f"/deals/{deal['id']}" and "79\u00a0000\u00a0₽" in deal["hint"] and "Интерес" in deal["hint"]
    assert by["lead"]["hits"][0]["hint"].startswith("Пономарёва Анна · +7 987 654-32-10")


def test_an_email_finds_its_contact_and_english_labels(world):
    db, a = world
    groups = _find(db, a["srch1"], "anna.ponomareva@example.ru", lang="en")
    assert _titles(groups)["contact"] == ["Пономарёва Анна Сергеевна"]
    assert groups[0]["label"] in ("Deals", "Contacts")


def test_the_hint_shows_the_phone_that_matched(world):
    db, a = world
    with session_scope(db) as s:
        from rxcrm.models import Contact
        c = s.exec(select(Contact).where(Contact.last_name == "Пономарёва")).one()
        s.add(Communication(**comm_row("contact", c.id, "phone", "+7 903 111-22-33")))
    by = {g["entity"]: g for g in _find(db, a["srch1"], "111-22-33")}
    assert by["contact"]["hits"][0]["hint"].startswith("+7 903 111-22-33 · ")
    by = {g["entity"]: g for g in _find(db, a["srch1"], "654-32-10")}
    assert by["contact"]["hits"][0]["hint"].startswith("+7 987 654-32-10 · ")


def test_results_are_scoped_like_the_lists(world):
    db, a = world
    mine = _titles(_find(db, a["srch1"], "пономар"))
    assert "Магистратура — Пономарёв" not in mine["deal"] and "Пономарёв Олег" not in mine["contact"]
    theirs = _titles(_find(db, a["srchadm"], "пономар"))
    assert theirs == {"deal": ["Магистратура — Пономарёв"], "contact": ["Пономарёв Олег"]}
    admin = _titles(_find(db, a["srchboss"], "пономар"))
    assert len(admin["deal"]) == 2 and len(admin["contact"]) == 2


def test_each_group_is_bounded_and_show_all_opens_the_filtered_list(world):
    db, a = world
    groups = _find(db, a["srch2"], "вебинар")
    assert len(groups) == 1
    g = groups[0]
    assert len(g["hits"]) == search.PER_GROUP and g["more"] is True
    assert g["hits"][0]["title"] == "Вебинар по аналитике 7"  # newest first
    url = urlsplit(g["href_all"])
    assert url.path == "/leads" and parse_qs(url.query) == {"view": ["list"], "q": ["вебинар"]}
    assert search.best_target(groups, "вебинар") == g["href_all"]


def test_short_or_empty_queries_find_nothing_and_enter_targets(world):
    db, a = world
    assert _find(db, a["srch1"], "") == [] and _find(db, a["srch1"], " п ") == []
    assert _find(db, a["srch1"], "Жжжжжж") == []
    assert search.best_target([], "Жжжжжж") == "/leads?view=list&q=%D0%96%D0%B6%D0%B6%D0%B6%D0%B6%D0%B6"
    assert search.best_target([], "") == "/leads"
    one = _find(db, a["srch1"], "Пономарь")
    assert search.best_target(one, "Пономарь") == one[0]["hits"][0]["href"]


def test_parallel_reads_give_the_same_answer(world):
    db, a = world
    assert _find(db, a["srch1"], "пономар", workers=2) == _find(db, a["srch1"], "пономар")


def test_a_bounded_number_of_statements_whatever_the_matches(world):
    """No query per hit: one read per kind plus batched name lookups."""
    db, a = world
    engine = get_engine(db)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        _find(db, a["srchboss"], "пономар")
        many = len(seen)
        seen.clear()
        _find(db, a["srchboss"], "вебинар")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert many <= 30, many
