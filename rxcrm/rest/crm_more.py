"""The rest of the crm scope as Bitrix24 answers it (shared/BITRIX24_REST.md §5.2–5.5):
a deal's or lead's contact (`crm.{deal,lead}.contact.items.{get,set}`, `.add`),
timeline comments (`crm.timeline.comment.{add,list}`), activities (`crm.activity.{list,get}`,
`crm.activity.todo.add`) and `crm.duplicate.findbycomm` — through the services (rights,
the timeline, the activity rules), read as the webhook's user."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import func, select

from rxcrm.models import Activity, Comment, Communication, Company, Contact, Lead
from rxcrm.models.activity import CALL, EMAIL_ACT, MEETING, TASK
from rxcrm.services import access, activities, create
from rxcrm.services.phones import normalize_email, normalize_phone

from . import wire
from .crm import ENTITY_TYPES, _int, _visible, parse_moment
from .methods import Call, method

TYPE_NAMES = {"lead": "lead", "deal": "deal", "contact": "contact", "company": "company"}
# crm.activity TYPE_ID: 1 meeting, 2 call, 3 task, 4 email
ACTIVITY_TYPE = {MEETING: "1", CALL: "2", TASK: "3", EMAIL_ACT: "4"}


def _owner(type_id, what: str = "OWNER_TYPE_ID") -> str:
    """An entityTypeId / OWNER_TYPE_ID (1–4) or ENTITY_TYPE name → our entity."""
    text = str(type_id or "").strip().lower()
    if text in TYPE_NAMES:
        return text
    entity = ENTITY_TYPES.get(_int(what, text) or 0)
    if entity is None:
        raise wire.RestError(f"{what}: 1 (лид), 2 (сделка), 3 (контакт) или 4 (компания)")
    return entity


def _type_id(entity: str) -> int:
    return next(k for k, v in ENTITY_TYPES.items() if v == entity)


# ---- contacts of a deal or a lead ---------------------------------------------------------------
def _contact_items(call: Call, entity: str) -> list:
    item = _visible(call.session, call, entity, wire.as_id(call.p("id")))
    if not item.contact_id:
        return []
    return [{"CONTACT_ID": item.contact_id, "SORT": 10, "ROLE_ID": 0, "IS_PRIMARY": "Y"}]


def _set_contacts(call: Call, entity: str) -> bool:
    """rxcrm links one contact to a deal or a lead: the primary one of `items` (or the first);
    an empty list unlinks it."""
    item = _visible(call.session, call, entity, wire.as_id(call.p("id")))
    rows = [r for r in wire.as_list(call.p("items")) if isinstance(r, dict)]
    rows = [{str(k).upper(): v for k, v in r.items()} for r in rows]
    if not rows:
        if item.contact_id:
            create.unlink_contact(call.session, call.actor, entity, item.id)
        return True
    primary = next((r for r in rows if str(r.get("IS_PRIMARY", "")).upper() == "Y"), rows[0])
    contact_id = _int("CONTACT_ID", primary.get("CONTACT_ID"))
    if not contact_id:
        raise wire.RestError("CONTACT_ID is not defined or invalid.")
    create.link_contact(call.session, call.actor, entity, item.id, contact_id)
    return True


def _add_contact(call: Call, entity: str) -> bool:
    fields = {str(k).upper(): v for k, v in wire.as_map(call.p("fields"), "fields").items()}
    contact_id = _int("CONTACT_ID", fields.get("CONTACT_ID"))
    if not contact_id:
        raise wire.RestError("CONTACT_ID is not defined or invalid.")
    item = _visible(call.session, call, entity, wire.as_id(call.p("id")))
    create.link_contact(call.session, call.actor, entity, item.id, contact_id)
    return True


for _e in ("deal", "lead"):
    method(f"crm.{_e}.contact.items.get")(lambda call, e=_e: _contact_items(call, e))
    method(f"crm.{_e}.contact.items.set", write=True)(lambda call, e=_e: _set_contacts(call, e))
    method(f"crm.{_e}.contact.add", write=True)(lambda call, e=_e: _add_contact(call, e))


# ---- timeline comments ---------------------------------------------------------------------------
@method("crm.timeline.comment.add", write=True)
def comment_add(call: Call) -> int:
    fields = {str(k).upper(): v for k, v in wire.as_map(call.p("fields"), "fields").items()}
    entity = _owner(fields.get("ENTITY_TYPE"), "ENTITY_TYPE")
    item_id = wire.as_id(fields.get("ENTITY_ID"))
    _visible(call.session, call, entity, item_id)
    comment = activities.add_comment(call.session, call.actor, entity, item_id, str(fields.get("COMMENT") or ""))
    call.session.flush()
    return int(comment.id)


def _comment_row(c: Comment) -> dict:
    return {"ID": str(c.id), "CREATED": wire.iso(c.created_at), "ENTITY_ID": str(c.entity_id),
            "ENTITY_TYPE": c.entity_type, "AUTHOR_ID": str(c.author_id) if c.author_id else None,
            "COMMENT": c.text, "FILES": []}


@method("crm.timeline.comment.list")
def comment_list(call: Call) -> wire.Answer:
    flt = {str(k).upper(): v for k, v in wire.as_map(call.p("filter"), "filter").items()}
    if "ENTITY_ID" not in flt or "ENTITY_TYPE" not in flt:
        raise wire.RestError("filter: ENTITY_ID и ENTITY_TYPE обязательны", "ERROR_ARGUMENT", argument="filter")
    entity = _owner(flt["ENTITY_TYPE"], "ENTITY_TYPE")
    item = _visible(call.session, call, entity, wire.as_id(flt["ENTITY_ID"]))
    cond = (Comment.entity_type == entity, Comment.entity_id == item.id)
    total = call.session.exec(select(func.count()).select_from(Comment).where(*cond)).one()
    offset = wire.legacy_page(wire.as_start(call.p("start")))
    order = {str(k).upper(): str(v).upper() for k, v in wire.as_map(call.p("order"), "order").items()}
    col = Comment.created_at if "CREATED" in order else Comment.id
    desc = (order.get("CREATED") or order.get("ID") or "DESC") == "DESC"
    rows = call.session.exec(select(Comment).where(*cond).order_by(col.desc() if desc else col.asc())
                             .offset(offset).limit(wire.PAGE)).all()
    return wire.Answer([_comment_row(c) for c in rows], total=total, next=wire.next_start(offset, total))


# ---- activities ----------------------------------------------------------------------------------
def _activity_row(a: Activity) -> dict:
    end = a.start_at + timedelta(minutes=a.duration_min or 0)
    return {"ID": str(a.id), "OWNER_TYPE_ID": str(_type_id(a.entity_type)), "OWNER_ID": str(a.entity_id),
            "TYPE_ID": ACTIVITY_TYPE.get(a.kind, "3"), "SUBJECT": a.subject, "DESCRIPTION": a.description or "",
            "DESCRIPTION_TYPE": "1", "START_TIME": wire.iso(a.start_at), "END_TIME": wire.iso(end),
            "DEADLINE": wire.iso(a.start_at), "COMPLETED": "Y" if a.done else "N", "STATUS": "2" if a.done else "1",
            "RESPONSIBLE_ID": str(a.responsible_id) if a.responsible_id else None, "PRIORITY": "2",
            "DIRECTION": "2" if a.kind in (CALL, EMAIL_ACT) else "0", "CREATED": wire.iso(a.created_at),
            "AUTHOR_ID": str(a.created_by_id) if a.created_by_id else None, "RESULT": a.result or ""}


def _may_see(call: Call, a: Activity) -> bool:
    from rxcrm.services.records import get_item
    try:
        item = get_item(call.session, a.entity_type, a.entity_id)
    except Exception:  # noqa: BLE001 - a deleted owner: its activities are not shown
        return False
    return item.deleted_at is None and access.allowed(call.session, call.actor, a.entity_type, "view", item)


@method("crm.activity.get")
def activity_get(call: Call) -> dict:
    a = call.session.get(Activity, wire.as_id(call.p("id")))
    if a is None:
        raise wire.not_found()
    if not _may_see(call, a):
        raise wire.access_denied()
    return _activity_row(a)


@method("crm.activity.list")
def activity_list(call: Call) -> wire.Answer:
    """Activities of items the webhook's user may see; filter OWNER_TYPE_ID + OWNER_ID,
    COMPLETED, RESPONSIBLE_ID, TYPE_ID."""
    flt = {str(k).upper().lstrip("="): v for k, v in wire.as_map(call.p("filter"), "filter").items()}
    q = select(Activity)
    if "OWNER_TYPE_ID" in flt:
        q = q.where(Activity.entity_type == _owner(flt["OWNER_TYPE_ID"]))
    if "OWNER_ID" in flt:
        q = q.where(Activity.entity_id.in_([_int("OWNER_ID", v) or 0 for v in wire.as_list(flt["OWNER_ID"])]))
    if "COMPLETED" in flt:
        q = q.where(Activity.done == (str(flt["COMPLETED"]).upper() == "Y"))
    if "RESPONSIBLE_ID" in flt:
        q = q.where(Activity.responsible_id.in_([_int("RESPONSIBLE_ID", v) or 0
                                                 for v in wire.as_list(flt["RESPONSIBLE_ID"])]))
    if "TYPE_ID" in flt:
        kinds = {v: k for k, v in ACTIVITY_TYPE.items()}
        q = q.where(Activity.kind.in_([kinds.get(str(v), "") for v in wire.as_list(flt["TYPE_ID"])]))
    # the owners' visibility: the same role scope as their lists, one EXISTS per entity
    from rxcrm.rest.crm import MODELS
    seen = []
    for entity, model in MODELS.items():
        sub = select(model.id).where(model.id == Activity.entity_id, model.deleted_at.is_(None),
                                     access.scope(call.session, call.actor, model, entity, "view"))
        seen.append((Activity.entity_type == entity) & sub.exists())
    from sqlalchemy import or_
    q = q.where(or_(*seen))
    total = call.session.exec(select(func.count()).select_from(q.subquery())).one()
    offset = wire.legacy_page(wire.as_start(call.p("start")))
    rows = call.session.exec(q.order_by(Activity.id).offset(offset).limit(wire.PAGE)).all()
    return wire.Answer([_activity_row(a) for a in rows], total=total, next=wire.next_start(offset, total))


@method("crm.activity.todo.add", write=True)
def todo_add(call: Call) -> dict:
    """A to-do (Дело «задача») on an item: ownerTypeId, ownerId, deadline, title, description,
    responsibleId — the same limits as planning one on the card."""
    entity = _owner(call.p("ownerTypeId"), "ownerTypeId")
    item_id = wire.as_id(call.p("ownerId"))
    _visible(call.session, call, entity, item_id)
    deadline = parse_moment(call.p("deadline"))
    if deadline is None:
        raise wire.RestError("deadline is not defined or invalid.", "ERROR_ARGUMENT", argument="deadline")
    act = activities.plan_activity(call.session, call.actor, entity, item_id, kind=TASK,
                                   subject=str(call.p("title") or "Дело"), start_at=deadline, duration_min=15,
                                   description=str(call.p("description") or ""),
                                   responsible_id=_int("responsibleId", call.p("responsibleId")))
    call.session.flush()
    return {"id": int(act.id)}


# ---- duplicates ----------------------------------------------------------------------------------
@method("crm.duplicate.findbycomm")
def duplicate_findbycomm(call: Call) -> dict | list:
    """Items with these phones or e-mails (≤ 20 values): {"CONTACT": [ids], "LEAD": […],
    "COMPANY": […]} — only items the webhook's user may see; [] when none (PHP's empty array)."""
    kind = str(call.p("type") or "").upper()
    if kind not in ("PHONE", "EMAIL"):
        raise wire.RestError("type: PHONE или EMAIL", "ERROR_ARGUMENT", argument="type")
    values = [str(v) for v in wire.as_list(call.p("values"))][:20]
    norm = normalize_phone if kind == "PHONE" else normalize_email
    norms = [n for n in (norm(v) for v in values) if n]
    wanted = str(call.p("entity_type") or "").upper()
    out: dict[str, list[int]] = {}
    for entity, model in (("lead", Lead), ("contact", Contact), ("company", Company)):
        if wanted and wanted != entity.upper() or not norms:
            continue
        ids = call.session.exec(
            select(model.id).join(Communication, (Communication.entity_type == entity)
                                  & (Communication.entity_id == model.id))
            .where(Communication.kind == kind.lower(), Communication.norm.in_(norms), model.deleted_at.is_(None),
                   access.scope(call.session, call.actor, model, entity, "view"))
            .distinct().order_by(model.id)).all()
        if ids:
            out[entity.upper()] = [int(i) for i in ids]
    return out or []


__all__ = ["ACTIVITY_TYPE", "activity_get", "activity_list", "comment_add", "comment_list", "duplicate_findbycomm",
           "todo_add"]
