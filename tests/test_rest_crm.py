"""crm.* over HTTP as Bitrix24 integrations call them (rxcrm/rest/crm.py): field names and
types as shared/BITRIX24_REST.md §3–5 describes them, writes through the services (required
fields, rights, stage history, timeline and audit with the webhook's name), reads scoped by
the webhook user's role."""
from __future__ import annotations

import re
import warnings

import pytest
from sqlmodel import func, select
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, Communication, Deal, Lead, StageHistory, TimelineEvent
from rxcrm.rest import routes as rest
from rxcrm.services import webhooks
from rxcrm.services.auth import actor_for

from . import factories as f

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$")


@pytest.fixture
def world(db, monkeypatch):
    monkeypatch.setenv("REFLEX_DB_URL", db)
    with session_scope(db) as s:
        admin = f.user(s, "admin", role="admin", dept_code=None, full_name="Соколов Дмитрий Андреевич")
        m1 = f.user(s, "manager1", full_name="Иванова Мария Олеговна")
        adm = f.user(s, "admissions1", dept_code="admissions", full_name="Морозова Ольга Дмитриевна")
        a = actor_for(admin)
        _, admin_code = webhooks.create(s, a, user_id=admin.id, name="Скрипт администратора")
        _, m1_code = webhooks.create(s, a, user_id=m1.id, name="Маркетплейс курсов")
        own = f.deal(s, "Сделка менеджера", m1, amount=15000)
        other = f.deal(s, "Магистратура: чужая", adm, pipe_code="masters", stage_code="REGISTRATION")
        ids = {"admin": admin.id, "m1": m1.id, "adm": adm.id, "own": own.id, "other": other.id,
               "masters": f.pipeline(s, "masters").id}
    monkeypatch.setattr(rest, "BUCKET", rest.Bucket(1000, 100))
    client = TestClient(Starlette(routes=rest.routes))

    def call(who: str, name: str, body=None, **kw):
        uid, code = (ids["admin"], admin_code) if who == "admin" else (ids["m1"], m1_code)
        return client.post(f"/rest/{uid}/{code}/{name}", json=body, **kw) if body is not None or not kw else \
            client.post(f"/rest/{uid}/{code}/{name}", **kw)
    return call, ids, client, (admin_code, m1_code)


def test_deal_fields_describe_every_field_as_bitrix24_does(world):
    call, *_ = world
    fields = call("admin", "crm.deal.fields").json()["result"]
    for name in ("ID", "TITLE", "CATEGORY_ID", "STAGE_ID", "OPPORTUNITY", "CURRENCY_ID", "ASSIGNED_BY_ID",
                 "DATE_CREATE", "CONTACT_ID", "UF_CRM_DPO_CONTRACT_NUMBER"):
        assert name in fields, name
    for d in fields.values():  # b24pysdk's CRMField needs each of these keys
        assert {"type", "isRequired", "isReadOnly", "isImmutable", "isMultiple", "isDynamic", "title"} <= set(d)
    assert fields["STAGE_ID"]["type"] == "crm_status" and fields["STAGE_ID"]["statusType"] == "DEAL_STAGE"
    assert fields["CATEGORY_ID"]["isImmutable"] is True and fields["ID"]["isReadOnly"] is True
    assert fields["OPPORTUNITY"]["type"] == "double" and fields["DATE_CREATE"]["type"] == "datetime"
    uf = fields["UF_CRM_DPO_DOCS_RECEIVED"]
    assert uf["isDynamic"] is True and uf["type"] == "enumeration" and uf["listLabel"] == "Все документы получены"
    assert [i["VALUE"] for i in uf["items"]] == ["Да", "Нет"]
    lead = call("admin", "crm.lead.fields").json()["result"]
    assert lead["STATUS_ID"]["statusType"] == "STATUS" and lead["PHONE"]["isMultiple"] is True
    assert lead["PHONE"]["type"] == "crm_multifield"


