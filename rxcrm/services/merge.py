"""Duplicates (/settings → Дубликаты): contacts or companies that share a phone or an e-mail,
and their merge into one — Bitrix24's duplicate control.

- `duplicate_groups` — one page of groups: a (kind, norm) of `communication` that more than
  one live item of the entity carries, found by one GROUP BY … HAVING over the index
  (kind, norm), within what the actor may see (`access.scope`), with the group's items
  (name, company, responsible, created, deals and leads) read for that page only.
- `merge_preview` — the fields where the items differ, each item's value, a default choice.
- `merge` — the survivor takes the chosen value field by field, the phones and e-mails of
  all (without duplicates by `norm`), and every deal, lead (and, for a company, contact),
  activity, comment and timeline entry of the merged-away items; those are soft-deleted
  (the recycle bin), the merge is on the timelines and in the audit. Admins and heads only,
  with edit on the survivor and delete on each merged item.
- `undo` — called by `recycle.restore` when a merged-away item comes back: what the merge
  moved from it (still where the merge put it) goes back, and the survivor's fields that took
  its value get their old value again unless they were changed since (`merge_record`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, select, update
from sqlmodel import Session

from rxcrm.models import (Activity, Comment, Communication, Company, Contact, Deal, Lead, MergeRecord, TimelineEvent,
                          User, utcnow)

from . import access, audit, entities, events, fmt
from .context import Actor
from .errors import AccessDenied, ValidationFailed
from .fields import custom_defs
from .items import Conflict
from .phones import search_text
from .records import get_item, plain, set_value, timeline, title_of, touch, value_of

MERGEABLE = ("contact", "company")
ROLES = ("admin", "head")
DENIED = "Объединять дубликаты могут администратор и руководители отделов"
MAX_ITEMS = 20       # items of a group shown (and merged at once) at most
MAX_PAGE = 100       # groups per page at most
KINDS = ("phone", "email")

# How items point at a contact / a company: (model, entity, column)
_LINKS = {
    "contact": ((Deal, "deal", "contact_id"), (Lead, "lead", "contact_id")),
    "company": ((Deal, "deal", "company_id"), (Lead, "lead", "company_id"), (Contact, "contact", "company_id")),
}
_LINK_LABEL = {"contact_id": "Контакт", "company_id": "Компания"}


@dataclass(frozen=True)
class MergeField:
    """A field a merge chooses: `columns` set together (the name of a contact: its parts and
    `full_name`); `kind` says how its value is shown."""
    key: str
    label: str
    label_en: str
    kind: str = "text"
    columns: tuple[str, ...] = ()


_FIELDS = {
    "contact": (
        MergeField("name", "ФИО", "Full name", "text", ("last_name", "first_name", "middle_name", "full_name")),
        MergeField("company_id", "Компания", "Company", "company"),
        MergeField("position", "Должность", "Position"),
        MergeField("birthday", "Дата рождения", "Birthday", "date"),
        MergeField("source", "Источник", "Source"),
        MergeField("responsible_id", "Ответственный", "Responsible", "user"),
        MergeField("comment", "Комментарий", "Comment"),
    ),
    "company": (
        MergeField("title", "Название компании", "Company name"),
        MergeField("inn", "ИНН", "Tax ID"),
        MergeField("industry", "Сфера деятельности", "Industry"),
        MergeField("address", "Адрес", "Address"),
        MergeField("responsible_id", "Ответственный", "Responsible", "user"),
        MergeField("comment", "Комментарий", "Comment"),
    ),
}
_SEARCHED = {"contact": ("full_name",), "company": ("title", "inn")}  # as comms/create build search_text


# ---- who and what ----------------------------------------------------------------------------

def can_merge(actor: Actor | None) -> bool:
    return actor is not None and actor.role in ROLES


def _entity(entity: str) -> str:
    if entity not in MERGEABLE:
        raise ValidationFailed(f"Дубликаты ищутся только среди контактов и компаний, не «{entity}»")
    return entity


def _require_role(session: Session, actor: Actor | None, action: str, **details) -> None:
    if not can_merge(actor):
        audit.refused(session, actor, action, DENIED, details)
        raise AccessDenied(DENIED)


def merge_fields(session: Session, entity: str) -> list[MergeField]:
    """The fields a merge of `entity` chooses: the catalog's own, then the custom fields."""
    return list(_FIELDS[_entity(entity)]) + [MergeField(fd.key, fd.label, fd.label_en, fd.kind)
                                             for fd in custom_defs(session, entity)]


