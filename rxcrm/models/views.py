"""Views are data: filter presets, column sets and per-user page settings."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel, UniqueConstraint

from .base import TABLE_ARGS_EXTEND, json_field, utcnow


class FilterPreset(SQLModel, table=True):
    """Представление фильтра: a named filter, personal (owner) or shared."""
    __tablename__ = "filter_preset"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    page: str = Field(index=True)  # leads | deals | contacts | companies | analytics
    name: str
    owner_id: int | None = Field(default=None, foreign_key="crm_user.id", index=True)
    is_shared: bool = False
    is_builtin: bool = False
    code: str = ""  # stable code of built-in presets
    filters: dict = json_field(dict)
    sort: int = 100  # the preset's place in the menu
    # The rest of the view it names ("" = no opinion: the page keeps its own): board or list,
    # and the list's order (a catalog field, or "queue": services/queue.py's work priority).
    view_mode: str = ""
    list_sort: str = ""
    list_desc: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ColumnSet(SQLModel, table=True):
    """Columns chosen for a list page; user_id NULL = the default for everyone."""
    __tablename__ = "column_set"
    __table_args__ = (UniqueConstraint("page", "user_id"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    page: str
    user_id: int | None = Field(default=None, foreign_key="crm_user.id")
    columns: list = json_field(list)
    updated_at: datetime = Field(default_factory=utcnow)


class PresetRoleDefault(SQLModel, table=True):
    """The preset a page opens on for a role (until a person pins their own): managers their
    own items in work, heads their department's, directors and admins everything in work."""
    __tablename__ = "preset_role_default"
    __table_args__ = (UniqueConstraint("page", "role_code"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    page: str
    role_code: str
    preset_id: int = Field(foreign_key="filter_preset.id")


class UserPageSetting(SQLModel, table=True):
    """Per user and page: the pinned default preset, board/list mode, page size, and the
    pipeline chosen last (leads/deals; no foreign key: a pipeline that is gone is ignored)."""
    __tablename__ = "user_page_setting"
    __table_args__ = (UniqueConstraint("user_id", "page"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="crm_user.id")
    page: str
    default_preset_id: int | None = Field(default=None, foreign_key="filter_preset.id")
    view_mode: str = ""
    page_size: int = 20
    pipeline_id: int | None = None
