"""Дела, comments and e-mails of an item: the composer's write side and «Мои дела».

Every write checks access on the item the activity/comment belongs to, writes a timeline
event and an audit record, and keeps the item's denormalised `next_activity_at` (nearest
open activity start; the board/list counters and the activity-state filter read it) and
`last_contact_at` right — in the caller's transaction.

Rule checks on the planned time (the activity discipline: not later than 5 working days
after the last contact) subscribe to the ACTIVITY_SCHEDULING event (services/events.py),
published with `item` and `start_at` before an activity is saved or moved; a subscriber
refuses with `ValidationFailed`. A planned activity is announced as ACTIVITY_PLANNED."""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, case, exists, false, func, or_, select, true
from sqlmodel import Session

from rxcrm.models import Activity, Comment, Deal, Lead, User, utcnow
from rxcrm.models.activity import ACTIVITY_KINDS, CALL, EMAIL_ACT, MAX_DURATION_MIN, MEETING
from rxcrm.models.pipeline import PROCESS
from rxcrm.settings import TZ

from . import access, audit, events, fmt
from .context import Actor
from .entities import MODELS as ENTITY_MODELS, WORK_ENTITIES, href, label as entity_label
from .errors import NotFound, ServiceError, ValidationFailed
from .filters import day_bounds
from .records import get_item, timeline as _timeline, titles
from . import workdays

log = logging.getLogger(__name__)

KIND_LABEL = {"call": "Звонок", "meeting": "Встреча", "task": "Задача", "email": "Письмо"}
CONTACT_KINDS = (CALL, MEETING, EMAIL_ACT)  # completing one of these is a contact with the client

SUBJECT_MAX = 200
TEXT_MAX = 10_000
MAX_TASK_DURATION_MIN = 7 * 24 * 60
REMIND_MAX_MIN = 1440
PAST_TOLERANCE = timedelta(minutes=5)
BUCKETS = ("overdue", "today", "upcoming", "done")

# ---- helpers --------------------------------------------------------------------------

def _iso(dt: datetime) -> str:
    """Timestamps in timeline/audit data: ISO 8601 in UTC (like the columns)."""
    return dt.astimezone(UTC).isoformat()


def _check_entity(entity: str) -> None:
    if entity not in ENTITY_MODELS:
        raise ValidationFailed(f"Неизвестный вид элемента: {entity}")


def _aware(dt: datetime | None, name: str = "start_at") -> datetime:
    """Aware datetimes as given; a naive one is Moscow wall time (what the form shows)."""
    if not isinstance(dt, datetime):
        raise ValidationFailed("Укажите дату и время начала", fields={name: "Укажите дату и время"})
    return dt.replace(tzinfo=TZ) if dt.utcoffset() is None else dt


def _locked_item(session: Session, entity: str, item_id: int):
    """The item, its row locked until the end of the transaction (PostgreSQL), so two
    concurrent activity changes on one item recompute next_activity_at one after the other."""
    _check_entity(entity)
    model = ENTITY_MODELS[entity]
    session.execute(select(model.id).where(model.id == item_id).with_for_update())
    return get_item(session, entity, item_id)


def _get_activity(session: Session, activity_id: int) -> Activity:
    act = session.get(Activity, activity_id)
    if act is None:
        raise NotFound(f"Дело №{activity_id} не найдено")
    return act


def _require_activity_access(session: Session, actor: Actor, act: Activity, item) -> None:
    """Editing the item allows changing its activities; the activity's own responsible may
    also complete/reschedule it when they can see the item (their «Мои дела» list)."""
    if act.responsible_id is not None and act.responsible_id == actor.user_id and \
            access.allowed(session, actor, act.entity_type, "view", item):
        return
    access.require(session, actor, act.entity_type, "edit", item)


def _check_start(session: Session, item, start_at: datetime, now: datetime) -> datetime:
    start_at = _aware(start_at)
    if start_at < now - PAST_TOLERANCE:
        raise ValidationFailed("Нельзя запланировать дело на прошедшее время",
                               fields={"start_at": "Время уже прошло"})
    events.publish(session, events.ACTIVITY_SCHEDULING, item=item, start_at=start_at)
    return start_at


