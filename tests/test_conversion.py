"""Lead conversion (all-or-nothing), junk, closing deals, reopening, deals from cards — both backends."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import (
    AuditRecord, Comment, Communication, Company, Contact, Deal, DealProduct, Lead, StageHistory, TimelineEvent, User,
)
from rxcrm.services import cards, conversion, create, items, listing
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import AccessDenied, ServiceError, ValidationFailed

from . import factories as f


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1")
        m2 = f.user(s, "manager2")
        head = f.user(s, "head", role="head")
        admin = f.user(s, "admin", role="admin", dept_code=None)
        prog = f.product(s, "Управление проектами", price=45000)
        actors = {u.login: actor_for(u) for u in (m1, m2, head, admin)}
        ld = create.create_lead(s, actors["manager1"], last_name="Смирнова", first_name="Ольга",
                                middle_name="Ивановна", phones=["8(912) 345-67-89"], emails=["Olga@Example.com"],
                                source="Лендинг", program_id=prog.id, amount="40 000", position="Юрист",
                                utm={"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "dpo-pm"},
                                comment="Хочет с осени")
        ids = {"lead": ld.id, "prog": prog.id, "dpo": f.pipeline(s, "dpo").id, "masters": f.pipeline(s, "masters").id,
               **{c: f.stage(s, "dpo", c).id for c in ("INTEREST", "REGISTRATION", "PREPAYMENT", "WON", "LOST")},
               **{f"L_{c}": f.stage(s, "leads", c).id for c in ("NEW", "ACQUAINTANCE", "CONVERTED", "JUNK",
                                                                 "DUPLICATE")}}
    return db, actors, ids


def _kinds(s, entity, item_id):
    return [e.kind for e in s.exec(select(TimelineEvent).where(
        TimelineEvent.entity_type == entity, TimelineEvent.entity_id == item_id).order_by(TimelineEvent.id))]


def _snapshot(s):
    """Row counts of everything a conversion may write."""
    return {m.__name__: len(s.exec(select(m)).all())
            for m in (Contact, Company, Deal, DealProduct, Communication, TimelineEvent, StageHistory, AuditRecord)}


def _assert_inherited(d: Deal, ids, lead_id):
    assert d.title == "Лид: Смирнова Ольга" and d.lead_id == lead_id
    assert d.program_id == ids["prog"] and d.amount == Decimal("40000") and d.source == "Лендинг"
    assert (d.utm_source, d.utm_medium, d.utm_campaign) == ("yandex", "cpc", "dpo-pm")
    assert d.pipeline_id == ids["dpo"] and d.stage_id == ids["INTEREST"] and d.semantic == "process"


# ---- conversion modes ------------------------------------------------------------------------

def test_convert_deal_and_contact_and_company(w):
    db, a, ids = w
    with session_scope(db) as s:
        res = conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal_contact", pipeline_id=ids["dpo"],
                                      company_title="ООО «Право»")
    with session_scope(db) as s:
        ld, d = s.get(Lead, ids["lead"]), s.get(Deal, res["deal_id"])
        c, co = s.get(Contact, res["contact_id"]), s.get(Company, res["company_id"])
        # the lead: Качественный, closed, linked both ways
        assert (ld.stage_id, ld.semantic) == (ids["L_CONVERTED"], "success") and ld.closed_at is not None
        assert (ld.deal_id, ld.contact_id, ld.company_id) == (d.id, c.id, co.id)
        # the contact from the lead's person fields, phones and emails; in the new company
        assert (c.last_name, c.first_name, c.middle_name, c.position) == ("Смирнова", "Ольга", "Ивановна", "Юрист")
        assert c.company_id == co.id and co.title == "ООО «Право»"
        assert c.responsible_id == a["manager1"].user_id and c.source == "Лендинг"
        norms = sorted(s.exec(select(Communication.norm).where(Communication.entity_type == "contact",
                                                               Communication.entity_id == c.id)).all())
        assert norms == ["79123456789", "olga@example.com"]
        # the deal inherits
        _assert_inherited(d, ids, ld.id)
        assert (d.contact_id, d.company_id, d.responsible_id) == (c.id, co.id, a["manager1"].user_id)
        assert not d.is_repeat
        rows = s.exec(select(DealProduct).where(DealProduct.deal_id == d.id)).all()
        assert [(r.product_id, r.price) for r in rows] == [(ids["prog"], Decimal("40000.00"))]
        # history on both sides
        assert _kinds(s, "lead", ld.id) == ["created", "stage_changed", "converted"]
        assert _kinds(s, "deal", d.id) == ["created", "converted"]
        conv = s.exec(select(TimelineEvent).where(TimelineEvent.kind == "converted",
                                                  TimelineEvent.entity_type == "lead")).one()
        assert (conv.data["deal_id"], conv.data["contact_id"], conv.data["company_id"]) == (d.id, c.id, co.id)
        assert s.exec(select(StageHistory.stage_id).where(StageHistory.entity_type == "lead")
                      .order_by(StageHistory.id)).all() == [ids["L_NEW"], ids["L_CONVERTED"]]
        actions = s.exec(select(AuditRecord.action).order_by(AuditRecord.id)).all()
        assert actions[-1] == "convert" and "move" in actions


def test_convert_deal_only_without_and_with_the_leads_contact(w):
    db, a, ids = w
    with session_scope(db) as s:
        res = conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal")
    assert res["contact_id"] is None and res["company_id"] is None
    with session_scope(db) as s:
        d = s.get(Deal, res["deal_id"])
        _assert_inherited(d, ids, ids["lead"])  # default pipeline: the lead department's (ДПО)
        assert d.contact_id is None and s.exec(select(Contact)).all() == []
        # a repeat lead (linked to a known contact) gives a repeat deal with that contact
        known = create.create_contact(s, a["manager1"], last_name="Петров", first_name="Иван",
                                      phones=["+7 987 654 32 10"])
        ld2 = create.create_lead(s, a["manager1"], first_name="Иван", phones=["8(987) 654-32-10"])
        assert ld2.is_repeat and ld2.contact_id == known.id
        res2 = conversion.convert_lead(s, a["manager1"], ld2.id, mode="deal", pipeline_id=ids["masters"],
                                       deal_title="Магистратура: Петров")
    with session_scope(db) as s:
        d2 = s.get(Deal, res2["deal_id"])
        assert d2.contact_id == known.id and d2.is_repeat and d2.title == "Магистратура: Петров"
        assert d2.pipeline_id == ids["masters"] and s.get(Lead, ld2.id).contact_id == known.id


def test_convert_to_an_existing_contact_and_company(w):
    db, a, ids = w
    with session_scope(db) as s:
        co = create.create_company(s, a["manager1"], title="ООО Вектор")
        c = create.create_contact(s, a["manager1"], last_name="Смирнова", first_name="Ольга", company_id=co.id)
        co2 = create.create_company(s, a["manager1"], title="АО Другое")
        cid, coid, co2id = c.id, co.id, co2.id
        n_contacts = len(s.exec(select(Contact)).all())
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed, match="Выберите контакт или компанию"):
            conversion.convert_lead(s, a["manager1"], ids["lead"], mode="existing")
        res = conversion.convert_lead(s, a["manager1"], ids["lead"], mode="existing", contact_id=cid)
    assert res["contact_id"] == cid and res["company_id"] == coid  # the contact's company comes along
    with session_scope(db) as s:
        ld = s.get(Lead, ids["lead"])
        assert (ld.contact_id, ld.company_id, ld.deal_id) == (cid, coid, res["deal_id"])
        assert len(s.exec(select(Contact)).all()) == n_contacts  # nothing new
        _assert_inherited(s.get(Deal, res["deal_id"]), ids, ld.id)
        # company only
        ld2 = create.create_lead(s, a["manager1"], first_name="Кто-то", emails=["who@vector.ru"])
        res2 = conversion.convert_lead(s, a["manager1"], ld2.id, mode="existing", company_id=co2id)
        assert res2 == {"deal_id": res2["deal_id"], "contact_id": None, "company_id": co2id}


def test_converted_or_closed_lead_is_refused(w):
    db, a, ids = w
    with session_scope(db) as s:
        conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal")
    with session_scope(db) as s:
        before = _snapshot(s)
        for mode in ("deal", "deal_contact"):
            with pytest.raises(ValidationFailed, match="Лид уже обработан"):
                conversion.convert_lead(s, a["manager1"], ids["lead"], mode=mode)
        with pytest.raises(ValidationFailed, match="Лид уже обработан"):
            conversion.junk_lead(s, a["manager1"], ids["lead"], reason="Дубль")
        assert _snapshot(s) == before
        with pytest.raises(ValidationFailed):
            conversion.convert_lead(s, a["manager1"], ids["lead"], mode="что-то")


def test_conversion_needs_edit_access(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(AccessDenied):
            conversion.convert_lead(s, a["manager2"], ids["lead"], mode="deal_contact")
        assert s.exec(select(Deal)).all() == [] and s.exec(select(Contact)).all() == []
        # a head of the department converts for the manager: the manager stays responsible
        res = conversion.convert_lead(s, a["head"], ids["lead"], mode="deal_contact")
        assert s.get(Deal, res["deal_id"]).responsible_id == a["manager1"].user_id
        assert s.get(Contact, res["contact_id"]).responsible_id == a["manager1"].user_id


# ---- all or nothing --------------------------------------------------------------------------

def _boom(*args, **kw):
    raise ServiceError("Сбой посреди конвертации")


@pytest.mark.parametrize("where", ["deal_creation", "lead_move"])
def test_failure_midway_leaves_nothing_half_done(w, monkeypatch, where):
    db, a, ids = w
    if where == "deal_creation":  # the company and the contact exist by then
        monkeypatch.setattr(create, "_create_deal", _boom)
    else:  # company, contact, deal and product rows exist by then
        monkeypatch.setattr(items, "move_stage", _boom)
    with session_scope(db) as s:
        before = _snapshot(s)
        lead_version = s.get(Lead, ids["lead"]).version
        # the caller catches the refusal and its transaction goes on to commit
        with pytest.raises(ServiceError, match="Сбой"):
            conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal_contact", company_title="ООО Право")
    with session_scope(db) as s:
        assert _snapshot(s) == before
        assert s.exec(select(Contact)).all() == [] and s.exec(select(Company)).all() == []
        assert s.exec(select(Deal)).all() == []
        ld = s.get(Lead, ids["lead"])
        assert (ld.stage_id, ld.semantic, ld.deal_id, ld.contact_id, ld.company_id, ld.version) == \
            (ids["L_NEW"], "process", None, None, None, lead_version)
        assert _kinds(s, "lead", ids["lead"]) == ["created"]


def test_a_later_failure_of_the_caller_undoes_a_finished_conversion(w):
    """The conversion's savepoint must not commit on its own (pysqlite starts transactions lazily)."""
    db, a, ids = w
    with pytest.raises(RuntimeError), session_scope(db) as s:
        before = _snapshot(s)
        conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal_contact", company_title="ООО Право")
        raise RuntimeError("the caller fails afterwards")
    with session_scope(db) as s:
        assert _snapshot(s) == before and s.get(Lead, ids["lead"]).semantic == "process"


