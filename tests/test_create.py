"""Creating contacts, companies, leads and deals; repeat detection (SPEC §4.10) on both backends."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import (
    AuditRecord, Communication, Contact, Deal, DealProduct, Lead, StageHistory, TimelineEvent, utcnow,
)
from rxcrm.services import create, items
from rxcrm.services.auth import actor_for
from rxcrm.services.context import Actor
from rxcrm.services.errors import AccessDenied, NotFound, ValidationFailed

from . import factories as f

CONTACT_PHONE = "+7 (987) 654-32-10"


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1")
        m2 = f.user(s, "manager2")
        head = f.user(s, "head", role="head")
        director = f.user(s, "director", role="director", dept_code=None)
        prog = f.product(s, "Управление проектами", price=45000)
        prog2 = f.product(s, "Бухгалтерский учёт", price=30000)
        known = f.contact(s, "Петров", "Иван", "Сергеевич", phones=[CONTACT_PHONE],
                          emails=["Ivan.Petrov@Mail.ru"], responsible=m1)
        ids = {"prog": prog.id, "prog2": prog2.id, "known": known.id, "dpo": f.pipeline(s, "dpo").id,
               "masters": f.pipeline(s, "masters").id,
               **{c: f.stage(s, "dpo", c).id for c in ("INTEREST", "REGISTRATION", "PREPAYMENT", "WON")},
               "NEW": f.stage(s, "leads", "NEW").id, "PROGRAM": f.stage(s, "leads", "PROGRAM").id}
        actors = {u.login: actor_for(u) for u in (m1, m2, head, director)}
    return db, actors, ids


def _events(s, entity, item_id):
    return list(s.exec(select(TimelineEvent).where(TimelineEvent.entity_type == entity,
                                                   TimelineEvent.entity_id == item_id).order_by(TimelineEvent.id)))


# ---- contacts and companies ------------------------------------------------------------------

def test_create_contact_writes_comms_timeline_and_audit(w):
    db, a, ids = w
    with session_scope(db) as s:
        c = create.create_contact(s, a["manager1"], last_name=" Сидорова ", first_name="Анна", middle_name="Павловна",
                                  phones=["8 (912) 000-11-22", ("+7 912 000 11 22", "mobile"), ""],
                                  emails=["Anna@Example.COM"], position="Бухгалтер", birthday="1990-05-17")
        cid = c.id
    with session_scope(db) as s:
        c = s.get(Contact, cid)
        assert c.full_name == "Сидорова Анна Павловна" and c.last_name == "Сидорова"
        assert c.responsible_id == a["manager1"].user_id and c.department_id == a["manager1"].department_id
        assert c.birthday.isoformat() == "1990-05-17" and c.source == "Вручную"
        assert "anna@example.com" in c.search_text and "сидорова анна" in c.search_text
        comms = s.exec(select(Communication).where(Communication.entity_type == "contact",
                                                   Communication.entity_id == cid)).all()
        # the same number typed twice is stored once
        assert sorted((x.kind, x.norm) for x in comms) == [("email", "anna@example.com"), ("phone", "79120001122")]
        assert [e.kind for e in _events(s, "contact", cid)] == ["created"]
        assert s.exec(select(AuditRecord.action).where(AuditRecord.entity_type == "contact")).all() == ["create"]


def test_create_contact_validations(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed, match="фамилию или имя"):
            create.create_contact(s, a["manager1"], last_name="", first_name=" ", phones=["+79120001122"])
        with pytest.raises(ValidationFailed, match="654-32-10") as err:
            create.create_contact(s, a["manager1"], last_name="Иванов", first_name="", phones=["654-32-10"])
        assert "phones" in err.value.fields
        with pytest.raises(ValidationFailed, match="ivan@"):
            create.create_contact(s, a["manager1"], last_name="Иванов", first_name="", emails=["ivan@"])
        with pytest.raises(ValidationFailed, match="Дата рождения"):
            create.create_contact(s, a["manager1"], last_name="Иванов", first_name="", birthday="17.05.1990")
        with pytest.raises(NotFound):
            create.create_contact(s, a["manager1"], last_name="Иванов", first_name="", company_id=999999)
    with session_scope(db) as s:
        assert s.exec(select(Contact)).all().__len__() == 1  # only the fixture's contact


def test_create_company(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed, match="название"):
            create.create_company(s, a["manager1"], title="  ")
        with pytest.raises(ValidationFailed, match="ИНН"):
            create.create_company(s, a["manager1"], title="ООО Ромашка", inn="12345")
        co = create.create_company(s, a["manager1"], title="ООО «Ромашка»", inn="7701234567",
                                   phones=["(495) 123-45-67"], emails=["info@romashka.ru"], industry="Торговля")
        co_id = co.id
    with session_scope(db) as s:
        norms = s.exec(select(Communication.norm).where(Communication.entity_type == "company",
                                                        Communication.entity_id == co_id)).all()
        assert sorted(norms) == ["74951234567", "info@romashka.ru"]
        assert [e.kind for e in _events(s, "company", co_id)] == ["created"]


# ---- leads -----------------------------------------------------------------------------------

def test_create_lead_defaults_history_timeline_audit(w):
    db, a, ids = w
    with session_scope(db) as s:
        ld = create.create_lead(s, a["manager1"], last_name="Смирнов", first_name="Олег", phones=["+7 901 111 22 33"],
                                emails=["oleg@example.com"], source="Лендинг", program_id=ids["prog"],
                                amount="45 000", utm={"utm_source": "yandex", "campaign": "dpo-2026", "junk": "x"},
                                custom=None)
        lid = ld.id
    with session_scope(db) as s:
        ld = s.get(Lead, lid)
        assert ld.title == "Лид: Смирнов Олег"
        assert (ld.stage_id, ld.semantic) == (ids["NEW"], "process")
        assert ld.responsible_id == a["manager1"].user_id and ld.department_id == a["manager1"].department_id
        assert ld.created_by_id == a["manager1"].user_id
        assert (ld.utm_source, ld.utm_campaign) == ("yandex", "dpo-2026")
        assert ld.amount == Decimal("45000") and ld.program_id == ids["prog"] and ld.source == "Лендинг"
        assert not ld.is_repeat and ld.contact_id is None  # nothing matched
        assert "oleg@example.com" in ld.search_text and "смирнов" in ld.search_text
        hist = s.exec(select(StageHistory).where(StageHistory.entity_type == "lead")).one()
        assert (hist.entity_id, hist.stage_id, hist.from_stage_id) == (lid, ids["NEW"], None)
        ev = _events(s, "lead", lid)
        assert [e.kind for e in ev] == ["created"] and ev[0].data["stage"] == "Не обработан"
        rec = s.exec(select(AuditRecord).where(AuditRecord.entity_type == "lead")).one()
        assert rec.action == "create" and rec.entity_id == lid
        assert s.exec(select(Communication.norm).where(Communication.entity_type == "lead")).all().__len__() == 2


def test_create_lead_needs_a_name_phone_or_email(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed, match="имя, телефон или e-mail"):
            create.create_lead(s, a["manager1"], title="Без данных")
        ld = create.create_lead(s, a["manager1"], phones=["8 912 345 67 89"])
        assert ld.title == "Лид: 8 912 345 67 89"
        ld2 = create.create_lead(s, a["manager1"], emails=["x@y.ru"], title="Свой заголовок")
        assert ld2.title == "Свой заголовок"
        with pytest.raises(ValidationFailed, match="Сумма"):
            create.create_lead(s, a["manager1"], first_name="Олег", amount="много")
        with pytest.raises(ValidationFailed, match="программа"):
            create.create_lead(s, a["manager1"], first_name="Олег", program_id=999999)


def test_create_lead_at_a_stage_checks_its_required_fields(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(items.MissingFields) as err:
            create.create_lead(s, a["manager1"], first_name="Олег", stage_code="PROGRAM")
        assert [m["key"] for m in err.value.details["missing"]] == ["program_id"]
        with pytest.raises(ValidationFailed, match="завершающая"):
            create.create_lead(s, a["manager1"], first_name="Олег", stage_code="CONVERTED")
        ld = create.create_lead(s, a["manager1"], first_name="Олег", stage_code="PROGRAM", program_id=ids["prog"],
                                marketplace_action="Добавлено в избранное", source="Маркетплейс")
        assert ld.stage_id == ids["PROGRAM"] and ld.marketplace_action == "Добавлено в избранное"


def test_create_permissions_and_responsible(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(AccessDenied):  # director: add = none
            create.create_lead(s, a["director"], first_name="Олег")
        with pytest.raises(AccessDenied):  # manager: add = own
            create.create_lead(s, a["manager1"], first_name="Олег", responsible_id=a["manager2"].user_id)
        with pytest.raises(ValidationFailed, match="Ответственный"):
            create.create_lead(s, a["head"], first_name="Олег", responsible_id=999999)
        ld = create.create_lead(s, a["head"], first_name="Олег", responsible_id=a["manager2"].user_id)
        assert ld.responsible_id == a["manager2"].user_id and ld.created_by_id == a["head"].user_id
        # an integration (system actor) passes the assignee
        intake = Actor.system("intake")
        ld2 = create.create_lead(s, intake, first_name="Ольга", responsible_id=a["manager1"].user_id,
                                 source="Опросная форма")
        assert ld2.department_id == a["manager1"].department_id and ld2.created_by_id is None
        assert s.exec(select(Lead)).all().__len__() == 2


# ---- repeat detection ------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["8(987) 654-32-10", "(987) 654-32-10", "+79876543210", "8 987 654 32 10"])
def test_repeat_lead_by_each_phone_format(w, typed):
    db, a, ids = w
    with session_scope(db) as s:
        lid = create.create_lead(s, a["manager2"], first_name="Иван", phones=[typed]).id
    with session_scope(db) as s:
        ld = s.get(Lead, lid)
        assert ld.is_repeat and ld.contact_id == ids["known"]
        ev = [e for e in _events(s, "lead", lid) if e.kind == "repeat_detected"]
        assert len(ev) == 1
        assert ev[0].data == {"text": ev[0].data["text"], "contact_id": ids["known"],
                              "contact": "Петров Иван Сергеевич", "by": "phone", "value": typed}
        assert "Повторный лид" in ev[0].data["text"]


@pytest.mark.parametrize("typed", ["ivan.petrov@mail.ru", "IVAN.PETROV@MAIL.RU", " Ivan.Petrov@mail.RU "])
def test_repeat_lead_by_email_any_case(w, typed):
    db, a, ids = w
    with session_scope(db) as s:
        lid = create.create_lead(s, a["manager1"], first_name="Иван", emails=[typed]).id
    with session_scope(db) as s:
        ld = s.get(Lead, lid)
        assert ld.is_repeat and ld.contact_id == ids["known"]
        ev = [e for e in _events(s, "lead", lid) if e.kind == "repeat_detected"][0]
        assert ev.data["by"] == "email" and ev.data["value"] == typed.strip()


def test_not_repeat_when_nothing_matches_or_contact_deleted(w):
    db, a, ids = w
    with session_scope(db) as s:
        other = create.create_lead(s, a["manager1"], first_name="Иван", phones=["8(987) 654-32-11"],
                                   emails=["petrov@mail.ru"])
        assert not other.is_repeat and other.contact_id is None
        s.get(Contact, ids["known"]).deleted_at = utcnow()
        s.flush()
        gone = create.create_lead(s, a["manager1"], first_name="Иван", phones=[CONTACT_PHONE])
        assert not gone.is_repeat and gone.contact_id is None
        assert s.exec(select(TimelineEvent).where(TimelineEvent.kind == "repeat_detected")).all() == []


def test_repeat_contact_brings_its_company(w):
    db, a, ids = w
    with session_scope(db) as s:
        co = create.create_company(s, a["manager1"], title="ООО Вектор")
        create.create_contact(s, a["manager1"], last_name="Орлова", first_name="Вера", phones=["+7 903 000 00 01"],
                              company_id=co.id)
        ld = create.create_lead(s, a["manager1"], first_name="Вера", phones=["89030000001"])
        assert ld.is_repeat and ld.company_id == co.id


def test_manual_link_and_unlink(w):
    db, a, ids = w
    with session_scope(db) as s:
        lid = create.create_lead(s, a["manager1"], first_name="Иван", phones=["+7 900 000 00 00"]).id
    with session_scope(db) as s:
        with pytest.raises(AccessDenied):
            create.link_contact(s, a["manager2"], "lead", lid, ids["known"])  # not own
        create.link_contact(s, a["manager1"], "lead", lid, ids["known"])
    with session_scope(db) as s:
        ld = s.get(Lead, lid)
        assert ld.is_repeat and ld.contact_id == ids["known"] and ld.version == 2
        create.unlink_contact(s, a["manager1"], "lead", lid)
    with session_scope(db) as s:
        ld = s.get(Lead, lid)
        assert not ld.is_repeat and ld.contact_id is None
        assert [e.kind for e in _events(s, "lead", lid)] == ["created", "contact_linked", "contact_unlinked"]
        assert s.exec(select(AuditRecord.action).where(AuditRecord.entity_type == "lead")
                      .order_by(AuditRecord.id)).all() == ["create", "link_contact", "unlink_contact"]


# ---- deals -----------------------------------------------------------------------------------

def test_create_deal_with_products_contact_and_company(w):
    db, a, ids = w
    with session_scope(db) as s:
        co = create.create_company(s, a["manager1"], title="ООО Вектор")
        c = create.create_contact(s, a["manager1"], last_name="Орлова", first_name="Вера",
                                  emails=["Vera@Vector.ru"], company_id=co.id)
        d = create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="Обучение Орловой", contact_id=c.id,
                               products=[{"product_id": ids["prog"], "quantity": 2, "discount_pct": 10},
                                         {"title": "Методичка", "price": "1500"}],
                               utm={"utm_medium": "cpc"}, custom={"dpo_contract_number": "Д-1"})
        did, cid, coid = d.id, c.id, co.id
    with session_scope(db) as s:
        d = s.get(Deal, did)
        assert (d.stage_id, d.semantic) == (ids["INTEREST"], "process")
        assert d.contact_id == cid and d.company_id == coid  # the contact's company comes along
        assert d.amount == Decimal("82500.00")  # 45000*2*0.9 + 1500
        assert d.program_id == ids["prog"] and d.utm_medium == "cpc" and d.custom == {"dpo_contract_number": "Д-1"}
        assert not d.is_repeat  # a new contact without history is not a returning client
        assert all(t in d.search_text for t in ("обучение орловой", "орлова вера", "ооо вектор", "vera@vector.ru"))
        rows = s.exec(select(DealProduct).where(DealProduct.deal_id == did).order_by(DealProduct.sort)).all()
        assert [(r.title, r.price, r.quantity) for r in rows] == [
            ("Управление проектами", Decimal("45000.00"), Decimal("2.00")),
            ("Методичка", Decimal("1500.00"), Decimal("1.00"))]
        hist = s.exec(select(StageHistory).where(StageHistory.entity_type == "deal")).one()
        assert (hist.stage_id, hist.from_stage_id) == (ids["INTEREST"], None)
        assert [e.kind for e in _events(s, "deal", did)] == ["created"]


def test_create_deal_validations_and_required_fields(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed, match="название"):
            create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title=" ")
        with pytest.raises(ValidationFailed, match="воронку"):
            create.create_deal(s, a["manager1"], pipeline_id=f.pipeline(s, "leads").id, title="X")
        with pytest.raises(ValidationFailed, match="стадии"):
            create.create_deal(s, a["manager1"], pipeline_id=ids["masters"], title="X", stage_id=ids["INTEREST"])
        with pytest.raises(ValidationFailed, match="завершающая"):
            create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="X", stage_id=ids["WON"])
        with pytest.raises(items.MissingFields) as err:
            create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="X", stage_id=ids["PREPAYMENT"])
        assert "Сумма первого платежа" in err.value.message
        with pytest.raises(ValidationFailed, match="Сумма первого платежа"):
            create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="X", stage_id=ids["PREPAYMENT"],
                               values={"first_payment_amount": "десять"})
        with pytest.raises(ValidationFailed, match="Скидка|Товар"):
            create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="X",
                               products=[{"product_id": ids["prog"], "discount_pct": 150}])
        with pytest.raises(AccessDenied):  # director: add = none
            create.create_deal(s, a["director"], pipeline_id=ids["dpo"], title="X")
        assert s.exec(select(Deal)).all() == []
        d = create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="X", stage_id=ids["PREPAYMENT"],
                               values={"first_payment_amount": "15 000"}, amount=45000)
        assert d.first_payment_amount == Decimal("15000") and d.amount == Decimal("45000")


def test_repeat_deal_by_the_contacts_phone(w):
    db, a, ids = w
    with session_scope(db) as s:
        # a returning client: the known contact already had a deal
        f.deal(s, "Старая сделка", f.user(s, "manager3"), contact_=s.get(Contact, ids["known"]))
        d = create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="Снова учится",
                               contact_id=ids["known"])
        assert d.is_repeat and d.contact_id == ids["known"]
        ev = [e for e in _events(s, "deal", d.id) if e.kind == "repeat_detected"][0]
        assert ev.data["by"] == "phone" and "Повторная сделка" in ev.data["text"]
        # a duplicate contact with the same email: the deal is a repeat, its own contact stays
        dup = create.create_contact(s, a["manager1"], last_name="Петров", first_name="Ваня",
                                    emails=["ivan.petrov@mail.ru"])
        d2 = create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="Дубль", contact_id=dup.id)
        assert d2.is_repeat and d2.contact_id == dup.id
        ev = [e for e in _events(s, "deal", d2.id) if e.kind == "repeat_detected"][0]
        assert ev.data["contact_id"] == ids["known"] and ev.data["by"] == "email"


def test_link_contact_to_a_deal_links_its_company(w):
    db, a, ids = w
    with session_scope(db) as s:
        co = create.create_company(s, a["manager1"], title="ООО Вектор")
        c = create.create_contact(s, a["manager1"], last_name="Орлова", first_name="Вера", company_id=co.id)
        d = create.create_deal(s, a["manager1"], pipeline_id=ids["dpo"], title="Без контакта")
        create.link_contact(s, a["manager1"], "deal", d.id, c.id)
        assert d.contact_id == c.id and d.company_id == co.id and not d.is_repeat
        assert "орлова вера" in d.search_text
        create.unlink_contact(s, a["manager1"], "deal", d.id)
        assert d.contact_id is None and d.company_id == co.id and "орлова" not in d.search_text
