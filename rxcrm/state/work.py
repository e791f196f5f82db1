"""State of the work surfaces (/leads, /deals, /contacts, /companies): the kanban board,
the list, the filter bar with presets, bulk actions, the column chooser and export.

Thin: every query and change goes through rxcrm.services; this class only holds what
the screen shows (one page of rows, the first cards of each column).

Views are data: the filter panel's fields are rows built from the field catalog
(services/fields.py) and the fields each entity shows up front (`Entity.filter_panel` in
services/entities.py); the «Создать» dialog's inputs come from `Entity.create_form`. The
page renders both with rx.foreach, so a field declared there appears without a change here."""
from __future__ import annotations

import asyncio
import copy
import dataclasses
from urllib.parse import urlencode

import reflex as rx

from rxcrm import i18n
from rxcrm.db import session_scope
from rxcrm.services import access, catalogs, create, entities, export, fields, filters as flt, fmt, items, listing, \
    records, views
from rxcrm.services.errors import ServiceError, ValidationFailed
from rxcrm.services.fields import FieldDef, field_map

from . import live
from .app import AppState
from .base import NotLoggedIn, choice, describe, event, field, id_or_none, opt_id, to_bool, to_form, to_id, to_ids, to_int, to_text

PAGE_ENTITY = entities.BY_SECTION  # "deals" → "deal"
ACTIVITY = "activity"  # the filter (and the panel's form) key of the activity state (field next_activity_at)
CHECK_KINDS = ("stage", "user", "program", "enum")  # kinds the panel offers as a box per option
ID_KINDS = ("stage", "user", "program")  # … whose options are ids
ANY_ACTIVITY = "any"  # the activity select's «Все»
# «Создать»: the names create_item reads (an entity's create_form may use these), and the
# inputs tests and the browser find by their test id
CREATE_NAMES = ("title", "last_name", "first_name", "middle_name", "phone", "email", "program", "source", "amount",
                "inn")
CREATE_TESTIDS = {"title": "create-title", "last_name": "create-last", "phone": "create-phone"}
NO_FILTER = "none"  # `?filter=none`: the view is deliberately unfiltered (not "use the default preset")
CHIPS_SHOWN = 2  # chips in the bar; the rest fold into «+N»


@dataclasses.dataclass
class Card:
    id: int = 0
    title: str = ""
    client: str = ""
    amount: str = ""
    responsible: str = ""
    activity: str = ""
    activity_at: str = ""
    overdue: bool = False
    repeat: bool = False
    value: float = 0.0  # the amount as a number (the column's sum follows a move without a re-read)
    due: str = ""  # overdue | today | none | "": the column counter the card adds to
    created: str = ""  # when the item was created (ISO): the column's order, newest first


@dataclasses.dataclass
class BoardColumn:
    id: int = 0
    name: str = ""
    color: str = ""
    count: int = 0
    amount: str = ""
    overdue: int = 0
    today: int = 0
    none: int = 0
    cards: list[Card] = dataclasses.field(default_factory=list)
    has_more: bool = False
    total: float = 0.0  # the amount sum as a number


@dataclasses.dataclass
class Option:
    value: str = ""
    label: str = ""


@dataclasses.dataclass
class Chip:
    key: str = ""
    label: str = ""


@dataclasses.dataclass
class ListColumn:
    key: str = ""
    label: str = ""
    sortable: bool = True


@dataclasses.dataclass
class MissingField:
    """A field a dialog asks for (components/forms.field_control picks its control by kind)."""
    key: str = ""
    label: str = ""
    kind: str = "text"
    options: list[str] = dataclasses.field(default_factory=list)
    value: str = ""
    error: str = ""
    choices: list[Option] = dataclasses.field(default_factory=list)  # program/user/enum/bool: the pick list


def missing_field(row: dict) -> MissingField:
    """A dialog field from a row of services.cards.field_inputs (with its pick list)."""
    choices = [Option(str(v), str(lab)) for v, lab in row.get("choices", [])]
    return MissingField(row["key"], row["label"], row.get("kind", "text"), list(row.get("options") or []),
                        str(row.get("value") or ""), "", choices)


@dataclasses.dataclass
class FilterRow:
    """One field of the filter panel. `control`: "checks" (a box per option, submitted as
    `<key>__<value>`), "range" (`<key>_from` / `<key>_to`; `input_type` date or number) or
    "activity" (the select `activity`: any / overdue / today / none)."""
    key: str = ""
    label: str = ""
    control: str = "checks"
    input_type: str = "text"
    options: list[Option] = dataclasses.field(default_factory=list)
    checked: list[str] = dataclasses.field(default_factory=list)
    value_from: str = ""
    value_to: str = ""
    value: str = ""


@dataclasses.dataclass
class CreateInput:
    """One input of the «Создать» dialog (from `Entity.create_form`): `name` is what the form
    submits, `kind` picks the control (text, phone, email, money, program, source, note),
    `placeholder` is already in the person's language, `choices` the pick list."""
    name: str = ""
    kind: str = "text"
    placeholder: str = ""
    required: bool = False
    half: bool = False
    testid: str = ""
    choices: list[Option] = dataclasses.field(default_factory=list)


def filter_control(fd: FieldDef) -> str:
    """How the filter panel asks for a field of this kind ("" = it cannot)."""
    if fd.kind == "activity":
        return ACTIVITY
    if fd.kind in CHECK_KINDS:
        return "checks"
    return "range" if fd.kind in flt.RANGE_KINDS else ""


def filter_key(fd: FieldDef) -> str:
    """The filter's key for a field (the activity state has its own)."""
    return ACTIVITY if fd.kind == "activity" else fd.key


def panel_fields(entity: str) -> list[FieldDef]:
    """The fields the filter panel shows up front: those the entity declares
    (`Entity.filter_panel`), in that order, that the catalog marks filterable and the panel
    can ask for."""
    catalog = {fd.key: fd for fd in fields.CATALOG[entity]}
    return [catalog[k] for k in entities.get(entity).filter_panel
            if k in catalog and catalog[k].filterable and filter_control(catalog[k])]


