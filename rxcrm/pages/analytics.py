"""/analytics — the dashboard: funnels, conversion, time in stage, dynamics, manager rating.
On a phone (below 768 px) the filters wrap two to a line (the period as a list), the KPI
cards two to a line, the charts take the width of the screen and the tables scroll
sideways inside their own card."""
from __future__ import annotations

import reflex as rx

from rxcrm import i18n
from rxcrm.components import theme
from rxcrm.components.forms import option_select
from rxcrm.components.shell import layout
from rxcrm.services.charts import CONFIG
from rxcrm.state.analytics import AnalyticsState as S
from rxcrm.state.analytics import ConvRowView, Kpi, ManagerView, StageRow
from rxcrm.state.work import PresetItem

LINK = "#1f5fa8"


def _card(title, *children, subtitle=None, right=None, testid: str | None = None, **props) -> rx.Component:
    head = rx.hstack(
        rx.vstack(rx.text(title, size="3", weight="bold", color="#1f2933"),
                  rx.text(subtitle, size="1", color=theme.TEXT_MUTED) if subtitle is not None else rx.fragment(),
                  spacing="0"),
        rx.spacer(), right or rx.fragment(), align="center", width="100%",
        style={theme.COMPACT: {"flex_wrap": "wrap", "row_gap": "8px"}})
    extra = {"data_testid": testid} if testid else {}
    return rx.vstack(head, *children, background="white", border=f"1px solid {theme.BORDER}", border_radius="10px",
                     padding=rx.breakpoints(initial="12px", sm="16px 18px"), spacing="3", width="100%",
                     min_width="0", **extra, **props)


def _empty(text) -> rx.Component:
    return rx.center(rx.vstack(rx.icon("chart-no-axes-column", size=28, color="#c3ccd6"),
                               rx.text(text, size="2", color=theme.TEXT_MUTED, text_align="center"),
                               align="center", spacing="2"),
                     min_height="160px", width="100%")


def _chart(fig, testid: str, **props) -> rx.Component:
    return rx.box(rx.plotly(data=fig, config=CONFIG, locale=S.lang, use_resize_handler=True, width="100%", **props),
                  width="100%", data_testid=testid)


# ---- header: filter + views ---------------------------------------------------------------

# on a phone the filter's lists sit two to a line
_SEL_PHONE = theme.phone(flex="1 1 calc(50% - 8px)", width="auto", min_width="0", order="2")


def _sel(key: str, value, options, width: str) -> rx.Component:
    return option_select(options, width=width, value=value, on_change=lambda v: S.set_filter(key, v),
                         size="2", trigger_props={"data_testid": f"an-{key}", "style": _SEL_PHONE})


def _preset_row(p: PresetItem) -> rx.Component:
    active = S.an_preset_id == p.id
    return rx.hstack(
        rx.text(p.name, size="2", flex="1", cursor="pointer", on_click=S.apply_preset(p.id),
                weight=rx.cond(active, "bold", "regular"), color=rx.cond(active, LINK, "#1f2933"),
                data_testid="an-preset-item"),
        rx.cond(p.shared, rx.tooltip(rx.icon("users", size=13, color=theme.TEXT_MUTED),
                                     content=S.t["analytics.views.shared"])),
        rx.tooltip(rx.icon("pin", size=14, cursor="pointer", on_click=S.pin_preset(p.id),
                           color=rx.cond(p.is_default, theme.ACCENT, "#b5bfcb")),
                   content=S.t["analytics.views.pin"]),
        rx.tooltip(rx.icon("x", size=14, cursor="pointer", color="#b5bfcb", on_click=S.delete_preset(p.id)),
                   content=S.t["analytics.views.delete"]),
        align="center", spacing="2", width="100%", padding="5px 8px", border_radius="6px",
        background=rx.cond(active, "#eaf2fc", "transparent"), _hover={"background": "#f1f4f7"},
    )