def test_required_field_of_the_deal_stage_refuses_the_whole_conversion(w):
    db, a, ids = w
    with session_scope(db) as s:
        before = _snapshot(s)
        with pytest.raises(items.MissingFields) as err:
            conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal_contact", company_title="ООО Право",
                                    stage_id=ids["PREPAYMENT"])
        assert [m["key"] for m in err.value.details["missing"]] == ["first_payment_amount"]
        with pytest.raises(ValidationFailed, match="Сумма первого платежа"):
            conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal_contact",
                                    stage_id=ids["PREPAYMENT"], deal_values={"first_payment_amount": "много"})
    with session_scope(db) as s:
        assert _snapshot(s) == before
        assert s.get(Lead, ids["lead"]).semantic == "process"
        res = conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal_contact", stage_id=ids["PREPAYMENT"],
                                      deal_values={"first_payment_amount": "10 000"})
    with session_scope(db) as s:
        d = s.get(Deal, res["deal_id"])
        assert d.stage_id == ids["PREPAYMENT"] and d.first_payment_amount == Decimal("10000")


def test_conversion_contact_needs_a_name(w):
    db, a, ids = w
    with session_scope(db) as s:
        ld = create.create_lead(s, a["manager1"], phones=["+7 999 000 00 00"])
        with pytest.raises(ValidationFailed, match="фамилию или имя"):
            conversion.convert_lead(s, a["manager1"], ld.id, mode="deal_contact")
        assert s.get(Lead, ld.id).semantic == "process" and s.exec(select(Deal)).all() == []


