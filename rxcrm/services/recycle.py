"""The recycle bin (/settings → Корзина): soft-deleted leads, deals, contacts, companies.

`items.delete_item` only sets `deleted_at`; the item, its timeline, activities, phones
and history stay. Here they are listed (admins: all; heads: their department) and
restored (the timeline gets a "restored" event, the audit a "restore" record). Restoring a
contact or company that a merge of duplicates deleted undoes that merge (`merge.undo`)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, literal, select, union_all
from sqlmodel import Session

from rxcrm.models import Department, User, utcnow

from . import audit, entities, fmt, items, merge, records
from .context import Actor
from .errors import AccessDenied, NotFound, ValidationFailed
from .fields import MODELS

ENTITIES = entities.ITEM_ENTITIES
DENIED = "Корзина доступна руководителям отделов и администратору"


def can_view(actor: Actor | None) -> bool:
    """Whether the bin is for this actor at all (admins; heads with a department)."""
    return actor is not None and (actor.role == "admin" or (actor.role == "head" and actor.department_id is not None))


def _dept_scope(actor: Actor) -> int | None:
    """None = everything (admin); a department id (head); AccessDenied for other roles."""
    if actor.role == "admin":
        return None
    if actor.role == "head" and actor.department_id is not None:
        return actor.department_id
    raise AccessDenied(DENIED)


def _title_col(entity: str):
    model = MODELS[entity]
    return model.full_name if entity == "contact" else model.title


def deleted_items(session: Session, actor: Actor, entity: str | None = None, offset: int = 0,
                  limit: int = 50, now: datetime | None = None) -> tuple[list[dict], int]:
    """One page of the bin, most recently deleted first, and the total.

    Rows: entity, entity_label, id, title, deleted_at (text), deleted_by, responsible,
    department, href (the card — it answers «не найден» until restored)."""
    dept = _dept_scope(actor)
    if entity and entity not in MODELS:
        raise ValidationFailed(f"Неизвестный раздел «{entity}»")
    parts = []
    for ent in ([entity] if entity else ENTITIES):
        model = MODELS[ent]
        conds = [model.deleted_at.is_not(None)]
        if dept is not None:
            conds.append(model.department_id == dept)
        parts.append(select(literal(ent).label("entity"), model.id.label("id"),
                            _title_col(ent).label("title"), model.deleted_at.label("deleted_at"),
                            model.updated_by_id.label("deleted_by"), model.responsible_id.label("responsible_id"),
                            model.department_id.label("department_id")).where(*conds))
    u = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
    total = session.execute(select(func.count()).select_from(u)).scalar_one()
    rows = session.execute(select(u).order_by(u.c.deleted_at.desc(), u.c.id.desc())
                           .offset(max(0, offset)).limit(max(1, limit))).all()
    uids = {r.deleted_by for r in rows if r.deleted_by} | {r.responsible_id for r in rows if r.responsible_id}
    users = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(uids))).all()) if uids else {}
    depts = dict(session.execute(select(Department.id, Department.name)).all())
    now = now or utcnow()
    out = [{"entity": r.entity, "entity_label": entities.label(r.entity), "id": r.id,
            "title": r.title or f"№{r.id}", "deleted_at": fmt.dt_short(r.deleted_at, now),
            "deleted_by": users.get(r.deleted_by, ""), "responsible": users.get(r.responsible_id, ""),
            "department": depts.get(r.department_id, ""), "href": entities.href(r.entity, r.id)}
           for r in rows]
    return out, int(total)


def restore(session: Session, actor: Actor, entity: str, item_id: int):
    """Take an item out of the bin (admins: any; heads: their department's). Its timeline,
    activities and links are as they were; a "restored" event is added. An item merged away
    into another (services/merge.py) takes back what the merge moved to the survivor."""
    if entity not in MODELS:
        raise ValidationFailed(f"Неизвестный раздел «{entity}»")
    dept = _dept_scope(actor)
    item = session.get(MODELS[entity], item_id)
    if item is None:
        raise NotFound(entities.get(entity).not_found(item_id))
    if dept is not None and item.department_id != dept:
        raise AccessDenied("Нет доступа: элемент другого отдела")
    if item.deleted_at is None:
        raise ValidationFailed("Элемент не в корзине", code="not_deleted")
    deleted_at, item.deleted_at = item.deleted_at, None
    records.touch(item, actor)
    session.add(item)
    merge.undo(session, actor, entity, item)
    title = getattr(item, "title", None) or getattr(item, "full_name", "")
    records.timeline(session, actor, entity, item.id, "restored", {"text": "Восстановлено из корзины"})
    audit.record(session, actor, "restore", entity, item.id,
                 {"title": title, "deleted_at": deleted_at.isoformat() if deleted_at else None})
    return item


def restore_many(session: Session, actor: Actor, entity: str, ids: list[int]) -> items.BulkResult:
    """Restore several items; one refusal does not undo the others (per-item savepoints)."""
    _dept_scope(actor)
    return items.bulk(session, ids, lambda i: restore(session, actor, entity, i))


__all__ = ["DENIED", "can_view", "deleted_items", "restore", "restore_many"]
