"""The kanban board: columns per process stage with SQL counts/sums, draggable cards.

On a phone (below 768 px) the board fills the screen under the toolbar and scrolls by itself:
sideways one column at a time (scroll-snap, each column ~85 % of the width, the next one
peeking), down within the board with each column's head (stage, count, sum) kept on top.
A strip of the stages above jumps to a column; each card has a «Сменить стадию» menu (the
same version-checked move as a drop), and a long press drags a card (the library's touch
sensor; snapping pauses while a card is dragged)."""
from __future__ import annotations

import reflex as rx

from rxcrm.state.work import BoardColumn, Card, WorkState

from . import theme
from .dnd import kanban_board, kanban_card, kanban_column


def _pill(value, color: str, bg: str, title, testid: str) -> rx.Component:
    return rx.cond(
        value > 0,
        rx.tooltip(
            rx.box(value, color=color, background=bg, font_size="11px", font_weight="600",
                   padding_x="6px", border_radius="8px", line_height="18px", data_testid=testid),
            content=title,
        ),
        rx.fragment(),
    )


def _stage_menu(card: Card, col: BoardColumn) -> rx.Component:
    """«Сменить стадию» on a card (phones): the other stages of the board; a choice is the
    same move as a drop (WorkState.on_drag_end with the card's version: required fields,
    refusals and conflicts are handled alike)."""
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(rx.icon("ellipsis-vertical", size=16), variant="ghost", color_scheme="gray", size="1",
                           aria_label=WorkState.t["board.change_stage"], data_testid="card-stage-menu",
                           margin_top="-2px", margin_right="-6px"),
        ),
        rx.menu.content(
            rx.text(WorkState.t["board.change_stage"], size="1", weight="bold", color=theme.TEXT_MUTED,
                    padding="4px 12px"),
            rx.foreach(
                WorkState.board,
                lambda st: rx.cond(
                    st.id != col.id,
                    rx.menu.item(
                        rx.hstack(rx.box(width="10px", height="10px", border_radius="3px", background=st.color,
                                         flex_shrink="0"),
                                  rx.text(st.name), align="center", spacing="2"),
                        on_select=WorkState.on_drag_end({"draggableId": card.id, "from": col.id, "to": st.id}),
                        data_testid="card-stage-item", data_stage=st.name,
                    ),
                ),
            ),
            align="end",
        ),
    )


def _card(card: Card, col: BoardColumn) -> rx.Component:
    href = "/" + WorkState.page + "/" + card.id.to_string()
    return kanban_card(
        rx.box(
            rx.vstack(
                rx.hstack(
                    rx.link(card.title, href=href, weight="medium", size="2", color="#1f5fa8",
                            underline="hover", data_testid="card-title"),
                    rx.cond(card.repeat,
                            rx.tooltip(rx.badge(WorkState.t["work.card.repeat"], color_scheme="orange", size="1",
                                                variant="soft"),
                                       content=rx.cond(WorkState.entity == "lead",
                                                       WorkState.t["work.card.repeat.lead"],
                                                       WorkState.t["work.card.repeat.deal"]))),
                    rx.box(_stage_menu(card, col), line_height="0", flex_shrink="0",
                           **theme.desktop_hidden(display="block")),
                    justify="between", align="start", width="100%", spacing="2",
                ),
                rx.cond(card.client != "", rx.text(card.client, size="1", color=theme.TEXT_MUTED)),
                rx.text(card.amount, size="2", weight="bold", color="#1f2933"),
                rx.divider(margin_y="2px"),
                rx.hstack(
                    rx.cond(
                        card.activity != "",
                        rx.hstack(
                            rx.icon("calendar-clock", size=13,
                                    color=rx.cond(card.overdue, theme.DANGER, theme.TEXT_MUTED)),
                            rx.text(card.activity_at, size="1",
                                    color=rx.cond(card.overdue, theme.DANGER, theme.TEXT_MUTED),
                                    weight=rx.cond(card.overdue, "medium", "regular")),
                            spacing="1", align="center", title=card.activity,
                        ),
                        rx.badge(WorkState.t["work.card.no_activity"], color_scheme="red", variant="soft", size="1"),
                    ),
                    rx.spacer(),
                    rx.text(card.responsible, size="1", color=theme.TEXT_MUTED, trim="both",
                            max_width="120px", overflow="hidden", white_space="nowrap",
                            text_overflow="ellipsis"),
                    width="100%", align="center",
                ),
                spacing="1", align="start", width="100%",
            ),
            background="white",
            border=f"1px solid {theme.BORDER}",
            border_radius="8px",
            padding="10px 12px",
            box_shadow="0 1px 2px rgba(16,24,40,0.04)",
            _hover={"border_color": "#b8c4d2"},
            cursor="grab",
            opacity=rx.cond(WorkState.saving_id == card.id, "0.6", "1"),
            transition="opacity 0.15s",
        ),
        draggable_id=card.id.to_string(),
        index=0,
        data_testid="kanban-card",
        data_id=card.id,
    )


