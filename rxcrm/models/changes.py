"""The change feed: one row per change of a lead, deal, contact or company, written in the
same transaction as the change. Boards read its newest id as the data version (a shared
summary is reused while it stands), and every app worker follows it to refresh what its
people are looking at (live updates) — across processes, without a message broker."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from .base import TABLE_ARGS_EXTEND, utcnow


class ChangeRecord(SQLModel, table=True):
    __tablename__ = "change_feed"
    __table_args__ = (TABLE_ARGS_EXTEND,)
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    entity_type: str
    entity_id: int
    pipeline_id: int | None = None
    kind: str = ""  # created | changed | deleted | bulk (entity_id 0: many rows at once)
    actor_id: int | None = None
    # who may see the item (a live update goes only to boards whose scope includes it)
    responsible_id: int | None = None
    department_id: int | None = None
