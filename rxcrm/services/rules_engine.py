"""The one engine that applies the rules to items — a subscriber of the write services'
events (wired in rxcrm/hooks.py), never called by them directly.

The rule kinds live in the `automation_rule` table (written once from the declarations in
rxcrm/rules/ by services/bootstrap.py, edited by admins on /settings through
services/rules_admin.py); only ACTIVE rows apply, read per call:

- required fields per stage (kind "required"): a query, services/requirements.py, asked by
  items.move_stage and create before they write;
- field-triggered moves (kind "trigger"): `on_fields_changed` (event FIELDS_CHANGED);
- on-enter actions (kind "on_enter"): `on_stage_changed` (STAGE_CHANGED) and
  `on_item_created` (ITEM_CREATED: the first stage); `apply_on_enter` does the work;
- activity discipline (ACTIVITY_DISCIPLINE): `on_activity_scheduling` refuses a date too
  far from the last contact (ACTIVITY_SCHEDULING).

Every change a rule makes is made by an Actor(source="rule", login=<rule name>), so the
timeline event (`rule` column), the audit record (source "rule") and the bell name the rule.
"""
from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from rxcrm.models import Pipeline, Stage, TimelineEvent, User, utcnow
from rxcrm.models.pipeline import PROCESS
from rxcrm.rules.actions import ACTIONS
from rxcrm.rules.automation import ACTIVITY_DISCIPLINE, MAX_DEPTH
from rxcrm.settings import TZ

from . import activities, events, items, notifications, workdays
from .context import Actor
from .errors import ServiceError, ValidationFailed
from .records import touch
from .requirements import active_rules

log = logging.getLogger(__name__)

_DEPTH_KEY = "rxcrm_rules_depth"


def rule_actor(name: str, cause=None) -> Actor:
    return Actor(user_id=None, login=name, full_name=f"Правило «{name}»", role="admin", department_id=None,
                 source="rule", client=getattr(cause, "client", "") or "")


def _pipeline_code(session: Session, item) -> str:
    pid = getattr(item, "pipeline_id", None)
    pipe = session.get(Pipeline, pid) if pid else None
    return pipe.code if pipe else ""


def _stage_by_code(session: Session, pipeline_id: int, code: str) -> Stage | None:
    return session.exec(select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.code == code)).first()


class _nested:
    """Depth of rule applications in this session (the loop guard)."""

    def __init__(self, session: Session):
        self.session = session

    def __enter__(self) -> bool:
        depth = self.session.info.get(_DEPTH_KEY, 0)
        self.session.info[_DEPTH_KEY] = depth + 1
        if depth >= MAX_DEPTH:
            log.warning("automation: rules nested deeper than %s levels; stopped", MAX_DEPTH)
            return False
        return True

    def __exit__(self, *exc) -> None:
        self.session.info[_DEPTH_KEY] -= 1


def _report(session: Session, entity: str, item, rule: str, text: str) -> None:
    """A timeline line for an automatic action that is not a field/stage/activity change
    (a notification sent, an action skipped)."""
    session.add(TimelineEvent(entity_type=entity, entity_id=item.id, kind="automation", user_id=None,
                              rule=rule, data={"text": text}))


def _run(session: Session, entity: str, item, rule: str, fn) -> bool:
    """Run one rule action in a savepoint: a refusal undoes only that action and is
    written to the timeline; the change that fired the rule stands."""
    try:
        with session.begin_nested():
            fn()
        return True
    except ServiceError as exc:
        _report(session, entity, item, rule, f"Не выполнено: {exc.message}")
        return False


def on_fields_changed(session: Session, *, actor, entity: str, item, changes: dict) -> None:
    """FIELDS_CHANGED: apply the active trigger rules; `changes` is {key: (old, new)} as
    returned by items.apply_values."""
    if not changes or entity not in ("lead", "deal") or getattr(item, "semantic", PROCESS) != PROCESS:
        return
    code = _pipeline_code(session, item)
    rules = [r for r in active_rules(session, "trigger", code)
             if (r.config or {}).get("field") in changes and changes[r.config["field"]][1] == r.config.get("equals")]
    if not rules:
        return
    with _nested(session) as ok:
        if not ok:
            return
        for rule in rules:
            stage = session.get(Stage, item.stage_id)
            if rule.stage_code and stage.code != rule.stage_code:  # "" = from any stage
                continue
            target = _stage_by_code(session, item.pipeline_id, rule.config.get("to_stage") or "")
            if target is None or target.id == stage.id:
                continue
            ra = rule_actor(rule.name, actor)
            _run(session, entity, item, rule.name,
                 lambda t=target, ra=ra: items.move_stage(session, ra, entity, item.id, t.id))
            break  # one move per change; the new stage's own rules run from there


def _activity_start(session: Session, item, in_hours: float, now: datetime) -> datetime:
    start = workdays.next_working_hour(now + timedelta(hours=in_hours))
    limit = latest_activity_date(item, now)
    if start.astimezone(TZ).date() > limit:  # keep within the discipline: the limit day, working hours
        start = max(datetime.combine(limit, workdays.WORK_START, tzinfo=TZ), workdays.next_working_hour(now))
        if start.astimezone(TZ).date() > limit:
            start = now + timedelta(minutes=1)
    return start