_NAMES = {  # key: (accusative for "Укажите …", nominative for "… не больше N символов")
    "subject": ("тему", "Тема"), "description": ("описание", "Описание"), "result": ("результат", "Результат"),
    "text": ("текст", "Текст"),
}


def _text(value, key: str, limit: int, required: bool) -> str:
    text = (value or "").strip()
    acc, nom = _NAMES[key]
    if required and not text:
        raise ValidationFailed(f"Укажите {acc}", fields={key: "Обязательное поле"})
    if len(text) > limit:
        raise ValidationFailed(f"{nom} — не больше {limit} символов (сейчас {len(text)})",
                               fields={key: f"Не больше {limit} символов"})
    return text


def refresh_next_activity(session: Session, entity: str, item_id: int) -> datetime | None:
    """Set the item's next_activity_at to the earliest start of its not-done activities
    (None when there is none). Leads and deals only; other items have no such column."""
    if entity not in WORK_ENTITIES:
        return None
    session.flush()
    nxt = session.execute(select(func.min(Activity.start_at)).where(
        Activity.entity_type == entity, Activity.entity_id == item_id, Activity.done == false())).scalar()
    item = session.get(ENTITY_MODELS[entity], item_id)
    if item is not None and item.next_activity_at != nxt:
        item.next_activity_at = nxt
        session.add(item)
    return nxt


# ---- activities -----------------------------------------------------------------------

def suggested_start(now: datetime | None = None) -> datetime:
    """Where the activity form starts: the next whole working hour of the office (09:00–18:00
    Moscow on a working day of the Russian production calendar, services/workdays.py) after
    `now` — 14:20 on a Tuesday → 15:00, 17:30 → 09:00 of the next working day, a Friday
    evening or 31 December → the first working morning after the weekend or the holidays."""
    return workdays.next_working_hour((now or utcnow()) + timedelta(minutes=1))


def plan_activity(session: Session, actor: Actor, entity: str, item_id: int, *, kind: str, subject: str,
                  start_at: datetime, duration_min: int, description: str = "",
                  responsible_id: int | None = None, remind_before_min: int | None = None,
                  now: datetime | None = None) -> Activity:
    """Plan a Дело on an item. Raises ValidationFailed (Russian message naming the limit),
    AccessDenied or NotFound; nothing is written when refused."""
    now = now or utcnow()
    item = _locked_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    if kind not in ACTIVITY_KINDS:
        raise ValidationFailed(f"Неизвестный вид дела: {kind}", fields={"kind": "Выберите вид дела"})
    subject = _text(subject, "subject", SUBJECT_MAX, required=True)
    description = _text(description, "description", TEXT_MAX, required=False)
    try:
        duration = int(duration_min)
    except (TypeError, ValueError):
        raise ValidationFailed("Длительность — целое число минут", fields={"duration_min": "Введите число"}) from None
    if duration <= 0:
        raise ValidationFailed("Длительность должна быть больше нуля", fields={"duration_min": "Больше нуля"})
    limit = MAX_DURATION_MIN.get(kind, MAX_TASK_DURATION_MIN)
    if duration > limit:
        msg = {CALL: f"Звонок — не дольше {limit} минут", MEETING: f"Встреча — не дольше 1 часа ({limit} минут)"}
        raise ValidationFailed(msg.get(kind, f"Дело — не дольше {limit // 1440} дней"),
                               fields={"duration_min": f"Не больше {limit} мин"})
    remind = None
    if remind_before_min is not None and remind_before_min != "":
        try:
            remind = int(remind_before_min)
        except (TypeError, ValueError):
            remind = -1
        if not 0 <= remind <= REMIND_MAX_MIN:
            raise ValidationFailed(f"Напоминание — от 0 до {REMIND_MAX_MIN} минут до начала",
                                   fields={"remind_before_min": f"От 0 до {REMIND_MAX_MIN}"})
    resp_id = responsible_id or item.responsible_id or actor.user_id
    user = session.get(User, resp_id) if resp_id else None
    if user is None or not user.is_active:
        raise ValidationFailed("Ответственный не найден или отключён", fields={"responsible_id": "Не найден"})
    start_at = _check_start(session, item, start_at, now)
    act = Activity(entity_type=entity, entity_id=item.id, kind=kind, subject=subject, description=description,
                   responsible_id=user.id, start_at=start_at, duration_min=duration, remind_before_min=remind,
                   remind_at=start_at - timedelta(minutes=remind) if remind is not None else None,
                   created_at=now, created_by_id=actor.user_id)
    session.add(act)
    session.flush()
    _timeline(session, actor, entity, item.id, "activity_planned",
              {"activity_id": act.id, "kind": kind, "subject": subject, "start": _iso(start_at),
               "responsible_id": user.id})
    audit.record(session, actor, "activity_planned", entity, item.id,
                 {"activity_id": act.id, "kind": kind, "subject": subject, "start": _iso(start_at),
                  "responsible_id": user.id})
    refresh_next_activity(session, entity, item.id)
    events.publish(session, events.ACTIVITY_PLANNED, actor=actor, entity=entity, item=item, activity=act)
    return act


