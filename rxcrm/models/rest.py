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


# Outbound events (Bitrix24's outgoing webhooks and event.bind)
OUTBOUND_EVENTS = tuple(f"ONCRM{e}{op}" for e in ("LEAD", "DEAL", "CONTACT", "COMPANY")
                        for op in ("ADD", "UPDATE", "DELETE"))
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class RestEventBinding(SQLModel, table=True):
    """A URL that receives an event (ONCRMDEALADD…), registered on /settings or by event.bind."""
    __tablename__ = "rest_event_binding"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    event: str = Field(index=True)
    handler: str  # the receiver's URL
    application_token: str  # sent as auth[application_token]: the receiver checks it is us
    name: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="crm_user.id")
    webhook_id: int | None = Field(default=None, foreign_key="rest_webhook.id")  # when bound by event.bind
    revoked_at: datetime | None = None


class RestOutbox(SQLModel, table=True):
    """One delivery to make, written in the same transaction as the change it announces:
    never lost by a restart; delivered by the outbound task with retries and backoff."""
    __tablename__ = "rest_outbox"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    binding_id: int = Field(foreign_key="rest_event_binding.id", index=True)
    event: str
    entity_type: str
    entity_id: int
    payload: dict = json_field(dict)  # the form fields Bitrix24 sends
    status: str = Field(default=PENDING, index=True)  # pending | delivered | failed
    attempts: int = 0
    next_at: datetime = Field(default_factory=utcnow, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    last_error: str = ""
