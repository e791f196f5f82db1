"""State of /history: the filterable, paginated audit table."""
from __future__ import annotations

import dataclasses

import reflex as rx

from rxcrm import i18n
from rxcrm.services import history
from rxcrm.services.errors import ServiceError

from .app import AppState
from .base import choice, event, id_or_none, to_int, to_text
from .work import Option

PAGE = 50
FILTER_VARS = {"user": "h_user", "entity": "h_entity", "action": "h_action", "from": "h_from", "to": "h_to"}


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

    @event
    def on_load(self):
        actor = self._require_actor()
        self.h_error = ""
        if not history.can_view(actor):
            self.h_error = self._tr("history.denied")
            return
        opts = self._read(history.history_filters_options, actor=actor)
        self.h_user_options = [Option("all", self._tr("history.all_users"))] + \
            [Option(str(i), n) for i, n in opts["users"]]
        self.h_action_options = [Option("all", self._tr("history.all_actions"))] + \
            [Option(c, self._label("action", c, lab)) for c, lab in opts["actions"]]
        self.h_entity_options = [Option("all", self._tr("history.all_items"))] + \
            [Option(c, self._label("entity", c, lab)) for c, lab in opts["entities"]]
        params = self.router.url.query_parameters
        self.h_user = to_text(params.get("user", "all"), self._tr("history.arg.user"), 20)
        self.h_entity = to_text(params.get("entity", "all"), self._tr("history.arg.item"), 50)
        self.h_action = to_text(params.get("action", "all"), self._tr("history.arg.action"), 50)
        self.h_from = to_text(params.get("from", ""), self._tr("history.arg.date"), 20)
        self.h_to, self.h_page = to_text(params.get("to", ""), self._tr("history.arg.date"), 20), 1
        self._load()

    def _label(self, group: str, code: str, fallback: str) -> str:
        """The label of an action, item kind or source code (services.history gives them in
        Russian) in this person's language; the service's text when the catalog has none."""
        return i18n.catalog(self.lang).get(f"history.{group}.{code}", fallback)

    def _row(self, r: dict) -> HistoryRow:
        who = r["user"]
        if not r["user_id"] and r["action"] != "login_failed":  # the system, a rule or an integration
            source = r["source"] if r["source"] in ("intake", "rule") else "system"
            who = self._label("source", source, who)
        return HistoryRow(r["id"], r["at"], who, self._label("action", r["action"], r["action_label"]),
                          self._label("entity", r["entity_type"], r["entity_label"]), r["title"], r["href"],
                          r["details"], self._label("source", r["source"], r["source_label"]))

    def _load(self) -> None:
        try:
            rows, total = self._read(
                history.history_page, user_id=id_or_none(self.h_user),
                entity_type=None if self.h_entity == "all" else self.h_entity,
                action=None if self.h_action == "all" else self.h_action,
                date_from=self.h_from or None, date_to=self.h_to or None,
                offset=(self.h_page - 1) * PAGE, limit=PAGE)
        except ServiceError as exc:
            self.h_error = exc.message
            self.h_rows, self.h_total = [], 0
            return
        self.h_error = ""
        self.h_rows = [self._row(r) for r in rows]
        self.h_total = total

    @event
    def set_filter(self, key: str, value: str):
        key = choice(key, FILTER_VARS, self._tr("history.arg.filter"))
        setattr(self, FILTER_VARS[key], to_text(value, self._tr("history.arg.value"), 50))
        self.h_page = 1
        self._load()

    @event
    def set_h_page(self, page: int):
        self.h_page = max(1, min(to_int(page, self._tr("history.arg.page"), -10**9, 10**9), self.h_pages))
        self._load()
