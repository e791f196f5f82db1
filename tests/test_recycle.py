"""The recycle bin: soft-deleted items are listed for admins and heads and restored with
their timeline — on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, Company, Deal, TimelineEvent
from rxcrm.services import auth, cards, items, listing, recycle
from rxcrm.services.errors import AccessDenied, NotFound, ValidationFailed

from . import factories as f


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        m1 = f.user(s, "dpo1", full_name="Петров Иван")
        head = f.user(s, "dpohead", role="head", full_name="Волков Олег")
        adm = f.user(s, "adm1", dept_code="admissions", full_name="Орлова Мария")
        ahead = f.user(s, "admhead", role="head", dept_code="admissions")
        boss = f.user(s, "admin", role="admin", dept_code=None, full_name="Админов Админ")
        director = f.user(s, "director", role="director", dept_code=None)
        A = {u.login: auth.actor_for(u) for u in (m1, head, adm, ahead, boss, director)}
        deal = f.deal(s, "Python — Иванов", m1)
        lead = f.lead(s, "Лид Иванова", m1)
        contact = f.contact(s, "Иванов", "Пётр", phones=["+7 900 000-00-01"], responsible=m1)
        comp = Company(title="ООО Ромашка", responsible_id=m1.id, department_id=m1.department_id)
        s.add(comp)
        s.flush()
        adeal = f.deal(s, "Магистратура — Орлова", adm, pipe_code="masters", stage_code="REGISTRATION")
        ids = dict(deal=deal.id, lead=lead.id, contact=contact.id, company=comp.id, adeal=adeal.id,
                   registration=f.stage(s, "dpo", "REGISTRATION").id)
    with session_scope(db) as s:
        items.move_stage(s, A["dpo1"], "deal", ids["deal"], ids["registration"])
        items.delete_item(s, A["dpo1"], "deal", ids["deal"])
        items.delete_item(s, A["dpo1"], "lead", ids["lead"])
        items.delete_item(s, A["dpo1"], "contact", ids["contact"])
        items.delete_item(s, A["dpo1"], "company", ids["company"])
        items.delete_item(s, A["adm1"], "deal", ids["adeal"])
    return db, ids, A


def test_bin_lists_by_role(world):
    db, ids, A = world
    with session_scope(db) as s:
        rows, total = recycle.deleted_items(s, A["admin"])
        assert total == 5 and len(rows) == 5
        rows, total = recycle.deleted_items(s, A["dpohead"])
        assert total == 4 and {(r["entity"], r["id"]) for r in rows} == {
            ("deal", ids["deal"]), ("lead", ids["lead"]), ("contact", ids["contact"]), ("company", ids["company"])}
        row = next(r for r in rows if r["entity"] == "deal")
        assert row["title"] == "Python — Иванов" and row["entity_label"] == "Сделка"
        assert row["deleted_by"] == "Петров Иван" and row["responsible"] == "Петров Иван"
        assert row["department"] == "ДПО" and row["href"] == f"/deals/{ids['deal']}" and row["deleted_at"]
        assert next(r for r in rows if r["entity"] == "contact")["title"] == "Иванов Пётр"
        rows, total = recycle.deleted_items(s, A["admhead"])
        assert total == 1 and rows[0]["id"] == ids["adeal"]
        rows, total = recycle.deleted_items(s, A["admin"], entity="deal")
        assert total == 2 and {r["entity"] for r in rows} == {"deal"}
        page1, total = recycle.deleted_items(s, A["admin"], offset=0, limit=2)
        page2, _ = recycle.deleted_items(s, A["admin"], offset=2, limit=2)
        page3, _ = recycle.deleted_items(s, A["admin"], offset=4, limit=2)
        seen = [(r["entity"], r["id"]) for r in page1 + page2 + page3]
        assert len(seen) == len(set(seen)) == total == 5
        assert recycle.can_view(A["admin"]) and recycle.can_view(A["dpohead"])
        for login in ("dpo1", "adm1", "director"):
            assert not recycle.can_view(A[login])
            with pytest.raises(AccessDenied):
                recycle.deleted_items(s, A[login])
        with pytest.raises(ValidationFailed):
            recycle.deleted_items(s, A["admin"], entity="product")


def test_deleted_items_leave_lists_and_cards(world):
    db, ids, A = world
    with session_scope(db) as s:
        assert listing.count(s, A["admin"], "deal", {}) == 0
        with pytest.raises(NotFound):
            cards.open_card(s, A["admin"], "deal", ids["deal"])


def test_restore_brings_the_item_back_with_its_timeline(world):
    db, ids, A = world
    with session_scope(db) as s:
        before = [e.kind for e in s.exec(select(TimelineEvent).where(
            TimelineEvent.entity_type == "deal", TimelineEvent.entity_id == ids["deal"]).order_by(TimelineEvent.id))]
        assert before == ["stage_changed", "activity_planned", "deleted"]  # the call is planned by a rule
        recycle.restore(s, A["dpohead"], "deal", ids["deal"])
    with session_scope(db) as s:
        d = s.get(Deal, ids["deal"])
        assert d.deleted_at is None and d.responsible_id is not None
        assert listing.count(s, A["dpo1"], "deal", {}) == 1
        card = cards.open_card(s, A["dpo1"], "deal", ids["deal"])
        assert next(st for st in card["stages"] if st["current"])["name"] == "Регистрация"
        tl, _ = cards.timeline(s, A["dpo1"], "deal", ids["deal"])
        assert [e["kind"] for e in tl] == ["restored", "deleted", "activity_planned", "stage_changed"]
        assert tl[0]["label"] == "Восстановление" and tl[0]["who"] == "Волков Олег"
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "restore")).one()
        assert (rec.entity_type, rec.entity_id, rec.details["title"]) == ("deal", ids["deal"], "Python — Иванов")
        rows, total = recycle.deleted_items(s, A["dpohead"])
        assert total == 3 and ids["deal"] not in {r["id"] for r in rows if r["entity"] == "deal"}
    with session_scope(db) as s, pytest.raises(ValidationFailed):
        recycle.restore(s, A["admin"], "deal", ids["deal"])  # not in the bin any more


def test_restore_access(world):
    db, ids, A = world
    for login in ("dpo1", "director", "admhead"):
        with session_scope(db) as s, pytest.raises(AccessDenied):
            recycle.restore(s, A[login], "deal", ids["deal"])
    with session_scope(db) as s, pytest.raises(NotFound):
        recycle.restore(s, A["admin"], "deal", 99999)
    with session_scope(db) as s:
        res = recycle.restore_many(s, A["dpohead"], "deal", [ids["deal"], ids["adeal"]])
        assert res.done == 1 and res.refused[0]["id"] == ids["adeal"]
    with session_scope(db) as s:
        recycle.restore(s, A["admin"], "contact", ids["contact"])
        recycle.restore(s, A["admin"], "company", ids["company"])
        recycle.restore(s, A["admin"], "lead", ids["lead"])
    with session_scope(db) as s:
        assert s.get(Deal, ids["deal"]).deleted_at is None
        assert s.get(Deal, ids["adeal"]).deleted_at is not None
        assert recycle.deleted_items(s, A["admin"])[1] == 1
        assert listing.count(s, A["dpo1"], "contact", {"q": "900 000-00-01"}) == 1
