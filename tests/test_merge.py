"""Duplicates (/settings → Дубликаты): groups by a shared phone or e-mail, the merge into a
survivor (values chosen field by field, phones united, deals/leads/activities/comments/
timeline moved, the others in the recycle bin, audited) and its undo from the recycle bin —
on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import (Activity, AuditRecord, Comment, Communication, Company, Contact, Deal, Lead, MergeRecord,
                          TimelineEvent, utcnow)
from rxcrm.services import auth, items, merge, recycle
from rxcrm.services.errors import AccessDenied, ServiceError, ValidationFailed
from rxcrm.services.items import Conflict
from rxcrm.services.phones import comm_row

from . import factories as f


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        m1 = f.user(s, "dpo1", full_name="Петров Иван")
        m2 = f.user(s, "dpo2", full_name="Сидорова Анна")
        head = f.user(s, "dpohead", role="head", full_name="Волков Олег")
        ahead = f.user(s, "admhead", role="head", dept_code="admissions", full_name="Орлов Пётр")
        boss = f.user(s, "admin", role="admin", dept_code=None, full_name="Админов Админ")
        A = {u.login: auth.actor_for(u) for u in (m1, m2, head, ahead, boss)}
        comp = Company(title="ООО Ромашка", responsible_id=m1.id, department_id=m1.department_id)
        s.add(comp)
        s.flush()
        # the same person three times: a phone in three formats, an e-mail in two cases
        a = f.contact(s, "Иванов", "Пётр", phones=["+7 900 111-22-33"], emails=["petr@example.com"], responsible=m1)
        a.position = ""
        a.birthday = date(1990, 5, 1)
        b = f.contact(s, "Иванов", "Пётр", "Сергеевич", phones=["8 (900) 111-22-33", "+7 901 000-00-02"],
                      emails=["PETR@Example.com"], responsible=m2)
        b.position, b.company_id = "Инженер", comp.id
        c = f.contact(s, "Иванов", "П.", phones=["9001112233"], responsible=m1)
        other = f.contact(s, "Смирнова", "Ольга", phones=["+7 902 000-00-03"], responsible=m1)
        # an e-mail shared with a deleted contact only: no group
        gone = f.contact(s, "Удалённый", "Контакт", emails=["olga@example.com"], responsible=m1)
        s.add(Communication(**comm_row("contact", other.id, "email", "Olga@Example.com")))
        gone.deleted_at = utcnow()
        deal_b = f.deal(s, "Python — Иванов", m2, contact_=b)
        lead_b = f.lead(s, "Лид Иванова", m2)
        lead_b.contact_id = b.id
        deal_c = f.deal(s, "Excel — Иванов", m1, contact_=c)
        s.add(Activity(entity_type="contact", entity_id=b.id, subject="Позвонить", start_at=utcnow()))
        s.add(Comment(entity_type="contact", entity_id=b.id, text="Просил перезвонить"))
        s.add(TimelineEvent(entity_type="contact", entity_id=b.id, kind="comment", data={"text": "Просил перезвонить"}))
        s.add_all([a, b, lead_b])
        ids = dict(a=a.id, b=b.id, c=c.id, other=other.id, gone=gone.id, comp=comp.id, deal_b=deal_b.id,
                   lead_b=lead_b.id, deal_c=deal_c.id)
    return db, ids, A


def _group(groups, kind, norm):
    return next(g for g in groups if g["kind"] == kind and g["norm"] == norm)


def test_groups_by_phone_in_any_format_and_email_in_any_case(world):
    db, ids, A = world
    with session_scope(db, write=False) as s:
        groups, total = merge.duplicate_groups(s, A["admin"], "contact", 0, 20)
        assert total == 2 and len(groups) == 2
        phone = _group(groups, "phone", "79001112233")
        assert phone["count"] == 3 and [i["id"] for i in phone["items"]] == sorted([ids["a"], ids["b"], ids["c"]])
        assert phone["value"].startswith("+7 900")
        email = _group(groups, "email", "petr@example.com")
        assert {i["id"] for i in email["items"]} == {ids["a"], ids["b"]}
        row_b = next(i for i in email["items"] if i["id"] == ids["b"])
        assert row_b["title"] == "Иванов Пётр Сергеевич" and row_b["company"] == "ООО Ромашка"
        assert row_b["responsible"] == "Сидорова Анна" and row_b["deals"] == 1 and row_b["leads"] == 1
        assert row_b["created"] and row_b["href"] == f"/contacts/{ids['b']}"
        # paged
        first, total = merge.duplicate_groups(s, A["admin"], "contact", 0, 1)
        second, _ = merge.duplicate_groups(s, A["admin"], "contact", 1, 1)
        assert total == 2 and len(first) == len(second) == 1 and first[0]["norm"] != second[0]["norm"]
        assert merge.duplicate_groups(s, A["admin"], "contact", 5, 10) == ([], 2)
        # a head sees the items of their department only (all three contacts are ДПО's)
        groups, total = merge.duplicate_groups(s, A["admhead"], "contact", 0, 20)
        assert (groups, total) == ([], 0)
        assert merge.duplicate_groups(s, A["admin"], "company", 0, 20) == ([], 0)
        with pytest.raises(ValidationFailed):
            merge.duplicate_groups(s, A["admin"], "deal", 0, 20)


def test_preview_names_the_fields_that_differ(world):
    db, ids, A = world
    with session_scope(db, write=False) as s:
        p = merge.merge_preview(s, A["admin"], "contact", [ids["a"], ids["b"], ids["c"]])
        fields = {fd["key"]: fd for fd in p["fields"]}
        assert {"name", "position", "company_id", "responsible_id", "birthday"} <= set(fields)
        assert "source" not in fields  # the same everywhere
        assert {v["text"] for v in fields["name"]["values"]} == {"Иванов Пётр", "Иванов Пётр Сергеевич", "Иванов П."}
        assert fields["position"]["default"] == ids["b"]  # the survivor's is empty: the first one given
        assert fields["name"]["default"] == ids["a"]
        assert {v["text"] for v in fields["company_id"]["values"]} == {"ООО Ромашка", "—"}
        assert len(p["phones"]) == 2 and len(p["emails"]) == 1
        assert [i["id"] for i in p["items"]] == [ids["a"], ids["b"], ids["c"]]
        with pytest.raises(ValidationFailed):
            merge.merge_preview(s, A["admin"], "contact", [ids["a"]])


def test_merge_moves_everything_unites_phones_keeps_choices_and_is_undone_from_the_bin(world):
    db, ids, A = world
    with session_scope(db) as s:
        v = {i: s.get(Contact, ids[i]).version for i in ("a", "b", "c")}
        out = merge.merge(s, A["admin"], "contact", ids["a"], [ids["b"], ids["c"]],
                          {"name": ids["b"], "company_id": ids["b"], "responsible_id": ids["a"]},
                          expected_versions={ids[k]: v[k] for k in v})
        assert out["merged"] == [ids["b"], ids["c"]] and out["moved"]["deal"] == 2 and out["moved"]["lead"] == 1
    with session_scope(db, write=False) as s:
        a = s.get(Contact, ids["a"])
        assert a.full_name == "Иванов Пётр Сергеевич" and a.middle_name == "Сергеевич"
        assert a.position == "Инженер"  # not chosen: the survivor's was empty
        assert a.company_id == ids["comp"] and a.birthday == date(1990, 5, 1)
        assert a.version == v["a"] + 1 and a.deleted_at is None
        phones = s.exec(select(Communication.norm).where(Communication.entity_type == "contact",
                                                         Communication.entity_id == ids["a"],
                                                         Communication.kind == "phone")).all()
        assert sorted(phones) == ["79001112233", "79010000002"]  # united, no duplicate by norm
        emails = s.exec(select(Communication.norm).where(Communication.entity_type == "contact",
                                                         Communication.entity_id == ids["a"],
                                                         Communication.kind == "email")).all()
        assert emails == ["petr@example.com"]
        assert s.get(Deal, ids["deal_b"]).contact_id == ids["a"] and s.get(Deal, ids["deal_c"]).contact_id == ids["a"]
        assert s.get(Lead, ids["lead_b"]).contact_id == ids["a"]
        assert s.get(Deal, ids["deal_b"]).version == 2  # the deal's change is a change of the deal
        assert s.exec(select(Activity.entity_id).where(Activity.subject == "Позвонить")).one() == ids["a"]
        assert s.exec(select(Comment.entity_id)).one() == ids["a"]
        kinds = s.exec(select(TimelineEvent.kind, TimelineEvent.data).where(
            TimelineEvent.entity_type == "contact", TimelineEvent.entity_id == ids["a"])).all()
        assert ("comment", {"text": "Просил перезвонить"}) in kinds
        merged_texts = [d["text"] for k, d in kinds if k == "merged"]
        assert "Объединён с контактом «Иванов Пётр Сергеевич» (№%d)" % ids["b"] in merged_texts
        assert any(d.get("field") == "contact_id" for d in s.exec(select(TimelineEvent.data).where(
            TimelineEvent.entity_type == "deal", TimelineEvent.entity_id == ids["deal_b"])).all())
        for k in ("b", "c"):
            assert s.get(Contact, ids[k]).deleted_at is not None
        audit = s.exec(select(AuditRecord).where(AuditRecord.action == "merge")).one()
        assert audit.entity_id == ids["a"] and {m["id"] for m in audit.details["merged"]} == {ids["b"], ids["c"]}
        assert audit.details["fields"]["name"]["new"] == "Иванов Пётр Сергеевич"
        assert len(s.exec(select(MergeRecord)).all()) == 2
        groups, total = merge.duplicate_groups(s, A["admin"], "contact", 0, 20)
        assert total == 0  # the merged-away ones are in the bin
        rows, _ = recycle.deleted_items(s, A["admin"], "contact")
        assert {r["id"] for r in rows} >= {ids["b"], ids["c"]}
    # someone changes the position meanwhile; then b comes back from the bin
    with session_scope(db) as s:
        items.update_fields(s, A["admin"], "contact", ids["a"], {"position": "Главный инженер"})
    with session_scope(db) as s:
        recycle.restore(s, A["admin"], "contact", ids["b"])
    with session_scope(db, write=False) as s:
        a, b = s.get(Contact, ids["a"]), s.get(Contact, ids["b"])
        assert b.deleted_at is None
        assert a.full_name == "Иванов Пётр" and a.middle_name == ""  # b's name given back
        assert a.company_id is None
        assert a.position == "Главный инженер"  # changed since the merge: stays
        assert s.get(Deal, ids["deal_b"]).contact_id == ids["b"] and s.get(Lead, ids["lead_b"]).contact_id == ids["b"]
        assert s.get(Deal, ids["deal_c"]).contact_id == ids["a"]  # c is still merged
        assert s.exec(select(Activity.entity_id).where(Activity.subject == "Позвонить")).one() == ids["b"]
        assert s.exec(select(Comment.entity_id)).one() == ids["b"]
        assert s.exec(select(TimelineEvent.entity_id).where(TimelineEvent.kind == "comment")).one() == ids["b"]
        b_phones = s.exec(select(Communication.norm).where(Communication.entity_type == "contact",
                                                           Communication.entity_id == ids["b"])).all()
        assert sorted(b_phones) == ["79001112233", "79010000002", "petr@example.com"]
        a_phones = s.exec(select(Communication.norm).where(Communication.entity_type == "contact",
                                                           Communication.entity_id == ids["a"],
                                                           Communication.kind == "phone")).all()
        assert a_phones == ["79001112233"]
        rec = s.exec(select(MergeRecord).where(MergeRecord.merged_id == ids["b"])).one()
        assert rec.undone_at is not None
        assert s.exec(select(AuditRecord).where(AuditRecord.action == "unmerge")).one().entity_id == ids["a"]
        assert any(e.kind == "unmerged" for e in s.exec(select(TimelineEvent).where(
            TimelineEvent.entity_type == "contact", TimelineEvent.entity_id == ids["a"])).all())
        groups, total = merge.duplicate_groups(s, A["admin"], "contact", 0, 20)
        assert total == 2  # a and b share the phone and the e-mail again


def test_a_company_merge_moves_its_contacts_and_deals(world):
    db, ids, A = world
    with session_scope(db) as s:
        m1 = s.get(Contact, ids["a"]).responsible_id
        twin = Company(title="Ромашка ООО", inn="7700000000", responsible_id=m1,
                       department_id=s.get(Company, ids["comp"]).department_id)
        s.add(twin)
        s.flush()
        for cid in (ids["comp"], twin.id):
            s.add(Communication(**comm_row("company", cid, "phone", "+7 495 000-00-01")))
        d = s.get(Deal, ids["deal_c"])
        d.company_id = twin.id
        s.add(d)
        twin_id = twin.id
    with session_scope(db) as s:
        groups, total = merge.duplicate_groups(s, A["admin"], "company", 0, 20)
        assert total == 1 and {i["id"] for i in groups[0]["items"]} == {ids["comp"], twin_id}
        merge.merge(s, A["admin"], "company", twin_id, [ids["comp"]], {"title": twin_id})
    with session_scope(db, write=False) as s:
        assert s.get(Contact, ids["b"]).company_id == twin_id
        assert s.get(Company, twin_id).title == "Ромашка ООО" and s.get(Company, twin_id).inn == "7700000000"
        assert s.get(Company, ids["comp"]).deleted_at is not None


def test_a_manager_is_refused_and_a_head_needs_rights_on_every_item(world):
    db, ids, A = world
    with session_scope(db) as s:
        with pytest.raises(AccessDenied):
            merge.merge(s, A["dpo1"], "contact", ids["a"], [ids["c"]], {})
        with pytest.raises(AccessDenied):
            merge.merge_preview(s, A["dpo1"], "contact", [ids["a"], ids["c"]])
        with pytest.raises(AccessDenied):  # another department's head
            merge.merge(s, A["admhead"], "contact", ids["a"], [ids["c"]], {})
    with session_scope(db, write=False) as s:
        refused = s.exec(select(AuditRecord).where(AuditRecord.action == "denied")).all()
        assert any(r.details.get("action") == "merge" for r in refused)
        assert s.get(Contact, ids["c"]).deleted_at is None
    with session_scope(db) as s:  # the department's head may
        merge.merge(s, A["dpohead"], "contact", ids["a"], [ids["c"]], {})
    with session_scope(db, write=False) as s:
        assert s.get(Contact, ids["c"]).deleted_at is not None


def test_bad_choices_and_a_changed_item_are_refused_and_nothing_is_merged(world):
    db, ids, A = world
    with session_scope(db) as s:
        v_b = s.get(Contact, ids["b"]).version
    with session_scope(db) as s:  # b is edited after the person opened the merge
        items.update_fields(s, A["dpo2"], "contact", ids["b"], {"position": "Прораб"})
    with pytest.raises(Conflict) as err:
        with session_scope(db) as s:
            merge.merge(s, A["admin"], "contact", ids["a"], [ids["b"]], {"position": ids["b"]},
                        expected_versions={ids["b"]: v_b})
    assert "Сидорова Анна" in err.value.message
    for choices in ({"nope": ids["b"]}, {"position": ids["other"]}):
        with pytest.raises(ValidationFailed):
            with session_scope(db) as s:
                merge.merge(s, A["admin"], "contact", ids["a"], [ids["b"]], choices)
    with pytest.raises(ServiceError):
        with session_scope(db) as s:
            merge.merge(s, A["admin"], "contact", ids["a"], [ids["a"]], {})
    with pytest.raises(ServiceError):  # a deleted item cannot be merged
        with session_scope(db) as s:
            merge.merge(s, A["admin"], "contact", ids["a"], [ids["gone"]], {})
    with session_scope(db, write=False) as s:
        assert s.get(Contact, ids["b"]).deleted_at is None and s.exec(select(MergeRecord)).all() == []
    with session_scope(db) as s:  # with the fresh version it goes through and takes the new value
        v_b = s.get(Contact, ids["b"]).version
        merge.merge(s, A["admin"], "contact", ids["a"], [ids["b"]], {"position": ids["b"]},
                    expected_versions={ids["b"]: v_b})
    with session_scope(db, write=False) as s:
        assert s.get(Contact, ids["a"]).position == "Прораб"


def test_restoring_an_ordinary_deleted_contact_is_unchanged(world):
    db, ids, A = world
    with session_scope(db) as s:
        items.delete_item(s, A["admin"], "contact", ids["other"])
    with session_scope(db) as s:
        recycle.restore(s, A["admin"], "contact", ids["other"])
    with session_scope(db, write=False) as s:
        assert s.get(Contact, ids["other"]).deleted_at is None
        assert s.exec(select(AuditRecord).where(AuditRecord.action == "unmerge")).all() == []


def test_groups_are_one_query_page_on_many_contacts(db):
    """Many singletons and a few duplicates: the page holds the duplicates only, counted right."""
    with session_scope(db) as s:
        boss = f.user(s, "admin", role="admin", dept_code=None)
        actor = auth.actor_for(boss)
        rows = [Contact(full_name=f"К{i}", created_at=utcnow() - timedelta(minutes=i)) for i in range(300)]
        s.add_all(rows)
        s.flush()
        s.add_all(Communication(**comm_row("contact", c.id, "phone", f"+7 900 {i:07d}")) for i, c in enumerate(rows))
        for i in range(0, 30, 3):  # 10 groups of two: contact i shares contact i+1's phone
            s.add(Communication(**comm_row("contact", rows[i].id, "phone", f"8 900 {i + 1:07d}")))
    with session_scope(db, write=False) as s:
        groups, total = merge.duplicate_groups(s, actor, "contact", 0, 4)
        assert total == 10 and len(groups) == 4 and all(g["count"] == 2 for g in groups)
        seen = [g["norm"] for off in (0, 4, 8) for g in merge.duplicate_groups(s, actor, "contact", off, 4)[0]]
        assert len(seen) == len(set(seen)) == 10
