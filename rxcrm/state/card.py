"""State of a card page (/leads/<id>, /deals/<id>, /contacts/<id>, /companies/<id>)."""
from __future__ import annotations

import dataclasses

import reflex as rx

from rxcrm.db import session_scope
from rxcrm.services import cards
from rxcrm.services.errors import AccessDenied, NotFound

from .app import AppState

ENTITY = {"leads": "lead", "deals": "deal", "contacts": "contact", "companies": "company"}


@dataclasses.dataclass
class StageChip:
    id: int = 0
    name: str = ""
    color: str = ""
    semantic: str = ""
    current: bool = False
    passed: bool = False


@dataclasses.dataclass
class FieldRow:
    label: str = ""
    value: str = ""


@dataclasses.dataclass
class Block:
    title: str = ""
    fields: list[FieldRow] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class LinkRow:
    kind: str = ""
    title: str = ""
    href: str = ""


@dataclasses.dataclass
class Event:
    id: int = 0
    kind: str = ""
    label: str = ""
    text: str = ""
    who: str = ""
    at: str = ""


@dataclasses.dataclass
class Planned:
    id: int = 0
    kind: str = ""
    subject: str = ""
    at: str = ""
    overdue: bool = False


class CardState(AppState):
    card_entity: str = "deal"
    card_section: str = "deals"
    card_id: int = 0
    card_title: str = ""
    card_error: str = ""
    stages: list[StageChip] = []
    blocks: list[Block] = []
    card_links: list[LinkRow] = []
    events: list[Event] = []
    planned_items: list[Planned] = []
    events_more: bool = False
    kind_filter: str = ""

    @rx.event
    def load_card(self):
        actor = self.actor()
        if actor is None:
            return
        parts = (self.router.url.path or "").strip("/").split("/")
        self.card_section = parts[0] if parts and parts[0] in ENTITY else "deals"
        self.card_entity = ENTITY[self.card_section]
        self.card_error, self.kind_filter, self.card_title = "", "", ""
        self.stages, self.blocks, self.card_links, self.events, self.planned_items = [], [], [], [], []
        try:
            self.card_id = int(parts[1])
        except (IndexError, ValueError):
            self.card_error = "Не найдено"
            return
        try:
            with session_scope() as s:
                data = cards.open_card(s, actor, self.card_entity, self.card_id)
                planned = cards.planned(s, actor, self.card_entity, self.card_id)
                events, more = cards.timeline(s, actor, self.card_entity, self.card_id)
        except (AccessDenied, NotFound) as exc:
            self.card_error = "Нет доступа" if isinstance(exc, AccessDenied) else exc.message
            return
        self.card_title = data["title"]
        current = next((i for i, st in enumerate(data["stages"]) if st["current"]), -1)
        self.stages = [StageChip(st["id"], st["name"], st["color"], st["semantic"], st["current"], i < current)
                       for i, st in enumerate(data["stages"])]
        self.blocks = [Block(b["title"], [FieldRow(f["label"], f["value"]) for f in b["fields"]])
                       for b in data["blocks"] if b["fields"]]
        self.card_links = [LinkRow(**link) for link in data["links"]]
        self.planned_items = [Planned(**p) for p in planned]
        self.events = [Event(**{k: e[k] for k in ("id", "kind", "label", "text", "who", "at")}) for e in events]
        self.events_more = more

    def _events(self, offset: int):
        actor = self.actor()
        with session_scope() as s:
            return cards.timeline(s, actor, self.card_entity, self.card_id, offset=offset, kind=self.kind_filter)

    @rx.event
    def more_events(self):
        events, more = self._events(len(self.events))
        self.events = self.events + [Event(**{k: e[k] for k in ("id", "kind", "label", "text", "who", "at")})
                                     for e in events]
        self.events_more = more

    @rx.event
    def set_kind_filter(self, kind: str):
        self.kind_filter = "" if kind == "all" else kind
        events, more = self._events(0)
        self.events = [Event(**{k: e[k] for k in ("id", "kind", "label", "text", "who", "at")}) for e in events]
        self.events_more = more
