"""Bitrix24-compatible REST: inbound webhooks (rxcrm/rest).

A webhook is Bitrix24's «входящий вебхук»: `/rest/<user_id>/<code>/<method>` runs as that
user, within the webhook's scopes. Only the code's SHA-256 is stored: the URL is shown once,
when the webhook is created."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from .base import TABLE_ARGS_EXTEND, json_field, utcnow

SCOPES = ("crm", "user")


class RestWebhook(SQLModel, table=True):
    __tablename__ = "rest_webhook"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="crm_user.id", index=True)  # the calls run as this user
    name: str  # «Маркетплейс курсов»: the source of the changes it makes (history, audit)
    code_hash: str = Field(index=True, unique=True)
    scopes: list = json_field(list)  # of SCOPES
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="crm_user.id")
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