def filter_rows(entity: str, lang: str, choices: dict[str, list[Option]], values: dict[str, list[str]],
                ranges: dict[str, str]) -> list[FilterRow]:
    """The panel's rows for `entity` in `lang`, holding the filter now applied (`values`:
    checked options per key, `ranges`: `<key>_from`/`<key>_to`); `choices` are the pick
    lists of the stage/user/program kinds (an enum has its own options)."""
    rows = []
    for fd in panel_fields(entity):
        control, key, label = filter_control(fd), filter_key(fd), fd.title(lang)
        if control == "checks":
            options = choices.get(fd.kind, []) if fd.kind != "enum" else [Option(str(o), str(o)) for o in fd.options]
            rows.append(FilterRow(key, label, control, options=list(options), checked=list(values.get(key, []))))
        elif control == "range":
            if fd.kind == "money":
                label = i18n.text(lang, "work.filter.money", label=label)
            rows.append(FilterRow(key, label, control, "date" if fd.kind in ("date", "datetime") else "number",
                                  value_from=ranges.get(f"{key}_from", ""), value_to=ranges.get(f"{key}_to", "")))
        else:
            options = [Option(state, i18n.text(lang, f"work.filter.activity.{state}"))
                       for state in (ANY_ACTIVITY, *flt.ACTIVITY_STATES)]
            rows.append(FilterRow(key, label, control, options=options,
                                  value=(values.get(key) or [ANY_ACTIVITY])[0]))
    return rows


def create_inputs(entity: str, lang: str, choices: dict[str, list[Option]]) -> list[CreateInput]:
    """The «Создать» dialog of `entity` in `lang` (`choices`: the program and source lists)."""
    return [CreateInput(f.name, f.kind, i18n.text(lang, f.placeholder) if f.placeholder else "", f.required,
                        f.half, CREATE_TESTIDS.get(f.name, ""), list(choices.get(f.kind, [])))
            for f in entities.get(entity).create_form]


@dataclasses.dataclass
class PresetItem:
    id: int = 0
    name: str = ""
    shared: bool = False
    builtin: bool = False
    is_default: bool = False


def preset_name(preset, lang: str) -> str:
    """A preset's name in `lang`: a built-in one still named as shipped (the catalog's
    `work.preset.<code>`) in the person's language; any other name as it is."""
    key = f"work.preset.{preset.code}"
    if preset.is_builtin and preset.code and i18n.RU.get(key) == preset.name:
        return i18n.text(lang, key)
    return preset.name


def preset_items(s, actor, page: str, lang: str = i18n.DEFAULT_LANG) -> list[PresetItem]:
    """The presets menu of a page (lists and /analytics alike)."""
    return [PresetItem(p.id, preset_name(p, lang), p.is_shared, p.is_builtin, is_default)
            for p, is_default in views.presets_with_default(s, actor, page)]


def _opts(pairs) -> list[Option]:
    return [Option(str(v), str(label)) for v, label in pairs]