# ---- junk ------------------------------------------------------------------------------------

def test_junk_lead_needs_a_reason(w):
    db, a, ids = w
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed, match="Укажите причину"):
            conversion.junk_lead(s, a["manager1"], ids["lead"], stage_code="JUNK", reason="  ")
        with pytest.raises(ValidationFailed):
            conversion.junk_lead(s, a["manager1"], ids["lead"], stage_code="CONVERTED", reason="x")
        with pytest.raises(AccessDenied):
            conversion.junk_lead(s, a["manager2"], ids["lead"], stage_code="JUNK", reason="Не дозвонились")
        assert s.get(Lead, ids["lead"]).semantic == "process"
        conversion.junk_lead(s, a["manager1"], ids["lead"], stage_code="DUPLICATE", reason="Дубль лида №1")
    with session_scope(db) as s:
        ld = s.get(Lead, ids["lead"])
        assert (ld.stage_id, ld.semantic, ld.close_reason) == (ids["L_DUPLICATE"], "failure", "Дубль лида №1")
        assert ld.closed_at is not None
        assert _kinds(s, "lead", ld.id) == ["created", "stage_changed", "closed"]
        ev = s.exec(select(TimelineEvent).where(TimelineEvent.kind == "closed")).one()
        assert ev.data["reason"] == "Дубль лида №1" and ev.data["stage"] == "Нецелевые\\Дубли"
        assert s.exec(select(AuditRecord.action).order_by(AuditRecord.id.desc())).first() == "close"


