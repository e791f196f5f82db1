"""State of the duplicates view (/settings → Дубликаты): one page of groups of contacts or
companies sharing a phone or an e-mail (services/merge.py), and the merge dialog — the item
kept, and per field where the items differ the item whose value stays (a radio per field).

The dialog holds the versions its preview showed: an item changed meanwhile makes the merge
refuse (the person opens it again and sees the new values)."""
from __future__ import annotations

import dataclasses

import reflex as rx

from rxcrm.services import merge
from rxcrm.services.errors import ValidationFailed

from .app import AppState
from .base import choice, event, to_bool, to_id, to_ids
from .work import Option

PAGE = 20
ENTITIES = merge.MERGEABLE


@dataclasses.dataclass
class DupItem:
    id: int = 0
    title: str = ""
    company: str = ""
    responsible: str = ""
    created: str = ""
    deals: int = 0
    leads: int = 0
    href: str = ""


@dataclasses.dataclass
class DupGroup:
    key: str = ""    # "<kind>:<norm>"
    kind: str = ""   # phone | email
    value: str = ""  # the shared phone / e-mail as shown
    count: int = 0   # live items sharing it (those the person sees)
    shown: int = 0   # items listed (the first merge.MAX_ITEMS)
    ids: list[int] = dataclasses.field(default_factory=list)
    rows: list[DupItem] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MergeFieldRow:
    key: str = ""
    label: str = ""
    label_en: str = ""
    chosen: str = ""  # the id (as text) of the item whose value stays
    options: list[Option] = dataclasses.field(default_factory=list)  # value: item id, label: its value


class DuplicatesState(AppState):
    dup_entity: str = "contact"
    dup_groups: list[DupGroup] = []
    dup_total: int = 0
    dup_page: int = 0
    dup_error: str = ""
    merge_open: bool = False
    merge_survivor: str = ""
    merge_items: list[Option] = []  # value: item id, label: what tells it apart
    merge_fields: list[MergeFieldRow] = []
    merge_phones: str = ""
    merge_emails: str = ""
    _merge_ids: list[int] = []
    _versions: dict[int, int] = {}

    @rx.var
    def dup_pages(self) -> int:
        return max(1, -(-self.dup_total // PAGE))

    @rx.var
    def dup_page_label(self) -> str:
        return self._tr("dups.page", page=self.dup_page + 1, pages=max(1, -(-self.dup_total // PAGE)))

    # ---- the groups ------------------------------------------------------------------------
    @event
    def on_load(self):
        actor = self._require_actor()
        self.dup_error = ""
        if not merge.can_merge(actor):
            self.dup_error = self._tr("dups.denied")
            self.dup_groups, self.dup_total = [], 0
            return
        self._load()

    def _load(self) -> None:
        groups, total = self._read(merge.duplicate_groups, self.dup_entity, self.dup_page * PAGE, PAGE)
        if not groups and total and self.dup_page > 0:  # the page emptied (merged meanwhile): the last one
            self.dup_page = max(0, -(-total // PAGE) - 1)
            groups, total = self._read(merge.duplicate_groups, self.dup_entity, self.dup_page * PAGE, PAGE)
        self.dup_groups = [DupGroup(f"{g['kind']}:{g['norm']}", g["kind"], g["value"], g["count"], len(g["items"]),
                                    [i["id"] for i in g["items"]],
                                    [DupItem(i["id"], i["title"], i["company"], i["responsible"], i["created"],
                                             i["deals"], i["leads"], i["href"]) for i in g["items"]])
                           for g in groups]
        self.dup_total = total

    @event
    def set_dup_entity(self, entity: str | list[str]):
        self.dup_entity = choice(entity, ENTITIES, self._tr("dups.what.entity"))
        self.dup_page = 0
        self._require_actor()
        self._load()

    @event
    def dup_next(self):
        self._require_actor()
        if (self.dup_page + 1) * PAGE < self.dup_total:
            self.dup_page += 1
        self._load()

    @event
    def dup_prev(self):
        self._require_actor()
        self.dup_page = max(0, self.dup_page - 1)
        self._load()

    # ---- the merge dialog ------------------------------------------------------------------
    def _preview(self, ids: list[int]) -> None:
        p = self._read(merge.merge_preview, self.dup_entity, ids)
        self._merge_ids = [i["id"] for i in p["items"]]
        self._versions = {i["id"]: i["version"] for i in p["items"]}
        self.merge_survivor = str(self._merge_ids[0])
        self.merge_items = [Option(str(i["id"]), " · ".join(x for x in (i["title"], f"№{i['id']}", i["created"],
                                                                         i["responsible"]) if x))
                            for i in p["items"]]
        self.merge_fields = [MergeFieldRow(fd["key"], fd["label"], fd["label_en"], str(fd["default"]),
                                           [Option(str(v["item_id"]), v["text"]) for v in fd["values"]])
                             for fd in p["fields"]]
        self.merge_phones = ", ".join(p["phones"])
        self.merge_emails = ", ".join(p["emails"])

    @event
    def open_merge(self, ids: list[int]):
        ids = to_ids(ids, self._tr("dups.what.item"))
        self._preview(ids)
        self.merge_open = True

    @event
    def set_merge_open(self, value: bool):
        self.merge_open = to_bool(value)

    def _member(self, value) -> int:
        item_id = to_id(value, self._tr("dups.what.item"))
        if item_id not in self._merge_ids:
            raise ValidationFailed(self._tr("common.bad_input_what", what=self._tr("dups.what.item")))
        return item_id

    @event
    def set_survivor(self, value: str):
        """Another item kept: the suggestions are made again around it (its values first)."""
        survivor = self._member(value)
        self._preview([survivor, *(i for i in self._merge_ids if i != survivor)])

    @event
    def choose(self, key: str, value: str):
        key = choice(key, [fd.key for fd in self.merge_fields], self._tr("dups.what.field"))
        item_id = self._member(value)
        self.merge_fields = [dataclasses.replace(fd, chosen=str(item_id)) if fd.key == key else fd
                             for fd in self.merge_fields]

    @event
    def confirm_merge(self):
        if len(self._merge_ids) < 2:
            raise ValidationFailed(self._tr("common.bad_input_what", what=self._tr("dups.what.item")))
        survivor = self._member(self.merge_survivor)
        others = [i for i in self._merge_ids if i != survivor]
        choices = {fd.key: to_id(fd.chosen, self._tr("dups.what.item")) for fd in self.merge_fields if fd.chosen}
        out = self._call(merge.merge, self.dup_entity, survivor, others, choices,
                         expected_versions=dict(self._versions))
        self.merge_open = False
        self._merge_ids, self._versions, self.merge_fields, self.merge_items = [], {}, [], []
        self._load()
        return rx.toast.success(self._tr("dups.done", n=len(out["merged"])))