def _value(item, fd: MergeField):
    """The field's value as JSON keeps it (a name: its parts)."""
    if len(fd.columns) > 1:
        return {c: getattr(item, c, "") or "" for c in fd.columns}
    return plain(value_of(item, fd.key))


def _empty(value) -> bool:
    if isinstance(value, dict):
        return not any(value.values())
    return value is None or value == "" or value == []


def _set(item, fd: MergeField, value) -> None:
    """Set a field from its JSON form (a date column gets a date back)."""
    if len(fd.columns) > 1:
        for c in fd.columns:
            setattr(item, c, (value or {}).get(c, "") or "")
        return
    if fd.kind == "date" and not fd.key.startswith("custom.") and isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if value is None and not fd.key.startswith("custom."):
        col = type(item).__table__.c.get(fd.key)
        if col is not None and not col.nullable:
            value = ""
    set_value(item, fd.key, value)


class _Names:
    """Names of the users and companies values point at, read in two queries."""

    def __init__(self, session: Session, values) -> None:
        users, companies = set(), set()
        for fd, v in values:
            if fd.kind == "user" and isinstance(v, int):
                users.add(v)
            elif fd.kind == "company" and isinstance(v, int):
                companies.add(v)
        self.users = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(users))).all()) \
            if users else {}
        self.companies = dict(session.execute(select(Company.id, Company.title).where(Company.id.in_(companies)))
                              .all()) if companies else {}

    def text(self, fd: MergeField, value) -> str:
        if _empty(value):
            return "—"
        if isinstance(value, dict):
            return value.get("full_name") or " ".join(v for v in value.values() if v)
        if fd.kind == "user":
            return self.users.get(value, f"№{value}")
        if fd.kind == "company":
            return self.companies.get(value, f"Компания №{value}")
        if fd.kind == "date":
            try:
                return fmt.date_short(date.fromisoformat(str(value)[:10]))
            except ValueError:
                return str(value)
        if isinstance(value, bool):
            return "Да" if value else "Нет"
        return str(value)


def _title_col(model, entity: str):
    return model.full_name if entity == "contact" else model.title


# ---- the groups ------------------------------------------------------------------------------

def duplicate_groups(session: Session, actor: Actor, entity: str, offset: int = 0,
                     limit: int = 20) -> tuple[list[dict], int]:
    """One page of duplicate groups of `entity` (contact or company) and how many there are.

    A group: {"kind": phone|email, "norm", "value" (as shown), "count" (live items the actor
    sees), "items": [{"id", "title", "company", "responsible", "created", "deals", "leads",
    "href", "version"}] (the first MAX_ITEMS by id)}. Groups come by kind, then norm."""
    model = entities.MODELS[_entity(entity)]
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    C = Communication
    seen = access.scope(session, actor, model, entity, "view")
    # candidates first, from `communication` alone (no join over the whole table), then the
    # live items the actor sees among them
    shared = (select(C.kind, C.norm).where(C.entity_type == entity, C.norm != "")
              .group_by(C.kind, C.norm).having(func.count(C.entity_id.distinct()) > 1)).subquery()
    grouped = (select(C.kind.label("kind"), C.norm.label("norm"), func.count(C.entity_id.distinct()).label("n"))
               .join(shared, and_(shared.c.kind == C.kind, shared.c.norm == C.norm))
               .join(model, model.id == C.entity_id)
               .where(C.entity_type == entity, model.deleted_at.is_(None), seen)
               .group_by(C.kind, C.norm)
               .having(func.count(C.entity_id.distinct()) > 1)).subquery()
    page = session.execute(select(grouped.c.kind, grouped.c.norm, grouped.c.n,
                                  func.count().over().label("total"))
                           .order_by(grouped.c.kind, grouped.c.norm).offset(offset).limit(limit)).all()
    if page:
        total = int(page[0].total)
    else:
        total = int(session.execute(select(func.count()).select_from(grouped)).scalar_one()) if offset else 0
    if not page:
        return [], total
    keys = [(r.kind, r.norm) for r in page]
    members = _members(session, actor, entity, keys)
    out = []
    for r in page:
        rows = members.get((r.kind, r.norm), {"value": r.norm, "items": []})
        out.append({"kind": r.kind, "norm": r.norm, "value": rows["value"], "count": int(r.n),
                    "items": rows["items"]})
    return out, total