# ---- closing deals ---------------------------------------------------------------------------

@pytest.fixture
def deals(w):
    db, a, ids = w
    with session_scope(db) as s:
        m1 = s.get(User, a["manager1"].user_id)
        d1 = f.deal(s, "Сделка 1", m1, amount=10000)
        d2 = f.deal(s, "Сделка 2", m1, amount=20000)
        items.move_stage(s, a["manager1"], "deal", d2.id, ids["REGISTRATION"])
    return db, a, {**ids, "d1": d1.id, "d2": d2.id}


def _board(s, actor, pipeline_id):
    return {c["id"]: c["count"] for c in listing.board_summary(s, actor, "deal", pipeline_id, {})}


def test_close_lost_needs_a_reason_and_leaves_the_board(deals):
    db, a, ids = deals
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed, match="Укажите причину проигрыша"):
            conversion.close_deal(s, a["manager1"], ids["d1"], won=False, reason=" ")
        with pytest.raises(AccessDenied):
            conversion.close_deal(s, a["manager2"], ids["d1"], won=False, reason="Дорого")
        assert _board(s, a["manager1"], ids["dpo"])[ids["INTEREST"]] == 1
        assert listing.count(s, a["manager1"], "deal", {}) == 2
    with session_scope(db) as s:
        assert s.get(Deal, ids["d1"]).semantic == "process"
        conversion.close_deal(s, a["manager1"], ids["d1"], won=False, reason="Дорого, выбрал другой вуз")
    with session_scope(db) as s:
        d = s.get(Deal, ids["d1"])
        assert (d.stage_id, d.semantic, d.lost_reason) == (ids["LOST"], "failure", "Дорого, выбрал другой вуз")
        assert d.closed_at is not None
        com = s.exec(select(Comment).where(Comment.entity_id == d.id)).one()
        assert com.text == "Дорого, выбрал другой вуз" and com.author_id == a["manager1"].user_id
        assert _kinds(s, "deal", d.id) == ["stage_changed", "comment", "closed"]
        closed = s.exec(select(TimelineEvent).where(TimelineEvent.kind == "closed")).one()
        assert closed.data["won"] is False and closed.data["reason"] == "Дорого, выбрал другой вуз"
        assert s.exec(select(AuditRecord.action).where(AuditRecord.entity_id == d.id, AuditRecord.entity_type == "deal")
                      .order_by(AuditRecord.id)).all() == ["move", "close"]
        # off the board, still in the list (no semantic filter) and in the history
        assert _board(s, a["manager1"], ids["dpo"])[ids["INTEREST"]] == 0
        assert listing.count(s, a["manager1"], "deal", {}) == 2
        assert s.exec(select(StageHistory).where(StageHistory.entity_id == d.id,
                                                 StageHistory.stage_id == ids["LOST"])).one().semantic == "failure"
        with pytest.raises(ValidationFailed, match="уже завершена"):
            conversion.close_deal(s, a["manager1"], ids["d1"], won=True)


