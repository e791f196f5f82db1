"""State of a card page (/leads/<id>, /deals/<id>, /contacts/<id>, /companies/<id>)."""
from __future__ import annotations

import dataclasses
from datetime import datetime

import reflex as rx

from rxcrm import i18n
from rxcrm.i18n import card as card_texts
from rxcrm.services import activities, cards, catalogs, conversion, create, entities, fields, fmt, items, listing
from rxcrm.services.errors import AccessDenied, NotFound, ServiceError, ValidationFailed
from rxcrm.settings import TZ

from . import live
from .app import AppState
from .base import choice, event, field, id_or_none, opt_id, to_bool, to_form, to_id, to_int, to_text
from .fieldinput import form_values, missing_rows, typed_values
from .work import MissingField, Option, missing_field

FINISH_MODES = ("deal_contact", "deal", "existing", "JUNK", "DUPLICATE", "won", "lost")

ENTITY = entities.BY_SECTION  # "deals" → "deal"
# services.cards names a field block by its Russian title (the block's identity in the edit
# handlers); its label is the catalog entry whose Russian text is that title
BLOCK_KEYS = {text: key for key, text in card_texts.RU.items() if key.startswith("card.block.")}


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
    title: str = ""  # as services.cards names it: what start_edit sends back
    fields: list[FieldRow] = dataclasses.field(default_factory=list)
    label: str = ""  # the title in the person's language


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
    date: str = ""  # ДД.ММ.ГГГГ and ЧЧ:ММ of its start (what «Перенести» starts from)
    time: str = ""


# A field being edited has the same shape as a field a stage asks for.
EditField = MissingField


