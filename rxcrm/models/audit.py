"""Audit trail (История): who did what to which item, when, from where."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Index, SQLModel

from .base import TABLE_ARGS_EXTEND, json_field, utcnow


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"
    __table_args__ = (
        Index("ix_audit_entity", "entity_type", "entity_id"),
        Index("ix_audit_user_time", "user_id", "created_at"),
        # Login rate limit (failed logins of the last minutes) and /history by action and date.
        Index("ix_audit_action_time", "action", "created_at"),
        Index("ix_audit_action_client_time", "action", "client", "created_at"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    user_id: int | None = None
    action: str = Field(index=True)  # create, update, delete, move, convert, close, view, export, login, ...
    entity_type: str = ""
    entity_id: int | None = None
    source: str = "ui"  # ui | intake | rule | system
    details: dict = json_field(dict)
    client: str = ""