# on a phone: one column ≈ 85 % of the screen, the next one peeking at the right edge
COLUMN_W_PHONE = "calc(100vw - 60px)"


def _column(col: BoardColumn) -> rx.Component:
    return rx.vstack(
        rx.box(
            rx.hstack(
                rx.text(col.name, weight="bold", size="2", color="#1f2933", trim="both"),
                rx.badge(col.count, variant="soft", color_scheme="gray", radius="full",
                         data_testid="column-count"),
                justify="between", align="center", width="100%",
            ),
            rx.hstack(
                rx.text(col.amount, size="2", color="#3c4a5a", weight="medium", data_testid="column-sum"),
                rx.spacer(),
                _pill(col.overdue, "white", theme.DANGER, WorkState.t["work.column.overdue"], "column-overdue"),
                _pill(col.today, "#7a4b00", "#ffe3a3", WorkState.t["work.column.today"], "column-today"),
                _pill(col.none, "#4a5563", "#e6e9ee", WorkState.t["work.column.none"], "column-none"),
                spacing="1", align="center", width="100%", padding_top="4px",
            ),
            border_top=f"4px solid {col.color}",
            background="white",
            border_radius="8px",
            padding="10px 12px",
            width="100%",
            box_shadow="0 1px 2px rgba(16,24,40,0.05)",
            data_testid="column-head",
            # the head stays on top while the column scrolls under it (the page background
            # above it hides the cards passing by)
            style=theme.phone(position="sticky", top="0", z_index="2",
                              box_shadow=f"0 -10px 0 {theme.PAGE_BG}, 0 1px 3px rgba(16,24,40,0.10)"),
        ),
        kanban_column(
            rx.foreach(col.cards, lambda c: _card(c, col)),
            rx.cond(
                col.count == 0,
                rx.center(
                    rx.text(WorkState.column_empty_text, size="2", color="#98a2b3"),
                    border="1px dashed #d5dbe3", border_radius="8px", height="64px", width="100%",
                    data_testid="column-empty",
                ),
            ),
            droppable_id=col.id.to_string(),
            width="100%",
            data_testid="kanban-column",
            data_stage=col.name,
        ),
        rx.cond(
            col.has_more,
            rx.button(WorkState.t["work.column.more"], variant="ghost", size="1", width="100%",
                      on_click=WorkState.load_more(col.id), data_testid="load-more"),
        ),
        width="280px",
        min_width="280px",
        spacing="2",
        align="start",
        id="board-col-" + col.id.to_string(),
        data_testid="board-column",
        style=theme.phone(width=COLUMN_W_PHONE, min_width=COLUMN_W_PHONE, scroll_snap_align="start"),
    )


def _jump(col: BoardColumn) -> rx.Component:
    script = ("document.getElementById('board-col-" + col.id.to_string()
              + "')?.scrollIntoView({behavior: 'smooth', inline: 'start', block: 'nearest'})")
    return rx.button(
        rx.box(width="8px", height="8px", border_radius="50%", background=col.color, flex_shrink="0"),
        rx.text(col.name, white_space="nowrap"),
        rx.text(col.count, color=theme.TEXT_MUTED, weight="medium"),
        variant="surface", color_scheme="gray", size="1", radius="full", flex_shrink="0",
        on_click=rx.call_script(script), data_testid="board-stage-jump",
    )


def stage_strip() -> rx.Component:
    """On a phone: the board's stages in a row above it; a tap brings that column."""
    return rx.hstack(
        rx.foreach(WorkState.board, _jump),
        spacing="2", width="100%", overflow_x="auto", padding_bottom="2px", flex_shrink="0",
        data_testid="board-stages",
        **theme.desktop_hidden(scrollbar_width="none"),
    )


# The phone board: its own scroller (both ways) that fills the screen under the toolbar;
# sideways it snaps to a column, except while a card is being dragged (the library scrolls
# it then, in small steps that snapping would undo).
_BOARD_PHONE = {
    "overflow": "auto",
    "flex": "1 1 auto",
    "minHeight": "0",
    "scrollSnapType": "x mandatory",
    "overscrollBehaviorX": "contain",
    "paddingBottom": "12px",
    "&:has([data-board-dragging='true'])": {"scrollSnapType": "none"},
}


def board() -> rx.Component:
    return rx.box(
        kanban_board(
            rx.hstack(rx.foreach(WorkState.board, _column), spacing="3", align="start"),
            on_drag_end=WorkState.on_drag_end,
        ),
        overflow_x="auto",
        padding_bottom="16px",
        width="100%",
        data_testid="kanban",
        style={theme.PHONE: _BOARD_PHONE},
    )
