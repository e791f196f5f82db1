"""Shared column helpers for all tables (plain SQLModel, no Reflex)."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field

# Entity kinds used in polymorphic tables (communications, timeline, audit, activities).
LEAD, DEAL, CONTACT, COMPANY = "lead", "deal", "contact", "company"
ENTITY_KINDS = (LEAD, DEAL, CONTACT, COMPANY)


def utcnow() -> datetime:
    return datetime.now(UTC)


def money_field(default: Decimal | None = None, **kw: Any) -> Any:
    return Field(default=default, sa_type=sa.Numeric(14, 2), **kw)


def json_field(default_factory=dict) -> Any:
    """A JSON column (SQLite JSON1 / PostgreSQL JSONB via variant)."""
    return Field(
        default_factory=default_factory,
        sa_type=sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
    )


def fk(target: str, index: bool = True, nullable: bool = True, ondelete: str | None = None) -> Any:
    return Field(
        default=None,
        foreign_key=target,
        index=index,
        nullable=nullable,
        ondelete=ondelete,
    )


TABLE_ARGS_EXTEND = {"extend_existing": True}
