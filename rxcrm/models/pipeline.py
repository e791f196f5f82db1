"""Pipelines (Воронки), stages (Стадии) and custom fields: configuration as data."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel, UniqueConstraint

from .base import TABLE_ARGS_EXTEND, json_field, utcnow

PROCESS, SUCCESS, FAILURE = "process", "success", "failure"
SEMANTICS = (PROCESS, SUCCESS, FAILURE)


class Pipeline(SQLModel, table=True):
    __tablename__ = "pipeline"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(index=True)  # "lead" | "deal"
    code: str = Field(index=True, unique=True)
    name: str
    sort: int = 100
    is_default: bool = False
    department_id: int | None = Field(default=None, foreign_key="department.id")


class Stage(SQLModel, table=True):
    __tablename__ = "stage"
    __table_args__ = (UniqueConstraint("pipeline_id", "code"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    pipeline_id: int = Field(foreign_key="pipeline.id", index=True)
    code: str
    name: str
    color: str = "#2fc6f6"
    sort: int = 100
    semantic: str = PROCESS  # process | success | failure


class CustomField(SQLModel, table=True):
    """A user-defined field. Values live in the `custom` JSON column of the item,
    keyed by `code`; `pipeline_id` NULL means every pipeline of the entity."""
    __tablename__ = "custom_field"
    __table_args__ = (UniqueConstraint("entity", "code"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(index=True)  # lead | deal | contact | company
    pipeline_id: int | None = Field(default=None, foreign_key="pipeline.id", index=True)
    code: str
    label: str
    label_en: str = ""
    field_type: str = "string"  # string | text | number | money | bool | date | enum | file
    options: list = json_field(list)
    sort: int = 100
    block: str = ""  # card block it shows in (e.g. "Оплата")


RULE_KINDS = ("required", "trigger", "on_enter")


class AutomationRule(SQLModel, table=True):
    """An editable rule, applied by services/rules_engine.py. Written once from
    the declarations in rxcrm/rules/ by services/bootstrap.py; afterwards the DB is the truth.

    kind "required": `stage_code` is the stage, config {"fields": [field keys]};
    kind "trigger": `stage_code` is the stage the item must be in ("" = any),
        config {"field": key, "equals": value, "to_stage": code};
    kind "on_enter": `stage_code` is the stage entered, config {"actions": [...]}."""
    __tablename__ = "automation_rule"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)  # required | trigger | on_enter
    name: str = ""
    pipeline_code: str = Field(index=True)
    stage_code: str = ""
    config: dict = json_field(dict)
    is_active: bool = True
    sort: int = 100
    updated_at: datetime = Field(default_factory=utcnow)