def _views_menu() -> rx.Component:
    return rx.popover.root(
        rx.popover.trigger(rx.button(rx.icon("bookmark", size=15), S.t["analytics.views.button"], variant="soft",
                                     color_scheme="gray", size="2", data_testid="an-views")),
        rx.popover.content(
            rx.vstack(
                rx.text(S.t["analytics.views.title"], size="1", weight="bold", color=theme.TEXT_MUTED),
                rx.cond(S.an_presets.length() > 0,
                        rx.vstack(rx.foreach(S.an_presets, _preset_row), spacing="0", width="100%"),
                        rx.text(S.t["analytics.views.none"], size="2", color=theme.TEXT_MUTED)),
                rx.divider(),
                rx.form(
                    rx.vstack(
                        rx.input(name="name", placeholder=S.t["analytics.views.name"], size="2", width="100%",
                                 value=S.an_preset_name, on_change=S.set_preset_name, data_testid="an-preset-name"),
                        rx.cond(S.an_can_share, rx.checkbox(S.t["analytics.views.share"], name="shared", size="1")),
                        rx.button(rx.icon("save", size=14), S.t["analytics.views.save"], size="2", type="submit",
                                  width="100%", data_testid="an-preset-save"),
                        spacing="2", width="100%"),
                    on_submit=S.save_preset, reset_on_submit=False, width="100%"),
                spacing="2", width="280px"),
            align="end"),
    )


def _filters() -> rx.Component:
    return rx.hstack(
        rx.segmented_control.root(
            rx.foreach(S.an_period_options, lambda o: rx.segmented_control.item(o.label, value=o.value)),
            value=S.an_period, on_change=S.set_period, size="2", data_testid="an-period",
            style=theme.phone(display="none")),
        # on a phone the period is a list (five long names do not fit in a row)
        option_select(S.an_period_options, width="100%", value=S.an_period, on_change=S.set_period, size="2",
                      trigger_props={"data_testid": "an-period-phone",
                                     **theme.desktop_hidden(flex="1 1 calc(100% - 52px)", width="auto",
                                                            min_width="0")}),
        rx.cond(S.is_custom, rx.form(
            rx.hstack(rx.input(type="date", name="date_from", default_value=S.an_from, size="2"),
                      rx.text("—", size="2"),
                      rx.input(type="date", name="date_to", default_value=S.an_to, size="2"),
                      rx.button(S.t["analytics.dates.apply"], size="2", type="submit", variant="soft"),
                      spacing="2", align="center", flex_wrap="wrap"),
            on_submit=S.apply_dates, reset_on_submit=False, style=theme.phone(order="2", flex="1 1 100%"))),
        _sel("an_pipeline", S.an_pipeline, S.an_pipeline_options, "230px"),
        rx.cond(S.an_department_options.length() > 2,
                _sel("an_department", S.an_department, S.an_department_options, "180px")),
        rx.cond(~S.an_is_manager, _sel("an_user", S.an_user, S.an_user_options, "210px")),
        _sel("an_source", S.an_source, S.an_source_options, "170px"),
        _sel("an_program", S.an_program, S.an_program_options, "220px"),
        rx.tooltip(rx.icon_button(rx.icon("rotate-ccw", size=15), variant="ghost", color_scheme="gray",
                                  on_click=S.reset_filters, size="2", aria_label=S.t["analytics.filter.reset"],
                                  style=theme.phone(order="1", margin="0 4px")),
                   content=S.t["analytics.filter.reset"]),
        spacing="2", align="center", flex_wrap="wrap", width="100%",
    )


def _header() -> rx.Component:
    return rx.hstack(
        rx.vstack(rx.text(S.an_subtitle, size="2", color=theme.TEXT_MUTED, data_testid="an-subtitle"), spacing="0"),
        rx.spacer(),
        _views_menu(),
        rx.button(rx.icon("file-spreadsheet", size=15), S.t["analytics.download"], size="2", variant="soft",
                  on_click=S.download, data_testid="an-download"),
        align="center", width="100%", style=theme.phone(flex_wrap="wrap", row_gap="8px"),
    )


# ---- KPI row ----------------------------------------------------------------------------------

def _kpi(k: Kpi) -> rx.Component:
    body = rx.vstack(
        rx.text(k.label, size="1", color=theme.TEXT_MUTED, weight="medium"),
        rx.text(k.value, size=rx.breakpoints(initial="5", sm="6"), weight="bold", color="#1f2933",
                white_space="nowrap"),
        rx.text(k.note, size="1", color=theme.TEXT_MUTED, white_space="nowrap",
                style=theme.phone(white_space="normal")),
        spacing="1", padding=rx.breakpoints(initial="10px 12px", sm="12px 16px"), background="white",
        border=f"1px solid {theme.BORDER}", min_width="0",
        border_radius="10px", width="100%", height="100%", data_testid="an-kpi",
        _hover={"border_color": "#b9cde6"},
    )
    return rx.cond(k.href != "", rx.link(body, href=k.href, underline="none", width="100%"), body)


