"""The one registry of what an item entity is: its model, its names in Russian (and
English), its section (URL path and page), whether it lives in a pipeline, and its views
as data — the fields its filter panel shows up front (the other filterable fields of the
catalog, services/fields.py, stay reachable through «Добавить поле») and the inputs of its
«Создать» dialog. Code asks this registry instead of keeping its own map of labels, models,
paths or hand-written forms."""
from __future__ import annotations

from dataclasses import dataclass

from rxcrm.models import Company, Contact, Deal, Lead


@dataclass(frozen=True)
class FormField:
    """One input of an entity's «Создать» dialog, in order. `name` is what the form submits
    (the create service's argument); `kind` picks the control: text, phone, email, money,
    program (a pick list of programs), source (a pick list of sources), note (a line of text,
    no input); `placeholder` is the UI catalog key of its placeholder (of the text, for a
    note); `required` marks the input; `half` puts it beside its neighbour on a wide screen."""
    name: str
    kind: str = "text"
    placeholder: str = ""
    required: bool = False
    half: bool = False


_PERSON = (FormField("last_name", placeholder="work.create.last_name", half=True),
           FormField("first_name", placeholder="work.create.first_name", half=True))
_MIDDLE = FormField("middle_name", placeholder="work.create.middle_name")
_REACH = (FormField("phone", "phone", "work.create.phone", half=True),
          FormField("email", "email", "work.create.email", half=True))
_PROGRAM = FormField("program", "program", "work.create.program")
_SOURCE = FormField("source", "source", "work.create.source")

# The filter panel's fields shown up front (catalog keys, in order); "next_activity_at" is
# the activity state (overdue / today / none), a filter of its own.
_WORK_PANEL = ("stage_id", "responsible_id", "source", "program_id", "created_at", "updated_at", "amount",
               "next_activity_at")


@dataclass(frozen=True)
class Entity:
    code: str          # "deal"
    model: type
    label: str         # «Сделка»
    label_en: str
    plural: str        # «Сделки»
    accusative: str    # «сделку» (назначена сделка / перевело сделку)
    section: str       # "deals": /deals, /deals/<id>, the page's name
    has_pipeline: bool
    feminine: bool     # «не найдена» / «не найден»
    filter_panel: tuple[str, ...] = ()       # catalog keys the filter panel shows up front
    create_form: tuple[FormField, ...] = ()  # the «Создать» dialog's inputs
    type_id: int = 0                         # Bitrix24's entityTypeId / OWNER_TYPE_ID (the REST API)

    def not_found(self, item_id) -> str:
        return f"{self.label} №{item_id} не {'найдена' if self.feminine else 'найден'}"


ENTITIES: dict[str, Entity] = {e.code: e for e in (
    Entity("lead", Lead, "Лид", "Lead", "Лиды", "лид", "leads", True, False, type_id=1,
           filter_panel=_WORK_PANEL,
           create_form=(FormField("title", placeholder="work.create.lead_title"), *_PERSON, _MIDDLE, *_REACH,
                        _PROGRAM, _SOURCE)),
    Entity("deal", Deal, "Сделка", "Deal", "Сделки", "сделку", "deals", True, True, type_id=2,
           filter_panel=_WORK_PANEL,
           create_form=(FormField("title", placeholder="work.create.deal_title", required=True), _PROGRAM,
                        FormField("amount", "money", "work.create.amount"),
                        FormField("", "note", "work.create.client_note"), *_PERSON, *_REACH, _SOURCE)),
    Entity("contact", Contact, "Контакт", "Contact", "Контакты", "контакт", "contacts", False, False, type_id=3,
           filter_panel=("responsible_id", "source", "created_at", "updated_at"),
           create_form=(*_PERSON, _MIDDLE, *_REACH)),
    Entity("company", Company, "Компания", "Company", "Компании", "компанию", "companies", False, True, type_id=4,
           filter_panel=("responsible_id", "created_at", "updated_at"),
           create_form=(FormField("title", placeholder="work.create.company_title", required=True),
                        FormField("inn", placeholder="work.create.inn"), *_REACH)),
)}
ITEM_ENTITIES = tuple(ENTITIES)                                          # lead, deal, contact, company
WORK_ENTITIES = tuple(c for c, e in ENTITIES.items() if e.has_pipeline)  # lead, deal: stages, activities due
MODELS = {c: e.model for c, e in ENTITIES.items()}
BY_SECTION = {e.section: c for c, e in ENTITIES.items()}
BY_TYPE_ID = {e.type_id: c for c, e in ENTITIES.items()}  # 2 → "deal"


def get(code: str) -> Entity:
    return ENTITIES[code]


def label(code: str, default: str = "") -> str:
    e = ENTITIES.get(code)
    return e.label if e else default


def href(code: str, item_id: int | None) -> str:
    """The item's card: /deals/17 ("" for an unknown entity or no id)."""
    e = ENTITIES.get(code)
    return f"/{e.section}/{item_id}" if e and item_id else ""


__all__ = ["BY_SECTION", "BY_TYPE_ID", "ENTITIES", "Entity", "FormField", "ITEM_ENTITIES", "MODELS", "WORK_ENTITIES", "get", "href", "label"]