def _members(session: Session, actor: Actor, entity: str, keys: list[tuple[str, str]]) -> dict:
    """{(kind, norm): {"value", "items"}} for the groups of one page, in a few queries."""
    model = entities.MODELS[entity]
    C = Communication
    seen = access.scope(session, actor, model, entity, "view")
    rank = func.row_number().over(partition_by=(C.kind, C.norm), order_by=(model.id, C.id)).label("rank")
    cols = [C.kind.label("kind"), C.norm.label("norm"), C.value.label("value"), model.id.label("id"),
            _title_col(model, entity).label("title"), model.responsible_id.label("responsible_id"),
            model.created_at.label("created_at"), model.version.label("version"),
            (model.company_id if entity == "contact" else model.id).label("company_id"), rank]
    ranked = (select(*cols).join(model, model.id == C.entity_id)
              .where(C.entity_type == entity, C.kind.in_({k for k, _n in keys}), C.norm.in_({n for _k, n in keys}),
                     model.deleted_at.is_(None), seen)).subquery()  # (index ix_comm_dup; pairs checked below)
    rows = session.execute(select(ranked).where(ranked.c.rank <= MAX_ITEMS * 2)
                           .order_by(ranked.c.kind, ranked.c.norm, ranked.c.id)).all()
    ids = {r.id for r in rows}
    users = {r.responsible_id for r in rows if r.responsible_id}
    names = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(users))).all()) if users else {}
    companies = {}
    if entity == "contact":
        cids = {r.company_id for r in rows if r.company_id}
        companies = dict(session.execute(select(Company.id, Company.title).where(Company.id.in_(cids))).all()) \
            if cids else {}
    counts = {}
    for m, ent, col in _LINKS[entity][:2]:
        column = getattr(m, col)
        counts[ent] = dict(session.execute(select(column, func.count()).where(column.in_(ids), m.deleted_at.is_(None))
                                           .group_by(column)).all()) if ids else {}
    out: dict = {}
    wanted = set(keys)
    for r in rows:
        if (r.kind, r.norm) not in wanted:
            continue
        group = out.setdefault((r.kind, r.norm), {"value": fmt.phone(r.value) if r.kind == "phone" else r.value,
                                                  "items": [], "ids": set()})
        if r.id in group["ids"] or len(group["items"]) >= MAX_ITEMS:
            continue
        group["ids"].add(r.id)
        group["items"].append({
            "id": r.id, "title": r.title or f"№{r.id}", "version": r.version,
            "company": companies.get(r.company_id, "") if entity == "contact" else "",
            "responsible": names.get(r.responsible_id, ""), "created": fmt.date_short(r.created_at),
            "deals": int(counts["deal"].get(r.id, 0)), "leads": int(counts["lead"].get(r.id, 0)),
            "href": entities.href(entity, r.id)})
    for group in out.values():
        group.pop("ids")
    return out


# ---- preview ---------------------------------------------------------------------------------

