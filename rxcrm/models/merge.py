"""What a merge of duplicates did (services/merge.py), so that restoring a merged-away item
from the recycle bin can undo it: one row per merged-away item."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Index, SQLModel

from .base import TABLE_ARGS_EXTEND, json_field, utcnow


class MergeRecord(SQLModel, table=True):
    """`survivor_id` absorbed `merged_id` (both of `entity_type`: contact or company).

    `moved` lists the rows the merge moved from the merged item to the survivor, by kind:
    {"deal": [ids], "lead": [ids], "contact": [ids] (a company's contacts), "activity": [ids],
    "comment": [ids], "timeline": [ids], "communication": [ids]}. `before` / `after` are the
    survivor's values (by merge field key, as JSON keeps them) of the fields that took this
    item's value: before the merge and right after it. `undone_at` is set when the merged
    item came back from the recycle bin and the merge was undone."""
    __tablename__ = "merge_record"
    __table_args__ = (
        Index("ix_merge_record_merged", "entity_type", "merged_id"),
        Index("ix_merge_record_survivor", "entity_type", "survivor_id"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    survivor_id: int
    merged_id: int
    moved: dict = json_field(dict)
    before: dict = json_field(dict)
    after: dict = json_field(dict)
    survivor_version: int = 0  # the survivor's version right after the merge
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="crm_user.id")
    undone_at: datetime | None = None
    undone_by_id: int | None = Field(default=None, foreign_key="crm_user.id")