def complete_activity(session: Session, actor: Actor, activity_id: int, result: str = "",
                      now: datetime | None = None) -> Activity:
    """Mark a Дело done with a result; a call/meeting/email is a contact (last_contact_at)."""
    now = now or utcnow()
    act = _get_activity(session, activity_id)
    item = _locked_item(session, act.entity_type, act.entity_id)
    _require_activity_access(session, actor, act, item)
    session.refresh(act)  # after the lock: a concurrent completion is seen
    if act.done:
        raise ValidationFailed("Дело уже выполнено", code="already_done")
    result = _text(result, "result", TEXT_MAX, required=False)
    act.done, act.done_at, act.result, act.remind_at = True, now, result, None
    session.add(act)
    if act.kind in CONTACT_KINDS and act.entity_type in WORK_ENTITIES:
        item.last_contact_at = now
        session.add(item)
    _timeline(session, actor, act.entity_type, act.entity_id, "activity_done",
              {"activity_id": act.id, "kind": act.kind, "subject": act.subject, "result": result})
    audit.record(session, actor, "activity_done", act.entity_type, act.entity_id,
                 {"activity_id": act.id, "kind": act.kind, "result": result})
    refresh_next_activity(session, act.entity_type, act.entity_id)
    return act


def reschedule_activity(session: Session, actor: Actor, activity_id: int, start_at: datetime,
                        now: datetime | None = None) -> Activity:
    """Move an open Дело to another time; its reminder moves with it (and is re-armed)."""
    now = now or utcnow()
    act = _get_activity(session, activity_id)
    item = _locked_item(session, act.entity_type, act.entity_id)
    _require_activity_access(session, actor, act, item)
    session.refresh(act)
    if act.done:
        raise ValidationFailed("Выполненное дело нельзя перенести", code="already_done")
    start_at = _check_start(session, item, start_at, now)
    old = act.start_at
    if old == start_at:
        return act
    act.start_at = start_at
    if act.remind_before_min is not None:
        act.remind_at = start_at - timedelta(minutes=act.remind_before_min)
    session.add(act)
    _timeline(session, actor, act.entity_type, act.entity_id, "activity_rescheduled",
              {"activity_id": act.id, "kind": act.kind, "subject": act.subject,
               "from": _iso(old), "to": _iso(start_at),
               "text": f"{act.subject}: {fmt.dt_short(old, now)} → {fmt.dt_short(start_at, now)}"})
    audit.record(session, actor, "activity_rescheduled", act.entity_type, act.entity_id,
                 {"activity_id": act.id, "from": _iso(old), "to": _iso(start_at)})
    refresh_next_activity(session, act.entity_type, act.entity_id)
    return act


# ---- comments -------------------------------------------------------------------------

def add_comment(session: Session, actor: Actor, entity: str, item_id: int, text: str) -> Comment:
    _check_entity(entity)
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    text = _text(text, "text", TEXT_MAX, required=True)
    comment = Comment(entity_type=entity, entity_id=item.id, text=text, author_id=actor.user_id)
    session.add(comment)
    session.flush()
    _timeline(session, actor, entity, item.id, "comment", {"comment_id": comment.id, "text": text})
    audit.record(session, actor, "comment", entity, item.id, {"comment_id": comment.id})
    return comment


