"""The one registry of what an item entity is: its model, its names in Russian (and
English), its section (URL path and page), whether it lives in a pipeline. Code asks this
registry instead of keeping its own map of labels, models or paths."""
from __future__ import annotations

from dataclasses import dataclass

from rxcrm.models import Company, Contact, Deal, Lead


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

    def not_found(self, item_id) -> str:
        return f"{self.label} №{item_id} не {'найдена' if self.feminine else 'найден'}"


ENTITIES: dict[str, Entity] = {e.code: e for e in (
    Entity("lead", Lead, "Лид", "Lead", "Лиды", "лид", "leads", True, False),
    Entity("deal", Deal, "Сделка", "Deal", "Сделки", "сделку", "deals", True, True),
    Entity("contact", Contact, "Контакт", "Contact", "Контакты", "контакт", "contacts", False, False),
    Entity("company", Company, "Компания", "Company", "Компании", "компанию", "companies", False, True),
)}
ITEM_ENTITIES = tuple(ENTITIES)                                          # lead, deal, contact, company
WORK_ENTITIES = tuple(c for c, e in ENTITIES.items() if e.has_pipeline)  # lead, deal: stages, activities due
MODELS = {c: e.model for c, e in ENTITIES.items()}
BY_SECTION = {e.section: c for c, e in ENTITIES.items()}


def get(code: str) -> Entity:
    return ENTITIES[code]


def label(code: str, default: str = "") -> str:
    e = ENTITIES.get(code)
    return e.label if e else default


def href(code: str, item_id: int | None) -> str:
    """The item's card: /deals/17 ("" for an unknown entity or no id)."""
    e = ENTITIES.get(code)
    return f"/{e.section}/{item_id}" if e and item_id else ""


__all__ = ["BY_SECTION", "ENTITIES", "Entity", "ITEM_ENTITIES", "MODELS", "WORK_ENTITIES", "get", "href", "label"]
