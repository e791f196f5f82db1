"""The bell: reminders before activities, items assigned to me, moves made by automation.

Reminders are idempotent by *claiming*: `due_reminders` clears `activity.remind_at` in the
same UPDATE that selects the due rows (UPDATE … WHERE remind_at <= now … RETURNING), so a
second call — or a concurrent one in another worker — finds nothing to send again.
Rescheduling an activity sets a new remind_at (re-arms the reminder); completing it
clears remind_at. `remind_before_min` keeps what the person chose."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import false, func, select, update
from sqlmodel import Session

from rxcrm.models import Activity, Notification, User, utcnow

from . import fmt
from .activities import KIND_LABEL
from .context import IMPORT_SOURCE, Actor
from .entities import ENTITIES, MODELS, href, label as entity_label
from .records import title_of, titles

REMINDER, ASSIGNED, AUTOMATION = "reminder", "assigned", "automation"
# A reminder found more than this long after the activity's start is dropped silently
# (the activity already shows as overdue; a flood of stale reminders helps nobody).
REMINDER_STALE = timedelta(hours=1)



def notify(session: Session, user_id: int, kind: str, text: str, entity: str = "",
           entity_id: int | None = None, now: datetime | None = None) -> Notification:
    n = Notification(user_id=user_id, kind=kind, text=text, entity_type=entity or "", entity_id=entity_id,
                     created_at=now or utcnow())
    session.add(n)
    return n


# ---- reminders ------------------------------------------------------------------------

def due_reminders(session: Session, now: datetime | None = None) -> int:
    """Create "reminder" notifications for open activities whose remind_at ≤ now; returns
    how many were created. Call it periodically (the bell's poll or a background task)."""
    now = now or utcnow()
    session.flush()
    claimed = session.execute(
        update(Activity)
        .where(Activity.remind_at.is_not(None), Activity.remind_at <= now, Activity.done == false())
        .values(remind_at=None)
        .returning(Activity.id, Activity.entity_type, Activity.entity_id, Activity.kind, Activity.subject,
                   Activity.start_at, Activity.responsible_id),
        execution_options={"synchronize_session": "fetch"}).all()
    if not claimed:
        return 0
    fresh = [r for r in claimed if r.responsible_id and r.start_at >= now - REMINDER_STALE]
    names = titles(session, [(r.entity_type, r.entity_id) for r in fresh])
    live = _live_ids(session, fresh)
    active = set(session.execute(select(User.id).where(
        User.id.in_({r.responsible_id for r in fresh}), User.is_active.is_(True))).scalars()) if fresh else set()
    made = 0
    for r in sorted(fresh, key=lambda r: (r.start_at, r.id)):
        if r.responsible_id not in active or (r.entity_type, r.entity_id) not in live:
            continue
        text = (f"Напоминание: {KIND_LABEL.get(r.kind, 'Дело')} «{r.subject or 'Дело'}», "
                f"{fmt.dt_short(r.start_at, now)}")
        title = names.get((r.entity_type, r.entity_id))
        if title:
            text += f" — {entity_label(r.entity_type)} «{title}»"
        notify(session, r.responsible_id, REMINDER, text, r.entity_type, r.entity_id, now)
        made += 1
    return made


def _live_ids(session: Session, rows) -> set[tuple[str, int]]:
    """(entity, id) of the rows' items that exist and are not deleted (one query per kind)."""
    by_kind: dict[str, set[int]] = {}
    for r in rows:
        by_kind.setdefault(r.entity_type, set()).add(r.entity_id)
    out = set()
    for ent, ids in by_kind.items():
        model = MODELS.get(ent)
        if model is None:
            continue
        for iid in session.execute(select(model.id).where(model.id.in_(ids), model.deleted_at.is_(None))).scalars():
            out.add((ent, iid))
    return out


# ---- the bell -------------------------------------------------------------------------

def unread(session: Session, actor: Actor, limit: int = 20, now: datetime | None = None) -> list[dict]:
    """The actor's unread notifications, newest first."""
    if actor.user_id is None:
        return []
    now = now or utcnow()
    rows = session.execute(select(Notification).where(
        Notification.user_id == actor.user_id, Notification.read_at.is_(None))
        .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(max(1, limit))).scalars()
    return [{"id": n.id, "kind": n.kind, "text": n.text, "href": href(n.entity_type, n.entity_id),
             "at": fmt.dt_short(n.created_at, now), "entity": n.entity_type, "entity_id": n.entity_id}
            for n in rows]


def unread_count(session: Session, actor: Actor) -> int:
    if actor.user_id is None:
        return 0
    return int(session.execute(select(func.count()).select_from(Notification).where(
        Notification.user_id == actor.user_id, Notification.read_at.is_(None))).scalar_one())


def mark_read(session: Session, actor: Actor, ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Mark the actor's notifications read (all when `ids` is None); ids of other users'
    notifications are ignored. Returns how many changed."""
    if actor.user_id is None:
        return 0
    conds = [Notification.user_id == actor.user_id, Notification.read_at.is_(None)]
    if ids is not None:
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        conds.append(Notification.id.in_(ids))
    res = session.execute(update(Notification).where(*conds).values(read_at=now or utcnow()),
                          execution_options={"synchronize_session": "fetch"})
    return int(res.rowcount or 0)


# ---- event subscribers (wired in rxcrm/hooks.py) ----------------------------------------

def assigned_text(entity: str, title: str) -> str:
    """«Вам назначена сделка «…»» / «Вам назначен лид «…»»."""
    e = ENTITIES.get(entity)
    if e is None:
        return f"Вам назначено «{title}»"
    return f"Вам {'назначена' if e.feminine else 'назначен'} {e.label.lower()} «{title}»"


def on_assigned(session: Session, actor: Actor, entity: str, item, old_responsible_id: int | None) -> None:
    """After an item's responsible changed (or a new item got one): tell the new
    responsible, unless they assigned it to themselves."""
    new_id = getattr(item, "responsible_id", None)
    if not new_id or new_id == old_responsible_id or new_id == actor.user_id:
        return
    user = session.get(User, new_id)
    if user is None or not user.is_active:
        return
    text = assigned_text(entity, title_of(item))
    if actor.user_id is not None and actor.full_name:
        text += f" — {actor.full_name}"
    notify(session, new_id, ASSIGNED, text, entity, item.id)


def on_automation_move(session: Session, entity: str, item, old_stage_name: str, new_stage_name: str,
                       rule_name: str) -> None:
    """An automation rule moved the item: tell its responsible."""
    if not getattr(item, "responsible_id", None):
        return
    acc = ENTITIES[entity].accusative if entity in ENTITIES else ""
    text = f"Правило «{rule_name}» перевело {acc} «{title_of(item)}»: {old_stage_name} → {new_stage_name}"
    notify(session, item.responsible_id, AUTOMATION, text, entity, item.id)


def on_stage_changed(session: Session, *, actor: Actor, entity: str, item, old, new) -> None:
    """STAGE_CHANGED: a move made by a rule (actor.source == "rule", actor.login = the
    rule's name) is told to the item's responsible."""
    if actor.source == "rule":
        on_automation_move(session, entity, item, old.name, new.name, actor.login)


def on_fields_changed(session: Session, *, actor: Actor, entity: str, item, changes: dict) -> None:
    """FIELDS_CHANGED: a new responsible hears of it."""
    if "responsible_id" in changes:
        on_assigned(session, actor, entity, item, changes["responsible_id"][0])


def on_item_created(session: Session, *, actor: Actor, entity: str, item, stage, details: dict) -> None:
    """ITEM_CREATED: the responsible of a new item hears of it (unless they made it; an
    import's items are told of in one notice per responsible when it ends)."""
    if actor.source != IMPORT_SOURCE:
        on_assigned(session, actor, entity, item, None)


__all__ = ["ASSIGNED", "AUTOMATION", "REMINDER", "assigned_text", "due_reminders", "mark_read", "notify",
           "on_assigned", "on_automation_move", "on_fields_changed", "on_item_created", "on_stage_changed", "unread",
           "unread_count"]
