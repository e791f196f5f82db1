"""State of a card page (/leads/<id>, /deals/<id>, /contacts/<id>, /companies/<id>)."""
from __future__ import annotations

import dataclasses
from datetime import datetime

import reflex as rx

from rxcrm.db import session_scope
from rxcrm.services import activities, cards, catalogs, conversion, create, items, listing
from rxcrm.services.errors import AccessDenied, NotFound, ServiceError, ValidationFailed
from rxcrm.settings import TZ

from .app import AppState
from .work import MissingField, Option

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


# A field being edited has the same shape as a field a stage asks for.
EditField = MissingField


@dataclasses.dataclass
class Found:
    id: int = 0
    title: str = ""
    hint: str = ""


def _event_row(e: dict) -> "Event":
    return Event(**{k: e[k] for k in ("id", "kind", "label", "text", "who", "at")})


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

    # planned activity: done / reschedule
    done_id: int = 0
    done_open: bool = False
    resched_id: int = 0
    resched_open: bool = False

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

    # create a deal from a contact/company card
    new_deal_open: bool = False
    # link a contact by hand
    link_open: bool = False

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
        self.card_version, self.card_semantic = data["version"], data["semantic"]
        self.card_editable, self.card_pipeline_id = data["editable"], data["pipeline_id"]
        self.is_repeat, self.repeat_contact = data["is_repeat"], data["repeat_contact"]
        self.card_contact_id, self.edit_blocks = data["contact_id"], data["edit_blocks"]
        self.edit_block, self.edit_error, self.composer_error = "", "", ""
        with session_scope() as s:
            self.user_options = [Option(str(i), n) for i, n in catalogs.assignable_users(s)]
            self.program_options = [Option(str(i), n) for i, n in catalogs.programs(s)]
            self.pipeline_options = [Option(str(p.id), p.name) for p in catalogs.pipelines(s, "deal")]
        current = next((i for i, st in enumerate(data["stages"]) if st["current"]), -1)
        self.stages = [StageChip(st["id"], st["name"], st["color"], st["semantic"], st["current"], i < current)
                       for i, st in enumerate(data["stages"])]
        self.blocks = [Block(b["title"], [FieldRow(f["label"], f["value"]) for f in b["fields"]])
                       for b in data["blocks"] if b["fields"]]
        self.card_links = [LinkRow(**link) for link in data["links"]]
        self.planned_items = [Planned(**p) for p in planned]
        self.events = [_event_row(e) for e in events]
        self.events_more = more

    def _events(self, offset: int):
        actor = self.actor()
        with session_scope() as s:
            return cards.timeline(s, actor, self.card_entity, self.card_id, offset=offset, kind=self.kind_filter)

    @rx.event
    def more_events(self):
        events, more = self._events(len(self.events))
        self.events = self.events + [_event_row(e) for e in events]
        self.events_more = more

    @rx.event
    def set_kind_filter(self, kind: str):
        self.kind_filter = "" if kind == "all" else kind
        events, more = self._events(0)
        self.events = [_event_row(e) for e in events]
        self.events_more = more

    # ---- helpers ------------------------------------------------------------------------
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
    @rx.event
    def click_stage(self, stage_id: int):
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

    def _move(self, stage_id: int, values: dict | None):
        actor = self.actor()
        try:
            with session_scope() as s:
                items.move_stage(s, actor, self.card_entity, self.card_id, stage_id, values=values)
        except items.MissingFields as exc:
            self.missing_message = exc.message
            self.missing_fields = [MissingField(m["key"], m["label"], m["kind"], list(m.get("options") or []),
                                                (values or {}).get(m["key"], ""))
                                   for m in exc.details.get("missing", [])]
            self._pending = {"stage_id": stage_id}
            self.missing_open = True
            return
        except ValidationFailed as exc:
            if self.missing_open:
                self.missing_message = exc.message
                self.missing_fields = [dataclasses.replace(f, value=str((values or {}).get(f.key, "")),
                                                           error=exc.fields.get(f.key, ""))
                                       for f in self.missing_fields]
                return
            return rx.toast.error(exc.message)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.missing_open = False
        return self._after_change("Стадия изменена")

    @rx.event
    def submit_missing(self, form: dict):
        if not self._pending:
            return
        return self._move(self._pending["stage_id"], {f.key: form.get(f.key, "") for f in self.missing_fields})

    @rx.event
    def close_missing(self):
        self.missing_open, self._pending = False, {}

    # ---- inline edit --------------------------------------------------------------------
    @rx.event
    def start_edit(self, block: str):
        actor = self.actor()
        try:
            with session_scope() as s:
                rows = cards.edit_fields(s, actor, self.card_entity, self.card_id, block)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.edit_fields = [EditField(r["key"], r["label"], r["kind"], r["options"], r["value"]) for r in rows]
        self.edit_block, self.edit_error = block, ""

    @rx.event
    def cancel_edit(self):
        self.edit_block, self.edit_error, self.edit_fields = "", "", []

    @rx.event
    def save_edit(self, form: dict):
        actor = self.actor()
        values = {f.key: form.get(f.key, "") for f in self.edit_fields}
        # keep what the manager typed, whatever happens
        self.edit_fields = [dataclasses.replace(f, value=str(values.get(f.key, "")), error="") for f in self.edit_fields]
        try:
            with session_scope() as s:
                items.update_fields(s, actor, self.card_entity, self.card_id, values,
                                    expected_version=self.card_version)
        except ValidationFailed as exc:
            self.edit_error = exc.message
            self.edit_fields = [dataclasses.replace(f, error=exc.fields.get(f.key, "")) for f in self.edit_fields]
            return
        except ServiceError as exc:
            self.edit_error = exc.message
            return
        self.edit_block = ""
        return self._after_change("Сохранено")

    # ---- composer -------------------------------------------------------------------------
    @rx.event
    def set_composer_tab(self, tab: str | list[str]):
        if isinstance(tab, str):
            self.composer_tab, self.composer_error = tab, ""

    @rx.event
    def add_comment(self, form: dict):
        actor = self.actor()
        try:
            with session_scope() as s:
                activities.add_comment(s, actor, self.card_entity, self.card_id, form.get("text", ""))
        except ServiceError as exc:
            self.composer_error = exc.message
            return
        self.composer_error = ""
        return self._after_change("Комментарий добавлен")

    @rx.event
    def plan_activity(self, form: dict):
        actor = self.actor()
        try:
            start = datetime.fromisoformat(f"{form.get('date', '')}T{form.get('time', '') or '10:00'}").replace(tzinfo=TZ)
        except ValueError:
            self.composer_error = "Укажите дату и время начала"
            return
        try:
            duration = int(form.get("duration") or 15)
            remind = form.get("remind") or ""
            with session_scope() as s:
                activities.plan_activity(
                    s, actor, self.card_entity, self.card_id, kind=form.get("kind") or "call",
                    subject=form.get("subject", ""), start_at=start, duration_min=duration,
                    description=form.get("description", ""),
                    responsible_id=int(form["responsible"]) if (form.get("responsible") or "").isdigit() else None,
                    remind_before_min=int(remind) if remind.isdigit() else None)
        except ValueError:
            self.composer_error = "Длительность — число минут"
            return
        except ServiceError as exc:
            self.composer_error = exc.message
            return
        self.composer_error = ""
        return self._after_change("Дело запланировано")

    @rx.event
    def send_email(self, form: dict):
        actor = self.actor()
        try:
            with session_scope() as s:
                activities.send_email(s, actor, self.card_entity, self.card_id, form.get("to", ""),
                                      form.get("subject", ""), form.get("text", ""))
        except ServiceError as exc:
            self.composer_error = exc.message
            return
        self.composer_error = ""
        return self._after_change("Письмо записано в ленту")

    # ---- planned activities -------------------------------------------------------------
    @rx.event
    def open_done(self, activity_id: int):
        self.done_id, self.done_open = activity_id, True

    @rx.event
    def set_done_open(self, value: bool):
        self.done_open = value

    @rx.event
    def complete(self, form: dict):
        actor = self.actor()
        try:
            with session_scope() as s:
                activities.complete_activity(s, actor, self.done_id, form.get("result", ""))
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.done_open = False
        return self._after_change("Дело выполнено")

    @rx.event
    def open_resched(self, activity_id: int):
        self.resched_id, self.resched_open = activity_id, True

    @rx.event
    def set_resched_open(self, value: bool):
        self.resched_open = value

    @rx.event
    def reschedule(self, form: dict):
        actor = self.actor()
        try:
            start = datetime.fromisoformat(f"{form.get('date', '')}T{form.get('time', '') or '10:00'}").replace(tzinfo=TZ)
            with session_scope() as s:
                activities.reschedule_activity(s, actor, self.resched_id, start)
        except ValueError:
            return rx.toast.error("Укажите дату и время")
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.resched_open = False
        return self._after_change("Дело перенесено")

    # ---- finish: convert / junk / won / lost / reopen -----------------------------------
    @rx.event
    def open_finish(self):
        self.finish_error, self.finish_missing, self.found, self.search_q = "", [], [], ""
        self.picked_contact_id, self.picked_contact = 0, ""
        if self.card_entity == "deal" and self.finish_mode not in ("won", "lost"):
            self.finish_mode = "won"
        if self.card_entity == "lead" and self.finish_mode in ("won", "lost"):
            self.finish_mode = "deal_contact"
        self.finish_open = True

    @rx.event
    def set_finish_open(self, value: bool):
        self.finish_open = value

    @rx.event
    def set_finish_mode(self, mode: str):
        self.finish_mode, self.finish_error = mode, ""

    @rx.event
    def set_search_q(self, value: str):
        self.search_q = value

    @rx.event
    def search_contacts(self):
        actor = self.actor()
        q = self.search_q.strip()
        if len(q) < 2:
            self.found = []
            return
        with session_scope() as s:
            rows, _ = listing.query_items(s, actor, "contact", {"q": q}, sort="full_name", desc=False, limit=8)
            vals = listing.resolve(s, "contact", rows, ["phone", "company_id"])
        self.found = [Found(c.id, c.full_name, " · ".join(x for x in (v["phone"], v["company_id"] or "") if x))
                      for c, v in zip(rows, vals)]

    @rx.event
    def pick_contact(self, contact_id: int):
        hit = next((f for f in self.found if f.id == contact_id), None)
        if hit:
            self.picked_contact_id, self.picked_contact = hit.id, hit.title

    @rx.event
    def submit_finish(self, form: dict):
        actor = self.actor()
        extra = {f.key: form.get(f.key, "") for f in self.finish_missing}
        mode = self.finish_mode
        try:
            with session_scope() as s:
                if self.card_entity == "deal":
                    conversion.close_deal(s, actor, self.card_id, won=mode == "won", reason=form.get("reason", ""),
                                          values=extra or None)
                    target = None
                elif mode in ("JUNK", "DUPLICATE"):
                    conversion.junk_lead(s, actor, self.card_id, stage_code=mode, reason=form.get("reason", ""))
                    target = None
                else:
                    pipe = form.get("pipeline") or ""
                    res = conversion.convert_lead(
                        s, actor, self.card_id, mode=mode,
                        pipeline_id=int(pipe) if pipe.isdigit() else None,
                        contact_id=self.picked_contact_id or None if mode == "existing" else None,
                        company_title=(form.get("company_title") or None) if mode == "deal_contact" else None,
                        deal_title=form.get("deal_title") or None, deal_values=extra or None)
                    target = f"/deals/{res['deal_id']}"
        except items.MissingFields as exc:
            self.finish_error = exc.message
            self.finish_missing = [MissingField(m["key"], m["label"], m["kind"], list(m.get("options") or []),
                                                str(extra.get(m["key"], ""))) for m in exc.details.get("missing", [])]
            return
        except ServiceError as exc:
            self.finish_error = exc.message
            return
        self.finish_open = False
        if target:
            return [rx.toast.success("Лид обработан: создана сделка"), rx.redirect(target)]
        return self._after_change("Готово")

    @rx.event
    def reopen(self):
        actor = self.actor()
        try:
            with session_scope() as s:
                conversion.reopen(s, actor, self.card_entity, self.card_id)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        return self._after_change("Возвращено в работу")

    @rx.event
    def unlink_repeat(self):
        actor = self.actor()
        try:
            with session_scope() as s:
                create.unlink_contact(s, actor, self.card_entity, self.card_id)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        return self._after_change("Контакт отвязан")

    # ---- create a deal from a contact / company card -------------------------------------
    @rx.event
    def set_new_deal_open(self, value: bool):
        self.new_deal_open = value

    @rx.event
    def create_deal(self, form: dict):
        actor = self.actor()
        pipe = form.get("pipeline") or ""
        program = form.get("program") or ""
        try:
            with session_scope() as s:
                kw = {"contact_id": self.card_id} if self.card_entity == "contact" else {"company_id": self.card_id}
                deal = conversion.create_deal_for(
                    s, actor, pipeline_id=int(pipe) if pipe.isdigit() else 0, title=form.get("title", "").strip(),
                    program_id=int(program) if program.isdigit() else None, amount=form.get("amount") or None, **kw)
                new_id = deal.id
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.new_deal_open = False
        return rx.redirect(f"/deals/{new_id}")

    # ---- link a contact by hand ----------------------------------------------------------
    @rx.event
    def set_link_open(self, value: bool):
        self.link_open = value
        if value:
            self.found, self.search_q, self.picked_contact_id, self.picked_contact = [], "", 0, ""

    @rx.event
    def link_picked(self):
        if not self.picked_contact_id:
            return rx.toast.error("Выберите контакт из списка")
        actor = self.actor()
        try:
            with session_scope() as s:
                create.link_contact(s, actor, self.card_entity, self.card_id, self.picked_contact_id)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.link_open = False
        return self._after_change("Контакт привязан")
