"""/history — История: who did what to which item, when and from where. On a phone (below
768 px) the filters sit two to a line and each row is a card (when and from where on top,
who and what, the item, the details)."""
from __future__ import annotations

import reflex as rx

from rxcrm.components import theme
from rxcrm.components.forms import date_input, option_select
from rxcrm.components.responsive import table_as_cards
from rxcrm.components.shell import layout
from rxcrm.state.history import HistoryRow, HistoryState

T = HistoryState.t
COLUMNS = (T["history.col.date"], T["history.col.user"], T["history.col.action"], T["history.col.item"],
           T["history.col.details"], T["history.col.source"])


def _row(r: HistoryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(r.at, size="2", white_space="nowrap")),
        rx.table.cell(rx.text(r.user, size="2")),
        rx.table.cell(rx.badge(r.action_label, variant="soft", color_scheme="gray")),
        rx.table.cell(rx.text(r.entity_label, size="1", color=theme.TEXT_MUTED),
                      rx.cond(r.href != "", rx.link(r.title, href=r.href, size="2", color="#1f5fa8"),
                              rx.text(r.title, size="2"))),
        rx.table.cell(rx.text(r.details, size="2", color="#2d3a48")),
        rx.table.cell(rx.text(r.source_label, size="1", color=theme.TEXT_MUTED)),
        data_testid="history-row",
    )


def _sel(key: str, value, options, width: str = "190px") -> rx.Component:
    return option_select(options, width=width, value=value, on_change=lambda v: HistoryState.set_filter(key, v),
                         trigger_props={"style": theme.phone(flex="1 1 calc(50% - 8px)", width="auto",
                                                             min_width="0")})


# a row as a card on a phone: date · source / who · action / the item / the details
ROWS_AS_CARDS = table_as_cards(
    row={"display": "grid", "gridTemplateColumns": "minmax(0, 1fr) auto", "columnGap": "10px", "rowGap": "4px",
         "alignItems": "center", "padding": "10px 12px"},
    cell={"display": "block"},
    cells={
        "& td:nth-child(1)": {"gridColumn": "1", "gridRow": "1", "color": theme.TEXT_MUTED},
        "& td:nth-child(6)": {"gridColumn": "2", "gridRow": "1", "justifySelf": "end"},
        "& td:nth-child(2)": {"gridColumn": "1", "gridRow": "2", "fontWeight": "500"},
        "& td:nth-child(3)": {"gridColumn": "2", "gridRow": "2", "justifySelf": "end"},
        "& td:nth-child(4)": {"gridColumn": "1 / -1", "gridRow": "3", "display": "flex", "gap": "6px",
                              "alignItems": "baseline", "flexWrap": "wrap"},
        "& td:nth-child(5)": {"gridColumn": "1 / -1", "gridRow": "4"},
        "& td:nth-child(5):has(> p:empty)": {"display": "none"},
    },
)


def history_page() -> rx.Component:
    return layout(
        "/history",
        HistoryState.t["page.history.title"],
        rx.cond(
            HistoryState.h_error != "",
            rx.callout(HistoryState.h_error, icon="shield-alert", color_scheme="amber", data_testid="history-denied"),
            rx.vstack(
                rx.hstack(
                    _sel("user", HistoryState.h_user, HistoryState.h_user_options, "240px"),
                    _sel("entity", HistoryState.h_entity, HistoryState.h_entity_options),
                    _sel("action", HistoryState.h_action, HistoryState.h_action_options),
                    rx.hstack(  # the period stays together (a line of its own on a phone)
                        rx.text(HistoryState.t["history.from"], size="2"),
                        rx.box(date_input("date_from", HistoryState.h_from, testid="history-from", width="100%",
                                          placeholder=T["card.date.placeholder"],
                                          on_value=lambda v: HistoryState.set_filter("from", v)),
                               width="150px", style=theme.phone(flex="1 1 0", width="auto", min_width="0")),
                        rx.text(HistoryState.t["history.to"], size="2"),
                        rx.box(date_input("date_to", HistoryState.h_to, testid="history-to", width="100%",
                                          placeholder=T["card.date.placeholder"],
                                          on_value=lambda v: HistoryState.set_filter("to", v)),
                               width="150px", style=theme.phone(flex="1 1 0", width="auto", min_width="0")),
                        spacing="2", align="center", style=theme.phone(flex="1 1 100%"),
                    ),
                    spacing="2", align="center", flex_wrap="wrap", width="100%",
                ),
                rx.table.root(
                    rx.table.header(rx.table.row(*[rx.table.column_header_cell(h, font_size="12px", color="#4a5563")
                                                   for h in COLUMNS])),
                    rx.table.body(rx.foreach(HistoryState.h_rows, _row)),
                    variant="surface", size="1", width="100%", style=ROWS_AS_CARDS,
                ),
                rx.hstack(
                    rx.text(HistoryState.t["history.total"] + " ", rx.text.strong(HistoryState.h_total), size="2", data_testid="history-total"),
                    rx.spacer(),
                    rx.icon_button(rx.icon("chevron-left", size=16), variant="soft", size="1",
                                   disabled=HistoryState.h_page <= 1,
                                   on_click=HistoryState.set_h_page(HistoryState.h_page - 1)),
                    rx.text(HistoryState.h_page.to_string() + " " + HistoryState.t["history.of"] + " "
                            + HistoryState.h_pages.to_string(), size="2"),
                    rx.icon_button(rx.icon("chevron-right", size=16), variant="soft", size="1",
                                   disabled=HistoryState.h_page >= HistoryState.h_pages,
                                   on_click=HistoryState.set_h_page(HistoryState.h_page + 1)),
                    width="100%", align="center", spacing="3",
                ),
                spacing="3", width="100%",
            ),
        ),
    )