def _items(session: Session, actor: Actor, entity: str, ids) -> list:
    """The live items of `ids` (each once, in order) the actor may see; 2 … MAX_ITEMS of them."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    if len(ids) < 2:
        raise ValidationFailed("Для объединения выберите хотя бы два элемента")
    if len(ids) > MAX_ITEMS:
        raise ValidationFailed(f"За один раз можно объединить не больше {MAX_ITEMS} элементов")
    found = []
    for item_id in ids:
        item = get_item(session, entity, item_id)
        access.require(session, actor, entity, "view", item)
        found.append(item)
    return found


def _differing(fields: list[MergeField], found: list) -> list[tuple[MergeField, dict]]:
    """The fields whose values differ among the items: (field, {item id: value})."""
    out = []
    for fd in fields:
        values = {it.id: _value(it, fd) for it in found}
        if len({repr(v) for v in values.values()}) > 1:
            out.append((fd, values))
    return out


def _default(values: dict, survivor_id: int) -> int:
    """The survivor's value, unless it is empty and another item has one."""
    if not _empty(values[survivor_id]):
        return survivor_id
    return next((i for i, v in values.items() if not _empty(v)), survivor_id)


def merge_preview(session: Session, actor: Actor, entity: str, ids: list[int]) -> dict:
    """What a merge of `ids` would choose among: {"items": [{"id", "title", "version",
    "created", "responsible", "href"}], "fields": [{"key", "label", "label_en", "values":
    [{"item_id", "text"}], "default": item id}], "phones": [...], "emails": [...]} (the
    phones and e-mails the survivor would have, united by norm). The first id is the
    suggested survivor (the one a field defaults to, unless its value is empty)."""
    _entity(entity)
    _require_role(session, actor, "merge", entity=entity)
    found = _items(session, actor, entity, ids)
    diff = _differing(merge_fields(session, entity), found)
    names = _Names(session, [(fd, v) for fd, values in diff for v in values.values()] +
                   [(MergeField("responsible_id", "", "", "user"), it.responsible_id) for it in found])
    comms = _comms(session, entity, [it.id for it in found])
    united = {"phone": [], "email": []}
    norms = set()
    for it in found:
        for c in comms.get(it.id, []):
            if (c.kind, c.norm) not in norms and c.kind in united:
                norms.add((c.kind, c.norm))
                united[c.kind].append(fmt.phone(c.value) if c.kind == "phone" else c.value)
    return {
        "entity": entity,
        "items": [{"id": it.id, "title": title_of(it), "version": it.version, "created": fmt.date_short(it.created_at),
                   "responsible": names.users.get(it.responsible_id, ""), "href": entities.href(entity, it.id)}
                  for it in found],
        "fields": [{"key": fd.key, "label": fd.label, "label_en": fd.label_en,
                    "values": [{"item_id": i, "text": names.text(fd, v)} for i, v in values.items()],
                    "default": _default(values, found[0].id)} for fd, values in diff],
        "phones": united["phone"], "emails": united["email"],
    }


def _comms(session: Session, entity: str, ids: list[int]) -> dict[int, list[Communication]]:
    out: dict[int, list[Communication]] = {}
    if ids:
        for c in session.scalars(select(Communication).where(Communication.entity_type == entity,
                                                             Communication.entity_id.in_(ids))
                                 .order_by(Communication.id)).all():
            out.setdefault(c.entity_id, []).append(c)
    return out


# ---- merge -----------------------------------------------------------------------------------

def _noun(entity: str) -> str:
    """«контактом» / «компанией» (Объединён с …)."""
    return "контактом" if entity == "contact" else "компанией"


def _refresh_search(session: Session, entity: str, item) -> None:
    emails = [c.value for c in _comms(session, entity, [item.id]).get(item.id, []) if c.kind == "email"]
    item.search_text = search_text(*(getattr(item, a, "") or "" for a in _SEARCHED[entity]), *emails)


