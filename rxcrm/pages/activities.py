"""/activities — «Мои дела»: tabs Просрочены / Сегодня / Запланированы / Выполнены with
counts, kind and item filters, the table, «Выполнить» with a result, «Показать ещё».
On a phone (below 768 px) the tabs scroll sideways, the filters wrap and each row of the
table is a card (kind and time on top, the subject, the item and «Выполнить»)."""
from __future__ import annotations

import reflex as rx

from rxcrm.components import theme
from rxcrm.components.responsive import table_as_cards
from rxcrm.components.shell import layout
from rxcrm.state.activities import ActivitiesState, ActivityRow

S = ActivitiesState
# kind → (lucide icon, colour, background)
KIND_STYLE = {"call": ("phone", "#2f7fd8", "#e8f1fb"), "meeting": ("users", "#7c3aed", "#f1ebfd"),
              "task": ("square-check", "#c2410c", "#fdf0e6"), "email": ("mail", "#0f8a80", "#e3f5f3")}
EMPTY_ICON = {"overdue": ("circle-check", "#30a46c"), "today": ("sun", "#d97706"),
              "upcoming": ("calendar", theme.ACCENT), "done": ("list-checks", theme.TEXT_MUTED)}


def _kind_icon(kind) -> rx.Component:
    return rx.match(
        kind,
        *[(k, rx.box(rx.icon(icon, size=14, color=color), background=bg, border_radius="6px", padding="5px",
                     line_height="0"))
          for k, (icon, color, bg) in KIND_STYLE.items()],
        rx.box(rx.icon("circle", size=14, color=theme.TEXT_MUTED), padding="5px", line_height="0"),
    )


def _kind_label(r: ActivityRow) -> rx.Component:
    return rx.match(r.kind, ("call", S.t["acts.kind.call"]), ("meeting", S.t["acts.kind.meeting"]),
                    ("task", S.t["acts.kind.task"]), ("email", S.t["acts.kind.email"]), r.kind_label)


def _entity_label(r: ActivityRow) -> rx.Component:
    return rx.match(r.entity, ("lead", S.t["acts.entity.lead"]), ("deal", S.t["acts.entity.deal"]),
                    ("contact", S.t["acts.entity.contact"]), ("company", S.t["acts.entity.company"]),
                    r.entity_label)


def _tab(value: str, label) -> rx.Component:
    count = S.tab_counts[value]
    red = value == "overdue"
    return rx.tabs.trigger(
        rx.hstack(
            rx.text(label),
            rx.badge(count, variant="solid" if red else "soft",
                     color_scheme=rx.cond(count > 0, "red", "gray") if red else "gray",
                     radius="full", size="1", data_testid=f"tab-count-{value}"),
            spacing="2", align="center",
        ),
        value=value,
        data_testid=f"tab-{value}",
    )


def _select(label, value, on_change, options, testid: str) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color=theme.TEXT_MUTED, white_space="nowrap"),
        rx.select.root(
            rx.select.trigger(min_width="140px", data_testid=testid,
                              style=theme.phone(min_width="0", flex="1 1 0")),
            rx.select.content(*[rx.select.item(text, value=v) for v, text in options]),
            value=value, on_change=on_change, size="2",
        ),
        spacing="2", align="center", style=theme.phone(flex="1 1 140px", min_width="0"),
    )


def toolbar() -> rx.Component:
    all_ = S.t["acts.filter.all"]
    return rx.hstack(
        rx.tabs.root(
            rx.tabs.list(
                _tab("overdue", S.t["acts.tab.overdue"]),
                _tab("today", S.t["acts.tab.today"]),
                _tab("upcoming", S.t["acts.tab.upcoming"]),
                _tab("done", S.t["acts.tab.done"]),
                size="2",
            ),
            value=S.tab,
            on_change=S.set_tab,
            data_testid="activity-tabs",
            style=theme.phone(flex="1 1 100%", min_width="0"),
        ),
        rx.spacer(style=theme.phone(display="none")),
        _select(S.t["acts.filter.kind"], S.kind, S.set_kind,
                [("all", all_), ("call", S.t["acts.kinds.call"]), ("meeting", S.t["acts.kinds.meeting"]),
                 ("task", S.t["acts.kinds.task"]), ("email", S.t["acts.kinds.email"])], "kind-filter"),
        _select(S.t["acts.filter.item"], S.item, S.set_item,
                [("all", all_), ("lead", S.t["nav.leads"]), ("deal", S.t["nav.deals"]),
                 ("contact", S.t["nav.contacts"]), ("company", S.t["nav.companies"])], "item-filter"),
        rx.cond(
            S.filtered,
            rx.tooltip(rx.icon_button(rx.icon("x", size=15), variant="ghost", size="2", color_scheme="gray",
                                      on_click=S.reset_filters, data_testid="activity-filter-reset"),
                       content=S.t["acts.filter.reset"]),
        ),
        width="100%", align="center", spacing="4", padding_x="12px", padding_y="6px", flex_wrap="wrap",
        background="white", border=f"1px solid {theme.BORDER}", border_radius="8px",
        style=theme.phone(column_gap="10px", row_gap="8px", padding="6px 10px 10px"),
    )


