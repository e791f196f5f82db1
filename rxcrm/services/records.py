"""What every write service needs of an item, in one leaf module (it imports no other
service): find it, mark it changed, set a field, write a line of its timeline, read
titles. items, create, conversion, activities, intake, recycle and the rules engine all
use this public API instead of each other's private helpers."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import object_session
from sqlmodel import Session

from rxcrm.models import TimelineEvent, utcnow
from rxcrm.models.base import new_row

from .context import Actor
from .entities import ENTITIES, MODELS
from .errors import NotFound

_TOUCHED_BY = "rxcrm_touched_by"  # session.info: {(model, id): user id} of people's changes in this unit


def get_item(session: Session, entity: str, item_id: int):
    """A live (not deleted) item, or NotFound naming it («Сделка №17 не найдена»)."""
    item = session.get(MODELS[entity], item_id)
    if item is None or item.deleted_at is not None:
        raise NotFound(ENTITIES[entity].not_found(item_id))
    return item


def touch(item, actor: Actor) -> None:
    """Mark a change of the card: who/when, and the version grows by one — the only place
    that bumps it (the mapper only guards writes with it, see models.crm._Tracked).

    A rule's change that follows a person's change of the same item in the same unit of
    work (an on-enter rule after a move, a trigger after an edit) keeps that person as the
    one who changed the card last: the conflict notice names them, not «другой пользователь»."""
    item.updated_at = utcnow()
    session = object_session(item)
    people = session.info.setdefault(_TOUCHED_BY, {}) if session is not None else {}
    key = (type(item).__name__, item.id)
    if actor.user_id is not None or key not in people:
        item.updated_by_id = actor.user_id
        if actor.user_id is not None:
            people[key] = actor.user_id
    item.version = (item.version or 0) + 1


def timeline(session: Session, actor: Actor, entity: str, item_id: int, kind: str, data: dict,
             rule: str = "") -> None:
    """One line of the item's Лента; a rule's change names the rule."""
    session.add(new_row(TimelineEvent, entity_type=entity, entity_id=item_id, kind=kind, user_id=actor.user_id,
                        rule=rule or ("" if actor.source != "rule" else actor.login), data=data))


def value_of(item, key: str):
    """A field's value by its catalog key (custom fields as "custom.<code>")."""
    if key.startswith("custom."):
        return (item.custom or {}).get(key.split(".", 1)[1])
    return getattr(item, key, None)


def set_value(item, key: str, value) -> None:
    """Set a field by its catalog key; a custom field set to None loses its key."""
    if key.startswith("custom."):
        custom = dict(item.custom or {})
        code = key.split(".", 1)[1]
        if value is None:
            custom.pop(code, None)
        else:
            custom[code] = value
        item.custom = custom
    else:
        setattr(item, key, value)


def plain(value):
    """A value as timeline/audit JSON keeps it (money as a number, a date as ISO text)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def titles(session: Session, pairs) -> dict[tuple[str, int], str]:
    """{(entity, id): title} for (entity, id) pairs, one query per item kind."""
    by_kind: dict[str, set[int]] = {}
    for ent, iid in pairs:
        if ent in MODELS and iid:
            by_kind.setdefault(ent, set()).add(iid)
    out = {}
    for ent, ids in by_kind.items():
        model = MODELS[ent]
        col = model.full_name if ent == "contact" else model.title
        for iid, title in session.execute(select(model.id, col).where(model.id.in_(ids))).all():
            out[(ent, iid)] = title
    return out


def title_of(item) -> str:
    return getattr(item, "title", None) or getattr(item, "full_name", "") or f"№{item.id}"


__all__ = ["get_item", "plain", "set_value", "timeline", "title_of", "titles", "touch", "value_of"]
