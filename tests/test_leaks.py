"""Nothing of another department reaches a ДПО manager: counts, board sums, list search
by phone or name, export, the card's links (Связи) and the history — on SQLite and
PostgreSQL. The admissions items are deliberately mixed in: one sits in the ДПО deal
pipeline and one shares its contact with a ДПО deal."""
from __future__ import annotations

from datetime import UTC, datetime

import openpyxl
import pytest

from rxcrm.db import session_scope
from rxcrm.models import Company, Deal
from rxcrm.services import auth, cards, export, history, items, listing
from rxcrm.services.errors import AccessDenied

from . import factories as f

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SECRET_PHONE = "+7 999 111-22-33"
SECRET = "Секретова"


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        m1 = f.user(s, "dpo1", full_name="Петров Иван")
        m2 = f.user(s, "dpo2", full_name="Сидорова Анна")
        head = f.user(s, "dpohead", role="head", full_name="Волков Олег")
        adm = f.user(s, "adm1", dept_code="admissions", full_name="Орлова Мария")
        boss = f.user(s, "admin", role="admin", dept_code=None)
        # Admissions: a contact, a company, two deals (one in the ДПО pipeline!), a lead.
        secret = f.contact(s, SECRET, "Анна", phones=[SECRET_PHONE], emails=["anna@secret.example"],
                           responsible=adm)
        comp = Company(title="ООО Секретный институт", responsible_id=adm.id, department_id=adm.department_id,
                       search_text="ооо секретный институт")
        s.add(comp)
        s.flush()
        secret.company_id = comp.id
        s.add(secret)
        a_deal = f.deal(s, f"Магистратура — {SECRET}", adm, pipe_code="masters", stage_code="REGISTRATION",
                        amount=700000, contact_=secret, created_at=NOW)
        a_in_dpo = f.deal(s, f"Курс — {SECRET}", adm, pipe_code="dpo", stage_code="INTEREST",
                          amount=500000, contact_=secret, created_at=NOW)
        a_lead = f.lead(s, f"Заявка {SECRET}", adm, last=SECRET, first="Анна", phones=[SECRET_PHONE],
                        created_at=NOW)
        # ДПО: own and colleague's deals; one of them is with the admissions contact.
        own = f.deal(s, "Python — Иванов", m1, amount=45000, created_at=NOW)
        shared = f.deal(s, "Повторная — общая клиентка", m1, amount=10000, contact_=secret, created_at=NOW)
        mate = f.deal(s, "Проекты — Кузнецова", m2, amount=20000, created_at=NOW)
        own_lead = f.lead(s, "Лид ДПО", m1, last="Иванов", phones=["+7 900 000-00-01"], created_at=NOW)
        ids = dict(secret=secret.id, comp=comp.id, a_deal=a_deal.id, a_in_dpo=a_in_dpo.id, a_lead=a_lead.id,
                   own=own.id, shared=shared.id, mate=mate.id, own_lead=own_lead.id,
                   dpo_pipe=f.pipeline(s, "dpo").id, masters_pipe=f.pipeline(s, "masters").id)
        actors = {u.login: auth.actor_for(u) for u in (m1, m2, head, adm, boss)}
    # Some history from both offices: the admissions manager opens and edits her items.
    with session_scope(db) as s:
        cards.open_card(s, actors["adm1"], "deal", ids["a_deal"])
        cards.open_card(s, actors["adm1"], "contact", ids["secret"])
        cards.open_card(s, actors["dpo1"], "deal", ids["own"])
    return db, ids, actors


def test_counts_exclude_other_departments(world):
    db, ids, a = world
    with session_scope(db) as s:
        m = a["dpo1"]
        assert listing.count(s, m, "deal", {}, NOW) == 3  # own, shared, mate
        assert listing.count(s, m, "lead", {}, NOW) == 1
        assert listing.count(s, m, "contact", {}, NOW) == 0
        assert listing.count(s, m, "company", {}, NOW) == 0
        # …while the admin sees them all (the data is there).
        assert listing.count(s, a["admin"], "deal", {}, NOW) == 5


def test_board_sums_exclude_other_departments(world):
    db, ids, a = world
    with session_scope(db) as s:
        dpo = listing.board_summary(s, a["dpo1"], "deal", ids["dpo_pipe"], {}, NOW)
        interest = next(c for c in dpo if c["name"] == "Интерес")
        assert interest["count"] == 3
        assert interest["amount_value"] == 75000  # 45 000 + 10 000 + 20 000, not + 500 000
        masters = listing.board_summary(s, a["dpo1"], "deal", ids["masters_pipe"], {}, NOW)
        assert sum(c["count"] for c in masters) == 0
        assert sum(c["amount_value"] for c in masters) == 0
        cards_ = listing.column_cards(s, a["dpo1"], "deal", ids["dpo_pipe"], interest["id"], {}, now=NOW)
        assert SECRET not in " ".join(c["title"] for c in cards_)


