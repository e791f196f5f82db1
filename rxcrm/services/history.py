"""/history: the CRM audit trail as a filterable, paginated table.

Who sees what: administrators and directors — everything; heads of department — records
made by a user of their department, or about an item (lead, deal, contact, company) of
their department, or about a user of their department; managers — nothing (AccessDenied).
The visibility is one SQL condition, so pages and totals agree. Titles, names and labels
are looked up in batches (one query per kind on a page); an item the actor may not view
shows only its number."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import and_, false, func, or_, select, true
from sqlmodel import Session

from rxcrm.models import AuditRecord, Contact, Department, Product, User, utcnow

from . import access, fmt
from .admin import ACTION_LABEL as ACT, ENTITY_LABEL as ENT, LEVEL_LABEL as LVL, ROLE_LABEL
from .context import Actor
from .entities import ENTITIES, href as entity_href
from .errors import AccessDenied, ValidationFailed
from .fields import MODELS, field_map
from .filters import day_bounds
from .rules_admin import KIND_LABEL as RULE_KIND

DENIED = "История доступна руководителям, директору и администратору"
PAGE_LIMIT_MAX = 200

ACTION_LABEL = {
    "create": "Создание", "update": "Изменение", "delete": "Удаление", "restore": "Восстановление",
    "move": "Смена стадии", "convert": "Конвертация", "close": "Завершение", "reopen": "Возврат в работу",
    "export": "Экспорт", "import": "Импорт", "import_undo": "Отмена импорта", "import_undone": "Импорт отменён",
    "view": "Просмотр",
    "login": "Вход", "logout": "Выход", "login_failed": "Неудачный вход",
    "link_contact": "Привязка контакта", "unlink_contact": "Отвязка контакта",
    "activity_planned": "Дело запланировано", "activity_done": "Дело выполнено",
    "activity_rescheduled": "Дело перенесено", "comment": "Комментарий", "email": "Письмо",
    "user_create": "Создание сотрудника", "user_update": "Изменение сотрудника",
    "user_deactivate": "Отключение сотрудника", "user_activate": "Включение сотрудника",
    "password_reset": "Сброс пароля", "reassign": "Передача элементов",
    "department_create": "Создание отдела", "department_update": "Изменение отдела",
    "permission_set": "Изменение прав", "permissions_reset": "Сброс прав к исходным",
    "rule_update": "Изменение правил", "token_create": "Выпуск токена интеграции",
    "token_revoke": "Отзыв токена интеграции", "intake_replay": "Повтор события интеграции",
    "intake_assign": "Назначение ответственного",
    "webhook_create": "Создание вебхука REST", "webhook_revoke": "Отзыв вебхука REST",
    "event_bind": "Подписка на событие", "event_unbind": "Отмена подписки на событие",
    "event_retry": "Повтор отправки события",
    "merge": "Объединение дубликатов", "unmerge": "Отмена объединения",
    "denied": "Отказ в доступе",
    # what a refused attempt tried (details["action"] of a "denied" row)
    "department_list": "Просмотр отделов", "permission_matrix": "Просмотр прав", "user_list": "Просмотр сотрудников",
    "user_item_counts": "Просмотр элементов сотрудника", "token_list": "Просмотр токенов",
    "intake_events": "Просмотр событий интеграций", "webhook_list": "Просмотр вебхуков REST",
    "event_list": "Просмотр исходящих событий",
}
# Codes that only name what a refused attempt tried (details of a "denied" row), never a row of their own.
REFUSAL_ONLY = frozenset({"department_list", "permission_matrix", "user_list", "user_item_counts", "token_list",
                          "intake_events", "webhook_list", "event_list"})
INTEGRATION_LABEL = {"marketplace": "Маркетплейс", "landing": "Лендинг", "education": "УС ДПО"}
RULE_OP = {"create": "добавлено", "update": "изменено", "delete": "удалено", "activate": "включено",
           "deactivate": "выключено"}
ENTITY_LABEL = {**{code: e.label for code, e in ENTITIES.items()}, "user": "Сотрудник", "department": "Отдел", "permission": "Права доступа", "analytics": "Аналитика",
                "rule": "Правило", "webhook": "Вебхук REST", "event_binding": "Исходящее событие"}
SOURCE_LABEL = {"ui": "Интерфейс", "intake": "Интеграция", "rule": "Правило", "system": "Система"}
WHO_BY_SOURCE = {"intake": "Интеграция", "rule": "Правило", "system": "Система", "ui": "Система"}
LOGIN_REASON = {"bad_password": "неверный пароль", "unknown_login": "неизвестный логин",
                "inactive": "учётная запись отключена", "rate_limited": "слишком много попыток"}
USER_FIELD = {"full_name": "ФИО", "email": "E-mail", "role": "Роль", "department_id": "Отдел",
              "name": "Название", "head_id": "Руководитель"}
ACTIVITY_KIND = {"call": "Звонок", "meeting": "Встреча", "task": "Задача", "email": "Письмо"}


def can_view(actor: Actor | None) -> bool:
    return actor is not None and actor.role in ("admin", "director", "head")


def _require(actor: Actor | None) -> None:
    if not can_view(actor):
        raise AccessDenied(DENIED)


def visibility(actor: Actor):
    """The SQL condition on audit_record rows the actor may see."""
    _require(actor)
    if actor.role in ("admin", "director"):
        return true()
    if actor.department_id is None:
        return AuditRecord.user_id == actor.user_id if actor.user_id else false()
    dept = actor.department_id
    dept_users = select(User.id).where(User.department_id == dept)
    conds = [AuditRecord.user_id.in_(dept_users),
             and_(AuditRecord.entity_type == "user", AuditRecord.entity_id.in_(dept_users)),
             and_(AuditRecord.entity_type == "department", AuditRecord.entity_id == dept)]
    for ent, model in MODELS.items():
        conds.append(and_(AuditRecord.entity_type == ent,
                          AuditRecord.entity_id.in_(select(model.id).where(model.department_id == dept))))
    return or_(*conds)


def _day(value, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return fmt.local(value).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValidationFailed(f"Неверная дата «{value}»: нужен формат ГГГГ-ММ-ДД", fields={name: "date"}) from None


def _conditions(actor: Actor, user_id, entity_type, action, date_from, date_to, entity_id) -> list:
    conds = [visibility(actor)]
    if user_id not in (None, "", 0, "0"):
        conds.append(AuditRecord.user_id == int(user_id))
    if entity_type:
        conds.append(AuditRecord.entity_type == entity_type)
    if entity_id not in (None, "", 0, "0"):
        conds.append(AuditRecord.entity_id == int(entity_id))
    if action:
        acts = [action] if isinstance(action, str) else list(action)
        conds.append(AuditRecord.action.in_(acts) if len(acts) > 1 else AuditRecord.action == acts[0])
    start, end = _day(date_from, "date_from"), _day(date_to, "date_to")
    if start and end and start > end:
        raise ValidationFailed("Дата «с» позже даты «по»", fields={"date_from": "Позже «по»"})
    if start:
        conds.append(AuditRecord.created_at >= day_bounds(start)[0])
    if end:
        conds.append(AuditRecord.created_at < day_bounds(end)[1])
    return conds


def history_page(session: Session, actor: Actor, *, user_id: int | None = None, entity_type: str | None = None,
                 action: str | list[str] | None = None, date_from=None, date_to=None,
                 entity_id: int | None = None, offset: int = 0, limit: int = 50,
                 now: datetime | None = None) -> tuple[list[dict], int]:
    """One page of the audit trail (newest first) and the total of the filtered set.

    Dates are Moscow days, inclusive (`date` objects or "YYYY-MM-DD"). Row keys: id, at,
    user, user_id, action, action_label, entity_type, entity_label, entity_id, title,
    href, details, source, source_label, client."""
    conds = _conditions(actor, user_id, entity_type, action, date_from, date_to, entity_id)
    limit = min(max(1, int(limit)), PAGE_LIMIT_MAX)
    total = session.execute(select(func.count()).select_from(AuditRecord).where(*conds)).scalar_one()
    recs = list(session.execute(select(AuditRecord).where(*conds)
                                .order_by(AuditRecord.created_at.desc(), AuditRecord.id.desc())
                                .offset(max(0, int(offset))).limit(limit)).scalars())
    return _rows(session, actor, recs, now or utcnow()), int(total)


# ---- rows -------------------------------------------------------------------------------

class _Lookups:
    """Names for a page of records, one query per kind."""

    def __init__(self, session: Session, actor: Actor, recs: list[AuditRecord]):
        self.session = session
        user_ids: set[int] = set()
        item_ids: dict[str, set[int]] = {e: set() for e in MODELS}
        dept_ids: set[int] = set()
        program_ids: set[int] = set()
        for r in recs:
            d = r.details or {}
            if r.user_id:
                user_ids.add(r.user_id)
            if r.entity_type in MODELS and r.entity_id:
                item_ids[r.entity_type].add(r.entity_id)
            elif r.entity_type == "user" and r.entity_id:
                user_ids.add(r.entity_id)
            elif r.entity_type == "department" and r.entity_id:
                dept_ids.add(r.entity_id)
            for key in ("contact_id", "old_contact_id"):
                if isinstance(d.get(key), int):
                    item_ids["contact"].add(d[key])
            changes = d.get("changes") if isinstance(d.get("changes"), dict) else {}
            for key, ch in changes.items():
                if not isinstance(ch, dict):
                    continue
                vals = [v for v in (ch.get("old"), ch.get("new")) if isinstance(v, int)]
                if key in ("responsible_id", "head_id"):
                    user_ids.update(vals)
                elif key == "program_id":
                    program_ids.update(vals)
                elif key == "department_id":
                    dept_ids.update(vals)
            if isinstance(d.get("to_user_id"), int):
                user_ids.add(d["to_user_id"])
            if r.action == "intake_assign" and isinstance(d.get("user_id"), int):
                user_ids.add(d["user_id"])
            if isinstance(d.get("department_id"), int):
                dept_ids.add(d["department_id"])
        self.users = self._pairs(User.id, User.full_name, user_ids)
        self.depts = self._pairs(Department.id, Department.name, dept_ids)
        self.programs = self._pairs(Product.id, Product.title, program_ids)
        # Items: titles only of those the actor may view; others show their number only.
        self.titles: dict[tuple[str, int], str] = {}
        for ent, ids in item_ids.items():
            if not ids:
                continue
            model = MODELS[ent]
            col = model.full_name if model is Contact else model.title
            stmt = select(model.id, col).where(model.id.in_(ids),
                                               access.scope(session, actor, model, ent, "view"))
            for iid, title in session.execute(stmt).all():
                self.titles[(ent, iid)] = title or f"№{iid}"
        self.fmaps: dict[str, dict] = {}
        self._stage_names: dict | None = None

    def _pairs(self, id_col, name_col, ids) -> dict:
        if not ids:
            return {}
        return dict(self.session.execute(select(id_col, name_col).where(id_col.in_(ids))).all())

    def fmap(self, entity: str) -> dict:
        if entity not in self.fmaps:
            self.fmaps[entity] = field_map(self.session, entity) if entity in MODELS else {}
        return self.fmaps[entity]

    def stage_names(self) -> dict:
        """{(pipeline code, stage code): name} and {(pipeline code, ""): pipeline name}, read once
        (rule rows name stages by code)."""
        if self._stage_names is None:
            from rxcrm.models import Pipeline, Stage
            pipes = dict(self.session.execute(select(Pipeline.id, Pipeline.code)).all())
            names = {(code, ""): name for code, name in self.session.execute(select(Pipeline.code, Pipeline.name))}
            for pid, code, name in self.session.execute(select(Stage.pipeline_id, Stage.code, Stage.name)):
                names[(pipes.get(pid, ""), code)] = name
            self._stage_names = names
        return self._stage_names

    def item(self, entity: str, item_id) -> str:
        return self.titles.get((entity, item_id), f"№{item_id}" if item_id else "")


def _rows(session: Session, actor: Actor, recs: list[AuditRecord], now: datetime) -> list[dict]:
    look = _Lookups(session, actor, recs)
    out = []
    for r in recs:
        d = r.details or {}
        ent = r.entity_type or ""
        visible = (ent, r.entity_id) in look.titles
        if ent in MODELS:
            title = look.item(ent, r.entity_id)
            href = entity_href(ent, r.entity_id) if visible else ""
        elif ent == "user":
            title = look.users.get(r.entity_id, "") or (d.get("login") or "")
            href = ""
        elif ent == "department":
            title = look.depts.get(r.entity_id, "") or d.get("name", "")
            href = ""
        elif ent == "rule":
            title, href = _rule_title(d, look), ""
        else:
            title, href = "", ""
        if r.user_id:
            who = look.users.get(r.user_id, f"№{r.user_id}")
        elif r.action == "login_failed":
            who = f"логин «{d.get('login', '')}»"
        else:
            who = WHO_BY_SOURCE.get(r.source, "Система")
        out.append({
            "id": r.id, "at": fmt.dt_short(r.created_at, now), "user": who, "user_id": r.user_id or 0,
            "action": r.action, "action_label": ACTION_LABEL.get(r.action, r.action),
            "entity_type": ent, "entity_label": ENTITY_LABEL.get(ent, ent),
            "entity_id": r.entity_id or 0, "title": title, "href": href,
            "details": _details(r, d, look, now)[:500],
            "source": r.source, "source_label": SOURCE_LABEL.get(r.source, r.source), "client": r.client or "",
        })
    return out


def _num(value) -> str:
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return fmt.number(dec.quantize(Decimal(1)) if dec == dec.to_integral() else dec)


def _value(value, fd, look: _Lookups, key: str) -> str:
    if value is None or value == "":
        return "пусто"
    kind = fd.kind if fd is not None else ""
    if key in ("responsible_id", "head_id") or kind == "user":
        return look.users.get(value, f"№{value}")
    if kind == "program":
        return look.programs.get(value, f"№{value}")
    if key == "department_id":
        return look.depts.get(value, f"№{value}")
    if key == "role":
        return ROLE_LABEL.get(value, str(value))
    if kind in ("money", "number") or (kind == "int" and isinstance(value, (int, float))):
        return _num(value)
    if kind == "date" and isinstance(value, str):
        try:
            return fmt.date_short(date.fromisoformat(value[:10]))
        except ValueError:
            return value
    if isinstance(value, bool):
        return "Да" if value else "Нет"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _changes(ent: str, changes: dict, look: _Lookups) -> str:
    fmap = look.fmap(ent)
    parts = []
    for key, ch in changes.items():
        if not isinstance(ch, dict):
            continue
        fd = fmap.get(key)
        label = fd.label if fd is not None else USER_FIELD.get(key, key)
        parts.append(f"{label}: {_value(ch.get('old'), fd, look, key)} → {_value(ch.get('new'), fd, look, key)}")
    return "; ".join(parts)


def _details(r: AuditRecord, d: dict, look: _Lookups, now: datetime) -> str:
    a = r.action
    client = f"адрес {r.client or d.get('client')}" if (r.client or d.get("client")) else ""
    if a in ("update", "user_update", "department_update") and isinstance(d.get("changes"), dict):
        text = _changes(r.entity_type, d["changes"], look)
        return text + (" (массовая передача)" if d.get("bulk") == "reassign" else "")
    if a in ("move", "reopen"):
        return f"{d.get('from', '—') or '—'} → {d.get('to', '—') or '—'}"
    if a == "create":
        if r.entity_type in ("lead", "deal"):
            return ", ".join(str(x) for x in (d.get("pipeline"), d.get("stage"), d.get("source")) if x)
        return ""
    if a == "convert":
        parts = []
        if d.get("deal"):
            parts.append(f"сделка «{d['deal']}»")
        if d.get("contact"):
            parts.append(f"контакт {d['contact']}")
        if d.get("company"):
            parts.append(f"компания «{d['company']}»")
        return ", ".join(parts)
    if a == "close":
        text = str(d.get("stage") or ("Успешно" if d.get("won") else ""))
        return text + (f": {d['reason']}" if d.get("reason") else "")
    if a == "export" and r.entity_type == "analytics":
        per = d.get("period") if isinstance(d.get("period"), dict) else {}
        return f"отчёт за {per.get('from', '')} — {per.get('to', '')}"
    if a == "import" and "job_id" in d:
        return (f"№{d['job_id']} «{d.get('file', '')}»: создано {_num(d.get('created', 0))}, "
                f"обновлено {_num(d.get('updated', 0))}, пропущено {_num(d.get('skipped', 0))}, "
                f"с ошибками {_num(d.get('rejected', 0))}")
    if a in ("import_undo", "import_undone"):
        text = f"импорт №{d.get('job_id', '')}" + (f" «{d['file']}»" if d.get("file") else "")
        return text + (f" · оставлены как есть: {_num(d['kept'])}" if d.get("kept") else "")
    if a in ("export", "import"):
        text = f"строк: {_num(d.get('rows', 0))}"
        filters = d.get("filters") if isinstance(d.get("filters"), dict) else {}
        if filters:
            text += " · фильтр: " + _filters_text(r.entity_type, filters, look)
        return text
    if a in ("login", "logout"):
        return client
    if a == "login_failed":
        reason = LOGIN_REASON.get(d.get("reason", ""), d.get("reason", ""))
        return ", ".join(x for x in (reason, client) if x)
    if a == "denied":
        tried = ACTION_LABEL.get(str(d.get("action", "")), str(d.get("action", "")))
        return "; ".join(x for x in (f"попытка: {tried}" if tried else "", str(d.get("reason") or "")) if x)
    if a in ("link_contact", "unlink_contact"):
        cid = d.get("contact_id")
        return f"контакт {look.item('contact', cid)}" if cid else ""
    if a == "activity_planned":
        return " ".join(x for x in (ACTIVITY_KIND.get(d.get("kind", ""), ""), d.get("subject", "")) if x)
    if a == "activity_done":
        return str(d.get("result", "") or "")
    if a == "activity_rescheduled":
        try:
            return (f"{fmt.dt_short(datetime.fromisoformat(d['from']), now)} → "
                    f"{fmt.dt_short(datetime.fromisoformat(d['to']), now)}")
        except (KeyError, TypeError, ValueError):
            return ""
    if a == "email":
        return ", ".join(x for x in (f"кому: {d['to']}" if d.get("to") else "", d.get("subject", "")) if x)
    if a == "user_create":
        dept = look.depts.get(d.get("department_id"), "")
        return ", ".join(x for x in (f"логин {d.get('login', '')}", ROLE_LABEL.get(d.get("role"), ""), dept) if x)
    if a in ("user_deactivate", "password_reset"):
        return f"завершено сеансов: {d.get('sessions', 0)}"
    if a == "reassign":
        counts = d.get("counts") or {}
        names = {"lead": "лидов", "deal": "сделок", "contact": "контактов", "company": "компаний",
                 "activities": "дел"}
        parts = [f"{names[k]}: {counts[k]}" for k in names if counts.get(k)]
        to = look.users.get(d.get("to_user_id"), d.get("to", ""))
        return f"→ {to}" + (": " + ", ".join(parts) if parts else ": нечего передавать")
    if a == "permission_set":
        return (f"{ROLE_LABEL.get(d.get('role'), d.get('role'))} · {ENT.get(d.get('entity'), d.get('entity'))} · "
                f"{ACT.get(d.get('action'), d.get('action'))}: {LVL.get(d.get('old'), d.get('old'))} → "
                f"{LVL.get(d.get('new'), d.get('new'))}")
    if a == "permissions_reset":
        return f"изменено ячеек: {d.get('changed', 0)}"
    if a == "department_create":
        return str(d.get("name", ""))
    if a == "intake_assign":
        who = look.users.get(d.get("user_id"))
        text = f"{INTEGRATION_LABEL.get(d.get('integration'), d.get('integration') or 'Интеграция')} → " \
               f"{fmt.short_name(who) if who else 'никому'}"
        return text + (f" ({d['how']})" if d.get("how") else "")
    if a == "rule_update":
        snap = d.get("new") or d.get("old") or {}
        op = RULE_OP.get(d.get("op", ""), d.get("op", ""))
        kind = RULE_KIND.get(snap.get("kind", ""), "")
        return " · ".join(x for x in (f"Правило {op}" if op else "", kind) if x)
    return ""


def _rule_title(d: dict, look: _Lookups) -> str:
    """A rule as the history names it: its name, or «Воронка · Стадия» (by their names)."""
    snap = d.get("new") or d.get("old") or {}
    if not isinstance(snap, dict):
        return ""
    if snap.get("name"):
        return str(snap["name"])
    names = look.stage_names()
    pipe, stage = snap.get("pipeline_code", ""), snap.get("stage_code", "")
    return " · ".join(x for x in (names.get((pipe, ""), pipe), names.get((pipe, stage), stage)) if x)


def _filters_text(entity: str, filters: dict, look: _Lookups) -> str:
    fmap = look.fmap(entity)
    parts = []
    for key, value in filters.items():
        label = "поиск" if key == "q" else (fmap[key].label if key in fmap else key)
        if isinstance(value, dict):
            value = "…".join(str(value.get(k, "")) for k in ("from", "to"))
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value[:5]) + (" …" if len(value) > 5 else "")
        parts.append(f"{label}: {value}")
    return "; ".join(parts)


# ---- filter options for the page -------------------------------------------------------------

MAIN_ACTIONS = ("create", "update", "delete", "restore", "move", "convert", "close", "reopen", "export",
                "import", "import_undo", "import_undone", "view", "login", "logout", "login_failed", "link_contact",
                "unlink_contact",
                "activity_planned", "activity_done", "activity_rescheduled", "comment", "email",
                "user_create", "user_update", "user_deactivate", "user_activate", "password_reset", "reassign",
                "department_create", "department_update", "permission_set", "permissions_reset", "rule_update",
                "token_create", "token_revoke", "intake_replay", "intake_assign", "webhook_create", "webhook_revoke",
                "event_bind", "event_unbind", "event_retry", "merge", "unmerge", "denied")


def history_actions() -> list[tuple[str, str]]:
    """(code, label) of every action the trail records, in a sensible order."""
    return [(a, ACTION_LABEL[a]) for a in MAIN_ACTIONS]


def history_entities() -> list[tuple[str, str]]:
    return list(ENTITY_LABEL.items())


def history_filters_options(session: Session, actor: Actor) -> dict:
    """What the filter bar offers: {"users": [(id, name)], "actions": [...], "entities": [...]}.
    Users: everyone for admins and directors; a head's own department (plus themselves)."""
    _require(actor)
    stmt = select(User.id, User.full_name, User.is_active).order_by(User.is_active.desc(), User.full_name)
    if actor.role == "head":
        stmt = stmt.where(or_(User.department_id == actor.department_id, User.id == actor.user_id)
                          if actor.department_id is not None else User.id == actor.user_id)
    users = [(i, n if active else f"{n} (отключён)") for i, n, active in session.execute(stmt).all()]
    return {"users": users, "actions": history_actions(), "entities": history_entities()}


__all__ = ["ACTION_LABEL", "DENIED", "ENTITY_LABEL", "SOURCE_LABEL", "can_view", "history_actions",
           "history_entities", "history_filters_options", "history_page", "visibility"]
