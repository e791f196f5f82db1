"""State of /activities («Мои дела»): the four buckets as tabs with their counts, the kind
and item filters, one growing page of rows and the «Выполнить» dialog.

Thin: the rows and counts come from services.activities (`my_activities`,
`bucket_counts`), completion is `complete_activity`; after a change the navigation
counters and the bell are refreshed through AppState."""
from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

import reflex as rx

from rxcrm.models import utcnow
from rxcrm.models.activity import ACTIVITY_KINDS
from rxcrm.services import activities
from rxcrm.services.errors import ServiceError

from .app import AppState
from .base import choice, event, field, to_bool, to_id

TABS = activities.BUCKETS  # overdue, today, upcoming, done
KINDS = ACTIVITY_KINDS  # call, meeting, task, email
ITEMS = ("lead", "deal", "contact", "company")
ALL = "all"
PAGE_SIZE = 50


@dataclasses.dataclass
class ActivityRow:
    id: int = 0
    kind: str = ""
    kind_label: str = ""
    subject: str = ""
    at: str = ""
    overdue: bool = False
    done: bool = False
    done_at: str = ""
    result: str = ""
    entity: str = ""
    entity_label: str = ""
    item_title: str = ""
    href: str = ""


def _row(r: dict) -> ActivityRow:
    return ActivityRow(
        id=r["id"], kind=r["kind"], kind_label=r["kind_label"], subject=r["subject"], at=r["at"],
        overdue=bool(r["overdue"]), done=bool(r["done"]), done_at=r.get("done_at") or "",
        result=r.get("result") or "", entity=r["entity"], entity_label=r.get("entity_label") or "",
        item_title=r.get("item_title") or f"№{r['item_id']}", href=r.get("href") or "")


class ActivitiesState(AppState):
    tab: str = "today"
    kind: str = ALL  # call | meeting | task | email | all
    item: str = ALL  # lead | deal | contact | company | all
    rows: list[ActivityRow] = []
    total: int = 0
    tab_counts: dict[str, int] = {t: 0 for t in TABS}
    error: str = ""

    # the «Выполнить» dialog
    complete_open: bool = False
    complete_id: int = 0
    complete_subject: str = ""
    complete_error: str = ""

    @rx.var
    def has_more(self) -> bool:
        return len(self.rows) < self.total

    @rx.var
    def filtered(self) -> bool:
        return self.kind != ALL or self.item != ALL

    # ---- loading ----------------------------------------------------------------------
    def _args(self) -> dict:
        return {"kind": "" if self.kind == ALL else self.kind, "entity": "" if self.item == ALL else self.item}

    def _reload(self, keep: int = 0, pick_tab: bool = False) -> bool:
        """Counts of all tabs + the first rows of the current tab (at least `keep` rows, so
        a list grown by «Показать ещё» keeps its length). `pick_tab`: choose the default tab
        from the counts first. False when logged out."""
        actor = self._actor()
        if actor is None:
            return False
        now = utcnow()
        limit = max(PAGE_SIZE, keep)

        def read(s, a):
            self.tab_counts = activities.bucket_counts(s, a, now=now, **self._args())
            if pick_tab:
                self.tab = "overdue" if self.tab_counts.get("overdue", 0) > 0 else "today"
            return activities.my_activities(s, a, self.tab, now=now, offset=0, limit=limit, **self._args())

        try:
            rows, total = self._read(read, actor=actor)
        except ServiceError as exc:
            self.error, self.rows, self.total = exc.message, [], 0
            return True
        self.error = ""
        self.rows, self.total = [_row(r) for r in rows], total
        return True

    def _url(self) -> str:
        params = {"tab": self.tab}
        if self.kind != ALL:
            params["kind"] = self.kind
        if self.item != ALL:
            params["item"] = self.item
        return "/activities?" + urlencode(params)

    def _push_url(self):
        return rx.call_script(f"window.history.replaceState(null, '', '{self._url()}')")

    @event
    def on_load(self):
        """?tab=overdue|today|upcoming|done (&kind=…&item=…); without a tab: «Просрочены»
        when there are overdue activities, otherwise «Сегодня»."""
        if not self.user_id:
            return
        params = self.router.url.query_parameters
        self.kind = params.get("kind", "") if params.get("kind", "") in KINDS else ALL
        self.item = params.get("item", "") if params.get("item", "") in ITEMS else ALL
        wanted = params.get("tab", "")
        self.tab = wanted if wanted in TABS else "today"
        self.complete_open, self.complete_error = False, ""
        if not self._reload(pick_tab=wanted not in TABS):
            return
        return self._push_url()

    # ---- tabs, filters, paging --------------------------------------------------------
    @event
    def set_tab(self, tab: str | list[str]):
        self.tab = choice(tab, TABS, self._tr("activities.arg.tab"))
        self._reload()
        return self._push_url()

    @event
    def set_kind(self, kind: str):
        self.kind = kind if isinstance(kind, str) and kind in KINDS else ALL
        self._reload()
        return self._push_url()

    @event
    def set_item(self, item: str):
        self.item = item if isinstance(item, str) and item in ITEMS else ALL
        self._reload()
        return self._push_url()

    @event
    def reset_filters(self):
        self.kind = self.item = ALL
        self._reload()
        return self._push_url()

    @event
    def load_more(self):
        try:
            rows, total = self._read(activities.my_activities, self.tab, offset=len(self.rows), limit=PAGE_SIZE,
                                    **self._args())
        except ServiceError as exc:
            self.error = exc.message
            return
        known = {r.id for r in self.rows}  # rows may have shifted between pages
        self.rows = self.rows + [_row(r) for r in rows if r["id"] not in known]
        self.total = total

    # ---- «Выполнить» ------------------------------------------------------------------
    @event
    def open_complete(self, activity_id: int):
        activity_id = to_id(activity_id, self._tr("activities.arg.activity"))
        row = next((r for r in self.rows if r.id == activity_id), None)
        if row is None or row.done:
            return
        self.complete_id, self.complete_subject = row.id, row.subject
        self.complete_error, self.complete_open = "", True

    @event
    def set_complete_open(self, value: bool):
        self.complete_open = to_bool(value)
        if not self.complete_open:
            self.complete_error = ""

    @event
    def submit_complete(self, form: dict):
        """Mark the activity done with the typed result, then refresh the list, the tab
        counts, the navigation counters and the bell."""
        actor = self._require_actor()
        result = field(form or {}, "result", self._tr("activities.arg.result"))
        if not self.complete_id:
            self.complete_open = False
            return
        try:
            self._call(activities.complete_activity, self.complete_id, result, actor=actor)
        except ServiceError as exc:
            if exc.code == "already_done":  # done elsewhere meanwhile: just show the fresh list
                self.complete_open = False
                self._reload(keep=len(self.rows))
                self._badges(actor)
                return rx.toast.info(exc.message)
            self.complete_error = exc.message
            return
        self.complete_open, self.complete_id, self.complete_error = False, 0, ""
        self._reload(keep=len(self.rows))
        self._badges(actor)
        return rx.toast.success(self._tr("acts.completed"))