def _comms_changed(session: Session, actor: Actor, entity: str, item_id: int, before: dict, changes: dict) -> None:
    """The survivor's phones/e-mails as text after a merge or its undo: a changed kind goes
    into `changes` and onto the timeline (old → new)."""
    after = _comm_text(session, entity, item_id)
    for kind in KINDS:
        if after[kind] != before[kind]:
            changes[kind] = (before[kind], after[kind])
            timeline(session, actor, entity, item_id, "field_changed",
                     {"field": kind, "label": "Телефон" if kind == "phone" else "E-mail",
                      "old": before[kind], "new": after[kind]})


def _comm_text(session: Session, entity: str, item_id: int) -> dict[str, str]:
    rows = _comms(session, entity, [item_id]).get(item_id, [])
    return {k: ", ".join(c.value for c in rows if c.kind == k) for k in KINDS}


def _relink(session: Session, actor: Actor, model, ent: str, column: str, ids: list[int], old: int, new: int,
            check: bool) -> list[int]:
    """Point the items `ids` of `model` (their `column`) from `old` to `new` as a change of
    each (version, timeline, FIELDS_CHANGED). `check`: only those still pointing at `old`."""
    moved = []
    if not ids:
        return moved
    for item in session.scalars(select(model).where(model.id.in_(ids)).order_by(model.id)).all():
        if check and getattr(item, column) != old:
            continue
        setattr(item, column, new)
        touch(item, actor)
        session.add(item)
        timeline(session, actor, ent, item.id, "field_changed",
                 {"field": column, "label": _LINK_LABEL[column], "old": old, "new": new})
        if item.deleted_at is None:
            events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=ent, item=item,
                           changes={column: (old, new)})
        moved.append(item.id)
    return moved


def _move_rows(session: Session, model, entity: str, ids: list[int], old: int, new: int) -> list[int]:
    """Move rows owned by (entity, old) — activities, comments, timeline, phones — to (entity, new)."""
    if not ids:
        return []
    ids = list(session.scalars(select(model.id).where(model.id.in_(ids), model.entity_type == entity,
                                                      model.entity_id == old)).all())
    if ids:
        session.execute(update(model).where(model.id.in_(ids)).values(entity_id=new)
                        .execution_options(synchronize_session="fetch"))
    return ids


def _owned(session: Session, model, entity: str, item_id: int) -> list[int]:
    return list(session.scalars(select(model.id).where(model.entity_type == entity, model.entity_id == item_id)
                                .order_by(model.id)).all())