@pytest.mark.parametrize("q", [SECRET_PHONE, "111-22-33", "9991112233", SECRET, "секретова", "anna@secret"])
@pytest.mark.parametrize("entity", ["lead", "deal", "contact", "company"])
def test_search_finds_nothing_of_other_departments(world, q, entity):
    db, ids, a = world
    with session_scope(db) as s:
        page = listing.list_page(s, a["dpo1"], entity, {"q": q}, ["title"] if entity != "contact" else ["full_name"],
                                 now=NOW)
        found = {r["id"] for r in page.rows}
        # The shared deal is the manager's own: finding it by its contact's phone is fine.
        allowed = {ids["shared"]} if entity == "deal" else set()
        assert found <= allowed
        assert page.total == len(found)
        assert set(listing.matching_ids(s, a["dpo1"], entity, {"q": q})) <= allowed
        # The contact picker of the card (search suggestions) is the same scoped query.
        picked, _ = listing.query_items(s, a["dpo1"], "contact", {"q": q}, sort="full_name", desc=False, limit=8)
        assert picked == []
        # The admissions manager does find them (the search itself works).
        assert listing.count(s, a["adm1"], "contact", {"q": q}, NOW) == 1


def test_export_excludes_other_departments(world, tmp_path):
    db, ids, a = world
    with session_scope(db) as s:
        for entity, cols in (("deal", ["id", "title", "contact_id", "amount"]), ("lead", ["id", "title", "phone"]),
                             ("contact", ["id", "full_name", "phone", "email"]), ("company", ["id", "title"])):
            dest = tmp_path / f"{entity}.xlsx"
            rows = export.export_xlsx(s, a["dpo1"], entity, {}, cols, dest=dest, now=NOW)
            text = " ".join(str(c.value) for row in openpyxl.load_workbook(dest).active.iter_rows() for c in row)
            assert "Секретн" not in text and "999 111" not in text and "500000" not in text
            assert rows == {"deal": 3, "lead": 1, "contact": 0, "company": 0}[entity]
        # A filter aimed straight at the admissions items exports nothing.
        dest = tmp_path / "aimed.xlsx"
        assert export.export_xlsx(s, a["dpo1"], "deal", {"id": [ids["a_deal"], ids["a_in_dpo"]]}, ["id"],
                                  dest=dest, now=NOW) == 0


def test_card_links_show_only_what_the_manager_may_view(world):
    db, ids, a = world
    with session_scope(db) as s:
        card = cards.open_card(s, a["dpo1"], "deal", ids["shared"], NOW)
        titles = " ".join(link["title"] for link in card["links"])
        hrefs = {link["href"] for link in card["links"]}
        assert SECRET not in titles and "Секретный" not in titles
        assert f"/contacts/{ids['secret']}" not in hrefs and f"/companies/{ids['comp']}" not in hrefs
        assert f"/deals/{ids['a_deal']}" not in hrefs and f"/deals/{ids['a_in_dpo']}" not in hrefs
        # Nor the other way round: the admissions manager's card does not list the ДПО deal.
        theirs = cards.open_card(s, a["adm1"], "deal", ids["a_deal"], NOW)
        assert f"/deals/{ids['shared']}" not in {link["href"] for link in theirs["links"]}
        assert f"/contacts/{ids['secret']}" in {link["href"] for link in theirs["links"]}
        # A typed-in URL of another department's card: a clear refusal, no data.
        for entity, key in (("deal", "a_deal"), ("contact", "secret"), ("company", "comp"), ("lead", "a_lead")):
            with pytest.raises(AccessDenied) as err:
                cards.open_card(s, a["dpo1"], entity, ids[key], NOW)
            assert "Нет доступа" in err.value.message
            with pytest.raises(AccessDenied):
                cards.timeline(s, a["dpo1"], entity, ids[key])
            with pytest.raises(AccessDenied):
                cards.planned(s, a["dpo1"], entity, ids[key])


