"""The top bar's search dropdown (components/shell.py): what was typed and the grouped
matches — at most services.search.PER_GROUP per kind, so the per-user state stays small.
The input is debounced in the browser; every query is one bounded read (services/search.py)."""
from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from rxcrm.db import transact
from rxcrm.services import search

from .app import AppState
from .base import event, to_text


SEARCH_WORKERS = 2  # threads per query (services/search.py): the kinds are read in parallel


@dataclasses.dataclass
class SearchHit:
    id: int = 0
    title: str = ""
    hint: str = ""
    href: str = ""


@dataclasses.dataclass
class SearchGroup:
    entity: str = ""
    label: str = ""
    href_all: str = ""
    more: bool = False
    hits: list[SearchHit] = dataclasses.field(default_factory=list)


def _groups(rows: list[dict]) -> list[SearchGroup]:
    return [SearchGroup(g["entity"], g["label"], g["href_all"], g["more"], [SearchHit(**h) for h in g["hits"]])
            for g in rows]


class SearchState(AppState):
    search_q: str = ""
    search_open: bool = False
    search_groups: list[SearchGroup] = []
    searched: bool = False  # a query long enough was searched (so «Ничего не найдено» may show)

    @rx.var
    def search_empty(self) -> bool:
        return self.searched and not self.search_groups

    @event
    async def search_type(self, value: str):
        """The input changed (debounced in the browser): search again and open the dropdown.
        The reads run on a worker thread (a rare text scans every kind: up to a few hundred
        ms at 100k items), never on the event loop that serves every client."""
        q = search.clean(to_text(value, "common.what.search", 1000))
        self.search_q = q
        if len(q) < search.MIN_LEN:
            self.search_groups, self.searched, self.search_open = [], False, False
            return
        actor, lang = self._require_actor(), self.lang
        rows = await asyncio.to_thread(
            transact, lambda s: search.search(s, actor, q, lang=lang, workers=SEARCH_WORKERS), write=False)
        self.search_groups = _groups(rows)
        self.searched, self.search_open = True, True

    @event
    def search_focus(self):
        """Back in the box: show the last matches again."""
        self.search_open = self.searched

    @event
    def search_close(self):
        self.search_open = False

    @event
    def search_reset(self):
        """A match was opened: the box starts empty on the next page."""
        self.search_q, self.search_groups, self.searched, self.search_open = "", [], False, False
