"""The list: sortable columns, paging, row checkboxes, bulk actions, column chooser.

On a phone (below 768 px) the same table shows each row as a card (CSS only, one DOM): the
title as a link on top, the most useful columns of the page (PHONE_COLUMNS, in the person's
column order) as «label: value» lines, the selection checkbox in the corner; a bar above the
cards selects the page and sorts; the pager wraps."""
from __future__ import annotations

import reflex as rx

from rxcrm.state.work import ListColumn, Option, WorkState

from . import theme
from .responsive import table_as_cards


def _header(col: ListColumn) -> rx.Component:
    sorted_here = WorkState.sort == col.key
    arrow = rx.cond(sorted_here, rx.icon(rx.cond(WorkState.desc, "arrow-down", "arrow-up"), size=13), rx.fragment())
    return rx.table.column_header_cell(
        rx.cond(
            col.sortable,
            rx.hstack(rx.text(col.label), arrow, spacing="1", align="center", cursor="pointer",
                      on_click=WorkState.set_sort(col.key)),
            rx.text(col.label),
        ),
        white_space="nowrap",
        color=rx.cond(sorted_here, "#1f2933", "#4a5563"),
        font_size="12px",
        data_testid="list-header",
        data_sorted=rx.cond(sorted_here, rx.cond(WorkState.desc, "desc", "asc"), ""),
    )


def empty_hint(compact: bool = False) -> rx.Component:
    """Why the board or list is empty and what to do: a filter that matches nothing
    («Сбросить фильтр»), or nothing here yet («Создать», another pipeline)."""
    actions = rx.hstack(
        rx.cond(WorkState.empty_can_reset,
                rx.button(rx.icon("filter-x", size=14), WorkState.t["work.empty.reset"], size="2", variant="soft",
                          on_click=WorkState.clear_filters, data_testid="empty-reset")),
        rx.cond(WorkState.empty_can_create,
                rx.button(rx.icon("plus", size=14), WorkState.t["work.empty.create_button"], size="2",
                          variant="soft", on_click=WorkState.set_create_open(True), data_testid="empty-create")),
        spacing="2",
    )
    icon = rx.icon(rx.cond(WorkState.empty_can_reset, "search-x", "inbox"), size=20 if compact else 28,
                   color="#98a2b3", flex_shrink="0")
    title = rx.text(WorkState.empty_title, size="2" if compact else "3", weight="bold", color="#1f2933")
    text = rx.text(WorkState.empty_text, size="2", color=theme.TEXT_MUTED)
    if compact:
        body = rx.hstack(icon, rx.vstack(title, text, spacing="0", align="start", min_width="0"), rx.spacer(),
                         actions, align="center", spacing="3", width="100%")
        padding = "12px 16px"
    else:
        body = rx.vstack(icon, title, text, actions, spacing="2", align="center", max_width="520px",
                         text_align="center")
        padding = "40px 24px"
    return rx.flex(
        body, justify="center", width="100%", padding=padding, background="white",
        border=f"1px dashed {theme.BORDER}" if not compact else f"1px solid {theme.BORDER}",
        border_radius="10px", data_testid="empty-hint",
    )


# the columns a phone card shows (when the person's list has them), per page
PHONE_COLUMNS = {"lead": ["name", "stage_id", "phone", "next_activity_at"],
                 "deal": ["stage_id", "contact_id", "amount", "next_activity_at"],
                 "contact": ["phone", "email", "company_id", "responsible_id"],
                 "company": ["phone", "email", "industry", "responsible_id"]}


def _cell(row: dict, col: ListColumn) -> rx.Component:
    href = "/" + WorkState.page + "/" + row["id"]
    value = row[col.key]
    first = rx.cond((col.key == "title") | (col.key == "full_name"), True, False)
    on_phone = rx.Var.create(PHONE_COLUMNS)[WorkState.entity].to(list).contains(col.key)
    return rx.table.cell(
        rx.cond(
            first,
            rx.link(value, href=href, color="#1f5fa8", weight="medium"),
            rx.cond(
                col.key == "next_activity_at",
                rx.text(value, color=rx.cond(row["_overdue"] == "1", theme.DANGER,
                                             rx.cond(row["_no_activity"] == "1", "#b42318", "#1f2933"))),
                rx.text(value),
            ),
        ),
        font_size="13px",
        max_width="280px",
        overflow="hidden",
        text_overflow="ellipsis",
        white_space="nowrap",
        data_label=col.label,
        data_title=rx.cond(first, "1", "0"),
        data_phone=rx.cond(first | on_phone, "1", "0"),
    )


def _row(row: dict) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.checkbox(checked=WorkState.selected.contains(row["id"]),
                                  on_change=lambda _v: WorkState.toggle_row(row["id"]),
                                  data_testid="row-check"), data_check="1"),
        rx.foreach(WorkState.list_columns, lambda c: _cell(row, c)),
        data_testid="list-row",
        data_id=row["id"],
        _hover={"background": "#f7f9fb"},
    )