def test_close_won(deals):
    db, a, ids = deals
    with session_scope(db) as s:
        conversion.close_deal(s, a["manager1"], ids["d2"], won=True)
    with session_scope(db) as s:
        d = s.get(Deal, ids["d2"])
        assert (d.stage_id, d.semantic, d.lost_reason) == (ids["WON"], "success", "")
        assert s.exec(select(Comment)).all() == []
        assert _board(s, a["manager1"], ids["dpo"])[ids["REGISTRATION"]] == 0
        assert listing.count(s, a["manager1"], "deal", {}) == 2


# ---- reopen ----------------------------------------------------------------------------------

def test_reopen_only_by_a_head_back_to_the_last_working_stage(deals):
    db, a, ids = deals
    with session_scope(db) as s:
        conversion.close_deal(s, a["manager1"], ids["d2"], won=False, reason="Передумал")
    with session_scope(db) as s:
        with pytest.raises(AccessDenied, match="только руководитель"):
            conversion.reopen(s, a["manager1"], "deal", ids["d2"])
        with pytest.raises(ValidationFailed, match="Уже в работе"):
            conversion.reopen(s, a["head"], "deal", ids["d1"])
        with pytest.raises(ValidationFailed, match="рабочую стадию"):
            conversion.reopen(s, a["head"], "deal", ids["d2"], stage_id=ids["WON"])
        conversion.reopen(s, a["head"], "deal", ids["d2"])
    with session_scope(db) as s:
        d = s.get(Deal, ids["d2"])
        assert (d.stage_id, d.semantic, d.closed_at, d.lost_reason) == (ids["REGISTRATION"], "process", None, "")
        assert _kinds(s, "deal", d.id)[-2:] == ["stage_changed", "reopened"]
        assert s.exec(select(AuditRecord.action).order_by(AuditRecord.id.desc())).first() == "reopen"
        assert _board(s, a["head"], ids["dpo"])[ids["REGISTRATION"]] == 1
        hist = s.exec(select(StageHistory.stage_id).where(StageHistory.entity_id == d.id, StageHistory.entity_type == "deal")
                      .order_by(StageHistory.id)).all()
        assert hist == [ids["REGISTRATION"], ids["LOST"], ids["REGISTRATION"]]


def test_reopen_a_junk_lead_to_a_chosen_stage(w):
    db, a, ids = w
    with session_scope(db) as s:
        conversion.junk_lead(s, a["manager1"], ids["lead"], reason="Не дозвонились")
        ld = conversion.reopen(s, a["admin"], "lead", ids["lead"], stage_id=ids["L_ACQUAINTANCE"])
        assert (ld.stage_id, ld.semantic, ld.close_reason, ld.closed_at) == (ids["L_ACQUAINTANCE"], "process", "", None)
        # back in work: it can be processed again
        res = conversion.convert_lead(s, a["manager1"], ids["lead"], mode="deal")
        assert s.get(Lead, ids["lead"]).deal_id == res["deal_id"]


# ---- deals from cards ------------------------------------------------------------------------

def test_create_deal_from_a_contact_with_a_company_links_both(w):
    db, a, ids = w
    with session_scope(db) as s:
        co = create.create_company(s, a["manager1"], title="ООО Вектор")
        c = create.create_contact(s, a["manager1"], last_name="Орлова", first_name="Вера", company_id=co.id)
        d = conversion.create_deal_for(s, a["manager1"], contact_id=c.id, pipeline_id=ids["dpo"],
                                       title="Повышение квалификации", program_id=ids["prog"], amount=45000)
        assert (d.contact_id, d.company_id, d.program_id, d.amount) == (c.id, co.id, ids["prog"], Decimal("45000"))
        d2 = conversion.create_deal_for(s, a["manager1"], company_id=co.id, pipeline_id=ids["dpo"], title="Корпоратив")
        assert (d2.contact_id, d2.company_id) == (None, co.id)
        with pytest.raises(ValidationFailed, match="карточки"):
            conversion.create_deal_for(s, a["manager1"], pipeline_id=ids["dpo"], title="Ничья")
        # the company's card shows both deals
        titles = {link["title"] for link in cards.links(s, a["manager1"], "company", co)}
        assert {"Повышение квалификации", "Корпоратив"} <= titles