def _head(text) -> rx.Component:
    return rx.table.column_header_cell(text, white_space="nowrap", color="#4a5563", font_size="12px")


def _cell(*children, **props) -> rx.Component:
    return rx.table.cell(*children, font_size="13px", vertical_align="middle", **props)


def _row(r: ActivityRow) -> rx.Component:
    done_tab = S.tab == "done"
    return rx.table.row(
        _cell(rx.hstack(_kind_icon(r.kind), rx.text(_kind_label(r), size="2"), spacing="2", align="center"),
              white_space="nowrap"),
        _cell(rx.text(r.subject, size="2", weight="medium", color="#1f2933"),
              max_width="360px", overflow="hidden", text_overflow="ellipsis", white_space="nowrap"),
        _cell(
            rx.vstack(
                rx.link(r.item_title, href=r.href, size="2", color="#1f5fa8", weight="medium",
                        data_testid="activity-item-link"),
                rx.text(_entity_label(r), size="1", color=theme.TEXT_MUTED),
                spacing="0", align="start",
            ),
            max_width="300px", overflow="hidden", text_overflow="ellipsis", white_space="nowrap",
        ),
        _cell(
            rx.cond(
                done_tab,
                rx.text(r.done_at, size="2"),
                rx.hstack(
                    rx.cond(r.overdue, rx.icon("clock-alert", size=14, color=theme.DANGER)),
                    rx.text(r.at, size="2", color=rx.cond(r.overdue, theme.DANGER, "#1f2933"),
                            weight=rx.cond(r.overdue, "medium", "regular"), data_testid="activity-when"),
                    spacing="1", align="center",
                ),
            ),
            white_space="nowrap",
        ),
        rx.cond(
            done_tab,
            _cell(rx.text(rx.cond(r.result != "", r.result, "—"), size="2", color="#4a5563"),
                  max_width="360px", overflow="hidden", text_overflow="ellipsis", white_space="nowrap",
                  data_cell="result"),
            _cell(
                rx.button(rx.icon("check", size=14), S.t["acts.complete"], size="1", variant="soft",
                          color_scheme="green", on_click=S.open_complete(r.id), data_testid="activity-complete"),
                text_align="right", data_cell="action",
            ),
        ),
        data_testid="activity-row",
        data_id=r.id,
        _hover={"background": "#f7f9fb"},
    )


# The table as cards on a phone (one DOM): kind and time on top, the subject, the item and
# «Выполнить» (or the result) under it.
ROWS_AS_CARDS = table_as_cards(
    row={"display": "grid", "gridTemplateColumns": "minmax(0, 1fr) auto", "columnGap": "10px", "rowGap": "4px",
         "alignItems": "center", "padding": "10px 12px"},
    cell={"display": "block", "whiteSpace": "normal", "overflow": "hidden"},
    cells={
        "& td:nth-child(1)": {"gridColumn": "1", "gridRow": "1"},
        "& td:nth-child(4)": {"gridColumn": "2", "gridRow": "1", "justifySelf": "end"},
        "& td:nth-child(2)": {"gridColumn": "1 / -1", "gridRow": "2", "fontSize": "14px"},
        "& td:nth-child(3)": {"gridColumn": "1", "gridRow": "3"},
        "& td:nth-child(3) a": {"whiteSpace": "normal"},
        "& td[data-cell='action']": {"gridColumn": "2", "gridRow": "3", "alignSelf": "end"},
        "& td[data-cell='result']": {"gridColumn": "1 / -1", "gridRow": "4", "color": theme.TEXT_MUTED},
    },
)