@dataclasses.dataclass
class Found:
    id: int = 0
    title: str = ""
    hint: str = ""


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
    card_version: int = 0
    card_semantic: str = ""
    card_editable: bool = False
    card_pipeline_id: int = 0
    is_repeat: bool = False
    repeat_contact: str = ""
    card_contact_id: int = 0
    edit_blocks: list[str] = []

    # inline edit of one block
    edit_block: str = ""
    edit_fields: list[EditField] = []
    edit_error: str = ""
    user_options: list[Option] = []
    program_options: list[Option] = []
    pipeline_options: list[Option] = []

    # composer
    composer_tab: str = "comment"
    composer_error: str = ""

    # the activity form starts at the next working hour (services.activities.suggested_start)
    activity_date: str = ""
    activity_time: str = ""

    # planned activity: done / reschedule
    done_id: int = 0
    done_open: bool = False
    resched_id: int = 0
    resched_open: bool = False
    resched_date: str = ""
    resched_time: str = ""

    # stage move refused → required fields dialog
    missing_open: bool = False
    missing_message: str = ""
    missing_fields: list[MissingField] = []
    _pending: dict = {}

    # finish: lead conversion / junk, deal won / lost
    finish_open: bool = False
    finish_mode: str = "deal_contact"
    finish_error: str = ""
    finish_missing: list[MissingField] = []
    search_q: str = ""
    found: list[Found] = []
    picked_contact_id: int = 0
    picked_contact: str = ""

    # who changed the card last, and the notice when someone else changes it while it is open
    card_updated_by: str = ""
    card_updated_at: str = ""
    live_notice: str = ""

    # create a deal from a contact/company card
    new_deal_open: bool = False
    # link a contact by hand
    link_open: bool = False

    @event
    def load_card(self):
        self.live_notice = ""
        self._load_card(self._require_actor(), audited=True)

    def _live_refresh(self, rows) -> None:
        """Someone else changed this card (state/live.py): say so; read it again unless the
        person is editing a block (their save is then refused by the version check, with the
        «Карточку изменил …» notice, rather than overwriting the other change)."""
        actor = self._actor()
        if actor is None:
            live.unwatch(self.router.session.client_token, "card")
            return
        if self.edit_block:
            self.live_notice = self._tr("card.live.changed_editing")
            return
        self._load_card(actor, audited=False)
        if self.card_updated_by:
            self.live_notice = self._tr("card.live.changed", who=self.card_updated_by, when=self.card_updated_at)

    def _load_card(self, actor, audited: bool) -> None:
        parts = (self.router.url.path or "").strip("/").split("/")
        self.card_section = parts[0] if parts and parts[0] in ENTITY else "deals"
        self.card_entity = ENTITY[self.card_section]
        self.card_error, self.kind_filter, self.card_title = "", "", ""
        # a card opens with no dialog open (the state outlives a reload or a move to another card)
        self.finish_open = self.done_open = self.resched_open = self.missing_open = False
        self.new_deal_open = self.link_open = False
        self.stages, self.blocks, self.card_links, self.events, self.planned_items = [], [], [], [], []
        card_id = id_or_none(parts[1]) if len(parts) > 1 else None
        if card_id is None:
            self.card_error = self._tr("common.not_found")
            return
        self.card_id = card_id

        def read(s, a):  # a unit that writes: opening a card is audited
            data = cards.open_card(s, a, self.card_entity, self.card_id, audited=audited)
            planned = cards.planned(s, a, self.card_entity, self.card_id)
            events, more = cards.timeline(s, a, self.card_entity, self.card_id)
            options = ([Option(str(i), n) for i, n in catalogs.assignable_users(s)],
                       [Option(str(i), n) for i, n in catalogs.programs(s)],
                       [Option(str(p.id), p.name) for p in catalogs.pipelines(s, "deal")])
            return data, planned, events, more, options, self._field_titles(s, data["pipeline_id"])

        try:
            data, planned, events, more, options, titles = self._call(read, actor=actor)
        except (AccessDenied, NotFound) as exc:
            self.card_error = self._tr("common.no_access") if isinstance(exc, AccessDenied) else exc.message
            return
        self.card_title = data["title"]
        self.card_updated_by, self.card_updated_at = data["updated_by"], data["updated_at"]
        live.watch(self.router.session.client_token, "card",
                   live.Watch(CardState, self.card_entity, None, self.card_id, actor.user_id))
        self.card_version, self.card_semantic = data["version"], data["semantic"]
        self.card_editable, self.card_pipeline_id = data["editable"], data["pipeline_id"]
        self.is_repeat, self.repeat_contact = data["is_repeat"], data["repeat_contact"]
        self.card_contact_id, self.edit_blocks = data["contact_id"], data["edit_blocks"]
        self.edit_block, self.edit_error, self.composer_error = "", "", ""
        self.user_options, self.program_options, self.pipeline_options = options
        current = next((i for i, st in enumerate(data["stages"]) if st["current"]), -1)
        self.stages = [StageChip(st["id"], st["name"], st["color"], st["semantic"], st["current"], i < current)
                       for i, st in enumerate(data["stages"])]
        self.blocks = [Block(b["title"], [FieldRow(titles.get(f["label"], f["label"]), f["value"])
                                          for f in b["fields"]], self._block_label(b["title"]))
                       for b in data["blocks"] if b["fields"]]
        self.card_links = [self._link_row(link) for link in data["links"]]
        self.planned_items = [Planned(**p) for p in planned]
        self.events = [self._event_row(e) for e in events]
        self.events_more = more
        start = activities.suggested_start()
        self.activity_date, self.activity_time = fmt.date_input(start), fmt.time_input(start)

    # ---- labels the services give in Russian, in the person's language -----------------
    def _tr_or(self, key: str, fallback: str) -> str:
        """The catalog's label for `key`, or the service's own text when the catalog has none."""
        return i18n.catalog(self.lang).get(key, fallback)

    def _field_titles(self, session, pipeline_id) -> dict[str, str]:
        """{the field's Russian label: its label in this person's language} of the card's fields."""
        fmap = fields.field_map(session, self.card_entity, pipeline_id or None)
        return {fd.label: fd.title(self.lang) for fd in fmap.values()}

    def _block_label(self, title: str) -> str:
        return self._tr_or(BLOCK_KEYS.get(title, ""), title)

    def _link_row(self, link: dict) -> LinkRow:
        entity = ENTITY.get(link["href"].strip("/").split("/")[0], "")
        return LinkRow(self._tr_or(f"title.card.{entity}", link["kind"]), link["title"], link["href"])

    def _event_row(self, e: dict) -> Event:
        who = e["who"]  # a person's name, or the system or a rule in the service's Russian words
        if e.get("rule") and who == i18n.text(i18n.DEFAULT_LANG, "card.who.rule", name=e["rule"]):
            who = self._tr("card.who.rule", name=e["rule"])
        elif who == i18n.RU["card.who.system"]:
            who = self._tr("card.who.system")
        return Event(e["id"], e["kind"], self._tr_or(f"card.event.{e['kind']}", e["label"]), e["text"], who,
                     e["at"])

    def _events(self, offset: int):
        return self._read(cards.timeline, self.card_entity, self.card_id, offset=offset, kind=self.kind_filter)

    @event
    def more_events(self):
        events, more = self._events(len(self.events))
        self.events = self.events + [self._event_row(e) for e in events]
        self.events_more = more

    @event
    def set_kind_filter(self, kind: str):
        kind = to_text(kind, self._tr("card.arg.event_kind"), 50)
        self.kind_filter = "" if kind == "all" else kind
        events, more = self._events(0)
        self.events = [self._event_row(e) for e in events]
        self.events_more = more

    # ---- helpers ------------------------------------------------------------------------
    @rx.var
    def page_title(self) -> str:
        """The browser tab: «Иванов Иван — Сделка — rxcrm» (the kind alone while loading)."""
        cat = i18n.catalog(self.lang)
        kind = cat.get(f"title.card.{self.card_entity}", "")
        name = self.card_error or self.card_title
        return " — ".join(p for p in (name, kind, cat.get("app.name", "rxcrm")) if p)

    @rx.var
    def is_closed(self) -> bool:
        return self.card_semantic in ("success", "failure")

    @rx.var
    def can_reopen(self) -> bool:
        return self.card_semantic in ("success", "failure") and self.user_role in ("head", "admin")

    def _after_change(self, message: str = ""):
        """Reload the card (fresh version, timeline) and the nav badges."""
        self.load_card()
        out = [AppState.refresh_badges]
        if message:
            out.insert(0, rx.toast.success(message))
        return out

    # ---- stage bar --------------------------------------------------------------------
    @event
    def click_stage(self, stage_id: int):
        stage_id = to_id(stage_id, self._tr("card.arg.stage"))
        if not self.card_editable or self.is_closed:
            return
        st = next((x for x in self.stages if x.id == stage_id), None)
        if st is None or st.current:
            return
        if st.semantic != "process":
            self.finish_mode = ("won" if st.semantic == "success" else "lost") if self.card_entity == "deal" \
                else ("deal_contact" if st.semantic == "success" else "JUNK")
            return self.open_finish()
        return self._move(stage_id, None)

    def _move(self, stage_id: int, values: dict | None, typed: dict | None = None):
        """Move the card; a refusal for missing fields opens the dialog (each field with its
        control), a wrong value marks its field and keeps what was typed (`typed`)."""
        typed = typed if typed is not None else values or {}
        try:
            if values is not None:
                values = form_values(self.missing_fields, values, self.lang)  # a date typed as ДД.ММ.ГГГГ → ISO
            self._call(items.move_stage, self.card_entity, self.card_id, stage_id, values=values,
                      expected_version=self.card_version)
        except items.MissingFields as exc:
            self.missing_message = exc.message
            self.missing_fields = [missing_field(r) for r in self._read(cards.field_inputs, missing_rows(exc, typed))]
            self._pending = {"stage_id": stage_id}
            self.missing_open = True
            return
        except ValidationFailed as exc:
            if self.missing_open:
                self.missing_message = exc.message
                self.missing_fields = [dataclasses.replace(f, value=str(typed.get(f.key, "")),
                                                           error=exc.fields.get(f.key, ""))
                                       for f in self.missing_fields]
                return
            return rx.toast.error(exc.message)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.missing_open = False
        return self._after_change(self._tr("card.toast.moved"))

    @event
    def submit_missing(self, form: dict):
        form = to_form(form)
        if not self._pending:
            return
        return self._move(self._pending["stage_id"], form, typed_values(self.missing_fields, form))

    @event
    def close_missing(self):
        self.missing_open, self._pending = False, {}

    # ---- inline edit --------------------------------------------------------------------
    @event
    def start_edit(self, block: str):
        block = to_text(block, self._tr("card.arg.block"), 200)
        def read(s, a):
            rows = cards.field_inputs(s, a, cards.edit_fields(s, a, self.card_entity, self.card_id, block))
            return rows, self._field_titles(s, self.card_pipeline_id)

        rows, titles = self._read(read)
        self.edit_fields = [missing_field({**r, "label": titles.get(r["label"], r["label"])}) for r in rows]
        self.edit_block, self.edit_error = block, ""

    @event
    def cancel_edit(self):
        self.edit_block, self.edit_error, self.edit_fields = "", "", []

    @event
    def save_edit(self, form: dict):
        form = to_form(form)
        typed = typed_values(self.edit_fields, form)
        # keep what the manager typed, whatever happens
        self.edit_fields = [dataclasses.replace(f, value=typed[f.key], error="") for f in self.edit_fields]
        try:
            values = form_values(self.edit_fields, form, self.lang)  # a date typed as ДД.ММ.ГГГГ → ISO
            self._call(items.update_fields, self.card_entity, self.card_id, values, expected_version=self.card_version)
        except ValidationFailed as exc:
            self.edit_error = exc.message
            self.edit_fields = [dataclasses.replace(f, error=exc.fields.get(f.key, "")) for f in self.edit_fields]
            return
        except ServiceError as exc:
            self.edit_error = exc.message
            return
        self.edit_block = ""
        return self._after_change(self._tr("card.toast.saved"))

    # ---- composer -------------------------------------------------------------------------
    @event
    def set_composer_tab(self, tab: str | list[str]):
        self.composer_tab, self.composer_error = choice(tab, ("comment", "activity", "email"), self._tr("card.arg.tab")), ""

    @event
    def add_comment(self, form: dict):
        text = field(form, "text", self._tr("card.arg.comment"))
        try:
            self._call(activities.add_comment, self.card_entity, self.card_id, text)
        except ServiceError as exc:
            self.composer_error = exc.message
            return
        self.composer_error = ""
        return self._after_change(self._tr("card.toast.commented"))

    @event
    def plan_activity(self, form: dict):
        form = to_form(form)
        start = self._local_start(form)
        if start is None:
            self.composer_error = self._tr("card.error.start_required")
            return
        try:
            what = self._tr("card.arg.duration")
            duration = to_int(field(form, "duration", what, 10) or "15", what, 1, 24 * 60)
        except ValidationFailed:
            self.composer_error = self._tr("card.error.duration")
            return
        remind = field(form, "remind", self._tr("card.arg.remind"), 10)
        remind = "" if remind == "none" else remind  # no reminder
        try:
            self._call(activities.plan_activity, self.card_entity, self.card_id,
                      kind=field(form, "kind", self._tr("card.arg.activity_kind"), 20) or "call",
                      subject=field(form, "subject", self._tr("card.arg.subject"), 500),
                      start_at=start, duration_min=duration, description=field(form, "description", self._tr("card.arg.description")),
                      responsible_id=id_or_none(form.get("responsible")),
                      remind_before_min=to_int(remind, self._tr("card.arg.remind"), 0, 7 * 24 * 60) if remind else None)
        except ServiceError as exc:
            self.composer_error = exc.message
            return
        self.composer_error = ""
        return self._after_change(self._tr("card.toast.planned"))

    @event
    def send_email(self, form: dict):
        form = to_form(form)
        try:
            self._call(activities.send_email, self.card_entity, self.card_id, field(form, "to", self._tr("card.arg.address"), 500),
                      field(form, "subject", self._tr("card.arg.subject"), 500),
                      field(form, "text", self._tr("card.arg.text")))
        except ServiceError as exc:
            self.composer_error = exc.message
            return
        self.composer_error = ""
        return self._after_change(self._tr("card.toast.emailed"))

    # ---- planned activities -------------------------------------------------------------
    @event
    def open_done(self, activity_id: int):
        self.done_id, self.done_open = to_id(activity_id, self._tr("card.arg.activity")), True

    @event
    def set_done_open(self, value: bool):
        self.done_open = to_bool(value)

    @event
    def complete(self, form: dict):
        self._call(activities.complete_activity, self.done_id, field(form, "result", self._tr("card.arg.result")))
        self.done_open = False
        return self._after_change(self._tr("card.toast.done"))

    @event
    def open_resched(self, activity_id: int):
        self.resched_id, self.resched_open = to_id(activity_id, self._tr("card.arg.activity")), True
        item = next((p for p in self.planned_items if p.id == self.resched_id), None)
        self.resched_date, self.resched_time = (item.date, item.time) if item else (self.activity_date,
                                                                                   self.activity_time)

    @event
    def set_resched_open(self, value: bool):
        self.resched_open = to_bool(value)

    @event
    def reschedule(self, form: dict):
        start = self._local_start(to_form(form))
        if start is None:
            return rx.toast.error(self._tr("card.error.start_required"))
        self._call(activities.reschedule_activity, self.resched_id, start)
        self.resched_open = False
        return self._after_change(self._tr("card.toast.rescheduled"))

    # ---- finish: convert / junk / won / lost / reopen -----------------------------------
    @event
    def open_finish(self):
        self.finish_error, self.finish_missing, self.found, self.search_q = "", [], [], ""
        self.picked_contact_id, self.picked_contact = 0, ""
        if self.card_entity == "deal" and self.finish_mode not in ("won", "lost"):
            self.finish_mode = "won"
        if self.card_entity == "lead" and self.finish_mode in ("won", "lost"):
            self.finish_mode = "deal_contact"
        self.finish_open = True

    @event
    def set_finish_open(self, value: bool):
        self.finish_open = to_bool(value)

    @event
    def set_finish_mode(self, mode: str):
        self.finish_mode, self.finish_error = choice(mode, FINISH_MODES, self._tr("card.arg.finish_mode")), ""

    @event
    def set_search_q(self, value: str):
        self.search_q = to_text(value, self._tr("card.arg.search"), 200)

    @event
    def search_contacts(self):
        q = self.search_q.strip()
        if len(q) < 2:
            self.found = []
            return

        def find(s, a):
            rows, _ = listing.query_items(s, a, "contact", {"q": q}, sort="full_name", desc=False, limit=8)
            return rows, listing.resolve(s, "contact", rows, ["phone", "company_id"])

        rows, vals = self._read(find)
        self.found = [Found(c.id, c.full_name, " · ".join(x for x in (v["phone"], v["company_id"] or "") if x))
                      for c, v in zip(rows, vals)]

    @event
    def pick_contact(self, contact_id: int):
        contact_id = to_id(contact_id, self._tr("card.arg.contact"))
        hit = next((f for f in self.found if f.id == contact_id), None)
        if hit:
            self.picked_contact_id, self.picked_contact = hit.id, hit.title

    @event
    def submit_finish(self, form: dict):
        form = to_form(form)
        typed = typed_values(self.finish_missing, form)
        self.finish_missing = [dataclasses.replace(f, value=typed[f.key], error="") for f in self.finish_missing]
        try:
            extra = form_values(self.finish_missing, form, self.lang)  # a date typed as ДД.ММ.ГГГГ → ISO
        except ValidationFailed as exc:
            self.finish_error = exc.message
            self.finish_missing = [dataclasses.replace(f, error=exc.fields.get(f.key, "")) for f in self.finish_missing]
            return
        mode = self.finish_mode
        reason = field(form, "reason", self._tr("card.arg.reason"), 2000)
        pipeline_id = opt_id(form.get("pipeline"), self._tr("card.arg.pipeline"))
        company_title = field(form, "company_title", self._tr("card.arg.company"), 500) or None
        deal_title = field(form, "deal_title", self._tr("card.arg.deal_title"), 500) or None

        def finish(s, a):
            if self.card_entity == "deal":
                conversion.close_deal(s, a, self.card_id, won=mode == "won", reason=reason, values=extra or None)
                return None
            if mode in ("JUNK", "DUPLICATE"):
                conversion.junk_lead(s, a, self.card_id, stage_code=mode, reason=reason)
                return None
            res = conversion.convert_lead(
                s, a, self.card_id, mode=mode, pipeline_id=pipeline_id,
                contact_id=self.picked_contact_id or None if mode == "existing" else None,
                company_title=company_title if mode == "deal_contact" else None,
                deal_title=deal_title, deal_values=extra or None)
            return f"/deals/{res['deal_id']}"

        try:
            target = self._call(finish)
        except items.MissingFields as exc:
            self.finish_error = exc.message
            self.finish_missing = [missing_field(r) for r in self._read(cards.field_inputs, missing_rows(exc, typed))]
            return
        except ServiceError as exc:
            self.finish_error = exc.message
            fields = getattr(exc, "fields", None) or {}
            self.finish_missing = [dataclasses.replace(f, error=fields.get(f.key, "")) for f in self.finish_missing]
            return
        self.finish_open = False
        if target:
            return [rx.toast.success(self._tr("card.toast.converted")), rx.redirect(target)]
        return self._after_change(self._tr("card.toast.finished"))

    @event
    def reopen(self):
        self._call(conversion.reopen, self.card_entity, self.card_id)
        return self._after_change(self._tr("card.toast.reopened"))

    @event
    def unlink_repeat(self):
        self._call(create.unlink_contact, self.card_entity, self.card_id)
        return self._after_change(self._tr("card.toast.unlinked"))

    # ---- create a deal from a contact / company card -------------------------------------
    @event
    def set_new_deal_open(self, value: bool):
        self.new_deal_open = to_bool(value)

    @event
    def create_deal(self, form: dict):
        form = to_form(form)
        kw = {"contact_id": self.card_id} if self.card_entity == "contact" else {"company_id": self.card_id}
        pipeline_id = opt_id(form.get("pipeline"), self._tr("card.arg.pipeline")) or 0
        title = field(form, "title", self._tr("card.arg.title"), 500).strip()
        program_id = opt_id(form.get("program"), self._tr("card.arg.program"))
        amount = field(form, "amount", self._tr("card.arg.amount"), 50) or None
        new_id = self._call(lambda s, a: conversion.create_deal_for(
            s, a, pipeline_id=pipeline_id, title=title, program_id=program_id, amount=amount, **kw).id)
        self.new_deal_open = False
        return rx.redirect(f"/deals/{new_id}")

    # ---- link a contact by hand ----------------------------------------------------------
    @event
    def set_link_open(self, value: bool):
        self.link_open = to_bool(value)
        if self.link_open:
            self.found, self.search_q, self.picked_contact_id, self.picked_contact = [], "", 0, ""

    @event
    def link_picked(self):
        if not self.picked_contact_id:
            return rx.toast.error(self._tr("card.error.pick_contact"))
        self._call(create.link_contact, self.card_entity, self.card_id, self.picked_contact_id)
        self.link_open = False
        return self._after_change(self._tr("card.toast.linked"))

    def _local_start(self, form: dict) -> datetime | None:
        """The date (ДД.ММ.ГГГГ, ISO too) and time (ЧЧ:ММ) typed in a form, as Moscow time,
        or None when they are not a real date and time."""
        day = fmt.parse_date(to_text(form.get("date"), self._tr("card.arg.date"), 20))
        at = fmt.parse_time(to_text(form.get("time"), self._tr("card.arg.time"), 20).strip() or "10:00")
        if day is None or at is None:
            return None
        return datetime.combine(day, at, tzinfo=TZ)
