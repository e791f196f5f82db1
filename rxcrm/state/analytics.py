"""State of /analytics: the dashboard filter, the figures' data (aggregates only) and the
saved dashboard views. Thin: services.analytics computes, services.charts draws."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import date
from urllib.parse import urlencode

import plotly.graph_objects as go
import reflex as rx
from babel.dates import format_date

from rxcrm.db import transact
from rxcrm.services import analytics as an
from rxcrm.services import charts, export, fmt, views
from rxcrm.services.errors import ServiceError

from .app import AppState
from .base import choice, event, field, id_or_none, to_bool, to_form, to_id, to_text
from .work import Option, PresetItem, preset_items

FILTER_VARS = ("an_pipeline", "an_department", "an_user", "an_source", "an_program")

PAGE = views.ANALYTICS_PAGE
# URL parameter ↔ Params field
VIEW_KEY = "view"  # the saved view shown (a filter_preset id)
URL_KEYS = {"period": "period", "from": "date_from", "to": "date_to", "pipeline": "pipeline_id",
            "dept": "department_id", "user": "responsible_id", "source": "source", "program": "program_id"}
BABEL_LOCALE = {"ru": "ru_RU", "en": "en"}  # dates and month names in the person's language


@dataclasses.dataclass
class Kpi:
    label: str = ""  # shown: a label; kept in state (`an_kpi_data`): its catalog key
    value: str = ""
    note: str = ""
    href: str = ""
    note_key: str = ""  # kept in state: the note's catalog key ("" = `note` is data), `{value}` = note_arg
    note_arg: str = ""


@dataclasses.dataclass
class StageRow:
    name: str = ""
    color: str = ""
    semantic: str = ""
    count: int = 0
    count_text: str = ""
    amount: float = 0.0
    amount_text: str = ""
    conv_prev: str = ""
    conv_first: str = ""
    href: str = ""


@dataclasses.dataclass
class ConvRowView:
    label: str = ""
    key: str = ""  # the grouped value; "" = the group without one (its label is the catalog's)
    created: int = 0
    in_work: int = 0
    won: int = 0
    lost: int = 0
    conversion: float = 0.0
    conversion_text: str = ""
    bar: str = "0%"  # sparkbar width
    won_amount: float = 0.0
    won_amount_text: str = ""
    href: str = ""


@dataclasses.dataclass
class TimeRow:
    name: str = ""
    color: str = ""
    stays: int = 0
    median: float = 0.0
    p90: float = 0.0


@dataclasses.dataclass
class ManagerView:
    name: str = ""
    leads_in_work: int = 0
    in_work: int = 0
    overdue: int = 0
    forgotten: int = 0
    created: int = 0
    conversion: float = 0.0
    conversion_text: str = ""
    won: int = 0
    won_amount: float = 0.0
    won_amount_text: str = ""
    href: str = ""
    overdue_href: str = ""
    forgotten_href: str = ""


def _opts(pairs) -> list[Option]:
    return [Option(str(v), str(label)) for v, label in pairs]


def _sorted(rows: list, key: str, desc: bool, text_key: str) -> list:
    """A table's rows by a column: the text column alphabetically, the others by value."""
    return sorted(rows, key=lambda r: getattr(r, key).casefold() if key == text_key else getattr(r, key),
                  reverse=desc)


def _next_sort(current: str, desc: bool, key: str, text_key: str) -> tuple[str, bool]:
    """A click on a column header: the same column flips; a new one starts big-first (A–Я for text)."""
    return (key, not desc) if current == key else (key, key != text_key)


def _stage_rows(f: an.Funnel | None, stages) -> list[StageRow]:
    return [StageRow(s.name, s.color, s.semantic, s.count, fmt.count(s.count), float(s.amount), fmt.amount(s.amount),
                     fmt.percent(s.conv_prev), fmt.percent(s.conv_first), s.href) for s in stages] if f else []


def _conv_rows(rows: list[an.ConvRow]) -> list[ConvRowView]:
    return [ConvRowView(r.label, r.key, r.created, r.in_work, r.won, r.lost, r.conversion or 0.0,
                        fmt.percent(r.conversion), f"{min(100.0, r.conversion or 0.0):.0f}%", float(r.won_amount),
                        fmt.amount(r.won_amount), r.href) for r in rows]