def _opt(o: Option) -> rx.Component:
    return rx.select.item(o.label, value=o.value)


# a phone: the bulk actions two to a line under «Выбрано: N»
_BULK_PHONE = theme.phone(flex="1 1 calc(50% - 6px)", min_width="0")


def bulk_bar() -> rx.Component:
    return rx.cond(
        WorkState.selection_count > 0,
        rx.hstack(
            rx.text(WorkState.t["work.bulk.selected"], rx.text.strong(WorkState.selection_count), size="2"),
            rx.cond(
                ~WorkState.all_matching & (WorkState.total > WorkState.selected.length()),
                rx.link(WorkState.t["work.bulk.select_all"] + WorkState.total.to_string(), size="2", cursor="pointer",
                        on_click=WorkState.select_all_matching, data_testid="select-all-matching"),
            ),
            rx.link(WorkState.t["work.bulk.clear"], size="2", cursor="pointer", color="gray",
                    on_click=WorkState.clear_selection),
            rx.spacer(style=theme.phone(flex_basis="100%", height="0")),
            rx.cond(
                WorkState.has_board,
                rx.select.root(
                    rx.select.trigger(placeholder=WorkState.t["board.change_stage"], data_testid="bulk-stage", style=_BULK_PHONE),
                    rx.select.content(rx.foreach(WorkState.stage_options, _opt)),
                    value="", on_change=WorkState.bulk_move, size="2",
                ),
            ),
            rx.select.root(
                rx.select.trigger(placeholder=WorkState.t["work.bulk.assign"], data_testid="bulk-assign",
                                  style=_BULK_PHONE),
                rx.select.content(rx.foreach(WorkState.user_options, _opt)),
                value="", on_change=WorkState.bulk_assign, size="2",
            ),
            rx.button(rx.icon("file-spreadsheet", size=15), WorkState.t["work.bulk.export"], variant="soft", size="2",
                      on_click=WorkState.start_export, style=_BULK_PHONE),
            rx.button(rx.icon("trash-2", size=15), WorkState.t["work.bulk.delete"], color_scheme="red", variant="soft", size="2",
                      on_click=WorkState.set_confirm_delete(True), data_testid="bulk-delete", style=_BULK_PHONE),
            align="center", spacing="3", width="100%", padding="8px 12px", background="#eaf2fc",
            border="1px solid #cfe0f5", border_radius="8px", data_testid="bulk-bar",
            style=theme.phone(flex_wrap="wrap", row_gap="8px"),
        ),
    )


def confirm_delete() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(WorkState.t["work.delete.title"]),
            rx.alert_dialog.description(
                rx.text(WorkState.t["work.delete.count"], rx.text.strong(WorkState.selection_count),
                        WorkState.t["work.delete.note"]),
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button(WorkState.t["common.cancel"], variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button(WorkState.t["work.bulk.delete"], color_scheme="red", on_click=WorkState.bulk_delete,
                                                 data_testid="confirm-delete")),
                justify="end", spacing="3", padding_top="12px",
            ),
        ),
        open=WorkState.confirm_delete_open,
        on_open_change=WorkState.set_confirm_delete,
    )


def column_chooser() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(WorkState.t["work.columns.title"]),
            rx.dialog.description(WorkState.t["work.columns.hint"], size="2",
                                  color=theme.TEXT_MUTED),
            rx.grid(
                rx.foreach(
                    WorkState.chooser_options,
                    lambda o: rx.checkbox(o.label, checked=WorkState.chooser_selected.contains(o.value),
                                          on_change=lambda _v: WorkState.toggle_column(o.value), size="2"),
                ),
                columns=rx.breakpoints(initial="1", xs="2", sm="3"), spacing="2", padding_y="12px",
                max_height="min(420px, 55dvh)", overflow_y="auto",
            ),
            rx.hstack(
                rx.button(WorkState.t["work.columns.default"], variant="ghost", on_click=WorkState.reset_columns),
                rx.cond(WorkState.user_role == "admin",
                        rx.button(WorkState.t["work.columns.for_all"], variant="soft", on_click=WorkState.save_columns(True))),
                rx.spacer(),
                rx.dialog.close(rx.button(WorkState.t["work.columns.cancel"], variant="soft", color_scheme="gray")),
                rx.button(WorkState.t["work.columns.apply"], on_click=WorkState.save_columns(False), data_testid="apply-columns"),
                spacing="3", width="100%", style=theme.phone(flex_wrap="wrap", justify_content="flex-end"),
            ),
            max_width="760px",
        ),
        open=WorkState.chooser_open,
        on_open_change=WorkState.set_chooser_open,
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.text(WorkState.t["work.list.total"], rx.text.strong(WorkState.total), size="2", data_testid="list-total"),
        rx.spacer(),
        rx.text(WorkState.t["work.list.page_size"], size="2", color=theme.TEXT_MUTED, style=theme.phone(display="none")),
        rx.select(["10", "20", "50", "100"], value=WorkState.page_size.to_string(),
                  on_change=WorkState.set_page_size, size="1"),
        rx.icon_button(rx.icon("chevron-left", size=16), variant="soft", size="1",
                       disabled=WorkState.page_no <= 1, on_click=WorkState.set_page_no(WorkState.page_no - 1)),
        rx.text(WorkState.page_no.to_string() + WorkState.t["work.list.of"] + WorkState.pages.to_string(), size="2",
                white_space="nowrap"),
        rx.icon_button(rx.icon("chevron-right", size=16), variant="soft", size="1",
                       disabled=WorkState.page_no >= WorkState.pages,
                       on_click=WorkState.set_page_no(WorkState.page_no + 1), data_testid="next-page"),
        align="center", spacing=rx.breakpoints(initial="2", sm="3"), width="100%", padding_top="12px",
        data_testid="list-pager",
        style=theme.phone(flex_wrap="wrap", row_gap="8px"),
    )


