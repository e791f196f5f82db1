"""Pipelines (Воронки), stages (Стадии) and custom fields: configuration as data."""
from __future__ import annotations

from sqlmodel import Field, SQLModel, UniqueConstraint

from .base import TABLE_ARGS_EXTEND, json_field

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
