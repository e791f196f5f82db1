"""Finishing work on items: lead conversion (Завершить обработку),
junk leads, closing deals won/lost, reopening (heads), deals from a contact/company card.

Each operation is all-or-nothing inside the caller's transaction: the multi-step ones
run in a savepoint (`session.begin_nested()`), so a refusal midway (a required field, a
bad value, access) undoes everything they did even when the caller goes on and commits."""
from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from rxcrm.models import (
    Comment, Communication, Company, Contact, Deal, Lead, Pipeline, Product, Stage, StageHistory, User,
)
from rxcrm.models.pipeline import PROCESS, SUCCESS, FAILURE

from . import access, audit, catalogs, create, items, records
from .context import Actor
from .errors import AccessDenied, ServiceError, ValidationFailed

MODES = ("deal", "deal_contact", "existing")
JUNK_STAGES = ("JUNK", "DUPLICATE")
REOPEN_ROLES = ("head", "admin")
ALREADY_PROCESSED = "Лид уже обработан"


# ---- helpers --------------------------------------------------------------------------

def atomic(session: Session):
    """A savepoint for an all-or-nothing step inside the caller's transaction.

    pysqlite starts its transaction lazily (at the first INSERT/UPDATE), so a SAVEPOINT
    issued first would itself open the transaction and its RELEASE would COMMIT it —
    out of reach of the caller's rollback. On SQLite the transaction is begun first."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            conn.exec_driver_sql("BEGIN")
    return session.begin_nested()


def final_stage(session: Session, pipeline_id: int, semantic: str, code: str | None = None) -> Stage:
    """The pipeline's stage with this code (when it has that semantic), else its first
    stage of that semantic."""
    stages = [s for s in catalogs.stages(session, pipeline_id) if s.semantic == semantic]
    st = next((s for s in stages if s.code == code), None) or (stages[0] if stages else None)
    if st is None:
        raise ServiceError("В воронке нет завершающей стадии «%s»" % {SUCCESS: "успех", FAILURE: "провал"}
                           .get(semantic, semantic))
    return st


def deal_pipeline_for(session: Session, lead: Lead) -> Pipeline | None:
    """The deal pipeline of the lead's department, else the default deal pipeline."""
    if lead.department_id is not None:
        pipe = session.execute(select(Pipeline).where(Pipeline.entity == "deal",
                                                      Pipeline.department_id == lead.department_id)
                               .order_by(Pipeline.sort, Pipeline.id)).scalars().first()
        if pipe is not None:
            return pipe
    return catalogs.default_pipeline(session, "deal")


def _active_responsible(session: Session, lead: Lead) -> int | None:
    """The lead's responsible when still active; otherwise None (the actor takes over)."""
    user = session.get(User, lead.responsible_id) if lead.responsible_id else None
    return user.id if user is not None and user.is_active else None


