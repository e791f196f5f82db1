"""The card page's read side: header, field blocks, links and the timeline (Лента).

Opening a card is audited (seed 001 §2.6: the history records even views)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from rxcrm.models import Activity, Company, Contact, Deal, Lead, TimelineEvent, User, utcnow

from . import access, audit, fmt, listing
from .context import Actor
from .fields import field_map
from .items import get_item

TIMELINE_PAGE = 30
KIND_LABEL = {
    "created": "Создание", "stage_changed": "Смена стадии", "field_changed": "Изменение поля",
    "activity_planned": "Запланировано дело", "activity_done": "Дело выполнено", "comment": "Комментарий",
    "email": "Письмо", "converted": "Конвертация", "closed": "Завершение", "deleted": "Удаление",
    "restored": "Восстановление", "activity_rescheduled": "Дело перенесено",
    "repeat_detected": "Повторное обращение", "reopened": "Возврат в работу",
    "contact_linked": "Привязан контакт", "contact_unlinked": "Контакт отвязан",
    "automation": "Автоматизация",
}
# Field blocks of the card (seeds: «О сделке», «Контакт», «Интересы», «Оплата»).
BLOCKS = {
    "lead": [("О лиде", ["title", "stage_id", "source", "amount", "responsible_id", "is_repeat", "close_reason",
                         "created_at", "updated_at"]),
             ("Контакт", ["name", "phone", "email", "company_title", "position"]),
             ("Интересы", ["program_id", "education_level", "interest_area", "marketplace_action"]),
             ("UTM", ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"])],
    "deal": [("О сделке", ["title", "pipeline_id", "stage_id", "amount", "probability", "responsible_id",
                           "source", "is_repeat", "close_date", "lost_reason", "created_at", "updated_at"]),
             ("Контакт", ["contact_id", "company_id", "phone"]),
             ("Интересы", ["program_id"]),
             ("Оплата", ["first_payment_amount"]),
             ("UTM", ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"])],
    "contact": [("О контакте", ["full_name", "phone", "email", "company_id", "position", "birthday", "source",
                                "responsible_id", "created_at"])],
    "company": [("О компании", ["title", "phone", "email", "inn", "industry", "address", "responsible_id",
                                "created_at"])],
}


# Editable fields per block (the card's inline edit); custom fields are added per pipeline.
EDIT_BLOCKS = {
    "lead": {"О лиде": ["title", "source", "amount", "responsible_id", "comment"],
             "Контакт": ["last_name", "first_name", "middle_name", "company_title", "position"],
             "Интересы": ["program_id", "education_level", "interest_area"]},
    "deal": {"О сделке": ["title", "amount", "probability", "responsible_id", "source", "close_date", "comment"],
             "Интересы": ["program_id"],
             "Оплата": ["first_payment_amount"]},
    "contact": {"О контакте": ["position", "birthday", "source", "responsible_id", "comment"]},
    "company": {"О компании": ["title", "inn", "industry", "address", "responsible_id", "comment"]},
}


def _raw(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Да" if value else "Нет"
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text[:-3] if text.endswith(".00") else text


def edit_fields(session: Session, actor: Actor, entity: str, item_id: int, block: str) -> list[dict]:
    """The fields of one block in edit mode, with their current raw values."""
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    fmap = field_map(session, entity, getattr(item, "pipeline_id", None))
    keys = list(EDIT_BLOCKS.get(entity, {}).get(block, []))
    if block == "Дополнительно":
        keys = [k for k in fmap if k.startswith("custom.")]
    out = []
    for key in keys:
        fd = fmap.get(key)
        if fd is None:
            continue
        value = (item.custom or {}).get(key.split(".", 1)[1]) if key.startswith("custom.") else getattr(item, key, None)
        out.append({"key": key, "label": fd.label, "kind": fd.kind, "options": list(fd.options),
                    "value": _raw(value)})
    return out


def open_card(session: Session, actor: Actor, entity: str, item_id: int, now: datetime | None = None) -> dict:
    """Everything the card shows except the timeline. Raises NotFound / AccessDenied."""
    now = now or utcnow()
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "view", item)
    fmap = field_map(session, entity, getattr(item, "pipeline_id", None))
    keys = [k for k in fmap if not k.startswith("custom.")]
    vals = listing.resolve(session, entity, [item], keys + [k for k in fmap if k.startswith("custom.")])[0]
    blocks = []
    for title, block_keys in BLOCKS[entity]:
        rows = [(fmap[k].label, listing.display(vals.get(k), fmap[k], now)) for k in block_keys if k in fmap]
        blocks.append({"title": title, "fields": [{"label": lab, "value": v} for lab, v in rows if v]})
    custom_by_block: dict[str, list] = {}
    for k, fd in fmap.items():
        if k.startswith("custom."):
            custom_by_block.setdefault("Дополнительно", []).append(
                {"label": fd.label, "value": listing.display(vals.get(k), fd, now) or "—"})
    for title, rows in custom_by_block.items():
        blocks.append({"title": title, "fields": rows})
    stages = []
    if entity in ("lead", "deal"):
        for st in listing.stages_of(session, item.pipeline_id):
            stages.append({"id": st.id, "name": st.name, "color": st.color, "semantic": st.semantic,
                           "current": st.id == item.stage_id})
    audit.record(session, actor, "view", entity, item.id)
    title = getattr(item, "title", None) or getattr(item, "full_name", "")
    repeat_contact = ""
    if getattr(item, "is_repeat", False) and getattr(item, "contact_id", None):
        c = session.get(Contact, item.contact_id)
        repeat_contact = c.full_name if c else ""
    editable = access.allowed(session, actor, entity, "edit", item)
    return {"id": item.id, "title": title, "stages": stages, "blocks": blocks,
            "links": links(session, actor, entity, item), "version": item.version,
            "semantic": getattr(item, "semantic", ""), "is_repeat": bool(getattr(item, "is_repeat", False)),
            "repeat_contact": repeat_contact, "contact_id": getattr(item, "contact_id", None) or 0,
            "editable": editable, "edit_blocks": [b for b in EDIT_BLOCKS.get(entity, {})]
            + (["Дополнительно"] if any(k.startswith("custom.") for k in fmap) else []),
            "pipeline_id": getattr(item, "pipeline_id", None) or 0,
            "responsible_id": item.responsible_id or 0}


def links(session: Session, actor: Actor, entity: str, item) -> list[dict]:
    """Связи: the contact, the company, other leads and deals of the same contact — only
    those the actor may view (nothing of another department leaks through a shared contact)."""
    out = []
    contact_id = item.id if entity == "contact" else getattr(item, "contact_id", None)
    company_id = item.id if entity == "company" else getattr(item, "company_id", None)
    if contact_id and entity != "contact":
        c = session.get(Contact, contact_id)
        if c and c.deleted_at is None and access.allowed(session, actor, "contact", "view", c):
            out.append({"kind": "Контакт", "title": c.full_name, "href": f"/contacts/{c.id}"})
    if company_id and entity != "company":
        c = session.get(Company, company_id)
        if c and c.deleted_at is None and access.allowed(session, actor, "company", "view", c):
            out.append({"kind": "Компания", "title": c.title, "href": f"/companies/{c.id}"})
    for model, ent, kind, path in ((Lead, "lead", "Лид", "leads"), (Deal, "deal", "Сделка", "deals")):
        conds = [model.deleted_at.is_(None), access.scope(session, actor, model, ent)]
        if entity == "company":
            conds.append(model.company_id == item.id)
        elif contact_id:
            conds.append(model.contact_id == contact_id)
        else:
            continue
        if ent == entity:
            conds.append(model.id != item.id)
        for other in session.execute(select(model).where(*conds).order_by(model.created_at.desc()).limit(20)).scalars():
            out.append({"kind": kind, "title": other.title, "href": f"/{path}/{other.id}"})
    return out


def timeline(session: Session, actor: Actor, entity: str, item_id: int, offset: int = 0,
             limit: int = TIMELINE_PAGE, kind: str = "", now: datetime | None = None) -> tuple[list[dict], bool]:
    """One page of the history, newest first; planned activities are separate (see planned)."""
    now = now or utcnow()
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "view", item)
    stmt = select(TimelineEvent).where(TimelineEvent.entity_type == entity, TimelineEvent.entity_id == item_id)
    if kind:
        stmt = stmt.where(TimelineEvent.kind == kind)
    rows = list(session.execute(stmt.order_by(TimelineEvent.created_at.desc(), TimelineEvent.id.desc())
                                .offset(offset).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    users = dict(session.execute(select(User.id, User.full_name).where(
        User.id.in_({r.user_id for r in rows if r.user_id}))).all()) if rows else {}
    return [_event(r, users, now) for r in rows], more


def _event(ev: TimelineEvent, users: dict, now: datetime) -> dict:
    d = ev.data or {}
    if ev.kind == "stage_changed":
        text = f"{d.get('from', '—')} → {d.get('to', '—')}"
    elif ev.kind == "field_changed":
        old, new = d.get("old"), d.get("new")
        text = f"«{d.get('label', d.get('field', ''))}»: {_v(old)} → {_v(new)}"
    elif ev.kind in ("comment", "email"):
        text = d.get("text", "")
    elif ev.kind in ("activity_done", "activity_planned"):
        text = " ".join(x for x in (d.get("subject", ""), d.get("result", "")) if x)
    else:
        text = d.get("text", "")
    who = users.get(ev.user_id) or ("Правило «" + ev.rule + "»" if ev.rule else "Система")
    return {"id": ev.id, "kind": ev.kind, "label": KIND_LABEL.get(ev.kind, ev.kind), "text": text,
            "who": who, "rule": ev.rule, "at": fmt.dt_short(ev.created_at, now)}


def _v(value) -> str:
    if value is None or value == "":
        return "пусто"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def planned(session: Session, actor: Actor, entity: str, item_id: int, now: datetime | None = None) -> list[dict]:
    now = now or utcnow()
    access.require(session, actor, entity, "view", get_item(session, entity, item_id))
    rows = session.execute(select(Activity).where(Activity.entity_type == entity, Activity.entity_id == item_id,
                                                  Activity.done.is_(False)).order_by(Activity.start_at)).scalars()
    return [{"id": a.id, "kind": a.kind, "subject": a.subject or "Дело", "at": fmt.dt_short(a.start_at, now),
             "overdue": a.start_at < now} for a in rows]



