"""Integrations: secret tokens per integration and the raw intake log.

Every accepted event is stored as it came (`payload`) before it is processed, so nothing
is lost when processing fails; (integration, event_id) is unique — the idempotency key."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, Index, SQLModel, UniqueConstraint

from .base import TABLE_ARGS_EXTEND, json_field, utcnow

INTEGRATIONS = ("marketplace", "landing", "education")
RECEIVED, PROCESSED, FAILED = "received", "processed", "failed"


class IntegrationToken(SQLModel, table=True):
    """A secret bearer token of one integration; only its SHA-256 is stored."""
    __tablename__ = "integration_token"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    integration: str = Field(index=True)  # marketplace | landing | education
    name: str = ""
    token_hash: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class IntakeEvent(SQLModel, table=True):
    """One event pushed by an integration, stored raw before processing."""
    __tablename__ = "intake_event"
    __table_args__ = (
        UniqueConstraint("integration", "event_id", name="uq_intake_event_integration_event"),
        Index("ix_intake_event_status", "status", "received_at"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    integration: str
    event_id: str = Field(max_length=200)
    event_type: str = ""
    received_at: datetime = Field(default_factory=utcnow, index=True)
    payload: dict = json_field(dict)
    status: str = RECEIVED  # received | processed | failed
    result: dict = json_field(dict)
    error: str = Field(default="", sa_type=sa.Text)
    processed_at: datetime | None = None
    attempts: int = 0