class _ActionContext:
    """What an on-enter action (rxcrm/rules/actions/) may do to the item that entered the
    stage — as the rule (`ra`), in the mover's transaction."""

    def __init__(self, session: Session, ra: Actor, entity: str, item, now: datetime):
        self.session, self.ra, self.entity, self.item, self.now = session, ra, entity, item, now

    def title(self) -> str:
        return getattr(self.item, "title", "") or f"№{self.item.id}"

    def plan_activity(self, kind: str, subject: str, in_hours: float, duration_min: int | None) -> None:
        duration = duration_min or {"call": 15, "meeting": 60}.get(kind, 30)
        activities.plan_activity(self.session, self.ra, self.entity, self.item.id, kind=kind, subject=subject,
                                 start_at=_activity_start(self.session, self.item, in_hours, self.now),
                                 duration_min=duration, responsible_id=self.item.responsible_id, now=self.now)

    def set_values(self, values: dict) -> None:
        set_values(self.session, self.ra, self.entity, self.item, values)

    def notify(self, to: str, text: str) -> None:
        text = text or f"Правило «{self.ra.login}»: «{self.title()}»"
        users = _recipients(self.session, self.item, to)
        if not users:
            raise ServiceError("некому отправить уведомление", code="no_recipient")
        for u in users:
            notifications.notify(self.session, u.id, notifications.AUTOMATION, text, self.entity, self.item.id,
                                 self.now)
        _report(self.session, self.entity, self.item, self.ra.login,
                "Уведомление: " + ", ".join(u.full_name for u in users))


def _on_enter_action(session: Session, ra: Actor, entity: str, item, action: dict, now: datetime) -> None:
    plugin = ACTIONS.get(action.get("type", ""))
    if plugin is None:
        raise ServiceError(f"неизвестное действие правила: {action.get('type')}")
    plugin.run(_ActionContext(session, ra, entity, item, now), action)


def _recipients(session: Session, item, to: str) -> list[User]:
    if to == "responsible":
        u = session.get(User, item.responsible_id) if item.responsible_id else None
        return [u] if u is not None and u.is_active else []
    if to == "department_head":
        if item.department_id is None:
            return []
        return list(session.exec(select(User).where(User.department_id == item.department_id,
                                                    User.role == "head", User.is_active.is_(True))
                                 .order_by(User.id)).all())
    raise ServiceError(f"неизвестный получатель: {to}")


def set_values(session: Session, actor: Actor, entity: str, item, values: dict) -> dict:
    """Set fields like an edit (validation, timeline old → new, audit), without the access
    check of a person's edit; its FIELDS_CHANGED fires field triggers in turn."""
    changes = items.apply_values(session, actor, entity, item, values)
    if changes:
        touch(item, actor)
        session.add(item)
        events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=entity, item=item, changes=changes)
    return changes


def apply_on_enter(session: Session, actor, entity: str, item, stage: Stage, now: datetime | None = None) -> None:
    """Run the active on-enter rules of `stage` for an item that just entered it."""
    code = _pipeline_code(session, item)
    rules = active_rules(session, "on_enter", code, stage.code)
    if not rules:
        return
    now = now or utcnow()
    with _nested(session) as ok:
        if not ok:
            return
        for rule in rules:
            ra = rule_actor(rule.name, actor)
            for action in (rule.config or {}).get("actions", []):
                if item.stage_id != stage.id:  # an earlier action moved it on
                    return
                _run(session, entity, item, rule.name,
                     lambda a=action, ra=ra: _on_enter_action(session, ra, entity, item, a, now))


def on_stage_changed(session: Session, *, actor, entity: str, item, old: Stage, new: Stage) -> None:
    """STAGE_CHANGED: on-enter rules run on moves between working stages; not on closing,
    nor on a reopen (a head returning a closed item to work is not a new entry)."""
    if new.semantic == PROCESS and old.semantic == PROCESS:
        apply_on_enter(session, actor, entity, item, new)


def on_item_created(session: Session, *, actor, entity: str, item, stage: Stage | None, details: dict) -> None:
    """ITEM_CREATED: the on-enter rules of a lead's or deal's first stage."""
    if stage is not None:
        apply_on_enter(session, actor, entity, item, stage)


# ---- activity discipline --------------------------------------------------------------

def latest_activity_date(item, now: datetime | None = None) -> date:
    """The last Moscow day an activity of `item` may be planned for: N working days after
    the last contact (or the creation); at least the first working day from today."""
    base = getattr(item, "last_contact_at", None) or getattr(item, "created_at", None) or now or utcnow()
    if base.utcoffset() is None:
        base = base.replace(tzinfo=UTC)
    n = int(ACTIVITY_DISCIPLINE.get("max_working_days_after_last_contact", 5))
    limit = workdays.add_working_days(base.astimezone(TZ).date(), n)
    today = workdays.add_working_days((now or utcnow()).astimezone(TZ).date(), 0)
    return max(limit, today)


def on_activity_scheduling(session: Session, *, item, start_at: datetime) -> None:
    """ACTIVITY_SCHEDULING: refuse an activity later than the discipline allows (leads and
    deals in work only)."""
    if not hasattr(item, "last_contact_at") or getattr(item, "semantic", PROCESS) != PROCESS:
        return
    limit = latest_activity_date(item)
    if start_at.astimezone(TZ).date() > limit:
        n = int(ACTIVITY_DISCIPLINE.get("max_working_days_after_last_contact", 5))
        raise ValidationFailed(f"Дело можно запланировать не позже {workdays.date_long(limit)} "
                               f"({n} рабочих дней после последнего контакта)",
                               fields={"start_at": f"Не позже {workdays.date_long(limit)}"},
                               code="activity_discipline")