def merge(session: Session, actor: Actor, entity: str, survivor_id: int, merged_ids: list[int],
          choices: dict[str, int] | None = None, expected_versions: dict[int, int] | None = None) -> dict:
    """Merge `merged_ids` into `survivor_id` (contacts or companies).

    `choices` {field key: item id} names, per field where the items differ, the item whose
    value survives (a field not named keeps the survivor's value, or the first non-empty one
    when the survivor's is empty — what `merge_preview` suggests). `expected_versions`
    {item id: version} are the versions the person's preview showed: an item changed since is
    refused with a Conflict (nothing is merged). Returns {"survivor_id", "merged",
    "moved": {kind: count}}."""
    _entity(entity)
    _require_role(session, actor, "merge", entity=entity, survivor_id=survivor_id)
    merged_ids = [int(i) for i in dict.fromkeys(merged_ids or []) if int(i) != int(survivor_id)]
    if not merged_ids:
        raise ValidationFailed("Выберите, что объединить с оставляемым элементом")
    found = _items(session, actor, entity, [survivor_id, *merged_ids])
    survivor, merged = found[0], found[1:]
    access.require(session, actor, entity, "edit", survivor)
    for it in merged:
        access.require(session, actor, entity, "delete", it)
    for it in found:
        want = (expected_versions or {}).get(it.id)
        if want is not None and it.version != want:
            who = session.get(User, it.updated_by_id) if it.updated_by_id else None
            raise Conflict(f"«{title_of(it)}» изменил {who.full_name if who else 'другой пользователь'} "
                           f"({fmt.dt_short(it.updated_at)}) — откройте объединение заново",
                           details={"id": it.id, "version": it.version})
    by_id = {it.id: it for it in found}
    fields = {fd.key: fd for fd in merge_fields(session, entity)}
    for key, src in (choices or {}).items():
        if key not in fields:
            raise ValidationFailed(f"Поле «{key}» нельзя выбрать при объединении", fields={key: "Неизвестное поле"})
        if src not in by_id:
            raise ValidationFailed(f"«{fields[key].label}»: значение можно взять только у объединяемых элементов",
                                   fields={key: "Не из группы"})
    # the survivor's fields, field by field
    diff = _differing(list(fields.values()), found)
    taken: dict[int, dict[str, tuple]] = {}  # merged id → {key: (before, after)}
    changes: dict[str, tuple] = {}
    for fd, values in diff:
        src = (choices or {}).get(fd.key) or _default(values, survivor.id)
        if src == survivor.id:
            continue
        old, new = values[survivor.id], values[src]
        if fd.kind == "user" and isinstance(new, int):
            user = session.get(User, new)
            survivor.department_id = user.department_id if user else survivor.department_id
        _set(survivor, fd, new)
        taken.setdefault(src, {})[fd.key] = (old, new)
        changes[fd.key] = (old, new)
        names = _Names(session, [(fd, old), (fd, new)])
        timeline(session, actor, entity, survivor.id, "field_changed",
                 {"field": fd.key, "label": fd.label, "old": names.text(fd, old), "new": names.text(fd, new)})
    # phones and e-mails: united by norm
    comms_before = _comm_text(session, entity, survivor.id)
    comms = _comms(session, entity, [it.id for it in found])
    norms = {(c.kind, c.norm) for c in comms.get(survivor.id, [])}
    moved_all: dict[str, int] = {}
    records = []
    for it in merged:
        moved: dict[str, list[int]] = {}
        take = [c.id for c in comms.get(it.id, []) if (c.kind, c.norm) not in norms]
        norms |= {(c.kind, c.norm) for c in comms.get(it.id, [])}
        moved["communication"] = _move_rows(session, Communication, entity, take, it.id, survivor.id)
        for model, ent, column in _LINKS[entity]:
            ids = list(session.scalars(select(model.id).where(getattr(model, column) == it.id)).all())
            moved[ent] = _relink(session, actor, model, ent, column, ids, it.id, survivor.id, check=False)
        for model, key in ((Activity, "activity"), (Comment, "comment"), (TimelineEvent, "timeline")):
            moved[key] = _move_rows(session, model, entity, _owned(session, model, entity, it.id), it.id, survivor.id)
        for key, ids in moved.items():
            moved_all[key] = moved_all.get(key, 0) + len(ids)
        # the merged-away item goes to the recycle bin
        it.deleted_at = utcnow()
        touch(it, actor)
        session.add(it)
        timeline(session, actor, entity, it.id, "merged",
                 {"text": f"Объединён с {_noun(entity)} «{title_of(survivor)}» (№{survivor.id}) и удалён",
                  "survivor_id": survivor.id})
        events.publish(session, events.ITEM_DELETED, actor=actor, entity=entity, item=it)
        timeline(session, actor, entity, survivor.id, "merged",
                 {"text": f"Объединён с {_noun(entity)} «{title_of(it)}» (№{it.id})", "merged_id": it.id})
        pairs = taken.get(it.id, {})
        records.append(MergeRecord(entity_type=entity, survivor_id=survivor.id, merged_id=it.id, moved=moved,
                                   before={k: b for k, (b, _a) in pairs.items()},
                                   after={k: a for k, (_b, a) in pairs.items()}, created_by_id=actor.user_id))
    session.flush()
    _comms_changed(session, actor, entity, survivor.id, comms_before, changes)
    _refresh_search(session, entity, survivor)
    touch(survivor, actor)
    session.add(survivor)
    if changes:
        events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=entity, item=survivor,
                       changes={k: (_plain_text(o), _plain_text(n)) for k, (o, n) in changes.items()})
    session.flush()
    for rec in records:
        rec.survivor_version = survivor.version
        session.add(rec)
    audit.record(session, actor, "merge", entity, survivor.id,
                 {"title": title_of(survivor), "merged": [{"id": it.id, "title": title_of(it)} for it in merged],
                  "fields": {k: {"old": _plain_text(o), "new": _plain_text(n)} for k, (o, n) in changes.items()},
                  "moved": moved_all})
    return {"survivor_id": survivor.id, "merged": [it.id for it in merged], "moved": moved_all}


