"""The one engine that applies the declarations in rxcrm/rules/ to items.

Today: required fields per stage and the after-move hook. Automation rules (field-
triggered moves, on-enter actions, intake mappings) plug into `after_change` hooks."""
from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from rxcrm.models import Pipeline, Stage
from rxcrm.rules.stage_requirements import REQUIRED_FIELDS

from .fields import FieldDef, field_map

def _notify_automation(session: Session, actor, entity: str, item, old: Stage, new: Stage) -> None:
    from . import notifications  # late import: notifications imports items which imports us
    notifications.stage_change_hook(session, actor, entity, item, old, new)


# Hooks called after a stage change: fn(session, actor, entity, item, old_stage, new_stage).
AFTER_STAGE_CHANGE: list[Callable] = [_notify_automation]



def value_of(item, key: str):
    if key.startswith("custom."):
        return (item.custom or {}).get(key.split(".", 1)[1])
    return getattr(item, key, None)


def required_for(session: Session, entity: str, stage: Stage) -> list[FieldDef]:
    pipe = session.get(Pipeline, stage.pipeline_id)
    keys = REQUIRED_FIELDS.get((pipe.code, stage.code), []) if pipe else []
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
