"""Creating CRM items (contacts, companies, leads, deals) and repeat detection (a phone or e-mail already known makes a «Повторный» lead or deal).

Every creator checks the "add" permission on the new item, validates its input (nothing
is written when a value is wrong), writes the item, its phones/emails (`communication`),
a "created" timeline event, a stage-history row for the entry stage (leads and deals)
and an audit record — all in the caller's transaction (never commits).

The UI, the forms/integrations (intake) and the lead conversion all create through here,
so repeat detection runs on every create: a phone or an email of the new lead/deal that
matches an existing contact flags it Повторный лид / Повторная сделка and links it."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session

from rxcrm.db import reserve_ids
from rxcrm.models import (
    Communication, Company, Contact, Deal, DealProduct, Lead, Pipeline, Product, Stage, StageHistory,
    TimelineEvent, User, utcnow,
)
from rxcrm.models.base import new_row, row_values
from rxcrm.models.pipeline import PROCESS

from . import access, audit, catalogs, events, items, search_index
from .context import Actor
from .errors import ServiceError, ValidationFailed
from .fields import FieldDef, field_map
from .phones import comm_row, digits, normalize_email, normalize_phone, search_text
from .records import get_item, set_value, timeline, touch
from .requirements import missing_of, required_for

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
DEFAULT_SOURCE = "Вручную"
REPEAT_LABEL = {"lead": "Повторный лид", "deal": "Повторная сделка"}
CREATED_TEXT = {"lead": "Лид создан", "deal": "Сделка создана"}
_AMOUNT = FieldDef("amount", "Сумма", "Amount", "money", "amount")


# ---- input helpers ------------------------------------------------------------------------

def _s(value) -> str:
    return (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()


def clean_phones(phones: Iterable) -> list[tuple[str, str, str]]:
    """[(value as typed, normalised, value type)] — blanks skipped, duplicates dropped.

    A phone is a string or a (value, value_type) pair. A phone with fewer than 10 digits
    is refused naming it (a fragment like "654-32-10" cannot be called back)."""
    out, seen, errors = [], set(), []
    for raw in phones or ():
        value, vtype = (raw[0], raw[1]) if isinstance(raw, (tuple, list)) else (raw, "work")
        value = _s(value)
        if not value:
            continue
        norm = normalize_phone(value)
        if len(digits(norm)) < 10 or len(norm) > 15:
            errors.append(value)
            continue
        if norm not in seen:
            seen.add(norm)
            out.append((value, norm, vtype or "work"))
    if errors:
        names = ", ".join(f"«{e}»" for e in errors)
        raise ValidationFailed(f"Телефон {names}: введите номер полностью, не меньше 10 цифр",
                               fields={"phones": f"Неверный телефон: {', '.join(errors)}"})
    return out


def clean_emails(emails: Iterable) -> list[tuple[str, str, str]]:
    """[(value as typed, lower-cased, value type)] — blanks skipped, duplicates dropped."""
    out, seen, errors = [], set(), []
    for raw in emails or ():
        value, vtype = (raw[0], raw[1]) if isinstance(raw, (tuple, list)) else (raw, "work")
        value = _s(value)
        if not value:
            continue
        if not EMAIL_RE.match(value):
            errors.append(value)
            continue
        norm = normalize_email(value)
        if norm not in seen:
            seen.add(norm)
            out.append((value, norm, vtype or "work"))
    if errors:
        names = ", ".join(f"«{e}»" for e in errors)
        raise ValidationFailed(f"E-mail {names}: неверный адрес",
                               fields={"emails": f"Неверный e-mail: {', '.join(errors)}"})
    return out


def _add_comms(session: Session, entity: str, item_id: int, phones, emails) -> None:
    for value, _norm, vtype in phones:
        session.add(Communication(**comm_row(entity, item_id, "phone", value, vtype)))
    for value, _norm, vtype in emails:
        session.add(Communication(**comm_row(entity, item_id, "email", value, vtype)))


def _responsible(session: Session, actor: Actor, responsible_id: int | None) -> tuple[int | None, int | None]:
    """(responsible id, its department). Defaults to the actor."""
    if responsible_id is None:
        if actor.user_id is None:
            return None, actor.department_id
        responsible_id = actor.user_id
    user = session.get(User, responsible_id)
    if user is None or not user.is_active:
        raise ValidationFailed("Ответственный не найден или отключён", fields={"responsible_id": "Не найден"})
    return user.id, user.department_id


def _program(session: Session, program_id) -> int | None:
    if program_id in (None, ""):
        return None
    text = str(program_id).strip()
    prog = session.get(Product, int(text)) if text.isascii() and text.isdigit() and len(text) < 10 else None
    if prog is None:
        raise ValidationFailed("Образовательная программа не найдена", fields={"program_id": "Не найдена"})
    return prog.id


def _money(value) -> Decimal | None:
    return items.parse_value(_AMOUNT, value) if value is not None else None


def _birthday(value) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValidationFailed("«Дата рождения»: дата в формате ГГГГ-ММ-ДД",
                               fields={"birthday": "Неверная дата"}) from None


def _utm(item, utm: dict | None) -> None:
    for key, value in _utm_values(utm).items():
        setattr(item, key, value)


def _utm_values(utm: dict | None) -> dict:
    out = {}
    for key, value in (utm or {}).items():
        key = key if key.startswith("utm_") else f"utm_{key}"
        if key in UTM_KEYS and value is not None:
            out[key] = _s(value)[:255]
    return out


def _values(session: Session, entity: str, pipeline_id: int | None, values: dict | None,
            custom: dict | None) -> dict:
    """Extra field values by field key (custom fields as "custom.<code>" or plain codes in
    `custom`), validated like an edit: all errors at once, nothing set when one is wrong."""
    raw = dict(values or {})
    for code, value in (custom or {}).items():
        raw[code if code.startswith("custom.") else f"custom.{code}"] = value
    if not raw:
        return {}
    parsed = {k: v for k, (_fd, v) in items.parse_values(field_map(session, entity, pipeline_id), raw,
                                                         unknown="Неизвестное поле").items()}
    items.check_references(session, parsed)
    return parsed


def _put_values(row: dict, parsed: dict) -> None:
    """`_apply` for a row not yet made (new_row's values): fields as they are, custom fields
    into `custom`."""
    row.update((k, v) for k, v in parsed.items() if not k.startswith("custom."))
    row["custom"] = {k.split(".", 1)[1]: v for k, v in parsed.items() if k.startswith("custom.") and v is not None}


def _apply(item, parsed: dict) -> None:
    for key, value in parsed.items():
        set_value(item, key, value)


def _entry_stage(session: Session, pipeline_id: int, *, stage_id: int | None = None,
                 stage_code: str | None = None, allow_final: bool = False) -> Stage:
    """The stage a new item enters: the given one (a working stage — or, for an import of
    history, `allow_final`, a closing one too) or the pipeline's first working stage."""
    stages = catalogs.stages(session, pipeline_id)
    if stage_id is not None or stage_code:
        st = next((s for s in stages if (s.id == stage_id if stage_id is not None else s.code == stage_code)), None)
        if st is None:
            raise ValidationFailed("Такой стадии нет в воронке", fields={"stage_id": "Не найдена"})
        if st.semantic != PROCESS and not allow_final:
            raise ValidationFailed(f"«{st.name}» — завершающая стадия: новый элемент начинается с рабочей стадии",
                                   code="final_stage")
        return st
    st = next((s for s in stages if s.semantic == PROCESS), None)
    if st is None:
        raise ServiceError("В воронке нет рабочих стадий")
    return st


def check_stage_fields(session: Session, entity: str, item, stage: Stage) -> None:
    """Refuse like items.move_stage when the entry stage requires fields the item lacks."""
    _check_required(item, stage, required_for(session, entity, stage))


def _check_required(item, stage: Stage, required) -> None:
    missing = missing_of(item, required)
    if missing:
        names = ", ".join(f"«{f.label}»" for f in missing)
        raise items.MissingFields(f"Чтобы создать на стадии «{stage.name}», заполните: {names}",
                                  details={"missing": [{"key": f.key, "label": f.label, "kind": f.kind,
                                                        "options": list(f.options)} for f in missing],
                                           "stage_id": stage.id, "stage": stage.name})


def _tracked(item, actor: Actor, responsible_id, department_id, created_at: datetime | None = None) -> None:
    """Who/when of a new item; `created_at` keeps an imported item's original date."""
    for key, value in _tracked_values(actor, responsible_id, department_id, created_at,
                                      getattr(item, "semantic", PROCESS), getattr(item, "closed_at", None)).items():
        setattr(item, key, value)


def _tracked_values(actor: Actor, responsible_id, department_id, created_at: datetime | None, semantic: str,
                    closed_at: datetime | None) -> dict:
    now = utcnow()
    out = dict(responsible_id=responsible_id, department_id=department_id, created_at=now, updated_at=now,
               created_by_id=actor.user_id, updated_by_id=actor.user_id)
    if created_at is not None:
        out["created_at"] = created_at if created_at.tzinfo else created_at.replace(tzinfo=timezone.utc)
    if semantic != PROCESS:
        out["closed_at"] = closed_at or out["created_at"]
    return out


def _enter_first_stage(session: Session, actor: Actor, entity: str, item, stage: Stage, extra: dict) -> None:
    session.add(StageHistory(entity_type=entity, entity_id=item.id, pipeline_id=item.pipeline_id,
                             stage_id=stage.id, from_stage_id=None, semantic=stage.semantic,
                             created_at=item.created_at, user_id=actor.user_id,
                             responsible_id=item.responsible_id, department_id=item.department_id))
    timeline(session, actor, entity, item.id, "created", _created_data(entity, item, stage, extra))
    session.flush()


def _created_data(entity: str, item, stage: Stage, extra: dict) -> dict:
    return {"text": f"{CREATED_TEXT[entity]} на стадии «{stage.name}»", "stage_id": stage.id, "stage": stage.name,
            "pipeline_id": item.pipeline_id, "source": getattr(item, "source", ""), **extra}


def _created(session: Session, actor: Actor, entity: str, item, stage: Stage | None, details: dict) -> None:
    """Announce the new item (ITEM_CREATED): the audit, the responsible's bell and the
    first stage's on-enter rules follow from it (rxcrm/hooks.py)."""
    events.publish(session, events.ITEM_CREATED, actor=actor, entity=entity, item=item, stage=stage,
                   details=details)


def _linked(session: Session, actor: Actor, entity: str, item_id, check: bool):
    """A contact/company to link to (not deleted; visible to the actor when `check`)."""
    if item_id in (None, ""):
        return None
    obj = get_item(session, entity, int(item_id))
    if check:
        access.require(session, actor, entity, "view", obj)
    return obj


# ---- contacts and companies -----------------------------------------------------------------

def contact_full_name(last: str, first: str, middle: str = "") -> str:
    return " ".join(p for p in (_s(last), _s(first), _s(middle)) if p)


def create_contact(session: Session, actor: Actor, **kw) -> Contact:
    """A new contact (the arguments are `_prepare_contact`'s)."""
    contact, ph, em = _prepare_contact(session, actor, {}, **kw)
    session.add(contact)
    session.flush()
    _add_comms(session, "contact", contact.id, ph, em)
    timeline(session, actor, "contact", contact.id, "created", _contact_created_data(contact))
    _created(session, actor, "contact", contact, None, _contact_details(contact, ph, em))
    return contact


def _prepare_contact(session: Session, actor: Actor, memo: dict, *, last_name: str, first_name: str,
                     middle_name: str = "", phones=(), emails=(), company_id: int | None = None, position: str = "",
                     birthday=None, source: str = DEFAULT_SOURCE, responsible_id: int | None = None,
                     comment: str = "", custom: dict | None = None, values: dict | None = None,
                     created_at: datetime | None = None) -> tuple[Contact, list, list]:
    """Everything a new contact is checked for, and the contact as it will be written (not
    added to the session): what `create_contact` and `create_contacts` share."""
    last, first, middle = _s(last_name), _s(first_name), _s(middle_name)
    if not last and not first:
        raise ValidationFailed("Укажите фамилию или имя контакта",
                               fields={"last_name": "Обязательное поле", "first_name": "Обязательное поле"})
    ph, em = clean_phones(phones), clean_emails(emails)
    company = _memo(memo, ("company", str(company_id)), lambda: _linked(session, actor, "company", company_id, check=True))
    resp_id, dept_id = _memo(memo, ("responsible", responsible_id), lambda: _responsible(session, actor, responsible_id))
    full = contact_full_name(last, first, middle)
    row = dict(last_name=last, first_name=first, middle_name=middle, full_name=full,
               company_id=company.id if company else None, position=_s(position), birthday=_birthday(birthday),
               source=_s(source) or DEFAULT_SOURCE, comment=_s(comment), search_text=search_text(full, *(e[0] for e in em)))
    _put_values(row, _values(session, "contact", None, values, custom))
    row.update(_tracked_values(actor, resp_id, dept_id, created_at, PROCESS, None))
    contact = new_row(Contact, **row)
    access.require(session, actor, "contact", "add", contact)
    return contact, ph, em


def _contact_created_data(contact: Contact) -> dict:
    return {"text": f"Создан контакт {contact.full_name}", "source": contact.source}


def _contact_details(contact: Contact, ph: list, em: list) -> dict:
    return {"title": contact.full_name, "phones": [p[0] for p in ph], "emails": [e[0] for e in em]}


def create_contacts(session: Session, actor: Actor, specs: list[dict]) -> list[Contact | ServiceError]:
    """Many new contacts at once (an import's chunk), as `create_leads` does leads: each
    checked by `_prepare_contact`, then written together and announced one by one."""
    memo: dict = {}  # kept until the batch is written (see _prepare_all)
    out, made = _prepare_all(_prepare_contact, session, actor, specs, memo)
    if not made:
        return out
    _insert_batch(session, "contact", [m[0] for m in made])
    comm_rows, lines = [], []
    for contact, ph, em in made:
        comm_rows += _comm_rows("contact", contact.id, ph, em)
        lines.append(_timeline_row(actor, "contact", contact.id, "created", _contact_created_data(contact)))
    _insert_rows(session, ((Communication, comm_rows), (TimelineEvent, lines)))
    for contact, ph, em in made:
        _created(session, actor, "contact", contact, None, _contact_details(contact, ph, em))
    return out


def create_company(session: Session, actor: Actor, *, title: str, phones=(), emails=(), inn: str = "",
                   industry: str = "", address: str = "", website: str = "", responsible_id: int | None = None,
                   comment: str = "", custom: dict | None = None, values: dict | None = None,
                   created_at: datetime | None = None) -> Company:
    title = _s(title)
    if not title:
        raise ValidationFailed("Укажите название компании", fields={"title": "Обязательное поле"})
    inn = _s(inn)
    if inn and (not inn.isdigit() or len(inn) not in (10, 12)):
        raise ValidationFailed("ИНН: 10 или 12 цифр", fields={"inn": "10 или 12 цифр"})
    ph, em = clean_phones(phones), clean_emails(emails)
    resp_id, dept_id = _responsible(session, actor, responsible_id)
    company = Company(title=title, inn=inn, industry=_s(industry), address=_s(address), website=_s(website),
                      comment=_s(comment), search_text=search_text(title, inn, *(e[0] for e in em)))
    _apply(company, _values(session, "company", None, values, custom))
    _tracked(company, actor, resp_id, dept_id, created_at)
    access.require(session, actor, "company", "add", company)
    session.add(company)
    session.flush()
    _add_comms(session, "company", company.id, ph, em)
    timeline(session, actor, "company", company.id, "created", {"text": f"Создана компания «{title}»"})
    _created(session, actor, "company", company, None, {"title": title})
    return company


# ---- leads ---------------------------------------------------------------------------------

def create_lead(session: Session, actor: Actor, **kw) -> Lead:
    """A new lead in the lead pipeline's first stage (or `stage_code`, a working stage; an
    import of history may give a closing one with `allow_final`).

    Needs a name, a phone or an email. `responsible_id` defaults to the actor (system and
    intake actors pass the assignee). Runs repeat detection after writing the lead. The
    arguments are `_prepare_lead`'s."""
    lead, stage, ph, em = _prepare_lead(session, actor, {}, **kw)
    session.add(lead)
    session.flush()
    _add_comms(session, "lead", lead.id, ph, em)
    _enter_first_stage(session, actor, "lead", lead, stage, {})
    found = detect_repeat(session, "lead", lead, [p[0] for p in ph], [e[0] for e in em])
    _created(session, actor, "lead", lead, stage, _lead_details(lead, stage, found))
    return lead


def _lead_details(lead: Lead, stage: Stage, found: Contact | None) -> dict:
    return {"title": lead.title, "source": lead.source, "stage": stage.name,
            "repeat_contact_id": found.id if found else None}


def _prepare_lead(session: Session, actor: Actor, memo: dict, *, title: str = "", last_name: str = "",
                  first_name: str = "", middle_name: str = "", phones=(), emails=(), source: str = DEFAULT_SOURCE,
                  program_id=None, amount=None, comment: str = "", utm: dict | None = None,
                  company_title: str = "", marketplace_action: str = "", responsible_id: int | None = None,
                  stage_code: str | None = None, custom: dict | None = None, position: str = "",
                  education_level: str = "", interest_area: str = "", values: dict | None = None,
                  created_at: datetime | None = None, closed_at: datetime | None = None,
                  allow_final: bool = False) -> tuple[Lead, Stage, list, list]:
    """Everything a new lead is checked for, and the lead as it will be written (not added
    to the session): the one definition `create_lead` and `create_leads` share. `memo`
    keeps the configuration it read (pipeline, stages, required fields) for the next call."""
    last, first, middle = _s(last_name), _s(first_name), _s(middle_name)
    ph, em = clean_phones(phones), clean_emails(emails)
    if not (last or first or middle or ph or em):
        raise ValidationFailed("Укажите имя, телефон или e-mail",
                               fields={"first_name": "Имя, телефон или e-mail", "phones": "Имя, телефон или e-mail"})
    if "pipe" not in memo:
        memo["pipe"] = catalogs.default_pipeline(session, "lead")
    pipe = memo["pipe"]
    if pipe is None:
        raise ServiceError("Воронка лидов не настроена")
    stage = _memo(memo, ("stage", stage_code, allow_final),
                  lambda: _entry_stage(session, pipe.id, stage_code=stage_code, allow_final=allow_final))
    resp_id, dept_id = _memo(memo, ("responsible", responsible_id), lambda: _responsible(session, actor, responsible_id))
    name = " ".join(p for p in (last, first) if p) or middle
    title = _s(title) or f"Лид: {name or (ph[0][0] if ph else em[0][0])}"
    # every value at once (new_row: no attribute machinery per value — an import makes thousands)
    row = dict(title=title, pipeline_id=pipe.id, stage_id=stage.id, semantic=stage.semantic,
               last_name=last, first_name=first, middle_name=middle, source=_s(source) or DEFAULT_SOURCE,
               program_id=_memo(memo, ("program", str(program_id)), lambda: _program(session, program_id)),
               comment=_s(comment), company_title=_s(company_title), marketplace_action=_s(marketplace_action),
               position=_s(position), education_level=_s(education_level), interest_area=_s(interest_area),
               search_text=search_text(title, last, first, middle, _s(company_title), *(e[0] for e in em)))
    if amount is not None:
        row["amount"] = _money(amount)
    row.update(_utm_values(utm))
    _put_values(row, _values(session, "lead", pipe.id, values, custom))
    if closed_at is not None and stage.semantic != PROCESS:
        row["closed_at"] = closed_at
    row.update(_tracked_values(actor, resp_id, dept_id, created_at, stage.semantic, row.get("closed_at")))
    row["stage_changed_at"] = row["created_at"]
    lead = new_row(Lead, **row)
    access.require(session, actor, "lead", "add", lead)
    required = ("required", stage.id)
    if required not in memo:
        memo[required] = required_for(session, "lead", stage)
    _check_required(lead, stage, memo[required])
    return lead, stage, ph, em


def _memo(memo: dict, key, read):
    """A lookup a batch asks again and again (the session's identity map holds its objects
    only weakly), its refusal included."""
    if key not in memo:
        try:
            memo[key] = read()
        except ServiceError as exc:
            memo[key] = exc
    if isinstance(memo[key], ServiceError):
        raise memo[key]
    return memo[key]


def create_leads(session: Session, actor: Actor, specs: list[dict]) -> list[Lead | ServiceError]:
    """Many new leads at once (an import's chunk): each checked exactly as `create_lead`
    (the same `_prepare_lead`), then written together — one batched INSERT per table, one
    query for the repeat detection of all — and announced one by one (ITEM_CREATED: the
    rules, the outbound events…, as for any new lead). Returns, per spec in order, the lead
    or the refusal of that spec (nothing of a refused one is written)."""
    memo: dict = {}  # kept until the batch is written (see _prepare_all)
    out, made = _prepare_all(_prepare_lead, session, actor, specs, memo)
    if not made:
        return out
    hits = find_contacts(session, [([p[0] for p in ph], [e[0] for e in em]) for _l, _s2, ph, em in made])
    for (lead, _stage, _ph, _em), hit in zip(made, hits):
        if hit is not None:
            _mark_repeat(lead, hit[0])
    _insert_batch(session, "lead", [m[0] for m in made])
    comm_rows, history, lines = [], [], []
    for (lead, stage, ph, em), hit in zip(made, hits):
        comm_rows += _comm_rows("lead", lead.id, ph, em)
        history.append(dict(entity_type="lead", entity_id=lead.id, pipeline_id=lead.pipeline_id, stage_id=stage.id,
                            from_stage_id=None, prev_at=None, semantic=stage.semantic, created_at=lead.created_at,
                            user_id=actor.user_id, responsible_id=lead.responsible_id,
                            department_id=lead.department_id))
        lines.append(_timeline_row(actor, "lead", lead.id, "created", _created_data("lead", lead, stage, {})))
        if hit is not None:
            lines.append(dict(entity_type="lead", entity_id=lead.id, kind="repeat_detected", created_at=utcnow(),
                              user_id=None, rule="", data=_repeat_data("lead", *hit)))
    _insert_rows(session, ((Communication, comm_rows), (StageHistory, history), (TimelineEvent, lines)))
    for (lead, stage, _ph, _em), hit in zip(made, hits):
        _created(session, actor, "lead", lead, stage, _lead_details(lead, stage, hit[0] if hit else None))
    return out


def _prepare_all(prepare, session: Session, actor: Actor, specs: list[dict], memo: dict,
                 **fixed) -> tuple[list, list]:
    """Each spec checked by `prepare` (`_prepare_lead`…) with the batch's `memo`: (per spec
    the item or its refusal, the prepared tuples of those that passed). The caller keeps
    `memo` until its batch is written: it holds the pipeline, stages… it read, which the
    session's identity map holds only weakly (else the rules read the pipeline again per item)."""
    out, made = [], []
    for spec in specs:
        try:
            made.append(prepare(session, actor, memo, **fixed, **spec))
            out.append(made[-1][0])
        except ServiceError as exc:
            out.append(exc)
    return out, made


def _insert_batch(session: Session, entity: str, objs: list) -> None:
    """New items (`new_row` objects) written by one Core INSERT with ids from
    `reserve_ids` (no INSERT … RETURNING per item, no unit-of-work bookkeeping), the search
    index written once for all; each then joins the session as the row it is — persistent,
    loaded, version 1 — so later changes of it are ordinary ORM updates."""
    model = type(objs[0])
    for obj, obj_id in zip(objs, reserve_ids(session, entity, len(objs))):
        obj.id = obj_id
    with search_index.indexed_together(session, entity, lambda: [o.id for o in objs]):
        session.execute(insert(model.__table__), [row_values(o) for o in objs])
    for obj in objs:
        make_transient_to_detached(obj)
        session.add(obj)


def _insert_rows(session: Session, tables) -> None:
    """Plain rows of a batch ((model, [dict]) pairs) — Core: no per-row ORM bookkeeping."""
    for model, rows in tables:
        if rows:
            session.execute(insert(model.__table__), rows)


def _comm_rows(entity: str, item_id: int, ph: list, em: list) -> list[dict]:
    return ([comm_row(entity, item_id, "phone", v, t) for v, _n, t in ph]
            + [comm_row(entity, item_id, "email", v, t) for v, _n, t in em])


def _timeline_row(actor: Actor, entity: str, item_id: int, kind: str, data: dict) -> dict:
    return dict(entity_type=entity, entity_id=item_id, kind=kind, created_at=utcnow(), user_id=actor.user_id,
                rule="" if actor.source != "rule" else actor.login, data=data)


# ---- deals ---------------------------------------------------------------------------------

def contact_comms(session: Session, contact_id: int | None) -> tuple[list[str], list[str]]:
    """(phones, emails) of a contact as typed."""
    if not contact_id:
        return [], []
    rows = session.execute(select(Communication.kind, Communication.value).where(
        Communication.entity_type == "contact", Communication.entity_id == contact_id)
        .order_by(Communication.id)).all()
    return [v for k, v in rows if k == "phone"], [v for k, v in rows if k == "email"]


def deal_search_text(session: Session, deal: Deal) -> str:
    """Title + contact full name + company title + the contact's emails."""
    contact = session.get(Contact, deal.contact_id) if deal.contact_id else None
    company = session.get(Company, deal.company_id) if deal.company_id else None
    _, emails = contact_comms(session, deal.contact_id)
    return search_text(deal.title, contact.full_name if contact else "", company.title if company else "", *emails)


def _product_rows(session: Session, products: list[dict] | None) -> list[DealProduct]:
    rows = []
    for i, p in enumerate(products or ()):
        prod = session.get(Product, int(p["product_id"])) if p.get("product_id") else None
        if p.get("product_id") and prod is None:
            raise ValidationFailed("Товар не найден", fields={"products": "Товар не найден"})
        title = _s(p.get("title")) or (prod.title if prod else "")
        if not title:
            raise ValidationFailed("Товарная позиция без названия", fields={"products": "Укажите товар"})
        try:
            price = Decimal(str(p["price"])) if p.get("price") not in (None, "") else (prod.price if prod else Decimal(0))
            qty = Decimal(str(p.get("quantity", 1) or 1))
            disc = Decimal(str(p.get("discount_pct", p.get("discount", 0)) or 0))
        except ArithmeticError:
            raise ValidationFailed(f"Товар «{title}»: введите числа", fields={"products": "Введите числа"}) from None
        if price < 0 or qty <= 0 or not (0 <= disc <= 100):
            raise ValidationFailed(f"Товар «{title}»: цена ≥ 0, количество > 0, скидка от 0 до 100 %",
                                   fields={"products": "Неверные значения"})
        rows.append(DealProduct(deal_id=0, product_id=prod.id if prod else None, title=title, price=price,
                                quantity=qty, discount_pct=disc, sort=(i + 1) * 10))
    return rows


def products_total(rows: list[DealProduct]) -> Decimal:
    total = sum((r.price * r.quantity * (1 - r.discount_pct / 100) for r in rows), Decimal(0))
    return total.quantize(Decimal("0.01"))


def create_deal(session: Session, actor: Actor, *, pipeline_id: int, title: str, contact_id: int | None = None,
                company_id: int | None = None, program_id=None, amount=None, source: str = DEFAULT_SOURCE,
                utm: dict | None = None, responsible_id: int | None = None, stage_id: int | None = None,
                lead_id: int | None = None, comment: str = "", products: list[dict] | None = None,
                custom: dict | None = None, values: dict | None = None, created_at: datetime | None = None,
                closed_at: datetime | None = None, allow_final: bool = False) -> Deal:
    """A new deal in the pipeline's first working stage (or `stage_id`).

    A contact that belongs to a company links the company too. `products` are rows
    {product_id, title, price, quantity, discount_pct}; without `amount` the deal's amount
    is their sum. `values` are extra fields by key (e.g. first_payment_amount); the entry
    stage's required fields are checked (items.MissingFields). Runs repeat detection by
    the contact's phones/emails."""
    return _create_deal(session, actor, check_links=True, pipeline_id=pipeline_id, title=title,
                        contact_id=contact_id, company_id=company_id, program_id=program_id, amount=amount,
                        source=source, utm=utm, responsible_id=responsible_id, stage_id=stage_id,
                        lead_id=lead_id, comment=comment, products=products, custom=custom, values=values,
                        created_at=created_at, closed_at=closed_at, allow_final=allow_final)


def _create_deal(session: Session, actor: Actor, *, check_links: bool, lead_id=None, **kw) -> Deal:
    deal, stage, pipe, contact, rows = _prepare_deal(session, actor, {}, check_links=check_links, lead_id=lead_id,
                                                     **kw)
    session.add(deal)
    session.flush()
    for row in rows:
        row.deal_id = deal.id
        session.add(row)
    _enter_first_stage(session, actor, "deal", deal, stage, {"lead_id": lead_id} if lead_id else {})
    found = None
    if contact is not None:
        phones, emails = contact_comms(session, contact.id)
        own_is_new = not _has_history(session, contact.id, deal_id=deal.id, lead_id=lead_id)
        found = detect_repeat(session, "deal", deal, phones, emails,
                              exclude_contact_ids=(contact.id,) if own_is_new else ())
    _created(session, actor, "deal", deal, stage, _deal_details(deal, pipe, stage, lead_id, found))
    return deal


def _deal_details(deal: Deal, pipe: Pipeline, stage: Stage, lead_id, found: Contact | None) -> dict:
    return {"title": deal.title, "pipeline": pipe.name, "stage": stage.name, "source": deal.source,
            "amount": float(deal.amount or 0), "lead_id": lead_id, "repeat_contact_id": found.id if found else None}


def _prepare_deal(session: Session, actor: Actor, memo: dict, *, check_links: bool, pipeline_id, title,
                  contact_id=None, company_id=None, program_id=None, amount=None, source: str = DEFAULT_SOURCE,
                  utm: dict | None = None, responsible_id: int | None = None, stage_id: int | None = None,
                  lead_id: int | None = None, comment: str = "", products: list[dict] | None = None,
                  custom: dict | None = None, values: dict | None = None, created_at: datetime | None = None,
                  closed_at: datetime | None = None, allow_final: bool = False):
    """Everything a new deal is checked for, and the deal as it will be written (not added
    to the session; its product rows not yet tied to it): what `create_deal` and
    `create_deals` share. Returns (deal, stage, pipeline, contact, product rows)."""
    title = _s(title)
    if not title:
        raise ValidationFailed("Укажите название сделки", fields={"title": "Обязательное поле"})
    pipe = _memo(memo, ("pipeline", str(pipeline_id)), lambda: _deal_pipeline(session, pipeline_id))
    stage = _memo(memo, ("stage", pipe.id, stage_id, allow_final),
                  lambda: _entry_stage(session, pipe.id, stage_id=stage_id, allow_final=allow_final))
    contact = _memo(memo, ("contact", str(contact_id), check_links),
                    lambda: _linked(session, actor, "contact", contact_id, check_links))
    if company_id in (None, "") and contact is not None and contact.company_id:
        company = session.get(Company, contact.company_id)
        if company is None or company.deleted_at is not None:
            company = None
    else:
        company = _memo(memo, ("company", str(company_id), check_links),
                        lambda: _linked(session, actor, "company", company_id, check_links))
    if lead_id is not None and session.get(Lead, lead_id) is None:
        raise ValidationFailed("Лид не найден")
    parsed = _values(session, "deal", pipe.id, values, custom)
    if parsed.get("responsible_id") is not None and responsible_id is None:
        responsible_id = parsed["responsible_id"]
    parsed.pop("responsible_id", None)
    resp_id, dept_id = _memo(memo, ("responsible", responsible_id), lambda: _responsible(session, actor, responsible_id))
    rows = _product_rows(session, products)
    program = _memo(memo, ("program", str(program_id)), lambda: _program(session, program_id))
    if program is None:
        program = next((r.product_id for r in rows if r.product_id), None)
    row = dict(title=title, pipeline_id=pipe.id, stage_id=stage.id, semantic=stage.semantic,
               contact_id=contact.id if contact else None, company_id=company.id if company else None,
               program_id=program, source=_s(source) or DEFAULT_SOURCE, comment=_s(comment), lead_id=lead_id)
    if amount is not None:
        row["amount"] = _money(amount)
    elif rows:
        row["amount"] = products_total(rows)
    row.update(_utm_values(utm))
    _put_values(row, parsed)
    if closed_at is not None and stage.semantic != PROCESS:
        row["closed_at"] = closed_at
    row.update(_tracked_values(actor, resp_id, dept_id, created_at, stage.semantic, row.get("closed_at")))
    row["stage_changed_at"] = row["created_at"]
    emails = _memo(memo, ("emails", row["contact_id"]), lambda: contact_comms(session, row["contact_id"])[1])
    row["search_text"] = search_text(title, contact.full_name if contact else "", company.title if company else "",
                                     *emails)
    deal = new_row(Deal, **row)
    access.require(session, actor, "deal", "add", deal)
    required = ("required", stage.id)
    if required not in memo:
        memo[required] = required_for(session, "deal", stage)
    _check_required(deal, stage, memo[required])
    return deal, stage, pipe, contact, rows


def _deal_pipeline(session: Session, pipeline_id) -> Pipeline:
    pipe = session.get(Pipeline, int(pipeline_id)) if pipeline_id not in (None, "") else None
    if pipe is None or pipe.entity != "deal":
        raise ValidationFailed("Выберите воронку сделок", fields={"pipeline_id": "Выберите воронку"})
    return pipe


def create_deals(session: Session, actor: Actor, specs: list[dict]) -> list[Deal | ServiceError]:
    """Many new deals at once (an import's chunk), as `create_leads` does leads: each checked
    by `_prepare_deal` (create_deal's checks), written together, then — in the order given,
    as one by one — the repeat detection by the contact's phones and e-mails (a contact
    counts as known once it has a lead or a deal, an earlier deal of the batch included)
    and ITEM_CREATED for each."""
    memo: dict = {}  # kept until the batch is written (see _prepare_all)
    out, made = _prepare_all(_prepare_deal, session, actor, specs, memo, check_links=True)
    if not made:
        return out
    contact_ids = sorted({c.id for _d, _st, _p, c, _r in made if c is not None})
    known = _contacts_with_history(session, contact_ids)  # before the batch: contact id → its lead ids / True
    comms_of: dict[int, tuple[list, list]] = {cid: ([], []) for cid in contact_ids}
    for cid, kind, value in (session.execute(select(Communication.entity_id, Communication.kind, Communication.value)
                                             .where(Communication.entity_type == "contact",
                                                    Communication.entity_id.in_(contact_ids))
                                             .order_by(Communication.id)).all() if contact_ids else ()):
        comms_of[cid][0 if kind == "phone" else 1].append(value)
    pairs, excludes, earlier = [], [], set()
    for deal, _st, _p, contact, _r in made:
        if contact is None:
            pairs.append(([], []))
            excludes.append(())
            continue
        history = known.get(contact.id)
        had = contact.id in earlier or history is True or bool(history and (history - {deal.lead_id}))
        earlier.add(contact.id)
        pairs.append(comms_of[contact.id])
        excludes.append(() if had else (contact.id,))
    hits = find_contacts(session, pairs, excludes)
    _insert_batch(session, "deal", [m[0] for m in made])
    history_rows, lines = [], []
    for (deal, stage, _p, _c, rows), hit in zip(made, hits):
        lead_id = deal.lead_id
        for row in rows:
            row.deal_id = deal.id
            session.add(row)
        history_rows.append(dict(entity_type="deal", entity_id=deal.id, pipeline_id=deal.pipeline_id,
                                 stage_id=stage.id, from_stage_id=None, prev_at=None, semantic=stage.semantic,
                                 created_at=deal.created_at, user_id=actor.user_id,
                                 responsible_id=deal.responsible_id, department_id=deal.department_id))
        lines.append(_timeline_row(actor, "deal", deal.id, "created",
                                   _created_data("deal", deal, stage, {"lead_id": lead_id} if lead_id else {})))
        if hit is not None:
            deal.is_repeat = True
            lines.append(dict(_timeline_row(actor, "deal", deal.id, "repeat_detected", _repeat_data("deal", *hit)),
                              user_id=None, rule=""))
    _insert_rows(session, ((StageHistory, history_rows), (TimelineEvent, lines)))
    for (deal, stage, pipe, _c, _r), hit in zip(made, hits):
        _created(session, actor, "deal", deal, stage,
                 _deal_details(deal, pipe, stage, deal.lead_id, hit[0] if hit else None))
    return out


def _contacts_with_history(session: Session, contact_ids: list[int]) -> dict[int, object]:
    """contact id → True when it has a live deal, else the set of its live leads' ids."""
    out: dict[int, object] = {}
    if not contact_ids:
        return out
    for (cid,) in session.execute(select(Deal.contact_id).where(Deal.contact_id.in_(contact_ids),
                                                                  Deal.deleted_at.is_(None)).distinct()):
        out[cid] = True
    for cid, lead_id in session.execute(select(Lead.contact_id, Lead.id).where(Lead.contact_id.in_(contact_ids),
                                                                                Lead.deleted_at.is_(None))):
        if out.get(cid) is not True:
            out.setdefault(cid, set()).add(lead_id)
    return out


def _has_history(session: Session, contact_id: int, *, deal_id: int | None = None,
                 lead_id: int | None = None) -> bool:
    """Whether the contact already had leads or deals (other than the given ones): its
    own contact then counts as "existing" for a new deal's repeat detection."""
    for model, skip in ((Deal, deal_id), (Lead, lead_id)):
        conds = [model.contact_id == contact_id, model.deleted_at.is_(None)]
        if skip is not None:
            conds.append(model.id != skip)
        if session.execute(select(func.count()).select_from(model).where(*conds)).scalar_one():
            return True
    return False


# ---- repeat detection ------------------------------------------------------------------------

def find_contact(session: Session, phones: Iterable[str] = (), emails: Iterable[str] = (),
                 exclude_contact_ids: Iterable[int] = ()) -> tuple[Contact, str, str] | None:
    """The oldest live contact with one of these phones (first) or emails: (contact, by, value)."""
    exclude = [i for i in exclude_contact_ids if i]
    for kind, values in (("phone", phones), ("email", emails)):
        by_norm: dict[str, str] = {}
        for v in values or ():
            v = _s(v)
            norm = normalize_phone(v) if kind == "phone" else normalize_email(v)
            if kind == "phone" and len(norm) < 10:
                continue  # a fragment would match strangers
            if norm:
                by_norm.setdefault(norm, v)
        if not by_norm:
            continue
        stmt = (select(Contact, Communication.norm)
                .join(Communication, (Communication.entity_type == "contact") & (Communication.entity_id == Contact.id))
                .where(Communication.kind == kind, Communication.norm.in_(list(by_norm)),
                       Contact.deleted_at.is_(None))
                .order_by(Contact.id).limit(1))
        if exclude:
            stmt = stmt.where(Contact.id.not_in(exclude))
        row = session.execute(stmt).first()
        if row is not None:
            return row[0], kind, by_norm[row[1]]
    return None


def find_contacts(session: Session, pairs: list[tuple[list[str], list[str]]],
                  excludes: list | None = None) -> list[tuple[Contact, str, str] | None]:
    """`find_contact` for many (phones, emails) pairs with one query per kind: the same
    answer for each pair (the oldest live contact by a phone first, else by an e-mail, not
    one of the pair's `excludes`)."""
    wanted: dict[str, dict[str, str]] = {"phone": {}, "email": {}}
    per_pair = []
    for phones, emails in pairs:
        mine = {}
        for kind, values in (("phone", phones), ("email", emails)):
            by_norm: dict[str, str] = {}
            for v in values or ():
                v = _s(v)
                norm = normalize_phone(v) if kind == "phone" else normalize_email(v)
                if (kind == "phone" and len(norm) < 10) or not norm:
                    continue
                by_norm.setdefault(norm, v)
            mine[kind] = by_norm
            wanted[kind].update(dict.fromkeys(by_norm, ""))
        per_pair.append(mine)
    owner: dict[tuple[str, str], list[Contact]] = {}
    for kind, norms in wanted.items():
        keys = list(norms)
        for i in range(0, len(keys), 500):
            rows = session.execute(
                select(Contact, Communication.norm)
                .join(Communication, (Communication.entity_type == "contact") & (Communication.entity_id == Contact.id))
                .where(Communication.kind == kind, Communication.norm.in_(keys[i:i + 500]),
                       Contact.deleted_at.is_(None)).order_by(Contact.id)).all()
            for contact, norm in rows:
                owner.setdefault((kind, norm), []).append(contact)  # oldest first
    out = []
    for mine, skip in zip(per_pair, excludes or [()] * len(per_pair)):
        hit = None
        for kind in ("phone", "email"):
            found = []
            for n, v in mine[kind].items():
                first = next((c for c in owner.get((kind, n), ()) if c.id not in skip), None)
                if first is not None:
                    found.append((first, v))
            if found:
                contact, value = min(found, key=lambda cv: cv[0].id)
                hit = (contact, kind, value)
                break
        out.append(hit)
    return out


def _mark_repeat(item, contact: Contact) -> None:
    item.is_repeat = True
    if item.contact_id is None:
        item.contact_id = contact.id
        if item.company_id is None and contact.company_id:
            item.company_id = contact.company_id


def _repeat_data(entity: str, contact: Contact, by: str, value: str) -> dict:
    how = "телефону" if by == "phone" else "e-mail"
    return {"text": f"{REPEAT_LABEL.get(entity, 'Повторный')}: контакт {contact.full_name} найден по {how} {value}",
            "contact_id": contact.id, "contact": contact.full_name, "by": by, "value": value}


def detect_repeat(session: Session, entity: str, item, phones: Iterable[str], emails: Iterable[str], *,
                  exclude_contact_ids: Iterable[int] = ()) -> Contact | None:
    """Flag a new lead/deal as repeat when a phone (any format) or an email (any case)
    matches an existing live contact: is_repeat, the contact linked (when the item has
    none; its company too when the item has none) and a "repeat_detected" timeline event.
    Returns the matched contact or None. Does not flush."""
    hit = find_contact(session, phones, emails, exclude_contact_ids)
    if hit is None:
        return None
    contact, by, value = hit
    had_contact = item.contact_id is not None
    _mark_repeat(item, contact)
    if entity == "deal" and not had_contact:
        item.search_text = deal_search_text(session, item)
    session.add(item)
    session.add(TimelineEvent(entity_type=entity, entity_id=item.id, kind="repeat_detected", user_id=None,
                              data=_repeat_data(entity, contact, by, value)))
    return contact


def link_contact(session: Session, actor: Actor, entity: str, item_id: int, contact_id: int):
    """Link a lead/deal to an existing contact by hand (the manager found the client).

    A lead linked to a contact is a repeat lead; a deal is a repeat deal when the contact
    already had other leads or deals. A deal also gets the contact's company if it has none."""
    if entity not in ("lead", "deal"):
        raise ValidationFailed("Контакт привязывается к лиду или сделке")
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    contact = get_item(session, "contact", contact_id)
    access.require(session, actor, "contact", "view", contact)
    if item.contact_id == contact.id:
        return item
    old = item.contact_id
    item.contact_id = contact.id
    if entity == "lead":
        item.is_repeat = True
    else:
        item.is_repeat = item.is_repeat or _has_history(session, contact.id, deal_id=item.id, lead_id=item.lead_id)
    if item.company_id is None and contact.company_id:
        item.company_id = contact.company_id
    if entity == "deal":
        item.search_text = deal_search_text(session, item)
    touch(item, actor)
    session.add(item)
    timeline(session, actor, entity, item.id, "contact_linked",
                    {"text": f"Привязан контакт {contact.full_name}", "contact_id": contact.id,
                     "contact": contact.full_name, "old_contact_id": old})
    audit.record(session, actor, "link_contact", entity, item.id,
                 {"contact_id": contact.id, "old_contact_id": old, "is_repeat": item.is_repeat})
    return item


def unlink_contact(session: Session, actor: Actor, entity: str, item_id: int):
    """Remove the contact link of a lead/deal by hand (a wrong repeat match): the repeat
    flag goes too. The company link stays."""
    if entity not in ("lead", "deal"):
        raise ValidationFailed("Контакт привязывается к лиду или сделке")
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    if item.contact_id is None and not item.is_repeat:
        return item
    old = item.contact_id
    contact = session.get(Contact, old) if old else None
    item.contact_id = None
    item.is_repeat = False
    if entity == "deal":
        item.search_text = deal_search_text(session, item)
    touch(item, actor)
    session.add(item)
    name = contact.full_name if contact else ""
    timeline(session, actor, entity, item.id, "contact_unlinked",
                    {"text": f"Отвязан контакт {name}".strip(), "contact_id": old, "contact": name})
    audit.record(session, actor, "unlink_contact", entity, item.id, {"contact_id": old})
    return item