class AnalyticsState(AppState):
    # filter
    an_period: str = "month"
    an_from: str = ""
    an_to: str = ""
    an_pipeline: str = ""
    an_department: str = "all"
    an_user: str = "all"
    an_source: str = "all"
    an_program: str = "all"
    an_pipeline_options: list[Option] = []
    # the pickers' data; the options add "all …" in the person's language
    an_department_choices: list[Option] = []
    an_user_choices: list[Option] = []
    an_source_choices: list[Option] = []
    an_program_choices: list[Option] = []
    an_is_manager: bool = False
    # views
    an_presets: list[PresetItem] = []
    an_preset_id: int = 0
    an_preset_name: str = ""
    an_can_share: bool = False
    # data
    an_error: str = ""
    an_loaded: bool = False
    an_empty: bool = False
    # what is shown, without words: the labels are computed in the person's language
    an_d0: str = ""  # the period (ISO dates)
    an_d1: str = ""
    an_filter_names: list[str] = []  # the filter's other values in words (pipeline, department …)
    an_kpi_data: list[Kpi] = []
    lead_rows: list[StageRow] = []
    lead_lost: list[StageRow] = []
    lead_pipeline: str = ""  # "" = no lead funnel
    lead_conversion: str = ""
    deal_rows: list[StageRow] = []
    deal_lost: list[StageRow] = []
    deal_pipeline: str = ""
    deal_conversion: str = ""
    conv_dim: str = "source"
    conv_sort: str = "created"
    conv_desc: bool = True
    conv_data: dict[str, list[ConvRowView]] = {}
    time_rows: list[TimeRow] = []
    dyn_buckets: list[str] = []  # bucket starts (ISO dates)
    dyn_grain: str = "month"
    dyn_series: dict[str, list[int]] = {}
    lost_labels: list[str] = []
    lost_counts: list[int] = []
    lead_fig: go.Figure = charts.empty()
    deal_fig: go.Figure = charts.empty()
    time_fig: go.Figure = charts.empty()
    dyn_fig: go.Figure = charts.empty()
    lost_fig: go.Figure = charts.empty()
    _figures_lang: str = ""  # the language the figures were drawn in
    mgr_rows: list[ManagerView] = []
    mgr_sort: str = "won_amount"
    mgr_desc: bool = True

    # ---- computed: every label in the person's language (`lang`) --------------------------
    def _words(self) -> dict[str, str]:
        """The words inside the figures (services.charts.WORDS) in the person's language."""
        words = {}
        for key in charts.WORDS:
            words[key] = self._tr(f"analytics.chart.{key}")
        return words

    def _funnel_fig(self, rows: list[StageRow], entity: str) -> go.Figure:
        return charts.funnel([r.name for r in rows], [r.count for r in rows], [r.amount for r in rows],
                             [r.color for r in rows], [r.conv_prev for r in rows], entity, words=self._words())

    # The figures are plain vars drawn by handlers (`_draw`: after a load, and on a language
    # switch through `redraw_figures`), not computed vars: a computed var is rebuilt at every
    # restore of the state (with Redis, every event), and a Plotly figure is the heaviest thing
    # this state holds.
    def _draw(self) -> None:
        self._figures_lang = self.lang
        rows = self.time_rows
        no_reason = self._tr("analytics.lost.no_reason")
        self.lead_fig = self._funnel_fig(self.lead_rows, "lead")
        self.deal_fig = self._funnel_fig(self.deal_rows, "deal")
        self.time_fig = charts.stage_times([r.name for r in rows], [r.median for r in rows], [r.p90 for r in rows],
                                           [r.color for r in rows], words=self._words())
        self.dyn_fig = charts.dynamics(self.dyn_labels, self.dyn_series, words=self._words())
        self.lost_fig = charts.lost_reasons([no_reason if r == an.NO_REASON else r for r in self.lost_labels],
                                            self.lost_counts)

    @event
    def redraw_figures(self):
        """The figures in the person's language (the page calls it when the language changes;
        figures already drawn in it are not sent again)."""
        if self._figures_lang != self.lang:
            self._draw()

    @rx.var
    def dyn_labels(self) -> list[str]:
        locale = BABEL_LOCALE.get(self.lang, BABEL_LOCALE["ru"])
        grain = self.dyn_grain
        return [an.bucket_label(date.fromisoformat(b), grain, locale) for b in self.dyn_buckets]

    @rx.var
    def dyn_title(self) -> str:
        return self._tr("analytics.dyn.by_week") if self.dyn_grain == "week" else self._tr("analytics.dyn.by_month")

    @rx.var
    def an_period_options(self) -> list[Option]:
        options = []
        for key, _ in an.PERIODS:
            options.append(Option(key, self._tr(f"analytics.period.{key}")))
        return options

    @rx.var
    def an_department_options(self) -> list[Option]:
        return [Option("all", self._tr("analytics.filter.all_departments")), *self.an_department_choices]

    @rx.var
    def an_user_options(self) -> list[Option]:
        return [Option("all", self._tr("analytics.filter.all_managers")), *self.an_user_choices]

    @rx.var
    def an_source_options(self) -> list[Option]:
        return [Option("all", self._tr("analytics.filter.all_sources")), *self.an_source_choices]

    @rx.var
    def an_program_options(self) -> list[Option]:
        return [Option("all", self._tr("analytics.filter.all_programs")), *self.an_program_choices]

    @rx.var
    def an_subtitle(self) -> str:
        """The filter in words: the period, the pipeline and the other values chosen."""
        if not self.an_d0:
            return ""
        locale = BABEL_LOCALE.get(self.lang, BABEL_LOCALE["ru"])
        period = " — ".join(format_date(date.fromisoformat(d), "d MMMM y", locale=locale)
                            for d in (self.an_d0, self.an_d1))
        return " · ".join([period, *self.an_filter_names])

    @rx.var
    def an_kpis(self) -> list[Kpi]:
        kpis = []
        for k in self.an_kpi_data:
            note = self._tr(k.note_key, value=k.note_arg) if k.note_key else k.note
            kpis.append(Kpi(self._tr(k.label), k.value, note, k.href))
        return kpis

    @rx.var
    def lead_title(self) -> str:
        if not self.lead_pipeline:
            return self._tr("analytics.lead.title_none")
        return self._tr("analytics.lead.title", name=self.lead_pipeline)

    @rx.var
    def lead_summary(self) -> str:
        if not self.lead_pipeline:
            return ""
        return self._tr("analytics.lead.summary", value=self.lead_conversion or "—")

    @rx.var
    def deal_title(self) -> str:
        if not self.deal_pipeline:
            return self._tr("analytics.deal.title_none")
        return self._tr("analytics.deal.title", name=self.deal_pipeline)

    @rx.var
    def deal_summary(self) -> str:
        if not self.deal_pipeline:
            return ""
        return self._tr("analytics.deal.summary", value=self.deal_conversion or "—")

    @rx.var
    def lead_has_data(self) -> bool:
        return bool(self.lead_rows) and self.lead_rows[0].count > 0

    @rx.var
    def deal_has_data(self) -> bool:
        return bool(self.deal_rows) and self.deal_rows[0].count > 0

    @rx.var
    def time_has_data(self) -> bool:
        return any(r.stays for r in self.time_rows)

    @rx.var
    def dyn_has_data(self) -> bool:
        return any(any(v) for v in self.dyn_series.values())

    @rx.var
    def conv_rows(self) -> list[ConvRowView]:
        dim = self.conv_dim
        # the group without a value is named in the person's language (lead sources: as deal sources)
        group = "source" if dim == "lead_source" else dim
        none = self._tr(f"analytics.conv.none.{group}") if group in an.DIMENSION_LABEL else ""
        rows = [r if r.key else dataclasses.replace(r, label=none) for r in self.conv_data.get(dim, [])]
        return _sorted(rows, self.conv_sort, self.conv_desc, "label")

    @rx.var
    def conv_dim_label(self) -> str:
        if self.conv_dim == "lead_source":
            return self._tr("analytics.dim.lead_source_head")
        return self._tr(f"analytics.dim.{self.conv_dim}") if self.conv_dim in an.DIMENSION_LABEL else ""

    @rx.var
    def mgr_sorted(self) -> list[ManagerView]:
        return _sorted(self.mgr_rows, self.mgr_sort, self.mgr_desc, "name")

    @rx.var
    def is_custom(self) -> bool:
        return self.an_period == "custom"

    # ---- loading ----------------------------------------------------------------------
    def _params_raw(self) -> dict:
        return {"period": self.an_period, "date_from": self.an_from if self.is_custom else "",
                "date_to": self.an_to if self.is_custom else "", "pipeline_id": self.an_pipeline,
                "department_id": self.an_department, "responsible_id": self.an_user,
                "source": self.an_source, "program_id": self.an_program}

    def _set_params(self, p: an.Params) -> None:
        self.an_period = p.period
        self.an_from, self.an_to = p.date_from, p.date_to
        self.an_pipeline = str(p.pipeline_id or "")
        self.an_department = str(p.department_id or "all")
        self.an_user = str(p.responsible_id or "all")
        self.an_source = p.source or "all"
        self.an_program = str(p.program_id or "all")

    @event
    async def on_load(self):
        actor = self._require_actor()
        self.an_error, self.an_is_manager = "", actor.role == "manager"
        self.an_can_share = actor.role in views.SHARE_ROLES
        query = self.router.url.query_parameters
        raw = {name: to_text(query[key], key, 100) for key, name in URL_KEYS.items() if query.get(key)}
        named = id_or_none(query.get(VIEW_KEY))

        def read(s, a):
            nonlocal raw
            opts = an.filter_options(s, a)
            self.an_pipeline_options = _opts(opts["pipelines"])
            self.an_department_choices = _opts(opts["departments"])
            self.an_user_choices = _opts(opts["users"])
            self.an_source_choices = _opts(opts["sources"])
            self.an_program_choices = _opts(opts["programs"])
            self._load_presets(s, a)
            self.an_preset_id = 0
            # the URL names the saved view it shows (written by _reload): mark it; alone, open it
            view = next((p for p in views.list_presets(s, a, PAGE) if p.id == named), None) \
                if named is not None else None
            if view is not None:
                self.an_preset_id = view.id
                if not raw:
                    raw = dict(view.filters or {})
            if not raw:
                preset = views.default_preset(s, a, PAGE)
                if preset is not None:
                    raw, self.an_preset_id = dict(preset.filters or {}), preset.id

        self._read(read, actor=actor)
        warning = ""
        try:
            self._set_params(an.parse(raw))
        except ServiceError as exc:  # a bad link: say so and show the default dashboard
            self._set_params(an.Params())
            warning = self._tr("analytics.bad_link", message=exc.message)
        event = await self._reload()
        if warning:
            self.an_error = warning
        return event

    def _load_presets(self, s, actor) -> None:
        self.an_presets = preset_items(s, actor, PAGE)

    async def _reload(self):
        """Compute the dashboard on a worker thread (up to ~2 s at 100k: never on the event
        loop, which serves every client) and show it."""
        actor = self._require_actor()
        raw = self._params_raw()

        def compute(s):
            dash = an.dashboard(s, actor, an.parse(raw))
            # describe() names the period first (in Russian dates): the page writes it itself
            return dash, [v for _, v in an.describe(s, dash.ctx)[1:]]

        try:
            dash, names = await asyncio.to_thread(transact, compute, write=False)
        except ServiceError as exc:
            self.an_error = exc.message
            return rx.toast.error(exc.message)
        self._show(dash, names)
        self.an_error, self.an_loaded = "", True
        self.an_pipeline = str(dash.ctx.deal_pipeline.id)
        return self._url_event(dash.ctx.params)

    def _url_event(self, p: an.Params):
        """Write what is shown into the URL: every parameter of the dashboard (the period
        always, the pipeline as resolved) and the saved view it came from, so a reload or a
        link shows the same — never the URL of the view before."""
        params = {key: getattr(p, field) for key, field in URL_KEYS.items() if getattr(p, field) not in (None, "")}
        params["period"], params["pipeline"] = p.period, self.an_pipeline
        if self.an_preset_id:
            params[VIEW_KEY] = str(self.an_preset_id)
        url = f"/analytics?{urlencode(params)}".replace("\\", "\\\\").replace("'", "\\'")
        return rx.call_script(f"window.history.replaceState(null, '', '{url}')")

    def _show(self, dash: an.Dashboard, filter_names: list[str]) -> None:
        ctx = dash.ctx
        self.an_d0, self.an_d1 = ctx.d0.isoformat(), ctx.d1.isoformat()
        self.an_filter_names = filter_names
        self.an_empty = dash.is_empty
        lf, df = dash.lead_funnel, dash.deal_funnel
        self.lead_rows = _stage_rows(lf, lf.stages if lf else [])
        self.lead_lost = _stage_rows(lf, lf.lost if lf else [])
        self.lead_pipeline = lf.pipeline_name if lf else ""
        self.lead_conversion = fmt.percent(lf.conversion) if lf else ""
        self.deal_rows = _stage_rows(df, df.stages if df else [])
        self.deal_lost = _stage_rows(df, df.lost if df else [])
        self.deal_pipeline = df.pipeline_name if df else ""
        self.deal_conversion = fmt.percent(df.conversion) if df else ""
        self.conv_data = {dim: _conv_rows(rows) for dim, rows in dash.conversion.items()}
        self.conv_data["lead_source"] = _conv_rows(dash.lead_sources)
        self.time_rows = [TimeRow(t.name, t.color, t.stays, t.median_days or 0.0, t.p90_days or 0.0)
                          for t in dash.stage_times]
        frame = dash.dynamics
        self.dyn_buckets = [b.isoformat() for b in frame.index]
        self.dyn_grain = ctx.grain
        self.dyn_series = {c: frame[c].astype(int).tolist() for c in frame.columns}
        self.lost_labels = [r for r, _ in dash.lost_reasons[:10]]
        self.lost_counts = [n for _, n in dash.lost_reasons[:10]]
        self._draw()
        self.mgr_rows = [ManagerView(m.name, m.leads_in_work, m.in_work, m.overdue, m.forgotten, m.created,
                                     m.conversion or 0.0, fmt.percent(m.conversion), m.won, float(m.won_amount),
                                     fmt.amount(m.won_amount), m.href, m.overdue_href, m.forgotten_href)
                         for m in dash.managers]
        new_leads = frame["new_leads"].astype(int).sum().item()
        new_deals = frame["new_deals"].astype(int).sum().item()
        overdue = sum(m.overdue for m in dash.managers)
        forgotten = sum(m.forgotten for m in dash.managers)
        first = df.stages[0].name if df and df.stages else ""
        # labels and notes as catalog keys: `an_kpis` words them in the person's language
        self.an_kpi_data = [
            Kpi("analytics.kpi.new_leads", fmt.count(new_leads), note_key="analytics.kpi.created",
                href=an.list_href(ctx, "lead", created_at=ctx.period) if ctx.lead_pipeline else ""),
            Kpi("analytics.kpi.new_deals", fmt.count(new_deals), note_key="analytics.kpi.created",
                href=an.list_href(ctx, "deal", created_at=ctx.period)),
            Kpi("analytics.kpi.won", fmt.count(df.won if df else 0), fmt.amount(df.won_amount if df else 0),
                df.stages[-1].href if df and df.stages and df.stages[-1].semantic == "success" else ""),
            Kpi("analytics.kpi.lost", fmt.count(df.lost_count if df else 0), note_key="analytics.kpi.lost_note",
                href=df.lost[0].href if df and len(df.lost) == 1 else ""),
            Kpi("analytics.kpi.conversion", fmt.percent(df.conversion) or "—",
                note_key="analytics.kpi.conversion_note" if first else "", note_arg=first),
            Kpi("analytics.kpi.overdue", fmt.count(overdue), note_key="analytics.kpi.forgotten_note",
                note_arg=fmt.count(forgotten),
                href=an.list_href(ctx, "deal", semantic=["process"], activity="overdue")),
        ]

    # ---- filter events ------------------------------------------------------------------
    @event
    async def set_period(self, value: str | list[str]):
        value = choice(value, an.PERIOD_LABEL, self._tr("analytics.arg.period"))
        self.an_period, self.an_preset_id = value, 0
        if value == "custom":
            if not (self.an_from and self.an_to):
                return  # wait for the dates
        return await self._reload()

    @event
    async def apply_dates(self, form: dict):
        form = to_form(form)
        self.an_from = field(form, "date_from", self._tr("analytics.arg.date"), 20).strip()
        self.an_to = field(form, "date_to", self._tr("analytics.arg.date"), 20).strip()
        self.an_period, self.an_preset_id = "custom", 0
        return await self._reload()

    @event
    async def set_filter(self, key: str, value: str):
        key = choice(key, FILTER_VARS, self._tr("analytics.arg.filter"))
        setattr(self, key, to_text(value, self._tr("analytics.arg.filter_value"), 200))
        self.an_preset_id = 0
        return await self._reload()

    @event
    async def reset_filters(self):
        self._set_params(an.Params())
        self.an_preset_id = 0
        return await self._reload()

    @event
    def set_conv_dim(self, value: str | list[str]):
        self.conv_dim = choice(value, [*an.DIMENSION_LABEL, "lead_source"], self._tr("analytics.arg.dim"))

    @event
    def sort_conv(self, key: str):
        key = choice(key, [f.name for f in dataclasses.fields(ConvRowView) if f.name not in ("href", "bar", "key")],
                     self._tr("analytics.arg.column"))
        self.conv_sort, self.conv_desc = _next_sort(self.conv_sort, self.conv_desc, key, "label")

    @event
    def sort_mgr(self, key: str):
        key = choice(key, [f.name for f in dataclasses.fields(ManagerView) if not f.name.endswith("href")],
                     self._tr("analytics.arg.column"))
        self.mgr_sort, self.mgr_desc = _next_sort(self.mgr_sort, self.mgr_desc, key, "name")

    # ---- click-through ----------------------------------------------------------------------
    def _point_href(self, rows: list[StageRow], points: list[dict]):
        if not isinstance(points, list) or not points or not isinstance(points[0], dict):
            return None
        idx = points[0].get("pointNumber")
        if idx is None:
            idx = points[0].get("pointIndex")
        if isinstance(idx, int) and 0 <= idx < len(rows) and rows[idx].href:
            return rx.redirect(rows[idx].href)
        return None

    @event
    def lead_click(self, points: list[dict]):
        return self._point_href(self.lead_rows, points)

    @event
    def deal_click(self, points: list[dict]):
        return self._point_href(self.deal_rows, points)

    # ---- views (presets) ------------------------------------------------------------------------
    @event
    async def apply_preset(self, preset_id: int):
        preset_id = to_id(preset_id, self._tr("analytics.arg.view"))

        def find(s, a):
            preset = next((p for p in views.list_presets(s, a, PAGE) if p.id == preset_id), None)
            return dict(preset.filters or {}) if preset is not None else None

        raw = self._read(find)
        if raw is None:
            return rx.toast.error(self._tr("analytics.views.not_found"))
        self._set_params(an.parse(raw))
        self.an_preset_id = preset_id
        return await self._reload()

    @event
    def set_preset_name(self, value: str):
        self.an_preset_name = to_text(value, self._tr("analytics.arg.name"), 200)

    @event
    def save_preset(self, form: dict):
        form = to_form(form)
        name = field(form, "name", self._tr("analytics.arg.name"), 200) or self.an_preset_name

        def save(s, a):
            raw = an.parse(self._params_raw()).as_dict()
            preset = views.save_preset(s, a, PAGE, name, raw, shared=to_bool(form.get("shared")))
            self.an_preset_id = preset.id
            self._load_presets(s, a)

        self._call(save)
        self.an_preset_name = ""
        return rx.toast.success(self._tr("analytics.views.saved"))

    @event
    def delete_preset(self, preset_id: int):
        preset_id = to_id(preset_id, self._tr("analytics.arg.view"))

        def delete(s, a):
            views.delete_preset(s, a, preset_id)
            self._load_presets(s, a)

        self._call(delete)
        if self.an_preset_id == preset_id:
            self.an_preset_id = 0

    @event
    def pin_preset(self, preset_id: int):
        preset_id = to_id(preset_id, self._tr("analytics.arg.view"))

        def pin(s, a):
            views.toggle_default(s, a, PAGE, preset_id)
            self._load_presets(s, a)

        self._call(pin)

    # ---- Excel ------------------------------------------------------------------------------
    @event
    async def download(self):
        actor = self._require_actor()
        raw = self._params_raw()

        def build(s) -> str:  # audited: a unit that writes
            dash = an.dashboard(s, actor, an.parse(raw))
            token, path = export.new_export(actor.user_id, "analytics")
            an.write_workbook(s, actor, dash, path)
            return token

        token = await asyncio.to_thread(transact, build)
        return rx.redirect(f"/api/export/{token}", is_external=True)