# ---- e-mail ---------------------------------------------------------------------------

class MailAdapter(Protocol):
    def send(self, to: str, subject: str, text: str) -> None: ...


class RecordingMailAdapter:
    """The default: sends nothing (the letter is only recorded in the timeline).
    A real SMTP/API adapter replaces it later; see `send_email`."""

    def send(self, to: str, subject: str, text: str) -> None:
        log.info("mail not sent (recording adapter): to=%s subject=%s", to, subject)


DEFAULT_ADAPTER: MailAdapter = RecordingMailAdapter()

_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
EMAIL_RE = re.compile(
    r"^(?!\.)(?!.*\.\.)[\w.!#$%&'*+/=?^`{|}~-]{1,64}(?<!\.)"
    rf"@(?:{_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[a-z0-9-]{{2,59}})$", re.IGNORECASE)


def valid_email(value: str) -> bool:
    value = (value or "").strip()
    return len(value) <= 254 and EMAIL_RE.match(value) is not None


def send_email(session: Session, actor: Actor, entity: str, item_id: int, to: str, subject: str, text: str,
               adapter: MailAdapter | None = None) -> None:
    """Record an outgoing letter in the timeline and hand it to the adapter (last, after
    everything else is written, so a refusal by the database sends nothing)."""
    _check_entity(entity)
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    to = (to or "").strip()
    if not valid_email(to):
        raise ValidationFailed(f"Неверный адрес электронной почты: «{to}»" if to else "Укажите адрес получателя",
                               fields={"to": "Неверный адрес"})
    subject = _text(subject, "subject", SUBJECT_MAX, required=True)
    text = _text(text, "text", TEXT_MAX, required=False)
    savepoint = session.begin_nested()  # undone if the adapter fails, even if the caller commits
    _timeline(session, actor, entity, item.id, "email", {"to": to, "subject": subject, "text": text})
    audit.record(session, actor, "email", entity, item.id, {"to": to, "subject": subject})
    if entity in WORK_ENTITIES:
        item.last_contact_at = utcnow()
        session.add(item)
    session.flush()
    try:
        (adapter or DEFAULT_ADAPTER).send(to, subject, text)
    except ServiceError:
        savepoint.rollback()
        raise
    except Exception as exc:  # noqa: BLE001 - any transport error is a refusal shown to the person
        savepoint.rollback()
        log.exception("mail adapter failed")
        raise ServiceError(f"Не удалось отправить письмо: {exc}", code="mail_failed") from exc
    savepoint.commit()


# ---- «Мои дела» -----------------------------------------------------------------------

def _live_item(entity: str = ""):
    """The activity's item exists and is not soft-deleted (an EXISTS per item kind)."""
    conds = []
    for ent, model in ENTITY_MODELS.items():
        if entity and ent != entity:
            continue
        conds.append(and_(Activity.entity_type == ent,
                          exists().where(model.id == Activity.entity_id, model.deleted_at.is_(None))))
    return or_(*conds)


def end_of_today(now: datetime) -> datetime:
    return day_bounds(now.astimezone(TZ).date())[1]


