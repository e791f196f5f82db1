"""CRM items: leads, deals, contacts, companies, their phones/emails, programs."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import declared_attr
from sqlmodel import Field, Index, SQLModel

from .base import TABLE_ARGS_EXTEND, json_field, money_field, utcnow

PHONE, EMAIL = "phone", "email"


def _same_version(current: int | None) -> int:
    """Version of an ORM write that did not bump it itself: unchanged (1 for a new row)."""
    return 1 if current is None else current


class _Tracked(SQLModel):
    """Columns every CRM item carries: who/when, soft delete, version, custom fields.

    `version` is the mapper's optimistic version column: every ORM UPDATE of an item carries
    `WHERE version = <the version this transaction read>`, so of two transactions that read
    the same version and both write, the later one gets `StaleDataError` (which
    `db.transact` retries, and the retry sees the new version). The number itself grows only
    through `records.touch` (a person's or a rule's change of the card); writes that are no
    card edit (e.g. `next_activity_at` kept by the activity service) keep it as it is."""

    @declared_attr
    def __mapper_args__(cls) -> dict:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version, "version_id_generator": _same_version}

    responsible_id: int | None = Field(default=None, foreign_key="crm_user.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    created_by_id: int | None = Field(default=None, foreign_key="crm_user.id")
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    updated_by_id: int | None = Field(default=None, foreign_key="crm_user.id")
    deleted_at: datetime | None = Field(default=None, index=True)
    version: int = 1  # optimistic concurrency: see the class doc
    custom: dict = json_field(dict)  # custom field values keyed by CustomField.code
    search_text: str = ""  # lower-cased title/names/emails for free-text search
    comment: str = ""


class _UTM(SQLModel):
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = Field(default="", index=True)
    utm_content: str = ""
    utm_term: str = ""


class _Person(SQLModel):
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    birthday: date | None = None
    position: str = ""


class _Work(SQLModel):
    """Stage-tracked sales item fields shared by leads and deals."""
    title: str
    pipeline_id: int = Field(foreign_key="pipeline.id", index=True)
    stage_id: int = Field(foreign_key="stage.id", index=True)
    semantic: str = Field(default="process", index=True)  # copy of the stage semantic
    stage_changed_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    source: str = Field(default="", index=True)
    program_id: int | None = Field(default=None, foreign_key="product.id", index=True)
    amount: Decimal | None = money_field(Decimal("0"))
    currency: str = "RUB"
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    is_repeat: bool = False
    # Denormalised for the board and the activity-state filter; kept by the activity service.
    next_activity_at: datetime | None = Field(default=None, index=True)
    last_contact_at: datetime | None = None


class Company(_Tracked, table=True):
    __tablename__ = "company"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(index=True)
    inn: str = ""
    industry: str = ""
    address: str = ""
    website: str = ""


class Contact(_Tracked, _Person, table=True):
    __tablename__ = "contact"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    full_name: str = Field(default="", index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    source: str = ""


class Communication(SQLModel, table=True):
    """A phone or an email of a lead/contact/company (like Bitrix24's multi-fields).

    `norm` is the comparable form: phone digits in 7XXXXXXXXXX form, email lower-cased.
    `norm_rev` is `norm` reversed so that a suffix search ("654-32-10") is an indexed
    prefix range on `norm_rev`."""
    __tablename__ = "communication"
    __table_args__ = (
        Index("ix_comm_kind_rev", "kind", "norm_rev"),
        Index("ix_comm_kind_norm", "kind", "norm"),
        Index("ix_comm_entity", "entity_type", "entity_id"),
        # duplicates (services/merge.py): GROUP BY kind, norm of one entity, read from the index alone
        Index("ix_comm_dup", "entity_type", "kind", "norm", "entity_id"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    entity_id: int
    kind: str  # phone | email
    value_type: str = "work"  # work | mobile | home | other
    value: str  # as typed
    norm: str
    norm_rev: str


class Product(SQLModel, table=True):
    """An educational program (Образовательная программа) sold as a product."""
    __tablename__ = "product"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(index=True)
    code: str = Field(default="", index=True)
    price: Decimal = money_field(Decimal("0"))
    currency: str = "RUB"
    start_date: date | None = None
    hours: int = 0
    study_form: str = ""  # очная / очно-заочная / дистанционная
    category: str = ""
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Lead(_Tracked, _UTM, _Person, _Work, table=True):
    __tablename__ = "lead"
    __table_args__ = (
        Index("ix_lead_board", "pipeline_id", "stage_id", "created_at"),
        Index("ix_lead_resp_sem", "responsible_id", "semantic"),
        # Covering index: board sums/counters, list counts and text search read only this.
        Index("ix_lead_cover", "pipeline_id", "stage_id", "deleted_at", "department_id", "responsible_id",
              "amount", "next_activity_at", "search_text"),
        # Covering index of the analytics scans by creation date (dynamics, conversion by …).
        Index("ix_lead_created_cover", "created_at", "pipeline_id", "deleted_at", "department_id",
              "responsible_id", "semantic", "source", "program_id", "utm_campaign", "amount"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    # no single-column index of their own: each is the first column of a composite one
    # (…_resp_sem, …_created_cover, …_board) that serves the same lookups (migration 0017)
    responsible_id: int | None = Field(default=None, foreign_key="crm_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    pipeline_id: int = Field(foreign_key="pipeline.id")
    company_title: str = ""
    marketplace_action: str = ""  # Добавлено в избранное / Добавлено в сравнение
    education_level: str = ""
    interest_area: str = ""
    close_reason: str = ""  # why junk (Некачественный / Нецелевые\Дубли)
    deal_id: int | None = Field(default=None, index=True)  # deal created on conversion


class Deal(_Tracked, _UTM, _Work, table=True):
    __tablename__ = "deal"
    __table_args__ = (
        Index("ix_deal_board", "pipeline_id", "stage_id", "created_at"),
        Index("ix_deal_resp_sem", "responsible_id", "semantic"),
        # Covering index: board sums/counters, list counts and text search read only this.
        Index("ix_deal_cover", "pipeline_id", "stage_id", "deleted_at", "department_id", "responsible_id",
              "amount", "next_activity_at", "search_text"),
        # Covering index of the analytics scans by creation date (dynamics, conversion by …).
        Index("ix_deal_created_cover", "created_at", "pipeline_id", "deleted_at", "department_id",
              "responsible_id", "semantic", "source", "program_id", "utm_campaign", "amount"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    # no single-column index of their own: each is the first column of a composite one
    # (…_resp_sem, …_created_cover, …_board) that serves the same lookups (migration 0017)
    responsible_id: int | None = Field(default=None, foreign_key="crm_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    pipeline_id: int = Field(foreign_key="pipeline.id")
    lead_id: int | None = Field(default=None, foreign_key="lead.id", index=True)
    probability: int = 0
    deal_type: str = ""
    first_payment_amount: Decimal | None = money_field(None)
    close_date: date | None = None
    lost_reason: str = ""


class DealProduct(SQLModel, table=True):
    __tablename__ = "deal_product"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="deal.id", index=True)
    product_id: int | None = Field(default=None, foreign_key="product.id", index=True)
    title: str
    price: Decimal = money_field(Decimal("0"))
    quantity: Decimal = Field(default=Decimal("1"), sa_type=sa.Numeric(10, 2))
    discount_pct: Decimal = Field(default=Decimal("0"), sa_type=sa.Numeric(5, 2))
    sort: int = 100