def test_a_deal_added_and_read_back_with_bitrix24_types(world, db):
    call, ids, *_ = world
    r = call("m1", "crm.deal.add", {"fields": {"TITLE": "Курс Python: Смирнов", "OPPORTUNITY": "45000.50",
                                                "STAGE_ID": "REGISTRATION", "SOURCE_ID": "WEB",
                                                "UF_CRM_DPO_PAYMENT_SCHEME": "Предоплата", "UNKNOWN_FIELD": "x",
                                                "ID": 999}})
    assert r.status_code == 200, r.text
    new_id = r.json()["result"]
    assert isinstance(new_id, int) and new_id != 999
    got = call("m1", "crm.deal.get", {"id": new_id}).json()["result"]
    assert got["ID"] == str(new_id) and got["TITLE"] == "Курс Python: Смирнов"
    assert got["CATEGORY_ID"] == "0" and got["STAGE_ID"] == "REGISTRATION" and got["STAGE_SEMANTIC_ID"] == "P"
    assert got["CLOSED"] == "N" and got["OPPORTUNITY"] == "45000.50" and got["CURRENCY_ID"] == "RUB"
    assert got["ASSIGNED_BY_ID"] == str(ids["m1"]) and got["SOURCE_ID"] == "WEB"
    assert ISO.match(got["DATE_CREATE"]), got["DATE_CREATE"]
    assert got["UF_CRM_DPO_PAYMENT_SCHEME"] == "Предоплата" and got["COMMENTS"] == ""
    with session_scope(db) as s:
        deal = s.get(Deal, new_id)
        assert deal.source == "Лендинг" and deal.custom["dpo_payment_scheme"] == "Предоплата"
        created = s.exec(select(AuditRecord).where(AuditRecord.entity_type == "deal",
                                                   AuditRecord.entity_id == new_id)).first()
        assert created.source == "REST: Маркетплейс курсов"
    # another pipeline: CATEGORY_ID n, stages C<n>:CODE
    r = call("admin", "crm.deal.add", {"fields": {"TITLE": "Магистрант", "CATEGORY_ID": ids["masters"],
                                                   "STAGE_ID": f"C{ids['masters']}:APPLICATION"}})
    got = call("admin", "crm.deal.get", {"id": r.json()["result"]}).json()["result"]
    assert got["CATEGORY_ID"] == str(ids["masters"]) and got["STAGE_ID"] == f"C{ids['masters']}:APPLICATION"


def test_a_required_field_refuses_the_move_and_stores_nothing_half_valid(world, db):
    call, ids, *_ = world
    r = call("m1", "crm.deal.update", {"id": ids["own"], "fields": {"STAGE_ID": "CONTRACT", "TITLE": "Новое имя"}})
    assert r.status_code == 400 and r.json()["error"] == ""
    assert "Номер договора" in r.json()["error_description"]
    with session_scope(db) as s:
        deal = s.get(Deal, ids["own"])
        assert deal.title == "Сделка менеджера"  # the whole call was one unit of work: nothing kept
    r = call("m1", "crm.deal.update", {"id": ids["own"], "fields": {"STAGE_ID": "CONTRACT",
                                                                    "UF_CRM_DPO_CONTRACT_NUMBER": "Д-17"}})
    assert r.status_code == 200 and r.json()["result"] is True
    with session_scope(db) as s:
        deal = s.get(Deal, ids["own"])
        moved = s.exec(select(StageHistory).where(StageHistory.entity_id == deal.id,
                                                  StageHistory.entity_type == "deal")).all()
        assert deal.custom["dpo_contract_number"] == "Д-17" and len(moved) == 1
        events = s.exec(select(TimelineEvent).where(TimelineEvent.entity_id == deal.id,
                                                    TimelineEvent.entity_type == "deal",
                                                    TimelineEvent.kind == "stage_changed")).all()
        assert events and events[-1].user_id == ids["m1"]


