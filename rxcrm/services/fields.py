"""The field catalog of each entity: labels, types, how a field is shown, sorted,
filtered and exported. One registry serves the list columns, the column chooser, the
filter panel (its fields up front are declared per entity in services/entities.py, the
others are offered by «Добавить поле»), and the Excel headers. Custom fields are appended
from the `custom_field` table per pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlmodel import Session, select

from rxcrm.models import CustomField
from rxcrm.rules.defaults import SOURCES

from .entities import MODELS  # the registry of item entities
from .shared import CONFIG, CONFIG_TTL_S, SharedAnswers, db_key

# How a yes/no field's value is stored, shown and typed (a custom bool field keeps «Да»/«Нет»).
YES, NO = "Да", "Нет"


def is_yes(text: str) -> bool:
    """A typed yes/no value: «да», 1, true, yes, on (any case)."""
    return text.strip().lower() in (YES.lower(), "1", "true", "yes", "on")


# kinds: text, int, money, number, date, datetime, bool, enum, stage, user, program,
#        pipeline, contact, company, phone, email, activity
@dataclass(frozen=True)
class FieldDef:
    key: str
    label: str
    label_en: str
    kind: str = "text"
    column: str | None = None  # model attribute; None = computed (joined) value
    sortable: bool = True
    filterable: bool = True
    options: tuple = field(default=())
    # What an empty input means for this field (set from the model's column, see _empty_rule):
    # "null" = NULL (custom fields: the key is removed), "blank" = "" (a NOT NULL text
    # column), "required" = refused (a NOT NULL column of another type, or a text the
    # model requires, e.g. a title).
    empty: str = "null"

    def title(self, lang: str) -> str:
        return self.label_en if lang == "en" and self.label_en else self.label


def _f(key, label, label_en, kind="text", column="", sortable=True, filterable=True, options=()):
    return FieldDef(key, label, label_en, kind, key if column == "" else column, sortable, filterable,
                    tuple(options))


_COMMON_TAIL = [
    _f("responsible_id", "Ответственный", "Responsible", "user"),
    _f("created_at", "Дата создания", "Created", "datetime"),
    _f("updated_at", "Дата изменения", "Modified", "datetime"),
]

_UTM = [
    _f("utm_source", "utm_source", "utm_source"),
    _f("utm_medium", "utm_medium", "utm_medium"),
    _f("utm_campaign", "utm_campaign", "utm_campaign"),
    _f("utm_content", "utm_content", "utm_content"),
    _f("utm_term", "utm_term", "utm_term"),
]

_WORK = [
    _f("stage_id", "Стадия", "Stage", "stage"),
    _f("amount", "Сумма", "Amount", "money"),
    _f("source", "Источник", "Source", "enum", options=SOURCES),
    _f("program_id", "Образовательная программа", "Program", "program"),
    _f("next_activity_at", "Дела", "Activities", "activity"),
]

CATALOG: dict[str, list[FieldDef]] = {
    "lead": [
        _f("id", "ID", "ID", "int"),
        _f("title", "Название лида", "Lead name"),
        _f("pipeline_id", "Воронка", "Pipeline", "pipeline"),
        _f("name", "ФИО", "Full name", "text", column=None),
        _f("last_name", "Фамилия", "Last name"),
        _f("first_name", "Имя", "First name"),
        _f("middle_name", "Отчество", "Middle name"),
        _f("phone", "Телефон", "Phone", "phone", column=None, sortable=False),
        _f("email", "E-mail", "E-mail", "email", column=None, sortable=False),
        *_WORK,
        _f("company_title", "Название компании", "Company name"),
        _f("position", "Должность", "Position"),
        _f("marketplace_action", "Действие на Маркетплейсе", "Marketplace action", "enum",
           options=("Добавлено в избранное", "Добавлено в сравнение")),
        _f("education_level", "Уровень образования", "Education level"),
        _f("interest_area", "Сфера интересов", "Area of interest"),
        _f("is_repeat", "Повторный лид", "Repeat lead", "bool"),
        _f("close_reason", "Причина", "Reason"),
        _f("comment", "Комментарий", "Comment", sortable=False),
        *_UTM,
        *_COMMON_TAIL,
    ],
    "deal": [
        _f("id", "ID", "ID", "int"),
        _f("title", "Сделка", "Deal"),
        _f("pipeline_id", "Воронка", "Pipeline", "pipeline"),
        _f("contact_id", "Контакт", "Contact", "contact"),
        _f("company_id", "Компания", "Company", "company"),
        _f("phone", "Телефон", "Phone", "phone", column=None, sortable=False),
        *_WORK,
        _f("probability", "Вероятность", "Probability", "int"),
        _f("first_payment_amount", "Сумма первого платежа", "First payment", "money"),
        _f("deal_type", "Тип", "Type"),
        _f("close_date", "Предполагаемая дата закрытия", "Expected close date", "date"),
        _f("closed_at", "Дата закрытия", "Closed", "datetime"),
        _f("lost_reason", "Причина проигрыша", "Lost reason"),
        _f("is_repeat", "Повторная сделка", "Repeat deal", "bool"),
        _f("comment", "Комментарий", "Comment", sortable=False),
        *_UTM,
        *_COMMON_TAIL,
    ],
    "contact": [
        _f("id", "ID", "ID", "int"),
        _f("full_name", "ФИО", "Full name"),
        _f("phone", "Телефон", "Phone", "phone", column=None, sortable=False),
        _f("email", "E-mail", "E-mail", "email", column=None, sortable=False),
        _f("company_id", "Компания", "Company", "company"),
        _f("position", "Должность", "Position"),
        _f("birthday", "Дата рождения", "Birthday", "date"),
        _f("source", "Источник", "Source", "enum", options=SOURCES),
        _f("comment", "Комментарий", "Comment", sortable=False),
        *_COMMON_TAIL,
    ],
    "company": [
        _f("id", "ID", "ID", "int"),
        _f("title", "Название компании", "Company name"),
        _f("phone", "Телефон", "Phone", "phone", column=None, sortable=False),
        _f("email", "E-mail", "E-mail", "email", column=None, sortable=False),
        _f("inn", "ИНН", "Tax ID"),
        _f("industry", "Сфера деятельности", "Industry"),
        _f("address", "Адрес", "Address", sortable=False),
        _f("comment", "Комментарий", "Comment", sortable=False),
        *_COMMON_TAIL,
    ],
}


def _empty_rule(model, fd: FieldDef) -> str:
    """How an empty value is stored in `fd`'s column of `model` (FieldDef.empty)."""
    col = model.__table__.c.get(fd.column) if fd.column else None
    if col is None:
        return "null"
    is_text = isinstance(getattr(col.type, "impl_instance", col.type), sa.String)  # (AutoString wraps String)
    info = model.model_fields.get(fd.column)
    if is_text:
        return "required" if info is not None and info.is_required() else "blank"
    return "null" if col.nullable and not col.primary_key else "required"