# ---- funnels ------------------------------------------------------------------------------------

def _lost_badge(r: StageRow) -> rx.Component:
    return rx.link(rx.badge(rx.box(width="8px", height="8px", border_radius="50%", background=r.color),
                            r.name, ": ", r.count_text, variant="soft", color_scheme="gray", size="2"),
                   href=r.href, underline="none", data_testid="an-lost-link")


def _stage_line(r: StageRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.hstack(rx.box(width="10px", height="10px", border_radius="3px", background=r.color),
                                rx.link(r.name, href=r.href, size="2", color=LINK, data_testid="an-stage-link"),
                                spacing="2", align="center")),
        rx.table.cell(rx.text(r.count_text, size="2", weight="medium"), text_align="right"),
        rx.table.cell(rx.text(r.amount_text, size="2", white_space="nowrap"), text_align="right"),
        rx.table.cell(rx.text(r.conv_prev, size="2", color=theme.TEXT_MUTED), text_align="right"),
        rx.table.cell(rx.text(r.conv_first, size="2", color=theme.TEXT_MUTED), text_align="right"),
    )


def _stage_table(rows) -> rx.Component:
    heads = [(S.t["analytics.stages.stage"], "left"), (S.t["analytics.stages.count"], "right"),
             (S.t["analytics.stages.amount"], "right"), (S.t["analytics.stages.from_prev"], "right"),
             (S.t["analytics.stages.from_start"], "right")]
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, text_align=a, font_size="12px",
                                                                   color="#4a5563") for h, a in heads])),
        rx.table.body(rx.foreach(rows, _stage_line)),
        size="1", variant="ghost", width="100%")


def _funnel_card(title, rows, lost, summary, fig, has_data, on_click, testid: str) -> rx.Component:
    return _card(
        title,
        rx.cond(has_data,
                rx.vstack(
                    _chart(fig, f"{testid}-chart", on_click=on_click),
                    rx.hstack(rx.text(summary, size="2", weight="medium"), rx.spacer(),
                              rx.foreach(lost, _lost_badge), spacing="2", align="center", width="100%",
                              flex_wrap="wrap"),
                    rx.accordion.root(
                        rx.accordion.item(header=rx.text(S.t["analytics.funnel.table"], size="2"),
                                          content=_stage_table(rows), value="t"),
                        collapsible=True, type="single", variant="ghost", width="100%"),
                    spacing="3", width="100%"),
                _empty(S.t["analytics.funnel.empty"])),
        subtitle=S.t["analytics.funnel.hint"],
        testid=testid,
    )


# ---- conversion -----------------------------------------------------------------------------------

def _sort_head(label, key: str, state_sort, state_desc, on_sort, align: str = "right") -> rx.Component:
    arrow = rx.cond(state_sort == key, rx.cond(state_desc, rx.icon("arrow-down", size=12),
                                               rx.icon("arrow-up", size=12)), rx.fragment())
    return rx.table.column_header_cell(
        rx.hstack(rx.text(label), arrow, spacing="1", align="center",
                  justify="end" if align == "right" else "start"),
        on_click=on_sort(key), cursor="pointer", font_size="12px", color="#4a5563", text_align=align,
        white_space="nowrap", _hover={"color": "#1f2933"})


def _conv_line(r: ConvRowView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.cond(r.href != "", rx.link(r.label, href=r.href, size="2", color=LINK),
                              rx.text(r.label, size="2", color=theme.TEXT_MUTED))),
        rx.table.cell(rx.text(r.created, size="2"), text_align="right"),
        rx.table.cell(rx.text(r.in_work, size="2"), text_align="right"),
        rx.table.cell(rx.text(r.won, size="2"), text_align="right"),
        rx.table.cell(rx.text(r.lost, size="2"), text_align="right"),
        rx.table.cell(rx.hstack(
            rx.box(rx.box(width=r.bar, height="6px", background="#7bd500", border_radius="3px"),
                   width="70px", height="6px", background="#edf1f4", border_radius="3px"),
            rx.text(r.conversion_text, size="2", min_width="52px", text_align="right"),
            spacing="2", align="center", justify="end")),
        rx.table.cell(rx.text(r.won_amount_text, size="2", white_space="nowrap"), text_align="right"),
        data_testid="an-conv-row",
    )


