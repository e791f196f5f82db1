"""The card page's read side: header, field blocks, links and the timeline (Лента).

Opening a card is audited (the history records who looked at what, not only changes)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlmodel import Session

from rxcrm.models import Activity, Company, Contact, Deal, Lead, Pipeline, Product, TimelineEvent, User, utcnow

from . import access, audit, catalogs, fmt, listing
from .context import Actor
from .fields import field_map
from .records import get_item

TIMELINE_PAGE = 30
KIND_LABEL = {
    "created": "Создание", "stage_changed": "Смена стадии", "field_changed": "Изменение поля",
    "activity_planned": "Запланировано дело", "activity_done": "Дело выполнено", "comment": "Комментарий",
    "email": "Письмо", "converted": "Конвертация", "closed": "Завершение", "deleted": "Удаление",
    "restored": "Восстановление", "activity_rescheduled": "Дело перенесено",
    "repeat_detected": "Повторное обращение", "reopened": "Возврат в работу",
    "contact_linked": "Привязан контакт", "contact_unlinked": "Контакт отвязан",
    "automation": "Автоматизация", "merged": "Объединение", "unmerged": "Отмена объединения",
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


def open_card(session: Session, actor: Actor, entity: str, item_id: int, now: datetime | None = None,
              audited: bool = True) -> dict:
    """Everything the card shows except the timeline. Raises NotFound / AccessDenied.
    Opening is audited; a refresh of an open card (live updates) is not (`audited=False`)."""
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
    if audited:
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
            "responsible_id": item.responsible_id or 0,
            "updated_by": _user_name(session, getattr(item, "updated_by_id", None)),
            "updated_at": fmt.dt_short(getattr(item, "updated_at", None), now)}


def _user_name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return fmt.short_name(user.full_name) if user else ""


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
    look = _Names(session, entity, getattr(item, "pipeline_id", None), rows)
    return [_event(r, look, now) for r in rows], more


# ---- the timeline in words: values as people read them ------------------------------------
# A field change stores raw values (ids, numbers, ISO dates: data {"field", "label", "old",
# "new"}); the Лента shows «Ответственный: Петров А. И. → Иванова М. О.», «Программа: пусто →
# Цифровой маркетинг», «Сумма: 47 025 ₽ → 48 000 ₽». Names are looked up once per page.

EMPTY = "пусто"
ID_KINDS = {"user": (User, User.full_name), "program": (Product, Product.title), "contact": (Contact, Contact.full_name),
            "company": (Company, Company.title), "pipeline": (Pipeline, Pipeline.name)}
ID_NOUN = {"user": "сотрудник", "program": "программа", "contact": "контакт", "company": "компания",
           "pipeline": "воронка"}
ACTIVITY_KIND = {"call": "Звонок", "meeting": "Встреча", "task": "Задача", "email": "Письмо"}
MAX_VALUE = 200


class _Names:
    """Kinds of the entity's fields and the names of every id a page of events mentions
    (one query per kind of name)."""

    def __init__(self, session: Session, entity: str, pipeline_id: int | None, rows: list[TimelineEvent]):
        self.fmap = field_map(session, entity, pipeline_id) if entity in ("lead", "deal", "contact", "company") else {}
        ids: dict[str, set[int]] = {k: set() for k in ID_KINDS}
        ids["user"].update(r.user_id for r in rows if r.user_id)
        for r in rows:
            d = r.data or {}
            if r.kind == "field_changed":
                kind = self.kind(d.get("field", ""))
                if kind in ids:
                    ids[kind].update(v for v in (d.get("old"), d.get("new")) if _is_id(v))
            elif r.kind == "activity_planned" and _is_id(d.get("responsible_id")):
                ids["user"].add(d["responsible_id"])
        self.names: dict[str, dict[int, str]] = {}
        for kind, found in ids.items():
            model, col = ID_KINDS[kind]
            self.names[kind] = dict(session.execute(select(model.id, col).where(model.id.in_(found))).all()) \
                if found else {}

    def kind(self, key: str) -> str:
        fd = self.fmap.get(key)
        if fd is not None:
            return fd.kind
        return "user" if key == "responsible_id" else ""

    def user(self, user_id) -> str:
        return self.names["user"].get(user_id, "")


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def value_text(value, kind: str, names: dict[int, str] | None = None, fallback: str = "") -> str:
    """One value of a field as the card shows it (Russian formats, names for ids)."""
    if value is None or value == "" or value == []:
        return EMPTY
    if kind in ID_KINDS:
        name = (names or {}).get(value) if _is_id(value) else None
        if name:
            return fmt.short_name(name) if kind == "user" else name
        return fallback or (f"{ID_NOUN[kind]} №{value}" if _is_id(value) else str(value))
    if isinstance(value, bool) or kind == "bool":
        if value in (True, "Да", "да", "true", 1):
            return "Да"
        if value in (False, "Нет", "нет", "false", 0):
            return "Нет"
    try:
        if kind == "money":
            return fmt.money(Decimal(str(value)))
        if kind in ("number", "int"):
            num = Decimal(str(value))
            return fmt.number(num.quantize(Decimal(1)) if num == num.to_integral() else num)
    except (InvalidOperation, ValueError):
        pass
    if kind in ("date", "datetime") and isinstance(value, str):
        try:
            if kind == "date" or len(value) == 10:
                return fmt.date_short(date.fromisoformat(value[:10]))
            return fmt.dt_short(datetime.fromisoformat(value))
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


def _field_text(d: dict, look: _Names) -> str:
    key = d.get("field", "")
    kind = look.kind(key)
    names = look.names.get(kind)
    label = d.get("label") or (look.fmap[key].label if key in look.fmap else key)
    old = value_text(d.get("old"), kind, names, d.get("old_text", ""))
    new = value_text(d.get("new"), kind, names, d.get("new_text", ""))
    return f"{label}: {old} → {new}"


def _activity_text(d: dict, look: _Names, now: datetime) -> str:
    parts = [ACTIVITY_KIND.get(d.get("kind", ""), ""), d.get("subject", "")]
    if d.get("start"):
        try:
            parts.append(fmt.dt_short(datetime.fromisoformat(d["start"]), now))
        except (TypeError, ValueError):
            pass
    who = look.user(d.get("responsible_id"))
    if who:
        parts.append(fmt.short_name(who))
    return " · ".join(p for p in parts if p)


def _event(ev: TimelineEvent, look: _Names, now: datetime) -> dict:
    d = ev.data or {}
    if ev.kind == "stage_changed":
        text = f"{d.get('from', '—')} → {d.get('to', '—')}"
    elif ev.kind == "field_changed":
        text = _field_text(d, look)
    elif ev.kind in ("comment", "email"):
        text = d.get("text", "")
    elif ev.kind == "activity_planned":
        text = _activity_text(d, look, now)
    elif ev.kind == "activity_done":
        text = " — ".join(x for x in (d.get("subject", ""), d.get("result", "")) if x)
    else:
        text = d.get("text", "")
    who = look.user(ev.user_id) or ("Правило «" + ev.rule + "»" if ev.rule else "Система")
    return {"id": ev.id, "kind": ev.kind, "label": KIND_LABEL.get(ev.kind, ev.kind), "text": text,
            "who": who, "rule": ev.rule, "at": fmt.dt_short(ev.created_at, now)}


# ---- fields a person fills in a dialog: each kind with its own control ---------------------

def field_inputs(session: Session, actor: Actor, rows: list[dict]) -> list[dict]:
    """`rows` ({key, label, kind, options, value} — a stage's missing fields, a block in edit)
    with `choices` [(value, label)] for the kinds chosen from a list: programs (active ones,
    plus the current one), users who may be responsible (plus the current one), an enum's
    options, Да/Нет. Other kinds get []."""
    kinds = {r.get("kind") for r in rows}
    programs = catalogs.programs(session) if "program" in kinds else []
    users = catalogs.assignable_users(session) if "user" in kinds else []
    out = []
    for r in rows:
        kind, value = r.get("kind", "text"), str(r.get("value") or "")
        if kind == "program":
            choices = _with_current(session, programs, value, Product, Product.title)
        elif kind == "user":
            choices = _with_current(session, users, value, User, User.full_name)
        elif kind == "enum":
            choices = [(o, o) for o in r.get("options") or []]
        elif kind == "bool":
            choices = [("Да", "Да"), ("Нет", "Нет")]
        else:
            choices = []
        out.append({**r, "value": value, "choices": [(str(v), str(lab)) for v, lab in choices]})
    return out


def _with_current(session: Session, pairs: list, value: str, model, col) -> list:
    """The list plus the item's current value when it is no longer offered (an archived
    program, a switched-off user), so the control still shows it."""
    if value.isdigit() and all(str(i) != value for i, _ in pairs):
        name = session.execute(select(col).where(model.id == int(value))).scalar()
        if name:
            return [(int(value), name), *pairs]
    return pairs


def planned(session: Session, actor: Actor, entity: str, item_id: int, now: datetime | None = None) -> list[dict]:
    now = now or utcnow()
    access.require(session, actor, entity, "view", get_item(session, entity, item_id))
    rows = session.execute(select(Activity).where(Activity.entity_type == entity, Activity.entity_id == item_id,
                                                  Activity.done.is_(False)).order_by(Activity.start_at)).scalars()
    return [{"id": a.id, "kind": a.kind, "subject": a.subject or "Дело", "at": fmt.dt_short(a.start_at, now),
             "overdue": a.start_at < now, "date": fmt.date_input(a.start_at), "time": fmt.time_input(a.start_at)}
            for a in rows]



