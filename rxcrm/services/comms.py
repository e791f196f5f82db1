"""Phones and e-mails of an item (Bitrix24's multi-fields): add, change or remove one value
by its id — the REST API's `PHONE: [{"VALUE": …}, {"ID": 5, "VALUE": …}, {"ID": 6, "DELETE": "Y"}]`.

Values are validated like everywhere else (create.clean_phones / clean_emails: a phone of
at least 10 digits, a well-formed e-mail); one bad value refuses the whole change, nothing
is written. Values not mentioned stay. The change is on the card's timeline, bumps its
version and keeps the free-text search in step."""
from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from rxcrm.models import Communication

from . import access, events
from .create import clean_emails, clean_phones
from .errors import ValidationFailed
from .phones import comm_row, search_text
from .records import get_item, timeline, touch

KINDS = ("phone", "email")
VALUE_TYPES = {"phone": ("work", "mobile", "fax", "home", "pager", "mailing", "other"),
               "email": ("work", "home", "mailing", "other")}


@dataclass(frozen=True)
class Op:
    """One change: `id` None adds `value`; with an id, `value` replaces it, or `delete`
    (or an empty value) removes it. `value_type`: work, mobile, home…"""
    id: int | None = None
    value: str = ""
    value_type: str = ""
    delete: bool = False


def of(session: Session, entity: str, ids: list[int], kind: str | None = None) -> dict[int, list[Communication]]:
    """The phones/e-mails of many items, in the order they were added."""
    if not ids:
        return {}
    q = select(Communication).where(Communication.entity_type == entity, Communication.entity_id.in_(ids))
    if kind:
        q = q.where(Communication.kind == kind)
    out: dict[int, list[Communication]] = {}
    for c in session.exec(q.order_by(Communication.id)).all():
        out.setdefault(c.entity_id, []).append(c)
    return out


def _vtype(kind: str, value_type: str, default: str = "work") -> str:
    vt = (value_type or "").strip().lower()
    if not vt:
        return default
    if vt not in VALUE_TYPES[kind]:
        raise ValidationFailed(f"Тип «{value_type}» не подходит: {', '.join(t.upper() for t in VALUE_TYPES[kind])}",
                               fields={kind: value_type})
    return vt


def change(session: Session, actor, entity: str, item_id: int, kind: str, ops: list[Op], *,
           item=None) -> bool:
    """Apply `ops` to the item's `kind` values (the actor must be allowed to edit it).
    True when something changed."""
    if kind not in KINDS or entity not in _SEARCHED:
        raise ValueError(f"{entity} has no {kind}")
    item = item or get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    current = {c.id: c for c in of(session, entity, [item.id], kind).get(item.id, [])}
    clean = clean_phones if kind == "phone" else clean_emails
    added, removed, changed = [], [], []
    for op in ops:
        if op.id is not None and op.id not in current:
            raise ValidationFailed(f"{'Телефон' if kind == 'phone' else 'E-mail'} №{op.id} не найден у этой записи",
                                   fields={kind: str(op.id)})
        if op.id is not None and (op.delete or not (op.value or "").strip()):
            removed.append(current[op.id])
            continue
        value = clean([(op.value, "work")])
        if not value:
            continue
        value_type = _vtype(kind, op.value_type, current[op.id].value_type if op.id is not None else "work")
        if op.id is None:
            added.append((value[0][0], value_type))
        else:
            changed.append((current[op.id], value[0][0], value_type))
    if not (added or removed or changed):
        return False
    old = [c.value for c in current.values()]
    for c in removed:
        session.delete(c)
    for c, value, value_type in changed:
        row = comm_row(entity, item.id, kind, value, value_type)
        c.value, c.norm, c.norm_rev, c.value_type = row["value"], row["norm"], row["norm_rev"], value_type
        session.add(c)
    for value, value_type in added:
        session.add(Communication(**comm_row(entity, item.id, kind, value, value_type)))
    session.flush()
    new = [c.value for c in of(session, entity, [item.id], kind).get(item.id, [])]
    if old == new and not changed:
        return False
    _refresh_search(session, entity, item)
    touch(item, actor)
    session.add(item)
    label = "Телефон" if kind == "phone" else "E-mail"
    timeline(session, actor, entity, item.id, "field_changed",
             {"field": kind, "label": label, "old": ", ".join(old), "new": ", ".join(new)})
    events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=entity, item=item,
                   changes={kind: (", ".join(old), ", ".join(new))})
    return True


_SEARCHED = {"lead": ("title", "last_name", "first_name", "middle_name", "company_title"),
             "contact": ("full_name",), "company": ("title", "inn")}


def _refresh_search(session: Session, entity: str, item) -> None:
    """search_text as the create service builds it: the names, then the e-mails."""
    emails = [c.value for c in of(session, entity, [item.id], "email").get(item.id, [])]
    item.search_text = search_text(*(getattr(item, a, "") or "" for a in _SEARCHED[entity]), *emails)


__all__ = ["KINDS", "Op", "change", "of"]