def my_activities(session: Session, actor: Actor, bucket: str, kind: str = "", entity: str = "",
                  now: datetime | None = None, offset: int = 0, limit: int = 50,
                  item_id: int | None = None) -> tuple[list[dict], int]:
    """One page of the actor's activities in a bucket (overdue/today/upcoming/done) and the
    bucket's total. Days are Moscow days. Activities of deleted items are left out."""
    now = now or utcnow()
    if bucket not in BUCKETS:
        raise ValidationFailed(f"Неизвестный раздел дел: {bucket}")
    if kind and kind not in ACTIVITY_KINDS:
        raise ValidationFailed(f"Неизвестный вид дела: {kind}")
    if entity:
        _check_entity(entity)
    if actor.user_id is None:
        return [], 0
    end = end_of_today(now)
    conds = [Activity.responsible_id == actor.user_id, _live_item(entity)]
    if bucket == "done":
        conds.append(Activity.done == true())
        order = [Activity.done_at.desc(), Activity.id.desc()]
    else:
        conds.append(Activity.done == false())
        conds.append({"overdue": Activity.start_at < now,
                      "today": and_(Activity.start_at >= now, Activity.start_at < end),
                      "upcoming": Activity.start_at >= end}[bucket])
        order = [Activity.start_at, Activity.id]
    if kind:
        conds.append(Activity.kind == kind)
    if item_id:
        conds.append(Activity.entity_id == item_id)
    total = session.execute(select(func.count()).select_from(Activity).where(*conds)).scalar_one()
    acts = list(session.execute(select(Activity).where(*conds).order_by(*order)
                                .offset(max(0, offset)).limit(max(1, limit))).scalars())
    names = titles(session, [(a.entity_type, a.entity_id) for a in acts])
    rows = []
    for a in acts:
        rows.append({
            "id": a.id, "kind": a.kind, "kind_label": KIND_LABEL.get(a.kind, a.kind),
            "subject": a.subject or "Дело", "at": fmt.dt_short(a.start_at, now),
            "overdue": (not a.done) and a.start_at < now, "done": a.done,
            "done_at": fmt.dt_short(a.done_at, now) if a.done_at else "", "result": a.result,
            "entity": a.entity_type, "entity_label": entity_label(a.entity_type, a.entity_type),
            "item_id": a.entity_id, "item_title": names.get((a.entity_type, a.entity_id), ""),
            "href": href(a.entity_type, a.entity_id),
        })
    return rows, int(total)


def bucket_counts(session: Session, actor: Actor, kind: str = "", entity: str = "",
                  now: datetime | None = None) -> dict[str, int]:
    """The totals of the four «Мои дела» buckets (the tabs' numbers) under the same kind /
    item filters as `my_activities`, one SQL statement."""
    now = now or utcnow()
    if kind and kind not in ACTIVITY_KINDS:
        raise ValidationFailed(f"Неизвестный вид дела: {kind}")
    if entity:
        _check_entity(entity)
    if actor.user_id is None:
        return {b: 0 for b in BUCKETS}
    end = end_of_today(now)
    conds = [Activity.responsible_id == actor.user_id, _live_item(entity)]
    if kind:
        conds.append(Activity.kind == kind)
    is_open = Activity.done == false()

    def n(cond):
        return func.count(case((cond, 1)))

    row = session.execute(select(
        n(and_(is_open, Activity.start_at < now)),
        n(and_(is_open, Activity.start_at >= now, Activity.start_at < end)),
        n(and_(is_open, Activity.start_at >= end)),
        n(Activity.done == true()),
    ).where(*conds)).one()
    return {b: int(v or 0) for b, v in zip(BUCKETS, row, strict=True)}


def nav_counters(session: Session, actor: Actor, now: datetime | None = None) -> dict[str, int]:
    """Navigation badges for the actor, one SQL statement:
    leads/deals — own open items whose next activity is overdue or due today, plus those
    with no planned activity; activities — own open activities starting before the end of
    the Moscow day (overdue + today; = the totals of those two «Мои дела» buckets)."""
    if actor.user_id is None:
        return {"leads": 0, "deals": 0, "activities": 0}
    end = end_of_today(now or utcnow())

    def items(model):
        nxt = model.next_activity_at
        return (select(func.count(case((or_(nxt.is_(None), nxt < end), 1))))
                .where(model.responsible_id == actor.user_id, model.semantic == PROCESS,
                       model.deleted_at.is_(None))
                .scalar_subquery())

    acts = (select(func.count()).select_from(Activity)
            .where(Activity.responsible_id == actor.user_id, Activity.done == false(),
                   Activity.start_at < end, _live_item())
            .scalar_subquery())
    leads, deals, activities = session.execute(select(items(Lead), items(Deal), acts)).one()
    return {"leads": int(leads or 0), "deals": int(deals or 0), "activities": int(activities or 0)}


__all__ = ["BUCKETS", "DEFAULT_ADAPTER", "KIND_LABEL", "MailAdapter", "RecordingMailAdapter",
           "add_comment", "bucket_counts", "complete_activity", "end_of_today", "href", "my_activities", "nav_counters",
           "plan_activity", "refresh_next_activity", "reschedule_activity", "send_email", "titles",
           "valid_email"]