def _sort_item(col: ListColumn) -> rx.Component:
    return rx.cond(
        col.sortable,
        rx.menu.item(
            rx.hstack(rx.text(col.label),
                      rx.cond(WorkState.sort == col.key,
                              rx.icon(rx.cond(WorkState.desc, "arrow-down", "arrow-up"), size=14)),
                      justify="between", align="center", width="100%"),
            on_select=WorkState.set_sort(col.key), data_testid="phone-sort-item",
        ),
    )


def phone_bar() -> rx.Component:
    """On a phone, above the cards (the table head is hidden): select the page, sort."""
    sorted_label = rx.foreach(WorkState.list_columns,
                              lambda c: rx.cond(WorkState.sort == c.key, rx.text(c.label), rx.fragment()))
    return rx.hstack(
        rx.el.label(
            rx.checkbox(checked=WorkState.page_all_selected, on_change=WorkState.toggle_page,
                        data_testid="check-page-phone"),
            rx.text(WorkState.t["list.select_page"], size="2"),
            display="flex", align_items="center", gap="8px", cursor="pointer",
        ),
        rx.spacer(),
        rx.menu.root(
            rx.menu.trigger(
                rx.button(rx.icon("arrow-up-down", size=14), sorted_label,
                          rx.cond(WorkState.desc, rx.icon("arrow-down", size=13), rx.icon("arrow-up", size=13)),
                          variant="soft", color_scheme="gray", size="2", data_testid="phone-sort"),
            ),
            rx.menu.content(rx.text(WorkState.t["list.sort"], size="1", weight="bold", color=theme.TEXT_MUTED,
                                    padding="4px 12px"),
                            rx.foreach(WorkState.list_columns, _sort_item),
                            align="end"),
        ),
        align="center", width="100%", padding_x="4px",
        **theme.desktop_hidden(),
    )


# The table as cards on a phone: the title on top, «label: value» lines, the checkbox in
# the corner; a column without a value on this row is left out.
LIST_AS_CARDS = table_as_cards(
    row={"display": "flex", "flexDirection": "column", "position": "relative", "padding": "10px 44px 10px 12px"},
    cell={"display": "flex", "alignItems": "baseline", "gap": "10px", "padding": "3px 0", "width": "100%",
          "overflow": "hidden"},
    cells={
        "& td::before": {"content": "attr(data-label)", "flex": "0 0 96px", "color": theme.TEXT_MUTED,
                         "fontSize": "12px", "whiteSpace": "nowrap", "overflow": "hidden",
                         "textOverflow": "ellipsis"},
        "& td > *": {"minWidth": "0", "overflow": "hidden", "textOverflow": "ellipsis", "whiteSpace": "nowrap"},
        "& td[data-phone='0'], & td:has(> p:empty)": {"display": "none"},
        "& td[data-title='1']": {"order": "-1", "fontSize": "15px", "paddingBottom": "6px"},
        "& td[data-title='1'] > *": {"whiteSpace": "normal"},
        "& td[data-title='1']::before": {"content": "none"},
        "& td[data-check='1']": {"position": "absolute", "top": "10px", "right": "10px", "width": "auto",
                                 "padding": "0"},
        "& td[data-check='1']::before": {"content": "none"},
    },
)


def list_view() -> rx.Component:
    return rx.vstack(
        bulk_bar(),
        phone_bar(),
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell(
                            rx.checkbox(checked=WorkState.page_all_selected, on_change=WorkState.toggle_page,
                                        data_testid="check-page"),
                            width="36px",
                        ),
                        rx.foreach(WorkState.list_columns, _header),
                    ),
                ),
                rx.table.body(rx.foreach(WorkState.rows, _row)),
                variant="surface",
                size="1",
                width="100%",
                style=LIST_AS_CARDS,
            ),
            width="100%",
            overflow_x="auto",
        ),
        rx.cond((WorkState.total == 0) & (WorkState.empty_title != ""), empty_hint()),
        pager(),
        confirm_delete(),
        column_chooser(),
        spacing="3",
        width="100%",
    )