def _conversion() -> rx.Component:
    def head(label, key, align="right"):
        return _sort_head(label, key, S.conv_sort, S.conv_desc, S.sort_conv, align)

    return _card(
        S.t["analytics.conv.title"],
        rx.cond(S.conv_rows.length() > 0,
                rx.box(rx.table.root(
                    rx.table.header(rx.table.row(
                        head(S.conv_dim_label, "label", "left"), head(S.t["analytics.conv.created"], "created"),
                        head(S.t["analytics.conv.in_work"], "in_work"), head(S.t["analytics.conv.won"], "won"),
                        head(S.t["analytics.conv.lost"], "lost"),
                        head(S.t["analytics.conv.conversion"], "conversion"),
                        head(S.t["analytics.conv.won_amount"], "won_amount"))),
                    rx.table.body(rx.foreach(S.conv_rows, _conv_line)),
                    size="1", variant="ghost", width="100%"), max_height="420px", overflow_y="auto", width="100%",
                    style=theme.phone(overflow_x="auto")),
                _empty(S.t["analytics.conv.empty"])),
        subtitle=S.t["analytics.conv.hint"],
        right=rx.box(rx.segmented_control.root(
            rx.segmented_control.item(S.t["analytics.dim.source"], value="source"),
            rx.segmented_control.item(S.t["analytics.dim.program"], value="program"),
            rx.segmented_control.item(S.t["analytics.dim.manager"], value="manager"),
            rx.segmented_control.item(S.t["analytics.dim.utm"], value="utm"),
            rx.segmented_control.item(S.t["analytics.dim.lead_source"], value="lead_source"),
            value=S.conv_dim, on_change=S.set_conv_dim, size="1", data_testid="an-conv-dim"),
            style={theme.COMPACT: {"max_width": "100%", "overflow_x": "auto", "scrollbar_width": "none"}}),
        testid="an-conversion",
    )


# ---- time, dynamics, lost ------------------------------------------------------------------------

def _times() -> rx.Component:
    return _card(S.t["analytics.times.title"],
                 rx.cond(S.time_has_data, _chart(S.time_fig, "an-times-chart"),
                         _empty(S.t["analytics.times.empty"])),
                 subtitle=S.t["analytics.times.hint"],
                 testid="an-times")


def _dynamics() -> rx.Component:
    # the month labels turn when they do not fit side by side (a phone); at full width they stay level
    return _card(S.t["analytics.dyn.title"],
                 rx.cond(S.dyn_has_data, _chart(S.dyn_fig, "an-dyn-chart", layout={"xaxis": {"tickangle": "auto"}}),
                         _empty(S.t["analytics.dyn.empty"])),
                 subtitle=S.dyn_title, testid="an-dynamics")


def _lost() -> rx.Component:
    return _card(S.t["analytics.lost.title"],
                 rx.cond(S.lost_labels.length() > 0, _chart(S.lost_fig, "an-lost-chart"),
                         _empty(S.t["analytics.lost.empty"])),
                 subtitle=S.t["analytics.lost.hint"], testid="an-lost")


# ---- managers ------------------------------------------------------------------------------------

def _num_link(value, href) -> rx.Component:
    return rx.cond(value > 0, rx.link(rx.text(value, size="2"), href=href, color=LINK),
                   rx.text(value, size="2", color="#b5bfcb"))