def table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    _head(S.t["acts.col.kind"]),
                    _head(S.t["acts.col.subject"]),
                    _head(S.t["acts.col.item"]),
                    rx.cond(S.tab == "done", _head(S.t["acts.col.done_at"]), _head(S.t["acts.col.when"])),
                    rx.cond(S.tab == "done", _head(S.t["acts.col.result"]), _head("")),
                ),
            ),
            rx.table.body(rx.foreach(S.rows, _row)),
            variant="surface",
            size="1",
            width="100%",
            style=ROWS_AS_CARDS,
        ),
        width="100%",
        overflow_x="auto",
    )


def empty_state() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.match(
                S.tab,
                *[(tab, rx.box(rx.icon(icon, size=26, color=color), background="#f1f4f7", border_radius="14px",
                               padding="12px", line_height="0"))
                  for tab, (icon, color) in EMPTY_ICON.items()],
                rx.fragment(),
            ),
            rx.heading(
                rx.match(S.tab, ("overdue", S.t["acts.empty.overdue"]), ("today", S.t["acts.empty.today"]),
                         ("upcoming", S.t["acts.empty.upcoming"]), ("done", S.t["acts.empty.done"]), ""),
                size="3", color="#1f2933", weight="medium",
            ),
            rx.cond(
                S.filtered,
                rx.hstack(
                    rx.text(S.t["acts.empty.filtered"], size="2", color=theme.TEXT_MUTED),
                    rx.link(S.t["acts.filter.reset"], size="2", cursor="pointer", on_click=S.reset_filters),
                    spacing="2",
                ),
                rx.text(S.t["acts.empty.hint"], size="2", color=theme.TEXT_MUTED, text_align="center"),
            ),
            align="center", spacing="3",
        ),
        padding=rx.breakpoints(initial="32px 16px", sm="48px"), width="100%", background="white",
        border=f"1px solid {theme.BORDER}", border_radius="8px", data_testid="activities-empty",
    )


def footer() -> rx.Component:
    return rx.hstack(
        rx.text(S.t["acts.shown"] + " ", rx.text.strong(S.rows.length()), " " + S.t["acts.of"] + " ",
                rx.text.strong(S.total), size="2", color=theme.TEXT_MUTED, data_testid="activities-shown"),
        rx.spacer(),
        rx.cond(S.has_more,
                rx.button(rx.icon("chevrons-down", size=15), S.t["acts.more"], variant="soft", size="2",
                          on_click=S.load_more, data_testid="activities-more")),
        width="100%", align="center",
    )


def complete_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(S.t["acts.complete.title"]),
            rx.dialog.description(S.complete_subject, size="2", color=theme.TEXT_MUTED),
            rx.form(
                rx.vstack(
                    rx.text(S.t["acts.col.result"], size="2", weight="medium"),
                    rx.text_area(name="result", placeholder=S.t["acts.complete.placeholder"], width="100%",
                                 rows="4", auto_focus=True, data_testid="complete-result"),
                    rx.cond(S.complete_error != "",
                            rx.callout(S.complete_error, icon="triangle-alert", color_scheme="red", size="1",
                                       width="100%")),
                    rx.hstack(
                        rx.dialog.close(rx.button(S.t["common.cancel"], type="button", variant="soft",
                                                  color_scheme="gray")),
                        rx.button(rx.icon("check", size=15), S.t["acts.complete"], type="submit",
                                  color_scheme="green", data_testid="complete-submit"),
                        justify="end", spacing="3", width="100%",
                    ),
                    spacing="2", padding_top="12px", width="100%",
                ),
                on_submit=S.submit_complete,
                reset_on_submit=False,  # a refused result stays typed; the dialog unmounts on close
            ),
            max_width="480px",
        ),
        open=S.complete_open,
        on_open_change=S.set_complete_open,
    )


def activities_page() -> rx.Component:
    return layout(
        "/activities",
        S.t["page.activities.title"],
        rx.vstack(
            toolbar(),
            rx.cond(S.error != "", rx.callout(S.error, icon="triangle-alert", color_scheme="red", size="1")),
            rx.cond(S.rows.length() > 0, rx.vstack(table(), footer(), spacing="3", width="100%"), empty_state()),
            complete_dialog(),
            spacing="4",
            width="100%",
            align="start",
            data_testid="activities-page",
        ),
    )