class WorkState(AppState):
    page: str = "deals"
    entity: str = "deal"
    view: str = "kanban"
    pipeline_id: int = 0
    pipeline_options: list[Option] = []
    q: str = ""
    chips: list[Chip] = []
    _filters: dict = {}
    error: str = ""
    loading: bool = False
    # how each page looked last in this tab ("<user id>:<page>" → view, pipeline, filter, preset, sort,
    # paging): per person, so another login in the same tab never inherits it
    _memory: dict = {}

    # an empty board or list says why and what to do
    empty_title: str = ""
    empty_text: str = ""
    empty_can_reset: bool = False
    empty_can_create: bool = False
    column_empty_text: str = ""

    # board
    board: list[BoardColumn] = []
    saving_id: int = 0  # the card whose move the service has not answered yet
    # each shown card's version when it was read (a drag from a stale board is refused): kept
    # on the server only, so that a move's answer that changed nothing shown sends nothing
    _versions: dict[int, int] = {}
    stage_options: list[Option] = []  # process stages of the pipeline (for bulk move too)

    # list
    rows: list[dict[str, str]] = []
    list_columns: list[ListColumn] = []
    total: int = 0
    page_no: int = 1
    page_size: int = 20
    sort: str = "created_at"
    desc: bool = True
    _sort_by_preset: bool = False  # the order came with a preset (reset when another preset has none)
    selected: list[str] = []
    all_matching: bool = False

    # filter panel
    filter_open: bool = False
    # the filter applied, as strings for the panel's rows (filter_rows): list filters (and the
    # activity state) by key, ranges as `<key>_from` / `<key>_to`
    filter_values: dict[str, list[str]] = {}
    filter_ranges: dict[str, str] = {}
    filter_only_open: bool = False  # «Только в работе»
    source_options: list[Option] = []
    user_options: list[Option] = []
    program_options: list[Option] = []
    extra_field_options: list[Option] = []
    extra_field: str = ""
    presets: list[PresetItem] = []
    active_preset_id: int = 0
    preset_name: str = ""

    # refused move dialog
    missing_open: bool = False
    missing_message: str = ""
    missing_fields: list[MissingField] = []
    _pending: dict = {}

    # column chooser
    chooser_open: bool = False
    chooser_options: list[Option] = []
    chooser_selected: list[str] = []

    # "+ Создать"
    create_open: bool = False
    create_error: str = ""

    # bulk / export
    confirm_delete_open: bool = False
    export_running: bool = False
    export_progress: int = 0

    # ---- computed ---------------------------------------------------------------------
    @rx.var
    def has_board(self) -> bool:
        return self.entity in entities.WORK_ENTITIES

    @rx.var
    def is_kanban(self) -> bool:
        return self.view == "kanban" and self.entity in entities.WORK_ENTITIES

    @rx.var
    def pages(self) -> int:
        return max(1, -(-self.total // max(1, self.page_size)))

    @rx.var
    def selection_count(self) -> int:
        return self.total if self.all_matching else len(self.selected)

    @rx.var
    def page_all_selected(self) -> bool:
        return bool(self.rows) and all(r["id"] in self.selected for r in self.rows)

    @rx.var
    def board_total(self) -> int:
        return sum(c.count for c in self.board)

    @rx.var
    def chips_shown(self) -> list[Chip]:
        return self.chips[:CHIPS_SHOWN]

    @rx.var
    def chips_more(self) -> list[Chip]:
        return self.chips[CHIPS_SHOWN:]

    @rx.var
    def filter_stage_ids(self) -> list[str]:
        return [str(v) for v in self._filters.get("stage_id", [])]

    @rx.var
    def filter_rows(self) -> list[FilterRow]:
        """The filter panel's fields (see `filter_rows`), in the person's language."""
        choices = {"stage": self.stage_options, "user": self.user_options, "program": self.program_options}
        return filter_rows(self.entity, self.lang, choices, self.filter_values, self.filter_ranges)

    @rx.var
    def create_fields(self) -> list[CreateInput]:
        """The «Создать» dialog's inputs for this page's entity."""
        return create_inputs(self.entity, self.lang, {"program": self.program_options,
                                                      "source": self.source_options})

    @rx.var
    def create_title(self) -> str:
        return i18n.text(self.lang, f"work.create.title.{self.entity}")

    # ---- loading ----------------------------------------------------------------------
    def _page_from_path(self) -> str:
        path = (self.router.url.path or "/deals").strip("/").split("/")[0]
        return path if path in PAGE_ENTITY else "deals"

    @event
    def on_load(self):
        """Open a page: what the URL says (a reload, a link from a colleague, back/forward);
        a bare URL (the sidebar) brings back how this page looked last in this tab, else the
        person's defaults. Each page keeps its own view, pipeline, filter, sort and paging."""
        actor = self._require_actor()
        self.page = self._page_from_path()
        self.entity = PAGE_ENTITY[self.page]
        params = {k: v for k, v in dict(self.router.url.query_parameters).items() if isinstance(v, str)}
        self.error, self.selected, self.all_matching = "", [], False
        self.filter_open = self.chooser_open = self.missing_open = self.confirm_delete_open = False
        self.list_columns, self.rows, self.board, self.total = [], [], [], 0
        self.column_empty_text = i18n.catalog(self.lang).get(f"work.column_empty.{self.entity}", "")
        self._read(lambda s, a: self._open_page(s, a, params), actor=actor)
        return self._reload(actor)

    def _open_page(self, s, actor, params: dict) -> None:
        """The page's pipeline, view, filter, sort and paging: from the URL; with no URL
        parameters from this tab's memory of the page, else the person's defaults (the
        pinned or role preset, the pipeline chosen last or their department's)."""
        memory = None if params else self._memory.get(f"{actor.user_id}:{self.page}")
        setting = views.page_setting(s, actor, self.page)
        self._open_pipeline(s, actor, params, memory, setting)
        fmap = field_map(s, self.entity, self.pipeline_id or None)
        default_view = "kanban" if self.entity in entities.WORK_ENTITIES else "list"
        if memory is not None:
            self.view = memory["view"]
            self._filters, self.active_preset_id = copy.deepcopy(memory["filters"]), memory["preset"]
            sort, desc = memory["sort"], memory["desc"]
            self.page_size, self.page_no = memory["page_size"], memory["page_no"]
        else:
            named = views.preset_view(self._open_filter(s, actor, params, fmap))  # the view the preset names
            self.view = params.get("view") or named.get("view") or \
                (setting.view_mode if setting is not None else "") or default_view
            sort = params.get("sort") or named.get("sort") or listing.DEFAULT_SORT[0]
            self._sort_by_preset = not params.get("sort") and bool(named.get("sort"))
            desc = params.get("dir", "desc" if named.get("desc", listing.DEFAULT_SORT[1]) else "asc") != "asc"
            size = id_or_none(params.get("size"))
            if size not in listing.PAGE_SIZES:
                size = setting.page_size if setting is not None and setting.page_size in listing.PAGE_SIZES \
                    else 20
            self.page_size, self.page_no = size, id_or_none(params.get("page")) or 1
        if self.entity not in entities.WORK_ENTITIES:
            self.view = "list"
        elif self.view not in ("kanban", "list"):
            self.view = "kanban"
        self.sort, self.desc = listing.sort_or_default(s, self.entity, sort, desc, self.pipeline_id or None)
        self.q = self._filters.get("q", "")
        self._load_options(s, actor)

    def _open_pipeline(self, s, actor, params: dict, memory: dict | None, setting) -> None:
        """Pipelines offered (those where the person sees something, and their department's)
        and the one to show: the URL's (any pipeline of the entity: a shared link shows what
        its sender saw), else this tab's, else the one chosen last, their department's, the default."""
        if self.entity not in entities.WORK_ENTITIES:
            self.pipeline_options, self.pipeline_id = [], 0
            return
        offered = catalogs.pipelines_for(s, actor, self.entity)
        every = {p.id: p for p in catalogs.pipelines(s, self.entity)}
        wanted = memory["pipeline_id"] if memory is not None else id_or_none(params.get("pipeline"))
        if wanted in every:
            chosen = every[wanted]
            if all(p.id != wanted for p in offered):
                offered = sorted([*offered, chosen], key=lambda p: (p.sort, p.id))
        else:
            chosen = catalogs.pipeline_for(s, actor, self.entity, offered,
                                           setting.pipeline_id if setting is not None else None)
        self.pipeline_options = _opts((p.id, p.name) for p in offered)
        self.pipeline_id = chosen.id if chosen is not None else 0

    def _open_filter(self, s, actor, params: dict, fmap):
        """The filter from the URL: its conditions; else the preset it names; else nothing
        when it says `filter=none`; else the person's default preset. The preset named
        alongside conditions stays marked only if it means the same for this person.
        Returns the preset applied (its view and order apply too), or None."""
        try:
            decoded = flt.decode(params, fmap)
        except (ValueError, ServiceError):
            decoded = {}
        named = None
        preset_param = id_or_none(params.get("preset"))
        if preset_param is not None:
            named = next((p for p in views.list_presets(s, actor, self.page) if p.id == preset_param), None)
        if decoded:
            mine = views.preset_filters(named, actor, s) if named is not None else None
            same = mine is not None and flt.normalized(mine) == flt.normalized(decoded)
            self._filters, self.active_preset_id = decoded, named.id if same else 0
            return named if same else None
        if named is not None:
            self._filters, self.active_preset_id = views.preset_filters(named, actor, s), named.id
            return named
        if params.get("filter") == NO_FILTER:
            self._filters, self.active_preset_id = {}, 0
            return None
        preset = views.default_preset(s, actor, self.page)
        self._filters = views.preset_filters(preset, actor, s) if preset is not None else {}
        self.active_preset_id = preset.id if preset is not None else 0
        return preset

    def _load_options(self, s, actor) -> None:
        self.source_options = _opts((x, x) for x in catalogs.sources())
        self.user_options = _opts(catalogs.users(s))
        self.program_options = _opts(catalogs.programs(s))
        if self.pipeline_id:
            self.stage_options = _opts((st.id, st.name) for st in catalogs.stages(s, self.pipeline_id)
                                       if st.semantic == "process")
        else:
            self.stage_options = []
        fmap = field_map(s, self.entity, self.pipeline_id or None)
        up_front = {fd.key for fd in panel_fields(self.entity)}
        self.extra_field_options = [Option(k, f.title(self.lang)) for k, f in fmap.items()
                                    if f.filterable and k not in up_front and k != "id"]
        self._load_presets(s, actor)

    def _load_presets(self, s, actor) -> None:
        self.presets = preset_items(s, actor, self.page, self.lang)

    def _effective_filters(self) -> dict:
        f = dict(self._filters)
        if self.entity in entities.WORK_ENTITIES and self.pipeline_id:
            f["pipeline_id"] = [self.pipeline_id]
        return f

    def _chips(self, s) -> list[Chip]:
        fmap = field_map(s, self.entity, self.pipeline_id or None)
        names = {"stage_id": {o.value: o.label for o in self.stage_options},
                 "responsible_id": {o.value: fmt.short_name(o.label) for o in self.user_options},
                 "program_id": {o.value: o.label for o in self.program_options}}
        out = []
        for key, value in self._filters.items():
            if value in (None, "", [], {}):
                continue
            if key == "q":
                out.append(Chip(key, self._tr("work.chip.search", value=value)))
                continue
            if key == "semantic":
                out.append(Chip(key, self._tr("work.chip.only_open") if value == ["process"]
                                else self._tr("work.chip.stages", value=", ".join(value))))
                continue
            if key == ACTIVITY:
                state = self._tr(f"work.chip.activity.{value}") if value in flt.ACTIVITY_STATES else value
                out.append(Chip(key, self._tr("work.chip.activity", value=state)))
                continue
            if key in ("reached_stage", "reached_at", "department_id"):
                if key != "reached_at":
                    out.append(Chip(key, flt.describe_reserved(s, key, value, self._filters)))
                continue
            fd = fmap.get(key)
            label = fd.title(self.lang) if fd else key
            if isinstance(value, list):
                shown = [names.get(key, {}).get(str(v), str(v)) for v in value]
                text = ", ".join(shown[:3]) + (f" +{len(shown) - 3}" if len(shown) > 3 else "")
            elif isinstance(value, dict):
                lo, hi = value.get("from"), value.get("to")
                text = " ".join(([self._tr("work.chip.from", value=lo)] if lo else [])
                                + ([self._tr("work.chip.to", value=hi)] if hi else []))
            elif isinstance(value, bool):
                text = self._tr("common.yes") if value else self._tr("common.no")
            else:
                text = str(value)
            out.append(Chip(key, f"{label}: {text}"))
        return out

    def _panel_values(self) -> None:
        vals: dict[str, list[str]] = {}
        ranges: dict[str, str] = {}
        for key, value in self._filters.items():
            if isinstance(value, list):
                vals[key] = [str(v) for v in value]
            elif isinstance(value, dict):
                ranges[f"{key}_from"] = str(value.get("from") or "")
                ranges[f"{key}_to"] = str(value.get("to") or "")
            elif key == ACTIVITY:
                vals[key] = [str(value)]
        self.filter_only_open = "process" in vals.get("semantic", [])
        self.filter_values, self.filter_ranges = vals, ranges

    def _url(self) -> str:
        """The whole view as a URL (written with history.replaceState): board/list, pipeline,
        the preset, the filter (`filter=none` when there is none, so a cleared filter stays
        cleared after a reload instead of falling back to the default preset), and for a
        list its sort, direction, page size and page."""
        params: list[tuple[str, str]] = []
        if self.entity in entities.WORK_ENTITIES:
            params.append(("view", self.view))
            if self.pipeline_id:
                params.append(("pipeline", str(self.pipeline_id)))
        if self.active_preset_id:
            params.append(("preset", str(self.active_preset_id)))
        if not any(v not in (None, "", [], {}) for v in self._filters.values()):
            params.append(("filter", NO_FILTER))
        if not self.is_kanban:
            params += [("sort", self.sort), ("dir", "desc" if self.desc else "asc"), ("size", str(self.page_size))]
            if self.page_no > 1:
                params.append(("page", str(self.page_no)))
        qs = urlencode(params)
        fqs = flt.encode(self._filters)
        return f"/{self.page}?" + "&".join(x for x in (qs, fqs) if x)

    def _remember(self, actor) -> None:
        """This tab's memory of the page (a bare URL, e.g. the sidebar, brings it back)."""
        self._memory = {**self._memory, f"{actor.user_id}:{self.page}": {
            "view": self.view, "pipeline_id": self.pipeline_id, "filters": copy.deepcopy(self._filters),
            "preset": self.active_preset_id, "sort": self.sort, "desc": self.desc, "page_size": self.page_size,
            "page_no": self.page_no}}

    def _reload(self, actor=None):
        actor = actor or self._require_actor()
        self._load_view(actor)
        self._remember(actor)
        url = self._url().replace("\\", "\\\\").replace("'", "\\'")
        return rx.call_script(f"window.history.replaceState(null, '', '{url}')")

    def _load_view(self, actor) -> None:
        """Read what the page shows (board or list page, chips, empty hint) and tell the
        live updates what this tab is looking at."""
        self.error = ""

        def load(s, a):
            self.chips = self._chips(s)
            self._panel_values()
            if self.is_kanban:
                self._load_board(s, a)
            else:
                self._load_list(s, a)
            self._empty_hint(s, a)
            return access.level(s, a, self.entity, "view")

        try:
            scope = self._read(load, actor=actor)
        except ValidationFailed as exc:
            self.error = describe(exc, self.lang)
            self.board, self.rows, self.total = [], [], 0
            self.empty_title, self.empty_text, self.empty_can_reset, self.empty_can_create = "", "", False, False
            return
        live.watch(self.router.session.client_token, "work", live.Watch(
            WorkState, self.entity, self.pipeline_id or None, None, actor.user_id, actor.department_id, scope))

    def _live_refresh(self, rows) -> None:
        """Someone else changed items this tab shows (state/live.py). A board reads just those
        items and the columns' summaries and puts the cards where they now belong
        (`_patch_board`); a list, or a change of many items at once, is read again."""
        ids = sorted({r.entity_id for r in rows if r.entity_id})
        patch = self.is_kanban and self.board and not any(r.kind == "bulk" for r in rows) and len(ids) <= LIVE_PATCH_MAX
        try:
            if patch and self._patched(ids):
                return
            self._load_view(self._require_actor())  # reads it all (and shows a filter's refusal)
        except NotLoggedIn:
            live.unwatch(self.router.session.client_token, "work")

    def _patched(self, ids: list[int]) -> bool:
        """The live patch of the board (see `_patch_board`), in one unit of work; False when
        the board must be read whole instead (its stages changed, it became empty or stopped
        being — its hint —, the filter is refused)."""
        try:
            columns, cards = self._read(listing.board_changes, self.entity, self.pipeline_id,
                                        self._effective_filters(), ids)
        except ValidationFailed:
            return False
        if [c["id"] for c in columns] != [c.id for c in self.board]:
            return False
        board = _patch_board(self.board, columns, cards, set(ids))
        self._note_versions(cards)
        if board != list(self.board):  # an unchanged board is not sent again
            self.board = board
        return (sum(c.count for c in self.board) == 0) == bool(self.empty_title)

    def _empty_hint(self, s, actor) -> None:
        """An empty board or list says why and what to do: a filter that matches nothing
        (→ «Сбросить фильтр»), or nothing here yet (→ «Создать», another pipeline)."""
        cat = i18n.catalog(self.lang)
        empty = (sum(c.count for c in self.board) == 0) if self.is_kanban else self.total == 0
        self.empty_title, self.empty_text, self.empty_can_reset, self.empty_can_create = "", "", False, False
        if not empty:
            return
        items = cat[f"work.items.{self.entity}"]
        if any(v not in (None, "", [], {}) for v in self._filters.values()):
            preset = next((p.name for p in self.presets if p.id == self.active_preset_id), "")
            self.empty_title = cat["work.empty.filtered.title"]
            self.empty_text = cat["work.empty.filtered.preset"].format(name=preset, items=items) if preset \
                else cat["work.empty.filtered.text"].format(items=items)
            self.empty_can_reset = True
            return
        pipeline = next((o.label for o in self.pipeline_options if o.value == str(self.pipeline_id)), "")
        self.empty_title = cat["work.empty.pipeline.title"].format(pipeline=pipeline, items=items) if pipeline \
            else cat["work.empty.page.title"].format(items=items)
        self.empty_can_create = access.level(s, actor, self.entity, "add") != "none"
        text = [cat["work.empty.create"] if self.empty_can_create else cat["work.empty.wait"]]
        if len(self.pipeline_options) > 1:
            text.append(cat["work.empty.other_pipeline"])
        self.empty_text = " ".join(text)

    def _load_board(self, s, actor) -> None:
        columns = listing.board(s, actor, self.entity, self.pipeline_id, self._effective_filters())
        self._versions = {}
        self._note_versions([x for c in columns for x in c["cards"]])
        self.board = [_column(c, [Card(**_card(x)) for x in c["cards"]]) for c in columns]

    def _note_versions(self, cards: list[dict]) -> None:
        """Remember the versions of cards just read (`_versions`), forgetting cards no longer
        shown."""
        shown = {c.id for col in self.board for c in col.cards} | {d["id"] for d in cards}
        versions = {k: v for k, v in self._versions.items() if k in shown}
        versions.update((d["id"], d.get("version") or 0) for d in cards)
        self._versions = versions

    def _load_list(self, s, actor) -> None:
        self.sort, self.desc = listing.sort_or_default(s, self.entity, self.sort, self.desc, self.pipeline_id or None)
        cols = views.columns_for(s, actor, self.page, self.pipeline_id or None)
        page = listing.list_page(s, actor, self.entity, self._effective_filters(), cols, self.sort, self.desc,
                                 self.page_no, self.page_size, pipeline_id=self.pipeline_id or None,
                                 lang=self.lang)
        self.list_columns = [ListColumn(c.key, c.title(self.lang), c.sortable) for c in page.columns]
        self.rows = [self._row(r, page.columns) for r in page.rows]
        self.total, self.page_no = page.total, page.page

    def _row(self, row: dict, columns: list[FieldDef]) -> dict[str, str]:
        """A list row as text: the service's yes/no and «нет дел» in the person's language
        (`_no_activity` marks the latter)."""
        out = {k: ("1" if v is True else "" if v is False else str(v)) for k, v in row.items()}
        for fd in columns:
            value = out.get(fd.key)
            if fd.kind == "activity":
                out["_no_activity"] = "1" if value == listing.display(None, fd) else ""
                if out["_no_activity"]:
                    out[fd.key] = self._tr("work.card.no_activity")
            elif fd.kind == "bool" and value in (fields.YES, fields.NO):
                out[fd.key] = self._tr("common.yes") if value == fields.YES else self._tr("common.no")
        return out

    # ---- board ------------------------------------------------------------------------
    @event
    def load_more(self, stage_id: int):
        stage_id = to_id(stage_id, "work.what.stage")
        cols = list(self.board)
        for i, c in enumerate(cols):
            if c.id == stage_id:
                more = self._read(listing.column_cards, self.entity, self.pipeline_id, stage_id,
                                 self._effective_filters(), offset=len(c.cards))
                cards = list(c.cards) + [Card(**_card(x)) for x in more]
                self._note_versions(more)
                cols[i] = dataclasses.replace(c, cards=cards, has_more=c.count > len(cards))
        self.board = cols

    @event
    def on_drag_end(self, result: dict):
        """Optimistic move: the card changes column at once; the service decides. The move
        carries the version the card had on this board: if someone changed the item since,
        it is refused with «Карточку изменил …» and the board is read again."""
        result = to_form(result)
        card_id, src, dst = (to_id(result.get("draggableId"), "work.what.card"),
                             to_id(result.get("from"), "work.what.stage"), to_id(result.get("to"), "work.what.stage"))
        if src == dst:
            return
        snapshot = list(self.board)
        shown = any(c.id == card_id for col in self.board if col.id == src for c in col.cards)
        version = self._versions.get(card_id) if shown else None
        self._move_card_locally(card_id, src, dst)
        self.saving_id = card_id  # the card shows it is being saved until the service answers
        yield
        try:
            moved = self._call(self._move, card_id, dst, version)
        except items.MissingFields as exc:
            self.board, self.saving_id = snapshot, 0
            self._open_missing(exc, card_id, dst, version)
            return
        except ServiceError as exc:
            self.board, self.saving_id = snapshot, 0
            yield rx.toast.error(exc.message, duration=8000)
            if exc.code == "conflict":
                yield self._reload()
            return
        except Exception:
            self.board, self.saving_id = snapshot, 0
            raise
        self._settle_move(src, dst, moved)
        self.saving_id = 0

    def _move(self, s, actor, card_id: int, dst: int, version: int | None) -> dict:
        """The move and the card as it stands after it (rules may have changed it), in one
        unit of work."""
        items.move_stage(s, actor, self.entity, card_id, dst, expected_version=version)
        item = records.get_item(s, self.entity, card_id)
        s.flush()  # the version after the move and whatever the rules did
        return listing.cards(s, self.entity, [item])[0]

    def _settle_move(self, src: int, dst: int, moved: dict) -> None:
        """After a move the service accepted: the card as it now is (new version; rules may
        have changed its amount or next activity). The local move already counted it out of
        `src` and into `dst`; only what the service changed beyond that is corrected, and a
        board that did not change is not sent again."""
        self._versions = {**self._versions, moved["id"]: moved.get("version") or 0}
        fresh = Card(**_card(moved))
        cols = []
        for col in self.board:
            if col.id == dst:
                old = next((c for c in col.cards if c.id == fresh.id), None)
                if old is None:
                    col = _counted(col, [fresh, *col.cards], 1, fresh)
                elif old != fresh:
                    col = _counted(_counted(col, col.cards, -1, old),
                                   [fresh if c.id == fresh.id else c for c in col.cards], 1, fresh)
            cols.append(col)
        if cols != list(self.board):
            self.board = cols

    def _move_card_locally(self, card_id: int, src: int, dst: int) -> None:
        """The card leaves `src` for the top of `dst`, both columns' counts, sums and
        counters following it."""
        card = next((x for col in self.board if col.id == src for x in col.cards if x.id == card_id), None)
        cols = []
        for col in self.board:
            if col.id == src:
                col = _counted(col, [x for x in col.cards if x.id != card_id], -1, card)
            elif col.id == dst and card is not None:
                col = _counted(col, [card, *col.cards], 1, card)
            cols.append(col)
        self.board = cols

    def _open_missing(self, exc: items.MissingFields, item_id: int, stage_id: int, version: int | None) -> None:
        from rxcrm.services import cards

        from .fieldinput import missing_rows
        self.missing_message = exc.message
        self.missing_fields = [missing_field(r) for r in self._read(cards.field_inputs, missing_rows(exc))]
        self._pending = {"item_id": item_id, "stage_id": stage_id, "version": version}
        self.missing_open = True

    @event
    def close_missing(self):
        self.missing_open = False
        self._pending = {}

    @event
    def submit_missing(self, form: dict):
        """Save the fields the stage needs and retry the move (one transaction)."""
        from .fieldinput import form_values, typed_values
        form = to_form(form)
        if not self._pending:
            return
        typed = typed_values(self.missing_fields, form)
        # keep what was typed even if the save fails
        self.missing_fields = [dataclasses.replace(f, value=typed[f.key], error="") for f in self.missing_fields]
        try:
            values = form_values(self.missing_fields, form)  # a date typed as ДД.ММ.ГГГГ → ISO
            self._call(items.move_stage, self.entity, self._pending["item_id"], self._pending["stage_id"],
                      values=values, expected_version=self._pending.get("version"))
        except items.MissingFields as exc:
            self.missing_message = exc.message
            return
        except ValidationFailed as exc:
            self.missing_message = exc.message
            self.missing_fields = [dataclasses.replace(f, error=exc.fields.get(f.key, ""))
                                   for f in self.missing_fields]
            return
        except ServiceError as exc:
            self.missing_open = False
            return rx.toast.error(exc.message)
        self.missing_open = False
        self._pending = {}
        yield rx.toast.success(self._tr("work.toast.stage_changed"))
        yield self._reload()

    # ---- view switches ----------------------------------------------------------------
    @event
    def set_view(self, view: str | list[str]):
        self.view = choice(view, ("kanban", "list"), "work.what.view")
        self.selected, self.all_matching = [], False
        if self.entity in entities.WORK_ENTITIES:
            self._call(views.remember, self.page, view_mode=self.view)
        return self._reload()

    @event
    def set_pipeline(self, value: str):
        """Another pipeline (only one of those offered); remembered for the person, so the
        page opens on it next time."""
        pipeline_id = to_id(value, "work.what.pipeline")
        if any(o.value == str(pipeline_id) for o in self.pipeline_options):
            self.pipeline_id = pipeline_id
            # stage filters of another pipeline make no sense here
            self._filters = {k: v for k, v in self._filters.items() if k != "stage_id"}
            self._call(views.remember, self.page, pipeline_id=pipeline_id)
            self._read(self._load_options)
            self.page_no = 1
            return self._reload()

    # ---- filters ----------------------------------------------------------------------
    @event
    def set_q(self, value: str):
        self.q = to_text(value, "common.what.search", 200)

    @event
    def search(self, form: dict | None = None):
        q = to_text(to_form(form or {}).get("q", self.q), "common.what.search", 200).strip()
        self.q = q
        f = dict(self._filters)
        if q:
            f["q"] = q
        else:
            f.pop("q", None)
        self._filters = f
        self.page_no, self.active_preset_id = 1, 0
        return self._reload()

    @event
    def toggle_filter_panel(self):
        self.filter_open = not self.filter_open

    @event
    def set_filter_open(self, value: bool):
        self.filter_open = to_bool(value)

    @event
    def set_extra_field(self, value: str):
        self.extra_field = to_text(value, "work.what.field", 200)

    @event
    def apply_filter_form(self, form: dict):
        """Build the filter from the panel's form: its rows (`panel_fields`: a box per option
        `<key>__<value>`, ranges `<key>_from`/`<key>_to`, the `activity` select), «Только в
        работе» (`only_open`) and the extra field; extra fields applied before stay unless
        the form drops them (`drop__<key>`)."""
        form = to_form(form)
        f: dict = {}
        if self.q:
            f["q"] = self.q
        panel = panel_fields(self.entity)
        for fd in panel:
            key, control = filter_key(fd), filter_control(fd)
            if control == "checks":
                chosen = [k.split("__", 1)[1] for k, v in form.items() if k.startswith(key + "__") and v]
                if chosen:
                    f[key] = to_ids(chosen, "work.what.filter_value") if fd.kind in ID_KINDS else chosen
            elif control == "range":
                lo = field(form, f"{key}_from", "work.what.filter", 100).strip()
                hi = field(form, f"{key}_to", "work.what.filter", 100).strip()
                if lo or hi:
                    f[key] = {"from": lo or None, "to": hi or None}
            elif form.get(key) in flt.ACTIVITY_STATES:
                f[key] = form[key]
        if to_bool(form.get("only_open")):
            f["semantic"] = ["process"]
        extra_key, extra_val = self.extra_field, field(form, "extra_value", "common.what.value", 500).strip()
        extra_lo = field(form, "extra_from", "common.what.value", 100).strip()
        extra_hi = field(form, "extra_to", "common.what.value", 100).strip()
        if extra_key:
            if extra_lo or extra_hi:
                f[extra_key] = {"from": extra_lo or None, "to": extra_hi or None}
            elif extra_val:
                f[extra_key] = extra_val
        up_front = {filter_key(fd) for fd in panel}
        for key, value in self._filters.items():  # keep extra fields already applied
            if key not in f and key not in up_front and key not in ("q", "semantic") and \
                    not form.get(f"drop__{key}"):
                f[key] = value
        fmap = self._read(lambda s, a: field_map(s, self.entity, self.pipeline_id or None))
        for key, value in list(f.items()):
            fd = fmap.get(key)
            if fd is not None and fd.kind == "enum" and isinstance(value, str):
                f[key] = [value]
            if fd is not None and fd.kind == "bool" and isinstance(value, str):
                f[key] = fields.is_yes(value)
        self._filters = f
        self.filter_open, self.page_no, self.active_preset_id, self.extra_field = False, 1, 0, ""
        return self._reload()

    @event
    def remove_chip(self, key: str):
        key = to_text(key, "work.what.filter", 200)
        f = dict(self._filters)
        f.pop(key, None)
        if key == "reached_stage":
            f.pop("reached_at", None)
        if key == "q":
            self.q = ""
        self._filters = f
        self.page_no, self.active_preset_id = 1, 0
        return self._reload()

    @event
    def clear_filters(self):
        self._filters, self.q, self.page_no, self.active_preset_id = {}, "", 1, 0
        return self._reload()

    @event
    def set_activity_filter(self, state: str):
        f = dict(self._filters)
        if f.get("activity") == state or state not in flt.ACTIVITY_STATES:
            f.pop("activity", None)
        else:
            f["activity"] = state
        self._filters = f
        return self._reload()

    # ---- presets ----------------------------------------------------------------------
    @event
    def apply_preset(self, preset_id: int):
        preset_id = to_id(preset_id, "work.what.preset")

        def find(s, a):
            preset = next((p for p in views.list_presets(s, a, self.page) if p.id == preset_id), None)
            return (views.preset_view(preset), views.preset_filters(preset, a)) if preset is not None else None

        found = self._read(find)
        if found is None:
            return rx.toast.error(self._tr("work.toast.preset_missing"))
        named, self._filters = found
        if self.entity in entities.WORK_ENTITIES and named.get("view"):
            self.view = named["view"]
        if named.get("sort"):  # the preset names its order (e.g. «Очередь»: the work priority)
            self.sort, self.desc = named["sort"], named["desc"]
            self._sort_by_preset = True
        elif self._sort_by_preset:  # the order came with the last preset, not from the person
            self.sort, self.desc = listing.DEFAULT_SORT
            self._sort_by_preset = False
        self.q = self._filters.get("q", "")
        self.active_preset_id, self.page_no, self.filter_open = preset_id, 1, False
        return self._reload()

    @event
    def set_preset_name(self, value: str):
        self.preset_name = to_text(value, "work.what.name", 200)

    @event
    def save_preset(self, form: dict):
        form = to_form(form)
        name = field(form, "name", "work.what.name", 200) or self.preset_name

        def save(s, a):
            preset = views.save_preset(s, a, self.page, name, dict(self._filters), shared=to_bool(form.get("shared")),
                                       view_mode=self.view, list_sort=self.sort, list_desc=self.desc)
            self.active_preset_id = preset.id
            self._load_presets(s, a)

        self._call(save)
        self.preset_name = ""
        return rx.toast.success(self._tr("work.toast.preset_saved"))

    @event
    def delete_preset(self, preset_id: int):
        preset_id = to_id(preset_id, "work.what.preset")

        def delete(s, a):
            views.delete_preset(s, a, preset_id)
            self._load_presets(s, a)

        self._call(delete)

    @event
    def pin_preset(self, preset_id: int):
        preset_id = to_id(preset_id, "work.what.preset")

        def pin(s, a):
            views.toggle_default(s, a, self.page, preset_id)
            self._load_presets(s, a)

        self._call(pin)

    # ---- list -------------------------------------------------------------------------
    @event
    def set_sort(self, key: str):
        """A click on a column header: the same column flips its direction; another one starts
        with the biggest/newest first for dates and money, A–Я otherwise. A field the list
        cannot sort by falls back to the default order."""
        key = to_text(key, "work.what.sort", 200)
        self._sort_by_preset = False
        if self.sort == key:
            self.desc = not self.desc
        else:
            self.sort, self.desc = key, key in ("created_at", "updated_at", "amount")
        self.sort, self.desc = self._read(lambda s, a: listing.sort_or_default(s, self.entity, self.sort, self.desc,
                                                                               self.pipeline_id or None))
        self.page_no = 1
        return self._reload()

    @event
    def set_page_no(self, n: int):
        self.page_no = max(1, min(to_int(n, "work.what.page", -10**9, 10**9), self.pages))
        self.selected = [] if not self.all_matching else self.selected
        return self._reload()

    @event
    def set_page_size(self, value: str):
        size = to_int(value, "work.what.page_size", 1, 10**6)
        if size in listing.PAGE_SIZES:
            self.page_size, self.page_no = size, 1
            self._call(views.remember, self.page, page_size=size)
            return self._reload()

    @event
    def toggle_row(self, row_id: str):
        row_id = str(to_id(row_id, "work.what.row"))
        self.all_matching = False
        self.selected = [x for x in self.selected if x != row_id] if row_id in self.selected \
            else self.selected + [row_id]

    @event
    def toggle_page(self, checked: bool):
        checked = to_bool(checked)
        self.all_matching = False
        ids = [r["id"] for r in self.rows]
        self.selected = list(dict.fromkeys(self.selected + ids)) if checked else \
            [x for x in self.selected if x not in ids]

    @event
    def select_all_matching(self):
        self.all_matching = True
        self.selected = [r["id"] for r in self.rows]

    @event
    def clear_selection(self):
        self.selected, self.all_matching = [], False

    def _selection_ids(self, s, actor, action: str) -> list[int]:
        if self.all_matching:
            return listing.matching_ids(s, actor, self.entity, self._effective_filters(), action="view",
                                        pipeline_id=self.pipeline_id or None)
        return to_ids(self.selected, "work.what.row")

    @event
    def bulk_move(self, stage_id: str):
        stage_id = to_id(stage_id, "work.what.stage")
        return self._bulk(lambda s, a, ids: items.bulk_move(s, a, self.entity, ids, stage_id))

    @event
    def bulk_assign(self, user_id: str):
        user_id = to_id(user_id, "work.what.user")
        return self._bulk(lambda s, a, ids: items.bulk_assign(s, a, self.entity, ids, user_id))

    @event
    def set_confirm_delete(self, value: bool):
        self.confirm_delete_open = to_bool(value)

    @event
    def bulk_delete(self):
        self.confirm_delete_open = False
        return self._bulk(lambda s, a, ids: items.bulk_delete(s, a, self.entity, ids))

    def _bulk(self, op):
        def run(s, a):
            ids = self._selection_ids(s, a, "edit")
            return op(s, a, ids) if ids else None

        res = self._call(run)
        if res is None:
            return rx.toast.info(self._tr("work.toast.nothing_selected"))
        self.selected, self.all_matching = [], False
        toast = rx.toast.success(res.summary()) if not res.refused else \
            rx.toast.warning(res.summary(), duration=8000)
        return [toast, self._reload()]

    # ---- column chooser ---------------------------------------------------------------
    @event
    def open_chooser(self):
        def read(s, a):
            self.chooser_options = _opts(views.available_columns(s, self.page, self.pipeline_id or None,
                                                                 self.lang))
            self.chooser_selected = views.columns_for(s, a, self.page, self.pipeline_id or None)

        self._read(read)
        self.chooser_open = True

    @event
    def set_chooser_open(self, value: bool):
        self.chooser_open = to_bool(value)

    @event
    def toggle_column(self, key: str):
        key = to_text(key, "work.what.column", 200)
        self.chooser_selected = [k for k in self.chooser_selected if k != key] if key in self.chooser_selected \
            else self.chooser_selected + [key]

    @event
    def save_columns(self, for_all: bool = False):
        for_all = to_bool(for_all)
        self._call(views.save_columns, self.page, list(self.chooser_selected), for_all=for_all)
        self.chooser_open = False
        return self._reload()

    @event
    def reset_columns(self):
        self._call(views.reset_columns, self.page)
        self.chooser_open = False
        return self._reload()

    # ---- create -----------------------------------------------------------------------
    @event
    def set_create_open(self, value: bool):
        self.create_open, self.create_error = to_bool(value), ""

    @event
    def create_item(self, form: dict):
        """"+ Создать": a new lead / deal / contact / company through the create service
        (validation, repeat detection, first stage, timeline, audit), then its card."""
        form = to_form(form)
        text = {k: field(form, k, k, 2000) for k in CREATE_NAMES if k != "program"}
        phones = [text["phone"]] if text["phone"].strip() else []
        emails = [text["email"]] if text["email"].strip() else []
        program_id = opt_id(form.get("program"), "work.what.program")
        source = text["source"] or create.DEFAULT_SOURCE

        def make(s, a):
            if self.entity == "lead":
                item = create.create_lead(s, a, title=text["title"], last_name=text["last_name"],
                                          first_name=text["first_name"], middle_name=text["middle_name"],
                                          phones=phones, emails=emails, source=source, program_id=program_id)
            elif self.entity == "deal":
                contact_id = None
                if text["last_name"] or text["first_name"]:
                    contact_id = create.create_contact(s, a, last_name=text["last_name"],
                                                       first_name=text["first_name"], phones=phones,
                                                       emails=emails).id
                item = create.create_deal(s, a, pipeline_id=self.pipeline_id, title=text["title"],
                                          contact_id=contact_id, source=source, program_id=program_id,
                                          amount=text["amount"] or None)
            elif self.entity == "contact":
                item = create.create_contact(s, a, last_name=text["last_name"], first_name=text["first_name"],
                                             middle_name=text["middle_name"], phones=phones, emails=emails)
            else:
                item = create.create_company(s, a, title=text["title"], phones=phones, emails=emails,
                                             inn=text["inn"])
            return item.id

        try:
            new_id = self._call(make)
        except ServiceError as exc:
            self.create_error = describe(exc, self.lang)
            return
        self.create_open = False
        return rx.redirect(f"/{self.page}/{new_id}")

    # ---- export -----------------------------------------------------------------------
    @event(background=True)
    async def start_export(self):
        async with self:
            if self.export_running:
                return
            actor = self._require_actor()
            self.export_running, self.export_progress = True, 0
            params = dict(entity=self.entity, filters=self._effective_filters(), sort=self.sort, desc=self.desc,
                          pipeline_id=self.pipeline_id or None, lang=self.lang, page=self.page)
            if self.all_matching or not self.selected:
                params["ids"] = None
            else:
                params["ids"] = to_ids(self.selected, "work.what.row")
        loop = asyncio.get_running_loop()
        progress = {"done": 0, "total": 0}

        def on_progress(done: int, total: int) -> None:
            progress.update(done=done, total=total)

        def run():  # a worker thread; a unit of work that writes (the export is audited)
            with session_scope() as s:
                columns = views.columns_for(s, actor, params["page"], params["pipeline_id"])
                f = dict(params["filters"])
                if params["ids"]:
                    f["id"] = params["ids"]  # export of the selected rows only
                token, path = export.new_export(actor.user_id, params["entity"])
                n = export.export_xlsx(s, actor, params["entity"], f, columns, sort=params["sort"],
                                       desc=params["desc"], pipeline_id=params["pipeline_id"],
                                       lang=params["lang"], dest=path, progress=on_progress)
                return token, n

        task = loop.run_in_executor(None, run)
        while not task.done():
            await asyncio.sleep(0.5)
            async with self:
                total = progress["total"]
                self.export_progress = 100 * progress["done"] // total if total else 0
        try:
            token, n = task.result()
        except Exception:
            async with self:
                self.export_running = False
            raise
        async with self:
            self.export_running, self.export_progress = False, 100
        yield rx.toast.success(self._tr("work.toast.exported", n=n))
        yield rx.redirect(f"/api/export/{token}", is_external=True)


LIVE_PATCH_MAX = 100  # a live refresh with more changed items than this reads the board again


def _patch_board(board: list[BoardColumn], columns: list[dict], fresh: list[dict], changed: set[int]) -> list[BoardColumn]:
    """The board after the items `changed` changed: `columns` are the new summaries (counts,
    sums, counters), `fresh` the cards of those items that are on this board now. Each
    column's shown cards stay what a read of its first cards gives (a prefix of its order,
    newest first): a changed card leaves wherever it was and enters its column at its place
    in that order — or not at all when its place is below the cards shown (the column's
    «more» brings it, as a fresh read would)."""
    by_stage: dict[int, list[Card]] = {}
    for d in fresh:
        by_stage.setdefault(d["stage_id"], []).append(Card(**_card(d)))
    out = []
    for col, summary in zip(board, columns):
        whole = not col.has_more  # the column showed all its cards
        cards = [c for c in col.cards if c.id not in changed]
        for card in by_stage.get(col.id, []):
            at = next((i for i, c in enumerate(cards) if (c.created, c.id) < (card.created, card.id)), len(cards))
            if at < len(cards) or whole:
                cards.insert(at, card)
        out.append(_column(summary, cards))
    return out


def _counted(col: BoardColumn, cards: list[Card], sign: int, card: Card | None) -> BoardColumn:
    """`col` showing `cards`, with `card` counted in (`sign` 1) or out (-1): its count, sum
    and counter (overdue / today / none) follow."""
    if card is None:
        return dataclasses.replace(col, cards=cards, count=max(0, col.count + sign))
    counts = {k: max(0, getattr(col, k) + (sign if card.due == k else 0)) for k in ("overdue", "today", "none")}
    total = col.total + sign * card.value
    return dataclasses.replace(col, cards=cards, count=max(0, col.count + sign), total=total,
                               amount=fmt.money(total), **counts)


def _column(summary: dict, cards: list[Card]) -> BoardColumn:
    """A board column from the service's summary of a stage and the cards it shows."""
    return BoardColumn(summary["id"], summary["name"], summary["color"], summary["count"], summary["amount"],
                       summary["overdue"], summary["today"], summary["none"], cards,
                       summary["count"] > len(cards), summary["amount_value"])


def _card(d: dict) -> dict:
    return {**{k: d[k] for k in ("id", "title", "client", "amount", "responsible", "activity", "activity_at",
                                 "overdue", "repeat")},
            "value": d.get("value") or 0.0, "due": d.get("due") or "", "created": d.get("created") or ""}