def _lead_comms(session: Session, lead_id: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rows = session.execute(select(Communication.kind, Communication.value, Communication.value_type).where(
        Communication.entity_type == "lead", Communication.entity_id == lead_id).order_by(Communication.id)).all()
    return ([(v, t) for k, v, t in rows if k == "phone"], [(v, t) for k, v, t in rows if k == "email"])


# ---- lead conversion ------------------------------------------------------------------

def convert_lead(session: Session, actor: Actor, lead_id: int, *, mode: str, pipeline_id: int | None = None,
                 contact_id: int | None = None, company_id: int | None = None, company_title: str | None = None,
                 deal_title: str | None = None, deal_values: dict | None = None,
                 stage_id: int | None = None) -> dict:
    """Завершить обработку лида → Качественный.

    mode "deal": a deal only (with the lead's contact/company if linked);
    "deal_contact": a new contact from the lead's person fields, phones and emails (and a
    new company when `company_title` is given), then the deal;
    "existing": link the contact `contact_id` and/or company `company_id` chosen from the
    list, then the deal.
    The deal (pipeline `pipeline_id`, default: the lead department's pipeline; entry stage
    `stage_id`, default: the first) inherits the title (or `deal_title`), program (as a
    product row), amount, source, UTM, responsible and the repeat flag; `deal_values` are
    extra deal fields (e.g. first_payment_amount when the entry stage requires it).
    Returns {"deal_id", "contact_id", "company_id"}. All or nothing."""
    if mode not in MODES:
        raise ValidationFailed("Выберите, что создать: сделку, сделку и контакт или выбрать из списка")
    lead = records.get_item(session, "lead", lead_id)
    access.require(session, actor, "lead", "edit", lead)
    if lead.semantic != PROCESS:
        raise ValidationFailed(ALREADY_PROCESSED, code="already_processed")
    if mode == "existing" and not contact_id and not company_id:
        raise ValidationFailed("Выберите контакт или компанию из списка",
                               fields={"contact_id": "Выберите контакт или компанию"})
    pipe = session.get(Pipeline, int(pipeline_id)) if pipeline_id else deal_pipeline_for(session, lead)
    if pipe is None or pipe.entity != "deal":
        raise ValidationFailed("Выберите воронку сделок", fields={"pipeline_id": "Выберите воронку"})
    success = final_stage(session, lead.pipeline_id, SUCCESS, "CONVERTED")
    responsible_id = _active_responsible(session, lead)
    with atomic(session):
        contact = company = None
        if mode == "deal":
            contact = session.get(Contact, lead.contact_id) if lead.contact_id else None
            company = session.get(Company, lead.company_id) if lead.company_id else None
            contact = contact if contact is not None and contact.deleted_at is None else None
            company = company if company is not None and company.deleted_at is None else None
        elif mode == "deal_contact":
            if company_title and company_title.strip():
                company = create.create_company(session, actor, title=company_title,
                                                responsible_id=responsible_id)
            phones, emails = _lead_comms(session, lead.id)
            contact = create.create_contact(
                session, actor, last_name=lead.last_name, first_name=lead.first_name,
                middle_name=lead.middle_name, phones=phones, emails=emails,
                company_id=company.id if company else None, position=lead.position, birthday=lead.birthday,
                source=lead.source, responsible_id=responsible_id)
        else:
            contact = create._linked(session, actor, "contact", contact_id, check=True)
            company = create._linked(session, actor, "company", company_id, check=True)
            if company is None and contact is not None and contact.company_id:
                company = session.get(Company, contact.company_id)
        products = None
        if lead.program_id:
            prog = session.get(Product, lead.program_id)
            products = [{"product_id": prog.id, "price": lead.amount if lead.amount else prog.price,
                         "quantity": 1}]
        deal = create._create_deal(
            session, actor, check_links=False, pipeline_id=pipe.id, title=deal_title or lead.title,
            contact_id=contact.id if contact else None, company_id=company.id if company else None,
            program_id=lead.program_id, amount=lead.amount if lead.amount else None, source=lead.source,
            utm={k: getattr(lead, k) for k in create.UTM_KEYS}, responsible_id=responsible_id,
            stage_id=stage_id, lead_id=lead.id, comment=lead.comment, products=products,
            custom=None, values=deal_values)
        if lead.is_repeat and not deal.is_repeat:
            deal.is_repeat = True
        lead.deal_id = deal.id
        lead.contact_id = deal.contact_id
        lead.company_id = deal.company_id
        session.add(lead)
        items.move_stage(session, actor, "lead", lead.id, success.id, allow_final=True)
        contact = session.get(Contact, deal.contact_id) if deal.contact_id else None
        company = session.get(Company, deal.company_id) if deal.company_id else None
        parts = [f"сделка «{deal.title}»"]
        if contact:
            parts.append(f"контакт {contact.full_name}")
        if company:
            parts.append(f"компания «{company.title}»")
        links = {"deal_id": deal.id, "deal": deal.title, "contact_id": deal.contact_id,
                 "contact": contact.full_name if contact else "", "company_id": deal.company_id,
                 "company": company.title if company else "", "mode": mode}
        records.timeline(session, actor, "lead", lead.id, "converted",
                        {"text": "Лид обработан: " + ", ".join(parts), **links})
        records.timeline(session, actor, "deal", deal.id, "converted",
                        {"text": f"Создана из лида «{lead.title}»", "lead_id": lead.id, "lead": lead.title,
                         "contact_id": deal.contact_id, "company_id": deal.company_id, "mode": mode})
        audit.record(session, actor, "convert", "lead", lead.id, links)
        session.flush()
    return {"deal_id": deal.id, "contact_id": deal.contact_id, "company_id": deal.company_id}


def junk_lead(session: Session, actor: Actor, lead_id: int, *, stage_code: str = "JUNK", reason: str) -> Lead:
    """Некачественный (JUNK) or Нецелевые\\Дубли (DUPLICATE), with a reason."""
    if stage_code not in JUNK_STAGES:
        raise ValidationFailed("Выберите: Некачественный или Нецелевые\\Дубли")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Укажите причину", fields={"reason": "Обязательное поле"})
    lead = records.get_item(session, "lead", lead_id)
    access.require(session, actor, "lead", "edit", lead)
    if lead.semantic != PROCESS:
        raise ValidationFailed(ALREADY_PROCESSED, code="already_processed")
    stage = final_stage(session, lead.pipeline_id, FAILURE, stage_code)
    with atomic(session):
        lead.close_reason = reason
        session.add(lead)
        items.move_stage(session, actor, "lead", lead.id, stage.id, allow_final=True)
        records.timeline(session, actor, "lead", lead.id, "closed",
                        {"text": f"{stage.name}: {reason}", "stage_id": stage.id, "stage": stage.name,
                         "reason": reason, "won": False})
        audit.record(session, actor, "close", "lead", lead.id, {"stage": stage.name, "reason": reason})
        session.flush()
    return lead


# ---- deals ----------------------------------------------------------------------------

def close_deal(session: Session, actor: Actor, deal_id: int, *, won: bool, reason: str = "",
               values: dict | None = None) -> Deal:
    """Завершить сделку: won (Сделка успешна) or lost (Сделка проиграна, reason required —
    saved as the lost reason and as a comment). The deal leaves the board and stays in
    lists, history and analytics. `values`: fields the final stage requires, if any."""
    reason = (reason or "").strip()
    if not won and not reason:
        raise ValidationFailed("Укажите причину проигрыша", fields={"reason": "Обязательное поле"})
    deal = records.get_item(session, "deal", deal_id)
    access.require(session, actor, "deal", "edit", deal)
    if deal.semantic != PROCESS:
        raise ValidationFailed("Сделка уже завершена", code="already_closed")
    stage = final_stage(session, deal.pipeline_id, SUCCESS if won else FAILURE, "WON" if won else "LOST")
    with atomic(session):
        if not won:
            deal.lost_reason = reason
            session.add(deal)
        items.move_stage(session, actor, "deal", deal.id, stage.id, values=values, allow_final=True)
        if not won:
            comment = Comment(entity_type="deal", entity_id=deal.id, text=reason, author_id=actor.user_id)
            session.add(comment)
            session.flush()
            records.timeline(session, actor, "deal", deal.id, "comment",
                            {"text": reason, "comment_id": comment.id, "reason": True})
        records.timeline(session, actor, "deal", deal.id, "closed",
                        {"text": stage.name + (f": {reason}" if reason else ""), "won": won, "reason": reason,
                         "stage_id": stage.id, "stage": stage.name})
        audit.record(session, actor, "close", "deal", deal.id,
                     {"won": won, "reason": reason, "stage": stage.name})
        session.flush()
    return deal


def reopen(session: Session, actor: Actor, entity: str, item_id: int, stage_id: int | None = None):
    """Вернуть в работу a closed lead/deal (heads and admins only): to `stage_id` (a working
    stage) or the last working stage it was in; the close time and reason are cleared."""
    if entity not in ("lead", "deal"):
        raise ValidationFailed("Вернуть в работу можно лид или сделку")
    if actor.role not in REOPEN_ROLES:
        raise AccessDenied("Вернуть в работу может только руководитель")
    item = records.get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    if item.semantic == PROCESS:
        raise ValidationFailed("Уже в работе", code="not_closed")
    stages = {s.id: s for s in catalogs.stages(session, item.pipeline_id)}
    if stage_id is not None:
        target = stages.get(stage_id)
        if target is None or target.semantic != PROCESS:
            raise ValidationFailed("Выберите рабочую стадию этой воронки", fields={"stage_id": "Рабочая стадия"})
    else:
        last = session.execute(select(StageHistory.stage_id).where(
            StageHistory.entity_type == entity, StageHistory.entity_id == item.id,
            StageHistory.semantic == PROCESS).order_by(StageHistory.created_at.desc(), StageHistory.id.desc())
        ).scalars().first()
        target = stages.get(last) if last in stages and stages[last].semantic == PROCESS else None
        target = target or next(s for s in stages.values() if s.semantic == PROCESS)
    old = stages.get(item.stage_id)
    with atomic(session):
        items.move_stage(session, actor, entity, item.id, target.id)
        item.closed_at = None
        if entity == "deal":
            item.lost_reason = ""
        else:
            item.close_reason = ""
        session.add(item)
        records.timeline(session, actor, entity, item.id, "reopened",
                        {"text": f"Возвращено в работу: {old.name if old else '—'} → {target.name}",
                         "from": old.name if old else "", "to": target.name, "to_stage_id": target.id})
        audit.record(session, actor, "reopen", entity, item.id,
                     {"from": old.name if old else "", "to": target.name})
        session.flush()
    return item


def create_deal_for(session: Session, actor: Actor, *, contact_id: int | None = None,
                    company_id: int | None = None, pipeline_id: int, title: str, **kw) -> Deal:
    """A deal from a contact's or a company's card (a contact with a company links both).
    `kw` are create.create_deal's other arguments."""
    if not contact_id and not company_id:
        raise ValidationFailed("Сделку создают из карточки контакта или компании")
    return create.create_deal(session, actor, pipeline_id=pipeline_id, title=title, contact_id=contact_id,
                              company_id=company_id, **kw)