def _mgr_line(m: ManagerView, i) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(i + 1, size="2", color=theme.TEXT_MUTED)),
        rx.table.cell(rx.link(m.name, href=m.href, size="2", color=LINK, white_space="nowrap")),
        rx.table.cell(rx.text(m.leads_in_work, size="2"), text_align="right"),
        rx.table.cell(rx.text(m.in_work, size="2"), text_align="right"),
        rx.table.cell(rx.text(m.created, size="2"), text_align="right"),
        rx.table.cell(rx.text(m.conversion_text, size="2"), text_align="right"),
        rx.table.cell(rx.text(m.won, size="2"), text_align="right"),
        rx.table.cell(rx.text(m.won_amount_text, size="2", white_space="nowrap", weight="medium"), text_align="right"),
        rx.table.cell(rx.box(_num_link(m.overdue, m.overdue_href), color=rx.cond(m.overdue > 0, theme.DANGER, "")),
                      text_align="right"),
        rx.table.cell(_num_link(m.forgotten, m.forgotten_href), text_align="right"),
        data_testid="an-mgr-row",
    )


def _managers() -> rx.Component:
    def head(label, key, align="right"):
        return _sort_head(label, key, S.mgr_sort, S.mgr_desc, S.sort_mgr, align)

    return _card(
        S.t["analytics.mgr.title"],
        rx.cond(S.mgr_rows.length() > 0,
                rx.box(rx.table.root(
                    rx.table.header(rx.table.row(
                        rx.table.column_header_cell(S.t["analytics.mgr.place"], font_size="12px",
                                                    color="#4a5563"),
                        head(S.t["analytics.mgr.name"], "name", "left"),
                        head(S.t["analytics.mgr.leads_in_work"], "leads_in_work"),
                        head(S.t["analytics.mgr.in_work"], "in_work"), head(S.t["analytics.mgr.created"], "created"),
                        head(S.t["analytics.mgr.conversion"], "conversion"), head(S.t["analytics.mgr.won"], "won"),
                        head(S.t["analytics.mgr.won_amount"], "won_amount"),
                        head(S.t["analytics.mgr.overdue"], "overdue"),
                        head(S.t["analytics.mgr.forgotten"], "forgotten"))),
                    rx.table.body(rx.foreach(S.mgr_sorted, _mgr_line)),
                    size="1", variant="ghost", width="100%"), overflow_x="auto", width="100%"),
                _empty(S.t["analytics.mgr.empty"])),
        subtitle=S.t["analytics.mgr.hint"],
        testid="an-managers",
    )


def _dashboard() -> rx.Component:
    return rx.vstack(
        rx.cond(S.an_empty, rx.callout(S.t["analytics.empty"], icon="info", color_scheme="blue", width="100%",
                                       data_testid="an-empty")),
        rx.grid(rx.foreach(S.an_kpis, _kpi), columns=rx.breakpoints(initial="2", md="3", lg="6"), spacing="3",
                width="100%"),
        rx.grid(
            _funnel_card(S.lead_title, S.lead_rows, S.lead_lost, S.lead_summary, S.lead_fig, S.lead_has_data,
                         S.lead_click, "an-lead-funnel"),
            _funnel_card(S.deal_title, S.deal_rows, S.deal_lost, S.deal_summary, S.deal_fig, S.deal_has_data,
                         S.deal_click, "an-deal-funnel"),
            columns=rx.breakpoints(initial="1", lg="2"), spacing="3", width="100%"),
        _conversion(),
        rx.grid(_times(), _lost(), columns=rx.breakpoints(initial="1", lg="2"), spacing="3", width="100%"),
        _dynamics(),
        _managers(),
        spacing="3", width="100%",
    )


def _redraw_on_language() -> rx.Component:
    """The figures are drawn by the state in the person's language: a language switch mounts
    another box (one per language, each its own component — a `key` would reach only the
    inner element, not the wrapper that runs `on_mount`), which asks for them again."""
    return rx.match(S.lang, *[(lang, rx.box(on_mount=S.redraw_figures, display="none", data_lang=lang))
                              for lang in i18n.LANGS],
                    rx.box(on_mount=S.redraw_figures, display="none"))


def analytics_page() -> rx.Component:
    return layout(
        "/analytics",
        S.t["page.analytics.title"],
        rx.vstack(
            _header(),
            _filters(),
            rx.cond(S.an_error != "", rx.callout(S.an_error, icon="triangle-alert", color_scheme="amber",
                                                 width="100%", data_testid="an-error")),
            rx.cond(S.an_loaded, _dashboard(), rx.center(rx.spinner(size="3"), height="300px", width="100%")),
            rx.cond(S.an_loaded, _redraw_on_language()),
            spacing="3", width="100%", padding_bottom="32px",
        ),
    )