def _plain_text(value):
    """A composite value (a name) as its text for the audit and the change events."""
    if isinstance(value, dict):
        return value.get("full_name") or " ".join(v for v in value.values() if v)
    return value


# ---- undo (from the recycle bin) -------------------------------------------------------------

def undo(session: Session, actor: Actor, entity: str, item) -> bool:
    """`item` (a merged-away contact/company) was just restored: undo its merge, if any.

    What the merge moved from it and is still on the survivor goes back (a deal since linked
    elsewhere stays where it is); each survivor field that took its value and still has it
    gets the value from before the merge. True when a merge was undone."""
    if entity not in MERGEABLE:
        return False
    rec = session.scalars(select(MergeRecord).where(MergeRecord.entity_type == entity,
                                                    MergeRecord.merged_id == item.id,
                                                    MergeRecord.undone_at.is_(None))
                          .order_by(MergeRecord.id.desc())).first()
    if rec is None:
        return False
    model = entities.MODELS[entity]
    survivor = session.get(model, rec.survivor_id)
    if survivor is None:
        return False
    moved = rec.moved or {}
    comms_before = _comm_text(session, entity, survivor.id)
    back: dict[str, int] = {}
    for m, ent, column in _LINKS[entity]:
        back[ent] = len(_relink(session, actor, m, ent, column, [int(i) for i in moved.get(ent, [])],
                                survivor.id, item.id, check=True))
    for m, key in ((Activity, "activity"), (Comment, "comment"), (TimelineEvent, "timeline"),
                   (Communication, "communication")):
        back[key] = len(_move_rows(session, m, entity, [int(i) for i in moved.get(key, [])], survivor.id, item.id))
    fields = {fd.key: fd for fd in merge_fields(session, entity)}
    changes: dict[str, tuple] = {}
    for key, after in (rec.after or {}).items():
        fd = fields.get(key)
        if fd is None:
            continue
        current = _value(survivor, fd)
        if current != after:
            continue  # changed since the merge: the newer value stays
        before = (rec.before or {}).get(key)
        if fd.kind == "user" and isinstance(before, int):
            user = session.get(User, before)
            survivor.department_id = user.department_id if user else survivor.department_id
        _set(survivor, fd, before)
        changes[key] = (current, before)
        names = _Names(session, [(fd, current), (fd, before)])
        timeline(session, actor, entity, survivor.id, "field_changed",
                 {"field": key, "label": fd.label, "old": names.text(fd, current), "new": names.text(fd, before)})
    session.flush()
    _comms_changed(session, actor, entity, survivor.id, comms_before, changes)
    _refresh_search(session, entity, survivor)
    _refresh_search(session, entity, item)
    touch(survivor, actor)
    session.add(survivor)
    timeline(session, actor, entity, survivor.id, "unmerged",
             {"text": f"Отменено объединение с {_noun(entity)} «{title_of(item)}» (№{item.id})",
              "merged_id": item.id})
    if changes and survivor.deleted_at is None:
        events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=entity, item=survivor,
                       changes={k: (_plain_text(o), _plain_text(n)) for k, (o, n) in changes.items()})
    rec.undone_at = utcnow()
    rec.undone_by_id = actor.user_id
    session.add(rec)
    audit.record(session, actor, "unmerge", entity, survivor.id,
                 {"merged_id": item.id, "title": title_of(item), "moved_back": back,
                  "fields": sorted(changes)})
    return True


__all__ = ["DENIED", "MAX_ITEMS", "MERGEABLE", "MergeField", "can_merge", "duplicate_groups", "merge",
           "merge_fields", "merge_preview", "undo"]