def test_a_managers_webhook_cannot_read_another_departments_deal(world):
    call, ids, *_ = world
    r = call("m1", "crm.deal.get", {"id": ids["other"]})
    assert r.status_code == 400 and r.json() == {"error": "", "error_description": "Access denied."}
    listed = call("m1", "crm.deal.list", {"select": ["ID"]}).json()
    assert str(ids["other"]) not in {row["ID"] for row in listed["result"]}
    assert listed["total"] == 1
    assert call("admin", "crm.deal.get", {"id": ids["other"]}).status_code == 200
    r = call("m1", "crm.deal.get", {"id": 987654})
    assert r.status_code == 400 and r.json()["error_description"] == "Not found"
    r = call("m1", "crm.deal.get", {})
    assert r.status_code == 400 and r.json()["error_description"] == "ID is not defined or invalid."
    r = call("m1", "crm.deal.update", {"id": ids["other"], "fields": {"TITLE": "взлом"}})
    assert r.status_code == 400


def test_lead_multifields_by_php_form_then_changed_by_id(world, db):
    call, ids, *_ = world
    body = ("fields[TITLE]=Заявка+с+лендинга&fields[NAME]=Олег&fields[LAST_NAME]=Кузнецов"
            "&fields[PHONE][0][VALUE]=%2B7+912+345-67-89&fields[PHONE][0][VALUE_TYPE]=MOBILE"
            "&fields[EMAIL][0][VALUE]=oleg%40example.ru&fields[STATUS_ID]=ACQUAINTANCE")
    r = call("m1", "crm.lead.add", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    lead_id = r.json()["result"]
    got = call("m1", "crm.lead.get", {"ID": lead_id}).json()["result"]
    assert got["STATUS_ID"] == "ACQUAINTANCE" and got["NAME"] == "Олег" and got["HAS_PHONE"] == "Y"
    phone = got["PHONE"][0]
    assert phone["VALUE"] == "+7 912 345-67-89" and phone["VALUE_TYPE"] == "MOBILE" and phone["TYPE_ID"] == "PHONE"
    assert got["EMAIL"][0]["VALUE"] == "oleg@example.ru"
    # change the phone by its ID, add one, delete the e-mail
    r = call("m1", "crm.lead.update", {"id": lead_id, "fields": {
        "PHONE": [{"ID": phone["ID"], "VALUE": "+7 912 000-11-22"}, {"VALUE": "8 (495) 123-45-67", "VALUE_TYPE": "WORK"}],
        "EMAIL": [{"ID": got["EMAIL"][0]["ID"], "DELETE": "Y"}]}})
    assert r.status_code == 200, r.text
    got = call("m1", "crm.lead.get", {"ID": lead_id}).json()["result"]
    assert [p["VALUE"] for p in got["PHONE"]] == ["+7 912 000-11-22", "8 (495) 123-45-67"]
    assert got["EMAIL"] == [] and got["HAS_EMAIL"] == "N"
    # a bad phone: refused with the reason, nothing changed
    r = call("m1", "crm.lead.update", {"id": lead_id, "fields": {"PHONE": [{"VALUE": "123"}], "TITLE": "Другое"}})
    assert r.status_code == 400 and "10 цифр" in r.json()["error_description"]
    with session_scope(db) as s:
        assert s.get(Lead, lead_id).title == "Заявка с лендинга"
        assert len(s.exec(select(Communication).where(Communication.entity_id == lead_id,
                                                      Communication.entity_type == "lead")).all()) == 2
    # filter by phone finds it
    found = call("m1", "crm.lead.list", {"filter": {"PHONE": "+79120001122"}, "select": ["ID", "TITLE"]}).json()
    assert [row["ID"] for row in found["result"]] == [str(lead_id)]


def test_lists_page_by_fifty_with_filters_order_and_select(world, db):
    call, ids, *_ = world
    with session_scope(db) as s:
        from rxcrm.models import User
        m1 = s.get(User, ids["m1"])
        for i in range(120):
            f.deal(s, f"Пакет {i:03d}", m1, amount=1000 + i, stage_code="INTEREST" if i % 2 else "REGISTRATION")
    first = call("m1", "crm.deal.list", {"filter": {"%TITLE": "Пакет", ">=OPPORTUNITY": 1010},
                                         "order": {"ID": "ASC"}, "select": ["ID", "TITLE", "OPPORTUNITY"]}).json()
    assert first["total"] == 110 and first["next"] == 50 and len(first["result"]) == 50
    assert set(first["result"][0]) == {"ID", "TITLE", "OPPORTUNITY"}
    last = call("m1", "crm.deal.list", {"filter": {"%TITLE": "Пакет", ">=OPPORTUNITY": 1010},
                                        "order": {"ID": "ASC"}, "select": ["ID"], "start": 100}).json()
    assert len(last["result"]) == 10 and "next" not in last
    in_stage = call("m1", "crm.deal.list", {"filter": {"@STAGE_ID": ["REGISTRATION"], "%TITLE": "Пакет"},
                                            "select": ["ID", "STAGE_ID"]}).json()
    assert in_stage["total"] == 60 and {r["STAGE_ID"] for r in in_stage["result"]} == {"REGISTRATION"}
    fast = call("m1", "crm.deal.list", {"filter": {">ID": ids["own"]}, "order": {"ID": "ASC"}, "start": -1}).json()
    assert len(fast["result"]) == 50 and "next" not in fast
    desc = call("m1", "crm.deal.list", {"order": {"OPPORTUNITY": "DESC"}, "select": ["ID", "OPPORTUNITY"]}).json()
    assert desc["result"][0]["OPPORTUNITY"] == "15000.00"
    # unknown filter fields are dropped, not refused
    assert call("m1", "crm.deal.list", {"filter": {"NO_SUCH": 1}}).json()["total"] == 121


def test_delete_is_the_recycle_bins_soft_delete(world, db):
    call, ids, *_ = world
    assert call("m1", "crm.deal.delete", {"id": ids["own"]}).json()["result"] is True
    assert call("m1", "crm.deal.get", {"id": ids["own"]}).json()["error_description"] == "Not found"
    with session_scope(db) as s:
        assert s.get(Deal, ids["own"]).deleted_at is not None


def test_reference_methods(world):
    call, ids, *_ = world
    statuses = call("admin", "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}}).json()
    codes = [r["STATUS_ID"] for r in statuses["result"]]
    assert codes[:2] == ["INTEREST", "REGISTRATION"] and statuses["total"] == len(codes)
    won = next(r for r in statuses["result"] if r["STATUS_ID"] == "WON")
    assert won["SEMANTICS"] == "S" and won["EXTRA"]["SEMANTICS"] == "success"
    masters = call("admin", "crm.status.list", {"filter": {"ENTITY_ID": f"DEAL_STAGE_{ids['masters']}"}}).json()
    assert all(r["STATUS_ID"].startswith(f"C{ids['masters']}:") for r in masters["result"])
    assert all(r["CATEGORY_ID"] == str(ids["masters"]) for r in masters["result"])
    sources = call("admin", "crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}}).json()["result"]
    assert {"WEB", "CALL", "MARKETPLACE"} <= {r["STATUS_ID"] for r in sources}
    cats = call("admin", "crm.category.list", {"entityTypeId": 2}).json()
    assert cats["result"]["categories"][0]["id"] == 0 and cats["result"]["categories"][0]["isDefault"] == "Y"
    assert cats["total"] == 2
    legacy = call("admin", "crm.dealcategory.list").json()["result"]
    assert [c["ID"] for c in legacy] == [str(ids["masters"])]  # category 0 is not in the legacy list
    stages = call("admin", "crm.dealcategory.stage.list", {"id": ids["masters"]}).json()["result"]
    assert stages[0] == {"NAME": "Регистрация", "SORT": stages[0]["SORT"], "STATUS_ID": f"C{ids['masters']}:REGISTRATION"}
    assert isinstance(stages[0]["SORT"], int)


def test_crm_item_speaks_camel_case_with_typed_values(world):
    call, ids, *_ = world
    fields = call("admin", "crm.item.fields", {"entityTypeId": 2}).json()["result"]["fields"]
    assert fields["stageId"]["upperName"] == "STAGE_ID" and fields["assignedById"]["type"] == "user"
    assert "ufCrmDpoContractNumber" in fields
    r = call("m1", "crm.item.add", {"entityTypeId": 2, "fields": {"title": "Через crm.item", "opportunity": 1200.5,
                                                                  "stageId": "REGISTRATION"}})
    assert r.status_code == 200, r.text
    item = r.json()["result"]["item"]
    assert isinstance(item["id"], int) and item["title"] == "Через crm.item" and item["opportunity"] == 1200.5
    assert item["stageId"] == "REGISTRATION" and item["categoryId"] == 0 and item["assignedById"] == ids["m1"]
    assert item["entityTypeId"] == 2 and item["closed"] == "N"
    assert re.match(r"^\d{4}-\d{2}-\d{2}T", item["createdTime"])
    got = call("m1", "crm.item.get", {"entityTypeId": 2, "id": item["id"]}).json()["result"]["item"]
    assert got["id"] == item["id"]
    upd = call("m1", "crm.item.update", {"entityTypeId": 2, "id": item["id"], "fields": {"title": "Переименована"}})
    assert upd.json()["result"]["item"]["title"] == "Переименована"
    # ORM paging: start is the offset itself; order and filter accept either spelling
    listed = call("m1", "crm.item.list", {"entityTypeId": 2, "order": {"id": "ASC"}, "filter": {">id": 0},
                                          "select": ["id", "title"]}).json()
    assert listed["total"] == 2 and [i["id"] for i in listed["result"]["items"]] == sorted([ids["own"], item["id"]])
    assert set(listed["result"]["items"][0]) == {"id", "title", "entityTypeId"}
    page2 = call("m1", "crm.item.list", {"entityTypeId": 2, "order": {"ID": "ASC"}, "start": 1}).json()
    assert [i["id"] for i in page2["result"]["items"]] == [max(ids["own"], item["id"])] and "next" not in page2
    assert call("m1", "crm.item.delete", {"entityTypeId": 2, "id": item["id"]}).json()["result"] == []
    bad = call("m1", "crm.item.list", {"entityTypeId": 31})
    assert bad.status_code == 400


def test_contacts_comments_activities_and_duplicates(world, db):
    call, ids, *_ = world
    contact = call("m1", "crm.contact.add", {"fields": {"NAME": "Анна", "LAST_NAME": "Смирнова",
                                                        "PHONE": [{"VALUE": "+7 916 111-22-33"}],
                                                        "EMAIL": [{"VALUE": "anna@example.ru"}]}}).json()["result"]
    assert call("m1", "crm.deal.contact.items.get", {"id": ids["own"]}).json()["result"] == []
    r = call("m1", "crm.deal.contact.items.set", {"id": ids["own"], "items": [{"CONTACT_ID": contact, "IS_PRIMARY": "Y"}]})
    assert r.json()["result"] is True
    items = call("m1", "crm.deal.contact.items.get", {"id": ids["own"]}).json()["result"]
    assert items == [{"CONTACT_ID": contact, "SORT": 10, "ROLE_ID": 0, "IS_PRIMARY": "Y"}]
    assert call("m1", "crm.deal.get", {"id": ids["own"]}).json()["result"]["CONTACT_ID"] == str(contact)
    # a comment on the deal's timeline, listed back
    r = call("m1", "crm.timeline.comment.add", {"fields": {"ENTITY_ID": ids["own"], "ENTITY_TYPE": "deal",
                                                           "COMMENT": "Клиент просит перезвонить"}})
    assert r.status_code == 200 and isinstance(r.json()["result"], int)
    listed = call("m1", "crm.timeline.comment.list", {"filter": {"ENTITY_ID": ids["own"], "ENTITY_TYPE": "deal"}}).json()
    assert listed["total"] == 1 and listed["result"][0]["COMMENT"] == "Клиент просит перезвонить"
    assert listed["result"][0]["AUTHOR_ID"] == str(ids["m1"])
    # a to-do with a deadline, then the activity list and get
    from rxcrm.rest import wire
    from rxcrm.services.activities import suggested_start
    when = wire.iso(suggested_start())  # the next working hour: within the activity discipline
    r = call("m1", "crm.activity.todo.add", {"ownerTypeId": 2, "ownerId": ids["own"],
                                             "deadline": when, "title": "Отправить договор"})
    assert r.status_code == 200, r.text
    act_id = r.json()["result"]["id"]
    acts = call("m1", "crm.activity.list", {"filter": {"OWNER_TYPE_ID": 2, "OWNER_ID": ids["own"]}}).json()
    row = next(a for a in acts["result"] if a["ID"] == str(act_id))
    assert row["SUBJECT"] == "Отправить договор" and row["COMPLETED"] == "N" and row["TYPE_ID"] == "3"
    assert row["DEADLINE"] == when
    assert call("m1", "crm.activity.get", {"id": act_id}).json()["result"]["OWNER_ID"] == str(ids["own"])
    # another department's deal: its activities are not listed, its comments refused
    other = call("m1", "crm.timeline.comment.list", {"filter": {"ENTITY_ID": ids["other"], "ENTITY_TYPE": "deal"}})
    assert other.status_code == 400 and other.json()["error_description"] == "Access denied."
    # duplicates by phone and e-mail
    found = call("m1", "crm.duplicate.findbycomm", {"type": "PHONE", "values": ["8 (916) 111-22-33"]}).json()
    assert found["result"] == {"CONTACT": [contact]}
    none = call("m1", "crm.duplicate.findbycomm", {"type": "EMAIL", "values": ["nobody@example.ru"]}).json()
    assert none["result"] == []
    # an empty list unlinks the contact
    call("m1", "crm.deal.contact.items.set", {"id": ids["own"], "items": []})
    assert call("m1", "crm.deal.contact.items.get", {"id": ids["own"]}).json()["result"] == []


JUNK = ["", "abc", "99999999999999999999", "2024-13-45", {"a": 1}, [1, -2], "ё" * 300]


@pytest.mark.parametrize("entity", ["lead", "deal", "contact", "company"])
def test_bad_values_in_any_field_get_a_clear_error_never_a_500(world, db, entity):
    """Every declared field, given junk, in add, update and a list filter: 200 or 400 with a
    message — and a refused write stores nothing."""
    from rxcrm.rest.crm import FIELDS
    from rxcrm.models import Company, Contact, Lead as LeadM, Deal as DealM
    call, ids, *_ = world
    model = {"lead": LeadM, "deal": DealM, "contact": Contact, "company": Company}[entity]
    base = {"lead": {"TITLE": "x", "NAME": "Имя"}, "deal": {"TITLE": "x"}, "contact": {"NAME": "Имя"},
            "company": {"TITLE": "x"}}[entity]
    for f in FIELDS[entity]:
        for junk in JUNK:
            with session_scope(db) as s:
                before = s.exec(select(func.count()).select_from(model)).one()
            r = call("admin", f"crm.{entity}.add", {"fields": {**base, f.name: junk}})
            assert r.status_code in (200, 400), (f.name, junk, r.text)
            body = r.json()
            with session_scope(db) as s:
                after = s.exec(select(func.count()).select_from(model)).one()
            if r.status_code == 400:
                assert body["error_description"] and after == before, (f.name, junk, body)
            r = call("admin", f"crm.{entity}.list", {"filter": {f.name: junk, f">{f.name}": junk}, "select": ["ID"]})
            assert r.status_code in (200, 400), (f.name, junk, r.text)