def test_history_is_closed_to_managers_and_scoped_for_heads(world):
    db, ids, a = world
    with session_scope(db) as s:
        with pytest.raises(AccessDenied) as err:
            history.history_page(s, a["dpo1"])
        assert err.value.message == "История доступна руководителям, директору и администратору"
        with pytest.raises(AccessDenied):
            history.history_filters_options(s, a["dpo1"])
        rows, total = history.history_page(s, a["dpohead"], limit=200)
        assert total == len(rows) and total >= 1
        text = " ".join(f"{r['title']} {r['details']} {r['user']}" for r in rows)
        assert SECRET not in text and "Орлова" not in text
        assert {(r["entity_type"], r["entity_id"]) for r in rows} == {("deal", ids["own"])}
        # Filtering for the admissions items explicitly gives nothing either.
        assert history.history_page(s, a["dpohead"], entity_type="deal", entity_id=ids["a_deal"]) == ([], 0)
        users = dict(history.history_filters_options(s, a["dpohead"])["users"])
        assert "Орлова Мария" not in users.values()


def test_analytics_exclude_other_departments(world):
    """The admissions deal sitting in the ДПО pipeline (500 000 ₽) stays out of the ДПО head's
    and the manager's dashboards, their click-through lists and their Excel."""
    from io import BytesIO

    from rxcrm.models import StageHistory
    from rxcrm.services import analytics
    db, ids, a = world
    with session_scope(db) as s:
        interest = f.stage(s, "dpo", "INTEREST")
        for key in ("a_in_dpo", "own", "shared", "mate"):
            s.add(StageHistory(entity_type="deal", entity_id=ids[key], pipeline_id=ids["dpo_pipe"],
                               stage_id=interest.id, semantic="process", created_at=NOW))
    params = {"period": "custom", "date_from": "2026-11-01", "date_to": "2026-11-30", "pipeline_id": ids["dpo_pipe"]}
    with session_scope(db) as s:
        admin = analytics.dashboard(s, a["admin"], params, now=NOW)
        assert admin.deal_funnel.stages[0].count == 4  # the data is there
        head = analytics.dashboard(s, a["dpohead"], params, now=NOW)
        first = head.deal_funnel.stages[0]
        assert (first.count, int(first.amount)) == (3, 75000)
        assert "Орлова Мария" not in {m.name for m in head.managers}
        assert sum(r.created for r in head.conversion["source"]) == 3
        aimed = analytics.dashboard(s, a["dpohead"], params | {"department_id": f.dept(s, "admissions").id}, now=NOW)
        assert aimed.deal_funnel.entered == 0 and aimed.managers == []
        mine = analytics.dashboard(s, a["dpo1"], params, now=NOW)
        assert mine.deal_funnel.stages[0].count == 2  # own + shared: a manager sees their own figures
        wb = openpyxl.load_workbook(BytesIO(analytics.workbook(s, a["dpohead"], head)))
        text = " ".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row)
        assert "500000" not in text and "545000" not in text and "Орлова" not in text
        assert listing.count(s, a["dpohead"], "deal", {"reached_stage": [interest.id], "reached_at":
                                                        {"from": "2026-11-01", "to": "2026-11-30"},
                                                        "pipeline_id": [ids["dpo_pipe"]]}, NOW) == 3


def test_bulk_results_do_not_tell_whether_an_id_exists_outside_the_scope(world):
    """A ДПО manager's bulk move/assign/delete over an admissions item (it exists, he may
    not see it) and an id that does not exist: the same «нет доступа» for both."""
    db, ids, a = world
    missing = 987654
    with session_scope(db) as s:
        stage = f.stage(s, "dpo", "REGISTRATION").id
    for entity, hidden in (("deal", ids["a_in_dpo"]), ("lead", ids["a_lead"]), ("contact", ids["secret"]),
                           ("company", ids["comp"])):
        runs = [("assign", lambda s, e=entity, h=hidden: items.bulk_assign(s, a["dpo1"], e, [h, missing],
                                                                         a["dpo1"].user_id)),
                ("delete", lambda s, e=entity, h=hidden: items.bulk_delete(s, a["dpo1"], e, [h, missing]))]
        if entity == "deal":
            runs.append(("move", lambda s, h=hidden: items.bulk_move(s, a["dpo1"], "deal", [h, missing], stage)))
        for name, run in runs:
            with session_scope(db) as s:
                res = run(s)
            assert res.done == 0, (entity, name)
            reasons = {r["id"]: r["reason"] for r in res.refused}
            assert set(reasons) == {hidden, missing}, (entity, name)
            assert reasons[hidden] == reasons[missing], (entity, name, reasons)
            assert reasons[hidden].startswith("Нет доступа") and "найден" not in res.summary()
    # the admissions items are untouched
    with session_scope(db) as s:
        d = s.get(Deal, ids["a_in_dpo"])
        assert d.deleted_at is None and d.responsible_id == a["adm1"].user_id
