"""The one engine that applies the rules to items.

The first three kinds live in the `automation_rule` table (written once from the
declarations in rxcrm/rules/ by services/bootstrap.py, edited by admins on /settings
through services/rules_admin.py); only ACTIVE rows apply, read per call:

- required fields per stage (kind "required"): `missing_fields`;
- field-triggered moves (kind "trigger"): `after_fields_changed`,
  called by items.update_fields and items.move_stage(values=…) (and `set_values`);
- on-enter actions (kind "on_enter"): a hook in `AFTER_STAGE_CHANGE`, run by every
  items.move_stage; `apply_on_enter` for other entries;
- activity discipline (ACTIVITY_DISCIPLINE): `activity_discipline`, put into
  activities.VALIDATORS by `register_validators` (called when activities is imported).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from rxcrm.models import AutomationRule, Pipeline, Stage, TimelineEvent, User, utcnow
from rxcrm.rules.automation import ACTIVITY_DISCIPLINE, MAX_DEPTH
from rxcrm.settings import TZ

from .context import Actor
from .errors import ServiceError, ValidationFailed
from .fields import FieldDef, field_map

log = logging.getLogger(__name__)

def _notify_automation(session: Session, actor, entity: str, item, old: Stage, new: Stage) -> None:
    from . import notifications  # late import: notifications imports items which imports us
    notifications.stage_change_hook(session, actor, entity, item, old, new)


# Hooks called after a stage change: fn(session, actor, entity, item, old_stage, new_stage).
AFTER_STAGE_CHANGE: list[Callable] = [_notify_automation]



def value_of(item, key: str):
    if key.startswith("custom."):
        return (item.custom or {}).get(key.split(".", 1)[1])
    return getattr(item, key, None)


def active_rules(session: Session, kind: str, pipeline_code: str, stage_code: str | None = None
                 ) -> list[AutomationRule]:
    """Active rows of one kind for a pipeline (and a stage), in their order."""
    stmt = select(AutomationRule).where(AutomationRule.kind == kind, AutomationRule.is_active.is_(True),
                                        AutomationRule.pipeline_code == pipeline_code)
    if stage_code is not None:
        stmt = stmt.where(AutomationRule.stage_code == stage_code)
    return list(session.exec(stmt.order_by(AutomationRule.sort, AutomationRule.id)).all())


def required_for(session: Session, entity: str, stage: Stage) -> list[FieldDef]:
    pipe = session.get(Pipeline, stage.pipeline_id)
    keys: list[str] = []
    if pipe is not None:
        for rule in active_rules(session, "required", pipe.code, stage.code):
            keys += [k for k in (rule.config or {}).get("fields", []) if k not in keys]
    fmap = field_map(session, entity, stage.pipeline_id)
    return [fmap[k] for k in keys if k in fmap]


def missing_fields(session: Session, entity: str, item, stage: Stage) -> list[FieldDef]:
    """Fields the stage requires that the item does not have (amount 0 counts as empty)."""
    out = []
    for fd in required_for(session, entity, stage):
        value = value_of(item, fd.key)
        if value is None or (isinstance(value, str) and not value.strip()) or \
                (fd.kind == "money" and value == 0):
            out.append(fd)
    return out


def after_stage_change(session: Session, actor, entity: str, item, old: Stage, new: Stage) -> None:
    for hook in AFTER_STAGE_CHANGE:
        hook(session, actor, entity, item, old, new)


# ---- automation (kinds trigger / on_enter) -------------------------------------------------
# Rule kinds: field-triggered moves (after_fields_changed), on-enter actions (a hook in
# AFTER_STAGE_CHANGE) and the activity discipline (a validator in activities.VALIDATORS).
# Every change is made by an Actor(source="rule", login=<rule name>), so the timeline
# event (`rule` column), the audit record (source "rule") and the bell name the rule.

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


def after_fields_changed(session: Session, actor, entity: str, item, changes: dict) -> None:
    """Apply the active trigger rules after fields of `item` changed; `changes` is {key: (old, new)}
    as returned by items.apply_values. Called by items.update_fields / move_stage(values=)."""
    if not changes or entity not in ("lead", "deal") or getattr(item, "semantic", "process") != "process":
        return
    code = _pipeline_code(session, item)
    rules = [r for r in active_rules(session, "trigger", code)
             if (r.config or {}).get("field") in changes and changes[r.config["field"]][1] == r.config.get("equals")]
    if not rules:
        return
    from . import items  # late import: items imports us
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
    from . import workdays
    start = workdays.next_working_hour(now + timedelta(hours=in_hours))
    limit = latest_activity_date(item, now)
    if start.astimezone(TZ).date() > limit:  # keep within the discipline: the limit day, working hours
        start = max(datetime.combine(limit, workdays.WORK_START, tzinfo=TZ), workdays.next_working_hour(now))
        if start.astimezone(TZ).date() > limit:
            start = now + timedelta(minutes=1)
    return start


def _on_enter_action(session: Session, ra: Actor, entity: str, item, action: dict, now: datetime) -> None:
    kind = action["type"]
    if kind == "activity":
        from . import activities
        act_kind = action.get("kind", "call")
        duration = action.get("duration_min") or {"call": 15, "meeting": 60}.get(act_kind, 30)
        activities.plan_activity(session, ra, entity, item.id, kind=act_kind, subject=action["subject"],
                                 start_at=_activity_start(session, item, action.get("in_hours", 24), now),
                                 duration_min=duration, responsible_id=item.responsible_id, now=now)
    elif kind == "set":
        set_values(session, ra, entity, item, {action["field"]: action["value"]})
    elif kind == "notify":
        from . import notifications
        title = getattr(item, "title", "") or f"№{item.id}"
        text = action.get("text", "").replace("{title}", title) or f"Правило «{ra.login}»: «{title}»"
        users = _recipients(session, item, action.get("to", "responsible"))
        if not users:
            raise ServiceError("некому отправить уведомление", code="no_recipient")
        for u in users:
            notifications.notify(session, u.id, notifications.AUTOMATION, text, entity, item.id, now)
        _report(session, entity, item, ra.login, "Уведомление: " + ", ".join(u.full_name for u in users))
    else:
        raise ServiceError(f"неизвестное действие правила: {kind}")


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
    check and version bump of a person's edit; fires field triggers in turn."""
    from . import audit, items
    changes = items.apply_values(session, actor, entity, item, values)
    if changes:
        items._touch(item, actor)
        session.add(item)
        audit.record(session, actor, "update", entity, item.id,
                     {"changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}})
        after_fields_changed(session, actor, entity, item, changes)
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


def _on_enter_hook(session: Session, actor, entity: str, item, old: Stage, new: Stage) -> None:
    """On-enter rules run on moves between working stages; not on closing, nor on a
    reopen (a head returning a closed item to work is not a new entry)."""
    if new.semantic == "process" and old.semantic == "process":
        apply_on_enter(session, actor, entity, item, new)


AFTER_STAGE_CHANGE.append(_on_enter_hook)


# ---- activity discipline --------------------------------------------------------------

def latest_activity_date(item, now: datetime | None = None) -> date:
    """The last Moscow day an activity of `item` may be planned for: N working days after
    the last contact (or the creation); at least the first working day from today."""
    from . import workdays
    base = getattr(item, "last_contact_at", None) or getattr(item, "created_at", None) or now or utcnow()
    if base.utcoffset() is None:
        base = base.replace(tzinfo=UTC)
    n = int(ACTIVITY_DISCIPLINE.get("max_working_days_after_last_contact", 5))
    limit = workdays.add_working_days(base.astimezone(TZ).date(), n)
    today = workdays.add_working_days((now or utcnow()).astimezone(TZ).date(), 0)
    return max(limit, today)


def activity_discipline(session: Session, item, start_at: datetime) -> None:
    """activities.VALIDATORS entry: refuse an activity later than the discipline allows
    (leads and deals in work only)."""
    if not hasattr(item, "last_contact_at") or getattr(item, "semantic", "process") != "process":
        return
    from . import workdays
    limit = latest_activity_date(item)
    if start_at.astimezone(TZ).date() > limit:
        n = int(ACTIVITY_DISCIPLINE.get("max_working_days_after_last_contact", 5))
        raise ValidationFailed(f"Дело можно запланировать не позже {workdays.date_long(limit)} "
                               f"({n} рабочих дней после последнего контакта)",
                               fields={"start_at": f"Не позже {workdays.date_long(limit)}"},
                               code="activity_discipline")


def register_validators() -> None:
    """Put the activity discipline into activities.VALIDATORS (once). Called when this
    module is imported — activities imports items, which imports us, so it is always on."""
    from . import activities
    if activity_discipline not in activities.VALIDATORS:
        activities.VALIDATORS.append(activity_discipline)
