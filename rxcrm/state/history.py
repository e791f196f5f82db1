"""State of /history: the filterable, paginated audit table."""
from __future__ import annotations

import dataclasses

import reflex as rx

from rxcrm.db import session_scope
from rxcrm.services import history
from rxcrm.services.errors import ServiceError

from .app import AppState
from .work import Option

PAGE = 50


@dataclasses.dataclass
class HistoryRow:
    id: int = 0
    at: str = ""
    user: str = ""
    action_label: str = ""
    entity_label: str = ""
    title: str = ""
    href: str = ""
    details: str = ""
    source_label: str = ""


class HistoryState(AppState):
    h_rows: list[HistoryRow] = []
    h_total: int = 0
    h_page: int = 1
    h_error: str = ""
    h_user: str = "all"
    h_entity: str = "all"
    h_action: str = "all"
    h_from: str = ""
    h_to: str = ""
    h_user_options: list[Option] = []
    h_action_options: list[Option] = []
    h_entity_options: list[Option] = []

    @rx.var
    def h_pages(self) -> int:
        return max(1, -(-self.h_total // PAGE))

    @rx.event
    def on_load(self):
        actor = self.actor()
        if actor is None:
            return
        self.h_error = ""
        if not history.can_view(actor):
            self.h_error = "История доступна руководителям, директору и администратору"
            return
        with session_scope() as s:
            opts = history.history_filters_options(s, actor)
        self.h_user_options = [Option("all", "Все сотрудники")] + [Option(str(i), n) for i, n in opts["users"]]
        self.h_action_options = [Option("all", "Все действия")] + [Option(c, lab) for c, lab in opts["actions"]]
        self.h_entity_options = [Option("all", "Все элементы")] + [Option(c, lab) for c, lab in opts["entities"]]
        params = self.router.url.query_parameters
        self.h_user = params.get("user", "all")
        self.h_entity = params.get("entity", "all")
        self.h_action = params.get("action", "all")
        self.h_from, self.h_to, self.h_page = params.get("from", ""), params.get("to", ""), 1
        self._load()

    def _load(self) -> None:
        actor = self.actor()
        try:
            with session_scope() as s:
                rows, total = history.history_page(
                    s, actor, user_id=int(self.h_user) if self.h_user.isdigit() else None,
                    entity_type=None if self.h_entity == "all" else self.h_entity,
                    action=None if self.h_action == "all" else self.h_action,
                    date_from=self.h_from or None, date_to=self.h_to or None,
                    offset=(self.h_page - 1) * PAGE, limit=PAGE)
        except ServiceError as exc:
            self.h_error = exc.message
            self.h_rows, self.h_total = [], 0
            return
        self.h_error = ""
        self.h_rows = [HistoryRow(r["id"], r["at"], r["user"], r["action_label"], r["entity_label"], r["title"],
                                  r["href"], r["details"], r["source_label"]) for r in rows]
        self.h_total = total

    @rx.event
    def set_filter(self, key: str, value: str):
        setattr(self, {"user": "h_user", "entity": "h_entity", "action": "h_action", "from": "h_from",
                       "to": "h_to"}[key], value)
        self.h_page = 1
        self._load()

    @rx.event
    def set_h_page(self, page: int):
        self.h_page = max(1, min(int(page), self.h_pages))
        self._load()