# Each entity's definitions know how their own column treats an empty value.
CATALOG = {entity: [replace(fd, empty=_empty_rule(MODELS[entity], fd)) for fd in defs]
           for entity, defs in CATALOG.items()}

DEFAULT_COLUMNS = {
    "lead": ["title", "name", "stage_id", "phone", "source", "program_id", "next_activity_at",
             "responsible_id", "created_at"],
    "deal": ["title", "stage_id", "contact_id", "amount", "program_id", "next_activity_at",
             "responsible_id", "created_at"],
    "contact": ["full_name", "phone", "email", "company_id", "responsible_id", "created_at"],
    "company": ["title", "phone", "email", "industry", "responsible_id", "created_at"],
}

_CUSTOM_KIND = {"string": "text", "text": "text", "number": "number", "money": "money", "bool": "bool",
                "date": "date", "enum": "enum", "file": "text"}


_CUSTOM = SharedAnswers(size=512, ttl=CONFIG_TTL_S)


def custom_defs(session: Session, entity: str, pipeline_id: int | None = None) -> list[FieldDef]:
    """The custom fields of an entity (and pipeline), cached per process with the configuration."""
    def read() -> list[FieldDef]:
        q = select(CustomField).where(CustomField.entity == entity).order_by(CustomField.sort, CustomField.id)
        if pipeline_id is not None:
            q = q.where((CustomField.pipeline_id == pipeline_id) | (CustomField.pipeline_id.is_(None)))
        return [FieldDef(f"custom.{c.code}", c.label, c.label_en or c.label, _CUSTOM_KIND.get(c.field_type, "text"),
                         None, True, True, tuple(c.options or ())) for c in session.exec(q).all()]
    return list(_CUSTOM.get((db_key(session), CONFIG.value, entity, pipeline_id), read))


def all_fields(session: Session, entity: str, pipeline_id: int | None = None) -> list[FieldDef]:
    return CATALOG[entity] + custom_defs(session, entity, pipeline_id)


def field_map(session: Session, entity: str, pipeline_id: int | None = None) -> dict[str, FieldDef]:
    return {f.key: f for f in all_fields(session, entity, pipeline_id)}
