"""What a stage asks of an item before it may enter (rule kind "required"): read by
items.move_stage and create before they write, so it is a plain query module — the rules
engine's reactions to changes live in rules_engine.py and run through events."""
from __future__ import annotations

from sqlmodel import Session, select

from rxcrm.models import AutomationRule, Pipeline, Stage

from .fields import FieldDef, field_map
from .shared import CONFIG, CONFIG_TTL_S, SharedAnswers, db_key
from .records import value_of


_RULES = SharedAnswers(size=512, ttl=CONFIG_TTL_S)


def active_rules(session: Session, kind: str, pipeline_code: str, stage_code: str | None = None
                 ) -> list[AutomationRule]:
    """Active rows of one kind for a pipeline (and a stage), in their order. Which rows they
    are is kept per process with the configuration generation (every create and move asks;
    most stages have none), the rows themselves come from the session."""
    def read() -> tuple[int, ...]:
        stmt = select(AutomationRule.id).where(AutomationRule.kind == kind, AutomationRule.is_active.is_(True),
                                               AutomationRule.pipeline_code == pipeline_code)
        if stage_code is not None:
            stmt = stmt.where(AutomationRule.stage_code == stage_code)
        return tuple(session.exec(stmt.order_by(AutomationRule.sort, AutomationRule.id)).all())
    ids = _RULES.get((db_key(session), CONFIG.value, kind, pipeline_code, stage_code), read)
    rules = [session.get(AutomationRule, i) for i in ids]
    return [r for r in rules if r is not None and r.is_active]


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
    return missing_of(item, required_for(session, entity, stage))


def missing_of(item, required: list[FieldDef]) -> list[FieldDef]:
    """Of these required fields, those the item does not have."""
    out = []
    for fd in required:
        value = value_of(item, fd.key)
        if value is None or (isinstance(value, str) and not value.strip()) or \
                (fd.kind == "money" and value == 0):
            out.append(fd)
    return out


__all__ = ["active_rules", "missing_fields", "missing_of", "required_for"]
